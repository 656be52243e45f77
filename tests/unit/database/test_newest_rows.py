"""A query that keeps each group's newest row (`DISTINCT ON (host) ... ORDER BY host, time
DESC`, TSBS's lastpoint) reads only the data from the oldest of the groups' newest times
on (query.newest_rows): the shapes recognised in real DataFusion plans, and on a real
`Database` with many Parquet files the same answers with and without it, with files left
out only as far as the group that stopped reporting longest ago allows."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest

from support.inprocess import make_config, no_time_floors, open_database, plan_over_empty_tables
from weir.database import Database
from weir.query.newest_rows import newest_per_group

pytestmark = pytest.mark.anyio

S = 10**9
MIN = 60 * S


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def newest_tables(sql: str) -> list[str]:
    return [n.table for n in newest_per_group(plan_over_empty_tables(sql), "iox")]


def test_the_shapes_that_keep_each_groups_newest_row() -> None:
    assert newest_tables("SELECT DISTINCT ON (host) * FROM cpu ORDER BY host, time DESC") \
        == ["cpu"]
    assert newest_tables("SELECT DISTINCT ON (host, region) host, v FROM cpu WHERE "
                         "region = 'a' AND time > now() - interval '1 day' "
                         "ORDER BY host, region DESC, time DESC") == ["cpu"]
    assert newest_tables("SELECT DISTINCT ON (c.host) * FROM iox.cpu AS c "
                         "ORDER BY c.host, c.time DESC") == ["cpu"]
    assert newest_tables("SELECT host, last_value(v ORDER BY time) AS v, max(time) AS t "
                         "FROM cpu GROUP BY host") == ["cpu"]
    assert newest_tables("SELECT first_value(v ORDER BY time DESC) FROM cpu") == ["cpu"]
    # a join of two tables: each aggregate its own
    assert sorted(newest_tables(
        "SELECT * FROM (SELECT DISTINCT ON (host) host, v FROM cpu ORDER BY host, time DESC) "
        "a JOIN (SELECT DISTINCT ON (host) host, v FROM mem ORDER BY host, time DESC) b "
        "USING (host)")) == ["cpu", "mem"]


def test_a_whole_table_is_read_from_its_files_and_batches_a_filtered_one_by_a_query(
        ) -> None:
    def columns(sql: str) -> list[tuple[str, ...] | None]:
        return [n.columns for n in newest_per_group(plan_over_empty_tables(sql), "iox")]

    assert columns("SELECT DISTINCT ON (host, region) * FROM cpu "
                   "ORDER BY host, region, time DESC") == [("host", "region")]
    assert columns("SELECT DISTINCT ON (c.host) * FROM cpu AS c ORDER BY c.host, c.time DESC") \
        == [("host",)]
    assert columns("SELECT first_value(v ORDER BY time DESC) FROM cpu") == [()]
    assert columns("SELECT DISTINCT ON (host) * FROM cpu WHERE region = 'a' "
                   "ORDER BY host, time DESC") == [None]
    assert columns("SELECT DISTINCT ON (host) * FROM cpu WHERE time > now() - interval '1 day' "
                   "ORDER BY host, time DESC") == [None]


def test_shapes_whose_answer_may_be_older_are_left_alone() -> None:
    for sql in [
        # the oldest row, or ordered by something else first, or not from the newest row
        "SELECT DISTINCT ON (host) * FROM cpu ORDER BY host, time",
        "SELECT DISTINCT ON (host) * FROM cpu ORDER BY host, v DESC, time DESC",
        "SELECT host, first_value(v ORDER BY time DESC), max(v) FROM cpu GROUP BY host",
        "SELECT host, first_value(v ORDER BY time DESC), count(*) FROM cpu GROUP BY host",
        "SELECT host, first_value(v ORDER BY time DESC) FILTER (WHERE v > 1) FROM cpu "
        "GROUP BY host",
        "SELECT host, min(time) FROM cpu GROUP BY host",
        # grouped by an expression of a row (its newest may be any of the group's)
        "SELECT DISTINCT ON (lower(host)) * FROM cpu ORDER BY lower(host), time DESC",
        "SELECT date_bin(INTERVAL '1 minute', time) AS m, max(v) FROM cpu GROUP BY m",
        "SELECT date_bin(INTERVAL '1 minute', time) AS m, first_value(v ORDER BY time DESC) "
        "FROM cpu GROUP BY m",
        # the table read again elsewhere, where the floor would cut rows it needs
        "SELECT * FROM (SELECT DISTINCT ON (host) host, v FROM cpu ORDER BY host, time DESC) "
        "a JOIN (SELECT host, count(*) AS n FROM cpu GROUP BY host) b USING (host)",
        "SELECT DISTINCT ON (host) * FROM cpu WHERE time > (SELECT min(time) FROM mem) "
        "ORDER BY host, time DESC",
        # a filter that picks other rows each time it runs
        "SELECT DISTINCT ON (host) * FROM cpu WHERE random() < 0.5 ORDER BY host, time DESC",
        # grouped after a join: the rows are not one table's
        "SELECT DISTINCT ON (cpu.host) cpu.v FROM cpu JOIN mem USING (host) "
        "ORDER BY cpu.host, cpu.time DESC",
    ]:
        assert newest_tables(sql) == [], sql


async def _bounded_and_whole(db: Database, sql: str
                             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """`sql`'s rows as the engine plans it, its rows with every file and batch planned,
    and how many files the first left out."""
    before = db.query_engine.files_left_out
    bounded = (await db.query("db", sql)).to_pylist()
    left_out = db.query_engine.files_left_out - before
    with no_time_floors():
        whole = (await db.query("db", sql)).to_pylist()
    return bounded, whole, left_out


async def test_the_newest_row_of_each_host_reads_only_the_newest_files(tmp_path: Path) -> None:
    config = make_config(tmp_path, gen1_duration=600, compaction_interval=0,
                         wal_snapshot_size=100_000, object_store="file")
    rng = random.Random(7)
    now = time.time_ns() // (10 * S) * (10 * S)
    hosts = [f"h{h}" for h in range(30)]
    region = {h: f"r{i % 3}" for i, h in enumerate(hosts)}
    async with open_database(config) as db:
        # four hours of 10-second points of 30 hosts, two hours per snapshot: 24 files,
        # and a host that stopped reporting three hours ago; the newest minute of each
        # host (and an overwrite of one) in the buffer
        times = [now - k * 10 * S for k in range(1440)]
        gone = [f"cpu,host=gone,region=r9 v=0.5,n={k}i {times[1082 - k]}" for k in range(3)]
        for part, more in ((times[720:], gone), (times[6:720], [])):
            await db.write_lp("db", "\n".join([*more, *(
                f"cpu,host={h},region={region[h]} v={rng.random():.4f},n={k}i {t}"
                for k, t in enumerate(part) for h in hosts)]))
            assert await db.snapshot() is not None
        await db.write_lp("db", "\n".join(
            f"cpu,host={h},region={region[h]} v={rng.random():.4f},n=-1i {t}"
            for t in times[:6] for h in hosts))
        await db.write_lp("db", f"cpu,host=h4,region={region['h4']} v=9.5,n=-2i {now}")
        files = db.index.all()
        assert len(files) > 20

        # the host that stopped reporting holds the floor at its newest row: the files
        # wholly before it are left out
        lastpoint = "SELECT DISTINCT ON (host) * FROM cpu ORDER BY host, time DESC"
        bounded, whole, left_out = await _bounded_and_whole(db, lastpoint)
        assert bounded == whole
        assert [r["host"] for r in bounded] == sorted([*hosts, "gone"])
        assert {r["time"].value for r in bounded if r["host"] != "gone"} == {now}
        assert {r["n"] for r in bounded} == {-1, -2, 2}
        assert next(r for r in bounded if r["host"] == "h4")["v"] == 9.5
        older = sum(1 for f in files if f.max_time < times[1080])
        assert 0 < left_out == older < len(files)

        # the filter decides which hosts count: without region r9, every host wrote in the
        # last minute, and only the buffer is read
        bounded, whole, left_out = await _bounded_and_whole(
            db, "SELECT DISTINCT ON (host) host, n FROM cpu WHERE region != 'r9' "
                "ORDER BY host, time DESC")
        assert bounded == whole and len(bounded) == 30
        assert left_out == len(files)
        bounded, whole, left_out = await _bounded_and_whole(
            db, "SELECT DISTINCT ON (host) host, v, n FROM cpu WHERE region = 'r1' "
                "ORDER BY host, time DESC")
        assert bounded == whole and len(bounded) == 10
        assert left_out == len(files)

        # a query of another shape keeps its own time bounds (grouped by a function of
        # time, which the bindings cannot show as a Python object)
        bounded, whole, left_out = await _bounded_and_whole(
            db, f"SELECT date_bin(INTERVAL '1 minute', time) AS m, max(v) AS v FROM cpu "
                f"WHERE host = 'h3' AND time >= to_timestamp_nanos({times[400]}) AND time < "
                f"to_timestamp_nanos({times[340]}) GROUP BY m ORDER BY m")
        assert bounded == whole and len(bounded) in (10, 11)  # (minutes the 10 touch)
        assert left_out >= len(files) - 2

        # last_value(... ORDER BY time) and max(time) per region: the same
        bounded, whole, left_out = await _bounded_and_whole(
            db, "SELECT region, last_value(v ORDER BY time) AS v, max(time) AS t FROM cpu "
                "WHERE region IN ('r0', 'r2') GROUP BY region ORDER BY region")
        assert bounded == whole and [r["region"] for r in bounded] == ["r0", "r2"]
        assert left_out == len(files)
