"""Trigger node specs and process mode on real servers, driven with the CLI as a user
does: `create trigger --node-spec`, what the node runs, what it only stores, and a
request to a trigger that runs elsewhere. Every server here is `--node-id test-node`."""

from __future__ import annotations

import time

import httpx
import pytest

from conftest import WeirServer
from support.cli import cli
from support.cli import poll as wait_for

# each call writes one row naming its trigger (the `who` argument), so a trigger that
# never ran has no rows while one beside it on the same schedule shows the time passed
TICK = (
    "def process_scheduled_call(influxdb3_local, call_time, args=None):\n"
    "    influxdb3_local.write(LineBuilder('ticks').tag('who', args['who'])"
    ".int64_field('n', 1))\n")
ECHO = (
    "def process_request(influxdb3_local, query_parameters, request_headers, request_body,"
    " args=None):\n"
    "    return {'served_by': 'test-node'}\n")


@pytest.fixture
def plugins(tmp_path):  # type: ignore[no-untyped-def]
    d = tmp_path / "plugins"
    d.mkdir()
    (d / "tick.py").write_text(TICK)
    (d / "echo.py").write_text(ECHO)
    return d


def ticks(s: WeirServer) -> dict[str, int]:
    r = s.query("db", "SELECT who, count(*) AS n FROM ticks GROUP BY who")
    return {row["who"]: row["n"] for row in r.json()} if r.status_code == 200 else {}


def create_tick(s: WeirServer, name: str, *extra: str, check: bool = True
                ) -> tuple[int, str]:
    p = cli(s, "create", "trigger", "--database", "db", "--plugin-filename", "tick.py",
            "--trigger-spec", "every:100ms", "--trigger-arguments", f"who={name}", *extra,
            name, check=check)
    return p.returncode, p.stdout + p.stderr


def test_single_node_runs_its_own_spec_and_stores_the_others(server_factory, plugins):
    s = server_factory(plugin_dir=plugins, extra_args=["--wal-flush-interval", "10ms"]).start()
    cli(s, "create", "database", "db")
    create_tick(s, "mine", "--node-spec", "nodes:test-node")
    create_tick(s, "theirs", "--node-spec", "nodes:other")
    create_tick(s, "everyone")  # all, as in Core
    assert wait_for(lambda: ticks(s).get("mine", 0) >= 3 and ticks(s).get("everyone", 0) >= 3)
    assert "theirs" not in ticks(s)
    rows = s.rows("db", "SELECT trigger_name, disabled, node_spec FROM "
                        "system.processing_engine_triggers ORDER BY trigger_name")
    assert rows == [
        {"trigger_name": "everyone", "disabled": False, "node_spec": "all"},
        {"trigger_name": "mine", "disabled": False, "node_spec": "nodes:test-node"},
        {"trigger_name": "theirs", "disabled": False, "node_spec": "nodes:other"}]
    assert "not running trigger theirs of database db on this node: its node spec " \
           "'nodes:other' does not name this node (test-node)" in s.log()
    summary = cli(s, "show", "summary", "--database", "db").stdout
    assert "enabled, nodes:other" in summary

    # a request trigger of other nodes: its path answers 404 naming them, not a 500
    cli(s, "create", "trigger", "--database", "db", "--plugin-filename", "echo.py",
        "--trigger-spec", "request:echo", "--node-spec", "nodes:node-a,node-b", "echo")
    r = httpx.get(f"{s.url}/api/v3/engine/echo", timeout=30)
    assert r.status_code == 404
    assert r.json() == {"error": "request trigger 'echo' of database 'db' does not run on "
                                 "this node (test-node): its node spec 'nodes:node-a,node-b' "
                                 "does not name this node (test-node); it runs on nodes "
                                 "node-a, node-b"}
    # managed as any trigger: disabled, enabled, deleted
    cli(s, "disable", "trigger", "--database", "db", "theirs")
    cli(s, "enable", "trigger", "--database", "db", "theirs")
    cli(s, "delete", "trigger", "--database", "db", "--force", "theirs")
    names = [r["trigger_name"] for r in s.rows(
        "db", "SELECT trigger_name FROM system.processing_engine_triggers")]
    assert sorted(names) == ["echo", "everyone", "mine"]

    # and after a restart the node still runs only its own
    s.restart()
    before = ticks(s)
    assert wait_for(lambda: ticks(s).get("mine", 0) >= before["mine"] + 2)
    assert "theirs" not in ticks(s)
    assert httpx.get(f"{s.url}/api/v3/engine/echo", timeout=30).status_code == 404


def test_a_bad_node_spec_is_refused(server_factory, plugins):
    s = server_factory(plugin_dir=plugins).start()
    cli(s, "create", "database", "db")
    for bad in ("nodes:", "nodes:a,,b", "some"):
        code, out = create_tick(s, "bad", "--node-spec", bad, check=False)
        assert code != 0
        assert f"unsupported node spec format '{bad}'" in out, out
        assert "Invalid value for '--node-spec'" in out, out
    # the HTTP API says the same, as 400 (a client that skips the CLI's check)
    r = httpx.post(f"{s.url}/api/v3/configure/processing_engine_trigger", json={
        "db": "db", "trigger_name": "bad", "plugin_filename": "tick.py",
        "trigger_specification": "every:1s", "node_spec": "nodes:a,,b"}, timeout=30)
    assert r.status_code == 400
    assert "unsupported node spec format 'nodes:a,,b'" in r.text
    assert s.rows("db", "SELECT trigger_name FROM system.processing_engine_triggers") == []


def test_a_node_not_in_process_mode_stores_but_does_not_run(server_factory, plugins):
    s = server_factory(plugin_dir=plugins, extra_args=[
        "--wal-flush-interval", "10ms", "--cluster-id", "c1", "--mode", "ingest,query"])
    s.start()
    cli(s, "create", "database", "db")
    create_tick(s, "sched")
    assert s.rows("db", "SELECT trigger_name, disabled, node_spec FROM "
                        "system.processing_engine_triggers") == [
        {"trigger_name": "sched", "disabled": False, "node_spec": "all"}]
    assert wait_for(lambda: "not running trigger sched of database db on this node: this "
                            "node (test-node) is not in process mode" in s.log(), timeout=10)
    time.sleep(1.0)  # ten of its fire times
    # the node's own writes land (so `ticks` would have found the plugin's), no tick did
    assert s.write("db", "marker v=1i").status_code == 204
    assert s.rows("db", "SELECT v FROM marker") == [{"v": 1}]
    assert ticks(s) == {}
