"""The server fixtures watch the server log: an undeclared error fails the test that owns
the server, a declared one does not, and a declared one that never comes fails too.

The fixtures run inside a pytest of their own (pytester) with this suite's conftest, against
real servers whose plugin logs an error through `influxdb3_local.error`.
"""

from __future__ import annotations

import pytest

from conftest import ROOT, parse_log

CONFTEST = ROOT / "tests" / "conftest.py"

INNER = '''
import httpx

PLUGIN = """
def process_request(influxdb3_local, query_parameters, request_headers, request_body,
                    args=None):
    influxdb3_local.error("the plugin failed on purpose: " + query_parameters.get("n", ""))
    return {"ok": True}
"""


def serve(server_factory, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "fail.py").write_text(PLUGIN)
    srv = server_factory(plugin_dir=plugins,
                         extra_args=["--wal-flush-interval", "10ms"]).start()
    assert srv.write("db1", "cpu v=1i").status_code == 204
    r = httpx.post(f"{srv.url}/api/v3/configure/processing_engine_trigger", json={
        "db": "db1", "plugin_filename": "fail.py", "trigger_name": "fail",
        "trigger_specification": "request:fail", "trigger_arguments": None,
        "trigger_settings": {"run_async": False, "error_behavior": "log"},
        "disabled": False}, timeout=30)
    assert r.status_code == 200, r.text
    return srv


def call(srv, n):
    r = httpx.get(f"{srv.url}/api/v3/engine/fail", params={"n": n}, timeout=30)
    assert r.status_code == 200, r.text


def test_undeclared(server_factory, tmp_path):
    call(serve(server_factory, tmp_path), "1")


def test_declared(server_factory, tmp_path):
    srv = serve(server_factory, tmp_path)
    srv.expect_log(r"processing engine \\[fail\\]: the plugin failed on purpose: 2", count=1)
    call(srv, "2")


def test_declared_but_absent(server_factory, tmp_path):
    srv = serve(server_factory, tmp_path)
    srv.expect_log(r"processing engine \\[fail\\]: never logged", count=1)


def test_undeclared_seen_at_stop(server_factory, tmp_path):
    srv = serve(server_factory, tmp_path)
    call(srv, "3")
    srv.stop()
'''


@pytest.mark.slow
def test_the_fixtures_fail_tests_on_undeclared_server_errors(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # the log watch is what is tested, on the file store: the inner run has no tests/support
    # to start an S3 server from
    monkeypatch.delenv("WEIR_TEST_STORE", raising=False)
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_inner=INNER)
    # the inner pytest runs in a subprocess: it imports `conftest` from its own directory
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q",
                                           "-o", "addopts=", timeout=600)
    out = result.stdout.str()
    outcomes = result.parseoutcomes()
    # an error found at teardown is a teardown error of the test; at stop() a failure
    assert outcomes.get("passed") == 3, out  # the three test bodies that did not stop()
    assert outcomes.get("errors") == 2, out
    assert outcomes.get("failed") == 1, out
    assert "ERROR at teardown of test_undeclared " in out, out
    assert "the plugin failed on purpose: 1" in out
    assert "ERROR at teardown of test_declared_but_absent" in out, out
    assert "expected 1 log record(s) matching 'processing engine \\\\[fail\\\\]: never logged'" \
        in out, out
    assert "FAILED test_inner.py::test_undeclared_seen_at_stop" in out, out
    assert "the plugin failed on purpose: 3" in out
    assert "test_declared " not in out.split("short test summary")[-1], out


def test_records_group_tracebacks_and_find_errors() -> None:
    log = (
        "warning: --foo is accepted for compatibility but Weir ignores it\n"
        "2025-01-02 03:04:05,678 INFO weir.server: Weir listening on http://x\n"
        "2025-01-02 03:04:06,000 ERROR weir.database: snapshot failed; the data stays\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "ValueError: boom\n"
        "2025-01-02 03:04:07,000 WARNING weir.engine: processing engine [t]: careful\n"
        "2025-01-02 03:04:08,000 INFO weir.engine.workers: plugin output [t]: Traceback "
        "(most recent call last):\n"
        "ERROR:    Exception in ASGI application\n"
        "2025-01-02 03:04:09,000 INFO weir.database: snapshot failed (an info line)\n"
    )
    records = parse_log(log)
    assert [(r.line_number, r.level, r.bad) for r in records] == [
        (1, None, False), (2, "INFO", False), (3, "ERROR", True), (7, "WARNING", False),
        (8, "INFO", True), (9, "ERROR", True), (10, "INFO", True)]
    assert records[2].text.endswith("ValueError: boom")
