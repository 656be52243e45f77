"""The `file` object store: a directory on local disk."""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow.fs as pafs

from weir.objectstore.base import ObjectStore

#: the lock file conditional overwrites take turns through (put_if_match), at the root
_CAS_LOCK = ".weir-put-if-match.lock"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileObjectStore(ObjectStore):
    """Objects are files below `root`. Puts are write-temp, fsync, rename, fsync-dir."""

    durable = True

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if p != self.root and self.root not in p.parents:
            raise ValueError(f"object key {key!r} escapes the store")
        return p

    def _write_temp(self, final: Path, data: bytes) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        return tmp

    def put(self, path: str, data: bytes) -> None:
        final = self._path(path)
        tmp = self._write_temp(final, data)
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    def put_streamed(self, path: str, write: Callable[[str], None]) -> int:
        # written beside its final place, so the rename is atomic and nothing is copied
        final = self._path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
        try:
            write(str(tmp))
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(final.parent)
        return size

    def put_if_absent(self, path: str, data: bytes) -> bool:
        final = self._path(path)
        tmp = self._write_temp(final, data)
        try:
            # link() refuses to replace an existing file: an atomic create-if-absent.
            os.link(tmp, final)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        _fsync_dir(final.parent)
        return True

    def get(self, path: str) -> bytes:
        return self._path(path).read_bytes()

    def etag(self, path: str) -> str:
        # the content's hash, as S3's ETag of a plain put is: equal content, equal tag
        return hashlib.sha256(self._path(path).read_bytes()).hexdigest()

    def put_if_match(self, path: str, data: bytes, etag: str) -> bool:
        # A filesystem has no compare-and-swap of a file's content, so conditional writers
        # take turns through an exclusive flock() on one lock file of the store (per open
        # file, so threads and processes on this machine both wait), and compare and
        # rename while they hold it. Plain puts and deletes do not take it: as on S3, only
        # conditional writers are ordered against each other.
        final = self._path(path)
        tmp = self._write_temp(final, data)
        try:
            with open(self.root / _CAS_LOCK, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    if self.etag(path) != etag:
                        return False
                except FileNotFoundError:
                    return False
                os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(final.parent)
        return True

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        out = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if (name.startswith(".") and name.endswith(".tmp")) or name == _CAS_LOCK:
                    continue
                full = Path(dirpath) / name
                out.append(full.relative_to(self.root).as_posix())
        out.sort()
        return out

    def delete(self, path: str) -> None:
        self._path(path).unlink(missing_ok=True)

    def size(self, path: str) -> int:
        return self._path(path).stat().st_size

    def arrow_filesystem(self) -> pafs.FileSystem:
        return pafs.SubTreeFileSystem(str(self.root), pafs.LocalFileSystem())
