"""Two `influxdb3 serve --cluster-id c1` processes on one shared --data-dir (the file
store) form a cluster: both start, `system.nodes` on either lists both with their modes and
fresh heartbeats, a node of another cluster id or a second process of a running node id is
refused with one line, and a node stopped with SIGTERM shows `stopped` on the other."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from conftest import WeirServer, free_port, weir_cmd
from support.cli import poll

NODES = "SELECT node_id, mode, state, updated_at, http_address FROM system.nodes"


def node(server_factory, node_id: str, *args: str) -> WeirServer:  # type: ignore[no-untyped-def]
    return server_factory("shared", extra_args=["--cluster-id", "c1", "--node-id", node_id,
                                                *args])


def serve_refused(data_dir: Path, *args: str, beside: WeirServer | None = None
                  ) -> subprocess.CompletedProcess[str]:
    """A `serve` that must stop by itself (the cluster refuses it, or its flags are bad);
    `beside`: on that server's store (its data dir, or its bucket on an S3 run)."""
    store = beside.store_args() if beside is not None else []
    p = subprocess.run([*weir_cmd(), "serve", *store, "--data-dir", str(data_dir),
                        "--without-auth",
                        "--http-bind", f"127.0.0.1:{free_port()}", *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0, p.stderr
    return p


def age_s(ts: str) -> float:
    return time.time() - datetime.fromisoformat(ts).replace(tzinfo=UTC).timestamp()


def test_two_nodes_on_a_shared_data_dir(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = node(server_factory, "a").start()
    b = node(server_factory, "b", "--mode", "ingest,query").start()
    for srv in (a, b):
        rows = srv.rows("_internal", NODES)
        assert [(r["node_id"], r["mode"], r["state"]) for r in rows] == [
            ("a", ["ingest", "query", "compact", "process"], "running"),
            ("b", ["ingest", "query"], "running")], rows
        assert all(age_s(r["updated_at"]) < 5 for r in rows), rows
        assert [r["http_address"] for r in rows] == [f"127.0.0.1:{a.port}",
                                                    f"127.0.0.1:{b.port}"]
    # the heartbeat goes on
    first = {r["node_id"]: r["updated_at"] for r in a.rows("_internal", NODES)}
    assert poll(lambda: all(r["updated_at"] > first[r["node_id"]]
                            for r in a.rows("_internal", NODES)), timeout=5)
    # the reference's CLI shows the same
    out = subprocess.run([*weir_cmd(), "query", "--host", b.url, "-d", "_internal",
                          "SELECT node_id, mode, state FROM system.nodes"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "| a " in out.stdout and "| b " in out.stdout, out

    # a node of another cluster on the same directory: refused, naming both ids
    p = serve_refused(a.data_dir, "--cluster-id", "c2", "--node-id", "z", beside=a)
    (line,) = [ln for ln in p.stderr.splitlines() if "Serve command failed" in ln]
    assert "'c1'" in line and "'c2'" in line, p.stderr
    # a second process of node a while a runs: refused
    p = serve_refused(a.data_dir, "--cluster-id", "c1", "--node-id", "a", beside=a)
    assert "node id 'a' is in use by a running node" in p.stderr, p.stderr

    a.stop()
    assert poll(lambda: {r["node_id"]: r["state"] for r in b.rows("_internal", NODES)}
                == {"a": "stopped", "b": "running"}, timeout=5)
    # and a starts again as the same node
    a.start()
    assert {r["node_id"]: r["state"] for r in b.rows("_internal", NODES)} == {
        "a": "running", "b": "running"}


def test_bad_cluster_flags_stop_serve(tmp_path: Path) -> None:
    for args, says in [
        (["--node-id", "a", "--mode", "query"], "needs --cluster-id"),
        (["--node-id", "a", "--cluster-id", "c1", "--object-store", "memory"],
         "memory object store"),
        (["--node-id", "c1", "--cluster-id", "c1"], "also the node id"),
        (["--node-id", "a", "--cluster-id", "c1", "--mode", "reader"],
         "'reader' is not one of ingest, query, compact, process, all"),
    ]:
        p = serve_refused(tmp_path / "d", *args)
        assert p.returncode == 2 and says in p.stderr, (args, p.stderr)
