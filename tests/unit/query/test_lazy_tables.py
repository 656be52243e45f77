"""DataFusion asks for tables: a query builds only the system tables (and makes only the
user tables) it names, through the real seam — a provider registered with a real Database,
queried through its real query engine. information_schema and SHOW list every table and
its columns without building any."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from support.inprocess import make_config, open_database, query_rows, write
from weir.database import Database
from weir.errors import QueryTimeout
from weir.query import DatabaseSnapshot, QueryEngine, TableSnapshot
from weir.query.errors import SqlFailed
from weir.system_tables import SystemTable

pytestmark = pytest.mark.anyio

NS = pa.timestamp("ns")
EVENTS = pa.table({"id": pa.array([1, 2], pa.int64()), "at": pa.array([5, 6], NS)})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Counted:
    """A provider with one table, `system.events`, counting its builds (per database)."""

    def __init__(self) -> None:
        self.builds: list[str] = []

    def __call__(self, database: str, /) -> dict[str, SystemTable]:
        def build() -> pa.Table:
            self.builds.append(database)
            return EVENTS

        return {"events": SystemTable(EVENTS.schema, build)}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(make_config(tmp_path)) as database:
        await write(database, "db", "cpu,host=a usage=1\nmem,host=b free=2")
        yield database


async def test_a_query_that_names_no_system_table_builds_none(db: Database) -> None:
    counted = Counted()
    db.add_system_tables(counted)
    for sql in ("SELECT count(*) FROM cpu", "SELECT 1", "DESCRIBE cpu",
                "WITH events AS (SELECT 1 AS id) SELECT * FROM events",
                "SELECT * FROM cpu WHERE host = 'system.events'"):
        await query_rows(db, "db", sql)
    assert counted.builds == []


async def test_a_query_that_names_one_builds_it_once(db: Database) -> None:
    counted = Counted()
    db.add_system_tables(counted)
    rows = await query_rows(db, "db", "SELECT a.id FROM system.events a "
                                      "JOIN system.events b ON a.id = b.id ORDER BY a.id")
    assert rows == [{"id": 1}, {"id": 2}]
    assert counted.builds == ["db"]
    await query_rows(db, "db", "SELECT * FROM cpu WHERE usage IN "
                               "(SELECT CAST(id AS DOUBLE) FROM \"system\".\"events\")")
    assert counted.builds == ["db", "db"]


async def test_listing_tables_and_columns_builds_nothing(db: Database) -> None:
    counted = Counted()
    db.add_system_tables(counted)
    listed = await query_rows(db, "db", "SHOW TABLES")
    names = [(r["table_schema"], r["table_name"]) for r in listed]
    assert ("iox", "cpu") in names and ("iox", "mem") in names
    assert ("system", "events") in names and ("system", "parquet_files") in names
    assert names.index(("iox", "mem")) < names.index(("system", "events")) < \
        names.index(("information_schema", "tables"))
    columns = await query_rows(db, "db", "SELECT table_name, column_name, data_type "
                                         "FROM information_schema.columns "
                                         "WHERE table_schema = 'system'")
    assert {"table_name": "events", "column_name": "at",
            "data_type": "Timestamp(Nanosecond, None)"} in columns
    # every system table's columns, storage's and the life cycle's too
    assert {r["table_name"] for r in columns} >= {"events", "parquet_files",
                                                  "influxdb_schema", "snapshots",
                                                  "compactions"}
    await query_rows(db, "db", "SELECT * FROM information_schema.tables")
    await query_rows(db, "db", "SHOW datafusion.execution.batch_size")
    assert counted.builds == []
    # SHOW COLUMNS FROM a system table names it: DataFusion looks it up (and so builds it)
    got = await query_rows(db, "db", "SHOW COLUMNS FROM system.events")
    assert [(r["column_name"], r["data_type"]) for r in got] == [
        ("id", "Int64"), ("at", "Timestamp(Nanosecond, None)")]


def test_user_tables_the_query_does_not_name_are_not_made() -> None:
    """A table that cannot be made (a batch that does not cast to its schema) is touched
    only by a query that names it: naming it in a string literal is not naming it."""
    schema = pa.schema([("v", pa.int64()), ("time", NS)])
    bad = pa.record_batch({"v": ["not a number"], "time": pa.array([1], NS)})
    good = pa.record_batch({"v": [1], "time": pa.array([1], NS)}, schema=schema)
    snap = DatabaseSnapshot("db", {"good": TableSnapshot("good", schema, [good]),
                                   "bad": TableSnapshot("bad", schema, [bad])},
                            pafs.LocalFileSystem())
    engine = QueryEngine()
    got = engine.execute(snap, "SELECT 'bad' AS name, v FROM good WHERE 'bad' <> ''")
    assert got.to_pylist() == [{"name": "bad", "v": 1}]
    with pytest.raises(SqlFailed, match="ArrowInvalid"):
        engine.execute(snap, "SELECT * FROM bad")


async def test_a_failing_builder_fails_only_the_queries_that_read_it(db: Database) -> None:
    def broken(database: str, /) -> dict[str, SystemTable]:
        def build() -> pa.Table:
            raise RuntimeError("history unavailable")

        return {"broken": SystemTable(EVENTS.schema, build)}

    db.add_system_tables(broken)
    assert await query_rows(db, "db", "SELECT count(*) AS n FROM cpu") == [{"n": 1}]
    assert ("system", "broken") in [(r["table_schema"], r["table_name"])
                                    for r in await query_rows(db, "db", "SHOW TABLES")]
    with pytest.raises(SqlFailed, match="error building system table broken: RuntimeError: "
                                        "history unavailable"):
        await query_rows(db, "db", "SELECT * FROM system.broken")


async def test_a_builder_past_the_time_limit_is_interrupted(db: Database) -> None:
    def slow(database: str, /) -> dict[str, SystemTable]:
        def build() -> pa.Table:
            while True:  # Python code: the interruption lands in the builder itself
                time.sleep(0.01)

        return {"slow": SystemTable(EVENTS.schema, build)}

    db.add_system_tables(slow)
    db.query_engine.timeout = 0.3
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        await query_rows(db, "db", "SELECT * FROM system.slow")
    assert time.monotonic() - started < 2.0
    db.query_engine.timeout = None
    assert await query_rows(db, "db", "SELECT count(*) AS n FROM mem") == [{"n": 1}]
