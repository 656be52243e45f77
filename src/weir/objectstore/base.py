"""The object store interface."""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable

import pyarrow.fs as pafs


class ObjectStore(ABC):
    """Whole-object puts and gets under `/`-separated keys."""

    #: whether a completed put survives a crash of the process or machine
    durable: bool = True

    @abstractmethod
    def put(self, path: str, data: bytes) -> None:
        """Store `data` at `path` atomically (readers see all of it or none), replacing it."""

    def put_streamed(self, path: str, write: Callable[[str], None]) -> int:
        """Store at `path` what `write(local_path)` writes into a local file (for objects
        too large to hold in memory); atomic as `put`. Returns the size in bytes.

        This default reads the file back and puts it whole; stores that can move a local
        file into place, or upload it in parts, do better."""
        fd, local = tempfile.mkstemp(suffix=".tmp")
        os.close(fd)
        try:
            write(local)
            with open(local, "rb") as f:
                data = f.read()
            self.put(path, data)
            return len(data)
        finally:
            os.unlink(local)

    @abstractmethod
    def put_if_absent(self, path: str, data: bytes) -> bool:
        """Store `data` only if nothing is at `path`; False if something already was."""

    @abstractmethod
    def get(self, path: str) -> bytes:
        """The object at `path`; FileNotFoundError if there is none."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Every key under `prefix` (a folder-like prefix ending in `/`), sorted."""

    @abstractmethod
    def delete(self, path: str) -> None:
        """Remove the object at `path`; no error if it is already gone."""

    @abstractmethod
    def size(self, path: str) -> int:
        """Size in bytes of the object at `path`."""

    @abstractmethod
    def arrow_filesystem(self) -> pafs.FileSystem:
        """A pyarrow filesystem whose paths are this store's keys (for Parquet reads)."""

    def etag(self, path: str) -> str:
        """A tag naming the current content of the object at `path`, for `put_if_match`;
        FileNotFoundError if there is none."""
        raise NotImplementedError(f"{type(self).__name__} has no conditional overwrite")

    def put_if_match(self, path: str, data: bytes, etag: str) -> bool:
        """Replace the object at `path` with `data` only if its tag is still `etag` (a
        compare-and-swap); False if it changed or is gone. Of writers racing with the
        same tag, exactly one succeeds."""
        raise NotImplementedError(f"{type(self).__name__} has no conditional overwrite")

    def exists(self, path: str) -> bool:
        try:
            self.size(path)
            return True
        except FileNotFoundError:
            return False
