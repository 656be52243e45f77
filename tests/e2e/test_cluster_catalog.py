"""What a cluster shares through its catalog log (issue #13): tokens made on one node
work on every node, and a trigger created on any node runs on the process node its spec
names, whose plugin writes reach the query node. Real processes on one shared `file`
directory (the store the README's example uses)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from conftest import WeirServer
from support.cli import cli, create_admin_token, poll

pytestmark = pytest.mark.slow

TICK = (
    "def process_scheduled_call(influxdb3_local, call_time, args=None):\n"
    "    influxdb3_local.write(LineBuilder('ticks').tag('who', args['who'])"
    ".int64_field('n', 1))\n")
FLAGS = ["--wal-flush-interval", "10ms", "--cluster-poll-interval", "100ms",
         "--cluster-id", "c1"]


def node(server_factory, node_id: str, modes: str, **kw: object) -> WeirServer:  # type: ignore[no-untyped-def]
    srv: WeirServer = server_factory("shared", extra_args=[
        *FLAGS, "--node-id", node_id, "--mode", modes], **kw)
    return srv.start()


def test_a_token_made_on_one_node_works_on_every_node(server_factory) -> None:  # type: ignore[no-untyped-def]
    a = node(server_factory, "ingest-1", "ingest", auth=True)
    q = node(server_factory, "query-1", "query", auth=True)
    token = create_admin_token(a)
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.post(f"{a.url}/api/v3/write_lp", params={"db": "db"}, headers=auth,
                   content=f"cpu,host=h1 usage=1i {time.time_ns()}".encode())
    assert r.status_code == 204, r.text

    def answered() -> bool:
        r = httpx.post(f"{q.url}/api/v3/query_sql", headers=auth,
                       json={"db": "db", "q": "SELECT count(*) AS n FROM cpu"})
        return r.status_code == 200 and r.json() == [{"n": 1}]

    assert poll(answered, timeout=10), "the query node took the token made on the ingest node"
    no = httpx.post(f"{q.url}/api/v3/query_sql", json={"db": "db", "q": "SELECT 1"})
    assert no.status_code == 401


def test_a_trigger_created_anywhere_runs_on_its_process_node(server_factory,  # type: ignore[no-untyped-def]
                                                             tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "tick.py").write_text(TICK)
    a = node(server_factory, "ingest-1", "ingest", plugin_dir=plugins)
    q = node(server_factory, "query-1", "query", plugin_dir=plugins)
    p = node(server_factory, "process-1", "process", plugin_dir=plugins)
    assert a.write("db", f"cpu,host=h1 usage=1i {time.time_ns()}").status_code == 204
    # made through the query node, which runs no triggers: the process node hears of it
    # through the catalog, runs it, and the query node sees its plugin's writes
    cli(q, "create", "trigger", "--database", "db", "--plugin-filename", "tick.py",
        "--trigger-spec", "every:100ms", "--trigger-arguments", "who=tick",
        "--node-spec", "nodes:process-1", "tick")

    def ticks() -> int:
        r = q.query("db", "SELECT count(*) AS n FROM ticks")
        return r.json()[0]["n"] if r.status_code == 200 else 0

    assert poll(lambda: ticks() >= 3, timeout=20), p.log()
    # disabled on another node: it stops here too (the count stops growing: two reads a
    # second apart agree, where the trigger ran ten times a second)
    cli(a, "disable", "trigger", "--database", "db", "tick")

    def settled() -> bool:
        before = ticks()
        time.sleep(1.0)
        return ticks() == before

    assert poll(settled, timeout=30), "the trigger still runs after a disable on another node"
