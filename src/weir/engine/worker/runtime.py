"""Running one call of a plugin inside the worker and reporting its result.

A worker serves either one trigger (``mode="trigger"``: plugin, database and
arguments come with `init`, the cache namespace is the trigger's) or dry runs
(``mode="dry_run"``: each call names its plugin, database, arguments and cache
name; writes are recorded, not sent).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import threading
import traceback
from typing import Any

from weir.engine.plugin_api import ENTRY_POINTS
from weir.engine.worker.cache import LocalNamespace, PluginCache
from weir.engine.worker.channel import ServerChannel
from weir.engine.worker.conversions import sparse_rows
from weir.engine.worker.local_api import CallContext, InfluxDB3Local
from weir.engine.worker.plugin_code import PluginCode, PluginLoadError, describe_exception
from weir.engine.worker.protocol import ipc_to_table, split_segments
from weir.engine.worker.responses import ResponseConversionError, to_http_answer

_WORKER_DIR = os.path.dirname(os.path.abspath(__file__))
DRY_RUN_DEFAULT_TTL_S = 30 * 60.0
DEFAULT_CACHE_NAME = "_shared_test"


class WorkerRuntime:
    def __init__(self, init: dict[str, Any], channel: ServerChannel) -> None:
        self.channel = channel
        self.dry_run = init.get("mode") == "dry_run"
        self.trigger_name: str = init.get("trigger_name") or ""
        self.database: str = init.get("database") or ""
        self.args: dict[str, str] | None = init.get("args")
        self.plugin = PluginCode(init["plugin"]) if init.get("plugin") else None
        self._plugins: dict[str, PluginCode] = {}
        self._namespaces: dict[str, LocalNamespace] = {}
        self._lock = threading.Lock()

    # ---- per-call plumbing -----------------------------------------------------------

    def _plugin_for(self, call: dict[str, Any]) -> PluginCode:
        ref = call.get("plugin")
        if ref is None:
            if self.plugin is None:
                raise PluginLoadError("no plugin was given to this worker")
            return self.plugin
        key = hashlib.sha1(json.dumps(ref, sort_keys=True).encode()).hexdigest()
        with self._lock:
            code = self._plugins.get(key)
            if code is None:
                code = self._plugins[key] = PluginCode(ref, unique_module_name=True)
            return code

    def _namespace(self, name: str) -> LocalNamespace:
        with self._lock:
            ns = self._namespaces.get(name)
            if ns is None:
                ttl = DRY_RUN_DEFAULT_TTL_S if self.dry_run else None
                ns = self._namespaces[name] = LocalNamespace(default_ttl=ttl)
            return ns

    def _global_request(self, header: dict[str, Any]) -> dict[str, Any]:
        reply, _ = self.channel.request({"op": "gcache", **header})
        if not reply.get("ok"):
            raise RuntimeError(f"global cache error: {reply.get('error')}")
        return reply

    def _context(self, call: dict[str, Any]) -> CallContext:
        if self.dry_run:
            cache_name = call.get("cache_name") or DEFAULT_CACHE_NAME
            local = self._namespace(cache_name)
            cache = PluginCache(local, self._global_request, f"test:{cache_name}",
                                default_ttl=DRY_RUN_DEFAULT_TTL_S)
        else:
            local = self._namespace("trigger")
            cache = PluginCache(local, self._global_request, "global")
        return CallContext(call_id=call["id"],
                           trigger_name=call.get("trigger_name") or self.trigger_name,
                           database=call.get("database") or self.database,
                           channel=self.channel, cache=cache, local_cache=local,
                           dry_run=self.dry_run)

    # ---- the call --------------------------------------------------------------------

    def run_call(self, call: dict[str, Any], payload: bytes) -> None:
        """Run one call and send its `result` frame (called in the call's own thread)."""
        result: dict[str, Any] = {"op": "result", "id": call["id"], "ok": True}
        body = b""
        ctx = None
        try:
            ctx = self._context(call)
            kind = call["kind"]
            args = call.get("args", self.args)
            args = dict(args) if args is not None else None
            fn = self._plugin_for(call).function(kind, ENTRY_POINTS[kind])
            local = InfluxDB3Local(ctx)
            if kind == "wal":
                fn(local, _table_batches(call, payload), args)
            elif kind == "schedule":
                call_time = datetime.datetime.fromtimestamp(int(call["call_time"]))
                fn(local, call_time, args)
            elif kind == "request":
                value = fn(local, call.get("query") or {}, call.get("headers") or {},
                           payload, args)
                answer = to_http_answer(value)
                result["response"] = {"status": answer.status, "headers": answer.headers}
                body = answer.body
            elif kind == "parquet":
                fn(local, [dict(f) for f in call.get("files") or []], args)
            else:
                raise PluginLoadError(f"unknown call kind {kind!r}")
        except (PluginLoadError, ResponseConversionError) as e:
            result.update(ok=False, error=str(e), traceback=_format_traceback(e.__cause__))
        except BaseException as e:  # noqa: BLE001 - plugin code, SystemExit too: the call fails
            result.update(ok=False, error=describe_exception(e), traceback=_format_traceback(e))
        if ctx is not None:
            with ctx.lock:
                if result["ok"]:
                    result["writes"] = ctx.buffered
                if self.dry_run:
                    result["sync_writes"] = ctx.sync_writes
                    result["log_lines"] = ctx.log_lines
        # the server is gone if this fails; the main loop exits on end of input
        with contextlib.suppress(OSError, ValueError):
            self.channel.send(result, body)


def _table_batches(call: dict[str, Any], payload: bytes) -> list[dict[str, Any]]:
    tables = call.get("tables") or []
    segments = split_segments(payload, [t["size"] for t in tables])
    batches: dict[str, list[dict[str, Any]]] = {}
    for meta, seg in zip(tables, segments, strict=True):
        rows = batches.setdefault(meta["name"], [])
        if meta["size"]:
            rows.extend(sparse_rows(ipc_to_table(seg)))
    return [{"table_name": name, "rows": rows} for name, rows in batches.items()]


def _format_traceback(e: BaseException | None) -> str | None:
    """The exception's traceback without the worker's own frames."""
    if e is None:
        return None
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_WORKER_DIR):
        tb = tb.tb_next
    try:
        return "".join(traceback.format_exception(type(e), e, tb)).rstrip()
    except Exception:  # noqa: BLE001 - formatting runs the plugin's __str__: then no traceback
        return None
