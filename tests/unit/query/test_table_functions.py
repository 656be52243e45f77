"""SQL table functions in a snapshot (`last_cache('cpu')`): DataFusion calls them with
their literal arguments while it plans, the rows they give are filtered, joined and
aggregated like any table's, and what they refuse is the planning error the reference
gives (400 over HTTP), with DataFusion's `Error during planning: ` prefix."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from weir.errors import QueryError
from weir.query import DatabaseSnapshot, QueryEngine, SqlQueryError, TableSnapshot
from weir.server.errors import query_status

ROWS = pa.table({"region": [f"r{i % 10}" for i in range(2000)],
                 "host": [f"h{i:04d}" for i in range(2000)],
                 "usage": [float(i) for i in range(2000)]})


def snapshot(calls: list[list[object]]) -> DatabaseSnapshot:
    def rows(args: Sequence[object]) -> pa.Table:
        calls.append(list(args))
        if not args or not isinstance(args[0], str):
            raise QueryError("first argument must be the table name as a string")
        if args[0] != "cpu":
            raise QueryError("provided table name is invalid")
        return ROWS

    cpu = TableSnapshot("cpu", pa.schema([("host", pa.string()), ("time", pa.timestamp("ns"))]))
    return DatabaseSnapshot("db", {"cpu": cpu}, pafs.LocalFileSystem(),
                            table_functions={"last_cache": rows})


def test_rows_are_queried_like_a_table() -> None:
    calls: list[list[object]] = []
    engine = QueryEngine()
    got = engine.execute(snapshot(calls), "SELECT host, usage FROM last_cache('cpu', 'c1') "
                                          "WHERE region IN ('r1', 'r2') AND usage > 1500 "
                                          "ORDER BY host LIMIT 3")
    assert got.to_pylist() == [{"host": "h1501", "usage": 1501.0},
                               {"host": "h1502", "usage": 1502.0},
                               {"host": "h1511", "usage": 1511.0}]
    assert calls == [["cpu", "c1"]]
    got = engine.execute(snapshot(calls), "SELECT region, count(*) AS n FROM last_cache('cpu') "
                                          "GROUP BY region ORDER BY region")
    assert got.column("n").to_pylist() == [200] * 10


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT * FROM last_cache('mem')", "provided table name is invalid"),
    ("SELECT * FROM last_cache(1)", "first argument must be the table name as a string"),
    ("SELECT * FROM last_cache(host)", "first argument must be the table name as a string"),
])
def test_refusals_are_planning_errors(sql: str, message: str) -> None:
    with pytest.raises(SqlQueryError) as err:
        QueryEngine().execute(snapshot([]), sql)
    assert err.value.http_body == f"Error during planning: {message}"
    assert query_status(err.value) == 400


def test_a_database_without_the_function() -> None:
    snap = snapshot([])
    snap.table_functions = {}
    with pytest.raises(SqlQueryError, match="table function 'last_cache' not found"):
        QueryEngine().execute(snap, "SELECT * FROM last_cache('cpu')")
