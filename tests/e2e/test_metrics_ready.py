"""`/metrics` and `/ready` on a real server, read as their consumers read them.

/metrics is parsed with Prometheus' own text-format parser (prometheus_client) before
and after real writes (good, partial, refused), queries (answered, failed, on a missing
database), unrouted requests and plugin calls of request and WAL triggers, one of which
fails; the counters move by exactly what was done, under InfluxDB 3 Core's names.

/ready answers 503 while a server replays a big WAL (so do /health and every other
route: nothing is served before the data is back), then 200; it needs a token unless
`--disable-authz ready`, and answers 503 again when the object store loses the catalog.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import WeirServer, free_port
from support.cli import poll

Key = tuple[str, frozenset[tuple[str, str]]]


class Scrape:
    """One /metrics answer, parsed: sample values by (sample name, labels), family types."""

    def __init__(self, text: str) -> None:
        self.text = text
        families = list(text_string_to_metric_families(text))
        self.types = {f.name: f.type for f in families}
        self.values: dict[Key, float] = {}
        for f in families:
            for s in f.samples:
                self.values[(s.name, frozenset(s.labels.items()))] = s.value

    def get(self, name: str, **labels: str) -> float:
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def labels_of(self, name: str) -> list[dict[str, str]]:
        return [dict(lbl) for n, lbl in self.values if n == name]


def scrape(s: WeirServer, **kw: Any) -> Scrape:
    r = httpx.get(f"{s.url}/metrics", timeout=30, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert r.text.endswith("# EOF\n")
    return Scrape(r.text)


def http(method: str, path: str, status: str) -> dict[str, str]:
    return {"method": method, "method_path": f"{method} {path}", "path": path,
            "status": status}


REQUEST_PLUGIN = """
def process_request(influxdb3_local, query_parameters, request_headers, request_body,
                    args=None):
    if query_parameters.get("fail"):
        raise RuntimeError("asked to fail")
    return 200, {}, "fine"
"""

WAL_PLUGIN = """
def process_writes(influxdb3_local, table_batches, args=None):
    raise ValueError("wal plugin refuses every batch")
"""


def _create_trigger(s: WeirServer, name: str, plugin: str, spec: str) -> None:
    r = httpx.post(f"{s.url}/api/v3/configure/processing_engine_trigger", json={
        "db": "m1", "plugin_filename": plugin, "trigger_name": name,
        "trigger_specification": spec, "trigger_arguments": None,
        "trigger_settings": {"run_async": False, "error_behavior": "log"},
        "disabled": False}, timeout=60)
    assert r.status_code == 200, r.text


def test_metrics_count_what_was_done_under_the_reference_names(server_factory, tmp_path):  # type: ignore[no-untyped-def]
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "hook.py").write_text(REQUEST_PLUGIN)
    (plugins / "walboom.py").write_text(WAL_PLUGIN)
    s = server_factory(plugin_dir=plugins, extra_args=["--wal-flush-interval", "10ms"]).start()
    s.expect_log(r"error running request plugin: .*asked to fail", count=1)
    s.expect_log(r"error executing wal plugin: .*wal plugin refuses every batch")
    assert httpx.post(f"{s.url}/api/v3/configure/database", json={"db": "m1"}).status_code == 200
    _create_trigger(s, "hook", "hook.py", "request:hook")
    _create_trigger(s, "walboom", "walboom.py", "table:cpu")

    before = scrape(s)
    good = ["cpu,host=a usage=1 1", "cpu,host=b usage=2 2", "cpu,host=c usage=3 3"]
    assert s.write("m1", "\n".join(good), precision="ns").status_code == 204
    partial = ["cpu,host=d usage=4 4", 'cpu,host=e usage="text" 5', "not line protocol"]
    r = s.write("m1", "\n".join(partial), precision="ns")
    assert r.status_code == 400 and "partial write" in r.text
    # refused whole (accept_partial=false): the reference counts nothing for it
    r = s.write("m1", "cpu,host=f usage=6 6\nbroken", precision="ns", accept_partial="false")
    assert r.status_code == 400
    assert s.query("m1", "SELECT count(*) AS n FROM cpu").json() == [{"n": 4}]
    assert s.query("m1", "SELECT no_such_column FROM cpu").status_code >= 400
    assert s.query("no_such_db", "SELECT 1").status_code == 404
    assert httpx.get(f"{s.url}/no/such/path").status_code == 404
    assert httpx.request("BREW", f"{s.url}/no/such/pot").status_code == 404
    assert httpx.get(f"{s.url}/api/v3/engine/hook").text == "fine"
    assert httpx.get(f"{s.url}/api/v3/engine/hook", params={"fail": "1"}).status_code == 500
    wal = {"db": "m1", "trigger": "walboom", "trigger_type": "wal"}
    assert poll(lambda: scrape(s).get("weir_processing_engine_errors_total", **wal) >= 1)
    after = scrape(s)

    def delta(name: str, **labels: str) -> float:
        return after.get(name, **labels) - before.get(name, **labels)

    # the reference's family types
    assert {n: after.types[n] for n in (
        "http_requests", "http_request_duration_seconds", "http_response_body_size_bytes",
        "influxdb3_write_lines", "influxdb3_write_lines_rejected", "influxdb3_write_bytes",
        "influxdb_iox_query_log_phase_entered", "influxdb_iox_query_log_phase_current",
        "influxdb_iox_query_log_end2end_duration_seconds", "object_store_op_duration_seconds",
        "object_store_transfer_bytes", "process_start_time_seconds",
        "weir_processing_engine_calls", "weir_processing_engine_errors", "weir_buffer_bytes",
    )} == {
        "http_requests": "counter", "http_request_duration_seconds": "histogram",
        "http_response_body_size_bytes": "histogram", "influxdb3_write_lines": "counter",
        "influxdb3_write_lines_rejected": "counter", "influxdb3_write_bytes": "counter",
        "influxdb_iox_query_log_phase_entered": "counter",
        "influxdb_iox_query_log_phase_current": "gauge",
        "influxdb_iox_query_log_end2end_duration_seconds": "histogram",
        "object_store_op_duration_seconds": "histogram",
        "object_store_transfer_bytes": "counter", "process_start_time_seconds": "gauge",
        "weir_processing_engine_calls": "counter", "weir_processing_engine_errors": "counter",
        "weir_buffer_bytes": "gauge"}

    # ingest: accepted lines and their bytes (line endings not counted), refused lines
    assert delta("influxdb3_write_lines_total", db="m1") == 4
    assert delta("influxdb3_write_lines_rejected_total", db="m1") == 2
    assert delta("influxdb3_write_bytes_total", db="m1") == sum(map(len, good)) + len(partial[0])

    # HTTP: by routed path, method and outcome; latency and body size for each
    w = "/api/v3/write_lp"
    assert delta("http_requests_total", **http("POST", w, "ok")) == 1
    assert delta("http_requests_total", **http("POST", w, "client_error")) == 2
    assert after.get("http_requests_total", **http("POST", w, "server_error")) == 0
    assert after.get("http_requests_total", **http("POST", w, "aborted")) == 0
    assert delta("http_request_duration_seconds_count", **http("POST", w, "ok")) == 1
    assert delta("http_request_duration_seconds_bucket", le="+Inf",
                 **http("POST", w, "client_error")) == 2
    assert delta("http_response_body_size_bytes_count", **http("POST", w, "client_error")) == 2
    q = "/api/v3/query_sql"
    assert delta("http_requests_total", **http("POST", q, "ok")) == 1
    assert delta("http_requests_total", **http("POST", q, "client_error")) == 1
    # 404s lose their path (the query of a missing database too), as in the reference;
    # unknown paths and methods never become labels
    assert delta("http_requests_total", method="GET", status="client_error") == 1
    assert delta("http_requests_total", method="POST", status="client_error") == 1
    assert delta("http_requests_total", status="client_error") == 1  # BREW
    paths = {lbl.get("path") for lbl in after.labels_of("http_requests_total")}
    assert not any(p and ("/no/such" in p) for p in paths), paths
    assert all(lbl.get("method") != "BREW" for lbl in after.labels_of("http_requests_total"))
    # a request trigger's path is its own label
    e = "/api/v3/engine/hook"
    assert delta("http_requests_total", **http("GET", e, "ok")) == 1
    assert delta("http_requests_total", **http("GET", e, "server_error")) == 1

    # queries: phases and durations of the two that reached a database
    def entered(phase: str) -> float:
        return delta("influxdb_iox_query_log_phase_entered_total", phase=phase)

    assert {p: entered(p) for p in ("received", "planned", "success", "fail", "cancel")} == {
        "received": 2, "planned": 1, "success": 1, "fail": 1, "cancel": 0}
    assert delta("influxdb_iox_query_log_end2end_duration_seconds_count") == 2
    assert delta("influxdb_iox_query_log_plan_duration_seconds_count") == 1
    assert delta("influxdb_iox_query_log_execute_duration_seconds_count") == 1
    assert delta("influxdb_iox_query_log_num_rows_sum") == 1  # one row: the count
    assert after.get("influxdb_iox_query_log_phase_current", phase="received") == 0

    # object store: the WAL files written (conditional puts), timed, with their bytes
    main = {"store_type": "main"}
    assert delta("object_store_op_duration_seconds_count", op="put_opts", result="success",
                 **main) >= 2
    assert after.get("object_store_op_duration_seconds_count", op="put_opts", result="error",
                     **main) == 0
    assert delta("object_store_transfer_bytes_total", op="put_opts", result="success",
                 **main) > 0

    # the processing engine: calls and failures per trigger
    hook = {"db": "m1", "trigger": "hook", "trigger_type": "request"}
    assert delta("weir_processing_engine_calls_total", **hook) == 2
    assert delta("weir_processing_engine_errors_total", **hook) == 1
    assert delta("weir_processing_engine_call_duration_seconds_count", **hook) == 2
    calls = after.get("weir_processing_engine_calls_total", **wal)
    assert calls >= 1 and after.get("weir_processing_engine_errors_total", **wal) == calls

    # Weir's own, under weir_; the reference's process start time
    assert after.get("weir_ready") == 1
    assert after.get("weir_buffer_bytes") > 0
    (start,) = after.labels_of("process_start_time_seconds")
    assert start["product_name"] == "InfluxDB 3 Core"
    assert not any(n.startswith("weir_http") for n in after.types)


def _lp(batch: int, rows: int) -> str:
    base = 1_700_000_000_000_000_000 + batch * rows
    return "\n".join(f"cpu,host=h{j % 50},region=r{j % 7} usage={j * 0.5},idle={j}i "
                     f"{base + j}" for j in range(rows))


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            errors.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors


def _first_answer(s: WeirServer, path: str, deadline_s: float = 60.0) -> httpx.Response:
    """The first answer of a server that is starting (connections refused until then)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            return httpx.get(f"{s.url}{path}", timeout=10)
        except httpx.TransportError:
            time.sleep(0.01)
    raise AssertionError(f"{s.url} did not answer within {deadline_s}s:\n{s.log()[-3000:]}")


@pytest.mark.slow
def test_ready_is_503_while_the_wal_replays_then_200(server_factory):  # type: ignore[no-untyped-def]
    # a big WAL: 20 files of 20,000 rows; no snapshot takes them into Parquet
    s = server_factory(extra_args=["--wal-flush-interval", "10ms"]).start()
    batches, rows = 20, 20_000
    with httpx.Client(timeout=60) as c:
        for b in range(batches):
            r = c.post(f"{s.url}/api/v3/write_lp", params={"db": "big", "precision": "ns"},
                       content=_lp(b, rows).encode())
            assert r.status_code == 204, r.text
    assert httpx.get(f"{s.url}/ready").status_code == 200

    # stopped while it starts, the server ends at once and loses nothing
    s.stop()
    s.port = free_port()
    thread, errors = _in_thread(lambda: s.start(timeout=120))
    r = _first_answer(s, "/ready")
    assert r.status_code == 503, r.text
    assert s.proc is not None
    s.proc.send_signal(signal.SIGTERM)
    s.proc.wait(30)
    thread.join(30)
    # (a fast replay may finish between that answer and the signal: then start() saw it
    # ready; either way the server ended, and the count below shows nothing was lost)
    assert not errors or "server exited" in str(errors[0]), errors
    s.stop()

    s.port = free_port()
    thread, errors = _in_thread(lambda: s.start(timeout=120))
    first = _first_answer(s, "/ready")
    assert first.status_code == 503, first.text
    assert first.json()["status"] == "starting"
    assert "replaying the WAL" in first.json()["reason"]
    # nothing else is served meanwhile: not /health, not a write (whose token could not
    # even be checked yet); /metrics (open here: --without-auth) shows the replay
    during = scrape(s)
    health = httpx.get(f"{s.url}/health")
    write = s.write("big", "cpu,host=late usage=1")
    still_starting = httpx.get(f"{s.url}/ready").status_code == 503
    if still_starting:  # (all of the above happened while it was starting)
        assert during.get("weir_ready") == 0
        assert health.status_code == 503 and "starting" in health.json()["error"]
        assert write.status_code == 503
        assert "cluster-uuid" not in health.headers
    codes = []
    while True:
        r = httpx.get(f"{s.url}/ready", timeout=30)
        codes.append(r.status_code)
        if r.status_code == 200:
            break
        assert r.status_code == 503, r.text
        time.sleep(0.02)
    thread.join(120)
    assert not errors, errors
    assert r.json()["status"] == "ready" and r.json()["up"].endswith("s")
    assert httpx.get(f"{s.url}/health").text == "OK"
    assert "cluster-uuid" in httpx.get(f"{s.url}/health").headers
    late = 1 if write.status_code == 204 else 0  # (the server may just have started)
    assert s.rows("big", "SELECT count(*) AS n FROM cpu") == [{"n": batches * rows + late}]
    after = scrape(s)
    assert after.get("weir_wal_replayed_files") == batches
    assert after.get("weir_ready") == 1
    assert after.get("http_requests_total", **http("GET", "/ready", "server_error")) >= 1


@pytest.mark.file_only("moves the data dir away; test_object_store_outage.py stops S3")
def test_ready_needs_a_token_unless_opened_and_checks_the_object_store(server_factory):  # type: ignore[no-untyped-def]
    s = server_factory(auth=True, extra_args=["--disable-authz", "ready",
                                              "--compaction-interval", "0s"]).start()
    r = httpx.get(f"{s.url}/ready")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready"
    assert httpx.get(f"{s.url}/metrics").status_code == 401  # still needs a token

    # the object store loses the catalog (its directory moved away): not ready
    moved = s.data_dir.with_name(s.data_dir.name + "-away")
    s.data_dir.rename(moved)
    try:
        r = httpx.get(f"{s.url}/ready")
        assert r.status_code == 503, r.text
        assert r.json() == {"status": "unavailable",
                            "reason": "the object store no longer holds the catalog"}
    finally:
        moved.rename(s.data_dir)
    assert httpx.get(f"{s.url}/ready").status_code == 200


def test_ready_needs_a_token_by_default(server_factory):  # type: ignore[no-untyped-def]
    s = server_factory(auth=True).start()
    r = httpx.get(f"{s.url}/ready")
    assert r.status_code == 401
    token = httpx.post(f"{s.url}/api/v3/configure/token/admin").json()["token"]
    r = httpx.get(f"{s.url}/ready", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    m = scrape(s, headers={"Authorization": f"Bearer {token}"})
    assert m.get("http_requests_total", **http("GET", "/ready", "client_error")) == 1
