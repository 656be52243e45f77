"""The server's own `system.*` tables (surface.md §4): `queries` in every database (the
query log of the whole server, as the reference's), `nodes` in `_internal`.

`nodes` shows this node alone, in Core's mode, unless the server is a node of a cluster
(`serve --cluster-id`): then one row per node record in the bucket, as InfluxDB 3
Enterprise lists its nodes, with Weir's `http_address` and `started_at` after the
reference's columns.

`queries` has the reference's columns; Weir fills what it measures (the end-to-end and
execution durations) and leaves the planner's details (partitions, parquet_files, plan,
permit and compute durations, max_memory, trace_id) empty.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

from weir.catalog import INTERNAL_DB
from weir.system_tables.base import SystemTable

__all__ = ["CLUSTER_NODES_SCHEMA", "NODES_SCHEMA", "QUERIES_SCHEMA", "ClusterNodeInfo",
           "NodeInfo", "QueryLogSource", "ServerTables", "redacted_cli_params"]


class QueryLogEntryInfo(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def phase(self) -> str: ...  # received | success | fail | cancel

    @property
    def issue_time_ns(self) -> int: ...

    @property
    def query_type(self) -> str: ...  # sql | influxql | flightsql

    @property
    def query_text(self) -> str: ...

    @property
    def end2end_duration_ns(self) -> int | None: ...

    @property
    def success(self) -> bool: ...

    @property
    def running(self) -> bool: ...

    @property
    def cancelled(self) -> bool: ...


class QueryLogSource(Protocol):
    def entries(self) -> Iterable[QueryLogEntryInfo]: ...


#: what `cli_params` shows as the value of a sensitive option
REDACTED = "*******"
_SENSITIVE = frozenset({
    "aws-access-key-id", "aws-secret-access-key", "aws-session-token", "aws-credentials-file",
    "aws-endpoint", "aws-allow-http", "aws-default-region", "aws-skip-signature",
    "azure-endpoint", "azure-allow-http", "azure-storage-account", "azure-storage-access-key",
    "google-service-account", "tls-key", "tls-cert", "without-auth"})
_SENSITIVE_WORDS = ("password", "secret", "token", "credential", "auth", "key")


def redacted_cli_params(params: Mapping[str, str]) -> str:
    """The `serve` options the operator gave (name without `--` -> value), as the JSON
    object `system.nodes.cli_params` shows, secrets (and anything named like one, by the
    reference's rule) replaced by `*******`."""
    out = {}
    for name, value in params.items():
        low = name.lower()
        sensitive = name in _SENSITIVE or any(w in low for w in _SENSITIVE_WORDS)
        out[name] = REDACTED if sensitive else value
    return json.dumps(out, separators=(",", ":"))


@dataclass(frozen=True)
class NodeInfo:
    """This node, as `system.nodes` shows it (Weir runs one node, in Core's mode)."""

    node_id: str
    #: stable across restarts of the node (the catalog's id)
    instance_id: str
    core_count: int
    started_at_ms: int
    cli_params: Mapping[str, str] = field(default_factory=dict)


class ClusterNodeInfo(Protocol):
    """A cluster node as its record in the bucket describes it (weir.cluster.NodeRecord)."""

    @property
    def node_id(self) -> str: ...

    @property
    def instance_id(self) -> str: ...

    @property
    def modes(self) -> Sequence[str]: ...

    @property
    def http_address(self) -> str: ...

    @property
    def core_count(self) -> int: ...

    @property
    def started_ns(self) -> int: ...

    @property
    def heartbeat_ns(self) -> int: ...

    @property
    def state(self) -> str: ...  # starting | running | stopped | unresponsive

    @property
    def cli_params(self) -> str | None: ...  # JSON, redacted by the node that wrote it


_MS = pa.timestamp("ms")
_NS_DURATION = pa.duration("ns")

NODES_SCHEMA = pa.schema([
    ("node_id", pa.string()), ("node_catalog_id", pa.uint32()), ("instance_id", pa.string()),
    ("mode", pa.list_(pa.string())), ("core_count", pa.uint64()), ("state", pa.string()),
    ("updated_at", _MS), ("cli_params", pa.string()),
])
CLUSTER_NODES_SCHEMA = pa.schema([
    *NODES_SCHEMA, ("http_address", pa.string()), ("started_at", _MS),
])
QUERIES_SCHEMA = pa.schema([
    ("id", pa.string()), ("phase", pa.string()), ("issue_time", pa.timestamp("ns")),
    ("query_type", pa.string()), ("query_text", pa.string()),
    ("partitions", pa.int64()), ("parquet_files", pa.int64()),
    ("plan_duration", _NS_DURATION), ("permit_duration", _NS_DURATION),
    ("execute_duration", _NS_DURATION), ("end2end_duration", _NS_DURATION),
    ("compute_duration", _NS_DURATION), ("max_memory", pa.int64()),
    ("success", pa.bool_()), ("running", pa.bool_()), ("cancelled", pa.bool_()),
    ("trace_id", pa.string()),
])


class ServerTables:
    """The provider of the server's tables."""

    def __init__(self, node: Callable[[], NodeInfo], queries: QueryLogSource,
                 cluster_nodes: Callable[[], Sequence[ClusterNodeInfo]] | None = None) -> None:
        self._node = node  # (asked at each read: the catalog's id is known once it loads)
        self._queries = queries
        #: a cluster node's view of every node (read from the bucket at each query)
        self._cluster_nodes = cluster_nodes

    def __call__(self, database: str, /) -> dict[str, SystemTable]:
        tables = {"queries": SystemTable(QUERIES_SCHEMA, lambda: queries_table(self._queries))}
        if database == INTERNAL_DB:
            if self._cluster_nodes is not None:
                read = self._cluster_nodes
                tables["nodes"] = SystemTable(CLUSTER_NODES_SCHEMA,
                                              lambda: cluster_nodes_table(read()))
            else:
                tables["nodes"] = SystemTable(NODES_SCHEMA, lambda: nodes_table(self._node()))
        return tables


def nodes_table(node: NodeInfo) -> pa.Table:
    return pa.table([
        pa.array([node.node_id], pa.string()), pa.array([0], pa.uint32()),
        pa.array([node.instance_id], pa.string()),
        pa.array([["core"]], pa.list_(pa.string())),
        pa.array([node.core_count], pa.uint64()), pa.array(["running"], pa.string()),
        pa.array([node.started_at_ms], pa.int64()).cast(_MS),
        pa.array([redacted_cli_params(node.cli_params)], pa.string()),
    ], schema=NODES_SCHEMA)


def cluster_nodes_table(nodes: Sequence[ClusterNodeInfo]) -> pa.Table:
    """One row per node; `node_catalog_id` is the node's place among the node ids (stable
    while no node id sorting before it joins), `updated_at` its last heartbeat."""
    nodes = sorted(nodes, key=lambda n: n.node_id)
    return pa.table([
        pa.array([n.node_id for n in nodes], pa.string()),
        pa.array(range(len(nodes)), pa.uint32()),
        pa.array([n.instance_id for n in nodes], pa.string()),
        pa.array([list(n.modes) for n in nodes], pa.list_(pa.string())),
        pa.array([n.core_count for n in nodes], pa.uint64()),
        pa.array([n.state for n in nodes], pa.string()),
        pa.array([n.heartbeat_ns // 1_000_000 for n in nodes], pa.int64()).cast(_MS),
        pa.array([n.cli_params for n in nodes], pa.string()),
        pa.array([n.http_address for n in nodes], pa.string()),
        pa.array([n.started_ns // 1_000_000 for n in nodes], pa.int64()).cast(_MS),
    ], schema=CLUSTER_NODES_SCHEMA)


def queries_table(source: QueryLogSource) -> pa.Table:
    es = list(source.entries())
    n = len(es)
    none_i64 = pa.nulls(n, pa.int64())
    none_dur = pa.nulls(n, _NS_DURATION)
    e2e = pa.array([e.end2end_duration_ns for e in es], pa.int64()).cast(_NS_DURATION)
    return pa.table([
        pa.array([e.id for e in es], pa.string()),
        pa.array([e.phase for e in es], pa.string()),
        pa.array([e.issue_time_ns for e in es], pa.int64()).cast(pa.timestamp("ns")),
        pa.array([e.query_type for e in es], pa.string()),
        pa.array([e.query_text for e in es], pa.string()),
        none_i64, none_i64, none_dur, none_dur,
        e2e,  # Weir runs a query as one step: its execution is its end to end
        e2e, none_dur, none_i64,
        pa.array([e.success for e in es], pa.bool_()),
        pa.array([e.running for e in es], pa.bool_()),
        pa.array([e.cancelled for e in es], pa.bool_()),
        pa.nulls(n, pa.string()),
    ], schema=QUERIES_SCHEMA)
