"""The DataFusion query engine over snapshots: real Parquet files in tmp_path plus
in-memory buffer batches, system tables, parameters, the SQL the plugin corpus sends,
and the reference's error texts and statuses."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from weir.errors import QueryError
from weir.query import (
    DatabaseSnapshot,
    ParquetFileRef,
    QueryEngine,
    SqlQueryError,
    TableSnapshot,
    legacy_type_name,
    table_to_pylist,
)
from weir.server.errors import query_status as _status  # the kinds as HTTP statuses
from weir.system_tables import SystemTable

TAG = pa.dictionary(pa.int32(), pa.string())
NS = pa.timestamp("ns")
S = 1_000_000_000  # one second in ns
T0 = 1_747_396_800 * S  # 2025-05-16T12:00:00Z

# The table's full current schema, in catalog order (tags, fields, time); `extra` is a
# newer field that the first Parquet file and the first buffer batch lack.
CPU_SCHEMA = pa.schema([
    pa.field("host", TAG), pa.field("region", TAG),
    pa.field("usage", pa.float64()), pa.field("count", pa.int64()),
    pa.field("ok", pa.bool_()), pa.field("extra", pa.float64()),
    pa.field("time", NS),
])
SELECT_STAR = ["count", "extra", "host", "ok", "region", "time", "usage"]


def _ts(values: list[int]) -> pa.Array:
    return pa.array(values, NS)


def _write(path: Path, table: pa.Table) -> ParquetFileRef:
    pq.write_table(table, path)
    times = table.column("time").cast(pa.int64()).to_pylist()
    return ParquetFileRef(str(path), min(times), max(times), table.num_rows,
                          path.stat().st_size)


class Calls:
    """A system-table builder that counts how often it was built."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.n = 0

    def __call__(self) -> pa.Table:
        self.n += 1
        return self.table


@pytest.fixture
def snap(tmp_path: Path) -> DatabaseSnapshot:
    # file 1: hours 0-1, old schema (no `extra`), tags stored as plain strings
    f1 = _write(tmp_path / "cpu-1.parquet", pa.table({
        "host": ["a", "b"], "region": ["us", "eu"], "usage": [1.0, 2.0],
        "count": [1, 2], "ok": [True, False], "time": _ts([T0, T0 + 3600 * S]),
    }))
    # file 2: hour 2, with `extra`, tags dictionary-encoded
    f2 = _write(tmp_path / "cpu-2.parquet", pa.table({
        "host": pa.array(["a"]).cast(TAG), "region": pa.array(["us"]).cast(TAG),
        "usage": [3.0], "count": [3], "ok": [True], "extra": [0.5],
        "time": _ts([T0 + 7200 * S]),
    }))
    # buffer: hours 3 and 4; the first batch predates `extra`
    b1 = pa.record_batch({
        "host": pa.array(["b"]).cast(TAG), "region": pa.array(["eu"]).cast(TAG),
        "usage": [4.0], "count": [4], "ok": [False], "time": _ts([T0 + 3 * 3600 * S]),
    })
    b2 = pa.record_batch({
        "host": pa.array(["c"]).cast(TAG), "region": pa.array([None], pa.string()).cast(TAG),
        "usage": [5.0], "count": [None], "ok": [None], "extra": [1.5],
        "time": _ts([T0 + 4 * 3600 * S]),
    })
    mem_schema = pa.schema([pa.field("host", TAG), pa.field("v", pa.float64()),
                            pa.field("time", NS)])
    mem = pa.record_batch({"host": pa.array(["x", "y"]).cast(TAG), "v": [1.5, 2.5],
                           "time": _ts([T0, T0 + S])}, schema=mem_schema)
    tables = {
        "cpu": TableSnapshot("cpu", CPU_SCHEMA, [b1, b2], [f1, f2]),
        "mem": TableSnapshot("mem", mem_schema, [mem], []),
        "disk": TableSnapshot("disk", mem_schema, [], [_write(
            tmp_path / "disk.parquet",
            pa.table({"host": ["d"], "v": [9.0], "time": _ts([T0])}))]),
        "empty": TableSnapshot("empty", mem_schema, [], []),
        "_system.model_checkpoints": TableSnapshot(
            "_system.model_checkpoints", mem_schema, [mem], []),
    }
    counted = {
        "queries": Calls(pa.table({"id": ["q1"], "query_text": ["SELECT 1"],
                                   "issue_time": _ts([T0])})),
        "parquet_files": Calls(pa.table({"table_name": ["cpu"], "path": ["x"],
                                         "size_bytes": pa.array([1], pa.uint64())})),
        "processing_engine_logs": Calls(pa.table({
            "event_time": _ts([T0]), "trigger_name": ["t"], "log_level": ["INFO"],
            "log_text": ["hello"]})),
    }
    system = {name: SystemTable(c.table.schema, c) for name, c in counted.items()}
    return DatabaseSnapshot("db", tables, pafs.LocalFileSystem(), system)


@pytest.fixture(scope="module")
def engine() -> QueryEngine:
    return QueryEngine(timeout=30)


def rows(engine: QueryEngine, snap: DatabaseSnapshot, sql: str,
         params: dict | None = None) -> list[dict]:
    return table_to_pylist(engine.execute(snap, sql, params))


def error(engine: QueryEngine, snap: DatabaseSnapshot, sql: str,
          params: dict | None = None) -> QueryError:
    with pytest.raises(QueryError) as info:
        engine.execute(snap, sql, params)
    return info.value


# ---- tables: buffer ∪ Parquet --------------------------------------------------------------


def test_select_star_unions_files_and_buffer_in_alphabetical_column_order(engine, snap):
    t = engine.execute(snap, "SELECT * FROM cpu ORDER BY time")
    assert t.column_names == SELECT_STAR
    got = table_to_pylist(t)
    assert [r["usage"] for r in got] == [1.0, 2.0, 3.0, 4.0, 5.0]
    # rows written before `extra` existed read it as NULL (file 1, buffer batch 1)
    assert [r["extra"] for r in got] == [None, None, 0.5, None, 1.5]
    assert [r["host"] for r in got] == ["a", "b", "a", "b", "c"]
    assert got[4]["region"] is None and got[4]["count"] is None
    assert got[0]["time"] == T0
    assert t.schema.field("host").type == TAG
    assert t.schema.field("time").type == NS


def test_buffer_only_files_only_and_empty_tables(engine, snap):
    assert rows(engine, snap, "SELECT host, v FROM mem ORDER BY v") == [
        {"host": "x", "v": 1.5}, {"host": "y", "v": 2.5}]
    assert rows(engine, snap, "SELECT * FROM disk") == [{"host": "d", "time": T0, "v": 9.0}]
    t = engine.execute(snap, "SELECT * FROM empty")
    assert t.num_rows == 0 and t.column_names == ["host", "time", "v"]


def test_a_missing_parquet_file_is_an_error_not_fewer_rows(engine, snap):
    """Local files are read by DataFusion's own Parquet reader, which would take a path
    that is not there for an empty one: a lost file must fail the query, naming it."""
    os.remove(snap.tables["cpu"].files[0].path)  # file 1 holds hours 0-1 only
    for sql in ("SELECT * FROM cpu",
                "SELECT usage FROM cpu WHERE time >= '2025-05-16T14:00:00Z'"):
        err = error(engine, snap, sql)
        assert _status(err) == 500 and "cpu-1.parquet" in str(err)
        assert "missing" in str(err)


def test_quoted_and_dotted_table_names(engine, snap):
    assert len(rows(engine, snap, "SELECT * FROM 'cpu'")) == 5
    assert len(rows(engine, snap, 'SELECT * FROM "cpu"')) == 5
    assert len(rows(engine, snap, 'SELECT * FROM "_system.model_checkpoints"')) == 2
    assert len(rows(engine, snap, "SELECT * FROM '_system.model_checkpoints'")) == 2
    assert len(rows(engine, snap, "SELECT * FROM iox.cpu")) == 5
    assert len(rows(engine, snap, "SELECT * FROM public.iox.cpu")) == 5


# ---- parameters ----------------------------------------------------------------------------


def test_string_params_compare_with_time_tags_and_numbers(engine, snap):
    got = rows(engine, snap, "SELECT usage FROM cpu WHERE time > $start ORDER BY time",
               {"start": "2025-05-16T14:00:00Z"})
    assert [r["usage"] for r in got] == [4.0, 5.0]
    got = rows(engine, snap, "SELECT usage FROM cpu WHERE time >= $a AND time < $b",
               {"a": "2025-05-16 12:00:00+00:00", "b": "2025-05-16T13:00:00.000000Z"})
    assert got == [{"usage": 1.0}]
    got = rows(engine, snap, "SELECT usage FROM cpu WHERE host = $host ORDER BY usage",
               {"host": "a"})
    assert [r["usage"] for r in got] == [1.0, 3.0]
    got = rows(engine, snap, "SELECT usage FROM cpu WHERE host IN ($h1, $h2) ORDER BY usage",
               {"h1": "b", "h2": "c"})
    assert [r["usage"] for r in got] == [2.0, 4.0, 5.0]
    got = rows(engine, snap, "SELECT usage FROM cpu WHERE usage > $v ORDER BY usage",
               {"v": "3.5"})
    assert [r["usage"] for r in got] == [4.0, 5.0]
    got = rows(engine, snap, "SELECT usage FROM cpu WHERE count >= $n ORDER BY usage",
               {"n": "3"})
    assert [r["usage"] for r in got] == [3.0, 4.0]
    got = rows(engine, snap, "SELECT arrow_cast($p, 'Int64') + 1 AS x", {"p": "41"})
    assert got == [{"x": 42}]


def test_json_typed_params(engine, snap):
    assert rows(engine, snap, "SELECT usage FROM cpu WHERE count = $n", {"n": 2}) == [
        {"usage": 2.0}]
    assert rows(engine, snap, "SELECT count(*) AS n FROM cpu WHERE usage > $v",
                {"v": 2.5}) == [{"n": 3}]
    assert rows(engine, snap, "SELECT count(*) AS n FROM cpu WHERE ok = $b",
                {"b": True}) == [{"n": 2}]
    assert rows(engine, snap, "SELECT count(*) AS n FROM cpu WHERE host = $h",
                {"h": None}) == [{"n": 0}]
    # unused parameters are ignored
    assert rows(engine, snap, "SELECT 1 AS one", {"unused": "x"}) == [{"one": 1}]


def test_missing_param_names_the_placeholder(engine, snap):
    for params in (None, {}, {"other": "x"}):
        err = error(engine, snap, "SELECT * FROM cpu WHERE host = $host", params)
        assert "No value found for placeholder with name $host" in str(err)
        assert _status(err) == 400


def test_unsupported_param_value_is_a_400(engine, snap):
    assert _status(error(engine, snap, "SELECT $x", {"x": [1, 2]})) == 400
    assert _status(error(engine, snap, "SELECT $x", {"x": 2**70})) == 400


# ---- catalog queries -----------------------------------------------------------------------


def test_show_tables_lists_user_system_and_information_schema(engine, snap):
    got = rows(engine, snap, "SHOW TABLES")
    listed = [(r["table_schema"], r["table_name"], r["table_type"]) for r in got]
    assert listed[:8] == [
        ("iox", "_system.model_checkpoints", "BASE TABLE"),
        ("iox", "cpu", "BASE TABLE"),
        ("iox", "disk", "BASE TABLE"),
        ("iox", "empty", "BASE TABLE"),
        ("iox", "mem", "BASE TABLE"),
        ("system", "parquet_files", "BASE TABLE"),
        ("system", "processing_engine_logs", "BASE TABLE"),
        ("system", "queries", "BASE TABLE"),
    ]
    assert [n for s, n, _t in listed if s == "information_schema"][:5] == [
        "tables", "views", "columns", "df_settings", "schemata"]
    assert {r["table_catalog"] for r in got} == {"public"}
    # listing system tables does not build them
    assert all(b.build.n == 0 for b in snap.system_tables.values())


def test_show_columns_and_information_schema_use_arrow_type_names(engine, snap):
    got = rows(engine, snap, "SHOW COLUMNS FROM cpu")
    assert [(r["column_name"], r["data_type"], r["is_nullable"]) for r in got] == [
        ("count", "Int64", "YES"), ("extra", "Float64", "YES"),
        ("host", "Dictionary(Int32, Utf8)", "YES"), ("ok", "Boolean", "YES"),
        ("region", "Dictionary(Int32, Utf8)", "YES"),
        ("time", "Timestamp(Nanosecond, None)", "NO"), ("usage", "Float64", "YES")]
    q = ("SELECT column_name FROM information_schema.columns WHERE table_name = $t "
         "AND data_type = $dt ORDER BY column_name")
    assert [r["column_name"] for r in rows(
        engine, snap, q, {"t": "cpu", "dt": "Dictionary(Int32, Utf8)"})] == ["host", "region"]
    assert rows(engine, snap, "SELECT column_name FROM information_schema.columns "
                              "WHERE table_name = 'cpu' AND "
                              "data_type = 'Timestamp(Nanosecond, None)'") == [
        {"column_name": "time"}]
    got = rows(engine, snap, "SELECT column_name FROM information_schema.columns "
                             "WHERE table_name = 'cpu' "
                             "AND data_type IN ('Int64', 'Float64', 'UInt64') "
                             "ORDER BY column_name")
    assert [r["column_name"] for r in got] == ["count", "extra", "usage"]
    got = rows(engine, snap, "SELECT column_name FROM information_schema.columns "
                             "WHERE table_name = 'cpu' "
                             "AND data_type != 'Dictionary(Int32, Utf8)'")
    assert len(got) == 5
    assert all(b.build.n == 0 for b in snap.system_tables.values())


def test_information_schema_covers_system_tables_when_asked(engine, snap):
    got = rows(engine, snap, "SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'system' AND table_name = 'queries'")
    assert got == [{"column_name": "id", "data_type": "Utf8"},
                   {"column_name": "query_text", "data_type": "Utf8"},
                   {"column_name": "issue_time", "data_type": "Timestamp(Nanosecond, None)"}]


def test_describe_and_show_settings(engine, snap):
    got = rows(engine, snap, "DESCRIBE cpu")
    assert {r["column_name"]: r["data_type"] for r in got}["time"] == \
        "Timestamp(Nanosecond, None)"
    got = rows(engine, snap, "SHOW datafusion.execution.batch_size")
    assert got[0]["name"] == "datafusion.execution.batch_size"


def test_legacy_type_names():
    assert legacy_type_name("Timestamp(ns)") == "Timestamp(Nanosecond, None)"
    assert legacy_type_name('Timestamp(ms, "UTC")') == 'Timestamp(Millisecond, Some("UTC"))'
    assert legacy_type_name("Time64(µs)") == "Time64(Microsecond)"
    assert legacy_type_name("Duration(s)") == "Duration(Second)"
    assert legacy_type_name("List(Timestamp(us))") == "List(Timestamp(Microsecond, None))"
    assert legacy_type_name("Dictionary(Int32, Utf8)") == "Dictionary(Int32, Utf8)"


# ---- system tables -------------------------------------------------------------------------


def test_system_tables_are_built_only_when_named(engine, snap):
    sys_tables = snap.system_tables
    rows(engine, snap, "SELECT * FROM cpu")
    assert all(b.build.n == 0 for b in sys_tables.values())
    got = rows(engine, snap, "SELECT id, issue_time FROM system.queries")
    assert got == [{"id": "q1", "issue_time": T0}]
    assert sys_tables["queries"].build.n == 1 and sys_tables["parquet_files"].build.n == 0
    got = rows(engine, snap, 'SELECT log_text FROM "system"."processing_engine_logs" '
                             "WHERE trigger_name = 't'")
    assert got == [{"log_text": "hello"}]
    assert sys_tables["parquet_files"].build.n == 0
    err = error(engine, snap, "SELECT * FROM system.nope")
    assert _status(err) == 400 and "system.nope" in str(err)


def test_failing_system_table_builder_is_a_query_error(engine, snap):
    def boom() -> pa.Table:
        raise RuntimeError("catalog unavailable")

    snap.system_tables["queries"] = SystemTable(snap.system_tables["queries"].schema, boom)
    err = error(engine, snap, "SELECT * FROM system.queries")
    assert _status(err) == 500 and "catalog unavailable" in str(err)


# ---- the SQL the plugin corpus sends -------------------------------------------------------


def test_time_literals_in_every_corpus_form(engine, snap):
    for literal in ("2025-05-16T14:00:00Z", "2025-05-16T14:00:00.000000Z",
                    "2025-05-16T14:00:00+00:00", "2025-05-16 14:00:00+00:00",
                    "2025-05-16T14:00:00"):
        got = rows(engine, snap, f"SELECT count(*) AS n FROM cpu WHERE time >= '{literal}'")
        assert got == [{"n": 3}], literal


def test_date_bin_two_and_three_arguments(engine, snap):
    q2 = ("SELECT date_bin(INTERVAL '2 hours', time) AS _time, count(*) AS n FROM cpu "
          "GROUP BY _time ORDER BY _time")
    q3 = ("SELECT DATE_BIN(INTERVAL '2 hours', time, '1970-01-01T00:00:00Z') AS _time, "
          "count(*) AS n FROM cpu GROUP BY _time ORDER BY _time")
    expected = [{"_time": T0, "n": 2}, {"_time": T0 + 7200 * S, "n": 2},
                {"_time": T0 + 14400 * S, "n": 1}]
    assert rows(engine, snap, q2) == expected
    assert rows(engine, snap, q3) == expected


def test_ordered_and_statistical_aggregates(engine, snap):
    got = rows(engine, snap, "SELECT host, first_value(usage ORDER BY time) AS f, "
                             "last_value(usage ORDER BY time) AS l FROM cpu "
                             'GROUP BY "host" ORDER BY host')
    assert got == [{"host": "a", "f": 1.0, "l": 3.0}, {"host": "b", "f": 2.0, "l": 4.0},
                   {"host": "c", "f": 5.0, "l": 5.0}]
    got = rows(engine, snap, "SELECT median(usage) AS med, stddev(usage) AS sd, "
                             "approx_median(usage) AS am, var(usage) AS v, avg(usage) AS a, "
                             "sum(usage) AS s, min(usage) AS lo, max(usage) AS hi FROM cpu")
    r = got[0]
    assert r["med"] == 3.0 and r["am"] == 3.0 and r["a"] == 3.0 and r["s"] == 15.0
    assert r["v"] == pytest.approx(2.5) and r["sd"] == pytest.approx(2.5 ** 0.5)
    assert (r["lo"], r["hi"]) == (1.0, 5.0)
    got = rows(engine, snap, "SELECT MIN(time) AS first, MAX(time) AS last, COUNT(*) AS n "
                             "FROM cpu")
    assert got == [{"first": T0, "last": T0 + 4 * 3600 * S, "n": 5}]


def test_distinct_aliases_order_and_limit(engine, snap):
    got = rows(engine, snap, "SELECT DISTINCT host FROM cpu ORDER BY host")
    assert got == [{"host": "a"}, {"host": "b"}, {"host": "c"}]
    got = rows(engine, snap, "SELECT time AS ds, usage AS y FROM cpu ORDER BY ds DESC LIMIT 2")
    assert got == [{"ds": T0 + 4 * 3600 * S, "y": 5.0}, {"ds": T0 + 3 * 3600 * S, "y": 4.0}]


def test_now_and_intervals(engine, snap):
    before = time.time_ns()
    got = rows(engine, snap, "SELECT now() AS t, now() - interval '1 hour' AS h")
    assert before <= got[0]["t"] <= time.time_ns()
    assert got[0]["t"] - got[0]["h"] == 3600 * S
    assert rows(engine, snap, "SELECT count(*) AS n FROM cpu "
                              "WHERE time > now() - interval '24 hours'") == [{"n": 0}]
    assert rows(engine, snap, "SELECT count(*) AS n FROM cpu "
                              "WHERE time > now() - INTERVAL '100000 days'") == [{"n": 5}]


# ---- errors --------------------------------------------------------------------------------


def test_unknown_table_reads_like_the_reference(engine, snap):
    err = error(engine, snap, "SELECT foo FROM not_here")
    assert isinstance(err, SqlQueryError)
    assert _status(err) == 400
    assert str(err) == ("error while planning query: Error during planning: "
                        "table 'public.iox.not_here' not found")
    assert err.http_body == "Error during planning: table 'public.iox.not_here' not found"


def test_bad_sql_unsupported_and_refused_statements(engine, snap):
    err = error(engine, snap, "SELEC * FROM cpu")
    assert _status(err) == 400 and "SQL error" in str(err)
    assert _status(error(engine, snap, "SELECT nope FROM cpu")) == 400
    assert _status(error(engine, snap, "SELECT * FROM cpu WHERE usage > 'abc'")) == 400
    assert _status(error(engine, snap, "SELECT 1; SELECT 2")) == 405
    for sql in ("CREATE TABLE x (a INT)", "INSERT INTO cpu (usage) VALUES (1.0)",
                "DROP TABLE cpu", "SET datafusion.execution.batch_size = 1",
                "COPY cpu TO '/tmp/weir-should-not-exist.csv'"):
        assert _status(error(engine, snap, sql)) == 400, sql
    assert not os.path.exists("/tmp/weir-should-not-exist.csv")
    assert len(rows(engine, snap, "SELECT * FROM cpu")) == 5


def test_execution_errors_are_500(engine, snap):
    err = error(engine, snap, "SELECT CAST(host AS INT) FROM cpu")
    assert isinstance(err, SqlQueryError)
    assert _status(err) == 500
    assert str(err).startswith("error while executing plan: ")
    assert err.http_body.startswith("query error: error while executing plan: ")


# ---- limits --------------------------------------------------------------------------------


def test_query_timeout_interrupts_the_query(snap):
    engine = QueryEngine(timeout=0.5)
    start = time.monotonic()
    with pytest.raises(QueryError) as info:
        engine.execute(snap, "SELECT v % 1000 AS k, count(DISTINCT v) FROM "
                             "(SELECT value AS v FROM generate_series(1, 2000000000)) "
                             "GROUP BY k")
    assert _status(info.value) == 408
    assert "time limit" in str(info.value)
    assert time.monotonic() - start < 5
    assert rows(engine, snap, "SELECT count(*) AS n FROM cpu") == [{"n": 5}]


def test_memory_limit(snap):
    engine = QueryEngine(memory_limit=2 * 1024 * 1024)
    err = error(engine, snap, "SELECT array_agg(value) AS a FROM generate_series(1, 3000000)")
    assert "Resources exhausted" in str(err)
    assert rows(engine, snap, "SELECT count(*) AS n FROM cpu") == [{"n": 5}]


# ---- the storage side's layout: paths relative to a SubTreeFileSystem -----------------------

SUB_SCHEMA = pa.schema([("host", TAG), ("time", NS), ("usage", pa.float64()),
                        ("v2", pa.int64())])


def _batch(hosts: list[str], times: list[int], usage: list[float],
           v2: list[int] | None = None) -> pa.RecordBatch:
    cols = {"host": pa.array(hosts).dictionary_encode().cast(TAG),
            "time": pa.array(times, pa.int64()).cast(NS),
            "usage": pa.array(usage, pa.float64())}
    if v2 is not None:
        cols["v2"] = pa.array(v2, pa.int64())
    return pa.record_batch(list(cols.values()), names=list(cols))


@pytest.fixture
def subtree(tmp_path: Path) -> DatabaseSnapshot:
    # an old file without the newer column v2, and a newer one with it
    old = pa.Table.from_batches([_batch(["a", "b"], [1 * S, 2 * S], [1.0, 2.0])])
    new = pa.Table.from_batches([_batch(["a", "b"], [100 * S, 101 * S], [3.0, 4.0], [7, 8])])
    pq.write_table(old, tmp_path / "old.parquet")
    pq.write_table(new, tmp_path / "new.parquet")
    files = [ParquetFileRef("old.parquet", 1 * S, 2 * S, 2, 0),
             ParquetFileRef("new.parquet", 100 * S, 101 * S, 2, 0)]
    buffer = [_batch(["c"], [200 * S], [5.0], [9])]
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    paths = pa.table({"path": ["old.parquet", "new.parquet"]})
    system = {"parquet_files": SystemTable(paths.schema, lambda: paths)}
    return DatabaseSnapshot("db", {"cpu": TableSnapshot("cpu", SUB_SCHEMA, buffer, files)},
                            fs, system)


def test_subtree_union_with_missing_columns(engine, subtree):
    got = rows(engine, subtree, "SELECT * FROM cpu ORDER BY time")
    assert [r["usage"] for r in got] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [r["v2"] for r in got] == [None, None, 7, 8, 9]
    assert list(got[0]) == ["host", "time", "usage", "v2"]
    assert got[0]["time"] == 1 * S


def test_subtree_pruning_even_of_every_file(engine, subtree, tmp_path):
    got = rows(engine, subtree, "SELECT usage FROM cpu WHERE time >= '1970-01-01T00:01:00Z'")
    assert sorted(r["usage"] for r in got) == [3.0, 4.0, 5.0]
    got = rows(engine, subtree, "SELECT usage FROM cpu WHERE time > '1970-01-01T00:03:00Z' "
                                "ORDER BY time")
    assert got == [{"usage": 5.0}]
    # a range no file and no buffered row holds, under a sort
    got = rows(engine, subtree, "SELECT usage FROM cpu WHERE time > '1970-01-01T01:00:00Z' "
                                "ORDER BY time")
    assert got == []
    (tmp_path / "old.parquet").unlink()
    with pytest.raises(QueryError, match=r"old\.parquet"):
        rows(engine, subtree, "SELECT usage FROM cpu")  # a lost file is an error


@pytest.mark.parametrize("sql,params,expected", [
    ("SELECT usage FROM cpu WHERE host = $h ORDER BY time", {"h": "b"}, [2.0, 4.0]),
    ("SELECT usage FROM cpu WHERE host IN ($a, $b) AND time > $t ORDER BY time",
     {"a": "a", "b": "c", "t": "1970-01-01T00:00:50Z"}, [3.0, 5.0]),
    ("SELECT usage FROM 'cpu' WHERE time < '1970-01-01T00:00:10+00:00' ORDER BY time", None,
     [1.0, 2.0]),
    ('SELECT usage FROM "cpu" WHERE time < \'1970-01-01 00:00:10+00:00\' ORDER BY time', None,
     [1.0, 2.0]),
])
def test_subtree_corpus_filters(engine, subtree, sql, params, expected):
    assert [r["usage"] for r in rows(engine, subtree, sql, params)] == expected


def test_subtree_date_bin_and_system_table(engine, subtree):
    got = rows(engine, subtree, "SELECT date_bin(INTERVAL '1 minute', time) AS b, "
                                "avg(usage) AS a FROM cpu GROUP BY b ORDER BY b")
    assert [r["b"] for r in got] == [0, 60 * S, 180 * S]
    assert got[0]["a"] == 1.5
    assert rows(engine, subtree, "SELECT * FROM system.parquet_files") == [
        {"path": "old.parquet"}, {"path": "new.parquet"}]


# ---- streaming and table registration ------------------------------------------------------


def test_execute_stream_yields_batches_and_plans_eagerly(snap):
    engine = QueryEngine(timeout=30)
    stream = engine.execute_stream(snap, "SELECT usage, time FROM cpu ORDER BY time")
    assert stream.schema.names == ["usage", "time"]
    batches = list(stream)
    assert sum(b.num_rows for b in batches) == 5
    assert list(stream) == []  # read once
    with pytest.raises(QueryError) as info:
        engine.execute_stream(snap, "SELECT * FROM nowhere")
    assert _status(info.value) == 400
    err_stream = QueryEngine().execute_stream(snap, "SELECT CAST(host AS INT) FROM cpu")
    with pytest.raises(SqlQueryError) as info:
        err_stream.read_all()
    assert _status(info.value) == 500


def test_execute_stream_time_limit(snap):
    engine = QueryEngine(timeout=0.5)
    stream = engine.execute_stream(snap, "SELECT v % 1000 AS k, count(DISTINCT v) FROM "
                                         "(SELECT value AS v FROM generate_series(1, "
                                         "2000000000)) GROUP BY k")
    with pytest.raises(QueryError) as info:
        stream.read_all()
    assert _status(info.value) == 408 and "0.5s" in str(info.value)


def test_tables_the_sql_cannot_name_are_not_touched(engine, snap):
    broken = TableSnapshot("broken", CPU_SCHEMA, [], [ParquetFileRef(
        "/nonexistent/dir/x.parquet", 0, 1, 1, 1)])
    snap.tables["broken"] = broken
    assert rows(engine, snap, "SELECT count(*) AS n FROM cpu") == [{"n": 5}]
    assert _status(error(engine, snap, "SELECT * FROM broken")) == 500


def test_empty_system_table_under_order_by(engine, snap):
    """An empty system table sorted (as `show summary` does) answers no rows, not a
    DataFusion plan error."""
    import dataclasses

    empty = pa.table({"k": pa.array([], pa.string()), "v": pa.array([], pa.string())})
    s = dataclasses.replace(snap, system_tables={**snap.system_tables,
                                                   "nothing": SystemTable(empty.schema, lambda: empty)})
    out = engine.execute(s, "SELECT * FROM system.nothing ORDER BY k, v")
    assert out.num_rows == 0 and out.schema.names == ["k", "v"]
