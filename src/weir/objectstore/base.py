"""The object store interface."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyarrow.fs as pafs


class ObjectStore(ABC):
    """Whole-object puts and gets under `/`-separated keys."""

    #: whether a completed put survives a crash of the process or machine
    durable: bool = True

    @abstractmethod
    def put(self, path: str, data: bytes) -> None:
        """Store `data` at `path` atomically (readers see all of it or none), replacing it."""

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

    def exists(self, path: str) -> bool:
        try:
            self.size(path)
            return True
        except FileNotFoundError:
            return False
