"""The WAL while its object store is away (an S3 server killed, a network cut): writes
are refused as unavailable (503, retry) rather than failed, nothing is acknowledged that
was not stored, and a WAL file whose put failed without an answer but landed anyway is
taken as flushed before the next one, so its rows are neither lost nor written twice."""

from __future__ import annotations

import pyarrow as pa
import pytest

from weir.errors import ObjectStoreUnavailable, WriteUnavailable
from weir.objectstore import MemoryObjectStore
from weir.wal import Wal, WalFile, WalOp, decode, wal_path

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FlakyStore(MemoryObjectStore):
    """The memory store, except that while `down` every call raises as an unreachable
    store does; with `lands`, a put while down is stored before the error (the answer
    was lost, not the request)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.lands = False

    def _gone(self, op: str, path: str) -> ObjectStoreUnavailable:
        return ObjectStoreUnavailable(f"s3://test: {op} {path}: connection refused")

    def put_if_absent(self, path: str, data: bytes) -> bool:
        if self.down:
            if self.lands:
                super().put_if_absent(path, data)
            raise self._gone("put", path)
        return super().put_if_absent(path, data)

    def get(self, path: str) -> bytes:
        if self.down:
            raise self._gone("get", path)
        return super().get(path)


def op(value: float) -> WalOp:
    return WalOp("db", "cpu", pa.record_batch({"v": pa.array([value]),
                                               "time": pa.array([1], pa.timestamp("ns"))}))


async def wal_over(store: FlakyStore) -> tuple[Wal, list[WalFile]]:
    flushed: list[WalFile] = []

    async def on_flushed(wal: WalFile) -> None:
        flushed.append(wal)

    wal = Wal(store, "n", on_flushed=on_flushed, flush_interval=0.01)
    wal.start()
    return wal, flushed


def values(files: list[WalFile]) -> list[tuple[int, float]]:
    return [(f.seq, o.batch.column("v")[0].as_py()) for f in files for o in f.ops]


async def test_writes_are_unavailable_while_the_store_is_down_then_resume() -> None:
    store = FlakyStore()
    wal, flushed = await wal_over(store)
    try:
        await wal.append([op(1.0)])
        store.down = True
        for v in (2.0, 3.0):  # each refused; the flusher stays alive for the next
            with pytest.raises(WriteUnavailable, match="connection refused"):
                await wal.append([op(v)])
        store.down = False
        await wal.append([op(4.0)])
    finally:
        await wal.stop()
    # file 2 was looked for (not there) and its number reused
    assert values(flushed) == [(1, 1.0), (2, 4.0)]
    assert store.list("n/wal/") == [wal_path("n", 1), wal_path("n", 2)]


async def test_a_put_that_landed_without_an_answer_is_kept_not_doubled() -> None:
    store = FlakyStore()
    wal, flushed = await wal_over(store)
    try:
        await wal.append([op(1.0)])
        store.down, store.lands = True, True
        with pytest.raises(WriteUnavailable):
            await wal.append([op(2.0)])
        store.down = False
        await wal.append([op(3.0)])
    finally:
        await wal.stop()
    # the landed file is flushed (its rows queryable, as a restart would replay them)
    # before the next write takes the following number
    assert values(flushed) == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert [decode(store.get(wal_path("n", s))).seq for s in (1, 2, 3)] == [1, 2, 3]
