"""What a query's snapshot costs: only the tables a query names are read (merged where
their points may repeat), a merge of buffered overwrites is made once per write rather
than once per query, and later writes do not change a snapshot already taken."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.inprocess import make_config, open_database
from weir.database import Database

pytestmark = pytest.mark.anyio

S = 1_000_000_000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _overwritten(db: Database, table: str, now: int, n: int = 500) -> None:
    """`n` series written, then every point written again: the buffer saw overwrites."""
    for value in (1, 2):
        lp = "\n".join(f"{table},host=h{i} v={value}i {now - i * S}" for i in range(n))
        await db.write_lp("db", lp, precision="ns")


def _merges(db: Database) -> list[tuple[object, ...]]:
    return [k for k in db.reader._cache if isinstance(k, tuple) and k[0] == "buffer"]


async def test_a_query_reads_only_the_tables_it_names(tmp_path: Path) -> None:
    now = time.time_ns()
    async with open_database(make_config(tmp_path)) as db:
        await _overwritten(db, "a", now)
        await _overwritten(db, "b", now)
        rows = (await db.query("db", "SELECT count(*) AS n, sum(v) AS s FROM a")).to_pylist()
        assert rows == [{"n": 500, "s": 1000}]
        # one merge made, table a's: table b's buffer was never merged for this query
        assert len(_merges(db)) == 1
        await db.query("db", "SELECT count(*) FROM b")
        assert len(_merges(db)) == 2


async def test_a_buffer_merge_is_made_once_per_write(tmp_path: Path) -> None:
    now = time.time_ns()
    async with open_database(make_config(tmp_path)) as db:
        await _overwritten(db, "a", now)
        first = db.snapshot_for_query("db").tables["a"].batches
        again = db.snapshot_for_query("db").tables["a"].batches
        assert first and all(x is y for x, y in zip(first, again, strict=True))
        # a write: the next query merges again, and sees it
        await db.write_lp("db", f"a,host=h0 v=7i {now}", precision="ns")
        after = db.snapshot_for_query("db").tables["a"].batches
        assert not any(x is y for x, y in zip(first, after, strict=False))
        rows = (await db.query("db", "SELECT sum(v) AS s FROM a")).to_pylist()
        assert rows == [{"s": 1005}]


async def test_later_writes_leave_a_taken_snapshot_as_it_was(tmp_path: Path) -> None:
    now = time.time_ns()
    async with open_database(make_config(tmp_path)) as db:
        await db.write_lp("db", "\n".join(f"a,host=h{i} v=1i {now - i}" for i in range(100)),
                          precision="ns")
        snap = db.snapshot_for_query("db")
        # enough small writes that the buffer joins its small batches into one, in place
        for k in range(80):
            await db.write_lp("db", f"a,host=x{k} v=1i {now - 10**6 - k}", precision="ns")
        table = snap.tables["a"]  # (read only now, after the writes)
        assert sum(b.num_rows for b in table.batches) == 100
        assert sum(b.num_rows for b in db.snapshot_for_query("db").tables["a"].batches) == 180
