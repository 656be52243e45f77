"""The `memory` object store: everything in a dict, gone when the process ends."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from typing import NoReturn

import pyarrow as pa
import pyarrow.fs as pafs

from weir.objectstore.base import ObjectStore


class MemoryObjectStore(ObjectStore):
    durable = False

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, path: str, data: bytes) -> None:
        with self._lock:
            self._objects[path] = bytes(data)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        with self._lock:
            if path in self._objects:
                return False
            self._objects[path] = bytes(data)
            return True

    def get(self, path: str) -> bytes:
        with self._lock:
            try:
                return self._objects[path]
            except KeyError:
                raise FileNotFoundError(path) from None

    def etag(self, path: str) -> str:
        return hashlib.sha256(self.get(path)).hexdigest()

    def put_if_match(self, path: str, data: bytes, etag: str) -> bool:
        with self._lock:
            current = self._objects.get(path)
            if current is None or hashlib.sha256(current).hexdigest() != etag:
                return False
            self._objects[path] = bytes(data)
            return True

    def list(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(k for k in self._objects if k.startswith(prefix))

    def delete(self, path: str) -> None:
        with self._lock:
            self._objects.pop(path, None)

    def size(self, path: str) -> int:
        return len(self.get(path))

    def arrow_filesystem(self) -> pafs.FileSystem:
        return pafs.PyFileSystem(_MemoryHandler(self))


# pyarrow has no type information (pyproject.toml, [tool.mypy]): its classes are Any
class _MemoryHandler(pafs.FileSystemHandler):  # type: ignore[misc]
    """Read-only pyarrow view of a MemoryObjectStore, enough for Parquet scans."""

    def __init__(self, store: MemoryObjectStore) -> None:
        self.store = store

    def get_type_name(self) -> str:
        return "weir-memory"

    def equals(self, other: object) -> bool:
        return isinstance(other, _MemoryHandler) and other.store is self.store

    def get_file_info(self, paths: Iterable[str]) -> list[pafs.FileInfo]:
        infos = []
        for p in paths:
            key = p.lstrip("/")
            if self.store.exists(key):
                infos.append(pafs.FileInfo(p, pafs.FileType.File, size=self.store.size(key)))
            else:
                infos.append(pafs.FileInfo(p, pafs.FileType.NotFound))
        return infos

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        prefix = selector.base_dir.strip("/")
        prefix = prefix + "/" if prefix else ""
        return [
            pafs.FileInfo(k, pafs.FileType.File, size=self.store.size(k))
            for k in self.store.list(prefix)
        ]

    def open_input_file(self, path: str) -> pa.BufferReader:
        return pa.BufferReader(self.store.get(path.lstrip("/")))

    def open_input_stream(self, path: str) -> pa.BufferReader:
        return pa.BufferReader(self.store.get(path.lstrip("/")))

    def normalize_path(self, path: str) -> str:
        return path

    # The engine never writes through pyarrow; refuse clearly if something tries.
    def _readonly(self, *args: object, **kwargs: object) -> NoReturn:
        raise OSError("the weir memory filesystem is read-only through pyarrow")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _readonly
    delete_file = move = copy_file = open_output_stream = open_append_stream = _readonly
