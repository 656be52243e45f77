"""The query engine over real Parquet files and buffer batches, and the SQL that real
plugins send (plugin-corpus.md §5)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from weir.errors import QueryError
from weir.query import (
    DatabaseSnapshot,
    ParquetFileRef,
    QueryEngine,
    TableSnapshot,
    encode,
    table_to_pylist,
)

TAG = pa.dictionary(pa.int32(), pa.string())
TS = pa.timestamp("ns")
SEC = 1_000_000_000
SCHEMA = pa.schema([("host", TAG), ("time", TS), ("usage", pa.float64()), ("v2", pa.int64())])


def _batch(hosts, times, usage, v2=None):  # type: ignore[no-untyped-def]
    cols = {"host": pa.array(hosts).dictionary_encode().cast(TAG),
            "time": pa.array(times, pa.int64()).cast(TS),
            "usage": pa.array(usage, pa.float64())}
    if v2 is not None:
        cols["v2"] = pa.array(v2, pa.int64())
    return pa.record_batch(list(cols.values()), names=list(cols))


@pytest.fixture
def snapshot(tmp_path):  # type: ignore[no-untyped-def]
    # an old file without the newer column v2, and a newer one with it
    old = pa.Table.from_batches([_batch(["a", "b"], [1 * SEC, 2 * SEC], [1.0, 2.0])])
    new = pa.Table.from_batches([_batch(["a", "b"], [100 * SEC, 101 * SEC], [3.0, 4.0], [7, 8])])
    pq.write_table(old, tmp_path / "old.parquet")
    pq.write_table(new, tmp_path / "new.parquet")
    files = [ParquetFileRef("old.parquet", 1 * SEC, 2 * SEC, 2, 0),
             ParquetFileRef("new.parquet", 100 * SEC, 101 * SEC, 2, 0)]
    buffer = [_batch(["c"], [200 * SEC], [5.0], [9])]
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    system = {"parquet_files": lambda: pa.table({"path": ["old.parquet", "new.parquet"]})}
    return DatabaseSnapshot("db", {"cpu": TableSnapshot("cpu", SCHEMA, buffer, files)}, fs,
                            system)


def rows(snapshot, sql, params=None):  # type: ignore[no-untyped-def]
    return table_to_pylist(QueryEngine().execute(snapshot, sql, params))


def test_buffer_and_parquet_union_with_missing_columns(snapshot):
    got = rows(snapshot, "SELECT * FROM cpu ORDER BY time")
    assert [r["usage"] for r in got] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [r["v2"] for r in got] == [None, None, 7, 8, 9]
    assert list(got[0]) == ["host", "time", "usage", "v2"]  # alphabetical, as the reference
    assert got[0]["time"] == 1 * SEC  # timestamps reach plugins as int ns


def test_time_filter_prunes_files_without_opening_them(snapshot, tmp_path):
    (tmp_path / "old.parquet").unlink()
    got = rows(snapshot, "SELECT usage FROM cpu WHERE time >= '1970-01-01T00:01:00Z'")
    assert sorted(r["usage"] for r in got) == [3.0, 4.0, 5.0]
    with pytest.raises(QueryError):
        rows(snapshot, "SELECT usage FROM cpu")  # now it must open the missing file


@pytest.mark.parametrize("sql,params,expected", [
    ("SELECT usage FROM cpu WHERE host = $h ORDER BY time", {"h": "b"}, [2.0, 4.0]),
    ("SELECT usage FROM cpu WHERE host IN ($a, $b) AND time > $t ORDER BY time",
     {"a": "a", "b": "c", "t": "1970-01-01T00:00:50Z"}, [3.0, 5.0]),
    ("SELECT usage FROM 'cpu' WHERE time < '1970-01-01T00:00:10+00:00' ORDER BY time", None,
     [1.0, 2.0]),
    ('SELECT usage FROM "cpu" WHERE time < \'1970-01-01 00:00:10+00:00\' ORDER BY time', None,
     [1.0, 2.0]),
])
def test_corpus_filters(snapshot, sql, params, expected):
    assert [r["usage"] for r in rows(snapshot, sql, params)] == expected


def test_corpus_aggregates(snapshot):
    got = rows(snapshot, "SELECT host, first_value(usage ORDER BY time) AS f, "
                         "last_value(usage ORDER BY time) AS l, count(*) AS n, MAX(time) AS t "
                         "FROM cpu GROUP BY host ORDER BY host")
    assert got == [{"host": "a", "f": 1.0, "l": 3.0, "n": 2, "t": 100 * SEC},
                   {"host": "b", "f": 2.0, "l": 4.0, "n": 2, "t": 101 * SEC},
                   {"host": "c", "f": 5.0, "l": 5.0, "n": 1, "t": 200 * SEC}]
    got = rows(snapshot, "SELECT date_bin(INTERVAL '1 minute', time) AS b, avg(usage) AS a, "
                         "median(usage) AS m, stddev(usage) AS s, approx_median(usage) AS am "
                         "FROM cpu GROUP BY b ORDER BY b")
    assert [r["b"] for r in got] == [0, 60 * SEC, 180 * SEC]
    assert got[0]["a"] == 1.5
    got = rows(snapshot, "SELECT DATE_BIN(INTERVAL '2 minutes', time, "
                         "'1970-01-01T00:00:00Z') AS b FROM cpu GROUP BY 1 ORDER BY 1")
    assert [r["b"] for r in got] == [0, 120 * SEC]
    got = rows(snapshot, "SELECT DISTINCT host FROM cpu ORDER BY host")
    assert [r["host"] for r in got] == ["a", "b", "c"]
    got = rows(snapshot, "SELECT now() AS t, count(*) AS n FROM cpu "
                         "WHERE time > now() - interval '24 hours'")
    assert isinstance(got[0]["t"], int) and got[0]["n"] == 0


def test_catalog_queries(snapshot):
    tables = rows(snapshot, "SHOW TABLES")
    assert {"table_catalog": "public", "table_schema": "iox", "table_name": "cpu",
            "table_type": "BASE TABLE"} in tables
    cols = rows(snapshot, "SELECT column_name, data_type FROM information_schema.columns "
                          "WHERE table_name = $t ORDER BY column_name", {"t": "cpu"})
    types = {c["column_name"]: c["data_type"] for c in cols}
    assert types["host"] == "Dictionary(Int32, Utf8)"
    assert types["usage"] == "Float64" and types["v2"] == "Int64"
    assert rows(snapshot, "SHOW COLUMNS FROM cpu")
    assert rows(snapshot, "SELECT * FROM system.parquet_files") == [
        {"path": "old.parquet"}, {"path": "new.parquet"}]


def test_errors(snapshot):
    with pytest.raises(QueryError, match="table 'public.iox.not_here' not found") as e:
        rows(snapshot, "SELECT foo FROM not_here")
    assert e.value.status == 400
    with pytest.raises(QueryError, match=r"No value found for placeholder with name \$host"):
        rows(snapshot, "SELECT * FROM cpu WHERE host = $host")
    with pytest.raises(QueryError):
        rows(snapshot, "SELEC 1")


def test_formats_exact():
    t = pa.table({"host": pa.array(["a", None]).dictionary_encode(),
                  "time": pa.array([123, 1_000_000], pa.int64()).cast(TS),
                  "val": pa.array([1.0, None])})
    assert encode(t, "json") == (b'[{"host":"a","time":"1970-01-01T00:00:00.000000123",'
                                 b'"val":1.0},{"time":"1970-01-01T00:00:00.001"}]')
    assert encode(t, "jsonl") == (b'{"host":"a","time":"1970-01-01T00:00:00.000000123",'
                                  b'"val":1.0}\n{"time":"1970-01-01T00:00:00.001"}\n')
    assert encode(t, "csv") == (b"host,time,val\na,1970-01-01T00:00:00.000000123,1.0\n"
                                b",1970-01-01T00:00:00.001,\n")
    assert encode(t, "pretty") == (
        b"+------+-------------------------------+-----+\n"
        b"| host | time                          | val |\n"
        b"+------+-------------------------------+-----+\n"
        b"| a    | 1970-01-01T00:00:00.000000123 | 1.0 |\n"
        b"|      | 1970-01-01T00:00:00.001       |     |\n"
        b"+------+-------------------------------+-----+")
    empty = t.slice(0, 0)
    assert encode(empty, "json") == b"[]"
    assert encode(empty, "jsonl") == b"" and encode(empty, "csv") == b""
    assert encode(empty, "parquet") == b""
