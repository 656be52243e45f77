"""The data replicator plugin (plugins/data_replicator) end to end: a source Weir server
running the plugin through real triggers created with the CLI, replicating over the v3
write API to a second Weir server on loopback (sometimes through a test proxy that
answers 429/503 or speaks TLS)."""

from __future__ import annotations

import gzip
import http.client
import http.server
import importlib.util
import json
import random
import shutil
import signal
import ssl
import string
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, WeirServer, free_port
from support.cli import cli
from support.cli import poll as wait_for

PLUGIN = ROOT / "plugins" / "data_replicator" / "data_replicator.py"
NS = 1_000_000_000


def load_plugin():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("data_replicator_under_test", PLUGIN)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---- helpers -------------------------------------------------------------------------


def rows(server: WeirServer, db: str, sql: str) -> list[dict]:
    """Query rows, or [] while the database or table does not exist yet."""
    r = server.query(db, sql)
    if r.status_code != 200:
        assert "not found" in r.text, r.text
        return []
    return r.json()


def nn(items: list[dict]) -> list[dict]:
    """Rows without their NULL columns (the JSON output format leaves them out)."""
    return [{k: v for k, v in d.items() if v is not None} for d in items]


def count(server: WeirServer, db: str, table: str) -> int:
    got = rows(server, db, f'SELECT count(*) AS n FROM "{table}"')
    return got[0]["n"] if got else 0


def logs(server: WeirServer, trigger: str) -> list[tuple[str, str]]:
    got = rows(server, "_internal", "SELECT event_time, log_level, log_text FROM "
               f"system.processing_engine_logs WHERE trigger_name = '{trigger}' "
               "ORDER BY event_time")
    return [(r["log_level"], r["log_text"]) for r in got]


def log_text(server: WeirServer, trigger: str) -> str:
    return "\n".join(f"{lvl} {text}" for lvl, text in logs(server, trigger))


def runs(server: WeirServer, trigger: str) -> int:
    """How many runs of the trigger have finished (each run logs its end)."""
    return log_text(server, trigger).count("Finished execution in")


def expect_plugin_errors(server: WeirServer, trigger: str, *messages: str) -> None:
    """Declare the errors a replicator trigger logs on purpose in this test (each message a
    regex of the text after the run's task id); conftest's log watch then allows them."""
    for m in messages:
        server.expect_log(rf"ERROR weir\.engine: processing engine \[{trigger}\]: "
                          rf"\[[-0-9a-f]+\] {m}")


def wait_until_monotonic(instant: float) -> None:
    """Wait for a moment on the monotonic clock (a deadline the code under test keeps)."""
    while time.monotonic() < instant:
        time.sleep(0.05)


def write(server: WeirServer, db: str, lp: str) -> None:
    r = server.write(db, lp)
    assert r.status_code == 204, r.text


class Triggers:
    """Creates replicator triggers on a source server; afterwards deletes them and the
    databases they used on both sides (Weir, like Core, allows only 5 databases)."""

    def __init__(self, source: WeirServer, remote: WeirServer) -> None:
        self.source = source
        self.remote = remote
        self.made: list[tuple[str, str]] = []
        self.remote_dbs: set[str] = set()

    def create(self, db: str, name: str, spec: str, args: dict[str, str]) -> None:
        create_db(self.source, db)
        self.remote_dbs.add(args["database"])
        text = ",".join(f"{k}={v}" for k, v in args.items())
        out = cli(self.source, "create", "trigger", "--database", db, "--plugin-filename",
                  "data_replicator.py", "--trigger-spec", spec, "--trigger-arguments", text,
                  name).stdout
        assert f"Trigger {name} created successfully" in out
        self.made.append((db, name))

    def delete_all(self) -> None:
        alive = self.source.proc is not None and self.source.proc.poll() is None
        for db, name in self.made if alive else ():
            httpx.request("DELETE", f"{self.source.url}/api/v3/configure/processing_engine_trigger",
                          params={"db": db, "trigger_name": name, "force": "true"}, timeout=30)
        for server, dbs in ((self.source, {db for db, _ in self.made}),
                            (self.remote, self.remote_dbs)):
            if server.proc is None or server.proc.poll() is not None:
                continue
            for db in dbs:
                httpx.request("DELETE", f"{server.url}/api/v3/configure/database",
                              params={"db": db}, timeout=30)
        self.made.clear()
        self.remote_dbs.clear()


def create_db(server: WeirServer, db: str) -> None:
    r = httpx.post(f"{server.url}/api/v3/configure/database", json={"db": db}, timeout=30)
    assert r.status_code in (200, 204, 409), r.text


def remote_args(remote: WeirServer | int, database: str, **more: str) -> dict[str, str]:
    port = remote if isinstance(remote, int) else remote.port
    return {"host": "127.0.0.1", "port_override": str(port), "token": "secret-token",
            "database": database, **more}


def start_source(base: Path) -> WeirServer:
    plugins = base / "plugins"
    plugins.mkdir(parents=True)
    shutil.copy(PLUGIN, plugins / "data_replicator.py")
    server = WeirServer(base / "data", plugin_dir=plugins,
                        extra_args=["--wal-flush-interval", "10ms"],
                        env={"PLUGIN_DIR": str(plugins)})
    try:
        return server.start()
    except BaseException:
        if server.proc is not None and server.proc.poll() is None:
            server.stop(signal.SIGKILL)
        raise


@pytest.fixture(scope="module")
def pair(tmp_path_factory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("replicator")
    (base / "remote").mkdir()
    remote = WeirServer(base / "remote" / "data", extra_args=["--wal-flush-interval", "10ms"])
    source = None
    try:
        source = start_source(base / "source")
        remote.start()
        yield source, remote
    finally:
        for s in (source, remote):
            if s is not None and s.proc is not None and s.proc.poll() is None:
                s.stop(signal.SIGKILL, check=False)
        problems = [p for s in (source, remote) if s is not None and (p := s.check_log())]
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def triggers(pair):  # type: ignore[no-untyped-def]
    t = Triggers(pair[0], pair[1])
    yield t
    t.delete_all()


def restart_on_same_port(server: WeirServer) -> None:
    port = server.port
    server.start()
    assert server.port == port


# ---- a test proxy: 429 / 503 before forwarding, optionally over TLS --------------------


class Proxy:
    """Answers each POST with the next scripted reply ((status, headers) or None =
    forward to the remote), then forwards everything (each after `delay` seconds); records
    when each request came."""

    def __init__(self, remote: WeirServer, script: list, tls: tuple[str, str] | None = None,
                 delay: float = 0.0):
        self.remote = remote
        self.script = list(script)
        self.delay = delay
        self.seen: list[tuple[float, int]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                reply = proxy.script.pop(0) if proxy.script else None
                if reply is None:
                    time.sleep(proxy.delay)
                    conn = http.client.HTTPConnection("127.0.0.1", proxy.remote.port, timeout=30)
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() in ("content-type", "content-encoding",
                                                "authorization")}
                    conn.request("POST", self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    status, extra = resp.status, {}
                    conn.close()
                else:
                    status, extra = reply
                    data = b'{"error": "scripted"}'
                proxy.seen.append((time.monotonic(), status))
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---- argument checking (no server needed) ---------------------------------------------


class FakeCache(dict):
    def get(self, key, default=None):  # type: ignore[no-untyped-def,override]
        return dict.get(self, key, default)

    def put(self, key, value, ttl=None):  # type: ignore[no-untyped-def]
        self[key] = value


class FakeLocal:
    def __init__(self) -> None:
        self.cache = FakeCache()
        self.lines: list[tuple[str, str]] = []
        self.queries: list[str] = []

    def info(self, *a: object) -> None:
        self.lines.append(("INFO", " ".join(map(str, a))))

    def warn(self, *a: object) -> None:
        self.lines.append(("WARN", " ".join(map(str, a))))

    def error(self, *a: object) -> None:
        self.lines.append(("ERROR", " ".join(map(str, a))))

    def query(self, sql: str, args=None):  # type: ignore[no-untyped-def]
        self.queries.append(sql)
        return []


BASE = {"host": "127.0.0.1", "port_override": "9", "token": "t", "database": "d"}

BAD_WRITES = [
    ({"host": None}, "'host'"),
    ({"host": ""}, "'host'"),
    ({"database": None}, "'database'"),
    ({"token": None}, "'token'"),
    ({"host": "ftp://x"}, "host='ftp://x'"),
    ({"host": "http://"}, "host='http://'"),
    ({"host": "x:99999"}, "host='x:99999'"),
    ({"port_override": "http"}, "port_override='http'"),
    ({"port_override": "70000"}, "port_override='70000'"),
    ({"verify_ssl": "yes"}, "verify_ssl='yes'"),
    ({"max_size": "0"}, "max_size='0'"),
    ({"max_size": "1.5"}, "max_size='1.5'"),
    ({"max_retries": "-1"}, "max_retries='-1'"),
    ({"max_retries": "three"}, "max_retries='three'"),
    ({"tables": "cpu..mem"}, "tables='cpu..mem'"),
    ({"tables": "cpu:mem"}, "tables='cpu:mem'"),
    ({"excluded_fields": "cpu"}, "excluded_fields='cpu'"),
    ({"excluded_fields": "cpu:"}, "excluded_fields='cpu:'"),
    ({"excluded_fields": "cpu:a@"}, "excluded_fields='cpu:a@'"),
    ({"excluded_fields": "cpu:time"}, "excluded_fields='cpu:time'"),
    ({"tables_rename": "cpu"}, "tables_rename='cpu'"),
    ({"tables_rename": "cpu:"}, "tables_rename='cpu:'"),
    ({"tables_rename": "cpu:a.cpu:b"}, "renamed twice"),
    ({"field_renames": "cpu:a"}, "field_renames='cpu:a'"),
    ({"field_renames": "cpu:a@b$c"}, "field_renames='cpu:a@b$c'"),
    ({"field_renames": "cpu:a@b$a@c"}, "renamed twice"),
    ({"field_renames": "cpu:a@x$b@x"}, "both be named 'x'"),
    ({"field_renames": "a@b"}, "field_renames='a@b'"),
    ({"excluded_fields": "cpu:a", "field_renames": "cpu:a@b"}, "both excluded"),
    ({"aggregate_interval": "1"}, "aggregate_interval='1'"),
    ({"aggregate_interval": "0s"}, "aggregate_interval='0s'"),
    ({"aggregate_interval": "5ms"}, "aggregate_interval='5ms'"),
    ({"window": "1h"}, "'window' applies to scheduled triggers"),
    ({"tabels": "cpu"}, "unknown argument 'tabels'"),
]

BAD_SCHEDULE = [
    ({"window": "10s"}, "'source_measurement'"),
    ({"source_measurement": "cpu"}, "'window'"),
    ({"source_measurement": "cpu", "window": "10"}, "window='10'"),
    ({"source_measurement": "cpu", "window": "0min"}, "window='0min'"),
    ({"source_measurement": "cpu", "window": "1y"}, "window='1y'"),
    ({"source_measurement": "cpu", "window": "1h", "offset": "-1h"}, "offset='-1h'"),
    ({"source_measurement": "cpu", "window": "1h", "downsample": "1"}, "downsample='1'"),
    ({"source_measurement": "cpu.", "window": "1h"}, "source_measurement='cpu.'"),
    ({"source_measurement": "cpu", "window": "1h", "aggregate_interval": "1m"},
     "'aggregate_interval' applies to data-write triggers"),
]


@pytest.mark.parametrize(("change", "needle"), BAD_WRITES)
def test_bad_data_write_arguments_fail_the_run(change, needle, monkeypatch, tmp_path):
    dr = load_plugin()
    monkeypatch.setenv("PLUGIN_DIR", str(tmp_path))
    monkeypatch.delenv("REMOTE_INFLUXDB_TOKEN", raising=False)
    args = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    local = FakeLocal()
    with pytest.raises(dr.ConfigError) as e:
        dr.process_writes(local, [{"table_name": "cpu", "rows": [{"a": 1.0, "time": 1}]}],
                          args)
    assert needle in str(e.value)
    errors = [t for lvl, t in local.lines if lvl == "ERROR"]
    assert len(errors) == 1 and needle in errors[0] and "Nothing was replicated" in errors[0]
    assert local.queries == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("change", "needle"), BAD_SCHEDULE)
def test_bad_scheduled_arguments_fail_the_run(change, needle, monkeypatch, tmp_path):
    dr = load_plugin()
    monkeypatch.setenv("PLUGIN_DIR", str(tmp_path))
    local = FakeLocal()
    with pytest.raises(dr.ConfigError) as e:
        dr.process_scheduled_call(local, datetime(2025, 5, 14, 16, 31, 10), {**BASE, **change})
    assert needle in str(e.value)
    assert any(lvl == "ERROR" and needle in t for lvl, t in local.lines)
    assert local.queries == [] and list(tmp_path.iterdir()) == []


def test_argument_formats_of_the_seed() -> None:
    dr = load_plugin()
    cfg = dr.Config({**BASE, "tables": "cpu.mem", "excluded_fields": "cpu:a@b.mem:c",
                     "tables_rename": "cpu:cpu2.mem:mem2",
                     "field_renames": "cpu:x@y$z@w.mem:p@q", "aggregate_interval": "1m",
                     "verify_ssl": "False", "max_size": "5", "max_retries": "0"}, "writes")
    assert cfg.tables == ["cpu", "mem"]
    assert cfg.excluded == {"cpu": {"a", "b"}, "mem": {"c"}}
    assert cfg.tables_rename == {"cpu": "cpu2", "mem": "mem2"}
    assert cfg.field_renames == {"cpu": {"x": "y", "z": "w"}, "mem": {"p": "q"}}
    assert cfg.aggregate == 60 * NS and cfg.verify_ssl is False
    assert (cfg.max_size, cfg.max_retries) == (5, 0)
    sched = dr.Config({**BASE, "source_measurement": "cpu", "window": "10min",
                       "offset": "1h"}, "schedule")
    assert (sched.tables, sched.window, sched.offset) == (["cpu"], 600 * NS, 3600 * NS)
    for host, port, url in [
        ("127.0.0.1", None, "http://127.0.0.1:8181"),
        ("12.4.0.1", 9000, "http://12.4.0.1:9000"),
        ("https://12.4.0.1", None, "https://12.4.0.1:443"),
        ("http://127.0.0.1:8086", None, "http://127.0.0.1:8086"),
        ("http://127.0.0.1:8086", 8181, "http://127.0.0.1:8181"),
        ("'https://db.example.com/influx/'", None, "https://db.example.com:443/influx"),
        ("::1", 8181, "http://[::1]:8181"),
    ]:
        assert dr.parse_host(host, port) == url


def test_a_run_that_cannot_read_local_data_queues_nothing_and_fails(monkeypatch, tmp_path):
    """If reading the local schema/data fails, nothing of the batch is queued and the
    call fails, so that error_behavior=retry can deliver the batch again."""
    dr = load_plugin()
    monkeypatch.setenv("PLUGIN_DIR", str(tmp_path))

    class Broken(FakeLocal):
        def query(self, sql: str, args=None):  # type: ignore[no-untyped-def]
            raise RuntimeError("query failed")

    local = Broken()
    batches = [{"table_name": "cpu", "rows": [{"a": 1.0, "time": 1}]},
               {"table_name": "mem", "rows": [{"b": 2.0, "time": 1}]}]
    with pytest.raises(RuntimeError):
        dr.process_writes(local, batches, {**BASE, "max_retries": "0"})
    assert any(lvl == "ERROR" and "query failed" in t for lvl, t in local.lines)
    q = dr.Queue(str(tmp_path), "edr_queue_writes.jsonl.gz", None)
    with q.locked():
        q.load()
    assert q.total_lines() == 0


# ---- data-write mode ------------------------------------------------------------------


def test_data_write_mode_filters_and_renames(pair, triggers):
    source, remote = pair
    triggers.create("fw", "repl_fw", "all_tables", remote_args(
        remote, "r_fw", tables="cpu.mem", excluded_fields="cpu:secret@dc.mem:junk",
        tables_rename="cpu:cpu_copy", field_renames="cpu:usage@usage_pct$host@hostname"
        ".mem:free@avail"))
    triggers.create("fw", "repl_fw_mem", "table:mem", remote_args(remote, "r_fw_mem"))
    t1, t2, t3 = 1_700_000_000_000_000_001, 1_700_000_001_000_000_000, 1_700_000_002_500_000_000
    write(source, "fw",
          f'cpu,host=a\\ b\\,c\\=d,dc=x usage=1.5,n=-3i,u=7u,ok=true,msg="hi \\"q\\" \\\\z",'
          f'secret=9 {t1}\n'
          f"cpu,host=c usage=2.5 {t2}\n"
          f"mem,host=a free=10i,junk=1 {t1}\n"
          f"mem,host=b junk=2 {t2}\n"
          f"disk,host=a used=1 {t1}")
    write(source, "fw", f"cpu,host=a\\ b\\,c\\=d,dc=y usage=3.5 {t3}")
    assert wait_for(lambda: count(remote, "r_fw", "cpu_copy") == 3
                    and count(remote, "r_fw", "mem") == 1), log_text(source, "repl_fw")
    got = rows(remote, "r_fw", "SELECT CAST(time AS BIGINT) AS t, * FROM cpu_copy ORDER BY t")
    for r in got:
        del r["time"]
    assert got == nn([
        {"t": t1, "hostname": "a b,c=d", "usage_pct": 1.5, "n": -3, "u": 7, "ok": True,
         "msg": 'hi "q" \\z'},
        {"t": t2, "hostname": "c", "usage_pct": 2.5, "n": None, "u": None, "ok": None,
         "msg": None},
        {"t": t3, "hostname": "a b,c=d", "usage_pct": 3.5, "n": None, "u": None, "ok": None,
         "msg": None},
    ])
    types = {r["column_name"]: r["data_type"] for r in rows(
        remote, "r_fw", "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'cpu_copy'")}
    assert types == {"hostname": "Dictionary(Int32, Utf8)", "usage_pct": "Float64",
                     "n": "Int64", "u": "UInt64", "ok": "Boolean", "msg": "Utf8",
                     "time": types["time"]}
    assert rows(remote, "r_fw", "SELECT host, avail FROM mem") == [{"host": "a", "avail": 10}]
    assert {r["table_name"] for r in rows(remote, "r_fw", "SHOW TABLES")
            if r["table_schema"] == "iox"} == {"cpu_copy", "mem"}
    # the table:mem trigger sees only mem, unfiltered
    assert wait_for(lambda: count(remote, "r_fw_mem", "mem") == 2)
    assert {r["table_name"] for r in rows(remote, "r_fw_mem", "SHOW TABLES")
            if r["table_schema"] == "iox"} == {"mem"}
    text = log_text(source, "repl_fw")
    assert "Starting data replication process" in text
    assert "Queued 3 lines from cpu,mem" in text
    assert "Replicated 3 lines to remote instance" in text
    assert "Skipped 1 rows of table mem: no fields left after exclusions" in text
    assert "Finished execution in" in text and "ERROR" not in text
    # every run's lines carry its task id
    ids = {t.split("]")[0] for _, t in logs(source, "repl_fw") if t.startswith("[")}
    assert len(ids) >= 2


def test_data_write_downsampling_with_aggregate_interval(pair, triggers):
    source, remote = pair
    triggers.create("agg", "repl_agg", "all_tables", remote_args(
        remote, "r_agg", tables="m", aggregate_interval="1s", excluded_fields="m:dc",
        field_renames="m:f@f_mean"))
    base = (time.time_ns() // NS - 3600) * NS  # closed buckets: sent at once
    ms = 1_000_000
    write(source, "agg", "\n".join([
        f'm,host=a,dc=1 f=1.0,i=1i,u=1u,s="x",b=true {base + 100 * ms}',
        f'm,host=a,dc=2 f=2.0,i=2i,u=2u,s="y",b=false {base + 500 * ms}',
        f'm,host=a,dc=1 f=4.0,i=2i,u=2u,s="z",b=true {base + 900 * ms}',
        f"m,host=b f=10.0 {base + 200 * ms}",
        f'm,host=a f=8.0,s="w" {base + 1300 * ms}',
    ]))
    write(source, "agg", f"m,host=a f=5.0,i=7i {base + 2500 * ms}")
    # an open bucket filled by two separate writes is sent once, after it closed
    live = (time.time_ns() // NS + 1) * NS
    before = runs(source, "repl_agg")
    write(source, "agg", f"m,host=live f=1.0,i=1i {live + 100 * ms}")
    assert wait_for(lambda: runs(source, "repl_agg") > before)  # its run is over
    write(source, "agg", f"m,host=live f=2.0,i=4i {live + 700 * ms}")

    sql = "SELECT CAST(time AS BIGINT) AS t, host, f_mean, i, u, s, b FROM m ORDER BY host, t"
    assert wait_for(lambda: count(remote, "r_agg", "m") == 4), log_text(source, "repl_agg")
    want = [
        {"t": base, "host": "a", "f_mean": 7 / 3, "i": 2, "u": 2, "s": "z", "b": True},
        {"t": base + NS, "host": "a", "f_mean": 8.0, "i": None, "u": None, "s": "w",
         "b": None},
        {"t": base + 2 * NS, "host": "a", "f_mean": 5.0, "i": 7, "u": None, "s": None,
         "b": None},
        {"t": base, "host": "b", "f_mean": 10.0, "i": None, "u": None, "s": None, "b": None},
    ]
    assert rows(remote, "r_agg", sql) == nn(want)
    # the live bucket closes at live + 1s (+ 2s grace); any later flush sends it
    while time.time_ns() < live + 3 * NS + NS // 5:  # that moment on the wall clock
        time.sleep(0.05)
    before = runs(source, "repl_agg")
    write(source, "agg", f"other v=1 {time.time_ns()}")
    assert wait_for(lambda: count(remote, "r_agg", "m") == 5), log_text(source, "repl_agg")
    # nothing is sent twice: the run of a later flush must be over before looking
    write(source, "agg", f"other v=2 {time.time_ns()}")
    assert wait_for(lambda: runs(source, "repl_agg") >= before + 2)
    got = rows(remote, "r_agg", sql)
    assert got == nn([*want, {"t": live, "host": "live", "f_mean": 1.5, "i": 3, "u": None,
                              "s": None, "b": None}])
    types = {r["column_name"]: r["data_type"] for r in rows(
        remote, "r_agg", "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'm'")}
    assert (types["i"], types["u"], types["b"], types["s"]) == ("Int64", "UInt64", "Boolean",
                                                               "Utf8")
    assert "dc" not in types


# ---- scheduled mode -------------------------------------------------------------------


def test_scheduled_mode_windows_offset_and_downsampling(pair, triggers):
    source, remote = pair
    create_db(source, "sch")
    write(source, "sch", "m,host=a seq=-1i,f=0.0")  # the table exists before the first run
    # (an offset of 1 s leaves rows time to become queryable before their window is read)
    common = {"source_measurement": "m", "window": "1s"}
    triggers.create("sch", "sched_raw", "every:1s", remote_args(
        remote, "r_sch", **common, offset="1s", tables_rename="m:m_copy",
        excluded_fields="m:skip", field_renames="m:seq@n"))
    triggers.create("sch", "sched_off", "every:1s", remote_args(
        remote, "r_sch_off", **common, offset="2s"))
    triggers.create("sch", "sched_ds", "every:1s", remote_args(
        remote, "r_sch_ds", **common, offset="1s", downsample="true"))
    # each trigger's first run is over: their first windows start before these rows
    assert wait_for(lambda: all(runs(source, t) >= 1
                                for t in ("sched_raw", "sched_off", "sched_ds")))
    first = time.time_ns()
    seq = 0
    while time.time_ns() - first < 3 * NS:
        lines = []
        for host in ("a", "b"):
            lines.append(f'm,host={host} seq={seq}i,f={seq / 7},skip=1i,s="v{seq}",'
                         f"b={'true' if seq % 3 else 'false'}")
            seq += 1
        write(source, "sch", "\n".join(lines))
        time.sleep(0.05)
    last_written = time.time_ns()

    def lag_checked() -> bool:
        """The 2 s offset trigger lags: nothing newer than (now - 2 s) ever arrived."""
        asked = time.time_ns()
        newest = rows(remote, "r_sch_off", "SELECT max(CAST(time AS BIGINT)) AS t FROM m")
        if not newest or newest[0].get("t") is None:
            return False
        assert newest[0]["t"] < asked - 2 * NS + NS // 10
        return True

    assert wait_for(lag_checked)

    local = rows(source, "sch", "SELECT CAST(time AS BIGINT) AS t, host, seq, f, s, b FROM m "
                 "WHERE seq >= 0 ORDER BY t")
    assert len(local) == seq

    def arrived(db: str, table: str, col: str) -> set[int]:
        got = rows(remote, db, f"SELECT {col} AS n FROM {table}")
        return {r["n"] for r in got}

    # every row after the first window, exactly once, in both raw triggers
    assert wait_for(lambda: set(range(seq)) <= arrived("r_sch", "m_copy", "n"),
                    timeout=15), log_text(source, "sched_raw")
    assert wait_for(lambda: set(range(seq)) <= arrived("r_sch_off", "m", "seq"), timeout=15), \
        (sorted(set(range(seq)) - arrived("r_sch_off", "m", "seq")), log_text(source, "sched_off"))
    # two more runs of each: nothing is sent twice
    done = {t: runs(source, t) for t in ("sched_raw", "sched_off")}
    assert wait_for(lambda: all(runs(source, t) >= n + 2 for t, n in done.items()))
    for db, table, col in (("r_sch", "m_copy", "n"), ("r_sch_off", "m", "seq")):
        got = rows(remote, db, f"SELECT count(*) AS c, count(DISTINCT {col}) AS d FROM {table}")
        assert got[0]["c"] == got[0]["d"], (db, got)
    raw = rows(remote, "r_sch", "SELECT * FROM m_copy WHERE n >= 0")
    assert {tuple(sorted(r)) for r in raw} == {("b", "f", "host", "n", "s", "time")}

    # downsampled: one point per host and 1 s window (the window's start), aggregating
    # exactly the local rows of that window
    points = rows(remote, "r_sch_ds", "SELECT CAST(time AS BIGINT) AS t, host, seq, f, s, b "
                  "FROM m ORDER BY t, host")
    assert len({(p["t"], p["host"]) for p in points}) == len(points)
    covered = [p for p in points if first - NS <= p["t"] and p["t"] + NS <= last_written]
    assert len(covered) >= 4, points
    for p in covered:
        group = [r for r in local if r["host"] == p["host"] and p["t"] <= r["t"] < p["t"] + NS]
        assert group, p
        assert p["t"] % NS == 0
        n = len(group)
        total = sum(r["seq"] for r in group)
        assert p["seq"] == total // n + (1 if 2 * (total % n) >= n else 0)
        assert p["f"] == pytest.approx(sum(r["f"] for r in group) / n)
        assert (p["s"], p["b"]) == (group[-1]["s"], group[-1]["b"])
    # no window of written rows was skipped between the first and last point
    windows = {p["t"] for p in covered}
    assert windows == set(range(min(windows), max(windows) + NS, NS))
    text = log_text(source, "sched_raw")
    assert "Starting execution with scheduled time" in text
    assert "Queued" in text and "Replicated" in text and "ERROR" not in text


# ---- delivery: outages, rate limits, TLS ----------------------------------------------


def own_remote(server_factory) -> WeirServer:  # type: ignore[no-untyped-def]
    """A remote of the test's own, for tests that stop and restart it (a Weir server that
    ever held more than 5 databases cannot restart: see the module's README notes)."""
    return server_factory("own_remote", extra_args=["--wal-flush-interval", "10ms"]).start()


def test_remote_outage_nothing_lost_nothing_doubled(pair, triggers, server_factory):
    source = pair[0]
    remote = own_remote(server_factory)
    create_db(source, "out")
    write(source, "out", "w,k=x seq=-1i")
    write(source, "out", "s,k=x seq=-1i")
    triggers.create("out", "out_w", "all_tables", remote_args(
        remote, "r_out", tables="w", max_retries="1", field_renames="w:seq@n",
        tables_rename="w:w_copy"))
    triggers.create("out", "out_s", "every:1s", remote_args(
        remote, "r_out_s", source_measurement="s", window="1s", offset="1s", max_retries="0"))
    write(source, "out", "w,k=a seq=0i")
    assert wait_for(lambda: count(remote, "r_out", "w_copy") == 1)
    assert wait_for(lambda: runs(source, "out_s") >= 2)  # the schedule delivered before

    # the outage is provoked: both triggers report it
    expect_plugin_errors(source, "out_w", r"Error during replication: connection failed")
    expect_plugin_errors(source, "out_s", r"Error during replication: ")
    remote.stop()
    n = 1
    for _ in range(5):  # several runs of both triggers while the remote is down
        failures = log_text(source, "out_w").count("connection failed")
        # distinct times: lines of one series at one time would be one point
        t0 = time.time_ns()
        batch = [f"w,k={'ab'[i % 2]} seq={n + i}i {t0 + i}" for i in range(25)]
        batch += [f"s,k=x seq={n + i}i {t0 + i}" for i in range(25)]
        write(source, "out", "\n".join(batch))
        n += 25
        # this write's run failed too before the next write
        assert wait_for(lambda f=failures: log_text(source, "out_w").count(
            "connection failed") > f), log_text(source, "out_w")
    assert wait_for(lambda: "Error during replication" in log_text(source, "out_s"))
    plugin_dir = source.plugin_dir
    assert plugin_dir is not None
    assert (plugin_dir / "edr_queue_writes.jsonl.gz").stat().st_size > 0
    text = log_text(source, "out_w")
    assert "Error during replication: connection failed" in text, text
    assert "retrying in 0.5s" in text and "lines remain queued" in text
    assert "Error during replication" in log_text(source, "out_s")
    s_written = {r["seq"] for r in rows(source, "out", "SELECT seq FROM s WHERE seq > 0")}

    restart_on_same_port(remote)
    write(source, "out", f"w,k=a seq={n}i")  # the next data-write run flushes the backlog
    want = set(range(n + 1))
    assert wait_for(lambda: {r["n"] for r in rows(remote, "r_out", "SELECT n FROM w_copy")}
                    == want), log_text(source, "out_w")
    assert wait_for(lambda: s_written <= {r["seq"] for r in rows(
        remote, "r_out_s", "SELECT seq FROM s")}), log_text(source, "out_s")
    # nothing doubled: a later write arrives alone, and two more scheduled runs send nothing
    # twice
    done = runs(source, "out_s")
    write(source, "out", f"w,k=a seq={n + 1}i")
    assert wait_for(lambda: count(remote, "r_out", "w_copy") == len(want) + 1)
    assert {r["n"] for r in rows(remote, "r_out", "SELECT n FROM w_copy")} == set(range(n + 2))
    assert wait_for(lambda: runs(source, "out_s") >= done + 2)
    got = rows(remote, "r_out_s", "SELECT count(*) AS c, count(DISTINCT seq) AS d FROM s")
    assert got[0]["c"] == got[0]["d"]
    assert "Replicated" in log_text(source, "out_w").split("connection failed")[-1]


def test_kill9_right_after_acknowledged_writes_every_row_arrives_once(server_factory, tmp_path):
    """The source is killed -9 right after its last acknowledged write, with rows not yet
    replicated, and restarted on the same data dir: the WAL trigger resumes from its
    checkpoint, so the remote ends up with every acknowledged row, once (a line sent twice,
    from the WAL and from the plugin's queue, is the same point: last write wins)."""
    remote = own_remote(server_factory)
    source = start_source(tmp_path / "killed")
    proxy = Proxy(remote, [], delay=0.3)  # a slow remote: rows are pending at the kill
    try:
        create_db(source, "k9")
        out = cli(source, "create", "trigger", "--database", "k9", "--plugin-filename",
                  "data_replicator.py", "--trigger-spec", "table:m", "--trigger-arguments",
                  ",".join(f"{k}={v}" for k, v in remote_args(proxy.port, "r_k9").items()),
                  "k9_w").stdout
        assert "Trigger k9_w created successfully" in out
        n, per_write = 6000, 60
        t0 = time.time_ns()
        for start in range(0, n, per_write):  # ids are unique, and so are the times
            write(source, "k9", "\n".join(f"m,src=a id={i}i {t0 + i * 1000}"
                                          for i in range(start, start + per_write)))
        source.kill9()  # right after the last acknowledgement
        at_kill = count(remote, "r_k9", "m")
        assert at_kill < n, "every row was replicated before the kill: nothing was pending"
        source.port = free_port()
        source.start()

        def totals() -> tuple[int, int]:
            got = rows(remote, "r_k9", "SELECT count(*) AS c, count(DISTINCT id) AS d FROM m")
            return (got[0]["c"], got[0]["d"]) if got else (0, 0)

        assert wait_for(lambda: totals() == (n, n), timeout=40), \
            (at_kill, totals(), log_text(source, "k9_w"))
        assert wait_for(lambda: (st := rows(source, "k9", (
            "SELECT wal_lag_files FROM system.processing_engine_triggers "
            "WHERE trigger_name = 'k9_w'"))) and st[0]["wal_lag_files"] == 0)
        time.sleep(1.0)  # anything sent again would have arrived by now
        assert totals() == (n, n)
        got = rows(remote, "r_k9", "SELECT min(id) AS lo, max(id) AS hi FROM m")[0]
        assert (got["lo"], got["hi"]) == (0, n - 1)
        text = log_text(source, "k9_w")
        assert "resuming after WAL file " in text, text
        if "is corrupt" in text:  # the kill tore the queue file's last append: allowed
            expect_plugin_errors(source, "k9_w", r"Queue file \S+ is corrupt ")
    finally:
        proxy.close()
        if source.proc is not None and source.proc.poll() is None:
            source.stop(signal.SIGKILL, check=False)


def test_rate_limit_429_retry_after_then_204(pair, triggers):
    source, remote = pair
    proxy = Proxy(remote, [(503, {}), (429, {"Retry-After": "1"}),
                           (429, {"Retry-After": "1"})])
    try:
        triggers.create("rl", "rl_w", "all_tables", remote_args(proxy.port, "r_rl",
                                                                max_retries="3"))
        write(source, "rl", "\n".join(f"m seq={i}i {1_700_000_000 * NS + i}"
                                      for i in range(50)))
        assert wait_for(lambda: count(remote, "r_rl", "m") == 50, timeout=20), \
            log_text(source, "rl_w")
        statuses = [s for _, s in proxy.seen]
        assert statuses[:4] == [503, 429, 429, 204], statuses
        times = [t for t, _ in proxy.seen]
        assert times[1] - times[0] >= 0.45  # backoff after the 503
        assert times[2] - times[1] >= 0.95 and times[3] - times[2] >= 0.95  # Retry-After: 1
        text = log_text(source, "rl_w")
        assert text.count("Rate limit hit (HTTP 429), retrying after 1s") == 2
        assert "HTTP 503" in text and "Replicated 50 lines to remote instance" in text
    finally:
        proxy.close()

    # max_retries=0 and a Retry-After: later runs wait for it instead of hammering
    proxy = Proxy(remote, [(429, {"Retry-After": "2"})])
    # the 429 is reported; rl_w (all tables of rl) still points at the closed first proxy
    expect_plugin_errors(source, "rl_w0", r"Error during replication: HTTP 429: "
                         r'\{"error": "scripted"\}; the remote asked to retry after 2s')
    expect_plugin_errors(source, "rl_w", r"Error during replication: connection failed: "
                         r"\[Errno 111\] Connection refused")
    try:
        triggers.create("rl", "rl_w0", "table:m0", remote_args(proxy.port, "r_rl0",
                                                               max_retries="0"))
        write(source, "rl", f"m0 seq=1i {1_700_000_000 * NS}")
        assert wait_for(lambda: "asked to retry after 2s" in log_text(source, "rl_w0"))
        write(source, "rl", f"m0 seq=2i {1_700_000_000 * NS + 1}")
        assert wait_for(lambda: "(Retry-After); 2 lines stay queued" in
                        log_text(source, "rl_w0")), log_text(source, "rl_w0")
        # Retry-After: 2 counts from the 429 (with a margin for the plugin's own clock)
        wait_until_monotonic(proxy.seen[0][0] + 2.5)
        write(source, "rl", f"m0 seq=3i {1_700_000_000 * NS + 2}")
        assert wait_for(lambda: count(remote, "r_rl0", "m0") == 3), log_text(source, "rl_w0")
        assert [s for _, s in proxy.seen] == [429, 204]
    finally:
        proxy.close()


def test_lines_the_remote_refuses_are_set_aside(pair, triggers):
    """A partial write (400 with per-line errors): the valid lines are written, the
    refused ones go to the .rejected file with the remote's message, the queue moves on."""
    source, remote = pair
    write(remote, "r_rej", f"conf v=1.0 {1_700_000_000 * NS}")  # v is a float remotely
    triggers.remote_dbs.add("r_rej")
    triggers.create("rej", "rej_w", "all_tables", remote_args(remote, "r_rej"))
    expect_plugin_errors(source, "rej_w", r"The remote rejected 1 of 2 lines \(first, line 1: "
                         r"invalid field type for 'v': expected float, got integer\)")
    write(source, "rej", "\n".join([f"conf v=2i {1_700_000_000 * NS + 1}",
                                     f"conf w=3i {1_700_000_000 * NS + 2}"]))
    assert wait_for(lambda: count(remote, "r_rej", "conf") == 2), log_text(source, "rej_w")
    assert wait_for(lambda: "The remote rejected 1 of 2 lines" in log_text(source, "rej_w"))
    assert source.plugin_dir is not None
    path = source.plugin_dir / "edr_queue_writes.rejected.jsonl.gz"
    with gzip.open(path, "rt") as f:
        recs = [json.loads(line) for line in f]
    assert [r["line"] for r in recs if r["dest"].endswith("/r_rej")] == \
        [f"conf v=2i {1_700_000_000 * NS + 1}"]
    write(source, "rej", f"conf w=4i {1_700_000_000 * NS + 3}")  # later lines still flow
    assert wait_for(lambda: count(remote, "r_rej", "conf") == 3)


def test_https_remote_and_verify_ssl(pair, triggers, tmp_path):
    source, remote = pair
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    proxy = Proxy(remote, [], tls=(str(cert), str(key)))
    expect_plugin_errors(source, "tls_on", r"Error during replication: connection failed: "
                         r"\[SSL: CERTIFICATE_VERIFY_FAILED\]")
    try:
        triggers.create("tls", "tls_off", "all_tables", remote_args(
            proxy.port, "r_tls", host="https://127.0.0.1", verify_ssl="false"))
        triggers.create("tls", "tls_on", "all_tables", remote_args(
            proxy.port, "r_tls_on", host="https://127.0.0.1", max_retries="0"))
        write(source, "tls", f"m v=1i {1_700_000_000 * NS}")
        assert wait_for(lambda: count(remote, "r_tls", "m") == 1), log_text(source, "tls_off")
        assert wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in log_text(source, "tls_on"))
        assert count(remote, "r_tls_on", "m") == 0
    finally:
        proxy.close()


# ---- the queue file: corrupt or over max_size -------------------------------------------


def _dest(remote: WeirServer, db: str) -> str:
    return f"http://127.0.0.1:{remote.port}/{db}"


def _queue_bytes(dr, path: Path, dest: str, lines: list[str]) -> bytes:  # type: ignore[no-untyped-def]
    class Quiet:
        def error(self, msg: str) -> None:
            raise AssertionError(msg)

    q = dr.Queue(str(path.parent), path.name, Quiet())
    with q.locked():
        q.load()
        q.add_lines(dest, [("pre", line) for line in lines])
    data = path.read_bytes()
    path.unlink()
    return data


def test_corrupt_queue_file(pair, triggers, tmp_path):
    _, remote = pair
    source = start_source(tmp_path / "solo")
    try:
        dr = load_plugin()
        plugin_dir = source.plugin_dir
        assert plugin_dir is not None
        queue = plugin_dir / "edr_queue_writes.jsonl.gz"
        dest = _dest(remote, "r_bad")
        good1 = _queue_bytes(dr, queue, dest, [f"pre v={i}i {1_700_000_000 * NS + i}"
                                               for i in range(3)])
        good2 = _queue_bytes(dr, queue, dest, [f"pre v=3i {1_700_000_000 * NS + 3}"])
        torn = _queue_bytes(dr, queue, dest, [f"pre v=4i {1_700_000_000 * NS + 4}"])
        # valid member, garbage, valid member, a member cut short by a crash
        queue.write_bytes(good1 + b"\x00garbage\xff" * 10 + good2 + torn[: len(torn) // 2])
        triggers.source = source
        t = triggers
        expect_plugin_errors(source, "bad_q", r"Queue file \S+ is corrupt ")
        t.create("bad", "bad_q", "all_tables", remote_args(remote, "r_bad"))
        write(source, "bad", f"m v=1i {1_700_000_000 * NS}")
        assert wait_for(lambda: count(remote, "r_bad", "pre") == 4
                        and count(remote, "r_bad", "m") == 1), log_text(source, "bad_q")
        text = log_text(source, "bad_q")
        assert "ERROR [" in text and f"Queue file {queue} is corrupt" in text
        assert "kept the 4 queued lines" in text
        aside = list(plugin_dir.glob("edr_queue_writes.jsonl.gz.corrupt-*"))
        assert len(aside) == 1 and aside[0].read_bytes().startswith(good1)

        # a file that is not gzip at all: set aside too, replication goes on
        for p in aside:
            p.unlink()
        queue.write_bytes(b'{"seq": 1, "dest": "not gzip"}\n')
        write(source, "bad", f"m v=2i {1_700_000_000 * NS + 1}")
        assert wait_for(lambda: count(remote, "r_bad", "m") == 2), log_text(source, "bad_q")
        assert len(list(plugin_dir.glob("edr_queue_writes.jsonl.gz.corrupt-*"))) == 1
        assert source.proc is not None and source.proc.poll() is None
        assert {r["v"] for r in rows(remote, "r_bad", "SELECT v FROM pre")} == {0, 1, 2, 3}
    finally:
        source.stop(signal.SIGKILL)


def test_oversized_queue_file(pair, triggers, tmp_path, server_factory):
    remote = own_remote(server_factory)
    source = start_source(tmp_path / "solo")
    try:
        dr = load_plugin()
        plugin_dir = source.plugin_dir
        assert plugin_dir is not None
        rnd = random.Random(7)

        def big_lines(tag: str) -> list[str]:
            return [f'big,q={tag} v="{"".join(rnd.choices(string.ascii_letters, k=900))}" '
                    f"{1_700_000_000 * NS + i}" for i in range(1700)]

        for name, db in (("edr_queue_writes.jsonl.gz", "r_big"),
                         ("edr_queue_schedule.jsonl.gz", "r_big_s")):
            path = plugin_dir / name
            path.write_bytes(_queue_bytes(dr, path, _dest(remote, db), big_lines(db)))
            assert path.stat().st_size > 1024 * 1024
        port = remote.port
        remote.stop()
        create_db(source, "big")
        write(source, "big", "s seq=-1i")
        triggers.source = source
        t = triggers
        # the queue is full and the remote is down, on purpose
        for trig in ("big_w", "big_s"):
            expect_plugin_errors(
                source, trig, r"Queue file \S+ is 1\.\d MB; adding \d+ lines would exceed "
                r"max_size=1 MB",
                # (or, for a scheduled run while the remote starts again below and answers
                # 503 until ready: start() returns only then, but the schedule does not wait)
                r"Error during replication: (connection failed: \[Errno 111\]"
                r"|HTTP 503: \{\"error\":\"the server is starting)")
        expect_plugin_errors(source, "big_w", r"Deferred \d+ rows of table m ")
        t.create("big", "big_w", "all_tables", remote_args(port, "r_big", max_size="1",
                                                           max_retries="0", tables="m"))
        t.create("big", "big_s", "every:1s", remote_args(
            port, "r_big_s", max_size="1", max_retries="0", source_measurement="s",
            window="1s", offset="1s"))
        assert wait_for(lambda: runs(source, "big_s") >= 1)  # its first window has started
        for i in range(6):  # data-write runs and scheduled runs find the queue full
            done = runs(source, "big_w")
            t0 = time.time_ns()  # distinct times: one series at one time is one point
            write(source, "big", "\n".join(f"m seq={i * 10 + j}i {t0 + j}" for j in range(10)))
            write(source, "big", "\n".join(f"s seq={i * 10 + j}i {t0 + j}" for j in range(10)))
            assert wait_for(lambda d=done: runs(source, "big_w") >= d + 2)
        for trig in ("big_w", "big_s"):
            assert wait_for(lambda t=trig: "would exceed max_size=1 MB" in log_text(source, t)), \
                log_text(source, trig)
        assert "rows of table m (the range from" in log_text(source, "big_w")
        s_local = {r["seq"] for r in rows(source, "big", "SELECT seq FROM s WHERE seq >= 0")}

        restart_on_same_port(remote)
        write(source, "big", "m seq=60i")
        assert wait_for(lambda: count(remote, "r_big", "big") == 1700
                        and count(remote, "r_big", "m") == 61, timeout=30), \
            log_text(source, "big_w")
        assert wait_for(lambda: count(remote, "r_big_s", "big") == 1700 and s_local <= {
            r["seq"] for r in rows(remote, "r_big_s", "SELECT seq FROM s")}), \
            log_text(source, "big_s")
        # nothing doubled: a later write arrives alone, two more scheduled runs add nothing
        done = runs(source, "big_s")
        write(source, "big", "m seq=61i")
        assert wait_for(lambda: count(remote, "r_big", "m") == 62)
        assert {r["seq"] for r in rows(remote, "r_big", "SELECT seq FROM m")} == set(range(62))
        assert wait_for(lambda: runs(source, "big_s") >= done + 2)
        got = rows(remote, "r_big_s", "SELECT count(*) AS c, count(DISTINCT seq) AS d FROM s")
        assert got[0]["c"] == got[0]["d"]
        assert (plugin_dir / "edr_queue_writes.jsonl.gz").stat().st_size < 1024 * 1024
        assert source.proc is not None and source.proc.poll() is None
    finally:
        source.stop(signal.SIGKILL)


def test_queue_file_format_is_gzip_jsonl(tmp_path) -> None:
    """The documented format: gzip, one JSON object per line; delivered lines leave it."""
    dr = load_plugin()

    class Log:
        def error(self, msg: str) -> None:
            raise AssertionError(msg)

    q = dr.Queue(str(tmp_path), "edr_queue_writes.jsonl.gz", Log())
    with q.locked():
        q.load()
        q.add_lines("http://h:1/db", [("cpu", "cpu v=1 1"), ("cpu", "cpu v=2 2")], {"k": 1})
        q.add_lines("http://h:1/other", [("mem", "mem v=3 3")])
        q.ack("http://h:1/db", 1)
    with gzip.open(tmp_path / "edr_queue_writes.jsonl.gz", "rt") as f:
        recs = [json.loads(line) for line in f]
    assert recs[0] == {"seq": 1, "dest": "http://h:1/db", "table": "cpu", "line": "cpu v=1 1"}
    assert {"state": {"k": 1}} in recs and {"ack": {"dest": "http://h:1/db", "through": 1}} in recs
    with q.locked():
        q.load()
        assert q.unacked("http://h:1/db") == 1 and q.unacked("http://h:1/other") == 1
        assert [x[2] for x in q.iter_unacked("http://h:1/db")] == ["cpu v=2 2"]
        q.ack("http://h:1/db", 2)
        q.compact()
    with gzip.open(tmp_path / "edr_queue_writes.jsonl.gz", "rt") as f:
        lines = [json.loads(line) for line in f]
    assert [r["line"] for r in lines if "line" in r] == ["mem v=3 3"]
