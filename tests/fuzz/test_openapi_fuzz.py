"""Schemathesis fuzzes real Weir servers against the `/openapi.json` they serve.

Two runs, each against its own server subprocess (conftest's `server_factory`):

* auth on: the operator token is created first and sent as `Authorization: Bearer`;
  schemathesis also checks that every secured operation refuses a missing or bad token;
* `--without-auth --plugin-dir ... --package-manager disabled` (so nothing is ever
  installed from the network): the processing-engine routes exist, and a request
  trigger the test creates (`fuzz_echo`) is among the paths the fuzzer calls.

`POST /api/v3/configure/token/admin/regenerate` is left out: it invalidates the token
the fuzzer uses (tests/test_auth.py covers it).

Checks: all of schemathesis's, except
* `not_a_server_error`, replaced by `weir_server_error` (tests/openapi_fuzz_hooks.py):
  a 5xx passes only where the document lists that status because the reference
  answers it (e.g. 500 `failed to parse trigger from ...`), with the reference's body;
* `unsupported_method`, `allow_header_conformance`: they expect 405 with `Allow` for
  undocumented methods, but the reference answers every unrouted (method, path) with 404
  `Not found` (surface.md §1.0; tests/test_openapi.py checks that);
* `positive_data_acceptance`: it expects every schema-valid request to succeed, but line
  protocol, SQL and InfluxQL text, durations and plugin files are not expressible in
  JSON Schema, so schema-valid requests are often rightly refused with the reference's 400.

Afterwards the server must still answer `/health`, its log must hold no traceback or
error record (checked by conftest's server fixtures, as for every test server), and
the rows written before the run to a database the fuzzer never names (`fuzz_keep_...`)
must be exactly as they were. The number of test cases (schemathesis's report) and of
requests (the server's own `/metrics` counters) is printed and must be above zero; how
far above depends on the machine's load, so it is not a pass condition.

Budget: WEIR_FUZZ_SECONDS per server (default 25; fuzzing repeats until it is spent),
WEIR_FUZZ_EXAMPLES cases per operation per round (default 10), so the file takes about
a minute. A longer local run (see docs/fuzzing-http.md):

    WEIR_FUZZ_SECONDS=300 WEIR_FUZZ_EXAMPLES=100 .venv/bin/python -m pytest -s tests/test_openapi_fuzz.py

WEIR_FUZZ_SEED=<n> replays a run's generation (the seed is printed); in CI (CI=true) a
fixed seed is used so that a submission's result does not depend on the draw.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import WeirServer

HOOKS = Path(__file__).resolve().parent / "openapi_fuzz_hooks.py"
SECONDS = int(os.environ.get("WEIR_FUZZ_SECONDS", "25"))
EXAMPLES = int(os.environ.get("WEIR_FUZZ_EXAMPLES", "10"))
# CI (CI=true) uses a fixed seed, so a landing does not depend on the draw; by hand every
# run generates anew, and WEIR_FUZZ_SEED replays one
SEED = os.environ.get("WEIR_FUZZ_SEED") or ("2070402198" if os.environ.get("CI") else None)
#: how long a single request may take before the fuzzer reports a hang
REQUEST_TIMEOUT_S = 30
EXCLUDED_CHECKS = ["not_a_server_error", "unsupported_method", "allow_header_conformance",
                   "positive_data_acceptance"]
REQUEST_PATH = "fuzz_echo"
ECHO_PLUGIN = '''
def process_request(influxdb3_local, query_parameters, request_headers, request_body,
                    args=None):
    influxdb3_local.info(f"fuzz_echo: {len(request_body)} bytes")
    return {"query": query_parameters, "body_bytes": len(request_body)}
'''
KEEP_ROWS = 200

pytestmark = pytest.mark.timeout(SECONDS * 4 + 180)


def _keep_lp() -> str:
    return "\n".join(f'keep,host=h{i % 7} v={i}i,f={i / 3},s="r{i}" {1_700_000_000 + i}'
                     for i in range(KEEP_ROWS))


def _keep_rows(server: WeirServer, db: str, headers: dict[str, str]) -> list[dict]:
    r = httpx.post(f"{server.url}/api/v3/query_sql", headers=headers, timeout=60,
                   json={"db": db, "q": "SELECT * FROM keep ORDER BY time", "format": "json"})
    assert r.status_code == 200, r.text
    return r.json()


def _requests_by_path(server: WeirServer, headers: dict[str, str]) -> dict[str, int]:
    """`http_requests_total` (InfluxDB 3 Core's name) summed by its path label (a path no
    route serves has the empty label)."""
    r = httpx.get(f"{server.url}/metrics", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    out: dict[str, int] = {}
    for family in text_string_to_metric_families(r.text):
        if family.name != "http_requests":
            continue
        for sample in family.samples:
            if sample.name == "http_requests_total":
                path = sample.labels.get("path", "")
                out[path] = out.get(path, 0) + int(sample.value)
    return out


def _requests_served(server: WeirServer, headers: dict[str, str]) -> int:
    return sum(_requests_by_path(server, headers).values())


def _fuzz(server: WeirServer, tmp_path: Path, name: str, headers: dict[str, str],
          request_path: str = "") -> None:
    keep_db = f"fuzz_keep_{random.getrandbits(40):010x}"
    r = httpx.post(f"{server.url}/api/v3/write_lp", params={"db": keep_db, "precision": "s"},
                   content=_keep_lp().encode(), headers=headers, timeout=30)
    assert r.status_code == 204, r.text
    before = _keep_rows(server, keep_db, headers)
    assert len(before) == KEEP_ROWS
    served_before = _requests_served(server, headers)

    seed = SEED or str(random.randrange(2**31))
    report = tmp_path / f"{name}-report.json"
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
           "--checks", "all", "--exclude-checks", ",".join(EXCLUDED_CHECKS),
           "--exclude-path", "/api/v3/configure/token/admin/regenerate",
           "--max-examples", str(EXAMPLES), "--max-time", str(SECONDS), "--seed", seed,
           "--workers", "1", "--request-timeout", str(REQUEST_TIMEOUT_S),
           "--generation-database", ":memory:", "--no-color",
           "--report", "json", "--report-json-path", str(report)]
    for k, v in headers.items():
        cmd += ["--header", f"{k}: {v}"]
    # One worker thread and no coverage tracer in the fuzzer's own process: Python 3.11.7's
    # ast.parse (hypothesis calls it to describe strategies) can raise "AST constructor
    # recursion depth mismatch" when threads race (CPython gh-106905), which schemathesis
    # reports as an error of the operation it was generating. The fuzzer is not our code.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_PROCESS")}
    env = {**env, "SCHEMATHESIS_HOOKS": str(HOOKS), "WEIR_FUZZ_KEEP_DB": keep_db,
           "WEIR_FUZZ_REQUEST_PATH": request_path}
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=SECONDS * 2 + 120)
    took = time.monotonic() - started
    output = proc.stdout + proc.stderr
    (tmp_path / f"{name}-schemathesis.txt").write_text(output)
    if os.environ.get("WEIR_FUZZ_OUTPUT"):  # keep the whole report (docs/fuzzing-http.md)
        Path(os.environ["WEIR_FUZZ_OUTPUT"]).joinpath(f"{name}-schemathesis.txt").write_text(
            output)

    summary = json.loads(report.read_text()) if report.exists() else {}
    cases = summary.get("test_cases", {}).get("generated", 0)
    served = _requests_served(server, headers) - served_before - 1  # this /metrics call
    print(f"\n[{name}] schemathesis: {cases} test cases, {served} requests served by Weir, "
          f"{len(summary.get('failures', []))} failure kinds, seed {seed}, {took:.1f}s")
    assert proc.returncode == 0, f"schemathesis found problems (seed {seed}):\n{output}"
    # How many cases fit in the time budget depends on the machine's load: no floor
    # beyond "the fuzzer ran and reached Weir" (the counts are printed above).
    assert cases > 0, f"no test case ran:\n{output}"
    # (requests uvicorn refuses as invalid HTTP never reach Weir's counters)
    assert served > 0, f"no request reached Weir:\n{output}"

    # (with auth on, /health needs a token, as in the reference)
    assert httpx.get(f"{server.url}/health", headers=headers, timeout=10).status_code == 200
    assert _keep_rows(server, keep_db, headers) == before, "the fuzzer changed kept rows"
    # no traceback or error record in the server log: the conftest fixtures check that


def test_fuzz_with_auth(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("auth", auth=True,
                            extra_args=["--wal-flush-interval", "10ms"]).start()
    r = httpx.post(f"{server.url}/api/v3/configure/token/admin", timeout=30)
    assert r.status_code == 201, r.text
    _fuzz(server, tmp_path, "auth", {"Authorization": f"Bearer {r.json()['token']}"})


def test_fuzz_without_auth_with_engine(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "fuzz_echo.py").write_text(ECHO_PLUGIN)
    server = server_factory("engine", plugin_dir=plugins, extra_args=[
        "--wal-flush-interval", "10ms", "--package-manager", "disabled"]).start()
    httpx.post(f"{server.url}/api/v3/configure/database", json={"db": "fuzz_engine"},
               timeout=30).raise_for_status()
    r = httpx.post(f"{server.url}/api/v3/configure/processing_engine_trigger", timeout=60,
                   json={"db": "fuzz_engine", "trigger_name": "fuzz_echo",
                         "plugin_filename": "fuzz_echo.py",
                         "trigger_specification": f"request:{REQUEST_PATH}",
                         "trigger_settings": {"run_async": False, "error_behavior": "log"},
                         "disabled": False})
    assert r.status_code == 200, r.text
    assert httpx.get(f"{server.url}/api/v3/engine/{REQUEST_PATH}", timeout=30).status_code == 200
    engine_before = _engine_requests(server)
    _fuzz(server, tmp_path, "engine", {}, request_path=REQUEST_PATH)
    engine_calls = _engine_requests(server) - engine_before
    r = httpx.post(f"{server.url}/api/v3/query_sql", timeout=60, json={
        "db": "_internal", "q": "SELECT count(*) AS n FROM system.processing_engine_logs "
                                "WHERE trigger_name = 'fuzz_echo' AND log_text LIKE 'fuzz_echo:%'"})
    assert r.status_code == 200, r.text
    calls = r.json()[0]["n"] - 1  # less the call above
    print(f"[engine] {engine_calls} of the fuzzer's requests to /api/v3/engine/* reached "
          f"the request trigger; {calls} ran the fuzz_echo plugin")
    # How many engine requests fit in the time budget depends on the machine's load. Half
    # of them name the trigger's path (openapi_fuzz_hooks.py); those the trigger answered
    # must have run the plugin (a few may be refused before it runs: a bad method).
    if engine_calls >= 3:
        assert calls > 0


def _engine_requests(server: WeirServer) -> int:
    """Requests a request trigger answered (those to unknown engine paths are 404s, which
    the reference's metrics count without a path)."""
    return sum(n for path, n in _requests_by_path(server, {}).items()
               if path.startswith("/api/v3/engine"))
