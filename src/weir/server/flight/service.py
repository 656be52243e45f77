"""The Arrow Flight service, run on the query service: `DoGet` with InfluxDB 3's tickets
(JSON, or its protobuf `ReadInfo`), and FlightSQL (`weir.server.flight.sql`).

FlightSQL, as the reference serves it: `GetFlightInfo` (or `GetSchema`) with a command
packed in a google.protobuf.Any answers the result's schema and a ticket (a `ReadInfo`
carrying the command and the database) that `DoGet` runs; `DoAction` creates and closes
prepared statements, `DoPut` binds their parameters. The database is the request's
`database` header (or `bucket`, `bucket-name`, `iox-namespace-name`); the token is the
`authorization: Bearer <token>` header on every call, as for DoGet, and `Handshake` with
basic credentials (JDBC, a username and password) answers the password as that bearer
token, as the reference does.

Imported only when the first gRPC connection arrives (pyarrow.flight is slow to load).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.flight as flight

from weir.auth import AuthError, Token
from weir.errors import QueryError, WeirError
from weir.ports import BatchStream
from weir.server.auth import token_from_header
from weir.server.errors import HttpError
from weir.server.flight import protocol
from weir.server.flight.protocol import (
    ClosePreparedStatement,
    CreatePreparedStatement,
    ProtocolError,
    ReadInfo,
)
from weir.server.flight.results import data_stream, server_error
from weir.server.flight.sql import BASE_TABLE_TYPES, FlightSql, bind, needs_database
from weir.server.state import ServerState

_DB_KEYS = ("database", "namespace_name", "bucket", "bucket-name")
#: the request headers that name FlightSQL's database, as the reference reads them
_FLIGHTSQL_DB_HEADERS = ("database", "bucket", "bucket-name", "iox-namespace-name")
#: the reference's header choosing the name of a table's type (`BASE TABLE` or `TABLE`)
_BASE_TABLE_TYPE_HEADER = "x-influxdata-base-table-type"
_T = TypeVar("_T")


# ---- the Flight service ------------------------------------------------------------------


class _Headers(flight.ServerMiddleware):  # type: ignore[misc]  # (pyarrow is untyped)
    def __init__(self, headers: dict[str, list[str]], handshake: bool) -> None:
        self.headers = headers
        self.handshake = handshake

    def sending_headers(self) -> dict[str, str] | None:
        """A Handshake with `authorization: Basic <user:password>` (JDBC's and ADBC's
        username and password) is answered with the password as the bearer token the
        client sends from then on; it is checked there, on every call, as the reference
        does. (Weir's tokens are passwords: the user name is ignored.)"""
        if not self.handshake:
            return None
        value = next(iter(self.headers.get("authorization") or []), "")
        scheme, _, cred = value.partition(" ")
        if scheme != "Basic":
            return None
        try:
            _, sep, password = base64.b64decode(cred, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return {"authorization": f"Bearer {password}"} if sep and password else None


class _HeadersFactory(flight.ServerMiddlewareFactory):  # type: ignore[misc]  # (untyped)
    def start_call(self, info: Any, headers: dict[str, list[str]]) -> _Headers:
        return _Headers(headers, info.method == flight.FlightMethod.HANDSHAKE)


class _NoHandshakeAuth(flight.ServerAuthHandler):  # type: ignore[misc]  # (untyped)
    """Lets `Handshake` succeed (pyarrow refuses it without an auth handler); tokens are
    the `authorization` header's, checked by each call (see `_Headers`)."""

    def authenticate(self, outgoing: Any, incoming: Any) -> None:
        return None

    def is_valid(self, token: bytes) -> bytes:
        return b""


def parse_ticket(raw: bytes) -> dict[str, Any]:
    """The reference's JSON ticket as {db, query, type, params}."""
    try:
        t = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise flight.FlightServerError(
            "invalid ticket: expected JSON {\"database\": ..., \"sql_query\": ..., "
            "\"query_type\": \"sql\"|\"influxql\"} or a protobuf ReadInfo in a "
            "google.protobuf.Any") from None
    if not isinstance(t, dict):
        raise flight.FlightServerError("invalid ticket: expected a JSON object")
    db = next((t[k] for k in _DB_KEYS if t.get(k)), None)
    query = t.get("sql_query")
    if not isinstance(query, str):
        raise flight.FlightServerError("invalid ticket: missing field `sql_query`")
    qtype = (t.get("query_type") or "sql").lower()
    if qtype not in ("sql", "influxql"):
        raise flight.FlightServerError(f"invalid ticket: unknown query_type {qtype!r}")
    params = t.get("params") or None
    if params is not None and not isinstance(params, dict):
        raise flight.FlightServerError("invalid ticket: params must be a JSON object")
    return {"db": db, "query": query, "type": qtype, "params": params}


class WeirFlightServer(flight.FlightServerBase):  # type: ignore[misc]  # (untyped)
    def __init__(self, location: str, state: ServerState, loop: asyncio.AbstractEventLoop
                 ) -> None:
        super().__init__(location, auth_handler=_NoHandshakeAuth(),
                         middleware={"headers": _HeadersFactory()})
        self.state = state
        self.loop = loop
        self.sql = FlightSql(state.services.queries)

    def _run(self, work: Coroutine[Any, Any, _T]) -> _T:
        """`work` on the server's event loop; Weir's errors as Flight errors."""
        fut = asyncio.run_coroutine_threadsafe(work, self.loop)
        try:
            return fut.result()
        except WeirError as e:
            raise server_error(e) from None
        except ProtocolError as e:
            raise flight.FlightServerError(str(e)) from None

    @staticmethod
    def _headers(context: flight.ServerCallContext) -> dict[str, list[str]]:
        mw = context.get_middleware("headers")
        return mw.headers if mw is not None else {}

    def _database(self, context: flight.ServerCallContext, required: bool) -> str:
        """FlightSQL's database: the request's `database` header (or an alias of it);
        several that disagree, or none where one is required, are errors."""
        headers = self._headers(context)
        found = {k: headers[k][0] for k in _FLIGHTSQL_DB_HEADERS if headers.get(k)}
        if len(set(found.values())) > 1:
            raise flight.FlightServerError(
                f"More than one headers are found in request: {sorted(found)}. Please "
                "include only one of them")
        if not found:
            if required:
                raise flight.FlightServerError(
                    "no 'database' header in request: FlightSQL names its database in the "
                    "`database` gRPC header (or `bucket`, `bucket-name`)")
            return ""
        return next(iter(found.values()))

    def _base_table_type(self, context: flight.ServerCallContext) -> str:
        value = next(iter(self._headers(context).get(_BASE_TABLE_TYPE_HEADER) or []),
                     BASE_TABLE_TYPES[0])
        if value not in BASE_TABLE_TYPES:
            raise flight.FlightServerError(
                f"Invalid argument: invalid {_BASE_TABLE_TYPE_HEADER} header {value!r}: "
                f"expected one of {', '.join(BASE_TABLE_TYPES)}")
        return value

    def _command(self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor,
                 rpc: str) -> tuple[protocol.Command, str, Token | None]:
        """A GetFlightInfo/GetSchema request: its FlightSQL command, database and token."""
        token = self._token(context)
        if descriptor.descriptor_type != flight.DescriptorType.CMD:
            raise flight.FlightServerError(
                f"Unsupported message type: {rpc} with a path; Weir serves FlightSQL "
                "commands (a descriptor of type CMD)")
        try:
            cmd = protocol.decode_command(descriptor.command, rpc)
        except ProtocolError as e:
            raise flight.FlightServerError(str(e)) from None
        return cmd, self._database(context, needs_database(cmd)), token

    def _token(self, context: flight.ServerCallContext) -> Token | None:
        tokens = self.state.tokens
        mw = context.get_middleware("headers")
        headers = mw.headers if mw is not None else {}
        values = headers.get("authorization") or headers.get("Authorization") or []
        try:
            text = token_from_header(values[0]) if values else None
        except HttpError:
            raise flight.FlightUnauthenticatedError(
                "Authorization header was malformed") from None
        if tokens is None:
            return None
        try:
            return tokens.authenticate(text)
        except AuthError:
            raise flight.FlightUnauthenticatedError(
                "the request was not authenticated") from None

    def do_get(self, context: Any, ticket: flight.Ticket) -> flight.FlightDataStream:
        token = self._token(context)
        try:
            info = protocol.decode_ticket(ticket.ticket)
            if info is not None and info.kind == "flightsql":
                cmd = protocol.decode_command(info.command, "DoGet")
                if needs_database(cmd) and not info.database:
                    raise ProtocolError("invalid ticket: missing field `database`")
                return data_stream(self._run(self.sql.rows(
                    cmd, info.database, token, self._base_table_type(context))))
        except ProtocolError as e:
            raise flight.FlightServerError(str(e)) from None
        req = parse_ticket(ticket.ticket) if info is None else _read_info_request(info)
        return data_stream(self._run(self._query(req, token)))

    async def _query(self, req: dict[str, Any], token: Token | None
                     ) -> pa.Table | BatchStream:
        queries = self.state.services.queries
        if req["type"] == "influxql":
            result = await queries.influxql(req["query"], req["db"], req["params"], token,
                                            api="flight")
            table: pa.Table = result.with_metadata()
            return table
        db = req["db"]
        if not db:
            raise QueryError("invalid ticket: missing field `database`")
        return await queries.sql_stream(db, req["query"], req["params"], token)

    def list_flights(self, context: Any, criteria: bytes) -> Any:
        return iter(())

    # ---- FlightSQL ---------------------------------------------------------------------

    def get_flight_info(self, context: Any, descriptor: flight.FlightDescriptor
                        ) -> flight.FlightInfo:
        cmd, db, token = self._command(context, descriptor, "GetFlightInfo")
        schema = self._run(self.sql.schema(cmd, db, token))
        ticket = flight.Ticket(protocol.flightsql_ticket(db, descriptor.command))
        return flight.FlightInfo(schema, descriptor, [flight.FlightEndpoint(ticket, [])],
                                 -1, -1)

    def get_schema(self, context: Any, descriptor: flight.FlightDescriptor
                   ) -> flight.SchemaResult:
        cmd, db, token = self._command(context, descriptor, "GetSchema")
        return flight.SchemaResult(self._run(self.sql.schema(cmd, db, token)))

    def list_actions(self, context: Any) -> list[tuple[str, str]]:
        return [("CreatePreparedStatement", "FlightSQL: prepare a query (its schemas and "
                 "a handle)"),
                ("ClosePreparedStatement", "FlightSQL: close a prepared statement")]

    def do_action(self, context: Any, action: flight.Action) -> Iterator[flight.Result]:
        token = self._token(context)
        try:
            request = protocol.decode_action(action.body.to_pybytes(), action.type)
        except ProtocolError as e:
            raise flight.FlightServerError(str(e)) from None
        if isinstance(request, ClosePreparedStatement):
            return iter(())  # the handle holds the statement: nothing to free
        assert isinstance(request, CreatePreparedStatement)
        db = self._database(context, required=True)
        return iter([flight.Result(self._run(self.sql.prepare(request.query, db, token)))])

    def do_put(self, context: Any, descriptor: flight.FlightDescriptor,
               reader: flight.MetadataRecordBatchReader,
               writer: flight.FlightMetadataWriter) -> None:
        self._token(context)
        try:
            handle = protocol.decode_prepared_statement_query(descriptor.command)
            writer.write(bind(handle, reader.read_all()))
        except ProtocolError as e:
            raise flight.FlightServerError(str(e)) from None


def _read_info_request(info: ReadInfo) -> dict[str, Any]:
    """A SQL or InfluxQL ReadInfo ticket as `parse_ticket` gives a JSON one."""
    return {"db": info.database or None, "query": info.query, "type": info.kind,
            "params": info.params}


