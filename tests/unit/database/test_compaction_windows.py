"""Compaction of closed time windows on a real `Database` (memory object store): three
hours of 2,000 series written two days ago by many snapshots, some rewriting points
(last write wins), end as one Parquet file for the day, sorted by series across the whole
file (in passes of bounded size), with every row as before and across a restart."""

from __future__ import annotations

import asyncio
import io
import random
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from support.inprocess import make_config
from weir.config import ServeConfig
from weir.database import Database
from weir.objectstore import MemoryObjectStore
from weir.persist import ROW_GROUP_ROWS

pytestmark = pytest.mark.anyio

DB = "metrics"
SEC = 10**9
DAY = 86_400 * SEC
HOSTS = 2000
# 10:00 two days ago: the whole day is a closed window
START = (time.time_ns() // DAY - 2) * DAY + 10 * 3600 * SEC + 123_456_789


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def body(minute: int, rng: random.Random, hosts: range = range(HOSTS)) -> str:
    t = START + minute * 60 * SEC
    return "\n".join(
        f"cpu,host=h{h:04d},region=r{h % 7} usage={rng.random():.6f},n={minute}i {t + h}"
        for h in hosts)


def day_config(tmp_path: Path) -> ServeConfig:
    """Snapshots and compactions only when the test asks; covered WAL files go at once."""
    return make_config(tmp_path, wal_snapshot_size=100_000, compaction_interval=0,
                       compaction_file_rows=20_000, snapshotted_wal_files_to_keep=0)


async def all_rows(db: Database) -> list[dict]:
    return (await db.query(DB, "SELECT * FROM cpu ORDER BY host, time")).to_pylist()


async def test_a_closed_day_ends_as_one_file_with_every_row(tmp_path: Path) -> None:
    cfg = day_config(tmp_path)
    store = MemoryObjectStore()
    db = Database(cfg, store=store)
    await db.start()
    rng = random.Random(7)
    try:
        # 36 snapshots, one per 5 minutes of data over three hours (18 gen1 windows)
        for minute in range(0, 180, 5):
            await db.write_lp(DB, body(minute, rng))
            await db.snapshot()
        # later writes rewrite a tenth of the points of an early minute: an overlap
        await db.write_lp(DB, body(15, rng, range(0, HOSTS, 10)))
        await db.snapshot()
        before = await all_rows(db)
        assert len(before) == 36 * HOSTS
        files_before = len(db.index.all())
        assert files_before >= 36

        jobs = 0
        # (sorted by series in passes of a quarter of the day or less)
        db.compactor.sort_budget_rows = 20_000
        while (n := await asyncio.to_thread(db.compact)) > 0:
            jobs += n
            assert jobs < 50, "the compactor never settles"
        assert all(r.status == "ok" for r in db.compactor.history)
        (f,) = db.index.all()
        assert f.row_count == 36 * HOSTS and f.generation >= 2
        assert f.min_time == START and f.max_time == START + 175 * 60 * SEC + HOSTS - 1
        stored = pq.ParquetFile(io.BytesIO(store.get(f.path)))
        meta = stored.metadata
        # one host's rows of the day are adjacent, in time order, hosts in order: a
        # query for one host reads a few pages, not one in every ten-minute slice
        keys = list(zip(stored.read(columns=["host"]).column("host").to_pylist(),
                        stored.read(columns=["time"]).column("time").cast("int64")
                        .to_pylist(), strict=True))
        assert keys == sorted(keys)
        # never one giant row group
        assert meta.num_row_groups >= 36 * HOSTS // ROW_GROUP_ROWS
        assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) \
            <= ROW_GROUP_ROWS
        # with a page index, so that a query on one series skips the others' pages
        assert all(meta.row_group(i).column(c).has_column_index
                   for i in range(meta.num_row_groups)
                   for c in range(meta.num_columns))
        assert await all_rows(db) == before
        # (the inputs are deleted once no query can still be reading them)
        db.compactor.delete_delay_s = 0
        db.compactor.delete_due()
        assert [p for p in store.list(f"{cfg.node_id}/dbs/") if p.endswith(".parquet")] \
            == [f.path]
    finally:
        await db.stop()

    again = Database(cfg, store=store)
    await again.start()
    try:
        assert await all_rows(again) == before
        # nothing more to do: a compacted window is not written again
        assert await asyncio.to_thread(again.compact) == 0
    finally:
        await again.stop()


class ManifestListingFails(MemoryObjectStore):
    """The memory store, except that listing the manifests fails while `failing` is set
    (a store that stops answering right after a manifest was written)."""

    failing = False

    def list(self, prefix: str) -> list[str]:
        if self.failing and "/manifests/" in prefix:
            raise OSError(5, "Input/output error", prefix)
        return super().list(prefix)


async def test_a_published_compaction_keeps_its_outputs_when_tidying_old_manifests_fails(
        tmp_path: Path) -> None:
    # Removing old manifests comes after the new one is written. A failure there used to
    # reach the compactor as a failed job, which deleted the outputs the manifest now
    # listed: every later query of those rows failed on a missing file.
    cfg = day_config(tmp_path)
    store = ManifestListingFails()
    db = Database(cfg, store=store)
    await db.start()
    rng = random.Random(3)
    try:
        for minute in range(0, 60, 10):
            await db.write_lp(DB, body(minute, rng, range(200)))
            await db.snapshot()
        before = await all_rows(db)
        store.failing = True
        assert await asyncio.to_thread(db.compact) > 0
        assert [r.status for r in db.compactor.history] == ["ok"]
        store.failing = False
        (f,) = db.index.all()
        assert store.size(f.path) > 0  # listed and there
        assert await all_rows(db) == before
    finally:
        await db.stop()
    again = Database(cfg, store=store)
    await again.start()
    try:
        assert await all_rows(again) == before
    finally:
        await again.stop()
