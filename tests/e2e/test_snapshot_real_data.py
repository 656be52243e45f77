"""Snapshots on production-shaped data, end to end through a real server.

Until commit eb9bdcc no snapshot of a near-now nanosecond timestamp ever succeeded, and
the suite never noticed: the tests that snapshotted used toy timestamps. Every test here
writes thousands of series with near-now nanosecond times (tests/support/datagen.py),
makes the server snapshot for real (there is no "snapshot now" API: a snapshot per WAL
file, or the buffer-size trigger), watches `system.parquet_files`, and checks what users
see: SQL and InfluxQL answers, row for row, against the rows the generator wrote.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import pytest

from support.datagen import CPU, ESCAPED, GEN1_NS, Dataset, Row, generate, rfc3339_ns
from support.persisted import (
    SNAPSHOT_EVERY_FLUSH,
    parquet_files,
    wait_persisted,
    write_ok,
)

# every test on the file store and on S3 (issue #13)
pytestmark = [pytest.mark.both_stores, pytest.mark.usefixtures("store_kind")]

DB = "prod"
NS = 10**9
# a snapshot only when the buffer passes its byte bound, or after this many WAL files
NO_SNAPSHOT = ["--wal-flush-interval", "10ms", "--wal-snapshot-size", "100000"]
# the tests of what one snapshot writes look at its gen1 files before the compactor
# merges runs of small ones
GEN1_FILES_ONLY = [*SNAPSHOT_EVERY_FLUSH, "--compaction-interval", "0s"]


def _rows_of(data: Dataset) -> dict[str, int]:
    return {t: len(data.table_rows(t)) for t in data.tables}


def _canon(row: dict[str, Any], tag_keys: tuple[str, ...]) -> tuple:
    return (row["time"], tuple(row.get(k) or "" for k in tag_keys))


def assert_table_holds(server: Any, db: str, table: str, rows: list[Row], what: str) -> None:
    """`SELECT *` of `table` equals `rows` exactly: every row once, every value, nulls."""
    from support.datagen import TABLES, iso_ns

    spec = TABLES[table]
    got = server.rows(db, f'SELECT * FROM "{table}"')
    expected = []
    for r in rows:
        d = {k: v for k, v in {**r.tags, **r.fields}.items() if v is not None}
        d["time"] = iso_ns(r.time)
        expected.append(d)
    got.sort(key=lambda r: _canon(r, spec.tag_keys))
    expected.sort(key=lambda r: _canon(r, spec.tag_keys))
    assert len(got) == len(expected), f"{what}: {len(got)} rows, expected {len(expected)}"
    bad = [(g, e) for g, e in zip(got, expected, strict=True) if g != e]
    assert not bad, f"{what}: {len(bad)} rows differ, first: {bad[0]}"


def assert_counts(server: Any, db: str, rows: list[Row], what: str) -> None:
    """count, min(time), max(time) per table, and no (series, time) twice."""
    by_table: dict[str, list[Row]] = {}
    for r in rows:
        by_table.setdefault(r.table, []).append(r)
    for table, rs in by_table.items():
        [got] = server.rows(db, f'SELECT count(*) AS n, CAST(min(time) AS BIGINT) AS lo, '
                                f'CAST(max(time) AS BIGINT) AS hi FROM "{table}"')
        assert got == {"n": len(rs), "lo": min(r.time for r in rs),
                       "hi": max(r.time for r in rs)}, f"{what}: {table}"


def v1(server: Any, q: str, db: str = DB) -> list[dict]:
    r = httpx.get(f"{server.url}/query", params={"db": db, "q": q}, timeout=60)
    assert r.status_code == 200, r.text
    [res] = r.json()["results"]
    assert "error" not in res, res
    return res.get("series", [])


# ---- Parquet written by the real snapshot, queried at real times ---------------------------


def test_real_snapshot_parquet_holds_every_row_and_value(server_factory) -> None:
    data = generate(seed=101)  # 2,000 cpu series, 50 escaped ones, 25 minutes up to now
    assert len(data.series(CPU)) == 2000
    s = server_factory(extra_args=SNAPSHOT_EVERY_FLUSH).start()
    write_ok(s, DB, data.lp())
    files = wait_persisted(s, DB, _rows_of(data))
    assert {f["table_name"] for f in files} == {CPU, ESCAPED}
    s.restart()  # from Parquet alone
    for table in (CPU, ESCAPED):
        assert_table_holds(s, DB, table, data.table_rows(table), f"{table} from Parquet")
    assert_counts(s, DB, data.rows, "from Parquet")
    # a time range at real times: only the files and rows inside it
    cpu = data.table_rows(CPU)
    lo, hi = cpu[len(cpu) // 3].time, cpu[2 * len(cpu) // 3].time
    [got] = s.rows(DB, f"SELECT count(*) AS n FROM cpu WHERE time >= "
                       f"to_timestamp_nanos({lo}) AND time < to_timestamp_nanos({hi})")
    assert got["n"] == sum(lo <= r.time < hi for r in cpu)
    host = s.rows(DB, "SELECT cores, uptime, usage, time FROM cpu WHERE host = 'host-00042' "
                      "AND region = 'region-007' ORDER BY time")
    want = sorted((r for r in cpu if r.tags == {"host": "host-00042", "region": "region-007"}),
                  key=lambda r: r.time)
    assert [(h.get("cores"), h.get("uptime"), h.get("usage")) for h in host] == [
        (r.fields.get("cores"), r.fields.get("uptime"), r.fields.get("usage")) for r in want]


# ---- several tables and gen1 windows in one snapshot; window boundaries -------------------


def _assert_files_per_window(files: list[dict], data: Dataset) -> None:
    for table in data.tables:
        windows = data.windows(table)
        mine = [f for f in files if f["table_name"] == table]
        by_window: dict[int, list[dict]] = {}
        for f in mine:
            w = f["min_time"] - f["min_time"] % data.gen1_ns
            assert f["max_time"] < w + data.gen1_ns, f"{f} spans more than its gen1 window"
            by_window.setdefault(w, []).append(f)
        assert sorted(by_window) == sorted(windows), f"{table}: windows of the files"
        for w, rows in windows.items():
            [f] = by_window[w]  # one file per table per window
            assert f["row_count"] == len(rows), (table, w)
            assert f["min_time"] == min(r.time for r in rows), (table, w)
            assert f["max_time"] == max(r.time for r in rows), (table, w)


def test_one_snapshot_of_several_tables_and_windows(server_factory) -> None:
    # 25 minutes of data: three or four 10-minute windows, two tables, one WAL file
    data = generate(seed=102, boundary_rows=True)
    assert len(data.windows(CPU)) >= 3
    s = server_factory(extra_args=GEN1_FILES_ONLY).start()
    write_ok(s, DB, data.lp())
    files = wait_persisted(s, DB, _rows_of(data))
    _assert_files_per_window(files, data)
    s.restart()
    _assert_files_per_window(parquet_files(s, DB), data)
    assert_counts(s, DB, data.rows, "after restart")


def test_rows_at_and_just_before_a_window_boundary_land_in_the_right_files(
        server_factory) -> None:
    gen1 = 60 * NS  # one-minute windows: many boundaries, each with edge rows at b-1 and b
    data = generate(seed=103, hosts=40, regions=25, span_ns=5 * 60 * NS, gen1_ns=gen1,
                    boundary_rows=True)
    [b] = data.boundaries
    s = server_factory(extra_args=[*GEN1_FILES_ONLY, "--gen1-duration", "1m"]).start()
    write_ok(s, DB, data.lp())
    files = wait_persisted(s, DB, _rows_of(data))
    _assert_files_per_window(files, data)
    for table in data.tables:
        mine = {f["min_time"] - f["min_time"] % gen1: f for f in files
                if f["table_name"] == table}
        assert mine[b - gen1]["max_time"] == b - 1, f"{table}: b-1 left its window"
        assert mine[b]["min_time"] == b, f"{table}: b is not the first ns of its window"
    s.restart()
    edge = [r for r in data.table_rows(CPU) if r.time in (b - 1, b)]
    got = s.rows(DB, f"SELECT host, region, CAST(time AS BIGINT) AS t FROM cpu WHERE "
                     f"time >= to_timestamp_nanos({b - 1}) AND time <= to_timestamp_nanos({b})")
    assert sorted((g["host"], g.get("region"), g["t"]) for g in got) == sorted(
        (r.tags["host"], r.tags.get("region"), r.time) for r in edge)


# ---- Parquet plus buffer: InfluxQL, replay, kill -9 ----------------------------------------


def _two_parts(seed: int) -> tuple[Dataset, Dataset]:
    """Two data sets over the same series and the same 25 minutes (so the same gen1
    windows hold rows in Parquet and in the buffer), with no point in common."""
    now = time.time_ns()
    a = generate(seed=seed, now_ns=now, hosts=50, regions=40)
    b = generate(seed=seed + 1, now_ns=now, hosts=50, regions=40)
    assert not {r.key for r in a.rows} & {r.key for r in b.rows}
    return a, b


def _snapshot_then_buffer(server_factory, a: Dataset, b: Dataset):  # type: ignore[no-untyped-def]
    """`a` in Parquet (snapshot per WAL file), then a restart that snapshots no more,
    then `b` written: in the WAL and the buffer only."""
    s = server_factory(extra_args=SNAPSHOT_EVERY_FLUSH).start()
    write_ok(s, DB, a.lp())
    wait_persisted(s, DB, _rows_of(a))
    # (the flags before ours, if any, open the S3 bucket: kept)
    s.extra_args = [*s.extra_args[:len(s.extra_args) - len(SNAPSHOT_EVERY_FLUSH)],
                    *NO_SNAPSHOT]
    s.restart()
    write_ok(s, DB, b.lp())
    assert sum(f["row_count"] for f in parquet_files(s, DB)) == len(a.rows)
    return s


def test_influxql_over_parquet_plus_buffer(server_factory) -> None:
    a, b = _two_parts(201)
    s = _snapshot_then_buffer(server_factory, a, b)
    cpu = a.table_rows(CPU) + b.table_rows(CPU)
    # count per host: every host has rows in both
    want = Counter(r.tags["host"] for r in cpu if "usage" in r.fields)
    got = {x["tags"]["host"]: x["values"][0][1]
           for x in v1(s, "SELECT count(usage) FROM cpu GROUP BY host")}
    assert got == dict(want)
    # GROUP BY time(5m) at real times across both
    five = 5 * 60 * NS
    lo = min(r.time for r in cpu) // five * five
    hi = (max(r.time for r in cpu) // five + 1) * five
    per = Counter(r.time - r.time % five for r in cpu)
    [series] = v1(s, f"SELECT count(cores) FROM cpu WHERE time >= {lo} AND time < {hi} "
                     "GROUP BY time(5m)")
    assert series["values"] == [[rfc3339_ns(t), per.get(t, 0)] for t in range(lo, hi, five)]
    # selectors pick across Parquet and buffer: the last point of a series, max of all
    key = {"host": "host-00007", "region": "region-011"}
    last = max((r for r in cpu if r.tags == key), key=lambda r: r.time)
    [series] = v1(s, "SELECT last(cores) FROM cpu WHERE host = 'host-00007' AND "
                     "region = 'region-011'")
    assert series["values"] == [[rfc3339_ns(last.time), last.fields["cores"]]]
    top = max(r.fields["uptime"] for r in cpu if "uptime" in r.fields)
    [series] = v1(s, "SELECT max(uptime) FROM cpu")
    assert series["values"][0][1] == top


def test_replay_with_parquet_present_gives_every_row_once(server_factory) -> None:
    a, b = _two_parts(301)
    s = _snapshot_then_buffer(server_factory, a, b)
    s.restart()  # replays b's WAL file beside a's Parquet
    for table in (CPU, ESCAPED):
        assert_table_holds(s, DB, table, a.table_rows(table) + b.table_rows(table),
                           f"{table} after replay with Parquet present")


def test_kill9_after_a_snapshot_loses_and_doubles_nothing(server_factory) -> None:
    a, b = _two_parts(401)
    s = server_factory(extra_args=SNAPSHOT_EVERY_FLUSH).start()
    write_ok(s, DB, a.lp())
    wait_persisted(s, DB, _rows_of(a))
    # b acknowledged (durable in the WAL); its snapshot may be running or not started
    for part in b.chunks(4):
        write_ok(s, DB, part)
    s.kill9()
    s.start()
    for table in (CPU, ESCAPED):
        assert_table_holds(s, DB, table, a.table_rows(table) + b.table_rows(table),
                           f"{table} after kill -9")
    s.restart()
    assert_counts(s, DB, a.rows + b.rows, "after kill -9 and a clean restart")


# ---- last write wins across a snapshot ----------------------------------------------------

def test_overwrites_in_one_write_are_one_point(server_factory) -> None:
    data = generate(seed=701, hosts=20, regions=10, overwrites=300)
    s = server_factory(extra_args=["--wal-flush-interval", "10ms"]).start()
    write_ok(s, DB, data.lp())
    for table in data.tables:
        assert_table_holds(s, DB, table, data.table_rows(table), f"{table} in the buffer")


def test_overwrites_after_a_snapshot_replace_the_persisted_fields(server_factory) -> None:
    data = generate(seed=702, hosts=20, regions=10, overwrites=300)
    s = server_factory(extra_args=SNAPSHOT_EVERY_FLUSH).start()
    write_ok(s, DB, data.base_lp())
    wait_persisted(s, DB, _rows_of(data))  # every point once, before the overwrites
    write_ok(s, DB, data.overwrites_lp())  # into the buffer, then their own snapshot
    for table in data.tables:
        assert_table_holds(s, DB, table, data.table_rows(table), f"{table}, Parquet + buffer")
    s.restart()
    for table in data.tables:
        assert_table_holds(s, DB, table, data.table_rows(table), f"{table} after restart")


# ---- schema change across a snapshot -----------------------------------------------------


def test_column_added_after_a_snapshot_is_null_in_old_rows(server_factory) -> None:
    a = generate(seed=501, tables=(CPU,), hosts=40, regions=50)
    s = server_factory(extra_args=SNAPSHOT_EVERY_FLUSH).start()
    write_ok(s, DB, a.lp())
    wait_persisted(s, DB, _rows_of(a))
    # a new field and a new tag on the same hosts, later than every row of `a`
    t_new = time.time_ns() - NS // 2
    new = [f"cpu,host=host-{i:05d},region=region-000,rack=r{i % 3} usage={i}.5,"
           f"temp={20 + i % 7}.25 {t_new + i}" for i in range(500)]
    write_ok(s, DB, "\n".join(new))
    total = len(a.rows) + len(new)

    def check(what: str) -> None:
        [got] = s.rows(DB, "SELECT count(*) AS n, count(temp) AS t, count(rack) AS r "
                           "FROM cpu")
        assert got == {"n": total, "t": len(new), "r": len(new)}, what
        [old] = s.rows(DB, f"SELECT count(*) AS n FROM cpu WHERE temp IS NULL AND rack IS "
                           f"NULL AND time < to_timestamp_nanos({t_new})")
        assert old["n"] == len(a.rows), what
        rows = s.rows(DB, "SELECT * FROM cpu WHERE host = 'host-00001' AND region = "
                          "'region-000' ORDER BY time")
        assert all("temp" not in r and "rack" not in r for r in rows[:-1]), what
        assert rows[-1]["temp"] == 21.25 and rows[-1]["rack"] == "r1", what
        series = v1(s, "SELECT temp, usage FROM cpu WHERE host = 'host-00002' AND "
                       "region = 'region-000'")
        assert [v[1] for v in series[0]["values"]][:-1] == [None] * (
            len(series[0]["values"]) - 1), what
        assert series[0]["values"][-1][1:] == [22.25, 2.5], what

    check("old rows in Parquet, new ones in the buffer")
    wait_persisted(s, DB, {CPU: total})
    s.restart()
    check("old and new rows in Parquet files of two schemas")


# ---- the buffer-size snapshot trigger ------------------------------------------------------


def _snapshot_by_buffer_size(server_factory, data: Dataset):  # type: ignore[no-untyped-def]
    s = server_factory(extra_args=[*NO_SNAPSHOT, "--force-snapshot-bytes", "256k"]).start()
    parts = data.chunks(8)
    for part in parts:
        write_ok(s, DB, part)
    deadline = time.monotonic() + 90
    while not parquet_files(s, DB):
        assert time.monotonic() < deadline, (
            f"no Parquet file after {len(parts)} writes past a 256 KiB buffer bound with "
            f"--wal-snapshot-size 100000:\n{s.log()[-3000:]}")
        time.sleep(0.1)
    return s


def test_buffer_size_trigger_snapshots_without_the_file_count(server_factory) -> None:
    data = generate(seed=601)
    s = _snapshot_by_buffer_size(server_factory, data)
    assert_counts(s, DB, data.rows, "buffer plus Parquet")
    for table in (CPU, ESCAPED):
        assert_table_holds(s, DB, table, data.table_rows(table), f"{table}, buffer + Parquet")


def test_restart_after_a_buffer_size_snapshot(server_factory) -> None:
    data = generate(seed=601)
    s = _snapshot_by_buffer_size(server_factory, data)
    s.restart()
    for table in (CPU, ESCAPED):
        assert_table_holds(s, DB, table, data.table_rows(table), f"{table} after restart")


@pytest.mark.parametrize("gen1", [GEN1_NS])
def test_generator_windows_match_integer_arithmetic(gen1: int) -> None:
    # the expectations above rest on this: b - 1 and b fall in different windows
    data = generate(seed=7, hosts=2, regions=2, boundary_rows=True, gen1_ns=gen1)
    [b] = data.boundaries
    windows = data.windows(CPU)
    assert b in windows and b - gen1 in windows
    assert max(r.time for r in windows[b - gen1]) == b - 1
    assert min(r.time for r in windows[b]) == b
