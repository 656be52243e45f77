"""The processing engine over a real database (memory object store): trigger lifecycle,
WAL / schedule / request / Parquet runners fed by real WAL flushes and snapshots, error
behaviours, system tables, restarts."""

from __future__ import annotations

import json
import shutil
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT
from support.inprocess import (
    WriteLog,
    make_config,
    open_database,
    query_rows,
    record_writes,
    running_engine,
    wait_for,
    write,
)
from weir.database import Database
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
EXAMPLES = ROOT / "plugins" / "examples"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(make_config(tmp_path)) as db:
        await write(db, "foo", "setup v=1i")  # creates foo, before the engine listens
        record_writes(db)
        yield db


@pytest.fixture
async def engine(db: Database) -> AsyncIterator[ProcessingEngine]:
    async with running_engine(db) as eng:
        yield eng


def written(db: Database) -> WriteLog:
    """The plugins' write-backs to the real database (see support.inprocess.record_writes)."""
    return db.write_lp.log  # type: ignore[attr-defined,no-any-return]


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


async def test_wal_plugin_example_writes_reports(engine: ProcessingEngine, db: Database) -> None:
    dest = engine.files.plugin_dir / "examples" / "wal_plugin"
    shutil.copytree(EXAMPLES / "wal_plugin", dest)
    await create(engine, "reports", "examples/wal_plugin/wal_plugin.py", "all_tables",
                 trigger_arguments={"double_count_table": "cpu"})
    await write(db, "foo", "cpu,host=a usage=1\ncpu,host=b usage=2\nmem,host=a u=3")
    await write(db, "other", "cpu,host=a usage=1")
    lines = await wait_for(lambda: written(db).lines_for("foo"))
    assert sorted(lines) == ["write_reports,table_name=cpu row_count=4i",
                             "write_reports,table_name=mem row_count=1i"]
    # stored with the trigger's checkpoint: the last WAL file of its first call (3, or 4
    # when the flush of `other` below came before the call started)
    assert written(db).calls[0][2]["trigger"] == ("foo", "reports")
    assert written(db).calls[0][2]["checkpoint"] in (3, 4)
    # its own output (its write-back, and ours here) arrives in later flushes and is
    # skipped; the report of a sentinel written after them shows they were handled
    await write(db, "foo", "write_reports,table_name=cpu row_count=4i")
    await write(db, "foo", "sentinel v=1i")
    await wait_for(lambda: "write_reports,table_name=sentinel row_count=1i"
                   in written(db).lines_for("foo"))
    assert sorted(written(db).lines_for("foo")) == [
        "write_reports,table_name=cpu row_count=4i", "write_reports,table_name=mem row_count=1i",
        "write_reports,table_name=sentinel row_count=1i"]
    assert await query_rows(db, "foo", "SELECT table_name, row_count FROM write_reports "
                                       "ORDER BY table_name, row_count") == [
        {"table_name": "cpu", "row_count": 4}, {"table_name": "cpu", "row_count": 4},
        {"table_name": "mem", "row_count": 1}, {"table_name": "sentinel", "row_count": 1}]
    text = logs(engine, "reports")
    assert text[0] == "starting execution of wal plugin."
    assert text[2].startswith("finished execution in ")


async def test_table_trigger_gets_only_its_table(
        engine: ProcessingEngine, db: Database) -> None:
    f = plugin(engine, "seen.py", """
        def process_writes(influxdb3_local, table_batches, args=None):
            influxdb3_local.info([(b["table_name"], [r["v"] for r in b["rows"]])
                                  for b in table_batches])
        """)
    engine.options.wal_merge_files = 1  # one call per flush, whatever the timing
    await create(engine, "cpu_only", f, "table:cpu")
    for i in range(5):
        await write(db, "foo", f"cpu v={i}i\nmem v=9i")
    await write(db, "foo", "mem v=1i")  # another table: no call (the reference calls with [])
    await write(db, "bar", "cpu v=1i")  # another database: not this trigger's
    await write(db, "foo", "cpu v=5i")  # comes after those flushes: its signal
    expected = [str([("cpu", [i])]) for i in range(6)]
    await wait_for(lambda: logs(engine, "cpu_only", "INFO")[1::3] == expected)
    await engine.disable_trigger("foo", "cpu_only")
    assert logs(engine, "cpu_only", "INFO")[1::3] == expected  # in order, once each


async def test_error_behaviors(engine: ProcessingEngine, db: Database) -> None:
    f = plugin(engine, "flaky.py", """
        def process_writes(influxdb3_local, table_batches, args=None):
            if not table_batches:
                return  # a flush of its own write-backs: a table trigger sees every flush
            n = influxdb3_local.cache.get("n", default=0) + 1
            influxdb3_local.cache.put("n", n)
            influxdb3_local.write(LineBuilder("attempt").int64_field("n", n))
            if n <= int(args["fail_times"]):
                raise ValueError(f"failure {n}")
            influxdb3_local.info("succeeded on attempt", n)
        """)
    engine.options.wal_merge_files = 1  # one call per flush, whatever the timing
    # table:cpu, not all_tables: the write-backs to `attempt` must not call them again
    await create(engine, "logger", f, "table:cpu", trigger_arguments={"fail_times": "1"})
    await create(engine, "retrier", f, "table:cpu", error_behavior="retry",
                 trigger_arguments={"fail_times": "2"})
    await create(engine, "giver_upper", f, "table:cpu", error_behavior="retry",
                 trigger_arguments={"fail_times": "99"})
    await create(engine, "disabler", f, "table:cpu", error_behavior="disable",
                 trigger_arguments={"fail_times": "1"})
    await write(db, "foo", "cpu v=1i")
    await write(db, "foo", "cpu v=2i")

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
        "giving up on this event after 3 attempts") == 2)

    await wait_for(lambda: not engine.running("foo", "disabler"))
    assert db.catalog.get_trigger("foo", "disabler").disabled
    assert any("disabled because of an error (error_behavior=disable): ValueError: failure 1"
               in t for t in logs(engine, "disabler", "ERROR"))
    # only successful calls' buffered writes were committed: the logger's second call,
    # the retrier's third attempt and its next event; the disabler handled nothing more
    await wait_for(lambda: sorted(written(db).lines_for("foo")) == [
        "attempt n=2i", "attempt n=3i", "attempt n=4i"])
    assert await query_rows(db, "foo", "SELECT n FROM attempt ORDER BY n") == [
        {"n": 2}, {"n": 3}, {"n": 4}]
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
    assert next(t for t in logs(engine, "sync_sched") if t.startswith("call_time")).endswith(
        " None")


async def test_request_trigger(engine: ProcessingEngine, db: Database) -> None:
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
    assert json.loads(reply.body) == {"q": {"x": "1"}, "h": {"h": "v"}, "body": {"k": 2},
                                      "args": {"a": "b"}, "env": [True, True, True],
                                      "tz": "UTC"}
    # committed before the reply
    assert written(db).lines_for("foo") == ["request_data,t=v f=1i"]
    assert await query_rows(db, "foo", "SELECT t, f FROM request_data") == [
        {"t": "v", "f": 1}]
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

    with pytest.raises(PluginError, match=r"the process_writes function is not present in the "
                                          r"plugin.*it defines process_scheduled_call"):
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
    with pytest.raises(PluginError, match=r"must contain __init__\.py"):
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


async def test_system_tables_and_restart(engine: ProcessingEngine, db: Database) -> None:
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
    rows = await query_rows(db, "foo", "SELECT * FROM system.processing_engine_triggers "
                                       "ORDER BY trigger_name")
    not_wal = {"wal_checkpoint": None, "wal_lag_files": None, "wal_lag_rows": None,
               "wal_lag_seconds": None, "wal_lagging": None, "wal_skipped_files": None,
               "last_error": None, "node_spec": "all"}
    assert rows == [
        {"trigger_name": "t1", "plugin_filename": "sched.py",
         "trigger_specification": '{"every":{"duration":{"secs":0,"nanos":50000000}}}',
         "disabled": False, "error_behavior": "log", "public": False, "catch_up": False,
         "delivery": "each fire time while the server runs; runs missed while it was down "
                     "are logged; on error: log and skip",
         **not_wal},
        {"trigger_name": "t2", "plugin_filename": "pkg",
         "trigger_specification": '{"schedule":{"schedule":"* * * * * *"}}',
         "disabled": True, "error_behavior": "retry", "public": False, "catch_up": False,
         "delivery": "each fire time while the server runs; runs missed while it was down "
                     "are logged; on error: retry, 3 attempts, "
                     "then skip", **not_wal}]
    assert await query_rows(db, "foo", "SELECT * FROM system.processing_engine_trigger_arguments "
                                       "ORDER BY trigger_name, argument_key") == [
        {"trigger_name": "t1", "argument_key": "k1", "argument_value": "v1"},
        {"trigger_name": "t1", "argument_key": "k2", "argument_value": "v2"}]
    assert await query_rows(db, "_internal", "SELECT * FROM system.processing_engine_triggers"
                            ) == []
    files = await query_rows(db, "_internal", "SELECT * FROM system.plugin_files")
    assert [(r["plugin_name"], r["file_name"]) for r in files] == [
        ("t1", "sched.py"), ("t2", "__init__.py"), ("t2", "models/__init__.py"),
        ("t2", "models/m.py")]
    assert files[0]["file_path"] == str(engine.files.plugin_dir / "sched.py")
    assert "plugin_files" not in engine.system_tables("foo")
    await wait_for(lambda: "tick" in logs(engine, "t1"))
    log_table = await db.query("foo", "SELECT * FROM system.processing_engine_logs")
    assert log_table.schema.names == ["event_time", "trigger_name", "log_level", "log_text"]
    assert str(log_table.schema.field("event_time").type) == "timestamp[ns]"
    await engine.enable_trigger("foo", "t2")
    await wait_for(lambda: "pkg tick" in logs(engine, "t2"))
    await engine.stop()

    # a new engine over the same catalog starts the enabled triggers
    async with running_engine(db) as again:
        assert again.running("foo", "t1") and again.running("foo", "t2")
        await wait_for(lambda: "tick" in logs(again, "t1"))


async def test_parquet_trigger_and_write_back_errors(
        engine: ProcessingEngine, db: Database) -> None:
    f = plugin(engine, "pq.py", """
        def process_parquet_persist(influxdb3_local, persisted_files, args=None):
            influxdb3_local.info(sorted((p["table_name"], p["row_count"])
                                        for p in persisted_files))
            influxdb3_local.write_to_db("newdb", LineBuilder("seen").int64_field("n", 1))
            influxdb3_local.write_to_db("bad db", LineBuilder("x").int64_field("n", 1))
        """)
    await create(engine, "pq_all", f, "parquet:all_tables")
    await create(engine, "pq_cpu", f, "parquet:cpu")
    # one gen1 window (10m by default), so that each table is one file
    window = 600 * 10**9
    t0 = time.time_ns() // window * window
    for database, table, rows in (("foo", "cpu", 3), ("foo", "mem", 4), ("bar", "cpu", 5)):
        await write(db, database, "\n".join(f"{table},host=h{i} v={i}.5 {t0 + i * 1000}"
                                             for i in range(rows)))
    event = await db.snapshot()
    assert event is not None
    assert sorted((f.database, f.table, f.row_count) for f in event.files) == [
        ("bar", "cpu", 5), ("foo", "cpu", 3), ("foo", "mem", 4), ("foo", "setup", 1)]
    await wait_for(lambda: "[('cpu', 3), ('mem', 4), ('setup', 1)]" in logs(engine, "pq_all"))
    await wait_for(lambda: "[('cpu', 3)]" in logs(engine, "pq_cpu"))
    await wait_for(lambda: logs(engine, "pq_cpu", "ERROR"))
    assert db.catalog.db_exists("newdb")  # a write to a missing db creates it
    assert logs(engine, "pq_cpu", "ERROR")[0].startswith(
        "error running parquet plugin: error writing back lines to bad db: ")


async def test_gh_plugins(engine: ProcessingEngine, db: Database, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "examples" / "wal_plugin").mkdir(parents=True)
    shutil.copy(EXAMPLES / "wal_plugin" / "wal_plugin.py", repo / "examples" / "wal_plugin")
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 partial(SimpleHTTPRequestHandler, directory=str(repo)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        engine.files.plugin_repo = f"http://127.0.0.1:{server.server_address[1]}"
        await create(engine, "gh", "gh:examples/wal_plugin/wal_plugin.py", "all_tables")
        with pytest.raises(PluginError, match=r"error fetching plugin from repository: 404 "
                                              r"Not Found http://127\.0\.0\.1:.*/not_a_file\.py"):
            await create(engine, "gh2", "gh:not_a_file.py", "all_tables")
        await write(db, "foo", "test_input,tag=x field=1i")
        await wait_for(lambda: written(db).lines_for("foo") == [
            "write_reports,table_name=test_input row_count=1i"])
        assert await query_rows(db, "_internal", "SELECT * FROM system.plugin_files") == []
    finally:
        server.shutdown()


async def test_deleted_database_stops_its_triggers(engine: ProcessingEngine, db: Database) -> None:
    f = plugin(engine, "sched.py", """
        def process_scheduled_call(influxdb3_local, call_time, args=None):
            pass
        """)
    await create(engine, "t1", f, "every:1h")
    # the engine hears of the delete from storage, as it would from any front end
    await db.delete_database("foo")
    assert not engine.running("foo", "t1")


async def test_a_crashing_plugin_costs_only_its_call(
        engine: ProcessingEngine, db: Database) -> None:
    f = plugin(engine, "crashy.py", """
        import ctypes
        def process_writes(influxdb3_local, table_batches, args=None):
            if not table_batches:
                return  # the flush of its own write-back
            if table_batches[0]["rows"][0]["v"] == 1:
                ctypes.string_at(0)
            influxdb3_local.write(LineBuilder("ok").int64_field("v", 1))
        """)
    g = plugin(engine, "steady.py", """
        def process_writes(influxdb3_local, table_batches, args=None):
            if not table_batches:
                return
            influxdb3_local.cache.put("n", influxdb3_local.cache.get("n", default=0) + 1)
            influxdb3_local.info("calls", influxdb3_local.cache.get("n"))
        """)
    await create(engine, "crashy", f, "table:cpu")
    await create(engine, "steady", g, "table:cpu")
    for v in (1, 2):
        await write(db, "foo", f"cpu v={v}i")
    await wait_for(lambda: written(db).lines_for("foo") == ["ok v=1i"])
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
