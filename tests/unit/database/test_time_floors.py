"""Files wholly before a query's time floor, or after its ceiling, are left out of its
plan (query.time_floor): the bounds found in real DataFusion plans, and on a real
`Database` with many Parquet files (ten-minute gen1 windows over four hours, no
compaction) the same answers with and without them, with files left out only where the
query bounds time from below, or from above with times of its own (not `now()`); and
the same for the batches of a large buffer."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest

from support.inprocess import make_config, open_database, plan_over_empty_tables
from weir.database import Database
from weir.query import engine as query_engine
from weir.query.time_floor import has_clock, may_bound_time, time_ceilings, time_floors

pytestmark = pytest.mark.anyio

S = 10**9
MIN = 60 * S


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def floors(sql: str) -> dict[str, int]:
    return time_floors(plan_over_empty_tables(sql), "iox")


def ceilings(sql: str) -> dict[str, int]:
    return time_ceilings(plan_over_empty_tables(sql), "iox")


def test_floors_from_the_filters_on_each_scan() -> None:
    t = "2026-12-03T00:00:00Z"
    day = 1_796_256_000 * S  # t in ns
    assert floors(f"SELECT * FROM cpu WHERE time >= '{t}'") == {"cpu": day}
    assert floors(f"SELECT * FROM cpu WHERE time > '{t}' AND host = 'a'") == {"cpu": day}
    assert floors(f"SELECT * FROM cpu WHERE time BETWEEN '{t}' AND now()") == {"cpu": day}
    assert floors(f"SELECT * FROM cpu WHERE '{t}' <= time") == {"cpu": day}
    # the latest of several lower bounds; upper bounds alone give none
    assert floors(f"SELECT * FROM cpu WHERE time >= '{t}' AND time >= to_timestamp_nanos("
                  f"{day + 5})") == {"cpu": day + 5}
    assert floors(f"SELECT * FROM cpu WHERE time < '{t}'") == {}
    before = time.time_ns()
    (lo,) = floors("SELECT avg(v) FROM cpu WHERE time >= now() - interval '5 minutes' "
                   "GROUP BY host").values()
    assert before - 5 * MIN <= lo <= time.time_ns() - 5 * MIN
    # not a conjunct of the scan's filter: no floor
    assert floors(f"SELECT * FROM cpu WHERE time >= '{t}' OR host = 'a'") == {}
    assert floors("SELECT * FROM cpu") == {}
    # each table its own; a table scanned twice takes the earlier floor, or none if one
    # scan has none
    assert floors(f"SELECT * FROM cpu JOIN mem USING (host) WHERE cpu.time >= '{t}'") \
        == {"cpu": day}
    assert floors(f"SELECT * FROM cpu WHERE time >= to_timestamp_nanos({day + 9}) UNION ALL "
                  f"SELECT * FROM cpu WHERE time >= '{t}'") == {"cpu": day}
    assert floors(f"SELECT * FROM cpu WHERE time >= '{t}' UNION ALL SELECT * FROM cpu") == {}
    assert floors(f"SELECT * FROM iox.cpu WHERE time >= '{t}'") == {"cpu": day}


def test_ceilings_from_the_filters_on_each_scan() -> None:
    t, u = "2026-12-03T00:00:00Z", "2026-12-03T01:00:00Z"
    day = 1_796_256_000 * S  # t in ns
    hour = day + 60 * MIN  # u in ns
    # inclusive: `time < u` keeps up to u - 1 ns
    assert ceilings(f"SELECT * FROM cpu WHERE time >= '{t}' AND time < '{u}'") \
        == {"cpu": hour - 1}
    assert ceilings(f"SELECT * FROM cpu WHERE time <= '{u}' AND host = 'a'") == {"cpu": hour}
    assert ceilings(f"SELECT * FROM cpu WHERE time BETWEEN '{t}' AND '{u}'") == {"cpu": hour}
    assert ceilings(f"SELECT * FROM cpu WHERE '{u}' > time") == {"cpu": hour - 1}
    # the earliest of several; lower bounds alone give none
    assert ceilings(f"SELECT * FROM cpu WHERE time < '{u}' AND time <= to_timestamp_nanos("
                    f"{day})") == {"cpu": day}
    assert ceilings(f"SELECT * FROM cpu WHERE time >= '{t}'") == {}
    assert ceilings(f"SELECT * FROM cpu WHERE time < '{u}' OR host = 'a'") == {}
    # a table scanned twice takes the later ceiling, or none if one scan has none
    assert ceilings(f"SELECT * FROM cpu WHERE time < '{t}' UNION ALL "
                    f"SELECT * FROM cpu WHERE time <= '{u}'") == {"cpu": hour}
    assert ceilings(f"SELECT * FROM cpu WHERE time < '{u}' UNION ALL SELECT * FROM cpu") == {}


def test_only_statements_naming_time_get_the_bounds_pass() -> None:
    assert may_bound_time("SELECT * FROM cpu WHERE time > now() - interval '5 minutes'")
    assert may_bound_time('SELECT * FROM cpu WHERE "TIME" > 5')
    assert may_bound_time("SELECT date_bin(INTERVAL '1 minute', time) FROM cpu")
    assert not may_bound_time("SELECT * FROM last_cache('cpu', 'hosts')")
    assert not may_bound_time("SELECT current_time, host FROM cpu_time WHERE timed")


def test_statements_with_a_clock_get_no_ceiling() -> None:
    # now() is folded into a literal, later in the real plan than in the first pass:
    # a ceiling from it could leave out a file the real plan reads
    assert has_clock("SELECT * FROM cpu WHERE time < now() - interval '1 hour'")
    assert has_clock("SELECT * FROM cpu WHERE time <= CURRENT_TIMESTAMP")
    assert has_clock("SELECT * FROM cpu WHERE time < today()")
    assert has_clock("select * from cpu where time < Current_Date")
    assert not has_clock("SELECT * FROM cpu WHERE time < '2026-12-03T00:00:00Z'")
    assert not has_clock("SELECT known FROM cpu")


async def _bounded_and_whole(db: Database, sql: str, threshold: str, counter: str
                             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """`sql`'s rows as the engine plans it, its rows with the engine's `threshold` raised
    so that nothing is left out, and how many (`counter`) the first left out."""
    before = getattr(db.query_engine, counter)
    bounded = (await db.query("db", sql)).to_pylist()
    left_out = getattr(db.query_engine, counter) - before
    real = getattr(query_engine, threshold)
    setattr(query_engine, threshold, 10**9)
    try:
        whole = (await db.query("db", sql)).to_pylist()
    finally:
        setattr(query_engine, threshold, real)
    return bounded, whole, left_out


def _approx(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """(float sums in another order may differ in the last bit)"""
    return [{k: pytest.approx(v) if isinstance(v, float) else v for k, v in r.items()}
            for r in rows]


async def test_same_answers_with_files_before_the_floor_left_out(tmp_path: Path) -> None:
    config = make_config(tmp_path, gen1_duration=600, compaction_interval=0,
                         wal_snapshot_size=100_000, object_store="file")
    rng = random.Random(5)
    now = time.time_ns() // (10 * S) * (10 * S)
    async with open_database(config) as db:
        # four hours of 10-second points of 20 hosts, two hours per snapshot: 24 files
        times = [now - k * 10 * S for k in range(1440)]
        for part in (times[720:], times[:720]):
            await db.write_lp("db", "\n".join(
                f"cpu,host=h{h} v={rng.random():.4f} {t}" for t in part for h in range(20)))
            assert await db.snapshot() is not None
        await db.write_lp("db", "\n".join(f"cpu,host=h{h} v=1 {now + S}" for h in range(20)))
        assert len(db.index.all()) > 2 * query_engine._PRUNE_FILES_OVER
        cut = now - 37 * MIN - 3 * S
        queries = [
            (f"SELECT count(*) AS n, sum(v) AS s FROM cpu WHERE time >= to_timestamp_nanos({cut})",
             True),
            ("SELECT host, max(v) AS m FROM cpu WHERE time > now() - interval '65 minutes' "
             "GROUP BY host ORDER BY host", True),
            (f"SELECT count(*) AS n FROM cpu WHERE time >= to_timestamp_nanos({cut}) "
             "OR host = 'h3'", False),
            ("SELECT count(*) AS n FROM cpu", False),
            # a window of literal times: files after it are left out too
            (f"SELECT host, count(*) AS n, avg(v) AS a FROM cpu WHERE time >= "
             f"to_timestamp_nanos({cut - 90 * MIN}) AND time < to_timestamp_nanos({cut}) "
             "GROUP BY host ORDER BY host", True),
            (f"SELECT count(*) AS n FROM cpu WHERE time <= to_timestamp_nanos({cut})", True),
            # an upper bound from now(): nothing left out after it (nor before: no floor)
            ("SELECT count(*) AS n FROM cpu WHERE time < now() - interval '2 hours'", False),
        ]
        for sql, prunes in queries:
            floored, every_file, left_out = await _bounded_and_whole(
                db, sql, "_PRUNE_FILES_OVER", "files_left_out")
            assert _approx(every_file) == floored, sql
            assert (left_out > 0) == prunes, (sql, left_out)
        (row,) = (await db.query("db", f"SELECT count(*) AS n FROM cpu WHERE time >= "
                                      f"to_timestamp_nanos({cut})")).to_pylist()
        assert row["n"] == 20 * (sum(1 for t in times if t >= cut) + 1)


async def test_a_table_of_a_few_files_already_gets_the_bounds_pass(tmp_path: Path) -> None:
    # Four hour files (a day not yet closed keeps its hours apart): a query of one of the
    # hours plans the one file, not four. The bounds pass (~1.5 ms) costs less than the
    # three files' planning it saves (~0.5 ms each, plus their opening).
    config = make_config(tmp_path, gen1_duration=3600, compaction_interval=0,
                         wal_snapshot_size=100_000, object_store="file")
    hour = 3600 * S
    start = (time.time_ns() // hour - 5) * hour
    async with open_database(config) as db:
        for k in range(4):
            await db.write_lp("db", "\n".join(
                f"cpu,host=h{h} v={k}.5 {start + k * hour + j * 60 * S}"
                for j in range(60) for h in range(30)))
            assert await db.snapshot() is not None
        assert len(db.index.all()) == 4 > query_engine._PRUNE_FILES_OVER
        sql = (f"SELECT host, count(*) AS n, max(v) AS m FROM cpu WHERE time >= "
               f"to_timestamp_nanos({start + 2 * hour}) AND time < "
               f"to_timestamp_nanos({start + 3 * hour}) GROUP BY host ORDER BY host")
        bounded, whole, left_out = await _bounded_and_whole(
            db, sql, "_PRUNE_FILES_OVER", "files_left_out")
        assert left_out == 3
        assert bounded == whole == sorted(
            ({"host": f"h{h}", "n": 60, "m": 2.5} for h in range(30)), key=lambda r: r["host"])


@pytest.mark.parametrize("overwrites", [False, True])
async def test_same_answers_with_buffered_batches_outside_the_bounds_left_out(
        tmp_path: Path, overwrites: bool) -> None:
    """An hour of 50 hosts every second in the buffer (180,000 rows, in time order, by 90
    writes: the buffer keeps them as batches of 64 Ki rows): a query of the last minutes
    leaves out the older batches and answers as if it had read them all. With a write
    that rewrites old points, the buffer is merged first; the answers stay the same."""
    # (without the buffer's 64 Ki-row batches, 90 writes end as one batch: nothing to
    # leave out)
    config = make_config(tmp_path, compaction_interval=0, wal_snapshot_size=10**7)
    rng = random.Random(11)
    now = time.time_ns() // S * S
    start = now - 3600 * S
    async with open_database(config) as db:
        for part in range(90):
            await db.write_lp("db", "\n".join(
                f"cpu,host=h{h} v={rng.random():.4f} {start + t * S + h}"
                for t in range(part * 40, part * 40 + 40) for h in range(50)))
        if overwrites:  # (rewrites the first minute's points of five hosts)
            await db.write_lp("db", "\n".join(
                f"cpu,host=h{h} v=-1 {start + t * S + h}" for t in range(60) for h in range(5)))
        assert db.snapshot_for_query("db").most_buffered_rows > \
            query_engine._PRUNE_BUFFERED_ROWS_OVER
        cut = now - 7 * MIN - 3 * S
        queries = [
            (f"SELECT count(*) AS n, sum(v) AS s FROM cpu WHERE time >= to_timestamp_nanos({cut})",
             True),
            (f"SELECT host, max(v) AS m FROM cpu WHERE host = 'h3' AND time > "
             f"to_timestamp_nanos({cut}) GROUP BY host", True),
            (f"SELECT count(*) AS n, min(v) AS m FROM cpu WHERE time < to_timestamp_nanos("
             f"{start + 90 * S})", True),
            ("SELECT count(*) AS n FROM cpu", False),
            (f"SELECT count(*) AS n FROM cpu WHERE time >= to_timestamp_nanos({cut}) "
             "OR host = 'h3'", False),
        ]
        for sql, prunes in queries:
            for _ in range(2):  # (the second time from the providers and ranges kept)
                bounded, every_batch, left_out = await _bounded_and_whole(
                    db, sql, "_PRUNE_BUFFERED_ROWS_OVER", "batches_left_out")
            assert _approx(every_batch) == bounded, sql
            # (merged, the rows are in the merge's order: whether batches can be left out
            # depends on it; never where the statement does not bound time)
            assert (left_out > 0) == prunes if not overwrites else left_out == 0 or prunes, \
                (sql, left_out)
        (row,) = (await db.query("db", f"SELECT count(*) AS n FROM cpu WHERE time < "
                                      f"to_timestamp_nanos({start + 60 * S})")).to_pylist()
        assert row["n"] == 60 * 50
