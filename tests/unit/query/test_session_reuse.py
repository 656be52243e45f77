"""A query reuses the DataFusion session an earlier query of the same database used, and
still sees everything that changed in between: a write, a new column, a new table, a
dropped table, a snapshot to Parquet, a cache created or dropped (its table function), a
retention period. Real Database (file object store), real query engine."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from support.inprocess import make_config, open_database, query_rows, write
from weir.database import Database
from weir.query import QueryEngine
from weir.query.engine import _Session, _SessionPool
from weir.query.errors import SqlPlanningError

pytestmark = pytest.mark.anyio

DB = "db"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(make_config(tmp_path, object_store="file")) as database:
        await write(database, DB, "cpu,host=a usage=1")
        yield database


def _idle(engine: QueryEngine) -> list[_Session]:
    return [s for sessions in engine._sessions._idle.values() for s in sessions]


async def _count(db: Database, table: str = "cpu") -> int:
    rows = await query_rows(db, DB, f"SELECT count(*) AS n FROM {table}")
    return int(rows[0]["n"])


async def test_a_reused_session_sees_every_change_made_since_the_last_query(
        db: Database) -> None:
    engine = db.query_engine
    assert await _count(db) == 1
    (session,) = _idle(engine)

    # a write
    await write(db, DB, "cpu,host=b usage=2")
    assert await _count(db) == 2
    assert _idle(engine) == [session]  # (the same session answered)

    # a new column
    await write(db, DB, "cpu,host=c usage=3,idle=7")
    assert await query_rows(db, DB, "SELECT host, idle FROM cpu WHERE idle IS NOT NULL"
                            ) == [{"host": "c", "idle": 7.0}]

    # a new table, then that table dropped
    await write(db, DB, "mem,host=a free=5")
    assert await _count(db, "mem") == 1
    await db.delete_table(DB, "mem")
    with pytest.raises(SqlPlanningError, match="mem"):
        await _count(db, "mem")

    # a snapshot: the rows move to a Parquet file, counted once
    assert await db.snapshot() is not None
    assert await _count(db) == 3
    await write(db, DB, "cpu,host=d usage=4")
    assert await _count(db) == 4
    assert _idle(engine) == [session]


async def test_a_cache_s_table_function_reads_the_caches_of_the_query_s_time(
        db: Database) -> None:
    sql = "SELECT host, usage FROM last_cache('cpu', 'last')"
    with pytest.raises(SqlPlanningError, match="could not find cache"):
        await query_rows(db, DB, sql)
    await db.create_last_cache(DB, "cpu", name="last", key_columns=["host"],
                               value_columns=["usage"], count=1, ttl_s=3600)
    await write(db, DB, "cpu,host=b usage=2")
    assert sorted(r["host"] for r in await query_rows(db, DB, sql)) == ["a", "b"]
    await db.delete_last_cache(DB, "cpu", "last")
    with pytest.raises(SqlPlanningError, match="could not find cache"):
        await query_rows(db, DB, sql)
    assert await _count(db) == 2


async def test_an_open_stream_keeps_its_session_and_its_snapshot(db: Database) -> None:
    engine = db.query_engine
    assert await _count(db) == 1
    first = await db.query_stream(DB, "SELECT host FROM cpu ORDER BY host")
    assert _idle(engine) == []  # (the open stream has it)
    await write(db, DB, "cpu,host=b usage=2")
    # planned meanwhile: another session, the new row
    assert await _count(db) == 2
    assert len(_idle(engine)) == 1
    # the first stream reads what its snapshot held
    assert first.read_all().to_pylist() == [{"host": "a"}]
    assert len(_idle(engine)) == 2


async def test_a_retention_period_set_after_a_query_hides_old_rows_from_the_next(
        db: Database) -> None:
    old = time.time_ns() - 3 * 3600 * 10**9
    await db.write_lp(DB, f"cpu,host=old usage=9 {old}")
    assert await _count(db) == 2
    db.catalog.update_database(DB, 3600 * 10**9)
    assert await query_rows(db, DB, "SELECT host FROM cpu") == [{"host": "a"}]


async def test_a_session_given_back_twice_serves_one_query_at_a_time(db: Database) -> None:
    # (a stream closed by its reader and by a cancelled request at the same moment)
    session = _Session(db.query_engine._context(information_schema=False),
                       db.snapshot_for_query(DB))
    pool = _SessionPool()
    pool.give_back(("k",), session)
    pool.give_back(("k",), session)
    assert pool.take(("k",)) is session
    assert pool.take(("k",)) is None
