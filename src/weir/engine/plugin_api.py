"""The contract a plugin sees: its entry points, `influxdb3_local`, the cache and
`LineBuilder`. This file is the reference for plugin authors (like a hookspecs file);
the implementation lives in `weir.engine.worker`.

A plugin is a Python file (or a package directory with `__init__.py`) that defines
the entry point of the trigger that runs it. Entry points are called positionally,
always with every argument, so parameter names are free:

=====================  ==========================================================
trigger specification  entry point
=====================  ==========================================================
``table:<t>``,         ``process_writes(influxdb3_local, table_batches, args)``
``all_tables``
``every:<dur>``,       ``process_scheduled_call(influxdb3_local, call_time, args)``
``cron:<expr>``
``request:<path>``     ``process_request(influxdb3_local, query_parameters,
                       request_headers, request_body, args)``
``parquet:all_tables`` ``process_parquet_persist(influxdb3_local, persisted_files,
``parquet:<t>``        args)`` (Weir's own; the reference never shipped it)
=====================  ==========================================================

`args` is None when the trigger has no arguments, else a fresh ``dict[str, str]``
for each call (plugins may mutate it).

The environment of a plugin:

* It runs in its trigger's own long-lived worker process, under the plugin
  environment's Python (the venv that ``influxdb3 install package`` fills), with
  ``TZ=UTC`` and ``PLUGIN_DIR``, ``INFLUXDB3_PLUGIN_DIR`` and ``VIRTUAL_ENV`` set.
* A single-file plugin is executed afresh, in new module globals, on every call
  (edits are picked up at the next call; module-level state does not persist).
  A package plugin is imported once and re-imported when any of its ``.py`` files
  changes. Keep state between calls in ``influxdb3_local.cache``.
* ``LineBuilder``, ``InfluxDBError``, ``InvalidMeasurementError``, ``InvalidKeyError``
  and ``InvalidLineError`` are builtins: no import is needed.
* The call runs in a thread with no running asyncio loop (``asyncio.run`` works).
* ``print`` output goes to the server log, not to any client.
* A call that raises (including ``SystemExit``), exceeds the per-call time limit,
  exhausts the worker's memory limit, or kills its process fails alone: the failure
  is logged to ``system.processing_engine_logs`` and the worker is replaced if it
  died (its cache is then empty).
"""

from __future__ import annotations

import datetime
from typing import Any, Protocol, TypedDict

#: The entry point each kind of trigger calls.
ENTRY_POINTS: dict[str, str] = {
    "wal": "process_writes",
    "schedule": "process_scheduled_call",
    "request": "process_request",
    "parquet": "process_parquet_persist",
}

#: How each entry point should be declared (used in "not present" errors).
SIGNATURES: dict[str, str] = {
    "wal": "process_writes(influxdb3_local, table_batches, args=None)",
    "schedule": "process_scheduled_call(influxdb3_local, call_time, args=None)",
    "request": "process_request(influxdb3_local, query_parameters, request_headers, "
               "request_body, args=None) -> Tuple[str, Optional[Dict[str, str]]]",
    "parquet": "process_parquet_persist(influxdb3_local, persisted_files, args=None)",
}


def missing_entry_point_message(kind: str) -> str:
    """The reference's error text when a plugin lacks the trigger's entry point."""
    return (f"the {ENTRY_POINTS[kind]} function is not present in the plugin. "
            f"Should be defined as: {SIGNATURES[kind]}")


#: Exactly the public names of `influxdb3_local` (the reference asserts this set).
LOCAL_API_NAMES: tuple[str, ...] = (
    "info", "warn", "error", "query", "write", "write_to_db", "write_sync",
    "write_sync_to_db", "cache",
)


class LineProtocolSource(Protocol):
    """Anything with a `build()` returning line protocol (one or several lines)."""

    def build(self) -> str: ...


class PluginCache(Protocol):
    """`influxdb3_local.cache`: an in-memory store kept between calls.

    The trigger's own namespace (the default) holds *live* Python objects - clients,
    models, locks, deques - by reference: mutating a value you got mutates the cached
    one. It lives in the trigger's worker process, so it is lost when the trigger is
    disabled, deleted, the server restarts, or the worker dies and is replaced.

    ``use_global=True`` selects one namespace shared by every trigger. Its values cross
    process boundaries, so they must be picklable, and `get` returns a copy.

    `ttl` is in seconds (float); an entry expires when its time is up (``ttl=0``
    expires at once). Negative TTLs raise ValueError.
    """

    def put(self, key: str, value: Any, ttl: float | None = None,
            use_global: bool | None = None) -> None: ...

    def get(self, key: str, default: Any = None, use_global: bool | None = None) -> Any: ...

    def delete(self, key: str, use_global: bool | None = None) -> bool: ...


class InfluxDB3Local(Protocol):
    """The first argument of every entry point."""

    def info(self, *args: Any) -> None:
        """Log at INFO: `str()` of each argument, joined with spaces. Lines go to
        `system.processing_engine_logs` and the server log."""

    def warn(self, *args: Any) -> None:
        """Log at WARN (see `info`)."""

    def error(self, *args: Any) -> None:
        """Log at ERROR (see `info`)."""

    def query(self, query: str, args: dict[str, str] | None = None,
              database: str | None = None) -> list[dict[str, Any]]:
        """Run SQL against `database` (default: the trigger's) and return every row as a
        dict of all result columns. `args` binds `$name` placeholders. Timestamps come
        back as int nanoseconds, tags as str, NULL as None. Errors raise `QueryError`
        (`error: <err> executing query on <db>: <sql>`)."""

    def write(self, line: LineProtocolSource) -> None:
        """Buffer `line.build()` for the trigger's database. Buffered lines are written
        (all-or-nothing per database, nanosecond precision) only when the entry point
        returns without raising; write failures are logged, not raised."""

    def write_to_db(self, db_name: str, line: LineProtocolSource) -> None:
        """Like `write`, to another database (created if it does not exist)."""

    def write_sync(self, line: LineProtocolSource, no_sync: bool = False) -> None:
        """Write now to the trigger's database; raises
        `Exception("error writing line protocol to <db>: <err>")` on failure. With
        `no_sync=False` it returns after the write is durable."""

    def write_sync_to_db(self, db_name: str, line: LineProtocolSource,
                         no_sync: bool = False) -> None:
        """Like `write_sync`, to another database."""

    @property
    def cache(self) -> PluginCache:
        """The cache (see `PluginCache`)."""
        ...


class TableBatch(TypedDict):
    """One table's rows from a WAL flush. Each row holds only the columns written in
    it: tags as str, fields as int/float/str/bool, and "time" as int nanoseconds."""

    table_name: str
    rows: list[dict[str, Any]]


class PersistedFileInfo(TypedDict):
    """One Parquet file written by a snapshot (for `process_parquet_persist`)."""

    table_name: str
    path: str
    size_bytes: int
    row_count: int
    min_time: int
    max_time: int


# ---- the entry points (signatures and meaning; plugins define them) ---------------


def process_writes(influxdb3_local: InfluxDB3Local, table_batches: list[TableBatch],
                   args: dict[str, str] | None = None) -> None:
    """Called once per WAL flush that wrote to the trigger's database, after the data is
    durable and queryable, in flush order. `table:<t>` triggers get only that table's
    batch (an empty list when the flush had no rows for it); `all_tables` triggers get
    every table, in order of first appearance. The plugin's own writes arrive in a
    later flush, so skip your output table to avoid loops."""


def process_scheduled_call(influxdb3_local: InfluxDB3Local, call_time: datetime.datetime,
                           args: dict[str, str] | None = None) -> None:
    """Called at each fire time of `every:` / `cron:` (UTC). `call_time` is the
    *scheduled* time, naive, in UTC, truncated to whole seconds. Runs of one trigger
    never overlap unless it is `run_async`.

    Fire times that passed while the server was down are not run; the trigger's log
    says how many and which. With the trigger setting `catch_up`, ONE catch-up call is
    made when the server is back, before the schedule resumes: an ordinary call (the same
    `args`) whose `call_time` is the last missed fire time, so it looks like a late run
    of that time. A plugin that processes the interval ending at `call_time` should look
    back further itself (e.g. from the newest row it wrote) to cover the whole outage."""


def process_request(influxdb3_local: InfluxDB3Local, query_parameters: dict[str, str],
                    request_headers: dict[str, str], request_body: bytes,
                    args: dict[str, str] | None = None) -> Any:
    """Serves GET/POST `/api/v3/engine/<path>`. Headers have lower-case names and never
    include `authorization`. The return value becomes the response: a str (text/html),
    a dict or list (JSON), a tuple `(body[, status][, headers])`, the form
    `(status, headers, body)`, bytes, a Flask/werkzeug-like response object, or an
    iterable of str/bytes chunks. Buffered writes are committed before the response
    is sent."""


def process_parquet_persist(influxdb3_local: InfluxDB3Local,
                            persisted_files: list[PersistedFileInfo],
                            args: dict[str, str] | None = None) -> None:
    """Called after a snapshot persisted Parquet files for the trigger's database
    (`parquet:all_tables`) or table (`parquet:<table>`)."""
