"""What plugin workers may ask of the server, served by the same services the HTTP API
calls: queries, immediate writes, the global cache and log lines. Also the shared
(`use_global`) cache itself, which lives here because every trigger's worker must see it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pyarrow as pa

from weir.engine.logs import PluginLogs
from weir.errors import LineProtocolError, PartialWrite, WriteError
from weir.service import QueryService, WriteService


def describe_write_error(e: Exception) -> str:
    """A write error with the details of its first bad line, when there is one."""
    msg = str(e)
    if isinstance(e, LineProtocolError | PartialWrite) and e.lines:
        first = e.lines[0]
        if first.message:
            msg += (f": line {first.line_number}: {first.message}" if first.line_number
                    else f": {first.message}")
    return msg


class SharedCache:
    """The `use_global=True` namespaces: pickled values (base64 text) with expiry."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, tuple[str, float | None]]] = {}
        self._lock = threading.Lock()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        action = request.get("action")
        ns = str(request.get("namespace") or "global")
        key = str(request.get("key"))
        now = time.monotonic()
        with self._lock:
            space = self._data.setdefault(ns, {})
            if action == "put":
                ttl = request.get("ttl")
                space[key] = (str(request.get("value")),
                              None if ttl is None else now + float(ttl))
                return {}
            hit = space.get(key)
            if hit is not None and hit[1] is not None and hit[1] <= now:
                del space[key]
                hit = None
            if action == "get":
                return {"value": hit[0] if hit is not None else None}
            if action == "delete":
                if hit is not None:
                    del space[key]
                return {"deleted": hit is not None}
        raise ValueError(f"unknown cache action {action!r}")

    def drop_namespace(self, namespace: str) -> None:
        with self._lock:
            self._data.pop(namespace, None)


class EngineServices:
    """The server's side of worker requests (see `weir.engine.workers.WorkerServices`).
    Plugins act as the server itself: no token, so no authorization check."""

    def __init__(self, writes: WriteService, queries: QueryService, logs: PluginLogs) -> None:
        self.writes = writes
        self.queries = queries
        self.logs = logs
        self.shared_cache = SharedCache()

    async def query(self, database: str, sql: str, params: dict[str, Any] | None) -> pa.Table:
        return await self.queries.sql(database, sql, params or None, principal=None)

    async def write(self, database: str, lp: str, no_sync: bool) -> None:
        try:
            await self.writes.write_from_plugin(database, lp, no_sync=no_sync)
        except WriteError as e:
            raise WriteError(describe_write_error(e)) from None

    async def global_cache(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.shared_cache.handle(request)

    def plugin_log(self, trigger_name: str, level: str, text: str) -> None:
        self.logs.add(trigger_name, level, text)
