"""The `influxdb3` CLI against a tiny recording HTTP server: each command sends the
reference's exact request and prints the reference's message; bad arguments and
failures are one clear line on stderr, never a traceback."""

from __future__ import annotations

import gzip
import json
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
import pytest
from click.testing import CliRunner, Result

from weir.cli.main import cli

# ---- a recording server -------------------------------------------------------------------


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, str | bytes, str]  # status, body, content type


@dataclass
class FakeServer:
    url: str
    requests: list[Req] = field(default_factory=list)
    routes: dict[tuple[str, str], Reply | Callable[[Req], Reply]] = field(default_factory=dict)

    def reply(self, method: str, path: str, status: int = 200, body: str | bytes | Any = b"",
              content_type: str = "text/plain") -> None:
        if not isinstance(body, str | bytes):
            body, content_type = json.dumps(body), "application/json"
        self.routes[(method, path)] = (status, body, content_type)

    def on(self, method: str, path: str, fn: Callable[[Req], Reply]) -> None:
        self.routes[(method, path)] = fn

    @property
    def last(self) -> Req:
        assert self.requests, "no request was sent"
        return self.requests[-1]


def _handler(srv: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            parts = urlsplit(self.path)
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            req = Req(self.command, parts.path,
                      {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                      {k.lower(): v for k, v in self.headers.items()}, body)
            srv.requests.append(req)
            route = srv.routes.get((self.command, parts.path), (200, b"", "text/plain"))
            status, out, ctype = route(req) if callable(route) else route
            data = out.encode() if isinstance(out, str) else out
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _any

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the write tests open many connections at once
    daemon_threads = True


@pytest.fixture
def srv() -> Iterator[FakeServer]:
    fake = FakeServer(url="")
    httpd = _Server(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    t = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    t.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("INFLUXDB3_", "WEIR_")) or name == "VIRTUAL_ENV":
            monkeypatch.delenv(name, raising=False)


def run(srv: FakeServer | None, *args: str, input: str | bytes | None = None,
        env: dict[str, str] | None = None) -> Result:
    e = {"INFLUXDB3_HOST_URL": srv.url} if srv is not None else {}
    e.update(env or {})
    result = CliRunner().invoke(cli, list(args), input=input, env=e, prog_name="influxdb3")
    assert "Traceback" not in result.output, result.output
    return result


def one_line_error(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    err = result.stderr.strip()
    assert err and "\n" not in err, result.stderr
    return err


# ---- databases and tables -----------------------------------------------------------------


def test_create_database(srv: FakeServer) -> None:
    r = run(srv, "create", "database", "mydb")
    assert r.exit_code == 0, r.output
    assert r.stdout == 'Database "mydb" created successfully\n'
    req = srv.last
    assert (req.method, req.path) == ("POST", "/api/v3/configure/database")
    assert req.json == {"db": "mydb", "retention_period": None}
    assert req.headers["content-type"] == "application/json"


def test_create_database_retention_is_sent_canonical(srv: FakeServer) -> None:
    assert run(srv, "create", "database", "mydb", "--retention-period", "30d").exit_code == 0
    assert srv.last.json == {"db": "mydb", "retention_period": "30days"}
    r = run(srv, "create", "database", "mydb", "--retention-period", "soon")
    assert "--retention-period" in one_line_error(r, 2)


def test_create_database_name_from_env(srv: FakeServer) -> None:
    r = run(srv, "create", "database", env={"INFLUXDB3_DATABASE_NAME": "envdb"})
    assert r.stdout == 'Database "envdb" created successfully\n'
    assert srv.last.json["db"] == "envdb"


def test_server_error_is_one_line(srv: FakeServer) -> None:
    srv.reply("POST", "/api/v3/configure/database", 409,
              "attempted to create a resource that already exists")
    r = run(srv, "create", "database", "mydb")
    assert one_line_error(r) == ("Failed to create database: server responded with error "
                                 "[409 Conflict]: attempted to create a resource that already "
                                 "exists")
    assert r.stdout == ""


def test_json_error_bodies_are_unwrapped(srv: FakeServer) -> None:
    srv.reply("POST", "/api/v3/configure/database", 400, {"error": "db name cannot be empty"})
    err = one_line_error(run(srv, "create", "database", "x"))
    assert err.endswith("[400 Bad Request]: db name cannot be empty")


def test_unauthorized_hints_at_token(srv: FakeServer) -> None:
    srv.reply("GET", "/api/v3/configure/database", 401,
              {"error": "the request was not authenticated"})
    err = one_line_error(run(srv, "show", "databases"))
    assert "the request was not authenticated" in err and "--token" in err


def test_create_table(srv: FakeServer) -> None:
    r = run(srv, "create", "table", "cpu", "-d", "mydb", "--tags", "host,region",
            "--fields", "usage:float64,cores:int64,ok:bool")
    assert r.stdout == 'Table "mydb"."cpu" created successfully\n'
    assert srv.last.path == "/api/v3/configure/table"
    assert srv.last.json == {"db": "mydb", "table": "cpu", "tags": ["host", "region"],
                             "fields": [{"name": "usage", "type": "float64"},
                                        {"name": "cores", "type": "int64"},
                                        {"name": "ok", "type": "bool"}]}


def test_create_table_bad_field_type(srv: FakeServer) -> None:
    err = one_line_error(run(srv, "create", "table", "cpu", "-d", "db", "--fields", "a:float"), 2)
    assert "float is not a valid data type" in err and "--fields" in err
    assert srv.requests == []


def test_delete_database_prompts(srv: FakeServer) -> None:
    r = run(srv, "delete", "database", "mydb", input="no\n")
    assert r.exit_code == 1
    assert "Are you sure you want to delete \"mydb\"? Enter 'yes' or 'y' to confirm" in r.stderr
    assert "Cannot proceed without confirmation" in r.stderr
    assert srv.requests == []
    r = run(srv, "delete", "database", "mydb", input="y\n")
    assert r.exit_code == 0 and r.stdout == 'Database "mydb" deleted successfully\n'
    assert (srv.last.method, srv.last.path, srv.last.query) == (
        "DELETE", "/api/v3/configure/database", {"db": "mydb"})
    run(srv, "delete", "database", "mydb", "--yes", "--hard-delete", "NOW")
    assert srv.last.query == {"db": "mydb", "hard_delete_at": "now"}


def test_delete_table(srv: FakeServer) -> None:
    r = run(srv, "delete", "table", "cpu", "-d", "mydb", "-y", "--hard-delete",
            "2024-06-18T10:30:00Z")
    assert r.stdout == 'Table "mydb"."cpu" deleted successfully\n'
    assert srv.last.method == "DELETE" and srv.last.path == "/api/v3/configure/table"
    assert srv.last.query == {"db": "mydb", "table": "cpu",
                              "hard_delete_at": "2024-06-18T10:30:00Z"}


def test_update_database(srv: FakeServer) -> None:
    r = run(srv, "update", "database", "-d", "mydb", "-r", "7d")
    assert r.stdout == 'Database "mydb" updated successfully\n'
    assert (srv.last.method, srv.last.json) == ("PUT", {"db": "mydb", "retention_period": "7days"})
    run(srv, "update", "database", "--database", "mydb", "--retention-period", "none")
    assert srv.last.json == {"db": "mydb", "retention_period": None}


def test_caches(srv: FakeServer) -> None:
    srv.reply("POST", "/api/v3/configure/last_cache", 201, {"id": 1})
    r = run(srv, "create", "last_cache", "-d", "db", "-t", "cpu", "--key-columns", "host",
            "--value-columns", "usage", "lc")
    assert r.stdout.startswith("new cache created: {")
    assert srv.last.json == {"db": "db", "table": "cpu", "name": "lc", "key_columns": ["host"],
                             "value_columns": ["usage"], "count": 1, "ttl": 14400}
    srv.reply("POST", "/api/v3/configure/distinct_cache", 204)
    r = run(srv, "create", "distinct_cache", "-d", "db", "-t", "cpu", "--columns", "a,b")
    assert r.stdout == "a cache already exists for the provided parameters\n"
    assert srv.last.json == {"db": "db", "table": "cpu", "columns": ["a", "b"],
                             "max_cardinality": 100000, "max_age": 86400}
    r = run(srv, "delete", "last_cache", "-d", "db", "-t", "cpu", "lc")
    assert r.stdout == "last cache deleted successfully\n"
    assert (srv.last.method, srv.last.json) == ("DELETE", {"db": "db", "table": "cpu",
                                                           "name": "lc"})


# ---- triggers -----------------------------------------------------------------------------


def test_create_trigger_as_in_the_seed(srv: FakeServer) -> None:
    r = run(srv, "create", "trigger", "--database", "monitoring", "--plugin-filename",
            "examples/wal_plugin/wal_plugin.py", "--trigger-spec", "all_tables",
            "--trigger-arguments", "double_count_table=temperature", "wal_monitoring_special")
    assert r.exit_code == 0, r.output
    assert r.stdout == "Trigger wal_monitoring_special created successfully\n"
    assert (srv.last.method, srv.last.path) == ("POST",
                                                "/api/v3/configure/processing_engine_trigger")
    assert srv.last.json == {
        "db": "monitoring", "plugin_filename": "examples/wal_plugin/wal_plugin.py",
        "trigger_name": "wal_monitoring_special", "trigger_specification": "all_tables",
        "trigger_arguments": {"double_count_table": "temperature"},
        "trigger_settings": {"run_async": False, "error_behavior": "log"}, "disabled": False}


def test_create_trigger_options_and_canonical_spec(srv: FakeServer) -> None:
    r = run(srv, "create", "trigger", "-d", "db", "--plugin", "test_plugin", "--trigger-spec",
            "every:60s", "--trigger-arguments", "a=1,b=x=y", "--disabled", "--run-asynchronous",
            "--error-behavior", "retry", "t1")
    assert r.exit_code == 0, r.output
    body = srv.last.json
    assert body["plugin_filename"] == "test_plugin"
    assert body["trigger_specification"] == "every:1m"
    assert body["trigger_arguments"] == {"a": "1", "b": "x=y"}
    assert body["trigger_settings"] == {"run_async": True, "error_behavior": "retry"}
    assert body["disabled"] is True
    run(srv, "create", "trigger", "-d", "db", "--path", "p.py", "--trigger-spec",
        "  table:cpu ", "t2")
    assert srv.last.json["trigger_specification"] == "table:cpu"
    assert srv.last.json["trigger_arguments"] is None


def test_create_trigger_catch_up(srv: FakeServer) -> None:
    r = run(srv, "create", "trigger", "-d", "db", "--path", "p.py", "--trigger-spec",
            "every:1h", "--catch-up", "hourly")
    assert r.exit_code == 0, r.output
    assert srv.last.json["trigger_settings"] == {"run_async": False, "error_behavior": "log",
                                                 "catch_up": True}
    help_text = run(srv, "create", "trigger", "--help").stdout
    assert "--catch-up" in help_text and "--trigger-spec every:1h" in help_text


@pytest.mark.parametrize("args,needle", [
    (["--trigger-spec", "bogus", "--path", "p.py"], "--trigger-spec"),
    (["--trigger-spec", "every:soon", "--path", "p.py"], "couldn't parse to duration"),
    (["--trigger-spec", "cron:* * * * *", "--path", "p.py"], "--trigger-spec"),
    (["--trigger-spec", "all_tables"], "--path or --plugin-filename"),
    (["--trigger-spec", "all_tables", "--path", "a.py", "--plugin-filename", "b.py"], "not both"),
    (["--trigger-spec", "all_tables", "--path", "a.py", "--trigger-arguments", "novalue"],
     'key=value'),
    (["--trigger-spec", "all_tables", "--path", "a.py", "--error-behavior", "panic"],
     "--error-behavior"),
])
def test_create_trigger_bad_arguments(srv: FakeServer, args: list[str], needle: str) -> None:
    err = one_line_error(run(srv, "create", "trigger", "-d", "db", *args, "t"), 2)
    assert needle in err
    assert srv.requests == []


def test_create_trigger_server_error(srv: FakeServer) -> None:
    srv.reply("POST", "/api/v3/configure/processing_engine_trigger", 500,
              "Plugin error: reading plugin file: Plugin not found: /p/x.py")
    err = one_line_error(run(srv, "create", "trigger", "-d", "db", "--path", "x.py",
                             "--trigger-spec", "all_tables", "t"))
    assert err.startswith("Failed to create trigger: server responded with error [500 ")
    assert err.endswith("Plugin not found: /p/x.py")


def test_create_trigger_upload_file(srv: FakeServer, tmp_path: Path) -> None:
    plugin = tmp_path / "sub" / "my_plugin.py"
    plugin.parent.mkdir()
    plugin.write_text("def process_writes(a, b, args=None):\n    pass\n")
    r = run(srv, "create", "trigger", "-d", "db", "--path", str(plugin), "--upload",
            "--trigger-spec", "all_tables", "t")
    assert r.exit_code == 0, r.output
    upload, create = srv.requests
    assert (upload.method, upload.path, upload.query) == ("POST", "/api/v3/plugins/files",
                                                         {"db": "db"})
    assert upload.json == {"plugin_name": "my_plugin.py", "content": plugin.read_text()}
    assert create.json["plugin_filename"] == "my_plugin.py"


def test_create_trigger_upload_directory(srv: FakeServer, tmp_path: Path) -> None:
    pkg = tmp_path / "my_pkg"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__pycache__").mkdir()
    (pkg / "__init__.py").write_text("from .utils import f\n")
    (pkg / "utils.py").write_text("def f(): pass\n")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "models" / "processor.py").write_text("X = 1\n")
    (pkg / "__pycache__" / "utils.cpython-311.py").write_text("junk")
    (pkg / "README.md").write_text("not python")
    r = run(srv, "create", "trigger", "-d", "db", "--path", str(pkg), "--upload",
            "--trigger-spec", "every:10s", "t")
    assert r.exit_code == 0, r.output
    uploads = [q.json["plugin_name"] for q in srv.requests[:-1]]
    assert sorted(uploads) == ["my_pkg/__init__.py", "my_pkg/models/__init__.py",
                               "my_pkg/models/processor.py", "my_pkg/utils.py"]
    assert srv.last.json["plugin_filename"] == "my_pkg"


def test_create_trigger_upload_errors(srv: FakeServer, tmp_path: Path) -> None:
    err = one_line_error(run(srv, "create", "trigger", "-d", "db", "--upload", "--path",
                             str(tmp_path / "nope.py"), "--trigger-spec", "all_tables", "t"))
    assert err == f"Failed to create trigger: File not found: {tmp_path / 'nope.py'}"
    (tmp_path / "pkg").mkdir()
    err = one_line_error(run(srv, "create", "trigger", "-d", "db", "--upload", "--path",
                             str(tmp_path / "pkg"), "--trigger-spec", "all_tables", "t"))
    assert "must contain __init__.py" in err
    assert srv.requests == []


def test_delete_enable_disable_trigger(srv: FakeServer) -> None:
    r = run(srv, "delete", "trigger", "--database", "db", "--force", "t1")
    assert r.stdout == "Trigger t1 deleted successfully\n"
    assert (srv.last.method, srv.last.path) == ("DELETE",
                                                "/api/v3/configure/processing_engine_trigger")
    assert srv.last.json == {"db": "db", "trigger_name": "t1", "force": True}
    for verb in ("enable", "disable"):
        r = run(srv, verb, "trigger", "--database", "sensors", "trigger1")
        assert r.stdout == f"Trigger trigger1 {verb}d successfully\n"
        assert (srv.last.method, srv.last.path, srv.last.query, srv.last.body) == (
            "POST", f"/api/v3/configure/processing_engine_trigger/{verb}",
            {"db": "sensors", "trigger_name": "trigger1"}, b"")


def test_update_trigger(srv: FakeServer, tmp_path: Path) -> None:
    f = tmp_path / "p.py"
    f.write_text("code")
    r = run(srv, "update", "trigger", "-d", "db", "-t", "t1", "-p", str(f))
    assert r.stdout == "Trigger 't1' updated successfully\n"
    assert (srv.last.method, srv.last.path, srv.last.query) == ("PUT", "/api/v3/plugins/files",
                                                               {"db": "db"})
    assert srv.last.json == {"plugin_name": "t1", "content": "code"}
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("init")
    (pkg / "helper.py").write_text("helper")
    r = run(srv, "update", "trigger", "--database", "db", "--trigger-name", "t2", "--path",
            str(pkg))
    assert r.stdout == "Trigger 't2' updated successfully (atomic directory replacement)\n"
    assert srv.last.path == "/api/v3/plugins/directory"
    assert srv.last.json == {"plugin_name": "t2", "files": [
        {"relative_path": "__init__.py", "content": "init"},
        {"relative_path": "helper.py", "content": "helper"}]}
    err = one_line_error(run(srv, "update", "trigger", "-d", "db", "-t", "t", "-p", "/no/such"))
    assert "Path does not exist: /no/such" in err


# ---- show ---------------------------------------------------------------------------------


def test_show_databases(srv: FakeServer) -> None:
    srv.reply("GET", "/api/v3/configure/database", 200, "+---+\n| x |\n+---+")
    r = run(srv, "show", "databases")
    assert r.stdout == "+---+\n| x |\n+---+\n"
    assert srv.last.query == {"show_deleted": "false", "format": "pretty"}
    run(srv, "show", "databases", "--show-deleted", "--format", "jsonl")
    assert srv.last.query == {"show_deleted": "true", "format": "json_lines"}


@pytest.mark.parametrize("cmd,sql", [
    (["show", "plugins"], "SELECT * FROM system.plugin_files"),
    (["show", "tokens"], "select * from system.tokens"),
])
def test_show_internal_tables(srv: FakeServer, cmd: list[str], sql: str) -> None:
    srv.reply("POST", "/api/v3/query_sql", 200, "table")
    r = run(srv, *cmd, "--format", "csv")
    assert r.stdout == "table\n"
    assert srv.last.json == {"db": "_internal", "q": sql, "format": "csv", "params": None}


def test_show_system_table(srv: FakeServer) -> None:
    run(srv, "show", "system", "--database", "db", "table", "parquet_files", "--limit", "5")
    assert srv.last.json["q"] == ('SELECT * FROM system."parquet_files"\nORDER BY size_bytes\n'
                                  "LIMIT 5")
    run(srv, "show", "system", "table", "queries", "-d", "db", "-s", "a,b", "-o", "a", "-l", "0")
    assert srv.last.json["db"] == "db"
    assert srv.last.json["q"] == ('SELECT a,b FROM system."queries"\nWHERE query_text !~ '
                                  "'.*(select.queries.|information_schema)*'\nORDER BY a")
    err = one_line_error(run(srv, "show", "system", "table-list"), 2)
    assert "--database" in err


def test_show_summary(srv: FakeServer) -> None:
    def answer(req: Req) -> Reply:
        q = req.json["q"]
        if "information_schema.tables" in q:
            rows: list[dict[str, Any]] = [{"table_name": "cpu"}, {"table_name": "mem"}]
        elif "processing_engine_triggers" in q:
            rows = [{"trigger_name": "t1", "plugin_filename": "wal.py",
                     "trigger_specification": '"all_tables_wal_write"', "disabled": False,
                     "error_behavior": "log", "delivery": "exactly once"},
                    {"trigger_name": "t2", "plugin_filename": "sched.py",
                     "trigger_specification": '{"every":{"duration":{"secs":90,"nanos":0}}}',
                     "disabled": True, "error_behavior": "retry", "catch_up": True}]
        else:
            rows = [{"trigger_name": "t1", "argument_key": "k", "argument_value": "v"}]
        assert req.json["db"] == "mydb" and req.json["format"] == "json"
        return 200, json.dumps(rows), "application/json"

    srv.on("POST", "/api/v3/query_sql", answer)
    r = run(srv, "show", "summary", "--database", "mydb")
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "Tables (2):\n  cpu\n  mem\n" in out
    assert "Triggers (2):" in out
    assert ("| t1           | all_tables   | wal.py   | enabled            | log            "
            "| k=v") in out
    assert "| delivery " in out and "| exactly once " in out
    assert "every:1m 30s" in out and "disabled, catch_up" in out
    r = run(srv, "show", "summary", "-d", "mydb", "--format", "json")
    data = json.loads(r.stdout)
    assert data["tables"] == ["cpu", "mem"]
    assert data["triggers"][0] == {"trigger_name": "t1", "trigger_spec": "all_tables",
                                   "plugin": "wal.py", "status": "enabled",
                                   "error_behavior": "log", "delivery": "exactly once",
                                   "arguments": {"k": "v"}}


# ---- write --------------------------------------------------------------------------------


def test_write_argument(srv: FakeServer) -> None:
    r = run(srv, "write", "--database", "testdb", "temperature,location=office value=22.5")
    assert r.exit_code == 0, r.output
    req = srv.last
    assert (req.method, req.path, req.query) == ("POST", "/api/v3/write_lp", {"db": "testdb"})
    assert req.body == b"temperature,location=office value=22.5"
    assert r.stdout == ""
    assert "1 request" in r.stderr and "1 lines" in r.stderr


def test_write_flags(srv: FakeServer) -> None:
    run(srv, "w", "-d", "db", "-p", "s", "--accept-partial", "--no-sync", "-q", "m v=1 1")
    assert srv.last.query == {"db": "db", "precision": "second", "accept_partial": "true",
                              "no_sync": "true"}
    r = run(srv, "write", "-d", "db", "--no-accept-partial", "-p", "ms", "-q", "m v=1")
    assert srv.last.query == {"db": "db", "precision": "millisecond", "accept_partial": "false"}
    assert r.stderr == ""


def test_write_file_is_split_at_newlines(srv: FakeServer, tmp_path: Path) -> None:
    lines = [f"m,host=h{i} v={i}i {i}" for i in range(200)]
    f = tmp_path / "data.lp"
    f.write_text("\n".join(lines) + "\n")
    r = run(srv, "write", "-d", "db", "-f", str(f), "--max-request-size", "500",
            "--max-concurrent-requests", "1")
    assert r.exit_code == 0, r.output
    bodies = [q.body for q in srv.requests]
    assert len(bodies) > 1
    assert all(len(b) <= 500 and b.endswith(b"\n") for b in bodies)
    assert b"".join(bodies).decode().splitlines() == lines
    assert "100% of" in r.stderr.splitlines()[-1]


def test_write_concurrent_gzip(srv: FakeServer, tmp_path: Path) -> None:
    lines = [f"m v={i}i {i}" for i in range(1000)]
    f = tmp_path / "data.lp"
    f.write_text("\n".join(lines))
    r = run(srv, "write", "-d", "db", "--file", str(f), "--max-request-size", "1k", "--gzip")
    assert r.exit_code == 0, r.output
    assert all(q.headers.get("content-encoding") == "gzip" for q in srv.requests)
    got = sorted(line for q in srv.requests for line in gzip.decompress(q.body).decode().split())
    assert len(srv.requests) > 5
    assert got == sorted(w for line in lines for w in line.split())


def test_write_long_line_is_sent_whole(srv: FakeServer) -> None:
    lp = "a v=1\n" + "b v=" + "9" * 100 + "\nc v=3"
    run(srv, "write", "-d", "db", "--max-request-size", "20", "--max-concurrent-requests", "1",
        lp)
    assert [q.body for q in srv.requests] == [b"a v=1\n", ("b v=" + "9" * 100 + "\n").encode(),
                                              b"c v=3"]


def test_write_stdin(srv: FakeServer) -> None:
    r = run(srv, "write", "-d", "db", "-q", input="m v=1\nm v=2\n")
    assert r.exit_code == 0, r.output
    assert srv.last.body == b"m v=1\nm v=2\n"


def test_write_nothing(srv: FakeServer) -> None:
    r = run(srv, "write", "-d", "db", input="")
    assert r.exit_code == 0
    assert srv.requests == [] and "no data written" in r.stderr


def test_write_errors(srv: FakeServer) -> None:
    err = one_line_error(run(srv, "write", "-d", "db", "cpu,host=a", "usage=1"), 2)
    assert "single line protocol string" in err and "quotes" in err
    srv.reply("POST", "/api/v3/write_lp", 400, {
        "error": "partial write of line protocol occurred",
        "data": [{"error_message": "missing fields", "line_number": 2,
                  "original_line": "bad"}]})
    err = one_line_error(run(srv, "write", "-d", "db", "ok v=1\nbad"))
    assert err == ("Failed to write: server responded with error [400 Bad Request]: partial "
                   "write of line protocol occurred: line 2: missing fields")
    err = one_line_error(run(srv, "write", "-d", "db", "-f", "/no/such/file.lp"), 2)
    assert "cannot read /no/such/file.lp" in err


def test_write_host_override(srv: FakeServer) -> None:
    r = run(None, "write", "-d", "db", "--write-host", srv.url, "-q", "m v=1",
            env={"INFLUXDB3_HOST_URL": "http://127.0.0.1:1"})
    assert r.exit_code == 0, r.output
    assert srv.last.body == b"m v=1"


# ---- query --------------------------------------------------------------------------------


def test_query(srv: FakeServer) -> None:
    srv.reply("POST", "/api/v3/query_sql", 200, "+---+\n| a |\n+---+")
    r = run(srv, "query", "--database", "testdb", "SELECT * FROM write_reports ORDER BY time DESC")
    assert r.exit_code == 0, r.output
    assert r.stdout == "+---+\n| a |\n+---+\n"
    assert srv.last.json == {"db": "testdb", "q": "SELECT * FROM write_reports ORDER BY time DESC",
                             "format": "pretty", "params": None}


def test_query_formats_language_and_inputs(srv: FakeServer, tmp_path: Path) -> None:
    srv.reply("POST", "/api/v3/query_influxql", 200, '{"a":1}\n')
    r = run(srv, "q", "-d", "db", "-l", "influxql", "--format", "jsonl", "SHOW MEASUREMENTS")
    assert r.stdout == '{"a":1}\n'
    assert srv.last.path == "/api/v3/query_influxql"
    assert srv.last.json["format"] == "json_lines"
    qf = tmp_path / "q.sql"
    qf.write_text("SELECT 1")
    run(srv, "query", "-d", "db", "-f", str(qf), "--format", "csv")
    assert srv.last.json == {"db": "db", "q": "SELECT 1", "format": "csv", "params": None}
    run(srv, "query", "-d", "db", input="SELECT 2\n")
    assert srv.last.json["q"] == "SELECT 2\n"


def test_query_output_file_and_parquet(srv: FakeServer, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    srv.reply("POST", "/api/v3/query_sql", 200, b"PAR1\x00\x01PAR1", "application/octet-stream")
    out = tmp_path / "out.parquet"
    r = run(srv, "query", "-d", "db", "--format", "parquet", "-o", str(out), "SELECT 1")
    assert r.exit_code == 0 and r.stdout == ""
    assert out.read_bytes() == b"PAR1\x00\x01PAR1"
    import weir.cli.data as data

    monkeypatch.setattr(data, "stdout_is_tty", lambda: True)
    n = len(srv.requests)
    err = one_line_error(run(srv, "query", "-d", "db", "--format", "parquet", "SELECT 1"), 2)
    assert "--output" in err and len(srv.requests) == n


def test_query_errors(srv: FakeServer) -> None:
    srv.reply("POST", "/api/v3/query_sql", 404,
              {"error": "query error: database not found: nodb"})
    err = one_line_error(run(srv, "query", "-d", "nodb", "SELECT 1"))
    assert err == ("Failed to run query: server responded with error [404 Not Found]: query "
                   "error: database not found: nodb")
    err = one_line_error(run(srv, "query", "SELECT 1"), 2)
    assert "'-d' / '--database'" in err and "query --help" in err


# ---- install and test ---------------------------------------------------------------------


def test_install(srv: FakeServer) -> None:
    r = run(srv, "install", "package", "pandas", "requests")
    assert r.exit_code == 0, r.output
    assert (srv.last.path, srv.last.json) == (
        "/api/v3/configure/plugin_environment/install_packages",
        {"packages": ["pandas", "requests"]})
    assert "installed pandas requests" in r.stderr
    run(srv, "install", "package", "-r", "/srv/requirements.txt")
    assert (srv.last.path, srv.last.json) == (
        "/api/v3/configure/plugin_environment/install_requirements",
        {"requirements_location": "/srv/requirements.txt"})
    n = len(srv.requests)
    run(srv, "install", "requirements", "/srv/r2.txt")
    assert len(srv.requests) == n + 1
    assert srv.last.json == {"requirements_location": "/srv/r2.txt"}
    assert "--requirements" in one_line_error(run(srv, "install", "package"), 2)


def test_install_failure(srv: FakeServer) -> None:
    srv.reply("POST", "/api/v3/configure/plugin_environment/install_packages", 403,
              "Package installation has been disabled. Contact your administrator for more "
              "information.")
    r = run(srv, "install", "package", "pandas")
    assert r.exit_code == 1
    progress, err = r.stderr.strip().split("\n")  # progress line, then the error
    assert progress == "installing pandas..."
    assert err.startswith("Failed to install packages: server responded with error [403 ")


def test_test_wal_plugin(srv: FakeServer, tmp_path: Path) -> None:
    answer = {"log_lines": ["INFO: arg1: hello"], "database_writes": {"sensors": ["m f=1"]},
              "errors": []}
    srv.reply("POST", "/api/v3/plugin_test/wal", 200, answer)
    r = run(srv, "test", "wal_plugin", "--lp", "my_measure,tag1=asdf f1=1.0 123", "--token",
            "apiv3_0xxx0o0XxXxx00Xxxx000xXXxoo0==", "--database", "sensors",
            "--input-arguments", "arg1=hello,arg2=world", "test.py")
    assert r.exit_code == 0, r.output
    assert r.stdout == json.dumps(answer, indent=2) + "\n"
    assert srv.last.headers["authorization"] == "Bearer apiv3_0xxx0o0XxXxx00Xxxx000xXXxoo0=="
    assert srv.last.json == {"filename": "test.py", "database": "sensors",
                             "input_lp": "my_measure,tag1=asdf f1=1.0 123", "cache_name": None,
                             "input_arguments": {"arg1": "hello", "arg2": "world"}}
    lp = tmp_path / "in.lp"
    lp.write_text("cpu v=1\n")
    run(srv, "test", "wal_plugin", "-d", "db", "--file", str(lp), "--cache-name", "c", "p.py")
    assert srv.last.json["input_lp"] == "cpu v=1\n" and srv.last.json["cache_name"] == "c"
    assert "--lp or --file" in one_line_error(run(srv, "test", "wal_plugin", "-d", "db", "p.py"),
                                              2)


def test_test_schedule_plugin(srv: FakeServer) -> None:
    srv.reply("POST", "/api/v3/plugin_test/schedule", 200,
              {"trigger_time": "2024-11-14T11:00:01Z", "log_lines": [], "database_writes": {},
               "errors": []})
    r = run(srv, "test", "schedule_plugin", "-d", "db", "--schedule", "*/5 * * * * *",
            "--input-arguments", "region=us-east", "check.py")
    assert json.loads(r.stdout)["trigger_time"] == "2024-11-14T11:00:01Z"
    assert srv.last.json == {"filename": "check.py", "database": "db",
                             "schedule": "*/5 * * * * *", "cache_name": None,
                             "input_arguments": {"region": "us-east"}}
    run(srv, "test", "schedule_plugin", "-d", "db", "check.py")
    assert srv.last.json["schedule"] is None and srv.last.json["input_arguments"] is None


# ---- tokens -------------------------------------------------------------------------------

TOKEN = "apiv3_" + "x" * 86


def test_create_admin_token(srv: FakeServer) -> None:
    srv.reply("POST", "/api/v3/configure/token/admin", 201,
              {"id": 0, "name": "_admin", "token": TOKEN, "hash": "ab",
               "created_at": "2025-01-01T00:00:00Z", "expiry": None})
    r = run(srv, "create", "token", "--admin")
    assert r.exit_code == 0, r.output
    assert f"Token: {TOKEN}\n" in r.stdout
    assert f"HTTP Requests Header: Authorization: Bearer {TOKEN}\n" in r.stdout
    assert "New token created successfully!" in r.stdout
    r = run(srv, "create", "token", "--admin", "--format", "json")
    assert json.loads(r.stdout)["token"] == TOKEN
    err = one_line_error(run(srv, "create", "token"), 2)
    assert err == "Missing required subcommand. Use: influxdb3 create token --admin [OPTIONS]"


def test_regenerate_and_named_tokens(srv: FakeServer) -> None:
    for path in ("/api/v3/configure/token/admin/regenerate",
                 "/api/v3/configure/token/named_admin"):
        srv.reply("POST", path, 201, {"token": TOKEN})
    r = run(srv, "create", "token", "--admin", "--regenerate", input="no\n")
    assert r.exit_code == 1 and srv.requests == []
    r = run(srv, "create", "token", "--admin", "--regenerate", "--token", "old", input="yes\n")
    assert r.exit_code == 0, r.output
    assert "Are you sure you want to regenerate admin token?" in r.stdout
    assert srv.last.path == "/api/v3/configure/token/admin/regenerate"
    assert srv.last.headers["authorization"] == "Bearer old"
    run(srv, "create", "token", "--admin", "--name", "ci", "--expiry", "10d")
    assert srv.last.json == {"token_name": "ci", "expiry_secs": 864000}


def test_offline_token_file(tmp_path: Path) -> None:
    out = tmp_path / "admin.json"
    r = run(None, "create", "token", "--admin", "--offline", "--output-file", str(out))
    assert r.exit_code == 0, r.output
    content = json.loads(out.read_text())
    assert content["name"] == "_admin" and content["token"].startswith("apiv3_")
    assert len(content["token"]) == 92
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert f"Token saved to: {out}" in r.stdout and content["token"] in r.stdout


def test_delete_token(srv: FakeServer) -> None:
    r = run(srv, "delete", "token", "--token-name", "_admin")
    assert r.exit_code == 0 and "cannot be deleted" in r.stdout and srv.requests == []
    r = run(srv, "delete", "token", "--token-name", "ci", "-y")
    assert r.stdout == 'Token "ci" deleted successfully\n'
    assert (srv.last.method, srv.last.query) == ("DELETE", {"token_name": "ci"})


# ---- common flags and failures ------------------------------------------------------------


def test_env_vars(srv: FakeServer) -> None:
    r = run(None, "query", "SELECT 1", env={"INFLUXDB3_HOST_URL": srv.url,
                                            "INFLUXDB3_DATABASE_NAME": "envdb",
                                            "INFLUXDB3_AUTH_TOKEN": "tok"})
    assert r.exit_code == 0, r.output
    assert srv.last.json["db"] == "envdb"
    assert srv.last.headers["authorization"] == "Bearer tok"
    run(srv, "show", "databases")
    assert "authorization" not in srv.last.headers


def test_host_flag_without_scheme_and_before_the_command(srv: FakeServer) -> None:
    hostport = srv.url.removeprefix("http://")
    r = run(None, "show", "databases", "-H", hostport)
    assert r.exit_code == 0, r.output
    r = run(None, "--host", srv.url, "--token", "t", "show", "databases")
    assert r.exit_code == 0, r.output
    assert srv.last.headers["authorization"] == "Bearer t"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_one_line() -> None:
    port = _closed_port()
    r = run(None, "query", "-d", "db", "SELECT 1", env={"INFLUXDB3_HOST_URL":
                                                        f"http://127.0.0.1:{port}"})
    assert one_line_error(r) == (f"error: could not connect to http://127.0.0.1:{port}: "
                                 "connection refused — is the server running?")


def test_bad_host_url() -> None:
    err = one_line_error(run(None, "show", "databases", "--host", "ftp://x"), 2)
    assert "--host" in err


def test_tls_ca_missing_file() -> None:
    err = one_line_error(run(None, "show", "databases", "--host", "https://127.0.0.1:1",
                             "--tls-ca", "/no/such/ca.pem"), 2)
    assert err.startswith("error: --tls-ca: cannot load CA certificate /no/such/ca.pem")


def test_version_and_help_words(srv: FakeServer) -> None:
    r = run(None, "--version")
    assert r.exit_code == 0 and r.stdout.startswith("influxdb3 ") and "Weir" in r.stdout
    r = run(None, "create", "trigger", "help")
    assert r.exit_code == 0 and "Usage: influxdb3 create trigger" in r.stdout
    r = run(None, "help", "write")
    assert r.exit_code == 0 and "Usage: influxdb3 write" in r.stdout
    r = run(None, "create")
    assert r.exit_code == 2 and "Commands:" in r.stderr


def _all_commands() -> list[list[str]]:
    out: list[list[str]] = []

    def walk(group: click.Group, prefix: list[str]) -> None:
        for name, cmd in group.commands.items():
            out.append([*prefix, name])
            if isinstance(cmd, click.Group):
                walk(cmd, [*prefix, name])

    walk(cli, [])
    return out


@pytest.mark.parametrize("cmd", _all_commands(), ids=" ".join)
def test_every_help_ends_with_an_example(cmd: list[str]) -> None:
    r = run(None, *cmd, "--help")
    assert r.exit_code == 0, r.output
    lines = r.stdout.rstrip("\n").splitlines()
    starts = [i for i, line in enumerate(lines) if line in ("Example:", "Examples:")]
    assert starts, r.stdout
    example = lines[starts[-1] + 1:]
    assert example and example[0].startswith("  influxdb3 "), r.stdout
    assert all(line.startswith("  ") for line in example)
    words = example[0].split()
    assert all(w in words for w in cmd) or len(cmd) == 1, example[0]


def test_every_documented_command_exists() -> None:
    names = {" ".join(c) for c in _all_commands()}
    for expected in ("serve", "write", "query", "create database", "create table",
                     "create trigger", "create token", "create last_cache",
                     "create distinct_cache", "delete database", "delete table",
                     "delete trigger", "delete token", "delete last_cache",
                     "delete distinct_cache", "enable trigger", "disable trigger",
                     "update database", "update trigger", "show databases", "show summary",
                     "show plugins", "show tokens", "show retention", "show system",
                     "show system table-list", "show system table", "show system summary",
                     "install package", "install requirements", "test wal_plugin",
                     "test schedule_plugin"):
        assert expected in names, expected


# ---- serve --------------------------------------------------------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    import weir.server

    seen: list[Any] = []
    monkeypatch.setattr(weir.server, "run", seen.append)
    return seen


def test_serve_builds_config(served: list[Any], tmp_path: Path) -> None:
    r = run(None, "serve", "--node-id", "node0", "--object-store", "memory", "--data-dir",
            str(tmp_path), "--http-bind", "127.0.0.1:9999", "--plugin-dir", str(tmp_path / "p"),
            "--wal-flush-interval", "10ms", "--wal-snapshot-size", "5", "--gen1-duration", "1m",
            "--max-http-request-size", "1m", "--exec-mem-pool-bytes", "1g",
            "--force-snapshot-bytes", "64m", "--query-timeout", "30s",
            "--plugin-call-timeout", "3s", "--without-auth", "--disable-authz", "health,ping",
            "--restrict-plugin-triggers-to", "schedule,wal_flush", "--package-manager", "pip",
            "--plugin-repo", "http://repo/", "--snapshotted-wal-files-to-keep", "7",
            "--wal-max-write-buffer-size", "10", "--log-filter", "debug")
    assert r.exit_code == 0, r.output
    (cfg,) = served
    assert cfg.node_id == "node0" and cfg.object_store == "memory"
    assert cfg.data_dir == tmp_path and cfg.plugin_dir == (tmp_path / "p").resolve()
    assert cfg.http_bind == "127.0.0.1:9999"
    assert cfg.wal_flush_interval == pytest.approx(0.01)
    assert (cfg.wal_snapshot_size, cfg.gen1_duration) == (5, 60.0)
    assert cfg.max_http_request_size == 1024**2 and cfg.exec_mem_pool_bytes == 1024**3
    assert cfg.force_snapshot_bytes == 64 * 1024**2
    assert (cfg.query_timeout, cfg.plugin_call_timeout) == (30.0, 3.0)
    assert cfg.without_auth and cfg.disable_authz == ["health", "ping"]
    assert cfg.restrict_plugin_triggers_to == ["schedule", "wal_flush"]
    assert (cfg.package_manager, cfg.plugin_repo) == ("pip", "http://repo/")
    assert (cfg.snapshotted_wal_files_to_keep, cfg.wal_max_write_buffer_size) == (7, 10)
    assert cfg.log_filter == "debug"


def test_serve_defaults_and_env(served: list[Any], tmp_path: Path) -> None:
    r = run(None, "serve", env={"INFLUXDB3_NODE_IDENTIFIER_PREFIX": "envnode",
                                "INFLUXDB3_WAL_FLUSH_INTERVAL": "250ms",
                                "INFLUXDB3_DB_DIR": str(tmp_path),
                                "INFLUXDB3_HTTP_BIND_ADDR": "127.0.0.1:1234"})
    assert r.exit_code == 0, r.output
    cfg = served[-1]
    assert cfg.node_id == "envnode" and cfg.wal_flush_interval == 0.25
    assert cfg.data_dir == tmp_path and cfg.http_bind == "127.0.0.1:1234"
    assert cfg.object_store == "file" and cfg.max_http_request_size == 10485760
    assert cfg.wal_snapshot_size == 600 and cfg.gen1_duration == 600
    assert cfg.plugin_dir is None and cfg.without_auth is False


def test_no_subcommand_runs_serve_with_hostname_node(served: list[Any]) -> None:
    r = run(None)
    assert r.exit_code == 0, r.output
    assert served[-1].node_id == f"{socket.gethostname()}-node"
    assert "Using auto-generated node id" in r.stderr
    from pathlib import Path as P

    assert served[-1].data_dir == P.home() / ".influxdb3"
    run(None, "--host-id", "viaalias", "--object-store", "memory")
    assert served[-1].node_id == "viaalias" and served[-1].object_store == "memory"


def test_serve_node_id_from_env(served: list[Any]) -> None:
    r = run(None, "serve", "--node-id-from-env", "MY_NODE", env={"MY_NODE": "n7"})
    assert r.exit_code == 0 and served[-1].node_id == "n7"


@pytest.mark.parametrize("args,flag", [
    (["--wal-flush-interval", "soon"], "--wal-flush-interval"),
    (["--gen1-duration", "10 parsecs"], "--gen1-duration"),
    (["--object-store", "s3"], "--object-store"),
    (["--object-store", "floppy"], "--object-store"),
    (["--max-http-request-size", "lots"], "--max-http-request-size"),
    (["--http-bind", "localhost"], "--http-bind"),
    (["--disable-authz", "health,everything"], "--disable-authz"),
    (["--restrict-plugin-triggers-to", "cron"], "--restrict-plugin-triggers-to"),
    (["--wal-snapshot-size", "0"], "--wal-snapshot-size"),
    (["--cluster-id", "c1", "--object-store", "memory"], "--cluster-id"),
])
def test_serve_bad_values(served: list[Any], args: list[str], flag: str) -> None:
    err = one_line_error(run(None, "serve", "--node-id", "n", *args), 2)
    assert flag in err
    assert served == []


def test_serve_bad_env_value_names_the_variable(served: list[Any]) -> None:
    err = one_line_error(run(None, "serve", "--node-id", "n",
                             env={"INFLUXDB3_WAL_FLUSH_INTERVAL": "often"}), 2)
    assert "--wal-flush-interval" in err and "INFLUXDB3_WAL_FLUSH_INTERVAL" in err


def test_serve_ignored_reference_flags_warn(served: list[Any]) -> None:
    r = run(None, "serve", "--node-id", "n", "--aws-credentials-file", "f",
            "--object-store-cache-endpoint", "http://cache", "--query-log-size", "5",
            "--admin-token-recovery-http-bind", "--object-store", "memory-throttled")
    assert r.exit_code == 0, r.output
    for flag in ("--aws-credentials-file", "--object-store-cache-endpoint",
                 "--query-log-size", "--admin-token-recovery-http-bind", "memory-throttled"):
        assert flag in r.stderr
    assert served[-1].object_store == "memory"
    r = run(None, "serve", "--help-all")
    assert "--aws-credentials-file" in r.stdout and "--traces-exporter" in r.stdout
    help_text = run(None, "serve", "--help").stdout
    assert "  --aws-credentials-file" not in help_text  # (the description names it)
    # the object-store flags Weir uses are in the short help (weir.cli.store_options)
    assert "--aws-access-key-id" in help_text and "--bucket" in help_text


def test_serve_percent_memory_and_verbose(served: list[Any]) -> None:
    from weir.cli.serve import total_memory

    r = run(None, "serve", "--node-id", "n", "--exec-mem-pool-bytes", "20%", "-vv",
            "--force-snapshot-mem-threshold", "50%")
    assert r.exit_code == 0, r.output
    cfg = served[-1]
    assert cfg.exec_mem_pool_bytes == int(total_memory() * 0.2)
    assert cfg.force_snapshot_bytes == int(total_memory() * 0.5)
    assert cfg.log_filter == "trace"


def test_serve_ignores_weirs_own_activated_venv(served: list[Any]) -> None:
    import sys

    run(None, "serve", "--node-id", "n", env={"VIRTUAL_ENV": sys.prefix})
    assert served[-1].virtual_env_location is None
    run(None, "serve", "--node-id", "n", "--virtual-env-location", "/opt/venv")
    assert served[-1].virtual_env_location == Path("/opt/venv").resolve()


def test_serve_failure_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import weir.server

    def boom(config: Any) -> None:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(weir.server, "run", boom)
    err = one_line_error(run(None, "serve", "--node-id", "n", "--http-bind", "127.0.0.1:8181"))
    assert err == "Serve command failed: Address already in use (127.0.0.1:8181)"


def test_many_line_errors_are_grouped(srv: FakeServer) -> None:
    data = [{"error_message": "Adding a new database would exceed limit of 5 databases",
             "line_number": n, "original_line": "x"} for n in range(1, 1001)]
    data.insert(1, {"error_message": "missing fields", "line_number": 2, "original_line": "y"})
    srv.reply("POST", "/api/v3/write_lp", 422, {"error": "partial write of line protocol "
                                                         "occurred", "data": data})
    err = one_line_error(run(srv, "write", "-d", "db", "-q", "x v=1"))
    assert err == ("Failed to write: server responded with error [422 Unprocessable Entity]: "
                   "partial write of line protocol occurred: lines 1, 2, 3, 4, 5 and 995 more: "
                   "Adding a new database would exceed limit of 5 databases; line 2: missing "
                   "fields")


def test_query_host_override(srv: FakeServer) -> None:
    r = run(None, "query", "-d", "db", "--query-host", srv.url, "SELECT 1",
            env={"INFLUXDB3_HOST_URL": "http://127.0.0.1:1"})
    assert r.exit_code == 0, r.output
    assert srv.last.path == "/api/v3/query_sql"


@pytest.mark.parametrize("cmdline", [
    "serve --node-id node0 --object-store file --data-dir ~/.influxdb3 --plugin-dir ~/.plugins",
    "serve --node-id node0 --plugin-dir /path/to/plugins",
    "serve --node-id=node0 --object-store=file --data-dir=/data --http-bind=localhost:8183 "
    "--plugin-dir=/plugins",
    "serve --node-id node0 --object-store file --plugin-dir ~/.plugins",
])
def test_seed_serve_commands(served: list[Any], cmdline: str) -> None:
    r = run(None, *cmdline.replace("~", str(Path.home())).split())
    assert r.exit_code == 0, r.output
    assert served[-1].node_id == "node0" and served[-1].plugin_dir is not None


def test_seed_client_commands(srv: FakeServer) -> None:
    """Every client command of the seed documents, as written there."""
    srv.reply("POST", "/api/v3/plugin_test/wal", 200,
              {"log_lines": [], "database_writes": {}, "errors": []})
    seeds = [
        ["create", "trigger", "--database", "monitoring", "--plugin-filename",
         "examples/wal_plugin/wal_plugin.py", "--trigger-spec", "all_tables", "wal_monitoring"],
        ["create", "trigger", "--trigger-spec", "table:TABLE_NAME", "--plugin-filename",
         "gh:examples/wal_plugin/wal_plugin.py", "--database", "DATABASE_NAME", "TRIGGER_NAME"],
        ["create", "trigger", "--trigger-spec", "every:10s", "--plugin-filename",
         "gh:examples/schedule/system_metrics/system_metrics.py", "--database", "mydb",
         "system-metrics"],
        ["create", "trigger", "--trigger-spec", "request:hello-world", "--plugin-filename",
         "hellp/hello_world.py", "--database", "mydb", "hello-world"],
        ["create", "trigger", "--database", "mydb", "--plugin-filename", "data_replicator.py",
         "--trigger-spec", "every:10s", "--trigger-arguments",
         "host=<remote_host>,token=<remote_token>,database=<remote_db>,tables=table1.table2",
         "data_replicator_trigger"],
        ["create", "trigger", "--token", "apiv3_0xxx0o0XxXxx00Xxxx000xXXxoo0==", "--database",
         "sensors", "--plugin", "test_plugin", "--trigger-spec", "table:foo",
         "--trigger-arguments", "arg1=hello,arg2=world", "trigger1"],
        ["create", "trigger", "--trigger-spec", "every:1m", "--plugin-filename",
         "gh:examples/schedule/system_metrics/system_metrics.py", "--database", "my_database",
         "system_metrics"],
        ["write", "--database", "testdb", "temperature,location=office value=22.5"],
        ["query", "--database", "testdb", "SELECT * FROM write_reports ORDER BY time DESC"],
        ["query", "--database", "_internal", "--token", "AUTH_TOKEN",
         "SELECT * FROM system.processing_engine_logs WHERE trigger_name = 'wal_monitoring'"],
        ["enable", "trigger", "--database", "mydb", "data_replicator_trigger"],
        ["enable", "trigger", "--token", "AUTH_TOKEN", "--database", "DATABASE_NAME",
         "TRIGGER_NAME"],
        ["test", "wal_plugin", "--lp", "my_measure,tag1=asdf f1=1.0 123", "--token",
         "apiv3_0xxx0o0XxXxx00Xxxx000xXXxoo0==", "--database", "sensors", "--input-arguments",
         "arg1=hello,arg2=world", "test.py"],
        ["install", "package", "pandas"],
    ]
    for args in seeds:
        r = run(srv, *args)
        assert r.exit_code == 0, (args, r.output)
    specs = [q.json["trigger_specification"] for q in srv.requests
             if q.path == "/api/v3/configure/processing_engine_trigger"]
    assert specs == ["all_tables", "table:TABLE_NAME", "every:10s", "request:hello-world",
                     "every:10s", "table:foo", "every:1m"]
    for args in (["create", "trigger", "help"], ["install", "package", "--help"],
                 ["test", "wal_plugin", "-h"]):
        assert run(None, *args).exit_code == 0


def test_write_to_a_dead_server_says_so_once() -> None:
    port = _closed_port()
    lp = "\n".join(f"m v={i}" for i in range(500))
    r = run(None, "write", "-d", "db", "--max-request-size", "100", lp,
            env={"INFLUXDB3_HOST_URL": f"http://127.0.0.1:{port}"})
    assert one_line_error(r).startswith(f"error: could not connect to http://127.0.0.1:{port}")


# ---- list options: repeated and comma-separated (the reference's `Vec<_>` options with
# `value_delimiter = ','`, which clap appends to on every occurrence) ------------------------


def test_repeated_trigger_arguments_accumulate(srv: FakeServer) -> None:
    r = run(srv, "create", "trigger", "-d", "db", "--path", "p.py", "--trigger-spec",
            "all_tables", "--trigger-arguments", "a=1", "--trigger-arguments", "b=2,c=x=y", "t")
    assert r.exit_code == 0, r.output
    assert srv.last.json["trigger_arguments"] == {"a": "1", "b": "2", "c": "x=y"}
    # a key given twice keeps its last value (the reference collects the pairs into a map)
    run(srv, "create", "trigger", "-d", "db", "--path", "p.py", "--trigger-spec",
        "all_tables", "--trigger-arguments", "a=1,a=2", "--trigger-arguments", "a=3", "t")
    assert srv.last.json["trigger_arguments"] == {"a": "3"}
    # a bad pair in any occurrence is refused before anything is sent
    n = len(srv.requests)
    err = one_line_error(run(srv, "create", "trigger", "-d", "db", "--path", "p.py",
                             "--trigger-spec", "all_tables", "--trigger-arguments", "a=1",
                             "--trigger-arguments", "oops", "t"), 2)
    assert "'oops' must be formatted as \"key=value\"" in err and len(srv.requests) == n


def test_repeated_input_arguments_accumulate(srv: FakeServer) -> None:
    run(srv, "test", "wal_plugin", "-d", "db", "--lp", "m v=1", "--input-arguments", "a=1",
        "--input-arguments", "b=2,c=3", "p.py")
    assert srv.last.json["input_arguments"] == {"a": "1", "b": "2", "c": "3"}
    run(srv, "test", "schedule_plugin", "-d", "db", "--input-arguments", "a=1",
        "--input-arguments", "a=2", "p.py")
    assert srv.last.json["input_arguments"] == {"a": "2"}


def test_repeated_table_and_cache_columns_accumulate(srv: FakeServer) -> None:
    run(srv, "create", "table", "cpu", "-d", "db", "--tags", "host", "--tags", "region,az",
        "--fields", "a:int64", "-f", "b:utf8,c:bool")
    assert srv.last.json == {"db": "db", "table": "cpu", "tags": ["host", "region", "az"],
                             "fields": [{"name": "a", "type": "int64"},
                                        {"name": "b", "type": "utf8"},
                                        {"name": "c", "type": "bool"}]}
    srv.reply("POST", "/api/v3/configure/last_cache", 201, {"id": 1})
    run(srv, "create", "last_cache", "-d", "db", "-t", "cpu", "--key-columns", "a",
        "--key-columns", "b,c", "--value-columns", "x", "--value-columns", "y")
    assert (srv.last.json["key_columns"], srv.last.json["value_columns"]) == (
        ["a", "b", "c"], ["x", "y"])
    run(srv, "create", "last_cache", "-d", "db", "-t", "cpu")  # none given: none sent
    assert "key_columns" not in srv.last.json and "value_columns" not in srv.last.json
    srv.reply("POST", "/api/v3/configure/distinct_cache", 201, {"id": 1})
    run(srv, "create", "distinct_cache", "-d", "db", "-t", "cpu", "--columns", "region",
        "--columns", "host,core")
    assert srv.last.json["columns"] == ["region", "host", "core"]


def test_repeated_show_system_select_and_order_by(srv: FakeServer) -> None:
    run(srv, "show", "system", "-d", "db", "table", "queries", "-s", "a", "-s", "b,c",
        "-o", "a", "--order-by", "b", "-l", "0")
    assert srv.last.json["q"] == ('SELECT a,b,c FROM system."queries"\nWHERE query_text !~ '
                                  "'.*(select.queries.|information_schema)*'\nORDER BY a,b")


def test_install_package_takes_the_references_list_flag(srv: FakeServer) -> None:
    r = run(srv, "install", "package", "--restrict-plugin-triggers-to", "wal",
            "--restrict-plugin-triggers-to", "schedule,request", "pandas")
    assert r.exit_code == 0, r.output
    assert r.stderr.count("--restrict-plugin-triggers-to is ignored") == 1
    assert srv.last.json == {"packages": ["pandas"]}
    assert "ignored" not in run(srv, "install", "package", "pandas").stderr


def test_serve_restrict_plugin_triggers_to_accumulates(served: list[Any]) -> None:
    r = run(None, "serve", "--node-id", "n", "--restrict-plugin-triggers-to", "wal",
            "--restrict-plugin-triggers-to", "schedule,request")
    assert r.exit_code == 0, r.output
    assert served[-1].restrict_plugin_triggers_to == ["wal", "schedule", "request"]
    run(None, "serve", "--node-id", "n",
        env={"INFLUXDB3_RESTRICT_PLUGIN_TRIGGERS_TO": "wal,request"})
    assert served[-1].restrict_plugin_triggers_to == ["wal", "request"]


def test_serve_plugin_env_options(served: list[Any]) -> None:
    r = run(None, "serve", "--node-id", "n",
            "--plugin-env-allow", "NORI_API_KEY", "--plugin-env-allow", "TWILIO_*, OTHER",
            env={"INFLUXDB3_PLUGIN_ENV_DENY": "GITHUB_TOKEN,SSH_*"})
    assert r.exit_code == 0, r.output
    cfg = served[-1]
    assert cfg.plugin_env_allow == ["NORI_API_KEY", "TWILIO_*", "OTHER"]
    assert cfg.plugin_env_deny == ["GITHUB_TOKEN", "SSH_*"]
    run(None, "serve", "--node-id", "n")
    assert (served[-1].plugin_env_allow, served[-1].plugin_env_deny) == (None, [])
    err = one_line_error(run(None, "serve", "--node-id", "n", "--plugin-env-allow",
                             "NORI_API_KEY=abc"), 2)
    assert "--plugin-env-allow" in err and "NAME=VALUE" in err


def test_serve_withholds_its_own_variables_from_plugins(served: list[Any]) -> None:
    run(None, "serve", "--node-id-from-env", "MY_NODE", env={"MY_NODE": "n"})
    names = set(served[-1].server_env_vars)
    # derived from serve's options, hidden ones included: credentials and settings
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN",
                 "AZURE_STORAGE_ACCESS_KEY", "GOOGLE_SERVICE_ACCOUNT",
                 "INFLUXDB3_ADMIN_TOKEN_FILE", "INFLUXDB3_TLS_KEY", "INFLUXDB3_DB_DIR",
                 "INFLUXDB3_PLUGIN_ENV_ALLOW", "INFLUXDB3_PLUGIN_ENV_DENY", "MY_NODE"):
        assert name in names, name
    # what the CLI (and plugins calling back into the server) use is not the server's
    assert "INFLUXDB3_AUTH_TOKEN" not in names and "INFLUXDB3_HOST_URL" not in names


def test_serve_help_shows_the_plugin_env_options_with_examples() -> None:
    out = run(None, "serve", "--help").stdout
    assert "--plugin-env-allow NAMES" in out and "INFLUXDB3_PLUGIN_ENV_ALLOW" in out
    assert "--plugin-env-deny NAMES" in out and "INFLUXDB3_PLUGIN_ENV_DENY" in out
    examples = out.split("Examples:")[1]
    assert "--plugin-env-deny 'GITHUB_TOKEN,SSH_*'" in examples
    assert "--plugin-env-allow 'TWILIO_*' --plugin-env-allow NORI_API_KEY" in examples
