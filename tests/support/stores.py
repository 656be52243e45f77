"""A real object store behind a wrapper: tests subclass `Wrapped` and override the one or
two calls whose failure they inject (an outage, an S3 look-alike's ignored conditions),
so everything else is the real store's behaviour."""

from __future__ import annotations

import pyarrow.fs as pafs

from weir.objectstore import ObjectStore


class Wrapped(ObjectStore):
    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    def put(self, path: str, data: bytes) -> None:
        self.inner.put(path, data)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        return self.inner.put_if_absent(path, data)

    def etag(self, path: str) -> str:
        return self.inner.etag(path)

    def put_if_match(self, path: str, data: bytes, etag: str) -> bool:
        return self.inner.put_if_match(path, data, etag)

    def get(self, path: str) -> bytes:
        return self.inner.get(path)

    def list(self, prefix: str) -> list[str]:
        return self.inner.list(prefix)

    def delete(self, path: str) -> None:
        self.inner.delete(path)

    def size(self, path: str) -> int:
        return self.inner.size(path)

    def arrow_filesystem(self) -> pafs.FileSystem:
        return self.inner.arrow_filesystem()
