"""The processing engine end to end: a real server, real worker processes, the CLI as a
user types it, following the seed documents' walkthroughs."""

from __future__ import annotations

import os
import shutil
import subprocess

import httpx
import pytest

from conftest import ROOT, weir_cmd
from support.cli import cli
from support.cli import poll as wait_for

EXAMPLES = ROOT / "plugins" / "examples"


@pytest.fixture
def engine_server(server_factory, tmp_path):  # type: ignore[no-untyped-def]
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copytree(EXAMPLES, plugins / "examples")
    s = server_factory(plugin_dir=plugins, extra_args=["--wal-flush-interval", "10ms",
                                                       "--plugin-call-timeout", "3s"])
    return s.start()


def _reports(server, db: str) -> dict[str, int]:
    r = server.query(db, "SELECT table_name, row_count FROM write_reports")
    if r.status_code != 200:
        return {}
    out: dict[str, int] = {}
    for row in r.json():
        out[row["table_name"]] = out.get(row["table_name"], 0) + row["row_count"]
    return out


def test_seed_wal_plugin_walkthrough_survives_restart(engine_server):
    s = engine_server
    cli(s, "create", "database", "testdb")
    out = cli(s, "create", "trigger", "--database", "testdb", "--plugin-filename",
              "examples/wal_plugin/wal_plugin.py", "--trigger-spec", "all_tables",
              "write_monitor").stdout
    assert "Trigger write_monitor created successfully" in out
    cli(s, "create", "trigger", "--database", "testdb", "--plugin-filename",
        "examples/wal_plugin/wal_plugin.py", "--trigger-spec", "all_tables",
        "--trigger-arguments", "double_count_table=temperature", "wal_monitoring_special")
    for lp in ("temperature,location=office value=22.5", "humidity,location=office value=45.2",
               "pressure,location=office value=1013.25"):
        cli(s, "write", "--database", "testdb", lp)
    # two triggers: temperature counted 1 + 2, the others 1 + 1; write_reports never reported
    want = {"temperature": 3, "humidity": 2, "pressure": 2}
    assert wait_for(lambda: _reports(s, "testdb") == want), _reports(s, "testdb")
    out = cli(s, "query", "--database", "testdb",
              "SELECT * FROM write_reports ORDER BY time DESC").stdout
    assert "| table_name" in out or "table_name" in out
    logs = cli(s, "query", "--database", "_internal",
               "SELECT * FROM system.processing_engine_logs").stdout
    assert "wal_plugin.py done" in logs and "write_monitor" in logs
    # triggers persist in the catalog and run again after a restart
    s.restart()
    cli(s, "write", "--database", "testdb", "humidity,location=lab value=40")
    want["humidity"] = 4
    assert wait_for(lambda: _reports(s, "testdb") == want), _reports(s, "testdb")


def test_request_trigger_and_seed_tuple_return(engine_server):
    s = engine_server
    (s.plugin_dir / "req.py").write_text(
        "import json\n"
        "def process_request(influxdb3_local, query_parameters, request_headers, "
        "request_body, args=None):\n"
        "    data = json.loads(request_body)\n"
        "    line = LineBuilder('request_data').tag('tag1', 'v').int64_field('field1', data['n'])\n"
        "    influxdb3_local.write(line)\n"
        "    return 200, {'Content-Type': 'application/json'}, "
        "json.dumps({'status': 'ok', 'q': query_parameters.get('x'), 'line': line.build()})\n")
    cli(s, "create", "database", "mydb")
    cli(s, "create", "trigger", "--trigger-spec", "request:hello-world", "--plugin-filename",
        "req.py", "--database", "mydb", "hello-world")
    r = httpx.post(f"{s.url}/api/v3/engine/hello-world", params={"x": "1"}, json={"n": 7},
                   timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"status": "ok", "q": "1", "line": "request_data,tag1=v field1=7i"}
    # the plugin's write is queryable as soon as the response arrives
    assert s.rows("mydb", "SELECT field1 FROM request_data") == [{"field1": 7}]
    assert httpx.get(f"{s.url}/api/v3/engine/nope").status_code == 404
    # the example request plugin
    cli(s, "create", "trigger", "--trigger-spec", "request:hello", "--plugin-filename",
        "examples/request/hello_world/hello_world.py", "--database", "mydb", "hello")
    r = httpx.get(f"{s.url}/api/v3/engine/hello", params={"name": "Weir"}, timeout=30)
    assert r.status_code == 200, r.text


def test_schedule_trigger_and_disable_enable(engine_server):
    s = engine_server
    (s.plugin_dir / "tick.py").write_text(
        "def process_scheduled_call(influxdb3_local, call_time, args=None):\n"
        "    n = influxdb3_local.cache.get('n', default=0) + 1\n"
        "    influxdb3_local.cache.put('n', n)\n"
        "    influxdb3_local.write(LineBuilder('ticks').int64_field('n', n)"
        ".string_field('at', call_time.isoformat()))\n")
    cli(s, "create", "database", "sched")
    cli(s, "create", "trigger", "--database", "sched", "--plugin-filename", "tick.py",
        "--trigger-spec", "every:1s", "ticker")

    def ticks() -> list[int]:
        r = s.query("sched", "SELECT n FROM ticks ORDER BY n")
        return [x["n"] for x in r.json()] if r.status_code == 200 else []

    got = wait_for(lambda: len(ticks()) >= 2 and ticks())
    assert got[:2] == [1, 2], got  # the cache kept the counter between calls
    out = cli(s, "disable", "trigger", "--database", "sched", "ticker").stdout
    assert "Trigger ticker disabled successfully" in out
    n = len(ticks())
    # "No more ticks" needs a positive signal first: a witness with the same schedule in
    # another database ticks twice, so the ticker's schedule came round at least once more.
    cli(s, "create", "database", "witness")
    cli(s, "create", "trigger", "--database", "witness", "--plugin-filename", "tick.py",
        "--trigger-spec", "every:1s", "witness")
    assert wait_for(lambda: len(s.rows("witness", "SELECT n FROM ticks")) >= 2
                    if s.query("witness", "SELECT n FROM ticks").status_code == 200 else False)
    assert len(ticks()) <= n + 1  # one call may have been committing as it was disabled
    r = cli(s, "delete", "trigger", "--database", "sched", "ticker")
    assert "deleted successfully" in r.stdout


def test_faulty_plugins_cost_only_their_own_call(engine_server):
    s = engine_server
    p = s.plugin_dir
    (p / "crash.py").write_text(
        "import ctypes, os\n"
        "def process_writes(influxdb3_local, table_batches, args=None):\n"
        "    mode = args['mode']\n"
        "    if mode == 'segfault':\n"
        "        ctypes.string_at(0)\n"
        "    elif mode == 'exit':\n"
        "        os._exit(3)\n"
        "    elif mode == 'hang':\n"
        "        while True: pass\n"
        "    elif mode == 'raise':\n"
        "        raise ValueError('boom')\n")
    (p / "good.py").write_text(
        "def process_writes(influxdb3_local, table_batches, args=None):\n"
        "    for b in table_batches:\n"
        "        if b['table_name'] == 'm':\n"
        "            influxdb3_local.write(LineBuilder('seen').int64_field('rows', len(b['rows'])))\n")
    cli(s, "create", "database", "f")
    for mode in ("segfault", "exit", "hang", "raise"):
        cli(s, "create", "trigger", "--database", "f", "--plugin-filename", "crash.py",
            "--trigger-spec", "table:m", "--trigger-arguments", f"mode={mode}", f"bad_{mode}")
    cli(s, "create", "trigger", "--database", "f", "--plugin-filename", "good.py",
        "--trigger-spec", "all_tables", "good")

    def seen() -> int:
        r = s.query("f", "SELECT sum(rows) AS n FROM seen")
        return (r.json()[0].get("n") or 0) if r.status_code == 200 else 0

    # the crashing triggers fail (and are restarted) on purpose; the hanging one is
    # stopped by the 3s call limit
    for mode, text in (("segfault", "killed by signal 11"), ("exit", "exited with code 3"),
                       ("hang", "exceeded the time limit"), ("raise", "ValueError: boom")):
        s.expect_log(rf"ERROR weir\.engine: processing engine \[bad_{mode}\]: .*{text}")
    for i in range(3):
        assert s.write("f", f"m v={i}").status_code == 204
        # one flush at a time: the good trigger has seen this write before the next
        assert wait_for(lambda i=i: seen() == i + 1), seen()
    # the server still answers while the hanging plugin spins
    assert s.rows("f", "SELECT count(*) AS n FROM m") == [{"n": 3}]

    def errors() -> str:
        r = s.query("_internal", "SELECT trigger_name, log_text FROM system.processing_engine_logs"
                                 " WHERE log_level = 'ERROR'")
        return " ".join(f"{x['trigger_name']}:{x['log_text']}" for x in r.json())

    text = wait_for(lambda: all(f"bad_{m}" in errors() for m in ("segfault", "exit", "hang",
                                                               "raise")) and errors())
    assert text, errors()
    assert "ValueError: boom" in text
    assert s.proc is not None and s.proc.poll() is None


def test_dry_run_cli(engine_server):
    s = engine_server
    cli(s, "create", "database", "sensors")
    out = cli(s, "test", "wal_plugin", "--database", "sensors", "--lp",
              "my_measure,tag1=asdf f1=1.0 123", "--input-arguments",
              "double_count_table=my_measure", "examples/wal_plugin/wal_plugin.py").stdout
    assert '"sensors"' in out and "write_reports" in out and "row_count=2i" in out
    # nothing was written for real
    assert s.query("sensors", "SELECT * FROM write_reports").status_code == 400


def test_trigger_errors_are_clear(engine_server):
    s = engine_server
    cli(s, "create", "database", "e")
    p = cli(s, "create", "trigger", "--database", "e", "--plugin-filename", "../evil.py",
            "--trigger-spec", "all_tables", "t", check=False)
    assert p.returncode != 0 and "Path traversal" in p.stderr
    p = cli(s, "create", "trigger", "--database", "e", "--plugin-filename", "missing.py",
            "--trigger-spec", "all_tables", "t", check=False)
    assert p.returncode != 0 and "not found" in p.stderr
    p = cli(s, "create", "trigger", "--database", "e", "--plugin-filename",
            "examples/wal_plugin/wal_plugin.py", "--trigger-spec", "every:10s", "t",
            check=False)
    assert p.returncode != 0 and "process_scheduled_call" in p.stderr
    p = cli(s, "create", "trigger", "--database", "e", "--plugin-filename",
            "examples/wal_plugin/wal_plugin.py", "--trigger-spec", "sometimes", "t",
            check=False)
    assert p.returncode != 0 and "all_tables" in p.stderr
    assert "Traceback" not in p.stderr


def test_cli_errors_without_server(tmp_path):
    env = {**os.environ, "INFLUXDB3_HOST_URL": "http://127.0.0.1:9"}
    p = subprocess.run([*weir_cmd(), "query", "--database", "x", "SELECT 1"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode != 0
    assert "could not connect" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([*weir_cmd(), "serve", "--wal-flush-interval", "soon"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--wal-flush-interval" in p.stderr


def test_every_command_has_help_with_example():
    groups = {"create": ["database", "table", "trigger", "token"],
              "delete": ["database", "table", "trigger", "token"],
              "show": ["databases", "summary", "plugins", "tokens", "system"],
              "enable": ["trigger"], "disable": ["trigger"], "update": ["database", "trigger"],
              "install": ["package", "requirements"], "test": ["wal_plugin", "schedule_plugin"]}
    cmds = [["serve"], ["write"], ["query"]] + [[g, c] for g, cs in groups.items() for c in cs]
    for cmd in cmds:
        p = subprocess.run([*weir_cmd(), *cmd, "--help"], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, (cmd, p.stderr)
        assert "Example" in p.stdout and "influxdb3 " in p.stdout, cmd




def test_example_schedule_plugins_as_their_readmes_say(engine_server):
    s = engine_server
    cli(s, "create", "database", "mydb")
    cli(s, "write", "--database", "mydb", "cpu,host=a usage=1")
    out = cli(s, "test", "schedule_plugin", "--database", "mydb", "--input-arguments",
              "table=cpu", "examples/schedule/deadman_check/deadman_check.py").stdout
    assert '"errors": []' in out
    out = cli(s, "test", "schedule_plugin", "--database", "mydb",
              "examples/schedule/system_metrics/system_metrics.py").stdout
    assert "system_metrics,host=" in out and "load1=" in out
    cli(s, "create", "trigger", "--database", "mydb", "--path",
        "examples/schedule/system_metrics/system_metrics.py", "--trigger-spec", "every:1s",
        "system_metrics")
    # the deadman's alert on the silent table is an error log line, on purpose
    s.expect_log(r"ERROR weir\.engine: processing engine \[quiet_deadman\]: no data in quiet "
                 r"in the last 5 minutes$")
    cli(s, "create", "trigger", "--database", "mydb", "--path",
        "examples/schedule/deadman_check/deadman_check.py", "--trigger-spec", "every:1s",
        "--trigger-arguments", "table=quiet,window=5 minutes", "quiet_deadman")
    rows = wait_for(lambda: s.rows("mydb", "SELECT host, load1, mem_used_percent, "
                                           "disk_used_percent FROM system_metrics")
                    if s.query("mydb", "SELECT 1 FROM system_metrics").status_code == 200
                    else [])
    assert rows and rows[0]["load1"] >= 0 and 0 <= rows[0]["mem_used_percent"] <= 100
    alerts = wait_for(lambda: s.query("mydb", "SELECT * FROM deadman_alerts").status_code == 200
                      and s.rows("mydb", "SELECT \"table\", message FROM deadman_alerts"))
    assert alerts and alerts[0]["table"] == "quiet"
    errors = cli(s, "query", "--database", "_internal", "SELECT log_text FROM "
                 "system.processing_engine_logs WHERE trigger_name = 'quiet_deadman' "
                 "AND log_level = 'ERROR'").stdout
    assert "quiet" in errors
