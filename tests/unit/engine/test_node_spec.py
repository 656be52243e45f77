"""Trigger node specs (`all`, `nodes:<id>,...`) and which node runs which trigger."""

from __future__ import annotations

import itertools

import pytest

from weir.config import NODE_MODES
from weir.engine.node_spec import ALL, InvalidNodeSpec, NodeSpec, parse_node_spec, placement
from weir.errors import InvalidRequest


@pytest.mark.parametrize(("text", "nodes", "canonical"), [
    ("all", None, "all"),
    (" all ", None, "all"),
    ("nodes:node-a", ("node-a",), "nodes:node-a"),
    ("nodes:node-a,node-b", ("node-a", "node-b"), "nodes:node-a,node-b"),
    ("nodes:node-a, node-b ", ("node-a", "node-b"), "nodes:node-a,node-b"),
    ("nodes:b,a,b", ("b", "a"), "nodes:b,a"),  # repeats once, order as given
    ("nodes:a:b", ("a:b",), "nodes:a:b"),  # split at the first ':' only, as the reference
])
def test_parse(text: str, nodes: tuple[str, ...] | None, canonical: str) -> None:
    spec = parse_node_spec(text)
    assert spec == NodeSpec(nodes)
    assert spec.canonical() == canonical
    assert parse_node_spec(canonical) == spec


@pytest.mark.parametrize("text", [
    "", "some", "All", "node:a", "nodes", "nodes:", "nodes: ", "nodes:a,,b", "nodes:a,",
    ",nodes:a", "nodesx:a",
])
def test_bad_specs_are_refused_naming_the_value(text: str) -> None:
    with pytest.raises(InvalidNodeSpec) as e:
        parse_node_spec(text)
    assert isinstance(e.value, InvalidRequest)  # HTTP 400
    assert repr(text) in str(e.value)
    assert "unsupported node spec format" in str(e.value)
    assert "nodes:<node-id>" in str(e.value)


def test_includes_and_describe() -> None:
    assert ALL.includes("anything") and ALL.describe() == "every process node"
    one, two = NodeSpec(("a",)), NodeSpec(("a", "b"))
    assert one.includes("a") and not one.includes("b") and not one.includes("A")
    assert one.describe() == "node a" and two.describe() == "nodes a, b"


KINDS = ("wal", "parquet", "schedule", "request")


def _modes() -> list[frozenset[str]]:
    return [frozenset(c) for n in range(len(NODE_MODES) + 1)
            for c in itertools.combinations(NODE_MODES, n)]


@pytest.mark.parametrize("modes", _modes(), ids=lambda m: ",".join(sorted(m)) or "none")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("spec", ["all", "nodes:n1", "nodes:n0,n1", "nodes:other"])
def test_placement_every_mode_kind_and_spec(modes: frozenset[str], kind: str, spec: str
                                            ) -> None:
    where = placement(kind, parse_node_spec(spec), "n1", modes)
    named = spec != "nodes:other"
    needs = {"process"} | ({"ingest"} if kind in ("wal", "parquet") else set())
    assert where.runs == (named and needs <= modes)
    if where.runs:
        assert where.reason == ""
    elif not named:
        assert where.reason == "its node spec 'nodes:other' does not name this node (n1)"
    elif "process" not in modes:
        assert "not in process mode" in where.reason
    else:
        assert "not in ingest mode" in where.reason and "sees only the writes" in where.reason


def test_a_single_core_node_runs_every_trigger_with_spec_all() -> None:
    every_mode = frozenset(NODE_MODES)  # ServeConfig's default
    assert all(placement(k, ALL, "weir-node", every_mode).runs for k in KINDS)
    assert not placement("schedule", NodeSpec(("elsewhere",)), "weir-node", every_mode).runs


def test_a_trigger_stored_before_node_specs_loads_as_all() -> None:
    from weir.catalog import TriggerDefinition

    old = TriggerDefinition.from_json({"trigger_name": "t", "plugin_filename": "p.py",
                                       "database": "db", "trigger_specification": "every:1s"})
    assert old.node_spec == "all"
    pinned = TriggerDefinition("t", "p.py", "db", "every:1s", node_spec="nodes:a,b")
    assert TriggerDefinition.from_json(pinned.to_json()) == pinned
