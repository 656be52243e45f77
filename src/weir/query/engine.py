"""SQL over one database snapshot with DataFusion, the engine InfluxDB 3 uses.

A DataFusion session per query at a time, kept for the next query of the same database
(`_Session`: a new one costs a quarter of a millisecond more, a large share of a small
query). Its catalog `public` has three schemas, each a Python schema provider
(`_LazySchema`) bound to the query's snapshot, whose `table(name)` DataFusion calls while
it plans, for exactly the tables the statement names; a table no statement names is never
made:

* `iox`, the user tables. A table whose data is all in the buffer is an in-memory table
  (split into partitions for parallelism); one with Parquet files is a pyarrow dataset of
  those files, each tagged with its time range as a partition expression so a time filter
  skips files without opening them; with both, a UNION ALL view of the two. Columns are
  sorted by name (`SELECT *` order: `f1, f2, t1, t2, time`) and `time` is NOT NULL, as in
  the reference.
* `system`, the snapshot's system tables (weir.system_tables): one is built only when a
  statement reads it.
* `information_schema`, Weir's own copy of DataFusion's views, so that `data_type` uses the
  Arrow spellings plugins compare with: `Timestamp(Nanosecond, None)`, not DataFusion 55's
  `Timestamp(ns)`. DataFusion's own views are turned off in the query's session (they would
  shadow this schema, and would make every table to list it); each view is read from a
  second session holding empty stand-ins of the same tables and system tables, so listing
  tables and columns builds nothing. SHOW TABLES, SHOW COLUMNS and SHOW <setting> read these
  views as they would DataFusion's (DataFusion asks for all seven on any SHOW statement).
* `$name` placeholders come from `params`; a missing one fails with DataFusion's own
  `No value found for placeholder with name $name`.
* DDL, DML and SET are refused; errors become `SqlQueryError` kinds (`QueryError`s).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import dataclasses
import functools
import heapq
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, TypeVar

import datafusion
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from datafusion import (
    DataFrame,
    RuntimeEnvBuilder,
    SessionConfig,
    SessionContext,
    SQLOptions,
    col,
    lit,
)
from datafusion.catalog import Schema, SchemaProvider, Table
from datafusion.common import RexType
from datafusion.expr import DescribeTable, Placeholder

from weir.errors import QueryError, QueryFailed, QueryTimeout, QueryUnsupported
from weir.query.source import DatabaseSnapshot, TableFunction, TableSnapshot
from weir.query.time_floor import time_floors

__all__ = ["QueryDescription", "QueryEngine", "QueryStream", "SqlQueryError",
           "legacy_type_name", "query_schema"]

CATALOG = "public"
USER_SCHEMA = "iox"
SYSTEM_SCHEMA = "system"
INFO_SCHEMA = "information_schema"

_TS = pa.timestamp("ns")
#: a table with more Parquet files than this makes a query plan twice: first over empty
#: stand-ins to find the earliest time it wants of each table, then for real without the
#: files wholly before it (a planning pass costs about a millisecond; a file, its footer
#: read and its scan planned, about as much)
_PRUNE_FILES_OVER = 8
#: `execute_stream` reads a result's first batches while it plans, until its end or this
#: many rows: a small result is then whole when planning returns (see `QueryStream.computed`)
_PREFETCH_ROWS = 1024
_SQL_OPTIONS = SQLOptions().with_allow_ddl(False).with_allow_dml(False) \
    .with_allow_statements(False)
#: bound when the caller gave no parameters, so DataFusion still checks every placeholder
#: and reports a missing one in the reference's words
_NO_PARAMS = {"__weir_no_params__": pa.scalar(0, pa.int64())}

_UNIT_NAMES = {"s": "Second", "ms": "Millisecond", "µs": "Microsecond", "us": "Microsecond",
               "ns": "Nanosecond"}
_NEW_TYPE = re.compile(r'\b(Timestamp|Time32|Time64|Duration)\((s|ms|µs|us|ns)(?:, "([^"]*)")?\)')
#: the order DataFusion lists its information_schema views in
_INFO_VIEWS = ("tables", "views", "columns", "df_settings", "schemata", "routines",
               "parameters")
#: the views that depend only on the session's settings, not on its tables
_SETTINGS_VIEWS = frozenset({"df_settings", "routines", "parameters"})

_T = TypeVar("_T")


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
    """Runs SQL against `DatabaseSnapshot`s; thread-safe, one DataFusion session a query
    at a time (sessions are reused, see `_Session`).

    `timeout` (seconds): a query still running then is interrupted (DataFusion notices
    within about a second, between polls; the caller waits for an operator stuck in one
    long computation to notice) and `execute` raises `QueryTimeout`.
    `memory_limit` (bytes): each query's DataFusion memory pool (fair spill pool); operators
    that cannot spill fail with `Resources exhausted`. Scans themselves are not counted.
    """

    def __init__(self, timeout: float | None = None, memory_limit: int | None = None,
                 target_partitions: int | None = None) -> None:
        self.timeout = timeout if timeout and timeout > 0 else None
        self.memory_limit = memory_limit if memory_limit and memory_limit > 0 else None
        self.target_partitions = target_partitions or os.cpu_count() or 1
        self._scratch = _Scratch()
        #: (settings, view) -> a settings-only information_schema view, patched, as a
        #: memory table every session may share
        self._settings_views: dict[tuple[int, int | None, str], Table] = {}
        #: (database, table) -> its provider as last made, for the next query to reuse
        self._providers = _ProviderCache()
        #: idle DataFusion sessions, for the next query of the same database
        self._sessions = _SessionPool()
        #: Parquet files left out of plans by their tables' time floors (a statistic)
        self.files_left_out = 0

    # ---- public -------------------------------------------------------------------------

    def execute(self, snapshot: DatabaseSnapshot, sql: str,
                params: dict[str, Any] | None = None,
                on_planned: Callable[[], None] | None = None) -> pa.Table:
        """Run one SQL statement and return all its rows. Raises QueryError.
        `on_planned` is called once the statement is planned, before it runs."""
        if self.timeout is None:
            return self._execute(snapshot, sql, params, on_planned)
        return _with_time_limit(lambda: self._execute(snapshot, sql, params, on_planned),
                                self.timeout)

    def execute_stream(self, snapshot: DatabaseSnapshot, sql: str,
                       params: dict[str, Any] | None = None,
                       on_planned: Callable[[], None] | None = None) -> QueryStream:
        """Plan one SQL statement (planning errors raise here) and return its result as a
        stream of record batches (feed it to `formats.encode_batches`). The time limit
        covers planning plus the whole read. `on_planned` is called once the statement
        is planned, before any of it runs.

        Its first batches are computed here, up to `_PREFETCH_ROWS` rows or its end, so a
        small result is whole on return (`QueryStream.computed`) and its reader needs no
        worker thread of its own. What goes wrong in them (an execution error, the time
        limit) is raised by the read that reaches it, as if they were computed then."""
        limit = self.timeout
        if limit is None:
            stream = self._plan(snapshot, sql, params, None)
        else:
            deadline = time.monotonic() + limit
            stream = _with_time_limit(lambda: self._plan(snapshot, sql, params, deadline),
                                      limit)
        if on_planned is not None:
            on_planned()
        stream._prefetch(_PREFETCH_ROWS)
        return stream

    def describe(self, snapshot: DatabaseSnapshot, sql: str,
                 params: dict[str, Any] | None = None) -> QueryDescription:
        """Plan one SQL statement without running it (FlightSQL asks before it fetches):
        the schema `execute_stream` would give its result, and its `$placeholders`. With
        `params` None, placeholders may stay unbound (a statement being prepared); their
        types are the ones DataFusion infers from where they stand (`host = $1`: the type
        of `host`), or null where it cannot tell (`SELECT $1`, `LIMIT $1`). Nothing is
        read: the user tables are planned as empty stand-ins of their schemas (so a
        snapshot of schemas alone will do, and no provider is built or cached), the
        information_schema views as they are with no tables (their columns are the same),
        and a system table is built only if the statement names it."""
        values = _param_values(params) if params is not None else None
        failures: list[BaseException] = []
        tables = snapshot.tables
        no_tables = _InformationSchema(self, DatabaseSnapshot(
            name=snapshot.name, tables={}, filesystem=snapshot.filesystem))
        try:
            session = _Session(self._context(information_schema=False), snapshot)
            self._bind(session, snapshot, failures)
            ctx = session.ctx
            catalog = ctx.catalog(CATALOG)
            catalog.register_schema(USER_SCHEMA, _LazySchema(
                tables, lambda name: _stand_in(query_schema(tables[name].schema)), failures))
            catalog.register_schema(INFO_SCHEMA, _LazySchema(_INFO_VIEWS, no_tables.view,
                                                             failures))
            df = ctx.sql(sql, options=_SQL_OPTIONS, param_values=values)
            schema = df.schema()
            parameters = _placeholders(df.logical_plan())
        except _Interrupted:
            raise
        except BaseException as e:  # noqa: BLE001 - pyo3 panics derive from BaseException
            raise _planning_failure(e, failures) from None
        return QueryDescription(schema, parameters)

    # ---- one query ------------------------------------------------------------------------

    def _context(self, information_schema: bool) -> SessionContext:
        cfg = (SessionConfig()
               .with_default_catalog_and_schema(CATALOG, USER_SCHEMA)
               .with_information_schema(information_schema)
               .with_target_partitions(self.target_partitions))
        if self.memory_limit:
            return SessionContext(cfg, RuntimeEnvBuilder().with_fair_spill_pool(
                self.memory_limit))
        return SessionContext(cfg)

    def _execute(self, snapshot: DatabaseSnapshot, sql: str, params: dict[str, Any] | None,
                 on_planned: Callable[[], None] | None = None) -> pa.Table:
        stream = self._plan(snapshot, sql, params, None)
        if on_planned is not None:
            on_planned()
        return stream.read_all()

    def _plan(self, snapshot: DatabaseSnapshot, sql: str, params: dict[str, Any] | None,
              deadline: float | None) -> QueryStream:
        values = _param_values(params)
        failures: list[BaseException] = []
        floors = (self._time_floors(snapshot, sql, values)
                  if snapshot.most_files > _PRUNE_FILES_OVER else {})
        key = (snapshot.name, frozenset(snapshot.table_functions), self.target_partitions,
               self.memory_limit)
        session = self._sessions.take(key) or _Session(
            self._context(information_schema=False), snapshot)
        try:
            self._bind(session, snapshot, failures, floors)
            df = session.ctx.sql(sql, options=_SQL_OPTIONS, param_values=values)
            stream = df.execute_stream()  # physical planning happens here
            schema = df.schema()
            legacy = isinstance(df.logical_plan().to_variant(), DescribeTable)
        except _Interrupted:
            session.unbind()  # (and not reused: it was stopped half way)
            raise
        except BaseException as e:  # noqa: BLE001 - pyo3 panics derive from BaseException
            session.unbind()
            self._sessions.give_back(key, session)
            raise _planning_failure(e, failures) from None
        # (the plan holds the tables it names: the schemas need not hold the snapshot)
        session.unbind()
        result = QueryStream(schema, stream, deadline, legacy, self.timeout)
        # its memory pool (--exec-mem-pool-bytes) is the query's own until it ends
        result.on_end = lambda: self._sessions.give_back(key, session)
        return result

    def _time_floors(self, snapshot: DatabaseSnapshot, sql: str,
                     values: dict[str, Any] | None) -> dict[str, int]:
        """Each table's earliest time the statement can read (query.time_floor), from a
        plan over empty stand-ins of the tables; {} where that planning fails (the real
        planning then reports the error)."""
        tables = snapshot.tables
        try:
            ctx = self._context(information_schema=False)
            ctx.catalog(CATALOG).register_schema(USER_SCHEMA, _LazySchema(
                tables, lambda name: _stand_in(query_schema(tables[name].schema)), []))
            plan = ctx.sql(sql, options=_SQL_OPTIONS, param_values=values) \
                .optimized_logical_plan()
            return time_floors(plan, USER_SCHEMA)
        except _Interrupted:
            raise
        except BaseException:  # noqa: BLE001 - pyo3 panics derive from BaseException
            return {}

    def _bind(self, session: _Session, snap: DatabaseSnapshot,
              failures: list[BaseException], floors: Mapping[str, int] | None = None) -> None:
        """The session's three lazy schemas and table functions, made to read `snap`; a
        table named in `floors` without its files wholly before that time. (What they
        hold must not refer to the session's context: DataFusion holds them, and a
        reference cycle through it would never be collected.)"""
        scratch, n_partitions, providers, engine = (self._scratch, self.target_partitions,
                                                    self._providers, self)

        local = _local_root(snap.filesystem)

        def user_table(name: str) -> Table:
            t = snap.tables[name]
            floor = (floors or {}).get(name)
            if floor is not None and any(f.max_time < floor for f in t.files):
                kept = [f for f in t.files if f.max_time >= floor]
                engine.files_left_out += len(t.files) - len(kept)
                t = dataclasses.replace(t, files=kept)
            if local is not None:
                _require_files(local, t)
            table = providers.get(snap.name, t)
            if table is None:
                table = _user_table(scratch, t, snap, n_partitions, local)
                providers.put(snap.name, t, table)
            return _within_retention(scratch, table, t.min_time)

        def system_table(name: str) -> Table:
            try:
                table = snap.system_tables[name].read()
            except Exception as e:  # noqa: BLE001 - any builder's failure: this query's error
                raise _error(f"error building system table {name}: {type(e).__name__}: {e}",
                             "execution") from None
            return _off_planner(lambda: scratch.memory_table([_batches_of(table)]))

        info = _InformationSchema(self, snap)
        session.user.bind(snap.tables, user_table, failures)
        session.system.bind(snap.system_tables, system_table, failures)
        session.info.bind(_INFO_VIEWS, info.view, failures)
        for name, function in snap.table_functions.items():
            session.functions[name].bind(scratch, function, failures)

    def _settings_view(self, view: str) -> Table:
        """df_settings, routines or parameters: the same for every session of this engine,
        so read once (routines and parameters list every function: a few milliseconds)."""
        key = (self.target_partitions, self.memory_limit, view)
        table = self._settings_views.get(key)
        if table is None:
            ctx, scratch = self._context(information_schema=True), self._scratch
            table = self._settings_views[key] = _off_planner(lambda: scratch.memory_table(
                [_batches_of(_patch_view(view, _read_view(ctx, view)))]))
        return table


class _Session:
    """A DataFusion session with Weir's schemas and a database's table functions, bound
    to one snapshot while a query is planned, kept for the next query of that database.

    A new session costs about a quarter of a millisecond more than one used before (its
    state, its first plan), a large share of a small query. Nothing of one query stays for
    the next: SQL cannot change a session (DDL, DML and SET are refused), and the schemas
    are bound afresh to each query's snapshot, so what a table reads is decided per query
    as before (`_ProviderCache` reuses a provider only while its rows are the same).
    """

    def __init__(self, ctx: SessionContext, snap: DatabaseSnapshot) -> None:
        self.ctx = ctx
        #: given back to its pool since it was last taken
        self.returned = False
        self.user = _LazySchema()
        self.system = _LazySchema()
        self.info = _LazySchema()
        catalog = ctx.catalog(CATALOG)
        catalog.register_schema(USER_SCHEMA, self.user)
        catalog.register_schema(SYSTEM_SCHEMA, self.system)
        catalog.register_schema(INFO_SCHEMA, self.info)
        #: the same names for as long as the session is used (its pool's key)
        self.functions = {name: _BoundFunction() for name in snap.table_functions}
        for name, function in self.functions.items():
            ctx.register_udtf(datafusion.udtf(function, name))

    def unbind(self) -> None:
        """Let go of the snapshot (its rows) once the query is planned."""
        for schema in (self.user, self.system, self.info):
            schema.bind((), _no_table, [])
        for function in self.functions.values():
            function.unbind()


def _no_table(name: str) -> Table:
    raise KeyError(name)


class _SessionPool:
    """Idle sessions by (database, table function names, settings): at most `per_key`
    each, for at most `max_keys` keys (the least recently used go first)."""

    def __init__(self, per_key: int = 4, max_keys: int = 64) -> None:
        self._idle: dict[tuple[object, ...], list[_Session]] = {}
        self._lock = threading.Lock()
        self._per_key = per_key
        self._max_keys = max_keys

    def take(self, key: tuple[object, ...]) -> _Session | None:
        with self._lock:
            idle = self._idle.get(key)
            if not idle:
                return None
            session = idle.pop()
            session.returned = False
            return session

    def give_back(self, key: tuple[object, ...], session: _Session) -> None:
        """Once per `take` (a stream closed by its reader and by a cancelled request at
        once may call twice: one session must never serve two queries at a time)."""
        with self._lock:
            if session.returned:
                return
            session.returned = True
            idle = self._idle.pop(key, [])
            self._idle[key] = idle  # (now the most recently used)
            if len(idle) < self._per_key:
                idle.append(session)
            while len(self._idle) > self._max_keys:
                del self._idle[next(iter(self._idle))]


class _LazySchema(SchemaProvider):
    """A schema whose tables are made when DataFusion's planner asks for them, once each
    per `bind` (one query's).

    `make(name)` runs inside DataFusion's planner: it must not call a binding that waits on
    DataFusion's runtime itself (see `_off_planner`). What it raises is kept in `failures`
    (DataFusion reports it only as text), so the caller can raise it as it was.
    """

    def __init__(self, names: Mapping[str, object] | tuple[str, ...] = (),
                 make: Callable[[str], Table] = _no_table,
                 failures: list[BaseException] | None = None) -> None:
        self.bind(names, make, [] if failures is None else failures)

    def bind(self, names: Mapping[str, object] | tuple[str, ...],
             make: Callable[[str], Table], failures: list[BaseException]) -> None:
        self._names = list(names)
        self._known = frozenset(self._names)
        self._make = make
        self._failures = failures
        self._made: dict[str, Table] = {}

    # DataFusion's bindings read `table_names` as an attribute (`getattr` then a list), not
    # as the method the base class declares, so it is a property here
    @property
    def table_names(self) -> list[str]:  # type: ignore[override]
        return list(self._names)

    def table_exist(self, name: str) -> bool:
        return name in self._known

    def table(self, name: str) -> Table | None:
        if name not in self._known:
            return None
        made = self._made.get(name)
        if made is None:
            try:
                made = self._made[name] = self._make(name)
            except BaseException as e:
                self._failures.append(e)
                raise
        return made


class _BoundFunction:
    """A table function as DataFusion calls it while it plans, bound to one query's
    function (`bind`): literal arguments in, a memory table out (half the time of a
    dataset's scan, filtered or not). What it raises is kept in `failures` (DataFusion
    keeps only its text), a `QueryError` as the planning error DataFusion's own
    `plan_err!` would give."""

    def __init__(self) -> None:
        self._scratch: _Scratch | None = None
        self._function: TableFunction | None = None
        self._failures: list[BaseException] = []

    def bind(self, scratch: _Scratch, function: TableFunction,
             failures: list[BaseException]) -> None:
        self._scratch, self._function, self._failures = scratch, function, failures

    def unbind(self) -> None:
        self._scratch, self._function, self._failures = None, None, []

    def __call__(self, *args: Any) -> Table:
        scratch, function = self._scratch, self._function
        try:
            if scratch is None or function is None:
                raise RuntimeError("table function called outside a query")
            rows = function([_literal(a) for a in args])
            return _off_planner(lambda: scratch.memory_table([_batches_of(rows)]))
        except QueryError as e:
            failure: BaseException = _error(f"Error during planning: {e}", "planning")
        except BaseException as e:  # noqa: BLE001 - kept, then raised as it was
            failure = e
        self._failures.append(failure)
        raise failure


def _literal(arg: Any) -> object:
    """A table function's argument as a Python value; a non-literal as a plain object."""
    if isinstance(arg.to_variant(), datafusion.expr.Literal):
        value: object = arg.python_value().as_py()  # (a pyarrow scalar)
        return value
    return object()


def _planning_failure(e: BaseException, failures: list[BaseException]) -> BaseException:
    """What to raise when planning failed with `e`: an interpreter exit as it is, what a
    lazy schema kept (a table the statement names could not be made), else `e` as a
    planning error."""
    _reraise_interpreter_exit(e)
    if failures:
        failure = failures[0]
        # (the session holds the list: keeping the exception, whose traceback holds the
        # session, would make a cycle the collector cannot see)
        failures.clear()
        return _table_failure(failure)
    return _error(str(e), "planning")


def _table_failure(e: BaseException) -> BaseException:
    """What to raise for an exception a lazy schema kept: interruptions and query errors as
    they are, anything else as an execution error (a bad snapshot, a failing builder)."""
    if isinstance(e, SqlQueryError) or not isinstance(e, Exception):
        return e
    return _error(f"{type(e).__name__}: {e}", "execution")


# ---- making tables while DataFusion plans ------------------------------------------------

#: DataFusion calls a schema provider's `table()` from inside its async planner, where a
#: binding call that waits on DataFusion's runtime (looking a table up, running a query)
#: panics: "Cannot start a runtime from within a runtime". Such calls run here instead,
#: one hop per table made.
_HELPERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="weir-query-tables")


def _off_planner(work: Callable[[], _T]) -> _T:
    return _HELPERS.submit(work).result()


class _Scratch:
    """A DataFusion session that only makes table providers (memory tables, views) for the
    sessions that run queries. Shared by threads: each name it registers is unique and is
    deregistered at once (a provider made from it keeps what it needs). Its methods wait
    on DataFusion's runtime: call them through `_off_planner`."""

    def __init__(self) -> None:
        self._ctx = SessionContext()
        self._schema = self._ctx.catalog().schema()

    def memory_table(self, partitions: list[list[pa.RecordBatch]]) -> Table:
        name = _scratch_name()
        self._ctx.register_record_batches(name, partitions)
        try:
            return self._schema.table(name)
        finally:
            self._schema.deregister_table(name)

    def parquet_files(self, paths: list[str], schema: pa.Schema) -> Table:
        """Local Parquet files read by DataFusion itself, in `schema` (columns a file
        lacks read as nulls)."""
        frames = [self._ctx.read_parquet(p, schema=schema) for p in paths]
        return Table(functools.reduce(DataFrame.union, frames))

    def frame(self, table: Table | ds.Dataset) -> DataFrame:
        name = _scratch_name()
        self._schema.register_table(name, table)
        try:
            return self._ctx.table(name)
        finally:
            self._schema.deregister_table(name)


def _scratch_name() -> str:
    return f"__weir_{uuid.uuid4().hex}"


def _batches_of(table: pa.Table) -> list[pa.RecordBatch]:
    """At least one (maybe empty) batch: a memory table with no partition at all is
    rejected under a sort by DataFusion's plan checker ("does not satisfy distribution
    requirements")."""
    batches: list[pa.RecordBatch] = table.to_batches()
    return batches or [pa.RecordBatch.from_pylist([], schema=table.schema)]


@dataclass(frozen=True)
class QueryDescription:
    """A statement planned but not run (`QueryEngine.describe`)."""

    #: the columns of its result
    schema: pa.Schema
    #: its placeholders as fields named as written (`$1`, `$host`; numbered ones first, in
    #: order, then named ones as they appear), each typed as DataFusion infers it (a
    #: dictionary as its value type; null where nothing tells) and nullable
    parameters: pa.Schema


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
        #: called once when the stream is closed (read to its end, failed or dropped)
        self.on_close: Callable[[], None] | None = None
        #: the engine's own `on_close` (its session goes back to the pool)
        self.on_end: Callable[[], None] | None = None
        #: given an execution error, the error that explains it better, if any (the
        #: storage side's: its object store does not answer)
        self.explain_failure: Callable[[SqlQueryError], BaseException | None] | None = None
        #: rows read so far
        self.rows = 0
        self._ended: Literal["success", "fail"] | None = None
        #: batches computed before they were asked for (`_prefetch`), next to be read
        self._ready: collections.deque[pa.RecordBatch] = collections.deque()
        #: DataFusion's stream has ended: every batch left is in `_ready`
        self._exhausted = False
        #: what went wrong computing ahead, for the read after the `_ready` batches
        self._deferred: BaseException | None = None

    @property
    def computed(self) -> bool:
        """Every batch of the result is in memory, and no error is: reading it runs no
        query work, so it may be read on any thread (the event loop's)."""
        return self._exhausted

    @property
    def computed_rows(self) -> int:
        """The rows of the batches in memory not yet read."""
        return sum(b.num_rows for b in self._ready)

    @property
    def computed_bytes(self) -> int:
        """The size of the batches in memory not yet read."""
        return sum(b.nbytes for b in self._ready)

    @property
    def outcome(self) -> Literal["success", "fail", "cancel"]:
        """How reading ended: read to its end, failed (an error, the time limit), or
        stopped by its reader (so far)."""
        return self._ended or "cancel"

    def _fail(self) -> None:
        self._ended = self._ended or "fail"
        self.close()

    def _prefetch(self, max_rows: int) -> None:
        """Compute batches ahead of the reader, in the planning thread, until the end or
        `max_rows` rows, within what is left of the time limit. An error (the time limit
        included) is kept for the read that reaches it."""
        if self._deadline is None:
            self._read_ahead(max_rows)
            return
        left = self._deadline - time.monotonic()
        if left <= 0:
            return  # (the first read reports the time limit)
        try:
            _with_time_limit(lambda: self._read_ahead(max_rows), left, reported=self._limit)
        except QueryTimeout as e:
            self._deferred = e

    def _read_ahead(self, max_rows: int) -> None:
        rows = 0
        try:
            while rows < max_rows:
                batch = self._compute()
                if batch is None:
                    self._exhausted = True
                    self._stream = None  # (DataFusion's stream is done: let it go now)
                    return
                self._ready.append(batch)
                rows += batch.num_rows
        except _Interrupted:
            raise
        except BaseException as e:  # noqa: BLE001 - pyo3 panics derive from BaseException
            _reraise_interpreter_exit(e)
            self._deferred = e

    def _next(self) -> pa.RecordBatch | None:
        try:
            batch: pa.RecordBatch | None = self._ready.popleft()
        except IndexError:  # (not `if self._ready`: `close` may empty it meanwhile)
            deferred, self._deferred = self._deferred, None
            if deferred is not None:
                self._raise_failure(deferred)
            if self._stream is None and not self._exhausted:
                return None  # closed
            try:
                batch = None if self._exhausted else self._compute()
            except _Interrupted:
                self._fail()
                raise
            except BaseException as e:  # noqa: BLE001 - pyo3 panics derive from BaseException
                _reraise_interpreter_exit(e)
                self._raise_failure(e)
        if batch is None:
            self._ended = self._ended or "success"
            self.close()
            return None
        self.rows += batch.num_rows
        return batch

    def _compute(self) -> pa.RecordBatch | None:
        """DataFusion's next batch, converted; None at its end. Errors raise as they
        come from DataFusion (see `_raise_failure`)."""
        batch = next(self._stream, None)
        if batch is None:
            return None
        out = batch.to_pyarrow()
        if self._legacy:
            out = pa.RecordBatch.from_pylist(
                _legacy_column(pa.Table.from_batches([out]), "data_type").to_pylist(),
                schema=out.schema)
        return out

    def _raise_failure(self, e: BaseException) -> NoReturn:
        """Close the stream as failed and raise `e` as the query's error."""
        self._fail()
        if isinstance(e, QueryError):  # (the time limit, met while computing ahead)
            raise e
        err = _error(str(e), "execution")
        better = self.explain_failure(err) if self.explain_failure is not None else None
        if better is not None:
            raise better from err
        raise err from None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        while True:
            if self._deadline is None or self._ready or self._exhausted:
                # (a batch already computed: no query work, no time limit, any thread)
                batch = self._next()
            else:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    self._fail()
                    raise _timeout_error(self._limit)
                batch = _with_time_limit(self._next, left, on_timeout=self._fail,
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
        self._ready.clear()
        self._exhausted = False
        self._deferred = None
        ended, self.on_end = self.on_end, None
        if ended is not None:
            ended()
        done, self.on_close = self.on_close, None
        if done is not None:
            done()


def _timeout_error(limit: float | None) -> QueryTimeout:
    if limit is None:
        return QueryTimeout("query exceeded its time limit")
    return QueryTimeout(f"query exceeded the time limit of {limit:g}s")


def _with_time_limit(work: Callable[[], _T], limit: float,
                     on_timeout: Callable[[], None] | None = None,
                     reported: float | None = None) -> _T:
    """`work()` in this thread; past `limit` seconds, interrupt it and raise 408.

    The interruption is an exception raised in this thread by the one watchdog thread
    (`_WATCHDOG`): DataFusion's bindings run a little Python every second while they wait
    for a result, which delivers it, and the query's future (and with it the DataFusion
    stream) is dropped, cancelling the work. The work runs here rather than in a thread
    of its own because starting and joining a thread per query cost more than the rest of
    a small query (about a millisecond, twice for a streamed one). The catch: work that
    never runs Python again cannot be abandoned, it is waited for.
    """
    watch = _WATCHDOG.watch(threading.get_ident(), time.monotonic() + limit)
    interrupted = completed = False
    result: _T | None = None
    try:
        try:
            result = work()
            completed = True
        except _Interrupted:
            interrupted = True
        finally:
            sent = _WATCHDOG.finish(watch)
        if sent and not interrupted:
            # the interruption was sent just as the work ended and is still pending:
            # take it here, not somewhere in the caller's code (clearing it instead, with
            # PyThreadState_SetAsyncExc(id, NULL), made the thread hang under coverage)
            while True:
                time.sleep(0.001)
    except _Interrupted:
        interrupted = not completed
    if interrupted:
        if on_timeout is not None:
            on_timeout()
        raise _timeout_error(reported if reported is not None else limit)
    return result  # type: ignore[return-value]  # (completed: work() returned it)


@dataclass(eq=False)
class _Watch:
    """One running time limit: the thread to interrupt, and whether that happened."""

    thread: int
    running: bool = True
    sent: bool = False


class _Watchdog:
    """Interrupts the queries past their time limits, from one thread for all of them.

    Watches wait in a heap by deadline; a finished one stays there until its deadline
    comes or the heap is mostly finished watches (then it is rebuilt), so finishing costs
    one lock and no search. The thread sleeps until the earliest deadline and is woken
    only by a watch due before that. The thread starts with the first watch.

    Only C-level locks here (`threading.Lock`, not `Condition`, whose `__enter__` is
    Python): an interruption that arrives between a Python-level acquire and the start of
    its `with` block would leave the lock held for good.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: released to wake the thread early (a new watch due before its planned wake-up)
        self._wake = threading.Lock()
        self._wake.acquire()
        self._wake_at = float("inf")
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = 0
        self._kept = 0  # the heap's size when last rebuilt
        self._thread: threading.Thread | None = None

    def watch(self, thread: int, deadline: float) -> _Watch:
        w = _Watch(thread)
        with self._lock:
            if len(self._heap) > 2 * self._kept + 64:
                self._heap = [e for e in self._heap if e[2].running]
                heapq.heapify(self._heap)
                self._kept = len(self._heap)
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, w))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="weir-query-limits",
                                                daemon=True)
                self._thread.start()
            wake = deadline < self._wake_at
            if wake:
                self._wake_at = deadline
        if wake:
            with contextlib.suppress(RuntimeError):  # (woken already, not yet awake)
                self._wake.release()
        return w

    def finish(self, w: _Watch) -> bool:
        """The watched work ended: no interruption from now on. True if one was sent."""
        with self._lock:
            w.running = False
            return w.sent

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                heap = self._heap
                while heap and (heap[0][0] <= now or not heap[0][2].running):
                    w = heapq.heappop(heap)[2]
                    if w.running:
                        w.sent = True
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(w.thread), ctypes.py_object(_Interrupted))
                self._kept = min(self._kept, len(heap))
                self._wake_at = heap[0][0] if heap else float("inf")
                sleep = min(self._wake_at - now, 3600.0)
            self._wake.acquire(timeout=sleep)


_WATCHDOG = _Watchdog()


# ---- parameters --------------------------------------------------------------------------


def _param_values(params: dict[str, Any] | None) -> dict[str, pa.Scalar]:
    if not params:
        return dict(_NO_PARAMS)
    out: dict[str, pa.Scalar] = {}
    for name, v in params.items():
        key = str(name).removeprefix("$")
        if isinstance(v, pa.Scalar):  # typed already (FlightSQL binds Arrow values)
            out[key] = v
        elif v is None:
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


#: the accessors of DataFusion's plan nodes that hold expressions (a node has some of them)
_PLAN_EXPRESSIONS = ("projections", "predicate", "group_by_exprs", "aggregate_exprs",
                     "sort_exprs", "filters", "skip", "fetch", "on", "filter", "values",
                     "window_expr")
#: a placeholder in the debug text of a DataFusion plan
_DEBUG_PLACEHOLDER = re.compile(r'\bPlaceholder \{ id: "([^"]+)"')


def _placeholders(plan: Any) -> pa.Schema:
    """The `$placeholders` of a logical plan (see `QueryDescription.parameters`). The
    Python bindings have no `get_parameter_types`, so the plan is walked: each node's
    expressions, their operands, subqueries and inputs."""
    found: dict[str, pa.DataType] = {}

    def walk_plan(node: Any) -> None:
        variant = node.to_variant()
        for name in _PLAN_EXPRESSIONS:
            accessor = getattr(variant, name, None)
            if callable(accessor):
                walk(accessor())
        for child in node.inputs():
            walk_plan(child)

    def walk(value: Any) -> None:
        if isinstance(value, list | tuple):
            for v in value:
                walk(v)
        elif hasattr(value, "rex_type"):
            walk_expr(value)
        elif callable(getattr(value, "expr", None)):  # a sort expression
            walk(value.expr())

    def walk_expr(e: Any) -> None:
        try:
            variant = e.to_variant()
        except Exception:  # noqa: BLE001 - a kind the bindings cannot convert: its operands
            variant = None
        if isinstance(variant, Placeholder):
            field = variant.field()
            t = field.type if field is not None else pa.null()
            if pa.types.is_dictionary(t):
                t = t.value_type
            if found.get(variant.id(), pa.null()) == pa.null():
                found[variant.id()] = t
            return
        subquery = getattr(variant, "subquery", None)
        if callable(subquery):  # IN (SELECT ...), EXISTS (...), a scalar subquery
            if callable(getattr(variant, "expr", None)):
                walk_expr(variant.expr())
            # (the bindings give no subquery's plan: its placeholders are read from the
            # plan's debug text, untyped)
            for name in _DEBUG_PLACEHOLDER.findall(repr(subquery())):
                found.setdefault(name, pa.null())
            return
        kind = e.rex_type()
        if kind == RexType.Call:
            for operand in e.rex_call_operands():
                walk_expr(operand)
        elif kind == RexType.Alias:
            walk_expr(variant.expr())

    walk_plan(plan)
    numbered = sorted((k for k in found if k[1:].isdigit()), key=lambda k: int(k[1:]))
    named = [k for k in found if not k[1:].isdigit()]
    return pa.schema([pa.field(k, found[k], nullable=True) for k in numbered + named])


# ---- user tables -------------------------------------------------------------------------


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


def _user_table(scratch: _Scratch, t: TableSnapshot, snap: DatabaseSnapshot,
                n_partitions: int, local: str | None) -> Table:
    """`local`: `_local_root` of the snapshot's filesystem (the caller has it already)."""
    schema = query_schema(t.schema)
    memory: list[list[pa.RecordBatch]] | None = None
    if t.batches or not t.files:
        batches = [_conform(b, schema) for b in t.batches if b.num_rows]
        if not batches:
            batches = [pa.RecordBatch.from_pylist([], schema=schema)]
        memory = _partitions(batches, n_partitions)
    files = _file_dataset(t, schema, snap) if t.files and local is None else None

    def provider() -> Table:
        parts = [scratch.memory_table(memory)] if memory is not None else []
        if t.files and local is not None:
            parts.insert(0, scratch.parquet_files([local + f.path for f in t.files], schema))
        elif files is not None:
            parts.insert(0, Table(files))
        return parts[0] if len(parts) == 1 else \
            Table(scratch.frame(parts[0]).union(scratch.frame(parts[1])))

    return _off_planner(provider)


def _require_files(local: str, t: TableSnapshot) -> None:
    """DataFusion's reader takes a path that is not there for no rows (at every query,
    the table's provider being reused): a lost file must fail the query, naming it, not
    give a silently shorter answer."""
    for f in t.files:
        if not os.path.isfile(local + f.path):
            raise _error(f"Parquet file {local + f.path} is missing (no such file)",
                         "execution")


def _local_root(fs: pafs.FileSystem) -> str | None:
    """The directory files of `fs` are in when it is the local disk (the `file` object
    store), else None. DataFusion reads such files with its own Parquet reader, which
    prunes row groups by their statistics and is several times faster than scanning
    them through a pyarrow dataset (59 ms against 8 ms for one host's minute maxima over
    1 M rows); other stores are read through pyarrow's filesystem."""
    if isinstance(fs, pafs.LocalFileSystem):
        return ""
    if isinstance(fs, pafs.SubTreeFileSystem) and isinstance(fs.base_fs, pafs.LocalFileSystem):
        base: str = fs.base_path
        return base if base.endswith("/") else base + "/"
    return None


def _within_retention(scratch: _Scratch, table: Table, min_time: int | None) -> Table:
    """The database's retention period: older rows are gone for every query at once,
    before the compactor removes them from storage."""
    if min_time is None:
        return table
    return _off_planner(lambda: Table(scratch.frame(table).filter(
        col("time") >= lit(pa.scalar(min_time, _TS)))))


class _ProviderCache:
    """Each table's provider (its buffered rows as a memory table, its Parquet files as a
    dataset), reused by the next query while the table's rows are the same objects.

    Making one costs about a millisecond plus a pass over every buffered batch; most
    dashboard queries read tables that have not changed since the previous query. The
    snapshot's batches and files are the key: a write to the table adds or replaces a
    batch, a snapshot or compaction changes the files, a schema change the schema, and any
    of these makes the next query build a new provider. An entry holds its batches (so
    their ids stay theirs), so entries unused for `max_idle` seconds are dropped, and a
    snapshot's rows are not held long after the buffer let go of them.
    """

    def __init__(self, max_idle: float = 30.0) -> None:
        self._entries: dict[tuple[str, str], _CachedProvider] = {}
        self._lock = threading.Lock()
        self._max_idle = max_idle

    def get(self, database: str, t: TableSnapshot) -> Table | None:
        now = time.monotonic()
        with self._lock:
            self._sweep(now)
            entry = self._entries.get((database, t.name))
            if entry is None or not entry.serves(t):
                return None
            entry.used = now
            return entry.table

    def put(self, database: str, t: TableSnapshot, table: Table) -> None:
        with self._lock:
            self._entries[(database, t.name)] = _CachedProvider(
                list(t.batches), _files_key(t), t.schema, table, time.monotonic())

    def _sweep(self, now: float) -> None:
        stale = [k for k, e in self._entries.items() if now - e.used > self._max_idle]
        for k in stale:
            del self._entries[k]


@dataclasses.dataclass
class _CachedProvider:
    batches: list[pa.RecordBatch]
    files: tuple[tuple[str, int, int], ...]
    schema: pa.Schema
    table: Table
    used: float

    def serves(self, t: TableSnapshot) -> bool:
        return (len(t.batches) == len(self.batches)
                and all(a is b for a, b in zip(t.batches, self.batches, strict=True))
                and _files_key(t) == self.files
                and t.schema.equals(self.schema, check_metadata=False))


def _files_key(t: TableSnapshot) -> tuple[tuple[str, int, int], ...]:
    return tuple((f.path, f.min_time, f.max_time) for f in t.files)


def _file_dataset(t: TableSnapshot, schema: pa.Schema, snap: DatabaseSnapshot
                  ) -> ds.Dataset:
    """The table's Parquet files, each tagged with its time range."""
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
    return ds.FileSystemDataset(
        [*files.get_fragments(), parquet.make_fragment(pa.BufferReader(_empty_parquet(schema)))],
        schema, parquet, snap.filesystem)


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


class _InformationSchema:
    """One query's information_schema views, each made when DataFusion asks for it.

    The views that list tables and columns are read from a second session (DataFusion's
    own views on) holding empty stand-ins with the same schemas: the user tables' query
    schemas and the system tables' declared ones, so nothing is built to list it.
    """

    def __init__(self, engine: QueryEngine, snap: DatabaseSnapshot) -> None:
        self._engine = engine
        self._snap = snap
        self._listing: SessionContext | None = None

    def view(self, name: str) -> Table:
        if name in _SETTINGS_VIEWS:
            return self._engine._settings_view(name)
        listing, scratch = self._listing or self._stand_ins(), self._engine._scratch
        return _off_planner(lambda: scratch.memory_table(
            [_batches_of(_patch_view(name, _read_view(listing, name)))]))

    def _stand_ins(self) -> SessionContext:
        ctx = self._listing = self._engine._context(information_schema=True)
        catalog = ctx.catalog(CATALOG)
        iox = catalog.schema(USER_SCHEMA)
        for t in self._snap.tables.values():
            iox.register_table(t.name, _stand_in(query_schema(t.schema)))
        system = Schema.memory_schema()
        catalog.register_schema(SYSTEM_SCHEMA, system)
        for name, st in self._snap.system_tables.items():
            system.register_table(name, _stand_in(st.schema))
        return ctx


def _read_view(ctx: SessionContext, view: str) -> pa.Table:
    return ctx.sql(f"SELECT * FROM {INFO_SCHEMA}.{view}").to_arrow_table()


def _stand_in(schema: pa.Schema) -> Table:
    """An empty table of `schema` that information_schema can list (never scanned)."""
    return Table(ds.InMemoryDataset(schema.empty_table()))


_RANK = {USER_SCHEMA: 0, SYSTEM_SCHEMA: 1}


def _ordered(table: pa.Table, *keys: str) -> pa.Table:
    """Rows by schema (iox, system, then the others by name), then by `keys[1:]`."""
    if table.num_rows == 0:
        return table
    schemas = table.column(keys[0]).to_pylist()
    idx = sorted(range(table.num_rows), key=lambda i: (
        _RANK.get(schemas[i], 2), schemas[i],
        *(table.column(k)[i].as_py() for k in keys[1:])))
    return table.take(pa.array(idx, pa.int64()))


def _patch_view(view: str, table: pa.Table) -> pa.Table:
    """DataFusion's view as Weir shows it: the Arrow (< 57) type names, rows in order, and
    in `tables` the information_schema views themselves last, in DataFusion's order."""
    if view == "tables":
        listed = table.filter(pc.not_equal(table.column("table_schema"), INFO_SCHEMA))
        info_rows = pa.Table.from_pylist(
            [{"table_catalog": CATALOG, "table_schema": INFO_SCHEMA, "table_name": v,
              "table_type": "VIEW"} for v in _INFO_VIEWS], schema=table.schema)
        return pa.concat_tables([_ordered(listed, "table_schema", "table_name"), info_rows])
    if view == "columns":
        return _ordered(_legacy_column(table, "data_type"), "table_schema", "table_name",
                        "ordinal_position")
    if view == "views":
        return _ordered(table, "table_schema", "table_name")
    if view in ("parameters", "routines"):
        return _legacy_column(table, "data_type")
    return table


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
