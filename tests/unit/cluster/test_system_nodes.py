"""`system.nodes` of a cluster node: one row per node record in the bucket, in node id
order, with each node's own redacted options; a single node keeps Core's one row."""

from __future__ import annotations

import json
import time

from weir.cluster import RUNNING, STOPPED, NodeRecord, node_key, read_nodes
from weir.objectstore import ObjectStore
from weir.system_tables import NodeInfo, ServerTables
from weir.system_tables.server import CLUSTER_NODES_SCHEMA, NODES_SCHEMA


class NoQueries:
    def entries(self) -> list[object]:
        return []


def node(node_id: str, modes: tuple[str, ...], state: str, beat_ns: int) -> NodeRecord:
    return NodeRecord(node_id=node_id, instance_id=f"i-{node_id}", modes=modes,
                      http_address=f"10.0.0.{len(node_id)}:8181", pid=7, core_count=4,
                      started_ns=beat_ns - 60 * 10**9, heartbeat_ns=beat_ns, state=state,
                      cli_params=json.dumps({"node-id": node_id, "aws-secret-access-key": "*******"},
                                            separators=(",", ":")))


def this_node() -> NodeInfo:
    return NodeInfo(node_id="b", instance_id="catalog-uuid", core_count=4, started_at_ms=1,
                    cli_params={"node-id": "b"})


def test_one_row_per_node_record(store: ObjectStore) -> None:
    now = time.time_ns()
    for r in (node("b", ("query",), RUNNING, now), node("a", ("ingest", "compact"), RUNNING,
                                                        now - 10 * 10**9),
              node("c", ("ingest",), STOPPED, now - 100 * 10**9)):
        store.put(node_key("c1", r.node_id), r.to_json())
    tables = ServerTables(this_node, NoQueries(), lambda: read_nodes(store, "c1", now))
    table = tables("_internal")["nodes"]
    assert table.schema == CLUSTER_NODES_SCHEMA
    assert table.schema.names[:8] == NODES_SCHEMA.names  # the reference's, then Weir's
    rows = table.read().to_pylist()
    assert [(r["node_id"], r["node_catalog_id"], r["mode"], r["state"]) for r in rows] == [
        ("a", 0, ["ingest", "compact"], "unresponsive"), ("b", 1, ["query"], "running"),
        ("c", 2, ["ingest"], "stopped")]
    b = rows[1]
    assert int(b["updated_at"].timestamp() * 1000) == now // 1_000_000
    assert b["instance_id"] == "i-b" and b["http_address"] == "10.0.0.1:8181"
    assert b["cli_params"] == '{"node-id":"b","aws-secret-access-key":"*******"}'
    assert "nodes" not in tables("db")


def test_a_single_node_shows_as_core() -> None:
    table = ServerTables(this_node, NoQueries())("_internal")["nodes"]
    assert table.schema == NODES_SCHEMA
    [row] = table.read().to_pylist()
    assert (row["node_id"], row["mode"], row["state"]) == ("b", ["core"], "running")
