"""The protobuf messages Weir's Flight service reads and writes, as typed values.

* FlightSQL's commands and results (package `arrow.flight.protocol.sql`, Arrow's
  `format/FlightSql.proto`), which clients pack in a `google.protobuf.Any`;
* the reference's own two: its `DoGet` ticket `ReadInfo` (also packed in an Any), which
  carries a FlightSQL command from `GetFlightInfo` to `DoGet` together with its database,
  and `FlightSqlPreparedStatementHandle`, the prepared statement's state (query and bound
  parameters) that travels in the handle, so the server keeps none.

The messages are declared below as data (name, field number, type) and built into
descriptors when this module is imported: they are few and flat, the `protobuf` runtime
is the only dependency, and there is no protoc step or generated module to keep in step.
Field numbers and names are the .proto files' own, so the wire format is theirs. Nothing
outside this module touches a protobuf object: `decode_command` and `decode_ticket` give
the dataclasses below, and the encoders take plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from google.protobuf import (  # type: ignore[import-untyped]  # (no stubs are locked)
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    message_factory,
)
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

SQL_PACKAGE = "arrow.flight.protocol.sql"
IOX_PACKAGE = "influxdata.iox.querier.v1"
_TYPE_URL_PREFIX = "type.googleapis.com/"


class ProtocolError(Exception):
    """A message Weir cannot use: undecodable, of an unknown or unsupported type, or sent
    to the wrong RPC. Its text is meant for the client."""


# ---- the declarations ------------------------------------------------------------------

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _BYTES, _BOOL = _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_BOOL
_INT32, _INT64, _UINT32, _UINT64, _DOUBLE = (_F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_UINT32,
                                             _F.TYPE_UINT64, _F.TYPE_DOUBLE)
_MESSAGE = _F.TYPE_MESSAGE

#: (name, number, type, how): how is "" (a plain proto3 field), "optional" (proto3
#: `optional`: presence is known), "repeated", "oneof:<name>", or for a message field
#: "message:<type name>" / "repeated message:<type name>". Enums are declared as int32,
#: their wire form.
_Field = tuple[str, int, int, str]

_SQL_MESSAGES: dict[str, list[_Field]] = {
    "CommandStatementQuery": [("query", 1, _STRING, ""),
                              ("transaction_id", 2, _BYTES, "optional")],
    "CommandPreparedStatementQuery": [("prepared_statement_handle", 1, _BYTES, "")],
    "CommandGetSqlInfo": [("info", 1, _UINT32, "repeated")],
    "CommandGetXdbcTypeInfo": [("data_type", 1, _INT32, "optional")],
    "CommandGetCatalogs": [],
    "CommandGetDbSchemas": [("catalog", 1, _STRING, "optional"),
                            ("db_schema_filter_pattern", 2, _STRING, "optional")],
    "CommandGetTables": [("catalog", 1, _STRING, "optional"),
                         ("db_schema_filter_pattern", 2, _STRING, "optional"),
                         ("table_name_filter_pattern", 3, _STRING, "optional"),
                         ("table_types", 4, _STRING, "repeated"),
                         ("include_schema", 5, _BOOL, "")],
    "CommandGetTableTypes": [],
    "CommandGetPrimaryKeys": [("catalog", 1, _STRING, "optional"),
                              ("db_schema", 2, _STRING, "optional"),
                              ("table", 3, _STRING, "")],
    "CommandGetExportedKeys": [("catalog", 1, _STRING, "optional"),
                               ("db_schema", 2, _STRING, "optional"),
                               ("table", 3, _STRING, "")],
    "CommandGetImportedKeys": [("catalog", 1, _STRING, "optional"),
                               ("db_schema", 2, _STRING, "optional"),
                               ("table", 3, _STRING, "")],
    "CommandGetCrossReference": [("pk_catalog", 1, _STRING, "optional"),
                                 ("pk_db_schema", 2, _STRING, "optional"),
                                 ("pk_table", 3, _STRING, ""),
                                 ("fk_catalog", 4, _STRING, "optional"),
                                 ("fk_db_schema", 5, _STRING, "optional"),
                                 ("fk_table", 6, _STRING, "")],
    "ActionCreatePreparedStatementRequest": [("query", 1, _STRING, ""),
                                             ("transaction_id", 2, _BYTES, "optional")],
    "ActionCreatePreparedStatementResult": [("prepared_statement_handle", 1, _BYTES, ""),
                                            ("dataset_schema", 2, _BYTES, ""),
                                            ("parameter_schema", 3, _BYTES, "")],
    "ActionClosePreparedStatementRequest": [("prepared_statement_handle", 1, _BYTES, "")],
    "DoPutPreparedStatementResult": [("prepared_statement_handle", 1, _BYTES, "optional")],
}

_IOX_MESSAGES: dict[str, list[_Field]] = {
    "QueryParam": [("name", 1, _STRING, ""),
                   ("null", 2, _INT32, "oneof:value"),
                   ("boolean", 3, _BOOL, "oneof:value"),
                   ("u_int64", 4, _UINT64, "oneof:value"),
                   ("int64", 5, _INT64, "oneof:value"),
                   ("float64", 6, _DOUBLE, "oneof:value"),
                   ("string", 7, _STRING, "oneof:value")],
    "ReadInfo": [("database", 1, _STRING, ""),
                 ("sql_query", 2, _STRING, ""),
                 ("query_type", 3, _INT32, ""),
                 ("flightsql_command", 4, _BYTES, ""),
                 ("is_debug", 5, _BOOL, ""),
                 ("params", 6, _MESSAGE, f"repeated message:.{IOX_PACKAGE}.QueryParam")],
    "FlightSqlPreparedStatementHandle": [("query", 1, _STRING, ""),
                                         ("params", 2, _BYTES, "optional")],
}

#: FlightSQL messages Weir knows but does not serve: what to tell a client that sends one
_REFUSED = {
    "CommandStatementUpdate": "Weir's FlightSQL is read-only: write line protocol "
                              "(/api/v3/write_lp) instead",
    "CommandPreparedStatementUpdate": "Weir's FlightSQL is read-only: write line protocol "
                                      "(/api/v3/write_lp) instead",
    "CommandStatementIngest": "Weir's FlightSQL is read-only: write line protocol "
                              "(/api/v3/write_lp) instead",
    "CommandStatementSubstraitPlan": "Substrait plans are not supported: send SQL",
    "ActionCreatePreparedSubstraitPlanRequest": "Substrait plans are not supported: send SQL",
    "ActionBeginTransactionRequest": "transactions are not supported",
    "ActionBeginSavepointRequest": "transactions are not supported",
    "ActionEndTransactionRequest": "transactions are not supported",
    "ActionEndSavepointRequest": "transactions are not supported",
    "ActionCancelQueryRequest": "cancelling a query is not supported",
}

# ReadInfo.QueryType
_QUERY_TYPE_SQL, _QUERY_TYPE_INFLUXQL, _QUERY_TYPE_FLIGHT_SQL = 1, 2, 3


def _file(name: str, package: str, messages: dict[str, list[_Field]]
          ) -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
    for msg_name, fields in messages.items():
        msg = fdp.message_type.add(name=msg_name)
        oneofs: dict[str, int] = {}
        for fname, number, ftype, how in fields:
            field = msg.field.add(name=fname, number=number, type=ftype,
                                  label=_F.LABEL_OPTIONAL)
            kind, _, arg = how.partition(":")
            if kind in ("repeated", "repeated message"):
                field.label = _F.LABEL_REPEATED
            if kind.endswith("message"):
                field.type_name = arg
            if kind == "optional":  # proto3 `optional`: a synthetic oneof of its own
                field.proto3_optional = True
                field.oneof_index = len(msg.oneof_decl)
                msg.oneof_decl.add(name=f"_{fname}")
            elif kind == "oneof":
                if arg not in oneofs:
                    oneofs[arg] = len(msg.oneof_decl)
                    msg.oneof_decl.add(name=arg)
                field.oneof_index = oneofs[arg]
    return fdp


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file("weir/flight_sql.proto", SQL_PACKAGE, _SQL_MESSAGES))
_POOL.Add(_file("weir/iox_querier.proto", IOX_PACKAGE, _IOX_MESSAGES))


def _class(full_name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(full_name))


_SQL = {name: _class(f"{SQL_PACKAGE}.{name}") for name in _SQL_MESSAGES}
_IOX = {name: _class(f"{IOX_PACKAGE}.{name}") for name in _IOX_MESSAGES}


def _type_url(package: str, name: str) -> str:
    return f"{_TYPE_URL_PREFIX}{package}.{name}"


def _pack(package: str, name: str, msg: Any) -> bytes:
    out: bytes = any_pb2.Any(type_url=_type_url(package, name),
                             value=msg.SerializeToString()).SerializeToString()
    return out


def _parse(cls: Any, raw: bytes, what: str) -> Any:
    msg = cls()
    try:
        msg.ParseFromString(raw)
    except DecodeError as e:
        raise ProtocolError(f"invalid {what}: {e}") from None
    return msg


def _unpack(raw: bytes) -> tuple[str, bytes]:
    """An Any's type (`package.Name`) and value."""
    any_msg = _parse(any_pb2.Any, raw, "FlightSQL command (expected a protobuf Any)")
    url: str = any_msg.type_url
    if not url.startswith(_TYPE_URL_PREFIX):
        raise ProtocolError(f"invalid FlightSQL command: unknown type URL {url!r}")
    return url[len(_TYPE_URL_PREFIX):], any_msg.value


# ---- FlightSQL commands ---------------------------------------------------------------


@dataclass(frozen=True)
class PreparedHandle:
    """A prepared statement, carried by its handle: the query and the parameters bound to
    it (one row, Arrow IPC stream bytes) if any."""

    query: str
    params: bytes | None = None

    def encode(self) -> bytes:
        msg = _IOX["FlightSqlPreparedStatementHandle"](query=self.query)
        if self.params is not None:
            msg.params = self.params
        return _pack(IOX_PACKAGE, "FlightSqlPreparedStatementHandle", msg)

    @classmethod
    def decode(cls, raw: bytes) -> PreparedHandle:
        try:
            kind, value = _unpack(raw)
        except ProtocolError:
            kind, value = "", b""
        if kind == f"{IOX_PACKAGE}.FlightSqlPreparedStatementHandle":
            msg = _parse(_IOX["FlightSqlPreparedStatementHandle"], value,
                         "prepared statement handle")
            return cls(msg.query, msg.params if msg.HasField("params") else None)
        # the reference's first handles were the query's bare text
        try:
            return cls(raw.decode())
        except UnicodeDecodeError:
            raise ProtocolError("invalid prepared statement handle") from None


@dataclass(frozen=True)
class StatementQuery:
    query: str


@dataclass(frozen=True)
class PreparedStatementQuery:
    handle: PreparedHandle


@dataclass(frozen=True)
class GetSqlInfo:
    #: the SqlInfo codes asked for; empty: all
    info: tuple[int, ...]


@dataclass(frozen=True)
class GetXdbcTypeInfo:
    data_type: int | None


@dataclass(frozen=True)
class GetCatalogs:
    pass


@dataclass(frozen=True)
class GetDbSchemas:
    catalog: str | None
    db_schema_filter_pattern: str | None


@dataclass(frozen=True)
class GetTables:
    catalog: str | None
    db_schema_filter_pattern: str | None
    table_name_filter_pattern: str | None
    table_types: tuple[str, ...]
    include_schema: bool


@dataclass(frozen=True)
class GetTableTypes:
    pass


@dataclass(frozen=True)
class GetKeys:
    """Primary, exported, imported keys or a cross reference: Weir's tables have none."""

    kind: Literal["primary", "exported", "imported", "cross_reference"]


@dataclass(frozen=True)
class CreatePreparedStatement:
    query: str


@dataclass(frozen=True)
class ClosePreparedStatement:
    handle: PreparedHandle


#: a command of GetFlightInfo / GetSchema / DoGet (a query or a metadata request)
Command = (StatementQuery | PreparedStatementQuery | GetSqlInfo | GetXdbcTypeInfo
           | GetCatalogs | GetDbSchemas | GetTables | GetTableTypes | GetKeys)
#: a DoAction body
ActionRequest = CreatePreparedStatement | ClosePreparedStatement

_KEYS: dict[str, Literal["primary", "exported", "imported", "cross_reference"]] = {
    "CommandGetPrimaryKeys": "primary", "CommandGetExportedKeys": "exported",
    "CommandGetImportedKeys": "imported", "CommandGetCrossReference": "cross_reference"}


def _optional(msg: Any, name: str) -> str | None:
    value: str | None = getattr(msg, name) if msg.HasField(name) else None
    return value


def decode_message(raw: bytes) -> Command | ActionRequest:
    """A FlightSQL message packed in a google.protobuf.Any. ProtocolError if it is not one
    Weir serves (the text says which and why)."""
    kind, value = _unpack(raw)
    package, _, name = kind.rpartition(".")
    if package != SQL_PACKAGE:
        raise ProtocolError(f"unsupported message type: {kind} (expected a FlightSQL "
                            f"command, {SQL_PACKAGE}.*)")
    if name in _REFUSED:
        raise ProtocolError(f"{name}: {_REFUSED[name]}")
    if name not in _SQL or name.endswith("Result"):
        raise ProtocolError(f"unsupported FlightSQL message type: {name}")
    msg = _parse(_SQL[name], value, name)
    match name:
        case "CommandStatementQuery":
            return StatementQuery(msg.query)
        case "CommandPreparedStatementQuery":
            return PreparedStatementQuery(PreparedHandle.decode(msg.prepared_statement_handle))
        case "CommandGetSqlInfo":
            return GetSqlInfo(tuple(msg.info))
        case "CommandGetXdbcTypeInfo":
            return GetXdbcTypeInfo(msg.data_type if msg.HasField("data_type") else None)
        case "CommandGetCatalogs":
            return GetCatalogs()
        case "CommandGetDbSchemas":
            return GetDbSchemas(_optional(msg, "catalog"),
                                _optional(msg, "db_schema_filter_pattern"))
        case "CommandGetTables":
            return GetTables(_optional(msg, "catalog"),
                             _optional(msg, "db_schema_filter_pattern"),
                             _optional(msg, "table_name_filter_pattern"),
                             tuple(msg.table_types), bool(msg.include_schema))
        case "CommandGetTableTypes":
            return GetTableTypes()
        case "ActionCreatePreparedStatementRequest":
            return CreatePreparedStatement(msg.query)
        case "ActionClosePreparedStatementRequest":
            return ClosePreparedStatement(PreparedHandle.decode(msg.prepared_statement_handle))
    return GetKeys(_KEYS[name])


def decode_command(raw: bytes, rpc: str) -> Command:
    """A FlightSQL command for `rpc` (GetFlightInfo, GetSchema, DoGet)."""
    cmd = decode_message(raw)
    if isinstance(cmd, CreatePreparedStatement | ClosePreparedStatement):
        raise ProtocolError(f"{type(cmd).__name__} is an action (send it with DoAction), "
                            f"not a {rpc} command")
    return cmd


def decode_action(raw: bytes, action_type: str) -> ActionRequest:
    """The body of a FlightSQL DoAction of type `action_type`."""
    cmd = decode_message(raw)
    expected = {"CreatePreparedStatement": CreatePreparedStatement,
                "ClosePreparedStatement": ClosePreparedStatement}.get(action_type)
    if expected is None or not isinstance(cmd, expected):
        raise ProtocolError(f"the {action_type!r} action does not take "
                            f"{type(cmd).__name__}")
    assert isinstance(cmd, CreatePreparedStatement | ClosePreparedStatement)
    return cmd


def decode_prepared_statement_query(raw: bytes) -> PreparedHandle:
    """The handle of a DoPut's CommandPreparedStatementQuery (parameters to bind)."""
    cmd = decode_message(raw)
    if not isinstance(cmd, PreparedStatementQuery):
        raise ProtocolError(f"DoPut takes CommandPreparedStatementQuery (parameters for a "
                            f"prepared statement), not {type(cmd).__name__}")
    return cmd.handle


def statement_query(query: str) -> bytes:
    """CommandStatementQuery packed in an Any (a FlightSQL client's first message)."""
    return _pack(SQL_PACKAGE, "CommandStatementQuery", _SQL["CommandStatementQuery"](query=query))


def prepared_statement_query(handle: bytes) -> bytes:
    return _pack(SQL_PACKAGE, "CommandPreparedStatementQuery",
                 _SQL["CommandPreparedStatementQuery"](prepared_statement_handle=handle))


def create_prepared_statement_result(handle: bytes, dataset_schema: bytes,
                                     parameter_schema: bytes) -> bytes:
    """The body of the CreatePreparedStatement action's result (packed in an Any)."""
    msg = _SQL["ActionCreatePreparedStatementResult"](
        prepared_statement_handle=handle, dataset_schema=dataset_schema,
        parameter_schema=parameter_schema)
    return _pack(SQL_PACKAGE, "ActionCreatePreparedStatementResult", msg)


def put_prepared_statement_result(handle: bytes) -> bytes:
    """DoPut's app metadata after parameters were bound: the handle that now carries them
    (not packed in an Any, as the specification has it)."""
    out: bytes = _SQL["DoPutPreparedStatementResult"](
        prepared_statement_handle=handle).SerializeToString()
    return out


# ---- the reference's DoGet ticket -------------------------------------------------------


@dataclass(frozen=True)
class ReadInfo:
    """A decoded `ReadInfo` ticket: SQL or InfluxQL text with parameters, or a FlightSQL
    command (from GetFlightInfo) as its packed bytes."""

    database: str
    kind: Literal["sql", "influxql", "flightsql"]
    query: str = ""
    params: dict[str, object] | None = None
    command: bytes = b""


def flightsql_ticket(database: str, command: bytes) -> bytes:
    """The ticket GetFlightInfo answers a FlightSQL command with, as the reference makes
    it: a ReadInfo of type FLIGHT_SQL_MESSAGE in an Any."""
    msg = _IOX["ReadInfo"](database=database, query_type=_QUERY_TYPE_FLIGHT_SQL,
                           flightsql_command=command)
    return _pack(IOX_PACKAGE, "ReadInfo", msg)


def decode_ticket(raw: bytes) -> ReadInfo | None:
    """A ReadInfo ticket packed in an Any; None if `raw` is not one (a JSON ticket)."""
    try:
        kind, value = _unpack(raw)
    except ProtocolError:
        return None
    if kind != f"{IOX_PACKAGE}.ReadInfo":
        return None
    msg = _parse(_IOX["ReadInfo"], value, "ticket")
    params: dict[str, object] = {}
    for p in msg.params:
        which = p.WhichOneof("value")
        params[p.name] = None if which in (None, "null") else getattr(p, which)
    qtype = msg.query_type
    if qtype == _QUERY_TYPE_FLIGHT_SQL:
        if msg.sql_query:
            raise ProtocolError("invalid ticket: a FlightSQL ticket with a sql_query")
        return ReadInfo(msg.database, "flightsql", command=msg.flightsql_command)
    if msg.flightsql_command:
        raise ProtocolError("invalid ticket: a SQL or InfluxQL ticket with a FlightSQL "
                            "command")
    if qtype not in (0, _QUERY_TYPE_SQL, _QUERY_TYPE_INFLUXQL):
        raise ProtocolError(f"invalid ticket: unknown query_type {qtype}")
    return ReadInfo(msg.database, "influxql" if qtype == _QUERY_TYPE_INFLUXQL else "sql",
                    msg.sql_query, params or None)


def read_info_ticket(database: str, query: str, *, influxql: bool = False,
                     params: dict[str, object] | None = None) -> bytes:
    """A ReadInfo ticket for SQL or InfluxQL (what the reference's own clients may send)."""
    msg = _IOX["ReadInfo"](database=database, sql_query=query,
                           query_type=_QUERY_TYPE_INFLUXQL if influxql else _QUERY_TYPE_SQL)
    for name, value in (params or {}).items():
        p = msg.params.add(name=name)
        if value is None:
            p.null = 0
        elif isinstance(value, bool):
            p.boolean = value
        elif isinstance(value, int):
            if value >= 2**63:
                p.u_int64 = value
            else:
                p.int64 = value
        elif isinstance(value, float):
            p.float64 = value
        else:
            p.string = str(value)
    return _pack(IOX_PACKAGE, "ReadInfo", msg)
