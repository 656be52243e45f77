"""The import graph follows docs/ARCHITECTURE.md: each package imports only what its row
of the table names, packages never import each other in a circle, and the plugin worker
imports only the standard library and pyarrow."""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "weir"
DOC = ROOT / "docs" / "ARCHITECTURE.md"
#: the composition root and the state it hands to handlers (the doc's footnote 1)
DATABASE_HOLDERS = {"server/__init__.py", "server/state.py"}


def _rules() -> dict[str, set[str]]:
    rules: dict[str, set[str]] = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| `([a-z_]+)` \| [a-z ]+ \| (.*) \|$", line)
        if m:
            rules[m.group(1)] = set(re.findall(r"`([a-z_]+)`", m.group(2)))
    return rules


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _weir_imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported Weir package) for every import in `path`, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = ([f"{node.module}.{a.name}" for a in node.names]
                     if node.module == "weir" else [node.module])
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "weir" and len(parts) > 1 and parts[1] != "__version__":
                yield node.lineno, parts[1]


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_table_names_every_package() -> None:
    rules = _rules()
    packages = {_package_of(p) for p in _modules()} - {"__init__"}
    assert packages <= set(rules), f"packages missing from the table: {packages - set(rules)}"
    for allowed in rules.values():
        assert allowed <= set(rules), f"unknown packages named: {allowed - set(rules)}"


def test_each_package_imports_only_what_its_row_names() -> None:
    rules = _rules()
    wrong = []
    for path in _modules():
        pkg = _package_of(path)
        if pkg == "__init__":
            continue
        rel = path.relative_to(SRC).as_posix()
        for line, target in _weir_imports(path):
            if target == pkg:
                continue
            if target not in rules[pkg]:
                wrong.append(f"{rel}:{line} imports weir.{target} ({pkg} may import: "
                             f"{', '.join(sorted(rules[pkg])) or 'nothing'})")
            elif target == "database" and pkg == "server" and rel not in DATABASE_HOLDERS:
                wrong.append(f"{rel}:{line} imports weir.database: routes call the services")
    assert not wrong, "imports against docs/ARCHITECTURE.md:\n" + "\n".join(wrong)


def test_packages_import_each_other_in_no_circle() -> None:
    graph: dict[str, set[str]] = {}
    for path in _modules():
        pkg = _package_of(path)
        for _, target in _weir_imports(path):
            if target != pkg:
                graph.setdefault(pkg, set()).add(target)
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in seen:
                visit(nxt, [*trail, node])
        seen[node] = 2

    for pkg in sorted(graph):
        if pkg not in seen:
            visit(pkg, [])


#: what the worker shares with the server: the plugin API's types and LineBuilder
WORKER_SHARED = {"weir.engine.plugin_api", "weir.engine.line_builder"}


def test_the_plugin_worker_imports_only_the_standard_library_and_pyarrow() -> None:
    allowed = set(sys.stdlib_module_names) | {"pyarrow", "weir"}
    wrong = []
    worker = sorted((SRC / "engine" / "worker").rglob("*.py"))
    shared = [SRC / "engine" / f"{m.rsplit('.', 1)[1]}.py" for m in WORKER_SHARED]
    for path in worker + shared:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in allowed or (top == "weir" and name not in WORKER_SHARED
                                          and not name.startswith("weir.engine.worker")):
                    wrong.append(f"{path.relative_to(SRC)}:{node.lineno} imports {name}")
    assert not wrong, "the worker runs in the plugin environment:\n" + "\n".join(wrong)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The walk finds imports inside functions and under TYPE_CHECKING too."""
    f = tmp_path / "m.py"
    f.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                 "    from weir.server import x\n"
                 "def f():\n    import weir.database\n    from weir import service\n")
    assert [t for _, t in _weir_imports(f)] == ["server", "database", "service"]


def test_cluster_membership_sits_below_storage() -> None:
    """weir.cluster coordinates through the object store only, so storage may use it (the
    compactor lease) and it never reaches up into storage, the engine or the server; and no
    storage or engine package reaches the server."""
    rules = _rules()
    assert rules["cluster"] <= {"errors", "config", "objectstore"}
    below_server = ("wal", "buffer", "persist", "cache", "query", "system_tables", "ports",
                    "influxql", "database", "engine", "cluster")
    assert not [p for p in below_server if "server" in rules.get(p, set())]
