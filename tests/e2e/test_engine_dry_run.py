"""Plugin test runs (`plugin_test/wal` and `/schedule`) over a real database: real
queries, returned writes, validation errors from the real parser and catalog, the test
cache, and the reference's answers."""

from __future__ import annotations

import shutil
import textwrap
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from conftest import ROOT
from support.inprocess import (
    make_config,
    now_lines,
    open_database,
    running_engine,
)
from weir.database import Database
from weir.engine import ProcessingEngine
from weir.errors import PluginError

pytestmark = pytest.mark.anyio
EXAMPLES = ROOT / "plugins" / "examples"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(make_config(tmp_path)) as db:
        await db.write_lp("foo", now_lines("cpu,host=s1,region=us-west usage=0.5"))
        yield db


@pytest.fixture
async def engine(db: Database) -> AsyncIterator[ProcessingEngine]:
    async with running_engine(db) as eng:
        yield eng


def plugin(engine: ProcessingEngine, name: str, code: str) -> str:
    (engine.files.plugin_dir / name).write_text(textwrap.dedent(code))
    return name


WAL_TEST_PLUGIN = """
def process_writes(influxdb3_local, table_batches, args=None):
    influxdb3_local.info("arg1: " + args["arg1"])
    for table_batch in table_batches:
        influxdb3_local.info("table: " + table_batch["table_name"])
        for row in table_batch["rows"]:
            influxdb3_local.info("row: " + str(row))
    line = LineBuilder("some_table")\\
        .tag("tag1", "tag1_value")\\
        .tag("tag2", "tag2_value")\\
        .int64_field("field1", 1)\\
        .float64_field("field2", 2.0)\\
        .string_field("field3", "number three")
    influxdb3_local.write(line)
    other_line = LineBuilder("other_table")
    other_line.int64_field("other_field", 1)
    other_line.float64_field("other_field2", 3.14)
    other_line.time_ns(1302)
    influxdb3_local.write_to_db("mytestdb", other_line)
    influxdb3_local.write_sync(LineBuilder("sync_first").int64_field("v", 1), no_sync=False)
    influxdb3_local.info("done")
"""


async def test_wal_test_run(engine: ProcessingEngine, db: Database) -> None:
    f = plugin(engine, "test.py", WAL_TEST_PLUGIN)
    out = await engine.dry_runner.wal(
        f, "_testdb", "cpu,host=A,region=west usage=1i,system=23.2 100\nmem,host=B user=43.1 120",
        {"arg1": "val1"})
    assert out["errors"] == []
    assert out["log_lines"][0] == "INFO: starting execution of wal plugin."
    assert out["log_lines"][-1].startswith("INFO: finished execution in ")
    assert out["log_lines"][1:-1] == [
        "INFO: arg1: val1", "INFO: table: cpu",
        "INFO: row: {'host': 'A', 'region': 'west', 'usage': 1, 'system': 23.2, 'time': 100}",
        "INFO: table: mem", "INFO: row: {'host': 'B', 'user': 43.1, 'time': 120}",
        "INFO: done"]
    assert out["database_writes"] == {
        "_testdb": ["sync_first v=1i",
                    'some_table,tag1=tag1_value,tag2=tag2_value field1=1i,field2=2.0,'
                    'field3="number three"'],
        "mytestdb": ["other_table other_field=1i,other_field2=3.14 1302"]}
    # nothing was written: neither database exists, and foo has only its own table
    assert not db.catalog.db_exists("_testdb")
    assert not db.catalog.db_exists("mytestdb")
    assert list(db.catalog.db("foo").tables) == ["cpu"]
    assert engine.logs.entries() == []  # test runs stay out of the trigger logs


async def test_invalid_lines_are_reported_not_written(engine: ProcessingEngine) -> None:
    f = plugin(engine, "bad.py", """
        def process_writes(influxdb3_local, table_batches, args=None):
            influxdb3_local.write_to_db("foodb", LineBuilder("cpu").tag("host", "A")
                .int64_field("f1", 10).uint64_field("f2", 20).bool_field("f3", True))
            influxdb3_local.write_to_db("foodb", LineBuilder("cpu").tag("host", "A")
                .string_field("f1", "not_an_int"))
            influxdb3_local.write_to_db("foo", LineBuilder("cpu").tag("host", "A B")
                .float64_field("usage", 1.5))
            influxdb3_local.write_to_db("foo", LineBuilder("cpu").string_field("usage", "x"))
        """)
    # foo.cpu.usage is a float (the fixture wrote it)
    out = await engine.dry_runner.wal(f, "_testdb", "mem,host=B user=43.1 120")
    assert out["database_writes"]["foodb"] == ["cpu,host=A f1=10i,f2=20u,f3=t",
                                               'cpu,host=A f1="not_an_int"']
    # an escaped tag value is valid line protocol; the type conflict on the later line is not
    assert out["database_writes"]["foo"] == ["cpu,host=A\\ B usage=1.5", 'cpu usage="x"']
    # Weir's own validation (the real parser and catalog), in the reference's Debug form
    assert out["errors"] == [
        'WriteLineError { original_line: "cpu,host=A f1=\\"not_an_int\\"", line_number: 2, '
        "error_message: \"invalid field value in line protocol for field 'f1': expected type "
        'integer, but got string" }',
        'WriteLineError { original_line: "cpu usage=\\"x\\"", line_number: 2, '
        "error_message: \"invalid field value in line protocol for field 'usage': expected "
        'type float, but got string" }']


async def test_failures_and_parse_errors(engine: ProcessingEngine) -> None:
    f = plugin(engine, "raise.py", """
        def process_writes(influxdb3_local, table_batches, args=None):
            influxdb3_local.info("dropped")
            influxdb3_local.query("SELECT foo FROM not_here", database="foo")
        """)
    out = await engine.dry_runner.wal(f, "foo", "cpu v=1i 1")
    assert out == {"log_lines": [], "database_writes": {}, "errors": [
        "error executing plugin: QueryError: error: error while planning query: Error during "
        "planning: table 'public.iox.not_here' not found executing query on foo: "
        "SELECT foo FROM not_here"]}
    out = await engine.dry_runner.wal(f, "foo", "not line protocol")
    assert out["errors"] == [
        # (the reference's parser: a field set that does not parse is "No fields")
        "error parsing input line protocol: line 1: No fields were provided"]
    with pytest.raises(PluginError, match="Plugin not found"):
        await engine.dry_runner.wal("missing.py", "foo", "cpu v=1i 1")
    f = plugin(engine, "indent.py", "x = 1\n  y = 2\n")
    out = await engine.dry_runner.wal(f, "foo", "cpu v=1i 1")
    assert out["errors"] == [
        "error executing plugin: IndentationError: unexpected indent (<string>, line 2)"]


async def test_cache_persists_across_test_runs_by_name(engine: ProcessingEngine) -> None:
    f = plugin(engine, "counter.py", """
        def process_writes(influxdb3_local, table_batches, args=None):
            n = influxdb3_local.cache.get("n", default=0) + len(table_batches[0]["rows"])
            influxdb3_local.cache.put("n", n)
            g = influxdb3_local.cache.get("g", default=0, use_global=True) + 1
            influxdb3_local.cache.put("g", g, use_global=True)
            influxdb3_local.info(n, g, type(influxdb3_local.cache.get("n")).__name__)
        """)
    runs = [await engine.dry_runner.wal(f, "foo", "cpu v=1i 1\ncpu v=2i 2\ncpu v=3i 3"),
            await engine.dry_runner.wal(f, "foo", "cpu v=1i 1\ncpu v=2i 2"),
            await engine.dry_runner.wal(f, "foo", "cpu v=1i 1", cache_name="other")]
    assert [r["log_lines"][1] for r in runs] == ["INFO: 3 1 int", "INFO: 5 2 int",
                                                 "INFO: 1 1 int"]


async def test_schedule_test_run(engine: ProcessingEngine, db: Database) -> None:
    await db.write_lp("foo", now_lines("cpu,host=s2,region=us-east usage=0.89"))
    f = plugin(engine, "sched.py", """
        from datetime import datetime
        def process_scheduled_call(influxdb3_local, call_time, args=None):
            influxdb3_local.info(f"args are {args}")
            influxdb3_local.info(datetime.now().strftime("%Y"))
            influxdb3_local.info(influxdb3_local.query(
                "SELECT host, region, usage FROM cpu WHERE host = $host", {"host": "s2"}))
        """)
    out = await engine.dry_runner.schedule(f, "foo", None, {"region": "us-east"})
    assert out["errors"] == []
    assert "T" in out["trigger_time"] and out["trigger_time"].endswith("Z")
    assert out["log_lines"][1] == "INFO: args are {'region': 'us-east'}"
    assert out["log_lines"][3] == "INFO: [{'host': 's2', 'region': 'us-east', 'usage': 0.89}]"
    out = await engine.dry_runner.schedule(f, "nope", None)
    assert out["errors"] == ["couldn't find db"]
    out = await engine.dry_runner.schedule(f, "foo", "every:10s")
    assert out["trigger_time"].endswith("0Z")
    out = await engine.dry_runner.schedule(f, "foo", "* * * * *")
    assert "6 or 7 fields" in out["errors"][0]


async def test_example_plugins_run(engine: ProcessingEngine, db: Database) -> None:
    shutil.copytree(EXAMPLES, engine.files.plugin_dir / "examples")
    out = await engine.dry_runner.wal("examples/wal_plugin/wal_plugin.py", "foo",
                                      "test_input,tag=x field=1i 1")
    assert out["log_lines"][1] == "INFO: wal_plugin.py done"
    assert out["database_writes"] == {"foo": ["write_reports,table_name=test_input row_count=1i"]}

    out = await engine.dry_runner.schedule(
        "examples/schedule/system_metrics/system_metrics.py", "foo", "every:1s",
        {"hostname": "h1"})
    assert out["errors"] == []
    (line,) = out["database_writes"]["foo"]
    assert line.startswith("system_metrics,host=h1 ") and "cpu_count=" in line
    fired = datetime.fromisoformat(out["trigger_time"])
    assert line.endswith(f" {int(fired.timestamp()) * 10**9}")  # the scheduled time

    # the deadman sees no `quiet` row in the last 30 seconds: only one written an hour ago
    await db.write_lp("foo", f"quiet,host=old v=1 {time.time_ns() - 3600 * 10**9}")
    out = await engine.dry_runner.schedule(
        "examples/schedule/deadman_check/deadman_check.py", "foo", None,
        {"table": "quiet", "window": "30 seconds"})
    assert "ERROR: no data in quiet in the last 30 seconds" in out["log_lines"]
    assert out["database_writes"]["foo"][0].startswith("deadman_alerts,table=quiet ")
    out = await engine.dry_runner.schedule(  # cpu has a row from now (the fixture's)
        "examples/schedule/deadman_check/deadman_check.py", "foo", None,
        {"table": "cpu", "window": "30 seconds"})
    assert out["errors"] == [] and "database_writes" in out
    assert not any(ln.startswith("ERROR") for ln in out["log_lines"]), out["log_lines"]

    f = plugin(engine, "call_hello.py", """
        import importlib.util, os
        def process_scheduled_call(influxdb3_local, call_time, args=None):
            path = os.path.join(os.environ["PLUGIN_DIR"], "examples/request/hello_world/hello_world.py")
            spec = importlib.util.spec_from_file_location("hello_world", path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            influxdb3_local.info(mod.process_request(influxdb3_local, {"source": "s"}, {},
                                                     b'{"temperature": 21.5, "ok": true}'))
        """)
    out = await engine.dry_runner.schedule(f, "foo", None)
    assert out["database_writes"] == {"foo": ["request_data,source=s temperature=21.5,ok=t"]}
    assert out["log_lines"][-2] == ("INFO: (200, {'Content-Type': 'application/json'}, "
                                    "'{\"status\": \"ok\", \"line\": \"request_data,source=s "
                                    "temperature=21.5,ok=t\"}')")
