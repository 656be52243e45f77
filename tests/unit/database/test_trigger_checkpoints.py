"""WAL triggers' checkpoints in storage, without a server: a real Database on the memory
store. A checkpoint travels in the same WAL file as the trigger's write-back (both or
neither survive), is carried into every manifest by snapshots, and holds the WAL files
the trigger has not processed until it passes them or lags past --trigger-max-wal-lag."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest

from support.inprocess import make_config
from weir.catalog import TriggerDefinition
from weir.database import Database
from weir.errors import LineProtocolError
from weir.objectstore import MemoryObjectStore
from weir.wal import WalFile, WalOp, decode, encode

pytestmark = pytest.mark.anyio

KEY = ("metrics", "downsample")
NOW = time.time_ns()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def wal_trigger(db: Database, name: str = "downsample", disabled: bool = False) -> None:
    db.catalog.ensure_database("metrics")
    db.catalog.create_trigger(TriggerDefinition(
        trigger_name=name, plugin_filename="p.py", database="metrics",
        trigger_specification="table:cpu", disabled=disabled))


async def opened(tmp_path: Path, store: MemoryObjectStore, **kw: object) -> Database:
    cfg = make_config(tmp_path, wal_snapshot_size=100_000, snapshotted_wal_files_to_keep=0,
                      compaction_interval=0, **kw)
    db = Database(cfg, store=store)
    await db.start()
    return db


def wal_seqs(store: MemoryObjectStore) -> list[int]:
    return sorted(int(p.rsplit("/", 1)[1][:-4]) for p in store.list("weir-node/wal/")
                  if p.endswith(".wal"))


def test_the_wal_format_carries_checkpoints_and_reads_old_files() -> None:
    batch = pa.record_batch({"v": pa.array([1.0])})
    wal = WalFile(seq=7, ops=[WalOp("metrics", "cpu", batch)], written_ns=NOW,
                  checkpoints={KEY: 6, ("other", "t"): 3})
    back = decode(encode(wal))
    assert back.checkpoints == {KEY: 6, ("other", "t"): 3}
    assert back.ops[0].batch.equals(batch)
    assert decode(encode(WalFile(seq=8))).checkpoints == {}


async def test_write_back_and_checkpoint_are_one_wal_file(tmp_path: Path) -> None:
    store = MemoryObjectStore()
    db = await opened(tmp_path, store)
    await db.write_lp("metrics", f"cpu,host=a usage=1 {NOW}\n", precision="ns")
    seq = db.last_wal_seq
    refused = await db.commit_trigger_writes(KEY, seq, {
        "metrics": f"cpu_1m,host=a usage=1 {NOW}\n",
        "bad": f"cpu v=1 {NOW}\ncpu v=\"x\" {NOW}\n"})
    assert list(refused) == ["bad"] and isinstance(refused["bad"], LineProtocolError)
    newest = decode(store.get(f"weir-node/wal/{db.last_wal_seq:011d}.wal"))
    assert newest.checkpoints == {KEY: seq}
    assert [(op.db, op.table) for op in newest.ops] == [("metrics", "cpu_1m")]
    assert db.trigger_checkpoint(KEY) == seq
    await db.stop()
    # after a restart (WAL replay) the checkpoint is there again
    db = await opened(tmp_path, store)
    assert db.trigger_checkpoint(KEY) == seq
    await db.stop()


async def test_snapshots_carry_checkpoints_into_the_manifest(tmp_path: Path) -> None:
    store = MemoryObjectStore()
    db = await opened(tmp_path, store)
    wal_trigger(db)
    await db.write_lp("metrics", f"cpu,host=a usage=1 {NOW}\n", precision="ns")
    marked = db.last_wal_seq
    await db.commit_trigger_writes(KEY, marked, {})  # (in WAL file marked + 1)
    assert await db.snapshot() is not None
    assert db.index.trigger_checkpoints == {KEY: marked}
    # the files the trigger has passed are gone; the manifest still knows its checkpoint.
    # (The file holding the checkpoint is kept until the trigger has seen it too.)
    assert wal_seqs(store) == [marked + 1]
    await db.stop()
    db = await opened(tmp_path, store)
    assert db.trigger_checkpoint(KEY) == marked
    await db.stop()


async def test_the_wal_is_kept_for_a_trigger_until_it_passes(tmp_path: Path) -> None:
    store = MemoryObjectStore()
    db = await opened(tmp_path, store)
    wal_trigger(db)
    await db.commit_trigger_writes(KEY, db.last_wal_seq, {})  # the trigger starts here
    start = db.last_wal_seq
    db.note_trigger_progress(KEY, start)  # it has seen its own checkpoint's file
    for i in range(5):
        await db.write_lp("metrics", f"cpu,host=a usage={i} {NOW + i}\n", precision="ns")
    assert await db.snapshot() is not None
    # rows are in Parquet, but the trigger has processed none of the 5 files
    assert wal_seqs(store) == list(range(start + 1, db.last_wal_seq + 1))
    db.note_trigger_progress(KEY, start + 3)  # files with nothing for it count too
    await db.write_lp("metrics", f"cpu,host=b usage=9 {NOW}\n", precision="ns")
    assert await db.snapshot() is not None
    assert wal_seqs(store)[0] == start + 4
    # a disabled trigger holds nothing
    db.catalog.set_trigger_disabled("metrics", "downsample", True)
    await db.write_lp("metrics", f"cpu,host=c usage=9 {NOW}\n", precision="ns")
    assert await db.snapshot() is not None
    assert wal_seqs(store) == []
    await db.stop()


async def test_a_trigger_past_the_lag_bound_holds_nothing(tmp_path: Path) -> None:
    store = MemoryObjectStore()
    db = await opened(tmp_path, store, trigger_max_wal_lag=3)
    wal_trigger(db)
    await db.commit_trigger_writes(KEY, db.last_wal_seq, {})
    for i in range(5):
        await db.write_lp("metrics", f"cpu,host=a usage={i} {NOW + i}\n", precision="ns")
    assert await db.snapshot() is not None
    assert wal_seqs(store) == [] and db.trigger_lagging(KEY)
    await db.stop()
