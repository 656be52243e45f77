"""A snapshot that fails because the object store refuses a write, then succeeds when
retried: a real `Database` (parser, catalog, WAL, buffer, snapshots, queries) in process
on the memory object store, whose puts fail a set number of times (a real store
subclass, no mock). While the snapshot fails every row stays queryable exactly once and
every WAL file stays; the retry comes by itself, with backoff, and persists each row
once; a restart on the same store finds everything."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from support.datagen import CPU, ESCAPED, generate, sql_quote_ident
from support.inprocess import make_config, wait_for
from weir.config import ServeConfig
from weir.database import Database
from weir.objectstore import MemoryObjectStore

pytestmark = pytest.mark.anyio

DB = "metrics"
# 1,200 cpu series and 50 escaped ones, 3 points each, near now
DATA = generate(seed=1301, hosts=40, regions=30, points_per_series=3)
# rows written while the snapshot is failing (other series, so nothing overwrites)
LATER = generate(seed=1302, hosts=5, regions=4, points_per_series=2, escaped_series=0,
                 tables=(CPU,))
LATER_LP = LATER.lp().replace("host=host-", "host=late-")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FailingStore(MemoryObjectStore):
    """The memory store, except that a put of a path `refuse` picks fails (disk full)
    the first `failures` times."""

    def __init__(self, failures: int, refuse: Callable[[str], bool]) -> None:
        super().__init__()
        self.failures = failures
        self.refuse = refuse
        self.refused: list[str] = []

    def _check(self, path: str) -> None:
        if self.failures > 0 and self.refuse(path):
            self.failures -= 1
            self.refused.append(path)
            raise OSError(28, "No space left on device", path)

    def put(self, path: str, data: bytes) -> None:
        self._check(path)
        super().put(path, data)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        self._check(path)
        return super().put_if_absent(path, data)


def config(tmp_path: Path) -> ServeConfig:
    # snapshots only when the test asks (or the retry timer fires); covered WAL files are
    # deleted at once; no background compaction
    return make_config(tmp_path, wal_snapshot_size=100_000, snapshotted_wal_files_to_keep=0,
                       compaction_interval=0)


async def counts(db: Database) -> dict[str, int]:
    out = {}
    for table in (CPU, ESCAPED):
        (row,) = (await db.query(DB, f"SELECT count(*) AS n FROM {sql_quote_ident(table)}")
                  ).to_pylist()
        out[table] = row["n"]
    return out


def expected(*datasets) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {t: sum(len(d.table_rows(t)) for d in datasets) for t in (CPU, ESCAPED)}


def parquet(store: MemoryObjectStore, node: str) -> list[str]:
    return [p for p in store.list(f"{node}/dbs/") if p.endswith(".parquet")]


async def test_a_snapshot_the_store_refuses_is_retried_with_backoff_until_it_succeeds(
        tmp_path: Path) -> None:
    cfg = config(tmp_path)
    node = cfg.node_id
    store = FailingStore(2, lambda p: p.endswith(".parquet"))
    db = Database(cfg, store=store)
    await db.start()
    try:
        for part in DATA.chunks(4):  # four awaited writes: WAL files 1..4
            await db.write_lp(DB, part)
        wal_files = store.list(f"{node}/wal/")
        assert len(wal_files) == 4
        assert await counts(db) == expected(DATA)

        assert await db.snapshot() is None  # failed
        (rec,) = db.snapshot_history
        assert (rec.status, rec.attempt, rec.wal_seq) == ("failed", 1, 4)
        assert "No space left on device" in rec.error and rec.rows == len(DATA.rows)
        # nothing persisted or published, nothing deleted, nothing lost or doubled
        assert db.buffer.persisting is not None
        assert db.index.all() == [] and parquet(store, node) == []
        assert store.list(f"{node}/manifests/") == []
        assert store.list(f"{node}/wal/") == wal_files
        assert await counts(db) == expected(DATA)

        # writes go on meanwhile, into the next generation
        await db.write_lp(DB, LATER_LP)
        assert await counts(db) == expected(DATA, LATER)

        # the retry fails once more (after 1 s), then succeeds (2 s later), by itself
        await wait_for(lambda: db.snapshot_history[-1].status == "ok", timeout=30,
                       what="a successful snapshot retry")
        history = list(db.snapshot_history)
        assert [(r.status, r.attempt, r.wal_seq) for r in history] == [
            ("failed", 1, 4), ("failed", 2, 4), ("ok", 3, 4)]
        gaps = [(b.started_ns - a.started_ns) / 1e9 for a, b in itertools.pairwise(history)]
        assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps  # backoff: 1 s, then 2 s
        assert len(store.refused) == 2 and store.failures == 0

        assert db.buffer.persisting is None
        assert db.index.last_wal_seq == 4
        assert sum(f.row_count for f in db.index.all()) == len(DATA.rows)
        assert history[-1].files == len(db.index.all())
        # exactly the published files exist; the covered WAL files are gone, the later one
        # (rows still only in the buffer) stays
        assert parquet(store, node) == sorted(f.path for f in db.index.all())
        # (the covered WAL files are deleted just after the snapshot is recorded as ok)
        await wait_for(lambda: store.list(f"{node}/wal/") == [f"{node}/wal/{5:011d}.wal"],
                       timeout=30, what="the covered WAL files deleted")
        assert await counts(db) == expected(DATA, LATER)
    finally:
        await db.stop()

    # a restart on the same store: the Parquet files plus the one WAL file left
    again = Database(cfg, store=store)
    await again.start()
    try:
        assert await counts(again) == expected(DATA, LATER)
    finally:
        await again.stop()


async def test_a_snapshot_whose_manifest_is_refused_leaves_no_stray_or_double_rows(
        tmp_path: Path) -> None:
    """The Parquet files are written but the manifest that would publish them is refused:
    queries must not read those files (the rows are still in the buffer), and the retry
    writes the same files again and publishes them once."""
    cfg = config(tmp_path)
    node = cfg.node_id
    store = FailingStore(1, lambda p: "/manifests/" in p)
    db = Database(cfg, store=store)
    await db.start()
    try:
        for part in DATA.chunks(3):
            await db.write_lp(DB, part)
        assert await db.snapshot() is None
        assert db.snapshot_history[-1].status == "failed"
        written = parquet(store, node)
        assert written  # on the store, but named by no manifest
        assert db.index.all() == []
        assert await counts(db) == expected(DATA)

        await wait_for(lambda: db.snapshot_history[-1].status == "ok", timeout=30,
                       what="a successful snapshot retry")
        assert [r.attempt for r in db.snapshot_history] == [1, 2]
        assert parquet(store, node) == sorted(f.path for f in db.index.all()) == written
        assert sum(f.row_count for f in db.index.all()) == len(DATA.rows)
        assert db.buffer.persisting is None and db.buffer.nbytes == 0
        # (the covered WAL files are deleted just after the snapshot is recorded as ok)
        await wait_for(lambda: store.list(f"{node}/wal/") == [], timeout=30,
                       what="the covered WAL files deleted")
        assert await counts(db) == expected(DATA)

        # a later failure starts over: attempt 1, retried after 1 s
        store.failures = 1
        await db.write_lp(DB, LATER_LP)
        assert await db.snapshot() is None
        await wait_for(lambda: db.snapshot_history[-1].status == "ok", timeout=30,
                       what="a successful snapshot retry")
        assert [(r.status, r.attempt) for r in db.snapshot_history][2:] == [
            ("failed", 1), ("ok", 2)]
        gap = db.snapshot_history[-1].started_ns - db.snapshot_history[-2].started_ns
        assert 0.9 <= gap / 1e9 < 3.5  # not the 4 s of a third attempt
        assert await counts(db) == expected(DATA, LATER)
    finally:
        await db.stop()

    again = Database(cfg, store=store)
    await again.start()
    try:
        assert await counts(again) == expected(DATA, LATER)
        assert set(written) < set(parquet(store, node))
    finally:
        await again.stop()
