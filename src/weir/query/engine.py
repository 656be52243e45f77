"""SQL over one database snapshot with DataFusion, the engine InfluxDB 3 uses.

Each user table is a pyarrow dataset: its Parquet files, each tagged with its time range
as a partition expression so DataFusion's time filters skip files without opening them,
united with the in-memory buffer batches. System tables are built only if named.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from datafusion import RuntimeEnvBuilder, SessionConfig, SessionContext
from datafusion.catalog import Schema

from weir.errors import QueryError
from weir.query.source import DatabaseSnapshot, TableSnapshot

_PLACEHOLDER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_SYSTEM_REF = re.compile(r"\bsystem\s*\.\s*\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_TS = pa.timestamp("ns")


class QueryEngine:
    def __init__(self, timeout: float | None = None, memory_limit: int | None = None) -> None:
        self.timeout = timeout
        self.memory_limit = memory_limit

    def _context(self) -> SessionContext:
        cfg = (SessionConfig()
               .with_default_catalog_and_schema("public", "iox")
               .with_information_schema(True))
        if self.memory_limit:
            rt = RuntimeEnvBuilder().with_fair_spill_pool(self.memory_limit)
            return SessionContext(cfg, rt)
        return SessionContext(cfg)

    def execute(self, snapshot: DatabaseSnapshot, sql: str,
                params: dict[str, Any] | None = None) -> pa.Table:
        """Run `sql` (one statement) and return all its rows. Raises QueryError."""
        params = dict(params or {})
        _check_placeholders(sql, params)
        ctx = self._context()
        for t in snapshot.tables.values():
            ctx.register_dataset(t.name, _dataset(t, snapshot))
        wanted = {m.lower() for m in _SYSTEM_REF.findall(_STRING_LITERAL.sub("''", sql))}
        if wanted or "information_schema" in sql.lower() or "show" in sql.lower():
            system = Schema.memory_schema()
            ctx.catalog("public").register_schema("system", system)
            for name, build in snapshot.system_tables.items():
                if name.lower() in wanted:
                    system.register_table(name, ctx.from_arrow(build()).into_view())
        try:
            df = ctx.sql(sql, param_values=params or None)
            return df.to_arrow_table()
        except Exception as e:  # DataFusion raises plain Exceptions with its message
            raise _query_error(e, snapshot.name, sql) from None


def _check_placeholders(sql: str, params: dict[str, Any]) -> None:
    for name in _PLACEHOLDER.findall(_STRING_LITERAL.sub("''", sql)):
        if name not in params:
            raise QueryError(f"No value found for placeholder with name ${name}", status=400)


def _dataset(t: TableSnapshot, snapshot: DatabaseSnapshot) -> ds.Dataset:
    schema = t.schema
    parts: list[ds.Dataset] = []
    if t.files:
        parts.append(ds.FileSystemDataset.from_paths(
            [f.path for f in t.files],
            schema=schema,
            format=ds.ParquetFileFormat(),
            filesystem=snapshot.filesystem,
            partitions=[
                (pc.field("time") >= pa.scalar(f.min_time, _TS))
                & (pc.field("time") <= pa.scalar(f.max_time, _TS))
                for f in t.files
            ],
        ))
    batches = [_conform(b, schema) for b in t.batches]
    parts.append(ds.InMemoryDataset(batches, schema=schema))
    return parts[0] if len(parts) == 1 else ds.dataset(parts)


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch with the table's full schema: columns it lacks become nulls."""
    if batch.schema.equals(schema, check_metadata=False):
        return batch
    cols = []
    names = set(batch.schema.names)
    for f in schema:
        if f.name in names:
            col = batch.column(f.name)
            cols.append(col if col.type == f.type else col.cast(f.type))
        else:
            cols.append(pa.nulls(batch.num_rows, f.type))
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def _query_error(e: Exception, db: str, sql: str) -> QueryError:
    msg = str(e)
    for prefix in ("DataFusion error: ",):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    low = msg.lower()
    if "not implemented" in low or "unsupported" in low:
        return QueryError(f"error while planning query: {msg}", status=405)
    if msg.startswith(("Error during planning", "SQL error", "Schema error", "ParserError")) or \
            "planning" in low or "sql error" in low:
        return QueryError(f"error while planning query: {msg}", status=400)
    if "resources exhausted" in low:
        return QueryError(f"query exceeded the memory limit: {msg}", status=400)
    if "execution error" in low or "arrow error" in low or "cast" in low:
        return QueryError(f"error while executing query: {msg}", status=400)
    return QueryError(f"error while executing query: {msg}", status=500)
