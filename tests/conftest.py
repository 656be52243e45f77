"""Fixtures that start real Weir servers as subprocesses on free ports, and watch them.

Every `WeirServer` started in a test run is watched: its log (the server's stderr, which
also carries each plugin worker's stderr as `plugin output [...]` lines and each plugin
log line, `influxdb3_local.error(...)` included, as `processing engine [...]` lines at the
plugin's level) is read at the end of every test, at `stop()` and at `restart()`. A log
record at ERROR or CRITICAL level, a Python traceback or a `snapshot failed` fails the
test that owns the server, naming the records, unless the test declared it first:

    srv.expect_log(r"processing engine \\[t1\\]: error executing wal plugin: ValueError")
    srv.expect_log(r"snapshot failed", count=2)

An expectation lasts until the end of the test that declared it; `count=None` (the
default) means "one or more", an int means exactly that many. An expectation that is not
met by the end of the test fails it too (after waiting a while for the record to arrive),
so a declared error is also a checked one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import httpx
import pytest

if TYPE_CHECKING:
    from support.s3 import S3Server

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]  # test_server_log_watch.py runs the fixtures in a pytest of its own

# The server logs with `%(asctime)s %(levelname)s %(name)s: %(message)s` (weir.server.run);
# uvicorn's own loggers print `LEVEL:    message`. Any other line continues the record
# before it (a traceback of log.exception, a multi-line plugin error).
_WEIR_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>\S+): ")
_UVICORN_RECORD = re.compile(r"^(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL):\s+")
_BAD_LEVELS = frozenset({"ERROR", "CRITICAL"})
_BAD_TEXT = re.compile(r"Traceback \(most recent call last\)|snapshot failed"
                       r"|^Exception ignored in", re.MULTILINE)
# How long an unmet expectation waits for its record (the server logs asynchronously).
EXPECT_DEADLINE_S = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def weir_cmd() -> list[str]:
    """The installed `influxdb3` entry point, as a user runs it."""
    exe = shutil.which("influxdb3", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "weir"]


@dataclass
class LogRecord:
    line_number: int  # 1-based, in the log file
    level: str | None  # None: text outside any formatted record
    text: str

    @property
    def bad(self) -> bool:
        return self.level in _BAD_LEVELS or _BAD_TEXT.search(self.text) is not None

    def show(self, max_lines: int = 40) -> str:
        lines = self.text.split("\n")
        more = f"\n    ... ({len(lines) - max_lines} more lines)" if len(lines) > max_lines else ""
        return f"  log line {self.line_number}:\n    " + "\n    ".join(lines[:max_lines]) + more


@dataclass
class ExpectedLog:
    """One declared error: records matching `pattern` are expected, `count` times."""

    pattern: re.Pattern[str]
    count: int | None
    matched: list[LogRecord] = field(default_factory=list)

    def unmet(self) -> str | None:
        n = len(self.matched)
        if self.count is None and n == 0:
            return f"expected a log record matching {self.pattern.pattern!r}; none was logged"
        if self.count is not None and n != self.count:
            return (f"expected {self.count} log record(s) matching {self.pattern.pattern!r}; "
                    f"{n} were logged")
        return None


def parse_log(text: str, first_line: int = 1) -> list[LogRecord]:
    """Group log lines into records: a formatted line starts one, other lines continue it."""
    records: list[LogRecord] = []
    for i, line in enumerate(text.split("\n")):
        m = _WEIR_RECORD.match(line) or _UVICORN_RECORD.match(line)
        if m or not records:
            records.append(LogRecord(first_line + i, m.group("level") if m else None, line))
        else:
            records[-1].text += "\n" + line
    return records


# The store the whole suite runs on: `WEIR_TEST_STORE=s3` (scripts/test.sh's second pass)
# turns every server a test starts on the `file` store into one on the session's SeaweedFS
# (issue #13: "the whole existing suite also on S3"). Tests that look inside the data dir
# or break the disk under the server are marked `file_only` and skipped on that run.
SUITE_STORE = os.environ.get("WEIR_TEST_STORE", "file")
if SUITE_STORE not in ("file", "s3"):
    raise pytest.UsageError(f"WEIR_TEST_STORE={SUITE_STORE!r}: expected file or s3")
_SUITE_S3: list[S3Server] = []  # the session's SeaweedFS once started (s3 runs only)
# resolved data dir -> the S3 server and bucket its servers use; a test's buckets are
# deleted once it ends (SeaweedFS gives each bucket volumes of its own, and runs out of
# them after about a hundred buckets: a whole-suite pass makes hundreds)
_BUCKETS: dict[str, tuple[S3Server, str]] = {}


def suite_s3() -> S3Server | None:
    if SUITE_STORE != "s3":
        return None
    if not _SUITE_S3:
        raise RuntimeError("WEIR_TEST_STORE=s3 but the suite's S3 server is not started "
                           "(the session fixture _suite_store starts it)")
    return _SUITE_S3[0]


# Servers whose logs still have to be checked: every started server until its final check.
_WATCHED: list[WeirServer] = []
_LOG_PATHS: set[Path] = set()


class WeirServer:
    """A real server process with its own data dir; restartable and killable; watched."""

    def __init__(self, data_dir: Path, *, plugin_dir: Path | None = None,
                 extra_args: list[str] | None = None, object_store: str = "file",
                 env: dict[str, str] | None = None, auth: bool = False,
                 s3: S3Server | Literal["suite"] | None = "suite") -> None:
        self.auth = auth
        # Where a `file` server really keeps its data: on its data dir, or (the suite run
        # with WEIR_TEST_STORE=s3, or a `both_stores` test's S3 half) in a bucket of this
        # S3 server, one bucket per data dir, so a restart or a second server over the
        # same dir finds the same data.
        self.s3 = suite_s3() if s3 == "suite" else s3
        self.data_dir = data_dir
        self.plugin_dir = plugin_dir
        self.extra_args = extra_args or []
        self.object_store = object_store
        self.env = env or {}
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        # One log per WeirServer object (restarts append to it): two objects over the same
        # data dir, even at once, each check their own process's records.
        self.log_path = data_dir.parent / f"server-{data_dir.name}.log"
        n = 1
        while self.log_path in _LOG_PATHS or self.log_path.exists():
            n += 1
            self.log_path = data_dir.parent / f"server-{data_dir.name}-{n}.log"
        _LOG_PATHS.add(self.log_path)
        self._launched = False
        self._log_offset = 0  # bytes of the log already checked
        self._log_lines = 0
        self._expected: list[ExpectedLog] = []
        self._unchecked: list[LogRecord] = []  # bad records found by stop(), reported later

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self._proc

    @proc.setter
    def proc(self, value: subprocess.Popen[bytes] | None) -> None:
        # Any way of launching the process (subclasses included) puts it under watch.
        self._proc = value
        if value is not None and not self._launched:
            # Another WeirServer may have used this log before (a second object over the
            # same data dir): its lines were that object's to check.
            self._launched = True
            try:
                before = self.log_path.read_bytes()
            except FileNotFoundError:
                before = b""
            self._log_offset = len(before)
            self._log_lines = before.count(b"\n")
        if value is not None and self not in _WATCHED:
            _WATCHED.append(self)

    @property
    def on_s3(self) -> bool:
        """Whether this server keeps its data in S3 although the test asked for `file`."""
        return self.object_store == "file" and self.s3 is not None

    def store_args(self) -> list[str]:
        if self.s3 is None or self.object_store != "file":
            return ["--object-store", self.object_store]
        key = str(self.data_dir.resolve())
        if key not in _BUCKETS:
            _BUCKETS[key] = (self.s3, self.s3.new_bucket())
        return self.s3.store_args(_BUCKETS[key][1])

    def _bucket(self):  # type: ignore[no-untyped-def]
        """(boto3 client, bucket) when the server keeps its data in S3, else None: a `file`
        server moved onto the suite's S3, or one started with explicit S3 flags."""
        from support.s3 import S3Server, _client
        if self.on_s3:
            s3, bucket = _BUCKETS[str(self.data_dir.resolve())]
            return _client(s3), bucket
        if self.object_store != "s3":
            return None

        def flag(name: str) -> str:
            return self.extra_args[self.extra_args.index(name) + 1]

        given = S3Server("given", flag("--aws-endpoint"), flag("--aws-access-key-id"),
                         flag("--aws-secret-access-key"), flag("--bucket"))
        return _client(given), given.bucket

    def stored_objects(self, prefix: str = "") -> set[str]:
        """The paths of every object the server stored under `prefix` (a string prefix):
        files under its data dir, or keys of its bucket when it runs on S3, so tests that
        check what was written run on either store."""
        bucket = self._bucket()
        if bucket is not None:
            client, name = bucket
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=name,
                                                                      Prefix=prefix)
            return {o["Key"] for page in pages for o in page.get("Contents", [])}
        base = self.data_dir
        return {k for p in base.rglob("*") if p.is_file()
                and (k := str(p.relative_to(base))).startswith(prefix)}

    def read_object(self, path: str) -> bytes:
        """One stored object's bytes (a path from `stored_objects`)."""
        bucket = self._bucket()
        if bucket is not None:
            client, name = bucket
            body: bytes = client.get_object(Bucket=name, Key=path)["Body"].read()
            return body
        return (self.data_dir / path).read_bytes()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> WeirServer:
        args = [*weir_cmd(), "serve", "--node-id", "test-node", *self.store_args(),
                "--data-dir", str(self.data_dir), "--http-bind",
                f"127.0.0.1:{self.port}", *([] if self.auth else ["--without-auth"]),
                *self.extra_args]
        if self.plugin_dir is not None:
            args += ["--plugin-dir", str(self.plugin_dir)]
        env = {**os.environ, **self.env}
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - the server's stdout until stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        healthy = (200, 401) if self.auth else (200,)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code in healthy:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except FileNotFoundError:
            return ""

    # ---- the log watch ---------------------------------------------------------------

    def expect_log(self, pattern: str, count: int | None = None) -> ExpectedLog:
        """Declare an error record this test provokes on purpose (see the module doc).

        `pattern` is searched (re.MULTILINE) in the whole record, traceback included."""
        if count is not None and count < 1:
            raise ValueError("count must be None (one or more) or at least 1")
        exp = ExpectedLog(re.compile(pattern, re.MULTILINE), count)
        self._expected.append(exp)
        return exp

    def _read_new_records(self) -> list[LogRecord]:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
        if end == 0:
            return []
        self._log_offset += end
        text = data[:end - 1].decode("utf-8", "replace")
        records = parse_log(text, self._log_lines + 1)
        self._log_lines += text.count("\n") + 1
        return records

    def _match_new(self) -> list[LogRecord]:
        """Read what the server logged since the last check; return undeclared bad records."""
        undeclared = []
        for rec in self._read_new_records():
            if not rec.bad:
                continue
            for exp in self._expected:
                if exp.pattern.search(rec.text):
                    exp.matched.append(rec)
                    break
            else:
                undeclared.append(rec)
        return undeclared

    def _report(self, undeclared: list[LogRecord], unmet: list[str], when: str) -> str:
        parts = [f"Weir server {self.url} (log {self.log_path}), {when}:"]
        if undeclared:
            parts.append(f"{len(undeclared)} undeclared error record(s) in the server log "
                         "(declare errors a test provokes with srv.expect_log(r'...')):")
            parts += [rec.show() for rec in undeclared]
        parts += [f"  {u}" for u in unmet]
        return "\n".join(parts)

    def check_log(self, *, end_of_test: bool = False) -> str | None:
        """Check the log now; return a failure message or None.

        At the end of a test the test's expectations must be met; they are then dropped."""
        undeclared = self._unchecked + self._match_new()
        self._unchecked = []
        unmet: list[str] = []
        if end_of_test:
            deadline = time.monotonic() + EXPECT_DEADLINE_S
            while any(e.unmet() for e in self._expected) and time.monotonic() < deadline:
                time.sleep(0.1)
                undeclared += self._match_new()
            unmet = [u for e in self._expected if (u := e.unmet())]
            self._expected = []
        if not undeclared and not unmet:
            return None
        return self._report(undeclared, unmet, "at the end of the test" if end_of_test
                            else "when it was stopped")

    def _end_of_test(self) -> str | None:
        problem = self.check_log(end_of_test=True)
        if self.proc is not None and self.proc.poll() is not None and self in _WATCHED:
            _WATCHED.remove(self)  # ended and fully checked; a restart watches it again
        return problem

    # ---- lifecycle -------------------------------------------------------------------

    def _terminate(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0, *,
             check: bool = True) -> int:
        """Stop the server, then check its log: undeclared errors fail the caller.

        `check=False` (cleanup code stopping several servers) leaves the check to the end
        of the test."""
        code = self._terminate(sig, timeout)
        if not check:
            return code
        undeclared = self._match_new()
        if undeclared:
            # Expectations of the running test may still be declared after a stop(), but
            # an error is reported once: here, and not again at the end of the test.
            pytest.fail(self._report(undeclared, [], "when it was stopped"), pytrace=False)
        return code

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> WeirServer:
        self.stop()
        self.port = free_port()
        return self.start()

    # conveniences for tests
    def write(self, db: str, lp: str, **params: str) -> httpx.Response:
        return httpx.post(f"{self.url}/api/v3/write_lp", params={"db": db, **params},
                          content=lp.encode(), timeout=30)

    def query(self, db: str, sql: str, fmt: str = "json", **kw: object) -> httpx.Response:
        return httpx.post(f"{self.url}/api/v3/query_sql",
                          json={"db": db, "q": sql, "format": fmt, **kw}, timeout=60)

    def rows(self, db: str, sql: str) -> list[dict]:
        r = self.query(db, sql)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(autouse=True)
def _watch_server_logs() -> Iterator[None]:
    """After each test (and after its fixtures stopped their servers), check the log of
    every server still watched: those the test started and shared (module) servers."""
    buckets_before = set(_BUCKETS)
    yield
    problems = [p for srv in list(_WATCHED) if (p := srv._end_of_test())]
    _delete_buckets(set(_BUCKETS) - buckets_before)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A test that fails while its servers run reports what they were doing: each server's
    thread stacks and asyncio tasks (SIGUSR1, SIGUSR2: the server prints them and goes on)
    and the end of its log,
    and on an S3 run the warnings of the suite's SeaweedFS. A CI log then shows why a
    wait timed out (a store request held, a lock), not only that it did."""
    report: pytest.TestReport = yield
    if report.when != "call" or not report.failed:
        return report
    running = [srv for srv in _WATCHED if srv.proc is not None and srv.proc.poll() is None]
    for srv in running:
        with contextlib.suppress(OSError):
            srv.proc.send_signal(signal.SIGUSR1)  # type: ignore[union-attr]
            srv.proc.send_signal(signal.SIGUSR2)  # type: ignore[union-attr]  # (asyncio tasks)
    if running:
        time.sleep(0.5)  # (the dump is written by the signal handler, at once)
    for srv in running:
        lines = srv.log().splitlines()[-150:]
        report.sections.append((f"server {srv.url}: the end of {srv.log_path.name}",
                                "\n".join(lines)))
    if _SUITE_S3:
        weed = [line for line in _SUITE_S3[0].log().splitlines() if line[:1] in ("W", "E")]
        if weed:
            report.sections.append(("SeaweedFS warnings and errors", "\n".join(weed[-40:])))
    return report


@pytest.fixture(scope="session", autouse=True)
def _suite_store(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> None:
    if SUITE_STORE == "s3" and not _SUITE_S3:
        from support.s3 import _shared
        _SUITE_S3.append(_shared("seaweedfs", request, tmp_path_factory))


# The S3 pass leaves out what would only repeat the file pass or check nothing of the
# store, so that the suite fits in its time (these took two thirds of the pass):
# * files whose servers' store plays no part in what they check (HTTP and CLI surfaces,
#   auth, the processing engine's plugins, tests in process on the memory store);
# * files whose servers are on S3 in the file pass already (the cluster, S3 outages);
# * tests marked `both_stores`: their S3 half runs in the file pass.
# Storage, restarts, Parquet reads, caches and replication stay in it.
STORE_BLIND_E2E = frozenset({
    "test_auth.py", "test_cli_list_options.py", "test_clients.py", "test_engine_dry_run.py",
    "test_engine_e2e.py", "test_engine_e2e_more.py", "test_engine_environment.py",
    "test_engine_node_spec.py", "test_engine_routes.py", "test_engine_schedule.py",
    "test_engine_triggers.py", "test_engine_worker.py", "test_flightsql.py",
    "test_hostile_input.py", "test_http_hostile.py", "test_influxql_http.py",
    "test_metrics_ready.py", "test_openapi_served.py", "test_plugin_env.py",
    "test_query_streaming.py", "test_serve_options.py", "test_server_log_watch.py",
})
ALWAYS_S3_E2E = frozenset({"test_cluster_nodes.py", "test_object_store_s3.py",
                           "test_object_store_outage.py"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SUITE_STORE != "s3":
        return
    e2e = Path(__file__).parent / "e2e"
    named = STORE_BLIND_E2E | ALWAYS_S3_E2E
    missing = sorted(n for n in named if not (e2e / n).exists())
    if missing:
        raise pytest.UsageError(f"tests/conftest.py names no such end-to-end file: "
                                f"{', '.join(missing)}")
    left_out = [i for i in items
                if (i.path.parent == e2e and i.path.name in named)
                or i.get_closest_marker("both_stores") is not None]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        gone = set(left_out)
        items[:] = [i for i in items if i not in gone]
    for item in items:
        marker = item.get_closest_marker("file_only")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(pytest.mark.skip(reason=f"file store only: {reason}"))


def _delete_buckets(keys: set[str]) -> None:
    """Delete the buckets a test made whose servers have all ended (a server still running,
    one a module shares, keeps its bucket)."""
    if not keys:  # (the file store: no S3 server, and no tests/support in pytester's runs)
        return
    from support.s3 import _client
    running = {str(s.data_dir.resolve()) for s in _WATCHED
               if s.proc is not None and s.proc.poll() is None}
    for key in keys - running:
        s3, bucket = _BUCKETS.pop(key)
        client = _client(s3)
        try:
            client.delete_bucket(Bucket=bucket)  # SeaweedFS deletes a full one too
        except Exception:  # noqa: BLE001 - S3 proper wants it empty first
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for o in page.get("Contents", []):
                    client.delete_object(Bucket=bucket, Key=o["Key"])
            client.delete_bucket(Bucket=bucket)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module marked `both_stores` (with `usefixtures("store_kind")`) runs each of its
    tests twice: on the `file` store and on S3 (the session's SeaweedFS), issue #13's
    "every storage test that runs on file also runs on S3". The suite's S3 run leaves
    it out (see pytest_collection_modifyitems)."""
    if metafunc.definition.get_closest_marker("both_stores") is not None \
            and "store_kind" in metafunc.fixturenames:
        metafunc.parametrize("store_kind", ["s3"] if SUITE_STORE == "s3" else ["file", "s3"])


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "file")


@pytest.fixture
def server_factory(tmp_path: Path, request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    servers: list[WeirServer] = []
    kind = request.getfixturevalue("store_kind") if "store_kind" in request.fixturenames \
        else None
    s3: S3Server | Literal["suite"] | None = "suite"
    if kind == "s3":
        from support.s3 import _shared
        s3 = _shared("seaweedfs", request, tmp_path_factory)
    elif kind == "file":
        s3 = None

    def make(name: str = "data", **kw: object) -> WeirServer:
        s = WeirServer(tmp_path / name, s3=s3, **kw)  # type: ignore[arg-type]
        servers.append(s)
        return s

    yield make
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            # killed; the log check at the end of the test reports its errors
            s.stop(signal.SIGKILL, check=False)


@pytest.fixture
def server(server_factory) -> WeirServer:  # type: ignore[no-untyped-def]
    return server_factory(extra_args=["--wal-flush-interval", "10ms"]).start()
