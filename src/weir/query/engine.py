"""SQL over one database snapshot with DataFusion, the engine InfluxDB 3 uses.

One fresh DataFusion session per query (creating one costs well under a millisecond):

* catalog `public`, schema `iox` holds the user tables. A table whose data is all in the
  buffer is an in-memory table (split into partitions for parallelism); one with Parquet
  files is a pyarrow dataset of those files, each tagged with its time range as a partition
  expression so a time filter skips files without opening them; with both, a UNION ALL
  view of the two. Columns are sorted by name (`SELECT *` order: `f1, f2, t1, t2, time`)
  and `time` is NOT NULL, as in the reference.
* schema `system` holds the system tables the SQL names (`system.<name>`); the others are
  never built.
* `information_schema` is Weir's own copy of DataFusion's views (built only when the SQL
  mentions it or is a SHOW statement) so that `data_type` uses the Arrow spellings plugins
  compare with: `Timestamp(Nanosecond, None)`, not DataFusion 55's `Timestamp(ns)`.
* `$name` placeholders come from `params`; a missing one fails with DataFusion's own
  `No value found for placeholder with name $name`.
* DDL, DML and SET are refused; errors become `SqlQueryError` (a `QueryError`) with the
  reference's status codes.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from datafusion import RuntimeEnvBuilder, SessionConfig, SessionContext, SQLOptions, col, lit
from datafusion.catalog import Schema

from weir.errors import QueryError, QueryFailed, QueryTimeout, QueryUnsupported
from weir.query.source import DatabaseSnapshot, TableSnapshot

__all__ = ["QueryEngine", "QueryStream", "SqlQueryError", "legacy_type_name", "query_schema"]

CATALOG = "public"
USER_SCHEMA = "iox"
SYSTEM_SCHEMA = "system"
INFO_SCHEMA = "information_schema"

_TS = pa.timestamp("ns")
_SQL_OPTIONS = SQLOptions().with_allow_ddl(False).with_allow_dml(False) \
    .with_allow_statements(False)
#: bound when the caller gave no parameters, so DataFusion still checks every placeholder
#: and reports a missing one in the reference's words
_NO_PARAMS = {"__weir_no_params__": pa.scalar(0, pa.int64())}

_SYSTEM_REF = re.compile(r'"?\bsystem"?\s*\.\s*"?([A-Za-z_][A-Za-z0-9_]*)', re.IGNORECASE)
_INFO_REF = re.compile(r"\binformation_schema\b", re.IGNORECASE)
_LEADING_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*\n?|/\*.*?\*/)*", re.DOTALL)
_SHOW = re.compile(r"show\b", re.IGNORECASE)
_SHOW_COLUMNS = re.compile(r"show\s+(?:full\s+)?columns\s+(?:from|in)\b", re.IGNORECASE)
_SHOW_TABLES_OR_COLUMNS = re.compile(r"show\s+(?:tables\b|(?:full\s+)?columns\b)",
                                     re.IGNORECASE)
_DESCRIBE = re.compile(r"desc(?:ribe)?\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNIT_NAMES = {"s": "Second", "ms": "Millisecond", "µs": "Microsecond", "us": "Microsecond",
               "ns": "Nanosecond"}
_NEW_TYPE = re.compile(r'\b(Timestamp|Time32|Time64|Duration)\((s|ms|µs|us|ns)(?:, "([^"]*)")?\)')
#: the order DataFusion lists its information_schema views in
_INFO_VIEWS = ("tables", "views", "columns", "df_settings", "schemata", "routines",
               "parameters")


class SqlQueryError(QueryError):
    """A query DataFusion refused or failed.

    `detail` is DataFusion's own message; `phase` is "planning" (parsing, planning,
    optimising) or "execution". The kind says whose fault it is: `SqlPlanningError` (the
    query's), `SqlUnsupported` (a feature DataFusion lacks), `SqlFailed` (internal, I/O and
    resource errors, and every execution error). (A time limit raises `QueryTimeout`.)
    `http_body` is the body the reference's `/api/v3/query_sql` answers with: the bare
    DataFusion message for planning errors, `query error: error while executing plan: ...`
    for execution errors. `str(err)` is the reference's QueryExecutorError text (what
    plugins see): `error while planning query: <detail>`.
    """

    def __init__(self, message: str, *, detail: str, phase: str) -> None:
        super().__init__(message)
        self.detail = detail
        self.phase = phase

    @property
    def http_body(self) -> str:
        return self.detail if self.phase == "planning" else f"query error: {self}"


class SqlPlanningError(SqlQueryError):
    """SQL, plan, schema or constant-folding errors: the query's to fix."""


class SqlUnsupported(SqlQueryError, QueryUnsupported):
    """`This feature is not implemented` in DataFusion."""


class SqlFailed(SqlQueryError, QueryFailed):
    """Internal, I/O and resource errors while planning; any error while executing."""


class _Interrupted(BaseException):
    """Raised inside a query thread to stop it at its time limit."""


class QueryEngine:
    """Runs SQL against `DatabaseSnapshot`s; thread-safe, one DataFusion session a query.

    `timeout` (seconds): a query still running then is interrupted (DataFusion notices
    within about a second, between polls; an operator stuck in one long computation may run
    on in the background) and `execute` raises `QueryTimeout`.
    `memory_limit` (bytes): each query's DataFusion memory pool (fair spill pool); operators
    that cannot spill fail with `Resources exhausted`. Scans themselves are not counted.
    """

    def __init__(self, timeout: float | None = None, memory_limit: int | None = None,
                 target_partitions: int | None = None) -> None:
        self.timeout = timeout if timeout and timeout > 0 else None
        self.memory_limit = memory_limit if memory_limit and memory_limit > 0 else None
        self.target_partitions = target_partitions or os.cpu_count() or 1

    # ---- public -------------------------------------------------------------------------

    def execute(self, snapshot: DatabaseSnapshot, sql: str,
                params: dict[str, Any] | None = None) -> pa.Table:
        """Run one SQL statement and return all its rows. Raises QueryError."""
        if self.timeout is None:
            return self._execute(snapshot, sql, params)
        return _with_time_limit(lambda: self._execute(snapshot, sql, params), self.timeout)

    def execute_stream(self, snapshot: DatabaseSnapshot, sql: str,
                       params: dict[str, Any] | None = None) -> QueryStream:
        """Plan one SQL statement (planning errors raise here) and return its result as a
        stream of record batches, computed as they are read (feed it to
        `formats.encode_batches`). The time limit covers planning plus the whole read."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        if deadline is None:
            return self._plan(snapshot, sql, params, None)
        return _with_time_limit(lambda: self._plan(snapshot, sql, params, deadline),
                                self.timeout)

    # ---- one query ------------------------------------------------------------------------

    def _context(self) -> SessionContext:
        cfg = (SessionConfig()
               .with_default_catalog_and_schema(CATALOG, USER_SCHEMA)
               .with_information_schema(True)
               .with_target_partitions(self.target_partitions))
        if self.memory_limit:
            return SessionContext(cfg, RuntimeEnvBuilder().with_fair_spill_pool(
                self.memory_limit))
        return SessionContext(cfg)

    def _execute(self, snapshot: DatabaseSnapshot, sql: str,
                 params: dict[str, Any] | None) -> pa.Table:
        stream = self._plan(snapshot, sql, params, None)
        return stream.read_all()

    def _plan(self, snapshot: DatabaseSnapshot, sql: str, params: dict[str, Any] | None,
              deadline: float | None) -> QueryStream:
        values = _param_values(params)
        try:
            ctx = self._context()
            self._register(ctx, snapshot, sql, values)
        except QueryError:
            raise
        except Exception as e:  # a bad snapshot or a failing system-table builder
            raise _error(f"{type(e).__name__}: {e}", "execution") from None
        try:
            df = ctx.sql(sql, options=_SQL_OPTIONS, param_values=values)
            stream = df.execute_stream()  # physical planning happens here
            schema = df.schema()
        except _Interrupted:
            raise
        except BaseException as e:  # noqa: BLE001 - pyo3 panics derive from BaseException
            _reraise_interpreter_exit(e)
            raise _error(str(e), "planning") from None
        legacy = bool(_DESCRIBE.match(_statement_start(sql)))
        return QueryStream(schema, stream, deadline, legacy, self.timeout)

    def _register(self, ctx: SessionContext, snap: DatabaseSnapshot, sql: str,
                  values: dict[str, pa.Scalar]) -> None:
        catalog = ctx.catalog(CATALOG)
        iox = catalog.schema(USER_SCHEMA)
        start = _statement_start(sql)
        info = bool(_INFO_REF.search(sql)) or bool(_SHOW.match(start))
        text = sql.lower()
        for t in snap.tables.values():
            # a table the SQL cannot name (its name is nowhere in the text) is left out
            if info or _named_in(t.name.lower(), text):
                _register_user_table(ctx, iox, t, snap, self.target_partitions)
        system = Schema.memory_schema()
        catalog.register_schema(SYSTEM_SCHEMA, system)
        wanted = {m.lower() for m in _SYSTEM_REF.findall(sql)}
        if info:
            wanted |= _system_tables_for_columns(snap, sql, start, values)
        for name, build in snap.system_tables.items():
            if name.lower() in wanted:
                try:
                    table = build()
                except Exception as e:
                    raise _error(f"error building system table {name}: "
                                 f"{type(e).__name__}: {e}", "execution") from None
                system.register_table(name, _memory_table(ctx, iox, table))
        if info:
            _install_information_schema(ctx, snap, sql, start)


class QueryStream:
    """A planned query's result: `schema`, then its record batches as they are computed.

    Iterate it once (or call `read_all`). Execution errors raise `SqlQueryError`; past the
    engine's time limit the next batch raises `QueryTimeout` (a batch still being
    computed is interrupted as in `QueryEngine.execute`).
    """

    def __init__(self, schema: pa.Schema, stream: Any, deadline: float | None,
                 legacy_types: bool = False, limit: float | None = None) -> None:
        self.schema = schema
        self._stream: Any = stream
        self._deadline = deadline
        self._legacy = legacy_types
        self._limit = limit

    def _next(self) -> pa.RecordBatch | None:
        if self._stream is None:
            return None
        try:
            batch = next(self._stream, None)
        except _Interrupted:
            self.close()
            raise
        except BaseException as e:  # noqa: BLE001 - pyo3 panics derive from BaseException
            _reraise_interpreter_exit(e)
            self.close()
            raise _error(str(e), "execution") from None
        if batch is None:
            self.close()
            return None
        out = batch.to_pyarrow()
        if self._legacy:
            out = pa.RecordBatch.from_pylist(
                _legacy_column(pa.Table.from_batches([out]), "data_type").to_pylist(),
                schema=out.schema)
        return out

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        while True:
            if self._deadline is None:
                batch = self._next()
            else:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    self.close()
                    raise _timeout_error(self._limit)
                batch = _with_time_limit(self._next, left, on_timeout=self.close,
                                         reported=self._limit)
            if batch is None:
                return
            yield batch

    def read_all(self) -> pa.Table:
        batches = list(self)
        if not batches:
            return self.schema.empty_table()
        try:
            return pa.Table.from_batches(batches, schema=self.schema)
        except (pa.ArrowInvalid, ValueError):
            return pa.Table.from_batches(batches)

    def close(self) -> None:
        """Stop the query (DataFusion cancels its work when the stream is dropped)."""
        self._stream = None


def _timeout_error(limit: float | None) -> QueryTimeout:
    if limit is None:
        return QueryTimeout("query exceeded its time limit")
    return QueryTimeout(f"query exceeded the time limit of {limit:g}s")


def _with_time_limit(work: Any, limit: float, on_timeout: Any = None,
                     reported: float | None = None) -> Any:
    """`work()` in a thread of its own; past `limit` seconds, interrupt it and raise 408.

    The interruption is an exception raised in that thread: DataFusion's bindings run a
    little Python every second while they wait for a result, which delivers it, and the
    query's future (and with it the DataFusion stream) is dropped, cancelling the work.
    """
    box: dict[str, Any] = {}
    lock = threading.Lock()
    state = {"running": True}

    def run() -> None:
        try:
            try:
                box["result"] = work()
            except _Interrupted:
                pass
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                box["error"] = e
            finally:
                with lock:
                    # (no clearing of a pending async exception here: under a trace
                    # function, coverage's, that call made the thread never finish; a
                    # late interruption is caught by the handler below)
                    state["running"] = False
        except _Interrupted:
            pass

    thread = threading.Thread(target=run, name="weir-query", daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        with lock:
            if state["running"] and thread.ident is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(thread.ident), ctypes.py_object(_Interrupted))
        thread.join(2.0)
        if "result" not in box and "error" not in box:
            if on_timeout is not None:
                on_timeout()
            raise _timeout_error(reported if reported is not None else limit)
    if "error" in box:
        raise box["error"]
    return box["result"]


# ---- parameters --------------------------------------------------------------------------


def _param_values(params: dict[str, Any] | None) -> dict[str, pa.Scalar]:
    if not params:
        return dict(_NO_PARAMS)
    out: dict[str, pa.Scalar] = {}
    for name, v in params.items():
        key = str(name)[1:] if str(name).startswith("$") else str(name)
        if v is None:
            out[key] = pa.scalar(None)
        elif isinstance(v, bool):
            out[key] = pa.scalar(v, pa.bool_())
        elif isinstance(v, int):
            if -(2**63) <= v < 2**63:
                out[key] = pa.scalar(v, pa.int64())
            elif 0 <= v < 2**64:
                out[key] = pa.scalar(v, pa.uint64())
            else:
                raise _error(f"Error during planning: parameter ${key}: integer {v} is out "
                             "of range", "planning")
        elif isinstance(v, float):
            out[key] = pa.scalar(v, pa.float64())
        elif isinstance(v, str):
            out[key] = pa.scalar(v, pa.string())
        else:
            raise _error(f"Error during planning: parameter ${key}: unsupported value of "
                         f"type {type(v).__name__} (use a string, number, boolean or null)",
                         "planning")
    return out


# ---- user tables -------------------------------------------------------------------------


def _named_in(name: str, text: str) -> bool:
    """Whether lower-cased SQL `text` may refer to table `name` (also with its quotes
    doubled inside a quoted identifier or string)."""
    return name in text or name.replace('"', '""') in text or name.replace("'", "''") in text


def query_schema(schema: pa.Schema) -> pa.Schema:
    """The schema a table is queried with: columns sorted by name, `time` NOT NULL."""
    fields = sorted(schema, key=lambda f: f.name)
    return pa.schema([f.with_nullable(False) if f.name == "time" else f for f in fields])


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch with exactly `schema`: columns it lacks become nulls, types are cast."""
    if batch.schema.equals(schema, check_metadata=False):
        return batch
    names = set(batch.schema.names)
    cols = []
    for f in schema:
        if f.name in names:
            col = batch.column(f.name)
            cols.append(col if col.type == f.type else col.cast(f.type))
        else:
            cols.append(pa.nulls(batch.num_rows, f.type))
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def _partitions(batches: list[pa.RecordBatch], n: int) -> list[list[pa.RecordBatch]]:
    """Contiguous runs of about equal row counts, at most `n` of them."""
    total = sum(b.num_rows for b in batches)
    n = max(1, min(n, len(batches)))
    if n == 1:
        return [batches]
    target = total / n
    parts: list[list[pa.RecordBatch]] = [[]]
    rows = 0
    for b in batches:
        if rows >= target * len(parts) and len(parts) < n:
            parts.append([])
        parts[-1].append(b)
        rows += b.num_rows
    return parts


@functools.lru_cache(maxsize=256)
def _empty_parquet(schema: pa.Schema) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), sink)
    return sink.getvalue()


def _memory_table(ctx: SessionContext, iox: Schema, table: pa.Table) -> Any:
    """`table` as a DataFusion memory table with at least one (maybe empty) partition: a
    pyarrow dataset of an empty table has no fragments, which DataFusion's plan checker
    rejects under a sort ("does not satisfy distribution requirements")."""
    batches = table.to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]
    scratch = f"__weir_{uuid.uuid4().hex}"
    ctx.register_record_batches(scratch, [batches])
    memory = iox.table(scratch)
    iox.deregister_table(scratch)
    return memory


def _register_user_table(ctx: SessionContext, iox: Schema, t: TableSnapshot,
                         snap: DatabaseSnapshot, n_partitions: int) -> None:
    provider = _user_table_provider(ctx, iox, t, snap, n_partitions)
    if t.min_time is not None:
        # the database's retention period: older rows are gone for every query at once,
        # before the compactor removes them from storage
        scratch = f"__weir_{uuid.uuid4().hex}"
        iox.register_table(scratch, provider)
        provider = ctx.table(scratch).filter(
            col("time") >= lit(pa.scalar(t.min_time, _TS)))
        iox.deregister_table(scratch)
    iox.register_table(t.name, provider)


def _user_table_provider(ctx: SessionContext, iox: Schema, t: TableSnapshot,
                         snap: DatabaseSnapshot, n_partitions: int) -> Any:
    schema = query_schema(t.schema)
    memory = None
    if t.batches or not t.files:
        batches = [_conform(b, schema) for b in t.batches if b.num_rows]
        if not batches:
            batches = [pa.RecordBatch.from_pylist([], schema=schema)]
        scratch = f"__weir_{uuid.uuid4().hex}"
        ctx.register_record_batches(scratch, _partitions(batches, n_partitions))
        memory = iox.table(scratch)
        iox.deregister_table(scratch)
    if not t.files:
        return memory
    parquet = ds.ParquetFileFormat()
    files = ds.FileSystemDataset.from_paths(
        [f.path for f in t.files],
        schema=schema,
        format=parquet,
        filesystem=snap.filesystem,
        partitions=[(pc.field("time") >= pa.scalar(f.min_time, _TS))
                    & (pc.field("time") <= pa.scalar(f.max_time, _TS)) for f in t.files],
    )
    # A scan whose filter prunes every file would have zero partitions, which DataFusion's
    # plan checker rejects under a sort ("does not satisfy distribution requirements"), so
    # every file list also holds one empty Parquet file kept in memory, never pruned.
    files = ds.FileSystemDataset(
        [*files.get_fragments(), parquet.make_fragment(pa.BufferReader(_empty_parquet(schema)))],
        schema, parquet, snap.filesystem)
    if memory is None:
        return files
    a, b = f"__weir_{uuid.uuid4().hex}", f"__weir_{uuid.uuid4().hex}"
    iox.register_table(a, files)
    iox.register_table(b, memory)
    both = ctx.table(a).union(ctx.table(b))
    iox.deregister_table(a)
    iox.deregister_table(b)
    return both


# ---- information_schema ------------------------------------------------------------------


def legacy_type_name(df_type: str) -> str:
    """DataFusion 55's type text in the Arrow (< 57) spelling plugins compare with:
    `Timestamp(ns)` -> `Timestamp(Nanosecond, None)`, `Timestamp(ms, "UTC")` ->
    `Timestamp(Millisecond, Some("UTC"))`, `Time64(µs)` -> `Time64(Microsecond)`,
    `Duration(s)` -> `Duration(Second)`; other types are already spelt the same."""
    def repl(m: re.Match[str]) -> str:
        kind, unit = m.group(1), _UNIT_NAMES[m.group(2)]
        if kind != "Timestamp":
            return f"{kind}({unit})"
        tz = m.group(3)
        return f"Timestamp({unit}, {'None' if tz is None else f'Some({chr(34)}{tz}{chr(34)})'})"

    return _NEW_TYPE.sub(repl, df_type)


def _legacy_column(table: pa.Table, name: str) -> pa.Table:
    if name not in table.column_names:
        return table
    i = table.column_names.index(name)
    col = table.column(i)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
            or pa.types.is_string_view(col.type)):
        return table
    values = [None if v is None else legacy_type_name(v) for v in col.to_pylist()]
    return table.set_column(i, table.field(i), pa.array(values, col.type))


def _statement_start(sql: str) -> str:
    return sql[_LEADING_COMMENTS.match(sql).end():]  # type: ignore[union-attr]


def _system_tables_for_columns(snap: DatabaseSnapshot, sql: str, start: str,
                               values: dict[str, pa.Scalar]) -> set[str]:
    """System tables an information_schema query may need built (to list their columns).

    Building a system table only to list its columns can be costly, so none for SHOW TABLES
    or queries that do not read `columns`; for SHOW COLUMNS FROM t, t if it is one; else all
    of them when the SQL mentions `system` or has no `table_name` filter, and otherwise
    those it names (in its text or in a parameter value).
    """
    names = {n.lower() for n in snap.system_tables}
    words = {w.lower() for w in _WORD.findall(sql)}
    show_columns = _SHOW_COLUMNS.match(start)
    if show_columns:
        return names & {w.lower() for w in _WORD.findall(start[show_columns.end():])}
    if _SHOW.match(start) or "columns" not in words:
        return set()
    if "system" in words or "table_name" not in words:
        return names
    mentioned = words | {str(v.as_py()).lower() for v in values.values()
                         if pa.types.is_string(v.type)}
    return names & mentioned


def _install_information_schema(ctx: SessionContext, snap: DatabaseSnapshot, sql: str,
                                start: str) -> None:
    """Swap DataFusion's information_schema for a copy with the reference's type names.

    DataFusion resolves `information_schema.*` itself while that option is on, so its views
    are read first, the option is turned off, and the patched copies are registered as an
    ordinary schema (SHOW TABLES / SHOW COLUMNS then read them as they would the originals).
    """
    words = {w.lower() for w in _WORD.findall(sql)}
    settings = "df_settings" in words or bool(
        _SHOW.match(start) and not _SHOW_TABLES_OR_COLUMNS.match(start))
    captured: dict[str, pa.Table] = {}
    for view in _INFO_VIEWS:
        if view in ("tables", "views", "columns", "schemata") or (
                view == "df_settings" and settings) or view in words:
            captured[view] = ctx.sql(f"SELECT * FROM {INFO_SCHEMA}.{view}").to_arrow_table()
    ctx.sql("SET datafusion.catalog.information_schema = false")

    rank = {USER_SCHEMA: 0, SYSTEM_SCHEMA: 1}

    def order(table: pa.Table, *keys: str) -> pa.Table:
        if table.num_rows == 0:
            return table
        schemas = table.column(keys[0]).to_pylist()
        idx = sorted(range(table.num_rows), key=lambda i: (
            rank.get(schemas[i], 2), schemas[i],
            *(table.column(k)[i].as_py() for k in keys[1:])))
        return table.take(pa.array(idx, pa.int64()))

    tables = captured["tables"]
    rows = tables.to_pylist()
    user = [r for r in rows if r["table_schema"] != INFO_SCHEMA]
    listed = {(r["table_schema"], r["table_name"]) for r in user}
    for r in user:
        r["table_type"] = "BASE TABLE"  # tables with files and buffer are UNION views
    for name in snap.system_tables:
        if (SYSTEM_SCHEMA, name) not in listed:
            user.append({"table_catalog": CATALOG, "table_schema": SYSTEM_SCHEMA,
                         "table_name": name, "table_type": "BASE TABLE"})
    user = order(pa.Table.from_pylist(user, schema=tables.schema),
                 "table_schema", "table_name").to_pylist() if user else []
    info_rows = [{"table_catalog": CATALOG, "table_schema": INFO_SCHEMA, "table_name": v,
                  "table_type": "VIEW"} for v in _INFO_VIEWS]
    captured["tables"] = pa.Table.from_pylist(user + info_rows, schema=tables.schema)
    columns = captured["columns"]
    captured["columns"] = order(_legacy_column(columns, "data_type"),
                                "table_schema", "table_name", "ordinal_position")
    captured["views"] = order(captured["views"], "table_schema", "table_name")
    if "parameters" in captured:
        captured["parameters"] = _legacy_column(captured["parameters"], "data_type")
    if "routines" in captured:
        captured["routines"] = _legacy_column(captured["routines"], "data_type")

    info = Schema.memory_schema()
    ctx.catalog(CATALOG).register_schema(INFO_SCHEMA, info)
    iox = ctx.catalog(CATALOG).schema(USER_SCHEMA)
    for view in _INFO_VIEWS:
        if view in captured:
            info.register_table(view, _memory_table(ctx, iox, captured[view]))


# ---- errors ------------------------------------------------------------------------------

_SERVER_SIDE = ("Internal error", "Resources exhausted", "IO error", "Object Store error",
                "Parquet error", "External error", "Execution error: Join Error")


def _reraise_interpreter_exit(e: BaseException) -> None:
    if isinstance(e, KeyboardInterrupt | SystemExit | GeneratorExit):
        raise e


def _error(message: str, phase: str) -> SqlQueryError:
    """DataFusion's error text as the reference reports it (status, message)."""
    detail = message
    while detail.startswith("DataFusion error: "):
        detail = detail[len("DataFusion error: "):]
    detail = detail.strip()
    root = detail.rsplit("caused by\n", 1)[-1].strip()
    if phase == "planning":
        kind: type[SqlQueryError]
        if root.startswith("This feature is not implemented") or \
                detail.startswith("This feature is not implemented"):
            kind = SqlUnsupported
        elif root.startswith(_SERVER_SIDE):
            kind = SqlFailed
        else:
            kind = SqlPlanningError  # plan, SQL, schema and constant-folding (cast) errors
        return kind(f"error while planning query: {detail}", detail=detail, phase="planning")
    return SqlFailed(f"error while executing plan: {detail}", detail=detail,
                     phase="execution")
