"""Parquet laid out for time-series queries (issue #12), through a real server.

Persisted files are sorted by series key (the tag with the most values first) and
time, and carry a page index (each page's min/max per column), so a query on one
series reads a page or two per column instead of every row of the row group. Thousands of series with near-now nanosecond times,
written, snapshotted and compacted by the server itself; then the files it stored are
opened, and DataFusion's own scan metrics (`EXPLAIN ANALYZE`) say how many rows a
one-host query had to decode. A closed day compacted into one file keeps each host's
rows of the whole day together.
"""

from __future__ import annotations

import io
import re
import time

import pyarrow.parquet as pq
import pytest

from conftest import WeirServer
from support.persisted import SNAPSHOT_EVERY_FLUSH, wait_persisted, write_ok
from support.storage_helpers import stored_parquet, wait_for

DB = "layout"
NS = 10**9
HOSTS = 2_000
POINTS = 30  # per host, 10 s apart: 60,000 rows, one 128 Ki-row group per file
STEP = 10 * NS


def _lines(start: int) -> list[str]:
    # TSBS-like: tags a host determines, some named before `host` (which must still
    # come first in the files' order: it has the most values)
    return [f"cpu,arch=a{h % 3},datacenter=d{h % 5},host=h{h:05d},region=r{h % 7} "
            f"usage={(h * 31 + i) % 100}.5,n={i}i "
            f"{start + i * STEP + h}"
            for i in range(POINTS) for h in range(HOSTS)]


def _write_and_persist(server: WeirServer) -> int:
    start = time.time_ns() - POINTS * STEP - 60 * NS
    lines = _lines(start)
    for k in range(0, len(lines), 10_000):
        write_ok(server, DB, "\n".join(lines[k:k + 10_000]), precision="ns")
    wait_persisted(server, DB, {"cpu": len(lines)})
    return start


@pytest.mark.both_stores
@pytest.mark.usefixtures("store_kind")
def test_every_stored_parquet_file_has_a_page_index_and_series_sorted_pages(
        server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(extra_args=SNAPSHOT_EVERY_FLUSH).start()
    _write_and_persist(server)
    files = sorted(stored_parquet(server))
    assert files, "no Parquet file stored"
    for path in files:
        parquet = pq.ParquetFile(io.BytesIO(server.read_object(path)))
        meta = parquet.metadata
        for rg in range(meta.num_row_groups):
            group = meta.row_group(rg)
            for c in range(group.num_columns):
                chunk = group.column(c)
                assert chunk.has_column_index and chunk.has_offset_index, \
                    f"{path}: row group {rg}, column {chunk.path_in_schema}: no page index"
        table = parquet.read()
        if "host" not in table.column_names:
            continue
        # series key order: each host's rows are one run, in time order
        hosts = table.column("host").to_pylist()
        runs = [h for i, h in enumerate(hosts) if i == 0 or hosts[i - 1] != h]
        assert len(runs) == len(set(runs)), f"{path}: a host's rows are not adjacent"
        times = table.column("time").cast("int64").to_pylist()
        assert all(times[i] <= times[i + 1] for i in range(len(times) - 1)
                   if hosts[i] == hosts[i + 1]), f"{path}: a host's rows are out of time order"


def _scan_metric(plan: str, name: str) -> tuple[int, int, int]:
    """`name=<total> total → <matched> matched`, summed over the plan's Parquet scans,
    and how many scans there were."""
    found = re.findall(name + r"=([\d.]+) ?(K|M)? total → ([\d.]+) ?(K|M)? matched", plan)
    assert found, f"no {name} in the plan:\n{plan}"
    scale = {"": 1, "K": 1_000, "M": 1_000_000}
    return (sum(round(float(t) * scale[tu]) for t, tu, _, _ in found),
            sum(round(float(m) * scale[mu]) for _, _, m, mu in found), len(found))


@pytest.mark.file_only("DataFusion's own Parquet reader (and its scan metrics) reads the "
                       "file store; S3 files go through pyarrow's dataset")
def test_a_one_host_query_decodes_only_that_hosts_pages(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(extra_args=SNAPSHOT_EVERY_FLUSH).start()
    start = _write_and_persist(server)
    host = "h01234"
    sql = (f"SELECT time, usage FROM cpu WHERE host = '{host}' "
           f"AND time >= to_timestamp_nanos({start}) "
           f"AND time < to_timestamp_nanos({start + POINTS * STEP + NS}) ORDER BY time")
    # everything is in Parquet now; the same after a restart, reading the files it left
    for when in ("as written", "after a restart"):
        if when == "after a restart":
            server.restart()
        got = server.rows(DB, sql)
        assert [r["usage"] for r in got] == \
            [(1234 * 31 + i) % 100 + 0.5 for i in range(POINTS)], when
        r = server.query(DB, "EXPLAIN ANALYZE " + sql)
        assert r.status_code == 200, r.text
        plan = "\n".join(str(v) for row in r.json() for v in row.values())
        total, matched, scans = _scan_metric(plan, "page_index_rows_pruned")
        assert total >= HOSTS * POINTS, plan
        # one host's rows of a file lie in one or two 2,048-row pages of its row group
        assert matched <= scans * 2 * 2048 < total, \
            f"{when}: decoded {matched} of {total} rows in {scans} files for one host:\n{plan}"


@pytest.mark.file_only("DataFusion's own Parquet reader (and its scan metrics) reads the "
                       "file store; S3 files go through pyarrow's dataset")
def test_a_compacted_day_keeps_each_hosts_rows_together(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A day two days ago, written an hour at a time: the compactor makes its ten-minute
    windows, hours and then the day one file, sorted by host across the whole day, so
    one host's 12 hours are a page or two per column (copied window after window, they
    were a page in each of 72 ten-minute row groups)."""
    server = server_factory(extra_args=[*SNAPSHOT_EVERY_FLUSH,
                                        "--compaction-interval", "200ms"]).start()
    hosts, step = 300, 300 * NS  # every 5 minutes: 288 points per host, 86,400 rows
    day = (time.time_ns() // (86_400 * NS) - 2) * 86_400 * NS
    for hour in range(24):
        write_ok(server, DB, "\n".join(
            f"cpu,host=h{h:04d},region=r{h % 7} usage={(h + i) % 100}.25 "
            f"{day + (hour * 12 + i) * step + h}" for i in range(12) for h in range(hosts)),
            precision="ns")
    wait_persisted(server, DB, {"cpu": hosts * 288})

    def one_day_file() -> bool:
        files = server.rows(DB, "SELECT path, row_count FROM system.parquet_files "
                                "WHERE table_name = 'cpu'")
        return len(files) == 1 and files[0]["row_count"] == hosts * 288

    wait_for(one_day_file, timeout=120, what="the day compacted into one file")
    host, first = "h0123", 100
    sql = (f"SELECT time, usage FROM cpu WHERE host = '{host}' "
           f"AND time >= to_timestamp_nanos({day + first * step}) "
           f"AND time < to_timestamp_nanos({day + (first + 144) * step}) ORDER BY time")
    # the same after a restart, reading the day file the first server left
    for when in ("as compacted", "after a restart"):
        if when == "after a restart":
            server.restart()
        got = server.rows(DB, sql)
        assert [r["usage"] for r in got] == [(123 + i % 12) % 100 + 0.25
                                             for i in range(first, first + 144)], when
        r = server.query(DB, "EXPLAIN ANALYZE " + sql)
        assert r.status_code == 200, r.text
        plan = "\n".join(str(v) for row in r.json() for v in row.values())
        total, matched, scans = _scan_metric(plan, "page_index_rows_pruned")
        assert scans == 1 and total >= 2048, plan
        assert matched <= 2 * 2048, \
            f"{when}: decoded {matched} rows for one host's 144:\n{plan}"
