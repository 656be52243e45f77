"""FlightSQL's commands, answered by the query service, as the reference answers them.

A statement's schema is the query engine's plan of it (no rows read); its rows are the
same SQL stream as the JSON ticket's. The metadata commands read `information_schema`
through the same service, so a token sees exactly the databases it may read: one
catalog, `public`, whose schemas are `iox` (the tables), `system` and `information_schema`.
Prepared statements keep nothing on the server: the handle carries the query and, once
bound, its parameters (as the reference's handles do).
"""

from __future__ import annotations

import re

import pyarrow as pa

import weir
from weir.errors import QueryError
from weir.ports import BatchStream, Principal
from weir.server.flight.protocol import (
    Command,
    GetCatalogs,
    GetDbSchemas,
    GetKeys,
    GetSqlInfo,
    GetTables,
    GetTableTypes,
    GetXdbcTypeInfo,
    PreparedHandle,
    PreparedStatementQuery,
    ProtocolError,
    StatementQuery,
    create_prepared_statement_result,
    put_prepared_statement_result,
)
from weir.server.flight.results import stream_schema
from weir.service import QueryService

CATALOG = "public"
BASE_TABLE_TYPES = ("BASE TABLE", "TABLE")

# ---- the result schemas of the metadata commands (FlightSql.proto) ---------------------

_S = pa.string()
CATALOGS_SCHEMA = pa.schema([pa.field("catalog_name", _S, nullable=False)])
DB_SCHEMAS_SCHEMA = pa.schema([pa.field("catalog_name", _S),
                               pa.field("db_schema_name", _S, nullable=False)])
TABLES_SCHEMA = pa.schema([pa.field("catalog_name", _S), pa.field("db_schema_name", _S),
                           pa.field("table_name", _S, nullable=False),
                           pa.field("table_type", _S, nullable=False)])
TABLES_WITH_SCHEMA_SCHEMA = TABLES_SCHEMA.append(
    pa.field("table_schema", pa.binary(), nullable=False))
TABLE_TYPES_SCHEMA = pa.schema([pa.field("table_type", _S, nullable=False)])
_PRIMARY_KEYS_SCHEMA = pa.schema([
    pa.field("catalog_name", _S), pa.field("db_schema_name", _S),
    pa.field("table_name", _S, nullable=False), pa.field("column_name", _S, nullable=False),
    pa.field("key_name", _S), pa.field("key_sequence", pa.int32(), nullable=False)])
_FOREIGN_KEYS_SCHEMA = pa.schema([
    pa.field("pk_catalog_name", _S), pa.field("pk_db_schema_name", _S),
    pa.field("pk_table_name", _S, nullable=False),
    pa.field("pk_column_name", _S, nullable=False),
    pa.field("fk_catalog_name", _S), pa.field("fk_db_schema_name", _S),
    pa.field("fk_table_name", _S, nullable=False),
    pa.field("fk_column_name", _S, nullable=False),
    pa.field("key_sequence", pa.int32(), nullable=False),
    pa.field("fk_key_name", _S), pa.field("pk_key_name", _S),
    pa.field("update_rule", pa.uint8(), nullable=False),
    pa.field("delete_rule", pa.uint8(), nullable=False)])
_I32 = pa.int32()
XDBC_TYPE_INFO_SCHEMA = pa.schema([
    pa.field("type_name", _S, nullable=False), pa.field("data_type", _I32, nullable=False),
    pa.field("column_size", _I32), pa.field("literal_prefix", _S),
    pa.field("literal_suffix", _S),
    pa.field("create_params", pa.list_(pa.field("item", _S, nullable=False))),
    pa.field("nullable", _I32, nullable=False),
    pa.field("case_sensitive", pa.bool_(), nullable=False),
    pa.field("searchable", _I32, nullable=False), pa.field("unsigned_attribute", pa.bool_()),
    pa.field("fixed_prec_scale", pa.bool_(), nullable=False),
    pa.field("auto_increment", pa.bool_()), pa.field("local_type_name", _S),
    pa.field("minimum_scale", _I32), pa.field("maximum_scale", _I32),
    pa.field("sql_data_type", _I32, nullable=False), pa.field("datetime_subcode", _I32),
    pa.field("num_prec_radix", _I32), pa.field("interval_precision", _I32)])

# ---- GetSqlInfo ------------------------------------------------------------------------

#: the dense union's members, in type-code order (clients read a value by its code)
_INFO_KINDS = ("string", "bool", "bigint", "int32", "strings", "int32_map")
_INFO_UNION = pa.dense_union([
    pa.field("string_value", _S), pa.field("bool_value", pa.bool_()),
    pa.field("bigint_value", pa.int64()), pa.field("int32_bitmask", _I32),
    pa.field("string_list", pa.list_(_S)),
    pa.field("int32_to_int32_list_map", pa.map_(_I32, pa.list_(_I32)))])
SQL_INFO_SCHEMA = pa.schema([pa.field("info_name", pa.uint32(), nullable=False),
                             pa.field("value", _INFO_UNION, nullable=False)])
_MAX = 2**31 - 1

#: (SqlInfo code, union member, value): what Weir tells FlightSQL clients about itself
SQL_INFO: tuple[tuple[int, str, object], ...] = (
    (0, "string", "Weir"),                  # FLIGHT_SQL_SERVER_NAME
    (1, "string", weir.__version__),        # FLIGHT_SQL_SERVER_VERSION
    (2, "string", "1.3"),                   # FLIGHT_SQL_SERVER_ARROW_VERSION (Schema.fbs)
    (3, "bool", True),                      # FLIGHT_SQL_SERVER_READ_ONLY
    (4, "bool", True),                      # FLIGHT_SQL_SERVER_SQL
    (5, "bool", False),                     # FLIGHT_SQL_SERVER_SUBSTRAIT
    (8, "int32", 0),                        # FLIGHT_SQL_SERVER_TRANSACTION: none
    (9, "bool", False),                     # FLIGHT_SQL_SERVER_CANCEL
    (100, "int32", 0),                      # FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT: none
    (101, "int32", 0),                      # FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT
    (500, "bool", False),                   # SQL_DDL_CATALOG
    (501, "bool", False),                   # SQL_DDL_SCHEMA
    (502, "bool", False),                   # SQL_DDL_TABLE
    (503, "int32", 3),                      # SQL_IDENTIFIER_CASE: lowercase
    (504, "string", '"'),                   # SQL_IDENTIFIER_QUOTE_CHAR
    (506, "bool", True),                    # SQL_ALL_TABLES_ARE_SELECTABLE
    (507, "int32", 0),                      # SQL_NULL_ORDERING: nulls sorted high
    (513, "string", "\\"),                  # SQL_SEARCH_STRING_ESCAPE
    (514, "string", ""),                    # SQL_EXTRA_NAME_CHARACTERS
    (515, "bool", True),                    # SQL_SUPPORTS_COLUMN_ALIASING
    (516, "bool", True),                    # SQL_NULL_PLUS_NULL_IS_NULL
    (520, "bool", True),                    # SQL_SUPPORTS_EXPRESSIONS_IN_ORDER_BY
    (521, "bool", True),                    # SQL_SUPPORTS_ORDER_BY_UNRELATED
    (522, "int32", 3),                      # SQL_SUPPORTED_GROUP_BY: unrelated, beyond select
    (523, "bool", True),                    # SQL_SUPPORTS_LIKE_ESCAPE_CLAUSE
    (524, "bool", True),                    # SQL_SUPPORTS_NON_NULLABLE_COLUMNS
    (528, "int32", 2),                      # SQL_OUTER_JOINS_SUPPORT_LEVEL: full
    (529, "string", "schema"),              # SQL_SCHEMA_TERM
    (530, "string", "procedure"),           # SQL_PROCEDURE_TERM
    (531, "string", "catalog"),             # SQL_CATALOG_TERM
    (532, "bool", True),                    # SQL_CATALOG_AT_START
    (536, "bool", False),                   # SQL_SELECT_FOR_UPDATE_SUPPORTED
    (537, "bool", False),                   # SQL_STORED_PROCEDURES_SUPPORTED
    (538, "int32", 15),                     # SQL_SUPPORTED_SUBQUERIES: all four kinds
    (539, "bool", True),                    # SQL_CORRELATED_SUBQUERIES_SUPPORTED
    (540, "int32", 3),                      # SQL_SUPPORTED_UNIONS: UNION, UNION ALL
    (543, "bigint", _MAX),                  # SQL_MAX_COLUMN_NAME_LENGTH (no limit)
    (559, "bigint", _MAX),                  # SQL_MAX_TABLE_NAME_LENGTH (no limit)
    (563, "bool", False),                   # SQL_TRANSACTIONS_SUPPORTED
)


def sql_info_table(codes: tuple[int, ...]) -> pa.Table:
    """The GetSqlInfo answer: the `codes` asked for that Weir knows (all if none)."""
    wanted = set(codes)
    rows = [r for r in SQL_INFO if not wanted or r[0] in wanted]
    children: list[list[object]] = [[] for _ in _INFO_KINDS]
    type_codes, offsets = [], []
    for _, kind, value in rows:
        i = _INFO_KINDS.index(kind)
        type_codes.append(i)
        offsets.append(len(children[i]))
        children[i].append(value)
    arrays = [pa.array(values, type=_INFO_UNION.field(i).type)
              for i, values in enumerate(children)]
    value = pa.UnionArray.from_dense(
        pa.array(type_codes, pa.int8()), pa.array(offsets, pa.int32()), arrays,
        [f.name for f in _INFO_UNION], list(range(len(_INFO_KINDS))))
    return pa.Table.from_arrays([pa.array([r[0] for r in rows], pa.uint32()), value],
                                schema=SQL_INFO_SCHEMA)


# ---- filters -----------------------------------------------------------------------------


def like(pattern: str | None) -> re.Pattern[str] | None:
    """A FlightSQL filter pattern (`%` any run of characters, `_` one, `\\` escapes) as a
    regular expression matching whole names; None for no pattern."""
    if pattern is None:
        return None
    out, escaped = [], False
    for ch in pattern:
        if escaped:
            out.append(re.escape(ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    if escaped:
        out.append(re.escape("\\"))
    return re.compile("".join(out), re.DOTALL)


def _matches(value: str, exact: str | None, pattern: re.Pattern[str] | None) -> bool:
    return (exact is None or value == exact) and \
        (pattern is None or pattern.fullmatch(value) is not None)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def ipc_schema(schema: pa.Schema) -> bytes:
    """`schema` as FlightSQL sends one inside a message: an IPC schema message."""
    out: bytes = schema.serialize().to_pybytes()
    return out


# ---- parameters --------------------------------------------------------------------------


def parameter_values(ipc: bytes | None) -> dict[str, object] | None:
    """The parameters bound to a prepared statement (one row of Arrow values), by
    placeholder name. A row bound by position (ADBC names its columns `0`, `1`, ...)
    fills `$1`, `$2`, ...; otherwise each column fills the placeholder of its name
    (`host` or `$host`)."""
    if ipc is None:
        return None
    table = pa.ipc.open_stream(ipc).read_all()
    if table.num_rows != 1:
        raise QueryError(f"a prepared query binds one row of parameters; {table.num_rows} "
                         "were sent")
    names = table.column_names
    positional = names == [str(i) for i in range(len(names))]
    out: dict[str, object] = {}
    for i, (name, column) in enumerate(zip(names, table.columns, strict=True)):
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        out[str(i + 1) if positional else name.removeprefix("$")] = column[0]
    return out


def bind(handle: PreparedHandle, params: pa.Table) -> bytes:
    """DoPut's answer to parameters sent for a prepared statement: the handle that
    carries them (a client sends it back with CommandPreparedStatementQuery)."""
    if params.num_rows != 1:
        raise ProtocolError(f"a prepared query binds one row of parameters; "
                            f"{params.num_rows} were sent")
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, params.schema) as writer:
        writer.write_table(params)
    bound = PreparedHandle(handle.query, sink.getvalue().to_pybytes())
    return put_prepared_statement_result(bound.encode())


# ---- the commands ------------------------------------------------------------------------


def needs_database(cmd: Command) -> bool:
    """Whether `cmd` reads a database (named by the request's `database` header); the
    others describe the server."""
    return isinstance(cmd, StatementQuery | PreparedStatementQuery | GetDbSchemas | GetTables)


class FlightSql:
    """FlightSQL's commands over the query service: the schema GetFlightInfo announces,
    the rows DoGet sends, and the prepared-statement action."""

    def __init__(self, queries: QueryService) -> None:
        self.queries = queries

    async def schema(self, cmd: Command, db: str, token: Principal | None) -> pa.Schema:
        """The schema of `cmd`'s result: the query planned, not run; a metadata command's
        fixed one."""
        match cmd:
            case StatementQuery(query):
                desc = await self.queries.sql_describe(db, query, None, token)
                return stream_schema(desc.schema)
            case PreparedStatementQuery(handle):
                desc = await self.queries.sql_describe(
                    db, handle.query, parameter_values(handle.params), token)
                return stream_schema(desc.schema)
            case GetTables(include_schema=include):
                return TABLES_WITH_SCHEMA_SCHEMA if include else TABLES_SCHEMA
        return _FIXED_SCHEMAS[type(cmd)] if not isinstance(cmd, GetKeys) else \
            _PRIMARY_KEYS_SCHEMA if cmd.kind == "primary" else _FOREIGN_KEYS_SCHEMA

    async def rows(self, cmd: Command, db: str, token: Principal | None,
                   base_table_type: str) -> pa.Table | BatchStream:
        """What DoGet sends for `cmd`."""
        match cmd:
            case StatementQuery(query):
                return await self.queries.sql_stream(db, query, None, token)
            case PreparedStatementQuery(handle):
                return await self.queries.sql_stream(
                    db, handle.query, parameter_values(handle.params), token)
            case GetSqlInfo(codes):
                return sql_info_table(codes)
            case GetCatalogs():
                return pa.Table.from_pylist([{"catalog_name": CATALOG}], CATALOGS_SCHEMA)
            case GetTableTypes():
                return pa.Table.from_pylist(
                    [{"table_type": t} for t in sorted((base_table_type, "VIEW"))],
                    TABLE_TYPES_SCHEMA)
            case GetDbSchemas():
                return await self._db_schemas(cmd, db, token)
            case GetTables():
                return await self._tables(cmd, db, token, base_table_type)
            case GetKeys() | GetXdbcTypeInfo():
                return (await self.schema(cmd, db, token)).empty_table()
        raise ProtocolError(f"unsupported FlightSQL command {type(cmd).__name__}")

    async def prepare(self, query: str, db: str, token: Principal | None) -> bytes:
        """The CreatePreparedStatement action's result: a handle, the dataset schema and
        the parameters' schema (`$1`, `$name`, typed as DataFusion infers them)."""
        desc = await self.queries.sql_describe(db, query, None, token)
        return create_prepared_statement_result(
            PreparedHandle(query).encode(), ipc_schema(stream_schema(desc.schema)),
            ipc_schema(desc.parameters))

    async def _listed_tables(self, db: str, token: Principal | None
                             ) -> list[tuple[str, str, str, str]]:
        listing = await self.queries.sql(
            db, "SELECT table_catalog, table_schema, table_name, table_type "
                "FROM information_schema.tables", None, token)
        return sorted(zip(*(listing.column(i).to_pylist() for i in range(4)), strict=True))

    async def _db_schemas(self, cmd: GetDbSchemas, db: str, token: Principal | None
                          ) -> pa.Table:
        pattern = like(cmd.db_schema_filter_pattern)
        rows = sorted({(catalog, schema) for catalog, schema, _, _ in
                       await self._listed_tables(db, token)
                       if _matches(catalog, cmd.catalog, None)
                       and _matches(schema, None, pattern)})
        return pa.Table.from_pylist(
            [{"catalog_name": c, "db_schema_name": s} for c, s in rows], DB_SCHEMAS_SCHEMA)

    async def _tables(self, cmd: GetTables, db: str, token: Principal | None,
                      base_table_type: str) -> pa.Table:
        schemas, names = like(cmd.db_schema_filter_pattern), like(cmd.table_name_filter_pattern)
        types = set(cmd.table_types)
        rows = []
        for catalog, schema, table, ttype in await self._listed_tables(db, token):
            if ttype == "BASE TABLE":
                ttype = base_table_type
            if not (_matches(catalog, cmd.catalog, None) and _matches(schema, None, schemas)
                    and _matches(table, None, names) and (not types or ttype in types)):
                continue
            row: dict[str, object] = {"catalog_name": catalog, "db_schema_name": schema,
                                      "table_name": table, "table_type": ttype}
            if cmd.include_schema:
                desc = await self.queries.sql_describe(
                    db, f"SELECT * FROM {_quote(schema)}.{_quote(table)}", None, token)
                row["table_schema"] = ipc_schema(stream_schema(desc.schema))
            rows.append(row)
        return pa.Table.from_pylist(
            rows, TABLES_WITH_SCHEMA_SCHEMA if cmd.include_schema else TABLES_SCHEMA)


_FIXED_SCHEMAS: dict[type, pa.Schema] = {
    GetSqlInfo: SQL_INFO_SCHEMA, GetCatalogs: CATALOGS_SCHEMA,
    GetDbSchemas: DB_SCHEMAS_SCHEMA, GetTableTypes: TABLE_TYPES_SCHEMA,
    GetXdbcTypeInfo: XDBC_TYPE_INFO_SCHEMA}
