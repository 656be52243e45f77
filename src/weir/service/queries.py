"""Queries from every front end (HTTP `query_sql`/`query_influxql`/v1 `/query`, Flight,
plugins): SQL and InfluxQL, with the caller's read authorization checked here."""

from __future__ import annotations

import pyarrow as pa

from weir import influxql
from weir.auth import READ
from weir.errors import AccessDenied, DatabaseMissingForQuery, QueryError
from weir.influxql import Api
from weir.influxql.ast import Statement
from weir.influxql.result import InfluxQLResult
from weir.ports import (
    BatchStream,
    CatalogQuerySource,
    Principal,
    QueryDescription,
    QueryParams,
)
from weir.service.query_log import QueryLog
from weir.service.writes import authorize

#: the text of a v1 statement that failed: each statement of a v1 query answers on its own
StatementError = str


class QueryService:
    def __init__(self, source: CatalogQuerySource) -> None:
        self._source = source
        #: every query run here (system.queries)
        self.log = QueryLog()

    async def sql(self, db: str, sql: str, params: QueryParams | None,
                  principal: Principal | None, *, query_type: str = "sql",
                  log_text: str | None = None) -> pa.Table:
        """`query_type` and `log_text` say how system.queries shows it (FlightSQL:
        `flightsql`, `CommandStatementQuery <sql>`)."""
        authorize(principal, db, READ)
        with self.log.record(query_type, sql if log_text is None else log_text):
            return await self._source.query(db, sql, params)

    async def sql_stream(self, db: str, sql: str, params: QueryParams | None,
                         principal: Principal | None, *, query_type: str = "sql",
                         log_text: str | None = None) -> BatchStream:
        """`sql`, its rows read batch by batch as they are computed (Flight). Logged as a
        success once it runs, as the reference logs it."""
        authorize(principal, db, READ)
        with self.log.record(query_type, sql if log_text is None else log_text):
            return await self._source.query_stream(db, sql, params)

    async def sql_describe(self, db: str, sql: str, params: QueryParams | None,
                           principal: Principal | None) -> QueryDescription:
        """What `sql` would return, and its placeholders, without running it (FlightSQL:
        a result's schema before its rows, a prepared statement's parameters)."""
        authorize(principal, db, READ)
        return await self._source.describe_query(db, sql, params)

    async def influxql(self, text: str, db: str | None, params: QueryParams | None,
                       principal: Principal | None, *, api: Api = "v3") -> InfluxQLResult:
        """One InfluxQL statement, as `/api/v3/query_influxql` (`api="v3"`) and Flight
        (`api="flight"`) run it: the database named both in the query and in `db` must
        agree."""
        statements = influxql.parse(text, dict(params) if params else None)
        if len(statements) != 1:
            raise QueryError("must provide only one InfluxQl statement per query")
        stmt = statements[0]
        target = influxql.statement_database(stmt, db or None, strict=True)
        with self.log.record("influxql", text):
            return await self._run_authorized(stmt, target, principal, api)

    async def influxql_v1(self, text: str, db: str | None, rp: str | None,
                          params: QueryParams | None, principal: Principal | None
                          ) -> list[InfluxQLResult | StatementError]:
        """Every statement of a v1 `/query`, each with its result or its error message
        (a parse error fails them all), as InfluxDB 1.x answers them."""
        try:
            statements = influxql.parse(text, dict(params) if params else None)
        except QueryError as e:
            return [_v1_error(e)]
        out: list[InfluxQLResult | StatementError] = []
        default_db = influxql.ast.resolve_dbrp(db, rp) if db else None
        for stmt in statements:
            try:
                target = influxql.statement_database(stmt, default_db, strict=False)
                with self.log.record("influxql", text):
                    out.append(await self._run_authorized(stmt, target, principal, "v1"))
            except QueryError as e:
                out.append(_v1_error(e))
        return out

    async def _run_authorized(self, stmt: Statement, target: str | None,
                              principal: Principal | None, api: Api) -> InfluxQLResult:
        if principal is None or principal.admin:
            return await influxql.execute(self._source, stmt, target, api=api)
        if isinstance(stmt, influxql.ast.ShowDatabases):
            # SHOW DATABASES lists only the databases the token may read
            result = await influxql.execute(self._source, stmt, target, api=api)
            column = "name" if api == "v1" else "iox::database"
            names = result.table.column(column).to_pylist()
            result.table = result.table.filter(
                pa.array([principal.allows(n, READ) for n in names], pa.bool_()))
            return result
        for name in [target] if target else self._source.catalog.databases():
            if not principal.allows(name, READ):
                raise AccessDenied(f"token '{principal.name}' may not read database '{name}'")
        return await influxql.execute(self._source, stmt, target, api=api)


def _v1_error(e: QueryError) -> StatementError:
    """A v1 statement's error as the reference words it: its planning errors come from
    DataFusion (`datafusion error: Error during planning: ...`), a missing database from
    the namespace lookup."""
    if isinstance(e, DatabaseMissingForQuery):
        return f"Cannot retrieve database: External error: database not found: {e.db}"
    if isinstance(e, influxql.InfluxQLPlanError):
        return f"datafusion error: {e}"
    return str(e)
