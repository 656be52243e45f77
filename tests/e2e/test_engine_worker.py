"""Plugin workers as real subprocesses: the plugin API inside them, the frame protocol,
and isolation (exceptions, exits, segfaults, hangs, memory)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pytest

from support.inprocess import batch
from weir.engine.services import SharedCache
from weir.engine.worker.protocol import table_to_ipc
from weir.engine.worker.responses import ResponseConversionError, to_http_answer
from weir.engine.workers import (
    WorkerDied,
    WorkerProcess,
    WorkerSlot,
    WorkerSpec,
    WorkerStartError,
)
from weir.errors import QueryError, WriteError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Services:
    def __init__(self) -> None:
        self.logs: list[tuple[str, str]] = []
        self.writes: list[tuple[str, str, bool]] = []
        self.queries: list[tuple[str, str, Any]] = []
        self.shared = SharedCache()

    async def query(self, database: str, sql: str, params: Any) -> pa.Table:
        self.queries.append((database, sql, params))
        if "not_here" in sql:
            raise QueryError("error while planning query: table 'public.iox.not_here' not found")
        return pa.table({
            "host": pa.array(["a", None]).dictionary_encode(),
            "usage": pa.array([0.5, None], pa.float64()),
            "n": pa.array([1, 2], pa.int64()),
            "u": pa.array([3, None], pa.uint64()),
            "ok": pa.array([True, False]),
            "s": pa.array(["x", "y"], pa.string()),
            "time": pa.array([1_000, 2_000], pa.timestamp("ns")),
            "t_ms": pa.array([1, 2], pa.timestamp("ms", tz="UTC")),
        })

    async def write(self, database: str, lp: str, no_sync: bool) -> None:
        if "INVALID" in lp:
            raise WriteError("line protocol parsing error: bad field")
        self.writes.append((database, lp, no_sync))

    async def global_cache(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.shared.handle(request)

    def plugin_log(self, trigger_name: str, level: str, text: str) -> None:
        self.logs.append((level, text))


def write_plugin(tmp_path: Path, code: str, name: str = "plugin.py") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))
    return path


def file_ref(path: Path) -> dict[str, Any]:
    return {"kind": "file", "name": path.name, "path": str(path), "code": None}


def spec_for(tmp_path: Path, ref: dict[str, Any], *, args: dict[str, str] | None = None,
             memory_limit: int | None = None, mode: str = "trigger") -> WorkerSpec:
    return WorkerSpec(label="t1", python=sys.executable, cwd=str(tmp_path),
                      env={"TZ": "UTC", "PLUGIN_DIR": str(tmp_path)}, memory_limit=memory_limit,
                      init={"mode": mode, "trigger_name": "t1", "database": "db", "args": args,
                            "plugin": ref})


async def start(tmp_path: Path, code: str, services: Services, **kw: Any) -> WorkerProcess:
    w = WorkerProcess(spec_for(tmp_path, file_ref(write_plugin(tmp_path, code)), **kw), services)
    await w.start()
    return w


def wal_call(lp: str) -> tuple[dict[str, Any], bytes]:
    segs = [(t, table_to_ipc(b)) for t, b in batch(lp)]
    return ({"kind": "wal", "tables": [{"name": t, "size": len(s)} for t, s in segs]},
            b"".join(s for _, s in segs))


async def test_wal_call_table_batches_logs_writes_and_api_surface(tmp_path: Path) -> None:
    svc = Services()
    w = await start(tmp_path, """
        from typing import Optional

        def helper() -> Optional[LineBuilder]:   # LineBuilder is a builtin at import time
            return None

        def process_writes(influxdb3_local, table_batches, args=None):
            influxdb3_local.info("args", args)
            args["mutated"] = "yes"
            for tb in table_batches:
                influxdb3_local.info("table:", tb["table_name"])
                for row in tb["rows"]:
                    influxdb3_local.info("row: " + str(row))
            names = sorted(n for n in dir(influxdb3_local) if not n.startswith("__"))
            influxdb3_local.warn(names)
            influxdb3_local.error("types", InvalidLineError.__mro__[1].__name__)
            influxdb3_local.write(LineBuilder("out").tag("t", "x").int64_field("n", 1))
            influxdb3_local.write_to_db("other", "a v=1i\\nb v=2i")
            return table_batches
        """, svc, args={"arg1": "val1"})
    header, payload = wal_call("cpu,host=A,region=west usage=1i,system=23.2 100\n"
                               "mem,host=B user=43.1 120\ncpu,host=C usage=2i 130")
    for _ in range(2):  # args is a fresh dict on every call
        result, _ = await w.call(header, payload, timeout=10)
        assert result["ok"], result
    assert result["writes"] == {"db": ["out,t=x n=1i"], "other": ["a v=1i", "b v=2i"]}
    texts = [t for _, t in svc.logs]
    assert texts[:6] == [
        "args {'arg1': 'val1'}", "table: cpu",
        "row: {'host': 'A', 'region': 'west', 'usage': 1, 'system': 23.2, 'time': 100}",
        "row: {'host': 'C', 'usage': 2, 'time': 130}",
        "table: mem", "row: {'host': 'B', 'user': 43.1, 'time': 120}",
    ]
    assert texts[6] == str(["cache", "error", "info", "query", "warn", "write", "write_sync",
                            "write_sync_to_db", "write_to_db"])
    assert ("ERROR", "types InfluxDBError") in svc.logs
    assert texts.count("args {'arg1': 'val1'}") == 2
    await w.close()


async def test_query_schedule_time_and_sync_writes(tmp_path: Path) -> None:
    svc = Services()
    w = await start(tmp_path, """
        import datetime, os, time
        def process_scheduled_call(influxdb3_local, call_time, args=None):
            influxdb3_local.info(repr(call_time), call_time.tzinfo, time.tzname[0],
                                 os.environ.get("PLUGIN_DIR") is not None)
            influxdb3_local.info(call_time.timestamp())
            rows = influxdb3_local.query(query="SELECT * FROM cpu WHERE host = $h",
                                         args={"h": "a"})
            influxdb3_local.info(rows)
            try:
                influxdb3_local.query("SELECT foo FROM not_here", None, "foo")
            except Exception as e:
                influxdb3_local.info(type(e).__name__ + ": " + str(e))
            try:
                influxdb3_local.query("SELECT 1", database="bad db")
            except Exception as e:
                influxdb3_local.info(str(e))
            influxdb3_local.write_sync(LineBuilder("s").int64_field("v", 1), no_sync=True)
            influxdb3_local.write_sync_to_db("db2", LineBuilder("s").int64_field("v", 2), False)
            try:
                influxdb3_local.write_sync(LineBuilder("INVALID").int64_field("v", 1), True)
            except Exception as e:
                influxdb3_local.info("sync failed:", e)
        """, svc)
    result, _ = await w.call({"kind": "schedule", "call_time": 1731582001}, timeout=10)
    assert result["ok"], result
    texts = [t for _, t in svc.logs]
    assert texts[0] == "datetime.datetime(2024, 11, 14, 11, 0, 1) None UTC True"
    assert texts[1] == "1731582001.0"
    assert texts[2] == str([
        {"host": "a", "usage": 0.5, "n": 1, "u": 3, "ok": True, "s": "x", "time": 1000,
         "t_ms": 1_000_000},
        {"host": None, "usage": None, "n": 2, "u": None, "ok": False, "s": "y", "time": 2000,
         "t_ms": 2_000_000}])
    assert texts[3] == ("QueryError: error: error while planning query: table "
                        "'public.iox.not_here' not found executing query on foo: "
                        "SELECT foo FROM not_here")
    assert "invalid database name" in texts[4] and "bad db" in texts[4]
    assert "contains invalid character" in texts[4]
    assert texts[5].startswith("sync failed: error writing line protocol to db: ")
    assert svc.queries[0] == ("db", "SELECT * FROM cpu WHERE host = $h", {"h": "a"})
    assert svc.writes == [("db", "s v=1i", True), ("db2", "s v=2i", False)]
    await w.close()


async def test_failures_drop_buffered_writes_and_report_exceptions(tmp_path: Path) -> None:
    svc = Services()
    path = write_plugin(tmp_path, """
        def process_writes(influxdb3_local, table_batches, args=None):
            influxdb3_local.write(LineBuilder("lost").int64_field("v", 1))
            raise ValueError("boom")
        """)
    w = WorkerProcess(spec_for(tmp_path, file_ref(path)), svc)
    await w.start()
    header, payload = wal_call("cpu v=1i 1")
    result, _ = await w.call(header, payload, timeout=10)
    assert not result["ok"] and result["error"] == "ValueError: boom"
    assert "writes" not in result
    assert 'File "<string>", line 4, in process_writes' in result["traceback"]
    assert 'raise ValueError("boom")' in result["traceback"]
    assert "weir/engine/worker" not in result["traceback"]

    cases = [
        ("def process_writes(a, b):\n    pass\n",
         "TypeError: process_writes() takes 2 positional arguments but 3 were given"),
        ("def process_writes(a, b=None):\n    pass\n",
         "TypeError: process_writes() takes from 1 to 2 positional arguments but 3 were given"),
        ("x = 1\n  y = 2\n", "IndentationError: unexpected indent (<string>, line 2)"),
        ("def process_request(a, b, c, d, e=None):\n    pass\n",
         "the process_writes function is not present in the plugin. Should be defined as: "
         "process_writes(influxdb3_local, table_batches, args=None)"),
        ("def process_writes(local, tb, args):\n    LineBuilder('some_table').build()\n",
         "InvalidLineError: At least one field is required: some_table"),
        ("import sys\ndef process_writes(local, tb, args):\n    sys.exit(3)\n", "SystemExit: 3"),
    ]
    for i, (code, error) in enumerate(cases):
        path.write_text(code)
        os.utime(path, ns=(time.time_ns(), time.time_ns() + i + 1))  # hot reload
        result, _ = await w.call(header, payload, timeout=10)
        assert result["error"] == error
    assert w.alive  # SystemExit cost only its call
    await w.close()


async def test_fresh_globals_hot_reload_and_live_cache(tmp_path: Path) -> None:
    svc = Services()
    path = write_plugin(tmp_path, """
        import threading
        counter = 0
        def process_request(influxdb3_local, query_parameters, request_headers, body, args=None):
            global counter
            counter += 1
            cache = influxdb3_local.cache
            lock = cache.get("lock") or threading.Lock()
            cache.put("lock", lock)
            seen = cache.get("seen", default=[])
            seen.append(counter)
            cache.put("seen", seen)
            cache.put("short", 1, 0)
            cache.put("g", {"n": len(seen)}, use_global=True)
            return {"counter": counter, "seen": cache.get("seen"), "short": cache.get("short"),
                    "lock_is_same": cache.get("lock") is lock, "g": cache.get("g", use_global=True),
                    "deleted": [cache.delete("short"), cache.delete("nope")],
                    "name_leak": "helper_from_other" in globals()}
        """)
    w = WorkerProcess(spec_for(tmp_path, file_ref(path)), svc)
    await w.start()
    req = {"kind": "request", "query": {"a": "1"}, "headers": {"x": "y"}}
    bodies = []
    for _ in range(3):
        result, body = await w.call(req, b"{}", timeout=10)
        assert result["ok"], result
        bodies.append(json.loads(body))
    assert [b["counter"] for b in bodies] == [1, 1, 1]  # module globals never persist
    assert bodies[-1]["seen"] == [1, 1, 1]  # the cache holds the same live list
    assert bodies[-1]["short"] is None and bodies[-1]["lock_is_same"]
    assert bodies[-1]["g"] == {"n": 3} and bodies[-1]["deleted"] == [False, False]
    assert result["response"]["headers"] == {"Content-Type": "application/json"}

    path.write_text("def process_request(local, q, h, b, args=None):\n    return 'v2', 201\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    result, body = await w.call(req, b"", timeout=10)
    assert (result["response"]["status"], body) == (201, b"v2")
    path.write_text("def process_request(local, q, h, b, args=None):\n"
                    "    local.cache.put('x', lambda: 1, use_global=True)\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    result, _ = await w.call(req, b"", timeout=10)
    assert result["error"].startswith("TypeError: values stored with use_global=True")
    await w.close()


async def test_package_plugin_relative_imports_and_reload(tmp_path: Path) -> None:
    svc = Services()
    pkg = tmp_path / "my_pkg"
    write_plugin(pkg, "from .util import value\nfrom .models.proc import double\n"
                      "def process_scheduled_call(local, t, args=None):\n"
                      "    local.info(value(), double(2))\n", "__init__.py")
    write_plugin(pkg, "def value():\n    return 'one'\n", "util.py")
    write_plugin(pkg, "", "models/__init__.py")
    write_plugin(pkg, "from ..util import value\ndef double(x):\n    return x * 2\n",
                 "models/proc.py")
    ref = {"kind": "package", "name": "my_pkg", "path": str(pkg), "code": None}
    w = WorkerProcess(spec_for(tmp_path, ref), svc)
    await w.start()
    result, _ = await w.call({"kind": "schedule", "call_time": 0}, timeout=10)
    assert result["ok"], result
    util = pkg / "util.py"
    util.write_text("def value():\n    return 'two'\n")
    os.utime(util, ns=(time.time_ns(), time.time_ns() + 10**9))
    result, _ = await w.call({"kind": "schedule", "call_time": 0}, timeout=10)
    assert [t for _, t in svc.logs] == ["one 4", "two 4"]
    (pkg / "util.py").write_text("import not_a_module_anywhere\n")
    os.utime(util, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    result, _ = await w.call({"kind": "schedule", "call_time": 0}, timeout=10)
    assert result["error"].startswith("Failed to import plugin module 'my_pkg': "
                                      "ModuleNotFoundError: No module named "
                                      "'not_a_module_anywhere'\nHint: Check for syntax errors")
    await w.close()


@pytest.mark.parametrize("value,status,headers,body", [
    ("Hello, World!", 200, {"Content-Type": "text/html"}, b"Hello, World!"),
    ({"message": "hi"}, 200, {"Content-Type": "application/json"}, b'{"message": "hi"}'),
    (("Created successfully", 201), 201, {"Content-Type": "text/html"}, b"Created successfully"),
    (("Custom", {"Content-Type": "text/plain", "X-Custom-Header": "test-value"}), 200,
     {"Content-Type": "text/plain", "X-Custom-Header": "test-value"}, b"Custom"),
    (("Not Found", 404, {"X-A": "b"}), 404, {"Content-Type": "text/html", "X-A": "b"},
     b"Not Found"),
    (["item1", "item2"], 200, {"Content-Type": "application/json"}, b'["item1", "item2"]'),
    (({"error": "Not Found", "code": 404}, 404), 404, {"Content-Type": "application/json"},
     b'{"error": "Not Found", "code": 404}'),
    ((200, {"Content-Type": "application/json"}, '{"status": "ok"}'), 200,
     {"Content-Type": "application/json"}, b'{"status": "ok"}'),
    ((202, "accepted"), 202, {"Content-Type": "text/html"}, b"accepted"),
    (b"\x00\x01", 200, {"Content-Type": "application/octet-stream"}, b"\x00\x01"),
    (None, 500, {}, b'{"error":"Unsupported return type from Python function"}'),
    (12.5, 500, {}, b'{"error":"Unsupported return type from Python function"}'),
])
def test_request_return_conversion(value: Any, status: int, headers: dict[str, str],
                                   body: bytes) -> None:
    a = to_http_answer(value)
    assert (a.status, a.headers, a.body) == (status, headers, body)


def test_request_return_objects_and_generators() -> None:
    class Mock:
        status_code = 202
        headers: ClassVar[dict[str, str]] = {"Content-Type": "text/custom"}

        def __flask_response__(self) -> bool:
            return True

        def get_data(self) -> str:
            return "data"

    a = to_http_answer(Mock())
    assert (a.status, a.headers, a.body) == (202, {"Content-Type": "text/custom"}, b"data")
    a = to_http_answer(f"Line {i}\n" for i in range(1, 3))
    assert (a.status, a.body) == (200, b"Line 1\nLine 2\n")
    with pytest.raises(ResponseConversionError, match="expected a dictionary in header item"):
        to_http_answer(("body", 200, "not headers"))
    assert to_http_answer(("x", 70000)).status == 500


async def test_worker_deaths_cost_only_their_call(tmp_path: Path) -> None:
    svc = Services()
    path = write_plugin(tmp_path, """
        import ctypes, os, time
        def process_request(influxdb3_local, q, h, body, args=None):
            print("stdout noise that must not corrupt frames")
            what = q.get("do")
            if what == "exit":
                os._exit(7)
            if what == "segv":
                ctypes.string_at(0)
            if what == "hang":
                while True:
                    pass
            if what == "alloc":
                hog = []
                while True:
                    hog.append(bytearray(50 * 1024 * 1024))
            if what == "meet":
                # a rendezvous of three calls: it completes only if they run at once
                here = os.environ["PLUGIN_DIR"]
                open(os.path.join(here, "met-" + q["id"]), "w").close()
                deadline = time.monotonic() + 30
                while len([f for f in os.listdir(here) if f.startswith("met-")]) < 3:
                    if time.monotonic() > deadline:
                        return "alone"
                    time.sleep(0.01)
            return "fine"
        """)
    slot = WorkerSlot(lambda: spec_for(tmp_path, file_ref(path), memory_limit=700 * 1024**2),
                      svc)

    async def call(do: str, timeout: float = 10, **query: str) -> tuple[dict[str, Any], bytes]:
        return await slot.call({"kind": "request", "query": {"do": do, **query},
                                "headers": {}}, b"", timeout=timeout)

    assert (await call("ok"))[1] == b"fine"
    with pytest.raises(WorkerDied, match="exited with code 7"):
        await call("exit")
    assert (await call("ok"))[1] == b"fine"
    with pytest.raises(WorkerDied, match="SIGSEGV"):
        await call("segv")
    with pytest.raises(WorkerDied, match="exceeded the time limit of 500ms"):
        await call("hang", timeout=0.5)  # the limit ended the call
    result, _ = await call("alloc")
    assert result["error"] == "MemoryError"
    assert (await call("ok"))[1] == b"fine"
    # concurrent calls share the worker (run_async) and overlap: all three meet
    results = await asyncio.gather(*(call("meet", timeout=60, id=str(i)) for i in range(3)))
    assert [b for _, b in results] == [b"fine"] * 3
    assert slot.replacements == 3
    await slot.close()


async def test_asyncio_run_and_threads_inside_plugins(tmp_path: Path) -> None:
    svc = Services()
    w = await start(tmp_path, """
        import asyncio, threading
        async def work():
            await asyncio.sleep(0.01)
            return "async ok"
        def process_scheduled_call(influxdb3_local, call_time, args=None):
            influxdb3_local.info(asyncio.run(work()))
            t = threading.Thread(target=lambda: influxdb3_local.info("from a thread"))
            t.start(); t.join()
        """, svc)
    result, _ = await w.call({"kind": "schedule", "call_time": 0}, timeout=10)
    assert result["ok"], result
    assert [t for _, t in svc.logs] == ["async ok", "from a thread"]
    await w.close()


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:") and "Z" in line for line in f)
    except FileNotFoundError:
        return True


async def test_processes_a_plugin_started_die_with_its_worker(tmp_path: Path) -> None:
    svc = Services()
    w = await start(tmp_path, """
        import subprocess
        def process_request(influxdb3_local, q, h, body, args=None):
            return str(subprocess.Popen(["sleep", "30"]).pid)
        """, svc)
    _, body = await w.call({"kind": "request", "query": {}, "headers": {}}, b"", timeout=10)
    pid = int(body)
    assert not _gone(pid)
    await w.close()
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _gone(pid)


async def test_start_failures_explain_themselves_and_fall_back(tmp_path: Path) -> None:
    ref = file_ref(write_plugin(tmp_path, "def process_writes(a, b, c):\n    pass\n"))
    w = WorkerProcess(spec_for(tmp_path, ref, memory_limit=20 * 1024**2), Services())
    with pytest.raises(WorkerStartError, match="exited with code 1:\n") as failed:
        await w.start()
    # the tail of the worker's stderr says why (how much of the traceback fits varies)
    assert "memory" in str(failed.value).lower()
    events: list[tuple[str, str]] = []
    broken = spec_for(tmp_path, ref)
    broken.python, broken.fallback_python = str(tmp_path / "no-python"), sys.executable
    slot = WorkerSlot(lambda: broken, Services(), lambda level, text: events.append((level, text)))
    proc = await slot.ensure()
    assert proc.alive and proc.python == sys.executable
    assert events[0][0] == "ERROR" and "cannot start" in events[0][1]
    await slot.close()
