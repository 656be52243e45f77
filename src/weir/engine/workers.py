"""Server side of plugin workers: spawning, talking to and replacing worker processes.

Each enabled trigger owns a `WorkerSlot`, which keeps one long-lived worker process
(`WorkerProcess`) and replaces it when it dies. A worker runs the plugin
environment's Python with the server's site-packages appended *after* the venv's
(so packages installed for plugins win, and pyarrow is always found).

A call never holds a lock while the plugin runs: each call is a future resolved by
the reader task, and requests the plugin makes back (queries, immediate writes, the
global cache) are served in their own tasks. A call that exceeds its time limit gets
its worker killed; a worker that dies (exit, signal, memory) fails only the calls it
had in flight, with the reason, and the slot starts a fresh worker for the next call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import os
import signal
import site
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

import weir
from weir.engine.plugin_env import PluginEnvPolicy
from weir.engine.specs import format_humantime
from weir.engine.worker.protocol import (
    PREFIX,
    ProtocolError,
    decode_prefix,
    encode_frame,
    table_to_ipc,
)

log = logging.getLogger("weir.engine")

#: Run with `python -c`: put the server's packages after the venv's, then serve.
BOOTSTRAP = """\
import json, os, site, sys
_boot = json.loads(os.environ.pop("WEIR_WORKER_BOOT"))
sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]
for _p in _boot["first_paths"]:
    if _p not in sys.path:
        sys.path.append(_p)
for _d in _boot["site_dirs"]:
    site.addsitedir(_d)
for _p in _boot["paths"]:
    if _p not in sys.path:
        sys.path.append(_p)
from weir.engine.worker.main import main
main(_boot)
"""


class WorkerDied(Exception):
    """The worker stopped (or was stopped) before it answered a call."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WorkerStartError(Exception):
    """A worker process could not be started."""


class WorkerServices(Protocol):
    """What workers may ask of the server."""

    async def query(self, database: str, sql: str, params: dict[str, Any] | None) -> pa.Table:
        ...

    async def write(self, database: str, lp: str, no_sync: bool) -> None: ...

    async def global_cache(self, request: dict[str, Any]) -> dict[str, Any]: ...

    def plugin_log(self, trigger_name: str, level: str, text: str) -> None: ...


@dataclass
class WorkerSpec:
    """How to start one worker."""

    label: str  # the trigger name (or "dry run"), for logs
    python: str
    init: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)  # set on top of the inherited ones
    #: which of the server's environment variables the worker inherits (weir.engine.plugin_env)
    env_policy: PluginEnvPolicy = field(default_factory=PluginEnvPolicy)
    cwd: str | None = None
    memory_limit: int | None = None
    first_paths: list[str] = field(default_factory=list)  # before the server's packages
    start_timeout: float = 30.0
    fallback_python: str | None = None  # tried when `python` cannot start a worker


def server_paths() -> tuple[list[str], list[str]]:
    """(site dirs, other paths) of the server's interpreter, for workers to append."""
    site_dirs: list[str] = []
    user = [site.getusersitepackages()] if site.ENABLE_USER_SITE else []
    for d in [*site.getsitepackages(), sysconfig.get_paths()["purelib"],
              sysconfig.get_paths()["platlib"], *user]:
        if d not in site_dirs and os.path.isdir(d):
            site_dirs.append(d)
    weir_root = os.path.dirname(os.path.dirname(os.path.abspath(weir.__file__)))
    paths = [weir_root] if weir_root not in site_dirs else []
    return site_dirs, paths


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "stopped"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = {"SIGSEGV": " (segmentation fault)", "SIGKILL": " (killed; out of memory?)",
                "SIGABRT": " (aborted)", "SIGBUS": " (bus error)"}.get(name, "")
        return f"killed by signal {-returncode} ({name}){hint}"
    return f"exited with code {returncode}"


class WorkerProcess:
    """One worker subprocess and the framed pipes to it."""

    def __init__(self, spec: WorkerSpec, services: WorkerServices) -> None:
        self.spec = spec
        self.services = services
        self.proc: asyncio.subprocess.Process | None = None
        self.python = spec.python
        self._ids = itertools.count(1)
        self._calls: dict[int, asyncio.Future[tuple[dict[str, Any], bytes]]] = {}
        self._write_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._exit_watch: asyncio.Task[None] | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=30)
        self._death_reason: str | None = None
        self._exited = asyncio.Event()
        self.pid: int | None = None

    @property
    def alive(self) -> bool:
        return (self.proc is not None and self.proc.returncode is None
                and self._death_reason is None and not self._exited.is_set())

    @property
    def death_reason(self) -> str | None:
        return self._death_reason

    async def start(self, python: str | None = None) -> None:
        spec = self.spec
        self.python = python or spec.python
        site_dirs, paths = server_paths()
        boot = {"site_dirs": site_dirs, "paths": paths, "first_paths": spec.first_paths,
                "memory_limit": spec.memory_limit}
        env = {**spec.env_policy.apply(os.environ), **spec.env,
               "WEIR_WORKER_BOOT": json.dumps(boot), "PYTHONUNBUFFERED": "1"}
        try:
            self.proc = await asyncio.create_subprocess_exec(
                self.python, "-c", BOOTSTRAP, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=env, cwd=spec.cwd, start_new_session=True, limit=2**20)
        except OSError as e:
            raise WorkerStartError(f"cannot start {self.python}: {e}") from None
        self.pid = self.proc.pid
        self._stderr_task = asyncio.create_task(self._pump_stderr(), name=f"stderr {spec.label}")
        self._exit_watch = asyncio.create_task(self._watch_exit(), name=f"exit {spec.label}")
        why = None
        frame: tuple[dict[str, Any], bytes] | None = None
        try:
            await self._send({"op": "init", **spec.init})
            frame = await asyncio.wait_for(self._read_frame(), spec.start_timeout)
        except TimeoutError:
            why = "did not answer in time"
        except (WorkerDied, ProtocolError, ConnectionError):
            pass
        if why is None and (frame is None or frame[0].get("op") != "ready"):
            why = "did not start"
        if why is not None:
            if why == "did not answer in time" or not await self._wait_exit(2.0):
                await self._kill_now()
            await self._wait_stderr()
            if self.proc.returncode is not None and why == "did not start":
                why = describe_exit(self.proc.returncode)
            detail = "\n".join(list(self._stderr_tail)[-12:])
            raise WorkerStartError(f"the plugin worker ({self.python}) {why}"
                                   + (f":\n{detail}" if detail else ""))
        self._reader = asyncio.create_task(self._read_loop(), name=f"worker {spec.label}")

    # ---- frames ----------------------------------------------------------------------

    async def _send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        assert self.proc is not None and self.proc.stdin is not None
        frame = encode_frame(header, payload)
        try:
            async with self._write_lock:
                self.proc.stdin.write(frame)
                await self.proc.stdin.drain()
        except (ConnectionError, RuntimeError, AssertionError) as e:
            raise WorkerDied(self._death_reason or f"the worker's input is closed ({e})") from None

    async def _read_frame(self) -> tuple[dict[str, Any], bytes] | None:
        assert self.proc is not None and self.proc.stdout is not None
        out = self.proc.stdout
        try:
            prefix = await out.readexactly(PREFIX.size)
        except asyncio.IncompleteReadError as e:
            if not e.partial:
                return None
            raise ProtocolError("stream ended inside a frame") from None
        hlen, plen = decode_prefix(prefix)
        try:
            head = await out.readexactly(hlen)
            payload = await out.readexactly(plen) if plen else b""
        except asyncio.IncompleteReadError:
            raise ProtocolError("stream ended inside a frame") from None
        return json.loads(head), payload

    async def _read_loop(self) -> None:
        try:
            while True:
                frame = await self._read_frame()
                if frame is None:
                    break
                header, payload = frame
                op = header.get("op")
                if op == "result":
                    fut = self._calls.pop(header.get("id", -1), None)
                    if fut is not None and not fut.done():
                        fut.set_result((header, payload))
                elif op == "log":
                    self.services.plugin_log(self.spec.label, str(header.get("level")),
                                             str(header.get("text")))
                elif op in ("query", "write", "gcache"):
                    task = asyncio.create_task(self._serve(header, payload))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        except (ProtocolError, ValueError) as e:
            self._death_reason = self._death_reason or f"broken frame from the worker: {e}"
            await self._kill_now()
        except asyncio.CancelledError:
            raise
        # The worker closed its output: it is gone or going. Clear its process group
        # (processes it started may hold its stderr open) and collect its exit status.
        self._kill_group()
        await self._wait_exit(5.0)
        await self._wait_stderr()
        assert self.proc is not None
        if self._death_reason is None:
            reason = f"the plugin worker {describe_exit(self.proc.returncode)}"
            tail = [ln for ln in self._stderr_tail if ln.strip()][-8:]
            if tail:
                reason += ":\n" + "\n".join(tail)
            self._death_reason = reason
        self._exited.set()
        self._fail_all(self._death_reason)

    async def _pump_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while True:
            try:
                line = await self.proc.stderr.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\n")
            self._stderr_tail.append(text)
            log.info("plugin output [%s]: %s", self.spec.label, text)

    async def _wait_stderr(self) -> None:
        if self._stderr_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._stderr_task), 1.0)

    async def _serve(self, header: dict[str, Any], payload: bytes) -> None:
        """Answer one request the plugin made (in its own task: never blocks the reader)."""
        op = header["op"]
        reply: dict[str, Any] = {"op": "reply", "rid": header.get("rid"), "ok": True}
        body = b""
        try:
            if op == "query":
                table = await self.services.query(header["database"], header["sql"],
                                                  header.get("params"))
                body = (table_to_ipc(table) if table.nbytes < 1 << 20
                        else await asyncio.to_thread(table_to_ipc, table))
            elif op == "write":
                await self.services.write(header["database"], header["lp"],
                                          bool(header.get("no_sync")))
            else:
                reply.update(await self.services.global_cache(header))
        except Exception as e:  # noqa: BLE001 - the plugin gets any failure as its reply
            reply = {"op": "reply", "rid": header.get("rid"), "ok": False, "error": str(e)}
        with contextlib.suppress(WorkerDied):
            await self._send(reply, body)

    def _fail_all(self, reason: str) -> None:
        calls, self._calls = self._calls, {}
        for fut in calls.values():
            if not fut.done():
                fut.set_exception(WorkerDied(reason))
                fut.exception()  # retrieved: the caller may have given up on it

    # ---- calls -----------------------------------------------------------------------

    async def call(self, header: dict[str, Any], payload: bytes = b"",
                   timeout: float | None = None) -> tuple[dict[str, Any], bytes]:
        """Run one call; raises WorkerDied if the worker dies or the time limit passes
        (then the worker is killed)."""
        if not self.alive:
            raise WorkerDied(self._death_reason or "the plugin worker is not running")
        cid = next(self._ids)
        fut: asyncio.Future[tuple[dict[str, Any], bytes]] = \
            asyncio.get_running_loop().create_future()
        self._calls[cid] = fut
        try:
            await self._send({"op": "call", "id": cid, **header}, payload)
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            reason = (f"the plugin call exceeded the time limit of "
                      f"{format_humantime(int((timeout or 0) * 1e9))}; its worker was stopped")
            self.kill(reason)
            raise WorkerDied(reason) from None
        finally:
            self._calls.pop(cid, None)

    def kill(self, reason: str) -> None:
        """Kill the worker now; calls in flight fail with `reason`."""
        if self._death_reason is None:
            self._death_reason = reason
        self._signal(signal.SIGKILL)
        self._fail_all(reason)

    async def _wait_exit(self, timeout: float) -> bool:
        """Wait until the worker process has exited; True if it has.

        Polls the return code: `Process.wait()` (Python 3.11) only returns once every
        pipe is closed, which processes started by a plugin can delay indefinitely.
        """
        assert self.proc is not None
        deadline = asyncio.get_running_loop().time() + timeout
        while self.proc.returncode is None:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def _watch_exit(self) -> None:
        """When the worker exits, kill what it left in its process group: processes the
        plugin started would otherwise keep the pipes open (and the exit unnoticed)."""
        assert self.proc is not None
        while self.proc.returncode is None:
            await asyncio.sleep(0.25)
        self._kill_group()

    def _kill_group(self) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)  # the worker leads its own process group
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    async def _kill_now(self) -> None:
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            await self._wait_exit(5.0)
            self._kill_group()

    async def close(self, timeout: float = 3.0, reason: str = "the trigger was stopped") -> None:
        """Ask the worker to exit; kill it if it does not within `timeout`."""
        if self.proc is None:
            return
        if self._death_reason is None:
            self._death_reason = reason
        if self.proc.returncode is None:
            with contextlib.suppress(WorkerDied, ConnectionError):
                await self._send({"op": "shutdown"})
            with contextlib.suppress(Exception):
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
            if not await self._wait_exit(timeout):
                await self._kill_now()
        self._kill_group()
        self._fail_all(reason)
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._reader, 2.0)
        for task in list(self._tasks):
            task.cancel()


class WorkerSlot:
    """A trigger's worker: started on demand, replaced after it dies."""

    def __init__(self, spec_factory: Callable[[], WorkerSpec], services: WorkerServices,
                 on_event: Callable[[str, str], None] | None = None) -> None:
        self._spec_factory = spec_factory
        self._services = services
        self._on_event = on_event or (lambda level, text: None)
        self._proc: WorkerProcess | None = None
        self._spawn_lock = asyncio.Lock()
        self._closed = False
        self.replacements = 0

    @property
    def process(self) -> WorkerProcess | None:
        return self._proc

    async def ensure(self) -> WorkerProcess:
        """The running worker, starting (or replacing) it if needed."""
        proc = self._proc
        if proc is not None and proc.alive:
            return proc
        async with self._spawn_lock:
            if self._closed:
                raise WorkerDied("the trigger was stopped")
            proc = self._proc
            if proc is not None and proc.alive:
                return proc
            if proc is not None:
                self.replacements += 1
                self._on_event("WARN", f"starting a new plugin worker; the previous one "
                                       f"stopped: {(proc.death_reason or 'unknown').splitlines()[0]}")
            spec = self._spec_factory()
            new = WorkerProcess(spec, self._services)
            try:
                await new.start()
            except WorkerStartError as e:
                if not spec.fallback_python or spec.fallback_python == spec.python:
                    raise
                self._on_event("ERROR", f"{e}\nfalling back to {spec.fallback_python}")
                new = WorkerProcess(spec, self._services)
                await new.start(spec.fallback_python)
            self._proc = new
            return new

    async def call(self, header: dict[str, Any], payload: bytes = b"",
                   timeout: float | None = None) -> tuple[dict[str, Any], bytes]:
        proc = await self.ensure()
        return await proc.call(header, payload, timeout)

    async def close(self, reason: str = "the trigger was stopped") -> None:
        self._closed = True
        async with self._spawn_lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            await proc.close(reason=reason)
