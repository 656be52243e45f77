"""`influxdb3 serve --cluster-id/--mode/--cluster-poll-interval`: what they fill in the
server's configuration, and the one-line errors (exit 2) of combinations that cannot work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from weir.cli.main import cli
from weir.config import NODE_MODES


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The configurations `serve` would have run (the server itself is not started)."""
    import weir.server

    seen: list[Any] = []
    monkeypatch.setattr(weir.server, "run", seen.append)
    return seen


def serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["serve", "--node-id", "a", "--data-dir", str(tmp_path),
                                    *args], env=env or {}, prog_name="influxdb3")


def error_line(r: Result) -> str:
    assert r.exit_code == 2, (r.exit_code, r.output)
    (line,) = [ln for ln in r.stderr.splitlines() if not ln.startswith("warning: ")]
    assert line.startswith("error: "), r.stderr
    return line


def test_cluster_flags_fill_the_config(served: list[Any], tmp_path: Path) -> None:
    r = serve(tmp_path, "--cluster-id", "c1", "--mode", "ingest,query", "--mode", "compact",
              "--cluster-poll-interval", "100ms")
    assert r.exit_code == 0, r.output
    cfg = served[-1]
    assert cfg.cluster_id == "c1"
    assert cfg.modes == frozenset({"ingest", "query", "compact"})
    assert cfg.cluster_poll_interval == pytest.approx(0.1)


def test_defaults_and_environment(served: list[Any], tmp_path: Path) -> None:
    assert serve(tmp_path).exit_code == 0
    single = served[-1]
    assert single.cluster_id is None and single.modes == frozenset(NODE_MODES)
    assert single.cluster_poll_interval == pytest.approx(0.25)
    r = serve(tmp_path, env={"INFLUXDB3_ENTERPRISE_CLUSTER_ID": "prod",
                             "INFLUXDB3_ENTERPRISE_MODE": "Query,process",
                             "WEIR_CLUSTER_POLL_INTERVAL": "1s"})
    assert r.exit_code == 0, r.output
    cfg = served[-1]
    assert (cfg.cluster_id, cfg.modes, cfg.cluster_poll_interval) == (
        "prod", frozenset({"query", "process"}), 1.0)
    assert cfg.compactor_lease_duration == 30.0
    assert serve(tmp_path, "--cluster-id", "c1", "--mode", "all").exit_code == 0
    assert served[-1].modes == frozenset(NODE_MODES)


@pytest.mark.parametrize("args,flag,says", [
    (["--mode", "ingest,writer", "--cluster-id", "c1"], "--mode",
     "'writer' is not one of ingest, query, compact, process, all"),
    (["--mode", "query"], "--mode", "needs --cluster-id"),
    (["--cluster-id", "c1", "--object-store", "memory"], "--cluster-id",
     "memory object store"),
    (["--cluster-id", "c1", "--object-store", "memory-throttled"], "--cluster-id",
     "memory object store"),
    (["--cluster-id", "a"], "--cluster-id", "also the node id"),
    (["--cluster-id", "c/1"], "--cluster-id", "cannot be used as a cluster id"),
    (["--cluster-id", ""], "--cluster-id", "cannot be used as a cluster id"),
    (["--cluster-id", "c1", "--cluster-poll-interval", "0s"], "--cluster-poll-interval",
     "greater than zero"),
    (["--cluster-id", "c1", "--cluster-poll-interval", "often"], "--cluster-poll-interval",
     "invalid duration"),
    (["--cluster-id", "c1", "--compactor-lease-duration", "1s"], "--compactor-lease-duration",
     "at least 3s"),
])
def test_bad_cluster_flags(served: list[Any], tmp_path: Path, args: list[str], flag: str,
                           says: str) -> None:
    line = error_line(serve(tmp_path, *args))
    assert flag in line and says in line, line
    assert served == []


def test_help_shows_the_flags_and_an_example(tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["serve", "--help"], prog_name="influxdb3").stdout
    for text in ("--cluster-id", "INFLUXDB3_ENTERPRISE_CLUSTER_ID", "--mode",
                 "INFLUXDB3_ENTERPRISE_MODE", "--cluster-poll-interval",
                 "WEIR_CLUSTER_POLL_INTERVAL", "influxdb3 serve --cluster-id c1"):
        assert text in out, text
