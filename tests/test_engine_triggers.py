"""The processing engine over a fake database: trigger lifecycle, WAL / schedule /
request / Parquet runners, error behaviours, system tables, restarts."""

from __future__ import annotations

import shutil
import textwrap
import threading
from collections.abc import AsyncIterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from test_engine_fakes import FakeDatabase, batch, fast_options, make_config, wait_for
from weir.engine import ProcessingEngine
from weir.engine.specs import InvalidTriggerSpec
from weir.errors import (
    AlreadyExists,
    DatabaseNotFound,
    InvalidRequest,
    NotFound,
    PluginError,
    TriggerRunning,
)

pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).resolve().parent.parent / "plugins" / "examples"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[ProcessingEngine]:
    db = FakeDatabase()
    db.catalog.create_database("foo")
    eng = ProcessingEngine(db, make_config(tmp_path), fast_options())
    await eng.start()
    yield eng
    await eng.stop()


def plugin(engine: ProcessingEngine, name: str, code: str) -> str:
    path = engine.files.plugin_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))
    return name


def logs(engine: ProcessingEngine, trigger: str, level: str | None = None) -> list[str]:
    return [e.log_text for e in engine.logs.entries(trigger)
            if level is None or e.log_level == level]


async def create(engine: ProcessingEngine, name: str, filename: str, spec: str,
                 **kw: Any) -> None:
    await engine.create_trigger(database=kw.pop("database", "foo"), trigger_name=name,
                                plugin_filename=filename, trigger_specification=spec, **kw)


async def test_wal_plugin_example_writes_reports(engine: ProcessingEngine) -> None:
    dest = engine.files.plugin_dir / "examples" / "wal_plugin"
    shutil.copytree(EXAMPLES / "wal_plugin", dest)
    await create(engine, "reports", "examples/wal_plugin/wal_plugin.py", "all_tables",
                 trigger_arguments={"double_count_table": "cpu"})
    db = engine.database
    await db.flush({"foo": batch("cpu,host=a usage=1 1\ncpu,host=b usage=2 2\nmem,host=a u=3 3"),
                    "other": batch("cpu,host=a usage=1 1")})
    lines = await wait_for(lambda: db.lines_for("foo"))
    assert sorted(lines) == ["write_reports,table_name=cpu row_count=4i",
                             "write_reports,table_name=mem row_count=1i"]
    assert db.written[0][2] == {"precision": "ns", "accept_partial": False, "no_sync": False}
    # its own output arrives in a later flush and is skipped
    await db.flush({"foo": batch("write_reports,table_name=cpu row_count=4i 5")})
    await wait_for(lambda: logs(engine, "reports").count("wal_plugin.py done") == 2)
    assert len(db.lines_for("foo")) == 2
    text = logs(engine, "reports")
    assert text[0] == "starting execution of wal plugin."
    assert text[2].startswith("finished execution in ")


async def test_table_trigger_gets_only_its_table_and_empty_flushes(
        engine: ProcessingEngine) -> None:
    f = plugin(engine, "seen.py", """
        def process_writes(influxdb3_local, table_batches, args=None):
            influxdb3_local.info([(b["table_name"], [r["v"] for r in b["rows"]])
                                  for b in table_batches])
        """)
    await create(engine, "cpu_only", f, "table:cpu")
    for i in range(5):
        await engine.database.flush({"foo": batch(f"cpu v={i}i {i}\nmem v=9i {i}")})
    await engine.database.flush({"foo": batch("mem v=1i 1")})
    await engine.database.flush({"bar": batch("cpu v=1i 1")})
    expected = [str([("cpu", [i])]) for i in range(5)] + ["[]"]
    await wait_for(lambda: logs(engine, "cpu_only", "INFO")[1::3] == expected)
    await engine.disable_trigger("foo", "cpu_only")
    assert logs(engine, "cpu_only", "INFO")[1::3] == expected  # in order, once each


async def test_error_behaviors(engine: ProcessingEngine) -> None:
    f = plugin(engine, "flaky.py", """
        def process_writes(influxdb3_local, table_batches, args=None):
            n = influxdb3_local.cache.get("n", default=0) + 1
            influxdb3_local.cache.put("n", n)
            influxdb3_local.write(LineBuilder("attempt").int64_field("n", n))
            if n <= int(args["fail_times"]):
                raise ValueError(f"failure {n}")
            influxdb3_local.info("succeeded on attempt", n)
        """)
    await create(engine, "logger", f, "all_tables", trigger_arguments={"fail_times": "1"})
    await create(engine, "retrier", f, "all_tables", error_behavior="retry",
                 trigger_arguments={"fail_times": "2"})
    await create(engine, "giver_upper", f, "all_tables", error_behavior="retry",
                 trigger_arguments={"fail_times": "99"})
    await create(engine, "disabler", f, "all_tables", error_behavior="disable",
                 trigger_arguments={"fail_times": "1"})
    db = engine.database
    await db.flush({"foo": batch("cpu v=1i 1")})
    await db.flush({"foo": batch("cpu v=2i 2")})

    await wait_for(lambda: "succeeded on attempt 2" in logs(engine, "logger"))
    err = logs(engine, "logger", "ERROR")
    assert err[0].startswith("error executing wal plugin: ValueError: failure 1\nTraceback")
    assert 'raise ValueError(f"failure {n}")' in err[0]

    await wait_for(lambda: "succeeded on attempt 3" in logs(engine, "retrier"))
    err = logs(engine, "retrier", "ERROR")
    assert err[0].startswith("error executing wal plugin: ValueError: failure 1; will retry "
                             "in 50ms (attempt 1 of 3)")
    assert err[1].startswith("error executing wal plugin: ValueError: failure 2; will retry "
                             "in 100ms (attempt 2 of 3)")

    await wait_for(lambda: logs(engine, "giver_upper", "ERROR").count(
        "giving up on this event after 3 attempts") == 2, timeout=15)

    await wait_for(lambda: not engine.running("foo", "disabler"))
    assert engine.database.catalog.get_trigger("foo", "disabler").disabled
    assert any("disabled because of an error (error_behavior=disable): ValueError: failure 1"
               in t for t in logs(engine, "disabler", "ERROR"))
    # only successful calls' buffered writes were committed: the logger's second call,
    # the retrier's third attempt and its next event; the disabler handled nothing more
    await wait_for(lambda: sorted(db.lines_for("foo")) == [
        "attempt n=2i", "attempt n=3i", "attempt n=4i"])
    assert logs(engine, "disabler").count("starting execution of wal plugin.") == 1


async def test_schedules_never_overlap_unless_async(engine: ProcessingEngine) -> None:
    f = plugin(engine, "slow.py", """
        import time
        def process_scheduled_call(influxdb3_local, call_time, args=None):
            running = influxdb3_local.cache.get("running", default=0)
            influxdb3_local.cache.put("running", running + 1)
            if running:
                influxdb3_local.warn("OVERLAP")
            time.sleep(0.25)
            influxdb3_local.cache.put("running", influxdb3_local.cache.get("running") - 1)
            influxdb3_local.info("call_time", call_time.isoformat(), call_time.tzinfo)
        """)
    await create(engine, "sync_sched", f, "every:100ms")
    await create(engine, "async_sched", f, "every:100ms", run_async=True)
    await wait_for(lambda: len([t for t in logs(engine, "sync_sched")
                                if t.startswith("call_time")]) >= 3, timeout=10)
    await wait_for(lambda: "OVERLAP" in logs(engine, "async_sched"), timeout=10)
    await engine.disable_trigger("foo", "sync_sched")
    await engine.disable_trigger("foo", "async_sched")
    assert "OVERLAP" not in logs(engine, "sync_sched")
    starts = [t for t in logs(engine, "sync_sched") if t.startswith("starting execution")]
    assert starts[0].startswith("starting execution with scheduled time ")
    assert starts[0].endswith(" UTC")
    assert [t for t in logs(engine, "sync_sched") if t.startswith("call_time")][0].endswith(
        " None")


async def test_request_trigger(engine: ProcessingEngine) -> None:
    f = plugin(engine, "req.py", """
        import json, os
        def process_request(influxdb3_local, query_parameters, request_headers, request_body,
                            args=None):
            if query_parameters.get("fail"):
                raise RuntimeError("asked to fail")
            influxdb3_local.write(LineBuilder("request_data").tag("t", "v").int64_field("f", 1))
            return {"q": query_parameters, "h": request_headers,
                    "body": json.loads(request_body), "args": args,
                    "env": [os.environ.get(k) is not None for k in
                            ("PLUGIN_DIR", "INFLUXDB3_PLUGIN_DIR", "VIRTUAL_ENV")],
                    "tz": os.environ.get("TZ")}
        """)
    await create(engine, "req", f, "request:custom/path", trigger_arguments={"a": "b"})
    reply = await engine.handle_request("custom/path", {"x": "1"}, {"h": "v"}, b'{"k": 2}')
    assert reply.status == 200 and reply.headers == {"Content-Type": "application/json"}
    import json
    assert json.loads(reply.body) == {"q": {"x": "1"}, "h": {"h": "v"}, "body": {"k": 2},
                                      "args": {"a": "b"}, "env": [True, True, True],
                                      "tz": "UTC"}
    assert engine.database.lines_for("foo") == ["request_data,t=v f=1i"]  # before the reply
    reply = await engine.handle_request("custom/path", {"fail": "1"}, {}, b"")
    assert (reply.status, reply.body) == (
        500, b'{"error":"Python function call failed: RuntimeError: asked to fail"}')
    assert logs(engine, "req", "ERROR")[0].startswith(
        "error running request plugin: RuntimeError: asked to fail\nTraceback")
    reply = await engine.handle_request("nope", {}, {}, b"")
    assert (reply.status, reply.body) == (404, b'{error: "not found"}')
    # a path is served by one trigger only
    with pytest.raises(Exception, match="request path 'custom/path' is already used"):
        await create(engine, "req2", f, "request:custom/path")
    await engine.disable_trigger("foo", "req")
    assert (await engine.handle_request("custom/path", {}, {}, b"")).status == 404


async def test_lifecycle_and_validation(engine: ProcessingEngine, tmp_path: Path) -> None:
    f = plugin(engine, "sched.py", """
        def process_scheduled_call(influxdb3_local, call_time, args=None):
            pass
        """)
    await create(engine, "t1", f, "every:1h", disabled=True)
    assert not engine.running("foo", "t1")
    await engine.enable_trigger("foo", "t1")
    await engine.enable_trigger("foo", "t1")  # already enabled: fine
    assert engine.running("foo", "t1")
    with pytest.raises(TriggerRunning, match="Cannot delete running plugin t1"):
        await engine.delete_trigger("foo", "t1")
    await engine.disable_trigger("foo", "t1")
    await engine.disable_trigger("foo", "t1")
    assert not engine.running("foo", "t1")
    await engine.enable_trigger("foo", "t1")
    await engine.delete_trigger("foo", "t1", force=True)
    assert not engine.running("foo", "t1")
    with pytest.raises(NotFound):
        await engine.enable_trigger("foo", "t1")

    with pytest.raises(PluginError, match="the process_writes function is not present in the "
                                          "plugin.*it defines process_scheduled_call"):
        await create(engine, "t2", f, "table:cpu")
    with pytest.raises(PluginError, match="reading plugin file: Plugin not found: "):
        await create(engine, "t2", "missing.py", "table:cpu")
    for bad in ("../evil.py", "/etc/passwd", "sub/../../evil.py"):
        with pytest.raises(PluginError, match="Path traversal detected: plugin filename"):
            await create(engine, "t2", bad, "table:cpu")
    (engine.files.plugin_dir / "escape.py").symlink_to(tmp_path / "outside.py")
    with pytest.raises(PluginError, match="Path traversal detected"):
        await create(engine, "t2", "escape.py", "table:cpu")
    (engine.files.plugin_dir / "nodir").mkdir()
    with pytest.raises(PluginError, match="must contain __init__.py"):
        await create(engine, "t2", "nodir", "table:cpu")
    with pytest.raises(DatabaseNotFound):
        await create(engine, "t2", f, "every:1h", database="nope")
    with pytest.raises(DatabaseNotFound):
        await create(engine, "t2", f, "every:1h", database="_internal")
    with pytest.raises(InvalidTriggerSpec, match="failed to parse trigger from every:nope"):
        await create(engine, "t2", f, "every:nope")
    await create(engine, "t2", f, "every:1h")
    with pytest.raises(AlreadyExists):
        await create(engine, "t2", f, "every:1h")
    engine.config.restrict_plugin_triggers_to = ["schedule"]
    with pytest.raises(InvalidRequest, match="server is configured to reject WalRows plugin"):
        await create(engine, "t3", f, "all_tables")


async def test_system_tables_and_restart(engine: ProcessingEngine) -> None:
    f = plugin(engine, "sched.py", """
        def process_scheduled_call(influxdb3_local, call_time, args=None):
            influxdb3_local.info("tick")
        """)
    pkg = engine.files.plugin_dir / "pkg"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .models.m import process_scheduled_call\n")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "models" / "m.py").write_text(
        "def process_scheduled_call(local, t, args=None):\n    local.info('pkg tick')\n")
    await create(engine, "t1", f, "every:50ms", trigger_arguments={"k1": "v1", "k2": "v2"})
    await create(engine, "t2", "pkg", "cron:* * * * * *", error_behavior="retry", disabled=True)
    db = engine.database
    rows = db.system_table("foo", "processing_engine_triggers").to_pylist()
    assert rows == [
        {"trigger_name": "t1", "plugin_filename": "sched.py",
         "trigger_specification": '{"every":{"duration":{"secs":0,"nanos":50000000}}}',
         "disabled": False, "error_behavior": "log", "public": False},
        {"trigger_name": "t2", "plugin_filename": "pkg",
         "trigger_specification": '{"schedule":{"schedule":"* * * * * *"}}',
         "disabled": True, "error_behavior": "retry", "public": False}]
    assert db.system_table("foo", "processing_engine_trigger_arguments").to_pylist() == [
        {"trigger_name": "t1", "argument_key": "k1", "argument_value": "v1"},
        {"trigger_name": "t1", "argument_key": "k2", "argument_value": "v2"}]
    assert db.system_table("_internal", "processing_engine_triggers").num_rows == 0
    files = db.system_table("_internal", "plugin_files").to_pylist()
    assert [(r["plugin_name"], r["file_name"]) for r in files] == [
        ("t1", "sched.py"), ("t2", "__init__.py"), ("t2", "models/__init__.py"),
        ("t2", "models/m.py")]
    assert files[0]["file_path"] == str(engine.files.plugin_dir / "sched.py")
    assert "plugin_files" not in db.providers[0]("foo")
    await wait_for(lambda: "tick" in logs(engine, "t1"))
    log_table = db.system_table("foo", "processing_engine_logs")
    assert log_table.schema.names == ["event_time", "trigger_name", "log_level", "log_text"]
    assert str(log_table.schema.field("event_time").type) == "timestamp[ns]"
    await engine.enable_trigger("foo", "t2")
    await wait_for(lambda: "pkg tick" in logs(engine, "t2"), timeout=5)
    await engine.stop()

    # a new engine over the same catalog starts the enabled triggers
    again = ProcessingEngine(db, engine.config, fast_options())
    await again.start()
    try:
        assert again.running("foo", "t1") and again.running("foo", "t2")
        await wait_for(lambda: "tick" in logs(again, "t1"))
    finally:
        await again.stop()


async def test_parquet_trigger_and_write_back_errors(engine: ProcessingEngine) -> None:
    f = plugin(engine, "pq.py", """
        def process_parquet_persist(influxdb3_local, persisted_files, args=None):
            influxdb3_local.info([(p["table_name"], p["row_count"]) for p in persisted_files])
            influxdb3_local.write_to_db("newdb", LineBuilder("seen").int64_field("n", 1))
            influxdb3_local.write_to_db("bad db", LineBuilder("x").int64_field("n", 1))
        """)
    await create(engine, "pq_all", f, "parquet:all_tables")
    await create(engine, "pq_cpu", f, "parquet:cpu")
    common = {"path": "p", "size_bytes": 10, "min_time": 1, "max_time": 2}
    await engine.database.persist([
        {"database": "foo", "table": "cpu", "row_count": 3, **common},
        {"database": "foo", "table": "mem", "row_count": 4, **common},
        {"database": "bar", "table": "cpu", "row_count": 5, **common}])
    await wait_for(lambda: "[('cpu', 3), ('mem', 4)]" in logs(engine, "pq_all"))
    await wait_for(lambda: "[('cpu', 3)]" in logs(engine, "pq_cpu"))
    await wait_for(lambda: logs(engine, "pq_cpu", "ERROR"))
    assert engine.database.catalog.db_exists("newdb")  # a write to a missing db creates it
    assert logs(engine, "pq_cpu", "ERROR")[0].startswith(
        "error running parquet plugin: error writing back lines to bad db: ")


async def test_gh_plugins(engine: ProcessingEngine, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "examples" / "wal_plugin").mkdir(parents=True)
    shutil.copy(EXAMPLES / "wal_plugin" / "wal_plugin.py", repo / "examples" / "wal_plugin")
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 partial(SimpleHTTPRequestHandler, directory=str(repo)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        engine.files.plugin_repo = f"http://127.0.0.1:{server.server_address[1]}"
        await create(engine, "gh", "gh:examples/wal_plugin/wal_plugin.py", "all_tables")
        with pytest.raises(PluginError, match="error fetching plugin from repository: 404 "
                                              "Not Found http://127.0.0.1:.*/not_a_file.py"):
            await create(engine, "gh2", "gh:not_a_file.py", "all_tables")
        await engine.database.flush({"foo": batch("test_input,tag=x field=1i 1")})
        await wait_for(lambda: engine.database.lines_for("foo") == [
            "write_reports,table_name=test_input row_count=1i"])
        assert engine.database.system_table("_internal", "plugin_files").num_rows == 0
    finally:
        server.shutdown()


async def test_deleted_database_stops_its_triggers(engine: ProcessingEngine) -> None:
    f = plugin(engine, "sched.py", """
        def process_scheduled_call(influxdb3_local, call_time, args=None):
            pass
        """)
    await create(engine, "t1", f, "every:1h")
    engine.database.catalog.delete_database("foo")
    await engine.database_deleted("foo")
    assert not engine.running("foo", "t1")


async def test_a_crashing_plugin_costs_only_its_call(engine: ProcessingEngine) -> None:
    f = plugin(engine, "crashy.py", """
        import ctypes
        def process_writes(influxdb3_local, table_batches, args=None):
            if table_batches[0]["rows"][0]["v"] == 1:
                ctypes.string_at(0)
            influxdb3_local.write(LineBuilder("ok").int64_field("v", 1))
        """)
    g = plugin(engine, "steady.py", """
        def process_writes(influxdb3_local, table_batches, args=None):
            influxdb3_local.cache.put("n", influxdb3_local.cache.get("n", default=0) + 1)
            influxdb3_local.info("calls", influxdb3_local.cache.get("n"))
        """)
    await create(engine, "crashy", f, "table:cpu")
    await create(engine, "steady", g, "table:cpu")
    for v in (1, 2):
        await engine.database.flush({"foo": batch(f"cpu v={v}i {v}")})
    await wait_for(lambda: engine.database.lines_for("foo") == ["ok v=1i"])
    errors = logs(engine, "crashy", "ERROR")
    assert errors[0].startswith("error executing wal plugin: the plugin worker killed by "
                                "signal 11 (SIGSEGV)")
    assert any(t.startswith("starting a new plugin worker; the previous one stopped: the "
                            "plugin worker killed by signal 11") for t in logs(engine, "crashy"))
    await wait_for(lambda: "calls 2" in logs(engine, "steady"))  # its cache survived


async def test_gh_names_stay_inside_the_plugin_repository(engine: ProcessingEngine) -> None:
    """A gh: name is refused before anything is fetched unless it is a plain path."""
    engine.files.plugin_repo = "http://127.0.0.1:9/plugins/"  # nothing listens there
    for bad in ("gh:../other/x.py", "gh:a/../../x.py", "gh://evil.example/x.py",
                "gh:x.py?y=1", "gh:x.py#frag", "gh:%2e%2e/x.py", "gh:a\\..\\x.py", "gh:",
                "gh:.hidden/x.py", "gh:a//b.py", "gh:a/ b.py"):
        with pytest.raises(PluginError, match="invalid plugin name"):
            await create(engine, "t9", bad, "table:cpu")
    with pytest.raises(PluginError, match="error fetching plugin from repository"):
        await create(engine, "t9", "gh:influxdata/basic-transform/v1.2_x.py", "table:cpu")
