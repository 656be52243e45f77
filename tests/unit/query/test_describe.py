"""QueryEngine.describe: a statement planned, not run (FlightSQL announces a result's schema
before its rows, and a prepared statement's parameters), and parameters bound as Arrow
values (FlightSQL binds typed ones)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from weir.query import DatabaseSnapshot, QueryEngine, SqlQueryError, TableSnapshot
from weir.system_tables import SystemTable

TAG = pa.dictionary(pa.int32(), pa.string())
NS = pa.timestamp("ns")
T0 = 1_747_396_800 * 10**9
SCHEMA = pa.schema([pa.field("host", TAG), pa.field("usage", pa.float64()),
                    pa.field("cores", pa.int64()), pa.field("time", NS)])


def _snapshot(rows: bool, built: list[str] | None = None) -> DatabaseSnapshot:
    batches = [pa.RecordBatch.from_pydict(
        {"host": pa.array(["a", "b", "a"]).dictionary_encode().cast(TAG),
         "usage": [0.5, 1.5, 2.5], "cores": [4, 8, 16],
         "time": pa.array([T0, T0 + 1, T0 + 2], NS)}, schema=SCHEMA)] if rows else []

    def build() -> pa.Table:
        if built is not None:
            built.append("queries")
        return pa.table({"q": ["x"]})

    return DatabaseSnapshot(
        name="db", tables={"cpu": TableSnapshot(name="cpu", schema=SCHEMA, batches=batches)},
        filesystem=pafs.LocalFileSystem(),
        system_tables={"queries": SystemTable(pa.schema([pa.field("q", pa.string())]), build)})


@pytest.fixture(scope="module")
def engine() -> QueryEngine:
    return QueryEngine()


@pytest.mark.parametrize("sql", [
    "SELECT * FROM cpu",
    "SELECT host, avg(usage) AS u, max(time) AS t FROM cpu GROUP BY host",
    "SELECT date_bin(INTERVAL '1 minute', time) AS minute, count(*) FROM cpu GROUP BY 1",
    "SHOW TABLES",
    "SELECT * FROM information_schema.columns",
])
def test_the_schema_is_the_one_the_rows_come_in(engine: QueryEngine, sql: str) -> None:
    """Planned over schemas alone (no rows), the schema is the executed stream's."""
    described = engine.describe(_snapshot(rows=False), sql).schema
    stream = engine.execute_stream(_snapshot(rows=True), sql)
    try:
        assert described.equals(stream.schema, check_metadata=True)
    finally:
        stream.close()


def test_placeholders_typed_where_they_stand(engine: QueryEngine) -> None:
    d = engine.describe(_snapshot(rows=False),
                        "SELECT host FROM cpu WHERE cores > $10 AND usage BETWEEN $2 AND $1 "
                        "AND host = $host AND time >= $since LIMIT $3")
    assert [(f.name, f.type, f.nullable) for f in d.parameters] == [
        ("$1", pa.float64(), True), ("$2", pa.float64(), True), ("$3", pa.null(), True),
        ("$10", pa.int64(), True),
        # a tag is a dictionary column: its parameter is the dictionary's value type
        ("$host", pa.string(), True), ("$since", NS, True)]
    assert d.schema.names == ["host"]


def test_placeholders_in_projections_cases_and_subqueries(engine: QueryEngine) -> None:
    d = engine.describe(
        _snapshot(rows=False),
        "SELECT $label AS label, CASE WHEN usage > $hi THEN 'hot' ELSE $other END AS s "
        "FROM cpu WHERE host IN (SELECT host FROM cpu WHERE cores = $c) "
        "AND EXISTS (SELECT 1 FROM cpu c2 WHERE c2.usage < $lo)")
    # (a subquery's placeholders are found, but the bindings do not say their types)
    assert {f.name: f.type for f in d.parameters} == {
        "$label": pa.null(), "$hi": pa.float64(), "$other": pa.null(), "$c": pa.null(),
        "$lo": pa.null()}


def test_no_rows_read_and_unnamed_system_tables_not_built(engine: QueryEngine) -> None:
    built: list[str] = []
    d = engine.describe(_snapshot(rows=False, built=built), "SELECT count(*) AS n FROM cpu")
    assert d.schema.names == ["n"] and d.parameters.names == []
    assert built == []


def test_bound_parameters_and_errors(engine: QueryEngine) -> None:
    snap = _snapshot(rows=False)
    d = engine.describe(snap, "SELECT $1 AS x", {"1": pa.scalar(7, pa.int32())})
    assert d.schema.field("x").type == pa.int32()
    with pytest.raises(SqlQueryError, match="No field named nope"):
        engine.describe(snap, "SELECT nope FROM cpu")


def test_arrow_scalars_bind_with_their_types(engine: QueryEngine) -> None:
    """FlightSQL's parameters arrive as Arrow values: a timestamp compares with `time`, a
    string with a tag, an int32 with an int64 field."""
    t = engine.execute(_snapshot(rows=True),
                       "SELECT usage FROM cpu WHERE time >= $since AND host = $h AND "
                       "cores < $c ORDER BY usage",
                       {"since": pa.scalar(T0 + 1, NS), "h": pa.scalar("a"),
                        "c": pa.scalar(100, pa.int32())})
    assert t.column("usage").to_pylist() == [2.5]
    t = engine.execute(_snapshot(rows=True), "SELECT count(*) AS n FROM cpu WHERE time <= $1",
                       {"1": pa.scalar(T0 // 1000, pa.timestamp("us"))})
    assert t.column("n").to_pylist() == [1]
