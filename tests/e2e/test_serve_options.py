"""Every `influxdb3 serve` option is wired, refused or knowingly ignored.

Wired options have a test showing their effect (this file's, or the one named in `WIRED`);
refused ones stop the server with exit code 2 and a line naming the option; the options
that only tune the reference's internals start the server with one WARNING line naming
them, so the commands in InfluxDB 3's docs and service files still start Weir."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import WeirServer, weir_cmd
from weir.cli.serve import INTERNALS, NOT_YET_WIRED, REFUSED, serve
from weir.cli.store_options import OBJECT_STORE_FLAGS

# Each wired option and where its effect is shown (here unless a file is named).
WIRED: dict[str, str] = {
    "--node-id": "every server test", "--node-id-from-env": "here",
    "--object-store": "tests/test_storage_parts.py, here (memory)",
    "--data-dir": "every server test", "--http-bind": "every server test",
    "--plugin-dir": "tests/test_engine_e2e.py", "--virtual-env-location": "tests/test_cli_unit.py",
    "--package-manager": "here", "--plugin-repo": "tests/test_engine_e2e_more.py",
    "--restrict-plugin-triggers-to": "tests/test_engine_triggers.py",
    "--without-auth": "every server test", "--disable-authz": "here",
    "--admin-token-file": "tests/test_auth.py",
    "--max-http-request-size": "tests/test_hostile_input.py",
    "--exec-mem-pool-bytes": "tests/test_hostile_input.py",
    "--query-timeout": "tests/test_hostile_input.py",
    "--plugin-call-timeout": "tests/test_engine_e2e.py",
    "--plugin-env-allow": "tests/e2e/test_plugin_env.py",
    "--plugin-env-deny": "tests/e2e/test_plugin_env.py",
    "--num-database-limit": "tests/test_limits_retention_api.py",
    "--num-table-limit": "tests/test_limits_retention_api.py",
    "--num-total-columns-per-table-limit": "tests/test_limits_retention_api.py",
    "--hard-delete-default-duration": "tests/test_limits_retention_api.py",
    "--log-filter": "here", "-v": "here", "--cluster-id": "tests/e2e/test_cluster_membership.py",
    "--mode": "tests/unit/cluster/test_serve_flags.py",
    "--cluster-poll-interval": "tests/unit/cluster/test_serve_flags.py",
    "--compactor-lease-duration": "tests/e2e/test_cluster_nodes.py",
    "--help-all": "tests/test_cli_unit.py",
    # storage options, wired by the storage side (WAL, snapshots, compaction, retention)
    "--wal-flush-interval": "storage", "--wal-snapshot-size": "storage",
    "--wal-max-write-buffer-size": "storage", "--snapshotted-wal-files-to-keep": "storage",
    "--gen1-duration": "storage", "--force-snapshot-mem-threshold": "storage",
    "--force-snapshot-bytes": "storage", "--buffer-mem-limit": "storage",
    "--compaction-interval": "storage", "--compaction-file-rows": "storage",
    "--compaction-max-file-rows": "storage",
    "--retention-check-interval": "storage", "--delete-grace-period": "storage",
    "--trigger-max-wal-lag": "tests/e2e/test_durable_triggers.py",
    # the cloud object stores (weir.cli.store_options): S3 against real servers; Google and
    # Azure are built by the same code and checked only for their usage errors
    **{flag: "tests/unit/objectstore/cloud/ (s3 end to end; google, azure untested)"
       for flag in OBJECT_STORE_FLAGS if flag not in ("--object-store", "--data-dir")},
}

WARNING = re.compile(r"^WARNING: Weir accepts but ignores these InfluxDB 3 options.*: (.*)$",
                     re.MULTILINE)


def run_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`influxdb3 serve` that must stop before serving (a refused option)."""
    return subprocess.run([*weir_cmd(), "serve", "--node-id", "n", "--object-store", "memory",
                           "--http-bind", "127.0.0.1:1", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=60)


def test_every_option_has_a_decision() -> None:
    decided = set(WIRED) | set(REFUSED) | {f for f, _, _ in NOT_YET_WIRED + INTERNALS}
    given = {o.opts[0] for o in serve.params if o.opts[0] != "--help"}
    assert given - decided == set(), "serve options with no decision (wire, refuse or ignore)"
    assert decided - given == set(), "decisions about options serve does not have"
    assert not set(WIRED) & {f for f, _, _ in NOT_YET_WIRED + INTERNALS}


@pytest.mark.parametrize("flag", sorted(REFUSED))
def test_refused_options_exit_2_naming_the_option(flag: str) -> None:
    p = run_serve(flag, "/etc/weir/server.pem")
    assert p.returncode == 2, p.stderr
    (line,) = p.stderr.strip().splitlines()
    assert flag in line and "not supported by Weir" in line
    env_var = REFUSED[flag][0]
    assert env_var is not None
    p = run_serve(env={env_var: "/etc/weir/server.pem"})
    assert p.returncode == 2 and f"{flag} (from {env_var})" in p.stderr


def test_internal_options_start_with_one_warning(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv: WeirServer = server_factory(
        extra_args=["--num-io-threads", "4", "--datafusion-runtime-type", "multi-thread",
                    "--disable-telemetry-upload", "--traces-exporter", "jaeger",
                    "--parquet-mem-cache-size", "20%", "--aws-credentials-file", "f"],
        env={"INFLUXDB3_QUERY_LOG_SIZE": "100"}).start()
    now = time.time_ns()
    assert srv.write("db", f"m,h=a v=1 {now}").status_code == 204
    assert srv.rows("db", "SELECT v FROM m") == [{"v": 1.0}]
    log = srv.log()
    (named,) = WARNING.findall(log)
    assert named.split(", ") == [
        "--aws-credentials-file", "--query-log-size (from INFLUXDB3_QUERY_LOG_SIZE)",
        "--parquet-mem-cache-size", "--traces-exporter", "--datafusion-runtime-type",
        "--num-io-threads", "--disable-telemetry-upload"]


def test_docs_serve_command_starts(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The form every InfluxDB 3 plugin README uses: node id, file store, data dir,
    plugin dir, auth on; no warning."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    srv: WeirServer = server_factory(plugin_dir=plugins, auth=True).start()
    assert httpx.get(f"{srv.url}/health").status_code == 401  # a token, as the reference
    assert srv.write("db", f"m v=1 {time.time_ns()}").status_code == 401
    assert not WARNING.search(srv.log())


def test_disable_authz_opens_only_the_named_endpoints(server_factory) -> None:  # type: ignore[no-untyped-def]
    # (as in the reference, /health, /ping and /metrics need a token unless named)
    closed: WeirServer = server_factory("closed", auth=True, object_store="memory").start()
    assert httpx.get(f"{closed.url}/metrics").status_code == 401
    srv: WeirServer = server_factory(auth=True, object_store="memory",
                                     extra_args=["--disable-authz", "metrics"]).start()
    r = httpx.get(f"{srv.url}/metrics")
    assert r.status_code == 200 and r.text.endswith("# EOF\n")
    assert srv.write("db", f"m v=1 {time.time_ns()}").status_code == 401


class NodeFromEnvServer(WeirServer):
    """A server started with --node-id-from-env instead of the usual --node-id."""

    def start(self, timeout: float = 30.0) -> WeirServer:
        args = [*weir_cmd(), "serve", "--node-id-from-env", "MY_NODE", "--object-store",
                "file", "--data-dir", str(self.data_dir), "--http-bind",
                f"127.0.0.1:{self.port}", "--without-auth", "--wal-flush-interval", "10ms"]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - the server's stdout until stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server did not become healthy:\n{self.log()}")


def test_node_id_from_env_names_the_data_directory(tmp_path: Path) -> None:
    srv = NodeFromEnvServer(tmp_path / "data", env={"MY_NODE": "node-from-env"})
    try:
        srv.start()
        assert srv.write("db", f"m v=1 {time.time_ns()}").status_code == 204
        assert (tmp_path / "data" / "node-from-env" / "catalog" / f"{1:020d}.json").exists()
    finally:
        srv.stop()


@pytest.mark.parametrize("args,debug", [([], False), (["--log-filter", "debug"], True),
                                        (["-v"], True)])
def test_log_filter_sets_the_level(server_factory, args: list[str], debug: bool) -> None:  # type: ignore[no-untyped-def]
    srv: WeirServer = server_factory(object_store="memory", extra_args=args).start()
    srv.stop()
    assert (" DEBUG " in srv.log()) is debug


def test_package_manager_disabled_refuses_installs(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    srv: WeirServer = server_factory(plugin_dir=plugins, object_store="memory",
                                     extra_args=["--package-manager", "disabled"]).start()
    r = httpx.post(f"{srv.url}/api/v3/configure/plugin_environment/install_packages",
                   json={"packages": ["six"]}, timeout=30)
    assert r.status_code == 403 and "disabled" in r.text


def test_usr1_and_usr2_print_thread_and_task_stacks_and_the_server_goes_on(server_factory) -> None:  # type: ignore[no-untyped-def]
    """What a stuck server is waiting for: SIGUSR1 its threads, SIGUSR2 its asyncio tasks
    (the maintenance loop among them: compaction stops for good if it is gone)."""
    s = server_factory(extra_args=["--compaction-interval", "1s"]).start()
    s.proc.send_signal(signal.SIGUSR1)
    s.proc.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "name='maintenance'" not in s.log():
        time.sleep(0.05)
    log = s.log()
    assert "(most recent call first)" in log and "in serve" in log, log[-3000:]
    tasks = log[log.index("asyncio tasks (SIGUSR2)"):]
    assert "name='maintenance'" in tasks and "in _maintain" in tasks, tasks[:3000]
    assert s.write("db", "m v=1").status_code == 204
    assert s.rows("db", "SELECT v FROM m") == [{"v": 1.0}]


def test_serve_does_not_load_what_a_bare_server_never_uses(server_factory) -> None:  # type: ignore[no-untyped-def]
    """pandas (pyarrow's first list conversion imports it where installed), httpx (the
    CLI's client) and croniter (schedules) cost ~0.35 s of every start between them; a
    server loads them only when something needs them. Python's own import log (-X
    importtime) shows what was loaded."""
    s = server_factory(env={"PYTHONPROFILEIMPORTTIME": "1"}).start()
    assert s.write("db", f"m,h=a v=1 {time.time_ns()}").status_code == 204
    assert s.rows("db", "SELECT h, v FROM m") == [{"h": "a", "v": 1.0}]
    imported = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$",
                              s.log_path.read_text(), re.MULTILINE))
    assert {"pyarrow", "datafusion", "weir.server"} <= imported  # the log is there
    assert not {"pandas.core.api", "httpx._client", "croniter.croniter"} & imported


def test_pandas_still_works_where_asked_for_after_serve_skipped_it() -> None:
    code = ("import sys\n"
            "from weir.cli.serve import _pyarrow_without_pandas\n"
            "_pyarrow_without_pandas()\n"
            "import pyarrow as pa\n"
            "t = pa.table({'a': [1, 2]})\n"
            "assert 'pandas' not in sys.modules\n"
            "import pandas as pd\n"
            "assert t.to_pandas()['a'].tolist() == [1, 2]\n"
            "assert pa.Table.from_pandas(pd.DataFrame({'x': [3]})).column('x').to_pylist() "
            "== [3]\n"
            "assert pa.array(pd.Series([4, 5])).to_pylist() == [4, 5]\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
