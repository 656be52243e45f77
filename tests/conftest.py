"""Fixtures that start real Weir servers as subprocesses on free ports."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def weir_cmd() -> list[str]:
    """The installed `influxdb3` entry point, as a user runs it."""
    exe = shutil.which("influxdb3", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "weir"]


class WeirServer:
    """A real server process with its own data dir; restartable and killable."""

    def __init__(self, data_dir: Path, *, plugin_dir: Path | None = None,
                 extra_args: list[str] | None = None, object_store: str = "file",
                 env: dict[str, str] | None = None, auth: bool = False) -> None:
        self.auth = auth
        self.data_dir = data_dir
        self.plugin_dir = plugin_dir
        self.extra_args = extra_args or []
        self.object_store = object_store
        self.env = env or {}
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{data_dir.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> WeirServer:
        args = [*weir_cmd(), "serve", "--node-id", "test-node", "--object-store",
                self.object_store, "--data-dir", str(self.data_dir), "--http-bind",
                f"127.0.0.1:{self.port}", *([] if self.auth else ["--without-auth"]),
                *self.extra_args]
        if self.plugin_dir is not None:
            args += ["--plugin-dir", str(self.plugin_dir)]
        env = {**os.environ, **self.env}
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
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

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
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


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator:
    servers: list[WeirServer] = []

    def make(name: str = "data", **kw: object) -> WeirServer:
        s = WeirServer(tmp_path / name, **kw)  # type: ignore[arg-type]
        servers.append(s)
        return s

    yield make
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            s.stop(signal.SIGKILL)


@pytest.fixture
def server(server_factory) -> WeirServer:  # type: ignore[no-untyped-def]
    return server_factory(extra_args=["--wal-flush-interval", "10ms"]).start()
