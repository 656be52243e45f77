"""InfluxQL for Weir: parsed by hand, planned onto the DataFusion SQL engine.

Public face:
- `parse(text, params)` -> statements (raises InfluxQLSyntaxError / UnsupportedStatement)
- `statement_database(stmt, param_db, strict)` -> the database a statement runs against
- `await execute(database, stmt, db, api=...)` -> InfluxQLResult (an Arrow table led by
  `iox::measurement`, plus the GROUP BY tags the v1 API turns into series; SHOW DATABASES
  and SHOW RETENTION POLICIES have the shape each API gives them in the reference)
"""

from __future__ import annotations

import functools
import time
from typing import Literal

import pyarrow as pa

from weir.errors import DatabaseMissingForQuery
from weir.influxql import ast, show
from weir.influxql.errors import (
    InfluxQLError,
    InfluxQLNotImplemented,
    InfluxQLPlanError,
    InfluxQLSyntaxError,
    UnsupportedStatement,
)
from weir.influxql.exprs import TableInfo
from weir.influxql.parser import parse
from weir.influxql.result import MEASUREMENT, InfluxQLResult
from weir.influxql.select import run_select
from weir.ports import CatalogQuerySource

__all__ = [
    "MEASUREMENT",
    "Api",
    "InfluxQLError",
    "InfluxQLNotImplemented",
    "InfluxQLPlanError",
    "InfluxQLResult",
    "InfluxQLSyntaxError",
    "UnsupportedStatement",
    "execute",
    "parse",
    "statement_database",
]

NO_DATABASE = "must specify a 'db' parameter, or provide the database in the InfluxQL query"

#: which front end runs a statement: the v1 `/query`, the v3 `/api/v3/query_influxql` or
#: Flight; they differ only in SHOW DATABASES / RETENTION POLICIES and qualified names
Api = Literal["v1", "v3", "flight"]


def needs_database(stmt: ast.Statement) -> bool:
    return not isinstance(stmt, ast.ShowDatabases | ast.ShowRetentionPolicies)


def statement_database(stmt: ast.Statement, param_db: str | None, strict: bool) -> str | None:
    """The database for `stmt`: the query's own (`FROM db.rp.m`, `ON db`) or `param_db`.

    strict (the v3 API): both given and different is an error; otherwise (v1) the query's
    own database wins, as InfluxDB 1.x does.
    """
    # every source names the same database and retention policy, or none does
    if isinstance(stmt, ast.Select) and len({(m.database, m.rp) for m in stmt.sources}) > 1:
        raise InfluxQLError("error in InfluxQL statement: can only perform queries on a "
                            "single database")
    db, rp = ast.statement_db_rp(stmt)
    query_db = ast.resolve_dbrp(db, rp)
    param_db = param_db or None
    if query_db and param_db and query_db != param_db and strict:
        raise InfluxQLError(
            f"provided a database in both the parameters ({param_db}) and query string "
            f"({query_db}) that do not match, if providing a query that specifies the "
            "database, you can omit the 'database' parameter from your request")
    return query_db or param_db


def _tables(database: CatalogQuerySource, db: str) -> dict[str, TableInfo]:
    out = {}
    for name, ts in database.catalog.db(db).tables.items():
        if ts.deleted:
            continue
        info = TableInfo(name)
        for c in ts.columns.values():
            if c.kind == "tag":
                info.tags.add(c.name)
            elif c.kind == "field":
                info.fields[c.name] = c.type
        out[name] = info
    return out


async def execute(database: CatalogQuerySource, stmt: ast.Statement, db: str | None,
                  now_ns: int | None = None, *, api: Api = "v3") -> InfluxQLResult:
    """Run one statement against `database` (its catalog plans it; its SQL runs it)."""
    if isinstance(stmt, ast.Unsupported):
        raise stmt.error
    now_ns = time.time_ns() if now_ns is None else now_ns
    catalog = database.catalog
    if isinstance(stmt, ast.ShowDatabases):
        if api == "v1":
            return show.show_databases(catalog.databases())
        if api == "flight":
            raise InfluxQLNotImplemented("SHOW DATABASES")
        return show.show_databases_v3(catalog.databases(), catalog.deleted_databases())
    if isinstance(stmt, ast.ShowRetentionPolicies):
        return _show_retention_policies(database, db, api)
    if api == "flight" and isinstance(stmt, ast.Select) and \
            any(m.database for m in stmt.sources):
        raise InfluxQLNotImplemented("database prefix in qualified measurement syntax")
    if not db:
        raise InfluxQLError(NO_DATABASE)
    if not catalog.db_exists(db):
        raise DatabaseMissingForQuery(db)
    tables = _tables(database, db)

    async def run_sql(sql: str) -> pa.Table:
        return await database.query(db, sql)

    if isinstance(stmt, ast.Select):
        picked = show.select_tables(tables, stmt.sources)
        return await run_select(stmt, picked, run_sql, now_ns)
    if isinstance(stmt, ast.ShowMeasurements):
        return await show.show_measurements(stmt, tables, run_sql, now_ns)
    if isinstance(stmt, ast.ShowTagKeys):
        return await show.show_tag_keys(stmt, tables, run_sql, now_ns)
    if isinstance(stmt, ast.ShowTagValues):
        return await show.show_tag_values(stmt, tables, run_sql, now_ns,
                                          functools.partial(database.cached_tag_values, db))
    if isinstance(stmt, ast.ShowFieldKeys):
        return show.show_field_keys(stmt, tables)
    raise UnsupportedStatement(type(stmt).__name__)


def _show_retention_policies(database: CatalogQuerySource, db: str | None, api: Api
                             ) -> InfluxQLResult:
    """v1: the one database's (a database is needed); v3: the database's or every live
    one's; Flight: the InfluxQL planner's fixed shape."""
    catalog = database.catalog
    if api == "v1":
        if not db:
            raise InfluxQLError(NO_DATABASE)
        if not catalog.db_exists(db):
            raise InfluxQLPlanError(f"database not found: {db}")
        return show.show_retention_policies_v1(db, catalog.db(db).retention_period_ns)
    names = [db] if db else catalog.databases()
    rows = []
    for n in names:
        if not catalog.db_exists(n):
            raise DatabaseMissingForQuery(n)
        rows.append((n, catalog.db(n).retention_period_ns))
    if api == "flight":
        return show.show_retention_policies(rows)
    return show.show_retention_policies_v3(rows)
