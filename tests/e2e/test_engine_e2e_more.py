"""More of the engine against a real server, over HTTP: Parquet persistence triggers,
gh: plugins from a local repository, package plugins, hot reload, error behaviours,
installing packages offline, memory bombs, and system tables."""

from __future__ import annotations

import http.server
import importlib.util
import os
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from e2e.test_engine_environment import tiny_package
from support.cli import poll as wait_for

TRIGGER = "/api/v3/configure/processing_engine_trigger"


def create_trigger(s, db: str, name: str, plugin: str, spec: str,  # type: ignore[no-untyped-def]
                   args: dict | None = None, error_behavior: str = "log",
                   run_async: bool = False) -> httpx.Response:
    return httpx.post(f"{s.url}{TRIGGER}", json={
        "db": db, "plugin_filename": plugin, "trigger_name": name,
        "trigger_specification": spec, "trigger_arguments": args,
        "trigger_settings": {"run_async": run_async, "error_behavior": error_behavior},
        "disabled": False}, timeout=60)


def rows(s, db: str, sql: str) -> list[dict]:  # type: ignore[no-untyped-def]
    r = s.query(db, sql)
    return r.json() if r.status_code == 200 else []


def logs(s, trigger: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [r["log_text"] for r in rows(
        s, "_internal", "SELECT log_text FROM system.processing_engine_logs "
        f"WHERE trigger_name = '{trigger}' ORDER BY event_time")]


@pytest.fixture
def es(server_factory, tmp_path):  # type: ignore[no-untyped-def]
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    s = server_factory(plugin_dir=plugins, extra_args=[
        "--wal-flush-interval", "10ms", "--wal-snapshot-size", "2",
        "--plugin-call-timeout", "5s"])
    s.start()
    httpx.post(f"{s.url}/api/v3/configure/database", json={"db": "d"})
    return s


def test_parquet_persist_trigger(es):
    (es.plugin_dir / "persisted.py").write_text(
        "def process_parquet_persist(influxdb3_local, persisted_files, args=None):\n"
        "    for f in persisted_files:\n"
        "        influxdb3_local.write(LineBuilder('persisted').tag('t', f['table_name'])"
        ".int64_field('rows', f['row_count']).int64_field('min', f['min_time'])"
        ".string_field('path', f['path']))\n")
    r = create_trigger(es, "d", "on_persist", "persisted.py", "parquet:all_tables")
    assert r.status_code == 200, r.text
    for i in range(6):
        assert es.write("d", f"m v={i} {i + 1}", precision="s").status_code == 204
    got = wait_for(lambda: rows(es, "d", "SELECT t, rows, min, path FROM persisted "
                                         "WHERE t = 'm'"))
    assert got, es.log()
    assert sum(g["rows"] for g in got) >= 2
    files = {f["path"] for f in rows(es, "d", "SELECT path FROM system.parquet_files")}
    assert {g["path"] for g in got} <= files


@pytest.fixture
def plugin_repo(tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    (root / "examples" / "wal_plugin").mkdir(parents=True)
    (root / "examples" / "wal_plugin" / "wal_plugin.py").write_text(
        "def process_writes(influxdb3_local, table_batches, args=None):\n"
        "    for b in table_batches:\n"
        "        if b['table_name'] != 'write_reports':\n"
        "            influxdb3_local.write(LineBuilder('write_reports')"
        ".tag('table_name', b['table_name']).int64_field('row_count', len(b['rows'])))\n"
        "    influxdb3_local.info('wal_plugin.py done')\n")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):  # type: ignore[no-untyped-def]
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):  # type: ignore[no-untyped-def]
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()


def test_gh_plugins_come_from_the_configured_repository(server_factory, tmp_path, plugin_repo):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    s = server_factory(plugin_dir=plugins, extra_args=[
        "--wal-flush-interval", "10ms", "--plugin-repo", plugin_repo]).start()
    httpx.post(f"{s.url}/api/v3/configure/database", json={"db": "d"})
    r = httpx.post(f"{s.url}/api/v3/plugin_test/wal", json={
        "filename": "gh:examples/wal_plugin/wal_plugin.py", "database": "_testdb",
        "input_lp": "test_input,t=a v=1 1"}, timeout=60)
    assert r.status_code == 200, r.text
    assert "INFO: wal_plugin.py done" in r.json()["log_lines"]
    assert r.json()["database_writes"]["_testdb"] == [
        "write_reports,table_name=test_input row_count=1i"]
    r = create_trigger(s, "d", "gh_missing", "gh:not_a_file.py", "all_tables")
    assert r.status_code == 500 and "error fetching plugin from repository: 404" in r.text
    r = create_trigger(s, "d", "gh", "gh:examples/wal_plugin/wal_plugin.py", "all_tables")
    assert r.status_code == 200, r.text
    s.write("d", "cpu,host=a v=1")
    assert wait_for(lambda: rows(s, "d", "SELECT row_count FROM write_reports"))


def test_package_plugin_and_hot_reload(es):
    pkg = es.plugin_dir / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from .helpers import answer\n"
        "def process_request(influxdb3_local, q, h, body, args=None):\n"
        "    return {'answer': answer()}\n")
    (pkg / "helpers.py").write_text("def answer():\n    return 1\n")
    (es.plugin_dir / "single.py").write_text(
        "def process_request(influxdb3_local, q, h, body, args=None):\n    return 'v1'\n")
    assert create_trigger(es, "d", "pkg", "mypkg", "request:pkg").status_code == 200
    assert create_trigger(es, "d", "single", "single.py", "request:a/b").status_code == 200
    assert httpx.get(f"{es.url}/api/v3/engine/pkg").json() == {"answer": 1}
    assert httpx.get(f"{es.url}/api/v3/engine/a/b").text == "v1"
    (pkg / "helpers.py").write_text("def answer():\n    return 2\n")
    (es.plugin_dir / "single.py").write_text(
        "def process_request(influxdb3_local, q, h, body, args=None):\n    return 'v2'\n")
    for f in (pkg / "helpers.py", es.plugin_dir / "single.py"):
        # an edit within the file system's timestamp granularity must not look unchanged:
        # move the modification time on explicitly instead of sleeping before the edit
        st = f.stat()
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))
    assert wait_for(lambda: httpx.get(f"{es.url}/api/v3/engine/pkg").json() == {"answer": 2})
    assert httpx.get(f"{es.url}/api/v3/engine/a/b").text == "v2"


def test_error_behaviors(es):
    (es.plugin_dir / "fails.py").write_text(
        "def process_writes(influxdb3_local, table_batches, args=None):\n"
        "    if not table_batches:\n"
        "        return  # a table: trigger is called for every flush, as the reference does\n"
        "    n = influxdb3_local.cache.get('n', default=0) + 1\n"
        "    influxdb3_local.cache.put('n', n)\n"
        "    if n < 3:\n"
        "        raise RuntimeError(f'attempt {n}')\n"
        "    influxdb3_local.write(LineBuilder('done').int64_field('attempts', n))\n")
    (es.plugin_dir / "always.py").write_text(
        "def process_writes(influxdb3_local, table_batches, args=None):\n"
        "    if table_batches:\n"
        "        raise RuntimeError('always broken')\n")
    # the plugins fail on purpose: two attempts of the retrying trigger, one call of the
    # disabling one and the notice that it was disabled
    es.expect_log(r"ERROR weir\.engine: processing engine \[retrying\]: error executing wal "
                  r"plugin: RuntimeError: attempt [12]; will retry in \d+s \(attempt [12] of 10\)"
                  r"\n(?s:.*)raise RuntimeError\(f'attempt \{n\}'\)", count=2)
    es.expect_log(r"ERROR weir\.engine: processing engine \[disabling\]: error executing wal "
                  r"plugin: RuntimeError: always broken\n", count=1)
    es.expect_log(r"ERROR weir\.engine: processing engine \[disabling\]: trigger disabling was "
                  r"disabled because of an error \(error_behavior=disable\)", count=1)
    assert create_trigger(es, "d", "retrying", "fails.py", "table:m",
                          error_behavior="retry").status_code == 200
    assert create_trigger(es, "d", "disabling", "always.py", "table:m",
                          error_behavior="disable").status_code == 200
    es.write("d", "m v=1")
    got = wait_for(lambda: rows(es, "d", "SELECT attempts FROM done"))
    assert got == [{"attempts": 3}]  # the same batch was retried until it succeeded
    trig = wait_for(lambda: [t for t in rows(
        es, "d", "SELECT trigger_name, disabled, error_behavior "
        "FROM system.processing_engine_triggers WHERE trigger_name = 'disabling'")
        if t["disabled"]])
    assert trig == [{"trigger_name": "disabling", "disabled": True,
                     "error_behavior": "disable"}]
    text = " ".join(logs(es, "disabling"))
    assert "always broken" in text and "Traceback" in text


def test_memory_bomb_is_contained(server_factory, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "bomb.py").write_text(
        "def process_request(influxdb3_local, q, h, body, args=None):\n"
        "    chunks = []\n"
        "    while True:\n"
        "        chunks.append(bytearray(50 * 1024 * 1024))\n")
    (plugins / "fine.py").write_text(
        "def process_request(influxdb3_local, q, h, body, args=None):\n    return 'fine'\n")
    s = server_factory(plugin_dir=plugins, env={"WEIR_PLUGIN_MEMORY_LIMIT": str(512 * 2**20)},
                       extra_args=["--wal-flush-interval", "10ms"]).start()
    httpx.post(f"{s.url}/api/v3/configure/database", json={"db": "d"})
    # both calls of the bomb end in the worker's memory limit, logged as the plugin's error
    s.expect_log(r"ERROR weir\.engine: processing engine \[bomb\]: error running request "
                 r"plugin: MemoryError\n", count=2)
    assert create_trigger(s, "d", "bomb", "bomb.py", "request:bomb").status_code == 200
    assert create_trigger(s, "d", "fine", "fine.py", "request:fine").status_code == 200
    r = httpx.get(f"{s.url}/api/v3/engine/bomb", timeout=120)
    assert (r.status_code == 500 and "MemoryError" in r.text) or "memory" in r.text.lower()
    assert httpx.get(f"{s.url}/api/v3/engine/fine").text == "fine"
    assert s.write("d", "m v=1").status_code == 204
    assert httpx.get(f"{s.url}/api/v3/engine/bomb", timeout=120).status_code == 500


def test_install_package_offline_into_the_plugin_venv(es, tmp_path):
    src = tiny_package(tmp_path)  # an in-tree build backend: no index needed
    (es.plugin_dir / "uses.py").write_text(
        "import weir_tinypkg\n"
        "def process_request(influxdb3_local, q, h, body, args=None):\n"
        "    return {'value': weir_tinypkg.VALUE}\n")
    r = httpx.post(f"{es.url}/api/v3/configure/plugin_environment/install_packages",
                   json={"packages": [str(src)]}, timeout=300)
    assert r.status_code == 200, r.text
    assert create_trigger(es, "d", "uses", "uses.py", "request:uses").status_code == 200
    assert httpx.get(f"{es.url}/api/v3/engine/uses", timeout=60).json() == {"value": 42}
    # the server's own environment is untouched
    assert importlib.util.find_spec("weir_tinypkg") is None
    venv = es.plugin_dir / ".venv"
    assert list(venv.glob("lib/python3*/site-packages/weir_tinypkg"))
    assert sys.prefix != str(venv)


def test_system_tables_and_arguments(es):
    (es.plugin_dir / "w.py").write_text(
        "def process_writes(influxdb3_local, table_batches, args=None):\n    pass\n")
    assert create_trigger(es, "d", "t1", "w.py", "table:cpu",
                          args={"a": "1", "b": "x=y"}).status_code == 200
    got = rows(es, "d", "SELECT * FROM system.processing_engine_triggers")
    # Weir's WAL columns (JSON rows leave out nulls: no lag in seconds or error yet)
    wal = {k: got[0].pop(k, None) for k in (
        "delivery", "wal_checkpoint", "wal_lag_files", "wal_lag_rows", "wal_lag_seconds",
        "wal_lagging", "wal_skipped_files", "last_error")} if got else {}
    assert wal["delivery"] == "exactly once for buffered writes; on error: log and skip"
    assert wal["wal_checkpoint"] >= 0 and wal["wal_lag_files"] >= 0
    assert (wal["wal_lagging"], wal["wal_skipped_files"], wal["last_error"]) == (False, 0, None)
    assert got == [{"trigger_name": "t1", "plugin_filename": "w.py",
                    "trigger_specification": '{"single_table_wal_write":{"table_name":"cpu"}}',
                    "disabled": False, "error_behavior": "log", "public": False,
                    "catch_up": False, "node_spec": "all"}]
    got = rows(es, "d", "SELECT argument_key, argument_value FROM "
                        "system.processing_engine_trigger_arguments ORDER BY argument_key")
    assert got == [{"argument_key": "a", "argument_value": "1"},
                   {"argument_key": "b", "argument_value": "x=y"}]
    files = rows(es, "_internal", "SELECT plugin_name, file_name FROM system.plugin_files")
    assert {"plugin_name": "t1", "file_name": "w.py"} in files
    r = create_trigger(es, "d", "t1", "w.py", "table:cpu")
    assert r.status_code == 409
    assert httpx.request("DELETE", f"{es.url}{TRIGGER}",
                         json={"db": "d", "trigger_name": "t1"}).status_code == 500
    assert httpx.request("DELETE", f"{es.url}{TRIGGER}",
                         json={"db": "d", "trigger_name": "t1", "force": True}
                         ).status_code == 200


def test_restart_keeps_disabled_triggers_disabled(es):
    (es.plugin_dir / "w.py").write_text(
        "def process_writes(influxdb3_local, table_batches, args=None):\n"
        "    for b in table_batches:\n"
        "        for r in b['rows']:\n"
        "            influxdb3_local.write(LineBuilder('seen').int64_field('n', r['v']))\n")
    assert create_trigger(es, "d", "t", "w.py", "table:m").status_code == 200
    r = httpx.post(f"{es.url}{TRIGGER}/disable", params={"db": "d", "trigger_name": "t"})
    assert r.status_code == 200
    es.restart()
    assert es.write("d", "m v=1i").status_code == 204
    time.sleep(1.0)
    assert rows(es, "d", "SELECT n FROM seen") == []  # it did not run while disabled
    r = httpx.post(f"{es.url}{TRIGGER}/enable", params={"db": "d", "trigger_name": "t"})
    assert r.status_code == 200
    assert es.write("d", "m v=2i").status_code == 204
    # enabled again, it resumes at its checkpoint: the row written while it was disabled
    # first (its WAL file is still there), then the new one
    assert wait_for(lambda: len(rows(es, "d", "SELECT n FROM seen")) >= 2)
    assert rows(es, "d", "SELECT n FROM seen ORDER BY time") == [{"n": 1}, {"n": 2}]


def test_plugin_calls_its_own_server_while_running(es):
    (es.plugin_dir / "notify.py").write_text(
        "def process_request(influxdb3_local, q, h, body, args=None):\n"
        "    influxdb3_local.write(LineBuilder('notified').string_field('msg', body.decode()))\n"
        "    return 'ok'\n")
    (es.plugin_dir / "alert.py").write_text(
        "import urllib.request\n"
        "def process_writes(influxdb3_local, table_batches, args=None):\n"
        "    if not table_batches:\n"
        "        return\n"
        "    req = urllib.request.Request(f\"http://127.0.0.1:{args['port']}/api/v3/engine/notify\","
        " data=b'alert!', headers={'Authorization': 'Bearer x'})\n"
        "    urllib.request.urlopen(req, timeout=10).read()\n")
    assert create_trigger(es, "d", "notify", "notify.py", "request:notify").status_code == 200
    assert create_trigger(es, "d", "alert", "alert.py", "table:m",
                          args={"port": str(es.port)}).status_code == 200
    es.write("d", "m v=1")
    assert wait_for(lambda: rows(es, "d", "SELECT msg FROM notified")) == [{"msg": "alert!"}]


def test_bad_plugins_are_refused_at_creation(es):
    (es.plugin_dir / "syntax.py").write_text("def process_writes(a, b, c:\n")
    r = create_trigger(es, "d", "s", "syntax.py", "all_tables")
    assert r.status_code >= 400 and "SyntaxError" in r.text
    r = create_trigger(es, "_internal", "x", "syntax.py", "all_tables")
    assert r.status_code >= 400
    r = create_trigger(es, "nodb", "x", "syntax.py", "all_tables")
    assert r.status_code >= 400
    bad = es.plugin_dir.parent / "outside.py"
    bad.write_text("def process_writes(a, b, c):\n    pass\n")
    (es.plugin_dir / "link.py").symlink_to(bad)
    r = create_trigger(es, "d", "l", "link.py", "all_tables")
    assert r.status_code == 500 and "Path traversal" in r.text
    assert Path(bad).exists()
