"""SQL over one database snapshot with DataFusion, the engine InfluxDB 3 uses.

A DataFusion session per query at a time, kept for the next query of the same database
(`_Session`: a new one costs a quarter of a millisecond more, a large share of a small
query). Its catalog `public` has three schemas, each a Python schema provider
(`_LazySchema`) bound to the query's snapshot, whose `table(name)` DataFusion calls while
it plans, for exactly the tables the statement names; a table no statement names is never
made:

* `iox`, the user tables (weir.query.tables): the buffer's rows as an in-memory table,
  the Parquet files read by DataFusion's own reader (the file store) or as a pyarrow
  dataset (other stores), and a UNION ALL of the two. Columns are sorted by name
  (`SELECT *` order: `f1, f2, t1, t2, time`) and `time` is NOT NULL, as in the reference.
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
* DDL, DML and SET are refused; errors become `SqlQueryError` kinds (`QueryError`s,
  weir.query.errors). Results are read as a `QueryStream` (weir.query.stream) under the
  time limit of weir.query.time_limit.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import datafusion
import pyarrow as pa
import pyarrow.compute as pc
from datafusion import (
    RuntimeEnvBuilder,
    SessionConfig,
    SessionContext,
    SQLOptions,
)
from datafusion.catalog import SchemaProvider, Table
from datafusion.expr import DescribeTable

from weir.errors import QueryError
from weir.query.errors import (
    Interrupted,
    SqlQueryError,
    planning_failure,
    sql_error,
)
from weir.query.information_schema import (
    INFO_VIEWS,
    InformationSchema,
    legacy_type_name,
    patch_view,
    read_view,
    stand_in,
)
from weir.query.newest_rows import NewestPerGroup, newest_floors, newest_per_group
from weir.query.newest_times import NewestTimes
from weir.query.params import param_values, placeholders
from weir.query.source import DatabaseSnapshot, TableFunction, TableSnapshot
from weir.query.stream import QueryStream
from weir.query.tables import (
    CATALOG,
    INFO_SCHEMA,
    SYSTEM_SCHEMA,
    USER_SCHEMA,
    BatchTimeRanges,
    ProviderCache,
    Scratch,
    batches_of,
    local_root,
    off_planner,
    query_schema,
    require_files,
    table_provider,
    within_retention,
)
from weir.query.time_floor import has_clock, may_bound_time, time_ceilings, time_floors
from weir.query.time_limit import with_time_limit

__all__ = ["QueryDescription", "QueryEngine", "QueryStream", "SqlQueryError",
           "legacy_type_name", "query_schema"]

#: a table with more Parquet files than this makes a query plan twice: first over empty
#: stand-ins to find the earliest and latest time it wants of each table, then for real
#: without the files wholly outside them. The first pass costs about 1.5 ms (its SQL
#: planned and optimised); each file left out saves about 0.5 ms of physical planning,
#: plus its opening (measured in process on 100 hosts x 24 h, five files and the buffer:
#: a query whose time range misses every file went from 6.5 to 2.3 ms, one host's hour
#: from 5.3 to 4.3 ms), so it pays once a few files can go
_PRUNE_FILES_OVER = 3
#: ... and so does a table with more rows in memory than this (a few of the buffer's
#: 64 Ki-row batches): its batches wholly outside the bounds are left out too
_PRUNE_BUFFERED_ROWS_OVER = 2 * 65_536
#: `execute_stream` reads a result's first batches while it plans, until its end or this
#: many rows: a small result is then whole when planning returns (see `QueryStream.computed`)
_PREFETCH_ROWS = 1024
class _TimeBounds(NamedTuple):
    """Per table, the earliest and the latest (inclusive) time a statement can read; and
    the tables it reads only each group's newest row of (query.newest_rows), whose floor
    the data itself can raise."""

    floors: Mapping[str, int]
    ceilings: Mapping[str, int]
    newest: tuple[NewestPerGroup, ...] = ()
    #: tables whose floor came from their groups' newest rows: their buffered rows before
    #: it go too, not only whole batches (no row before it is any group's newest)
    cut_rows: frozenset[str] = frozenset()


_NO_BOUNDS = _TimeBounds({}, {})
_MIN_TIME, _MAX_TIME = -(2**63), 2**63 - 1
_SQL_OPTIONS = SQLOptions().with_allow_ddl(False).with_allow_dml(False) \
    .with_allow_statements(False)


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
        self._scratch = Scratch()
        #: (settings, view) -> a settings-only information_schema view, patched, as a
        #: memory table every session may share
        self._settings_views: dict[tuple[int, int | None, str], Table] = {}
        #: (database, table) -> its provider as last made, for the next query to reuse
        self._providers = ProviderCache()
        #: idle DataFusion sessions, for the next query of the same database
        self._sessions = _SessionPool()
        #: Parquet files and buffered batches left out of plans by their tables' time
        #: bounds (statistics)
        self.files_left_out = 0
        self.batches_left_out = 0
        #: floors raised to the oldest of each group's newest times (query.newest_rows)
        self.newest_floors = 0
        #: each Parquet file's groups' newest times, read once (query.newest_times)
        self._newest_times = NewestTimes()
        self._batch_ranges = BatchTimeRanges()

    # ---- public -------------------------------------------------------------------------

    def execute(self, snapshot: DatabaseSnapshot, sql: str,
                params: dict[str, Any] | None = None,
                on_planned: Callable[[], None] | None = None) -> pa.Table:
        """Run one SQL statement and return all its rows. Raises QueryError.
        `on_planned` is called once the statement is planned, before it runs."""
        if self.timeout is None:
            return self._execute(snapshot, sql, params, on_planned)
        return with_time_limit(lambda: self._execute(snapshot, sql, params, on_planned),
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
            stream = with_time_limit(lambda: self._plan(snapshot, sql, params, deadline),
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
        values = param_values(params) if params is not None else None
        failures: list[BaseException] = []
        tables = snapshot.tables
        no_tables = InformationSchema(
            self._context, self._scratch, self._settings_view,
            DatabaseSnapshot(name=snapshot.name, tables={}, filesystem=snapshot.filesystem))
        try:
            session = _Session(self._context(information_schema=False), snapshot)
            self._bind(session, snapshot, failures)
            ctx = session.ctx
            catalog = ctx.catalog(CATALOG)
            catalog.register_schema(USER_SCHEMA, _LazySchema(
                tables, lambda name: stand_in(query_schema(tables[name].schema)), failures))
            catalog.register_schema(INFO_SCHEMA, _LazySchema(INFO_VIEWS, no_tables.view,
                                                             failures))
            df = ctx.sql(sql, options=_SQL_OPTIONS, param_values=values)
            schema = df.schema()
            parameters = placeholders(df.logical_plan())
        except Interrupted:
            raise
        except BaseException as e:  # noqa: BLE001 - pyo3 panics derive from BaseException
            raise planning_failure(e, failures) from None
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
        values = param_values(params)
        failures: list[BaseException] = []
        key = (snapshot.name, frozenset(snapshot.table_functions), self.target_partitions,
               self.memory_limit)
        session = self._sessions.take(key) or _Session(
            self._context(information_schema=False), snapshot)
        try:
            bounds = (self._time_bounds(session, snapshot, sql, values)
                      if (snapshot.most_files > _PRUNE_FILES_OVER
                          or snapshot.most_buffered_rows > _PRUNE_BUFFERED_ROWS_OVER)
                      and may_bound_time(sql) else _NO_BOUNDS)
            self._bind(session, snapshot, failures, bounds)
            if bounds.newest:
                bounds = self._newest_bounds(session, snapshot, sql, values, bounds)
                self._bind(session, snapshot, failures, bounds)
            df = session.ctx.sql(sql, options=_SQL_OPTIONS, param_values=values)
            stream = df.execute_stream()  # physical planning happens here
            schema = df.schema()
            legacy = isinstance(df.logical_plan().to_variant(), DescribeTable)
        except Interrupted:
            session.unbind()  # (and not reused: it was stopped half way)
            raise
        except BaseException as e:  # noqa: BLE001 - pyo3 panics derive from BaseException
            session.unbind()
            self._sessions.give_back(key, session)
            raise planning_failure(e, failures) from None
        # (the plan holds the tables it names: the schemas need not hold the snapshot)
        session.unbind()
        result = QueryStream(schema, stream, deadline, legacy, self.timeout)
        # its memory pool (--exec-mem-pool-bytes) is the query's own until it ends
        result.on_end = lambda: self._sessions.give_back(key, session)
        return result

    def _time_bounds(self, session: _Session, snapshot: DatabaseSnapshot, sql: str,
                     values: dict[str, Any] | None) -> _TimeBounds:
        """Each table's earliest and latest time the statement can read (query.time_floor),
        from a plan over empty stand-ins of the tables, made in the query's own (unbound)
        session; none where that planning fails (the real planning then reports the error;
        system tables and table functions are not bound for it, so a statement naming them
        gets no bounds)."""
        tables = snapshot.tables
        try:
            session.user.bind(tables, lambda name: stand_in(query_schema(tables[name].schema)),
                              [])
            plan = session.ctx.sql(sql, options=_SQL_OPTIONS, param_values=values) \
                .optimized_logical_plan()
            floors = time_floors(plan, USER_SCHEMA)
            ceilings = {} if has_clock(sql) else time_ceilings(plan, USER_SCHEMA)
        except Interrupted:
            raise
        except BaseException:  # noqa: BLE001 - pyo3 panics derive from BaseException
            return _NO_BOUNDS
        finally:
            session.user.bind((), _no_table, [])
        try:  # (a plan this cannot read leaves the bounds above as they are)
            newest = tuple(newest_per_group(plan, USER_SCHEMA))
        except Exception:  # noqa: BLE001 - the bindings' conversions raise several kinds
            newest = ()
        return _TimeBounds(floors, ceilings, newest)

    def _newest_bounds(self, session: _Session, snapshot: DatabaseSnapshot, sql: str,
                       values: dict[str, Any] | None, bounds: _TimeBounds) -> _TimeBounds:
        """`bounds` with the floor of each table in `bounds.newest` raised to the oldest of
        its groups' newest times (query.newest_rows). For a whole table, read from its
        files (each once, query.newest_times) and buffered batches; otherwise by a first
        aggregate in the session as bound (to the real tables, within `bounds`), for which
        the statement is planned again. If that fails, `bounds` as they were (the real
        planning then reports what is wrong)."""
        newest: dict[str, int] = {}
        planned = [n for n in bounds.newest if n.columns is None]
        try:
            for n in bounds.newest:
                if n.columns is not None:
                    floor = self._newest_times.oldest_newest(
                        snapshot.tables[n.table], snapshot.filesystem, n.columns)
                    if floor is not None:
                        newest[n.table] = floor
            if planned:
                plan = session.ctx.sql(sql, options=_SQL_OPTIONS, param_values=values) \
                    .optimized_logical_plan()
                newest.update(newest_floors(session.ctx, plan, planned))
        except Interrupted:
            raise
        except BaseException:  # noqa: BLE001 - pyo3 panics derive from BaseException
            return bounds
        floors = dict(bounds.floors)
        for table, floor in newest.items():
            floors[table] = max(floors.get(table, floor), floor)
        self.newest_floors += len(newest)
        return bounds._replace(floors=floors, newest=(), cut_rows=frozenset(newest))

    def _bind(self, session: _Session, snap: DatabaseSnapshot,
              failures: list[BaseException], bounds: _TimeBounds = _NO_BOUNDS) -> None:
        """The session's three lazy schemas and table functions, made to read `snap`; a
        table with time `bounds` without its files wholly outside them. (What they hold
        must not refer to the session's context: DataFusion holds them, and a reference
        cycle through it would never be collected.)"""
        floors, ceilings, cut_rows = bounds.floors, bounds.ceilings, bounds.cut_rows
        scratch, n_partitions, providers, engine = (self._scratch, self.target_partitions,
                                                    self._providers, self)

        local = local_root(snap.filesystem)

        def user_table(name: str) -> Table:
            t = snap.tables[name]
            floor, ceiling = floors.get(name), ceilings.get(name)
            if floor is not None or ceiling is not None:
                t = engine._within_bounds(t, floor, ceiling, name in cut_rows)
            if local is not None:
                require_files(local, t)
            table = providers.get(snap.name, t)
            if table is None:
                table = table_provider(scratch, t, snap, n_partitions, local)
                providers.put(snap.name, t, table)
            return within_retention(scratch, table, t.min_time)

        def system_table(name: str) -> Table:
            try:
                table = snap.system_tables[name].read()
            except Exception as e:  # noqa: BLE001 - any builder's failure: this query's error
                raise sql_error(f"error building system table {name}: {type(e).__name__}: {e}",
                                "execution") from None
            return off_planner(lambda: scratch.memory_table([batches_of(table)]))

        info = InformationSchema(self._context, self._scratch, self._settings_view, snap)
        session.user.bind(snap.tables, user_table, failures)
        session.system.bind(snap.system_tables, system_table, failures)
        session.info.bind(INFO_VIEWS, info.view, failures)
        for name, function in snap.table_functions.items():
            session.functions[name].bind(scratch, function, failures)

    def _within_bounds(self, t: TableSnapshot, floor: int | None,
                       ceiling: int | None, cut_rows: bool = False) -> TableSnapshot:
        """`t` without its files and buffered batches wholly before `floor` or after
        `ceiling` (inclusive bounds; None: none), and with `cut_rows` without the buffered
        rows before `floor` either. Every copy of a point has the point's time, so a merge
        by last-write-wins loses nothing by this."""
        lo = floor if floor is not None else _MIN_TIME
        hi = ceiling if ceiling is not None else _MAX_TIME
        files = [f for f in t.files if f.max_time >= lo and f.min_time <= hi]
        batches = t.batches
        cut = cut_rows and floor is not None
        if len(batches) > 1 or cut:
            ranges = [self._batch_ranges.of(b) for b in batches]
            kept = [(b, b_lo) for b, (b_lo, b_hi) in zip(batches, ranges, strict=True)
                    if b_hi >= lo and b_lo <= hi]
            batches = [b if not cut or b_lo >= lo else _rows_from(b, lo) for b, b_lo in kept]
        if len(files) == len(t.files) and len(batches) == len(t.batches) \
                and all(a is b for a, b in zip(batches, t.batches, strict=True)):
            return t
        self.files_left_out += len(t.files) - len(files)
        self.batches_left_out += len(t.batches) - len(batches)
        return dataclasses.replace(t, files=files, batches=batches)

    def _settings_view(self, view: str) -> Table:
        """df_settings, routines or parameters: the same for every session of this engine,
        so read once (routines and parameters list every function: a few milliseconds)."""
        key = (self.target_partitions, self.memory_limit, view)
        table = self._settings_views.get(key)
        if table is None:
            ctx, scratch = self._context(information_schema=True), self._scratch
            table = self._settings_views[key] = off_planner(lambda: scratch.memory_table(
                [batches_of(patch_view(view, read_view(ctx, view)))]))
        return table


def _rows_from(batch: pa.RecordBatch, floor: int) -> pa.RecordBatch:
    """`batch`'s rows at or after `floor` (ns)."""
    times = batch.column(batch.schema.get_field_index("time"))
    return batch.filter(pc.greater_equal(times, pa.scalar(floor, times.type)))


class _Session:
    """A DataFusion session with Weir's schemas and a database's table functions, bound
    to one snapshot while a query is planned, kept for the next query of that database.

    A new session costs about a quarter of a millisecond more than one used before (its
    state, its first plan), a large share of a small query. Nothing of one query stays for
    the next: SQL cannot change a session (DDL, DML and SET are refused), and the schemas
    are bound afresh to each query's snapshot, so what a table reads is decided per query
    as before (`ProviderCache` reuses a provider only while its rows are the same).
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
    DataFusion's runtime itself (see `off_planner`). What it raises is kept in `failures`
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
        self._scratch: Scratch | None = None
        self._function: TableFunction | None = None
        self._failures: list[BaseException] = []

    def bind(self, scratch: Scratch, function: TableFunction,
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
            return off_planner(lambda: scratch.memory_table([batches_of(rows)]))
        except QueryError as e:
            failure: BaseException = sql_error(f"Error during planning: {e}", "planning")
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


@dataclass(frozen=True)
class QueryDescription:
    """A statement planned but not run (`QueryEngine.describe`)."""

    #: the columns of its result
    schema: pa.Schema
    #: its placeholders as fields named as written (`$1`, `$host`; numbered ones first, in
    #: order, then named ones as they appear), each typed as DataFusion infers it (a
    #: dictionary as its value type; null where nothing tells) and nullable
    parameters: pa.Schema
