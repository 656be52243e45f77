"""Queries: DataFusion over a database snapshot (buffer ∪ Parquet ∪ system tables), and
the output formats of the query endpoints."""

from weir.query.engine import QueryEngine, SqlQueryError, legacy_type_name, query_schema
from weir.query.formats import (
    FORMATS,
    choose_format,
    content_type,
    encode,
    encode_batches,
    format_timestamp_ns,
    table_to_pylist,
)
from weir.query.source import DatabaseSnapshot, ParquetFileRef, TableSnapshot

__all__ = [
    "FORMATS",
    "DatabaseSnapshot",
    "ParquetFileRef",
    "QueryEngine",
    "SqlQueryError",
    "TableSnapshot",
    "choose_format",
    "content_type",
    "encode",
    "encode_batches",
    "format_timestamp_ns",
    "legacy_type_name",
    "query_schema",
    "table_to_pylist",
]
