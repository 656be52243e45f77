"""Trigger runners: one per enabled trigger, feeding events to its worker.

* WAL (`table:`, `all_tables`) and Parquet triggers take events from a queue, one at
  a time and in order, each call including the write-back of its buffered lines;
  the WAL listener only enqueues, so writers never wait for plugins.
* Schedules (`every:`, `cron:`) are run by `weir.engine.schedule`.
* Request triggers answer `/api/v3/engine/<path>` calls, one at a time.

With `run_async` each event is handled in its own task instead (calls may overlap
and finish out of order). `error_behavior` applies to WAL, schedule and Parquet
triggers: `log` logs and moves on; `retry` retries the same event with exponential
backoff up to a bound; `disable` disables the trigger in the catalog, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from weir.catalog import TriggerDefinition
from weir.engine.loader import PluginRef
from weir.engine.logs import PluginLogs
from weir.engine.options import EngineOptions
from weir.engine.services import describe_write_error
from weir.engine.specs import TriggerSpec, format_humantime
from weir.engine.worker.protocol import table_to_ipc
from weir.engine.workers import WorkerDied, WorkerSlot, WorkerStartError
from weir.service import WriteService

_BACKLOG_WARNINGS = (1_000, 10_000, 100_000)


class RunnerHost(Protocol):
    """What a runner needs from the engine."""

    @property
    def writes(self) -> WriteService: ...

    @property
    def logs(self) -> PluginLogs: ...

    @property
    def options(self) -> EngineOptions: ...

    def worker_slot(self, defn: TriggerDefinition, ref: PluginRef) -> WorkerSlot: ...

    def disable_after_error(self, runner: TriggerRunner, error: str) -> None: ...


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


class WalEvent:
    """One WAL flush's rows for one database, encoded once for every trigger."""

    def __init__(self, seq: int, items: list[tuple[str, pa.RecordBatch]]) -> None:
        self.seq = seq
        self.segments = [(table, table_to_ipc(batch)) for table, batch in items]

    def call_for(self, table: str | None) -> tuple[dict[str, Any], bytes]:
        segs = [s for s in self.segments if table is None or s[0] == table]
        header = {"kind": "wal", "tables": [{"name": n, "size": len(b)} for n, b in segs]}
        return header, b"".join(b for _, b in segs)


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
    def key(self) -> tuple[str, str]:
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

    async def invoke(self, header: dict[str, Any], payload: bytes, start_line: str) -> Outcome:
        """Run one call in the worker; commit its buffered writes if it succeeded."""
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
        await self.commit_writes(result.get("writes") or {})
        self.log("INFO", f"finished execution in "
                         f"{format_humantime(time.perf_counter_ns() - started)}")
        return Outcome(True, response=result.get("response"), body=body)

    async def commit_writes(self, writes: dict[str, list[str]]) -> None:
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
                              start_line: str) -> None:
        """Invoke, then apply the trigger's `error_behavior` to a failure."""
        attempts = max(1, self.host.options.retry_attempts)
        attempt = 1
        while True:
            out = await self.invoke(header, payload, start_line)
            if out.ok or self._stopping:
                return
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
                    return
                attempt += 1
                continue
            self.log("ERROR", message + detail)
            if behavior == "retry":
                self.log("ERROR", f"giving up on this event after {attempt} attempts")
            elif behavior == "disable":
                self._stopping = True  # handle no further event while being disabled
                self._stop_event.set()
                self.host.disable_after_error(self, out.error or "unknown error")
            return


class WalTriggerRunner(TriggerRunner):
    """`table:<t>` / `all_tables`: each flushed batch once, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue: asyncio.Queue[WalEvent | None] = asyncio.Queue()

    def enqueue(self, event: WalEvent) -> None:
        if self._stopping:
            return
        self._queue.put_nowait(event)
        size = self._queue.qsize()
        if size in _BACKLOG_WARNINGS:
            self.log("WARN", f"{size} WAL flushes are waiting for this trigger; its plugin "
                             "is slower than the writes")

    def _wake(self) -> None:
        self._queue.put_nowait(None)

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            if event is None or self._stopping:
                return
            header, payload = event.call_for(self.spec.table)
            start = "starting execution of wal plugin."
            if self.defn.run_async:
                await self._spawn(self.run_with_policy(header, payload, start))
            else:
                await self.run_with_policy(header, payload, start)


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
