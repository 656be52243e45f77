"""An object store that times every operation of the one it wraps (weir.metrics)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pyarrow.fs as pafs

from weir.metrics import ObjectStoreMetrics
from weir.objectstore.base import ObjectStore

_T = TypeVar("_T")


class MeteredStore(ObjectStore):
    """`inner`, with each put, get, list, delete and size recorded by op and result.

    Parquet files that queries read through `arrow_filesystem()` are not counted."""

    def __init__(self, inner: ObjectStore, metrics: ObjectStoreMetrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self.durable = inner.durable

    def _timed(self, op: str, work: Callable[[], _T], nbytes: Callable[[_T], int] | None = None,
               ok: Callable[[_T], bool] | None = None) -> _T:
        t0 = time.perf_counter()
        try:
            out = work()
        except BaseException:
            self.metrics.record(op, False, time.perf_counter() - t0)
            raise
        good = ok is None or ok(out)
        self.metrics.record(op, good, time.perf_counter() - t0,
                            nbytes(out) if nbytes is not None and good else None)
        return out

    def put(self, path: str, data: bytes) -> None:
        self._timed("put", lambda: self.inner.put(path, data), lambda _: len(data))

    def put_streamed(self, path: str, write: Callable[[str], None]) -> int:
        # timed with the writing, which for a compaction's output is most of it
        return self._timed("put", lambda: self.inner.put_streamed(path, write), lambda n: n)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        # (an object already there is an error of a conditional put, as in the reference)
        return self._timed("put_opts", lambda: self.inner.put_if_absent(path, data),
                           lambda _: len(data), ok=lambda stored: stored)

    def get(self, path: str) -> bytes:
        return self._timed("get", lambda: self.inner.get(path), len)

    def etag(self, path: str) -> str:
        return self._timed("head", lambda: self.inner.etag(path))

    def put_if_match(self, path: str, data: bytes, etag: str) -> bool:
        return self._timed("put_opts", lambda: self.inner.put_if_match(path, data, etag),
                           lambda _: len(data), ok=lambda stored: stored)

    def list(self, prefix: str) -> list[str]:
        return self._timed("list", lambda: self.inner.list(prefix))

    def delete(self, path: str) -> None:
        self._timed("delete", lambda: self.inner.delete(path))

    def size(self, path: str) -> int:
        return self._timed("head", lambda: self.inner.size(path))

    def arrow_filesystem(self) -> pafs.FileSystem:
        return self.inner.arrow_filesystem()
