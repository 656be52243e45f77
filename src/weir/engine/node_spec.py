"""Which nodes of a cluster run a trigger: its node spec, and this node's decision.

A trigger's node spec (InfluxDB 3 Enterprise's `--node-spec`, the `node_spec` of the
create-trigger body) is ``all`` (the default) or ``nodes:<node-id>[,<node-id>...]``. The
grammar is the reference's `ApiNodeSpec` parse: ``all``; or a string starting with
``nodes``, split at the first ``:`` and then at ``,``; anything else is an "unsupported
node spec format". Weir also refuses an empty node list and empty names (``nodes:``,
``nodes:a,,b``), which the reference would store and then never match.

Whether this node runs a trigger depends on the spec and on the node's modes
(`ServeConfig.modes`): every trigger needs ``process``; WAL (``table:``, ``all_tables``)
and Parquet (``parquet:``) triggers read this node's own WAL flushes and snapshots, so
they need ``ingest`` too; schedule and request triggers run on any process node.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from weir.errors import InvalidRequest

__all__ = ["ALL", "InvalidNodeSpec", "NodeSpec", "Placement", "parse_node_spec", "placement"]

_FORMS = "expected 'all' or 'nodes:<node-id>[,<node-id>...]'"

#: the trigger kinds (`TriggerSpec.kind`) fed by this node's own writes and snapshots
_NEEDS_INGEST = frozenset({"wal", "parquet"})


class InvalidNodeSpec(InvalidRequest):
    """A node spec that is neither `all` nor a list of node ids (HTTP 400)."""

    def __init__(self, spec: str, why: str) -> None:
        super().__init__(f"unsupported node spec format {spec!r}: {why} ({_FORMS})")
        self.spec = spec


@dataclass(frozen=True)
class NodeSpec:
    """`nodes` is None for `all`, else the node ids in the order given (no repeats)."""

    nodes: tuple[str, ...] | None = None

    def canonical(self) -> str:
        return "all" if self.nodes is None else "nodes:" + ",".join(self.nodes)

    def includes(self, node_id: str) -> bool:
        return self.nodes is None or node_id in self.nodes

    def describe(self) -> str:
        """Where the spec runs a trigger, for messages (`every process node`, `node a`,
        `nodes a, b`)."""
        if self.nodes is None:
            return "every process node"
        return ("node " if len(self.nodes) == 1 else "nodes ") + ", ".join(self.nodes)


ALL = NodeSpec()


def parse_node_spec(text: str) -> NodeSpec:
    """Parse `all` or `nodes:<id>[,<id>...]`; raise InvalidNodeSpec naming `text` otherwise.

    Spaces around names are dropped (`nodes:a, b`) and repeats kept once."""
    s = text.strip()
    if s == "all":
        return ALL
    if not s.startswith("nodes"):
        raise InvalidNodeSpec(text, "it is neither 'all' nor starts with 'nodes'")
    head, colon, rest = s.partition(":")
    if not colon or head != "nodes":
        raise InvalidNodeSpec(text, "'nodes' must be followed by ':' and the node ids")
    names = [n.strip() for n in rest.split(",")]
    if not rest.strip():
        raise InvalidNodeSpec(text, "it names no node")
    if any(not n for n in names):
        raise InvalidNodeSpec(text, "it has an empty node id")
    return NodeSpec(tuple(dict.fromkeys(names)))


@dataclass(frozen=True)
class Placement:
    """Whether this node runs a trigger and, when not, why (a sentence for the log)."""

    runs: bool
    reason: str = ""


def placement(kind: str, spec: NodeSpec, node_id: str, modes: Collection[str]) -> Placement:
    """Whether node `node_id` in `modes` runs a trigger of `kind` (`TriggerSpec.kind`:
    wal, schedule, request, parquet) whose node spec is `spec`."""
    if not spec.includes(node_id):
        return Placement(False, f"its node spec '{spec.canonical()}' does not name this "
                                f"node ({node_id})")
    if "process" not in modes:
        return Placement(False, f"this node ({node_id}) is not in process mode (its modes: "
                                f"{','.join(sorted(modes)) or 'none'})")
    if kind in _NEEDS_INGEST and "ingest" not in modes:
        what = "WAL" if kind == "wal" else "Parquet"
        return Placement(False, f"a {what} trigger sees only the writes of the node it runs "
                                f"on, and this node ({node_id}) is not in ingest mode")
    return Placement(True)
