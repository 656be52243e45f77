"""The Arrow Flight service: `DoGet` with InfluxDB 3's JSON ticket, run on the database.

Imported only when the first gRPC connection arrives (pyarrow.flight is slow to load).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from weir.auth import AuthError, Token
from weir.errors import AccessDenied, QueryError, WeirError
from weir.ports import BatchStream
from weir.server.auth import token_from_header
from weir.server.errors import HttpError
from weir.server.state import ServerState

_DB_KEYS = ("database", "namespace_name", "bucket", "bucket-name")


# ---- the Flight service ------------------------------------------------------------------


class _Headers(flight.ServerMiddleware):  # type: ignore[misc]  # (pyarrow is untyped)
    def __init__(self, headers: dict[str, list[str]]) -> None:
        self.headers = headers


class _HeadersFactory(flight.ServerMiddlewareFactory):  # type: ignore[misc]  # (untyped)
    def start_call(self, info: Any, headers: dict[str, list[str]]) -> _Headers:
        return _Headers(headers)


def parse_ticket(raw: bytes) -> dict[str, Any]:
    """The reference's JSON ticket as {db, query, type, params}."""
    try:
        t = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise flight.FlightServerError(
            "invalid ticket: expected JSON {\"database\": ..., \"sql_query\": ..., "
            "\"query_type\": \"sql\"|\"influxql\"} (protobuf ReadInfo tickets are not "
            "supported by Weir)") from None
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


_IOX_FIELD_TYPES = {pa.float64(): "float", pa.int64(): "integer", pa.uint64(): "uinteger",
                    pa.string(): "string", pa.bool_(): "boolean"}


def _iox_metadata(f: pa.Field) -> pa.Field:
    """Add the column-type metadata IOx puts on Flight results (clients that turn rows
    back into points read it) next to Weir's own `weir:kind`."""
    kind = (f.metadata or {}).get(b"weir:kind")
    if kind is None:
        return f
    if kind == b"tag":
        t = "iox::column_type::tag"
    elif kind == b"time":
        t = "iox::column_type::timestamp"
    elif f.type in _IOX_FIELD_TYPES:
        t = "iox::column_type::field::" + _IOX_FIELD_TYPES[f.type]
    else:
        return f
    return f.with_metadata({**f.metadata, b"iox::column::type": t.encode()})


def _stream_field(f: pa.Field) -> pa.Field:
    """Plain string types (clients read `string`, not views) and IOx column-type metadata."""
    if f.type == pa.string_view() or f.type == pa.large_string():
        f = f.with_type(pa.string())
    return _iox_metadata(f)


def _stream_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([_stream_field(f) for f in schema], metadata=schema.metadata)


def _cast_columns(columns: list[Any], schema: pa.Schema) -> list[Any]:
    """Columns in `schema`'s types (string views cast to strings)."""
    return [col if col.type == f.type else col.cast(f.type)
            for col, f in zip(columns, schema, strict=True)]


def _stream_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` in the stream's `schema`."""
    return pa.RecordBatch.from_arrays(_cast_columns(batch.columns, schema), schema=schema)


def _stream_table(table: pa.Table) -> pa.Table:
    """A whole result (InfluxQL): as `_stream_schema`, with one dictionary per column
    across batches."""
    schema = _stream_schema(table.schema)
    if not schema.equals(table.schema, check_metadata=True):
        table = pa.Table.from_arrays(_cast_columns(table.columns, schema), schema=schema)
    if any(pa.types.is_dictionary(f.type) for f in table.schema) and table.num_rows:
        table = table.unify_dictionaries()
    return table


def _server_error(e: WeirError) -> flight.FlightError:
    # FlightServerError carries just the message (ArrowInvalid would add the server's
    # Python traceback to what the client sees)
    if isinstance(e, AccessDenied):
        return flight.FlightUnauthorizedError(str(e))
    return flight.FlightServerError(str(e))


class WeirFlightServer(flight.FlightServerBase):  # type: ignore[misc]  # (untyped)
    def __init__(self, location: str, state: ServerState, loop: asyncio.AbstractEventLoop
                 ) -> None:
        super().__init__(location, middleware={"headers": _HeadersFactory()})
        self.state = state
        self.loop = loop

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
        req = parse_ticket(ticket.ticket)
        fut = asyncio.run_coroutine_threadsafe(self._query(req, token), self.loop)
        try:
            result = fut.result()
        except AccessDenied as e:
            raise flight.FlightUnauthorizedError(str(e)) from None
        except WeirError as e:
            raise _server_error(e) from None
        if isinstance(result, pa.Table):
            return flight.RecordBatchStream(_stream_table(result))
        # SQL: the rows go out batch by batch as DataFusion computes them. The first batch
        # is computed here, so that most execution errors are still answered as clean
        # errors; one after rows were sent reaches the client with pyarrow's traceback.
        stream = result
        schema = _stream_schema(stream.schema)
        rows = iter(stream)
        try:
            first = next(rows, None)
        except WeirError as e:
            stream.close()
            raise _server_error(e) from None

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                if first is not None:
                    yield _stream_batch(first, schema)
                for batch in rows:
                    yield _stream_batch(batch, schema)
            except WeirError as e:
                raise _server_error(e) from None
            finally:
                stream.close()

        # (a RecordBatchReader, not GeneratorStream: only the reader path writes the
        # dictionary batches tag columns need)
        return flight.RecordBatchStream(pa.RecordBatchReader.from_batches(schema, batches()))

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

    def get_flight_info(self, context: Any, descriptor: Any) -> Any:
        raise flight.FlightServerError(
            "GetFlightInfo (FlightSQL) is not supported by Weir; use DoGet with a JSON ticket")


