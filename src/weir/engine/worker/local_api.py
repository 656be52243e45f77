"""`influxdb3_local`: the object every entry point gets first (runs in the worker).

Its public surface is exactly the reference's nine names (see
`weir.engine.plugin_api.InfluxDB3Local` for the contract). Queries, immediate
writes and global-cache operations go to the server over the worker's channel;
buffered writes are collected here and handed back with the call's result, and the
server commits them only if the entry point returned without raising.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from weir.engine.plugin_api import LOCAL_API_NAMES
from weir.engine.worker.cache import LocalNamespace, PluginCache
from weir.engine.worker.channel import ServerChannel
from weir.engine.worker.conversions import query_rows
from weir.engine.worker.protocol import ipc_to_table


class QueryError(Exception):
    """A failed `influxdb3_local.query` (`error: <err> executing query on <db>: <sql>`)."""


QueryError.__module__ = "influxdb3_py_api"


def database_name_problem(name: Any) -> str | None:
    """Why `name` is not a database name (the engine's loose rules), or None."""
    if not isinstance(name, str):
        return f"database name must be a str, not {type(name).__name__}"
    if not name:
        return "database name cannot be empty"
    if len(name.encode()) > 511:
        return f"database name '{name}' is longer than 511 bytes"
    for i, ch in enumerate(name):
        if not (ch in "/_-" or unicodedata.category(ch)[0] in ("L", "N")):
            return (f"database name '{name}' contains invalid character, character number "
                    f"{i} is not allowed")
    return None


@dataclass
class CallContext:
    """What one call of an entry point can reach."""

    call_id: int
    trigger_name: str
    database: str
    channel: ServerChannel
    cache: PluginCache
    local_cache: LocalNamespace
    dry_run: bool = False
    #: buffered write()/write_to_db() lines, per database, in call order
    buffered: dict[str, list[str]] = field(default_factory=dict)
    #: dry runs only: write_sync*() lines, per database, in call order
    sync_writes: dict[str, list[str]] = field(default_factory=dict)
    #: dry runs only: "LEVEL: text" log lines
    log_lines: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _lines_of(obj: Any) -> list[str]:
    """`obj.build()` (or a str) split into its lines; raises at the call site."""
    built = obj if isinstance(obj, str) else obj.build()
    if not isinstance(built, str):
        raise TypeError(f"build() must return a str of line protocol, not "
                        f"{type(built).__name__}")
    return [ln for ln in built.replace("\r\n", "\n").split("\n") if ln.strip()]


class InfluxDB3Local:
    """The plugin's handle on the database (see `weir.engine.plugin_api`)."""

    __slots__ = ("_ctx",)
    _ctx: CallContext

    def __init__(self, ctx: CallContext) -> None:
        object.__setattr__(self, "_ctx", ctx)

    def __dir__(self) -> list[str]:
        return sorted({*LOCAL_API_NAMES, *(n for n in object.__dir__(self)
                                           if n.startswith("__"))})

    def __repr__(self) -> str:
        return f"<influxdb3_local for trigger {self._ctx.trigger_name!r}>"

    # ---- logging ---------------------------------------------------------------------

    def _log(self, level: str, args: tuple[Any, ...]) -> None:
        text = " ".join(str(a) for a in args)
        ctx = self._ctx
        if ctx.dry_run:
            with ctx.lock:
                ctx.log_lines.append(f"{level}: {text}")
        else:
            ctx.channel.send({"op": "log", "call": ctx.call_id, "level": level, "text": text})

    def info(self, *args: Any) -> None:
        self._log("INFO", args)

    def warn(self, *args: Any) -> None:
        self._log("WARN", args)

    def error(self, *args: Any) -> None:
        self._log("ERROR", args)

    # ---- queries ---------------------------------------------------------------------

    def query(self, query: str, args: dict[str, Any] | None = None,
              database: str | None = None) -> list[dict[str, Any]]:
        ctx = self._ctx
        db = ctx.database if database is None else database
        problem = database_name_problem(db)
        if problem is not None:
            raise QueryError(f"invalid database name provided: {problem}")
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, not {type(query).__name__}")
        params: dict[str, Any] | None = None
        if args is not None:
            if not isinstance(args, dict):
                raise TypeError(f"query args must be a dict of str to str, not "
                                f"{type(args).__name__}")
            params = {}
            for k, v in args.items():
                if not isinstance(v, str | int | float | bool) and v is not None:
                    raise TypeError(f"query arg {k!r} must be a str, not {type(v).__name__}")
                params[str(k)] = v
        reply, payload = ctx.channel.request(
            {"op": "query", "call": ctx.call_id, "database": db, "sql": query,
             "params": params})
        if not reply.get("ok"):
            raise QueryError(f"error: {reply.get('error')} executing query on {db}: {query}")
        return query_rows(ipc_to_table(payload))

    # ---- writes ----------------------------------------------------------------------

    def _buffer(self, db: str, line: Any) -> None:
        lines = _lines_of(line)
        ctx = self._ctx
        with ctx.lock:
            ctx.buffered.setdefault(db, []).extend(lines)

    def write(self, line: Any) -> None:
        self._buffer(self._ctx.database, line)

    def write_to_db(self, db_name: str, line: Any) -> None:
        if not isinstance(db_name, str):
            raise TypeError(f"db_name must be a str, not {type(db_name).__name__}")
        self._buffer(db_name, line)

    def _write_now(self, db: str, line: Any, no_sync: bool) -> None:
        lines = _lines_of(line)
        problem = database_name_problem(db)
        if problem is not None:
            raise Exception(f"error writing line protocol to {db}: invalid database name: "
                            f"{problem}")
        ctx = self._ctx
        if ctx.dry_run:
            with ctx.lock:
                ctx.sync_writes.setdefault(db, []).extend(lines)
            return
        if not lines:
            return
        reply, _ = ctx.channel.request({"op": "write", "call": ctx.call_id, "database": db,
                                        "lp": "\n".join(lines), "no_sync": bool(no_sync)})
        if not reply.get("ok"):
            raise Exception(f"error writing line protocol to {db}: {reply.get('error')}")

    def write_sync(self, line: Any, no_sync: bool = False) -> None:
        self._write_now(self._ctx.database, line, no_sync)

    def write_sync_to_db(self, db_name: str, line: Any, no_sync: bool = False) -> None:
        self._write_now(db_name, line, no_sync)

    # ---- cache -----------------------------------------------------------------------

    @property
    def cache(self) -> PluginCache:
        self._ctx.local_cache.maybe_sweep()
        return self._ctx.cache
