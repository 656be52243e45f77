"""Query results as Flight streams them (plain `string` columns, IOx's column-type
metadata, SQL rows batch by batch), and Weir's typed errors as Flight errors. Shared by
the reference's JSON/ReadInfo tickets and FlightSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from weir.errors import AccessDenied, WeirError
from weir.ports import BatchStream

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


def stream_schema(schema: pa.Schema) -> pa.Schema:
    """The schema a result with `schema` is streamed in (and announced in, by FlightSQL's
    GetFlightInfo: the two must be equal)."""
    return pa.schema([_stream_field(f) for f in schema], metadata=schema.metadata)


def _cast_columns(columns: list[Any], schema: pa.Schema) -> list[Any]:
    """Columns in `schema`'s types (string views cast to strings)."""
    return [col if col.type == f.type else col.cast(f.type)
            for col, f in zip(columns, schema, strict=True)]


def _stream_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` in the stream's `schema`."""
    return pa.RecordBatch.from_arrays(_cast_columns(batch.columns, schema), schema=schema)


def stream_table(table: pa.Table) -> pa.Table:
    """A whole result (InfluxQL, FlightSQL metadata): as `stream_schema`, with one
    dictionary per column across batches."""
    schema = stream_schema(table.schema)
    if not schema.equals(table.schema, check_metadata=True):
        table = pa.Table.from_arrays(_cast_columns(table.columns, schema), schema=schema)
    if any(pa.types.is_dictionary(f.type) for f in table.schema) and table.num_rows:
        table = table.unify_dictionaries()
    return table


def server_error(e: WeirError) -> flight.FlightError:
    # FlightServerError carries just the message (ArrowInvalid would add the server's
    # Python traceback to what the client sees)
    if isinstance(e, AccessDenied):
        return flight.FlightUnauthorizedError(str(e))
    return flight.FlightServerError(str(e))


def data_stream(result: pa.Table | BatchStream) -> flight.FlightDataStream:
    """What DoGet answers with: a whole table, or SQL rows as DataFusion computes them."""
    if isinstance(result, pa.Table):
        return flight.RecordBatchStream(stream_table(result))
    # SQL: the rows go out batch by batch as DataFusion computes them. The first batch
    # is computed here, so that most execution errors are still answered as clean
    # errors; one after rows were sent reaches the client with pyarrow's traceback.
    stream = result
    schema = stream_schema(stream.schema)
    rows = iter(stream)
    try:
        first = next(rows, None)
    except WeirError as e:
        stream.close()
        raise server_error(e) from None

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            if first is not None:
                yield _stream_batch(first, schema)
            for batch in rows:
                yield _stream_batch(batch, schema)
        except WeirError as e:
            raise server_error(e) from None
        finally:
            stream.close()

    # (a RecordBatchReader, not GeneratorStream: only the reader path writes the
    # dictionary batches tag columns need)
    return flight.RecordBatchStream(pa.RecordBatchReader.from_batches(schema, batches()))
