"""Trigger runners: one per enabled trigger, feeding events to its worker.

* WAL (`table:`, `all_tables`) triggers are run by `weir.engine.wal_triggers`: they read
  the WAL from their checkpoint on, every flushed file once, in order, several files
  merged into one call when the trigger lags; a call's buffered writes and the
  checkpoint are stored together, so after a crash nothing is missed or doubled.
* Parquet triggers take each snapshot's files from a queue, one at a time and in order.
  The listeners only enqueue, so writers never wait for plugins.
* Schedules (`every:`, `cron:`) are run by `weir.engine.schedule`.
* Request triggers answer `/api/v3/engine/<path>` calls, one at a time.

With `run_async` each event is handled in its own task instead (calls may overlap
and finish out of order). `error_behavior` applies to WAL, schedule and Parquet
triggers: `log` logs and moves on; `retry` retries the same event with exponential
backoff up to a bound, then moves on; `disable` disables the trigger in the catalog,
saying why (a WAL trigger's checkpoint stays before the failed batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from weir.catalog import TriggerDefinition
from weir.engine.loader import PluginRef
from weir.engine.logs import PluginLogs
from weir.engine.options import EngineOptions
from weir.engine.services import describe_write_error
from weir.engine.specs import TriggerSpec, format_humantime
from weir.engine.workers import WorkerDied, WorkerSlot, WorkerStartError
from weir.metrics import TriggerMetrics
from weir.ports import TriggerKey, WalTriggerLog
from weir.service import WriteService

log = logging.getLogger("weir.engine")

#: how a call under `error_behavior` ended (`TriggerRunner.run_with_policy`)
Handled = Literal["ok", "skipped", "disabled", "stopped"]
#: a call's buffered writes: database -> lines
Writes = dict[str, list[str]]


class RunnerHost(Protocol):
    """What a runner needs from the engine."""

    @property
    def writes(self) -> WriteService: ...

    @property
    def logs(self) -> PluginLogs: ...

    @property
    def options(self) -> EngineOptions: ...

    @property
    def wal_log(self) -> WalTriggerLog: ...

    def worker_slot(self, defn: TriggerDefinition, ref: PluginRef) -> WorkerSlot: ...

    def disable_after_error(self, runner: TriggerRunner, error: str) -> None: ...

    @property
    def metrics(self) -> TriggerMetrics: ...


@dataclass
class Outcome:
    ok: bool
    error: str | None = None
    traceback: str | None = None
    response: dict[str, Any] | None = None
    body: bytes = b""


@dataclass
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes


def delivery_text(kind: str, run_async: bool, error_behavior: str, attempts: int,
                  catch_up: bool = False) -> str:
    """What a trigger promises, in a few words (`show summary`, the triggers table)."""
    on_error = {"log": "log and skip", "retry": f"retry, {attempts} attempts, then skip",
                "disable": "disable the trigger"}.get(error_behavior, error_behavior)
    if kind == "wal":
        if error_behavior == "disable":
            on_error = "disable the trigger; enabling it resumes at the failed batch"
        base = ("at least once (run_async)" if run_async
                else "exactly once for buffered writes")
        return f"{base}; on error: {on_error}"
    if kind == "request":
        return "once per request"
    base = {"schedule": "each fire time while the server runs; runs missed while it was "
                        "down are logged" + (" and caught up in one call" if catch_up else ""),
            "parquet": "each snapshot's files while the server runs"}.get(kind, kind)
    return f"{base}; on error: {on_error}"


class TriggerRunner:
    """Common machinery: the worker slot, invocation, logging, policies, stopping."""

    what = "wal"  # used in "error executing <what> plugin"
    context = "wal plugin"  # used in "error running <context>"

    def __init__(self, host: RunnerHost, defn: TriggerDefinition, spec: TriggerSpec,
                 ref: PluginRef) -> None:
        self.host = host
        self.defn = defn
        self.spec = spec
        self.ref = ref
        self.name = defn.trigger_name
        self.db = defn.database
        self.slot = host.worker_slot(defn, ref)
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._async_tasks: set[asyncio.Task[Any]] = set()
        self._async_limit = asyncio.Semaphore(host.options.max_async_calls)

    @property
    def key(self) -> TriggerKey:
        return (self.db, self.name)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def log(self, level: str, text: str) -> None:
        self.host.logs.add(self.name, level, text)

    async def start(self) -> None:
        """Start the worker now (so the trigger is running when creation returns)."""
        await self.slot.ensure()
        self._main = asyncio.create_task(self._run(), name=f"trigger {self.db}/{self.name}")

    async def _run(self) -> None:
        await self._stop_event.wait()

    def _wake(self) -> None:
        """Unblock the main loop so it sees `_stopping`."""

    async def stop(self, reason: str = "the trigger was stopped", timeout: float | None = None
                   ) -> None:
        """Stop: a synchronous trigger first finishes the call in progress (and its
        write-back); calls of `run_async` triggers still running are abandoned."""
        self._stopping = True
        self._stop_event.set()
        self._wake()
        main = self._main
        if main is not None and main is not asyncio.current_task():
            if timeout is None:
                timeout = (self.host.options.call_timeout or 300.0) + 10.0
            try:
                await asyncio.wait_for(asyncio.shield(main), timeout)
            except (TimeoutError, asyncio.CancelledError):
                main.cancel()
            except Exception:  # noqa: BLE001 - the loop's own failure must not stop the stop
                pass
        for task in list(self._async_tasks):
            task.cancel()
        await self.slot.close(reason)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; True if the trigger is stopping."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), seconds)
        return self._stopping

    async def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        await self._async_limit.acquire()
        task = asyncio.create_task(coro)
        self._async_tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._async_tasks.discard(t)
            self._async_limit.release()

        task.add_done_callback(done)

    # ---- one call --------------------------------------------------------------------

    async def invoke(self, header: dict[str, Any], payload: bytes, start_line: str,
                     commit: Callable[[Writes], Awaitable[None]] | None = None) -> Outcome:
        """Run one call in the worker; if it succeeded, store its buffered writes (with
        `commit`, or `commit_writes`). A call whose writes cannot be stored failed.
        Every call is counted, by trigger, with its outcome and duration (/metrics)."""
        started = time.perf_counter()
        out = await self._invoke(header, payload, start_line, commit)
        self.host.metrics.record(self.db, self.name, self.what, out.ok,
                                 time.perf_counter() - started)
        return out

    async def _invoke(self, header: dict[str, Any], payload: bytes, start_line: str,
                      commit: Callable[[Writes], Awaitable[None]] | None) -> Outcome:
        self.log("INFO", start_line)
        started = time.perf_counter_ns()
        try:
            result, body = await self.slot.call(header, payload,
                                                timeout=self.host.options.call_timeout)
        except WorkerDied as e:
            return Outcome(False, e.reason)
        except WorkerStartError as e:
            return Outcome(False, f"the plugin worker could not start: {e}")
        if not result.get("ok"):
            return Outcome(False, result.get("error") or "unknown error", result.get("traceback"))
        writes: Writes = result.get("writes") or {}
        if commit is None:
            await self.commit_writes(writes)
        else:
            try:
                await commit(writes)
            # the WAL failed or refused, or storage broke: nothing was stored
            except Exception as e:  # noqa: BLE001 - the call then failed, and says why
                return Outcome(False, f"its buffered writes could not be stored: {e}")
        self.log("INFO", f"finished execution in "
                         f"{format_humantime(time.perf_counter_ns() - started)}")
        return Outcome(True, response=result.get("response"), body=body)

    async def commit_writes(self, writes: Writes) -> None:
        """Write each database's buffered lines in one all-or-nothing write."""
        for db, lines in writes.items():
            if not lines:
                continue
            try:
                await self.host.writes.write_from_plugin(db, "\n".join(lines), no_sync=False)
            except Exception as e:  # noqa: BLE001 - a failed write-back goes to the log
                self.log("ERROR", f"error running {self.context}: error writing back lines to "
                                  f"{db}: {describe_write_error(e)}")

    async def run_with_policy(self, header: dict[str, Any], payload: bytes,
                              start_line: str,
                              commit: Callable[[Writes], Awaitable[None]] | None = None
                              ) -> Handled:
        """Invoke, then apply the trigger's `error_behavior` to a failure. Says how the
        event ended: handled (`ok`), given up on (`skipped`: `log`, or `retry` past its
        bound), `disabled`, or `stopped` (the trigger stopped while retrying)."""
        attempts = max(1, self.host.options.retry_attempts)
        attempt = 1
        while True:
            out = await self.invoke(header, payload, start_line, commit)
            if out.ok:
                return "ok"
            if self._stopping:
                return "stopped"
            message = f"error executing {self.what} plugin: {out.error}"
            detail = f"\n{out.traceback}" if out.traceback else ""
            behavior = self.defn.error_behavior
            if behavior == "retry" and attempt < attempts:
                opts = self.host.options
                delay = min(opts.retry_base_delay * 2 ** (attempt - 1), opts.retry_max_delay)
                self.log("ERROR", f"{message}; will retry in "
                                  f"{format_humantime(int(delay * 1e9))} (attempt {attempt} of "
                                  f"{attempts}){detail}")
                if await self._sleep(delay):
                    return "stopped"
                attempt += 1
                continue
            self.log("ERROR", message + detail)
            if behavior == "retry":
                self.log("ERROR", f"giving up on this event after {attempt} attempts")
            elif behavior == "disable":
                self._stopping = True  # handle no further event while being disabled
                self._stop_event.set()
                self.host.disable_after_error(self, out.error or "unknown error")
                return "disabled"
            return "skipped"


class ParquetTriggerRunner(TriggerRunner):
    """`parquet:all_tables` / `parquet:<t>`: each snapshot's files once, in order."""

    what = "parquet"
    context = "parquet plugin"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue()

    def enqueue(self, files: list[dict[str, Any]]) -> None:
        if self.spec.table is not None:
            files = [f for f in files if f["table_name"] == self.spec.table]
        if files and not self._stopping:
            self._queue.put_nowait(files)

    def _wake(self) -> None:
        self._queue.put_nowait(None)

    async def _run(self) -> None:
        while True:
            files = await self._queue.get()
            if files is None or self._stopping:
                return
            header = {"kind": "parquet", "files": files}
            start = "starting execution of parquet plugin."
            if self.defn.run_async:
                await self._spawn(self.run_with_policy(header, b"", start))
            else:
                await self.run_with_policy(header, b"", start)


class RequestTriggerRunner(TriggerRunner):
    """`request:<path>`: one call per HTTP request; buffered writes are committed
    before the response is sent. `error_behavior` does not apply."""

    what = "request"
    context = "request plugin"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._serial = asyncio.Lock()

    async def handle(self, query: dict[str, str], headers: dict[str, str], body: bytes
                     ) -> HttpReply:
        if self.defn.run_async:
            return await self._handle(query, headers, body)
        async with self._serial:  # the reference handles a trigger's requests in turn
            return await self._handle(query, headers, body)

    async def _handle(self, query: dict[str, str], headers: dict[str, str], body: bytes
                      ) -> HttpReply:
        out = await self.invoke({"kind": "request", "query": query, "headers": headers},
                                body, "starting execution of request plugin.")
        if out.ok and out.response is not None:
            return HttpReply(int(out.response.get("status", 200)),
                             dict(out.response.get("headers") or {}), out.body)
        detail = f"\n{out.traceback}" if out.traceback else ""
        self.log("ERROR", f"error running request plugin: {out.error}{detail}")
        error = json.dumps({"error": f"Python function call failed: {out.error}"},
                           separators=(",", ":"))
        return HttpReply(500, {}, error.encode())
