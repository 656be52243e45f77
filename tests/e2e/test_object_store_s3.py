"""Weir on S3, end to end: `influxdb3 serve --object-store s3` against a real SeaweedFS on
loopback (tests/support/s3.py) writes, snapshots to Parquet in the bucket, and a second
server with an empty local directory finds every row there; `influxdb3 debug
object-store-check` passes on SeaweedFS and fails, clearly and with exit code 1, on a
store that does not answer; bad flag combinations are usage errors naming the flag."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import WeirServer, free_port, weir_cmd
from support.cli import poll
from support.s3 import S3Server, seaweedfs, start_seaweedfs  # noqa: F401 - the session's SeaweedFS
from weir.config import ObjectStoreConfig
from weir.objectstore import open_store


def s3_server(server_factory, name: str, s3: S3Server, bucket: str) -> WeirServer:  # type: ignore[no-untyped-def]
    return server_factory(name, object_store="s3", extra_args=[
        *s3.store_args(bucket)[2:],  # (WeirServer gives --object-store itself)
        "--wal-flush-interval", "10ms", "--wal-snapshot-size", "1"])


def test_serve_on_s3_keeps_every_row_across_a_restart_with_no_local_data(
        server_factory, seaweedfs: S3Server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    bucket = seaweedfs.new_bucket()
    first = s3_server(server_factory, "first", seaweedfs, bucket).start()
    n = 300
    now = time.time_ns()
    times = [now - i * 1_000_003 for i in range(n)]
    lp = "\n".join(f"cpu,host=h{i % 3} usage={i / 4},count={i}i {t}" for i, t in enumerate(times))
    assert first.write("db", lp, precision="ns").status_code == 204

    def persisted() -> int:
        return sum(f["row_count"] for f in first.rows(
            "db", "SELECT row_count FROM system.parquet_files"))

    assert poll(lambda: persisted() >= n, timeout=30), f"no snapshot: {first.log()}"
    want = sorted((t, i) for i, t in enumerate(times))

    def rows(srv: WeirServer) -> list[tuple[int, int]]:
        got = srv.rows("db", "SELECT time, count FROM cpu ORDER BY time")
        return [(_ns(r["time"]), r["count"]) for r in got]

    assert rows(first) == want
    first.stop()

    # the Parquet files, the catalog and the WAL are in the bucket, not in the data dir
    store = open_store("s3", None, ObjectStoreConfig(
        bucket=bucket, aws_endpoint=seaweedfs.endpoint, aws_allow_http=True,
        aws_access_key_id=seaweedfs.access_key, aws_secret_access_key=seaweedfs.secret_key))
    keys = store.list("")
    assert any(k.endswith(".parquet") for k in keys), keys
    assert not list(first.data_dir.rglob("*.parquet"))

    second = s3_server(server_factory, "second", seaweedfs, bucket)
    assert not second.data_dir.exists()
    second.start()
    assert rows(second) == want
    assert sum(f["row_count"] for f in second.rows(
        "db", "SELECT row_count FROM system.parquet_files")) == n
    second.stop()


def _ns(rfc3339: str) -> int:
    """`2026-01-02T03:04:05.123456789` (Weir's JSON time) as nanoseconds."""
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    secs = int(datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp())
    return secs * 10**9 + int((frac or "0").ljust(9, "0")[:9])


def test_serve_stops_with_a_message_when_the_store_does_not_answer(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    p = subprocess.run([*weir_cmd(), "serve", "--node-id", "n", "--without-auth",
                        "--http-bind", f"127.0.0.1:{free_port()}", "--object-store", "s3",
                        "--bucket", "b", "--aws-endpoint", f"http://127.0.0.1:{port}",
                        "--aws-allow-http", "--aws-access-key-id", "k",
                        "--aws-secret-access-key", "s", "--object-store-max-retries", "0",
                        "--data-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert f"s3://b at http://127.0.0.1:{port}" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


def test_a_request_the_store_holds_is_named_in_the_log_and_the_write_then_lands(
        server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A SeaweedFS of its own, frozen (SIGSTOP) under a running server: its sockets still
    # accept, nothing answers, as with a store that hangs. obstore waits (and would retry)
    # silently; Weir names the request in its log while it waits, and again once answered.
    weed = start_seaweedfs(tmp_path / "weed")
    try:
        s = server_factory("held", object_store="s3", extra_args=[
            *weed.store_args(weed.new_bucket())[2:], "--wal-flush-interval", "10ms",
            "--object-store-slow-warning", "500ms", "--compaction-interval", "0s"]).start()
        now = time.time_ns()
        assert s.write("db", f"cpu,host=a v=1i {now}").status_code == 204
        assert weed.proc is not None
        result: list[int] = []
        weed.proc.send_signal(signal.SIGSTOP)
        try:
            writer = threading.Thread(target=lambda: result.append(
                s.write("db", f"cpu,host=b v=2i {now + 1}").status_code))
            writer.start()
            assert poll(lambda: "has waited" in s.log(), timeout=20), s.log()
            assert not result  # still waiting for its WAL file to be stored
        finally:
            weed.proc.send_signal(signal.SIGCONT)
        writer.join(60)
        assert result == [204]
        held = [line for line in s.log().splitlines() if "has waited" in line]
        # (the WAL file's conditional put, named with its key and the store)
        assert "put_if_absent of '" in held[0] and "/wal/" in held[0], held
        assert weed.endpoint in held[0]
        assert "--object-store-retry-timeout" in held[0]
        assert poll(lambda: "answered after" in s.log(), timeout=10), s.log()
        assert s.rows("db", "SELECT host, v FROM cpu ORDER BY host") == [
            {"host": "a", "v": 1}, {"host": "b", "v": 2}]
        s.stop()
    finally:
        weed.stop()


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*weir_cmd(), "debug", "object-store-check", *args],
                          capture_output=True, text=True, timeout=120)


def test_object_store_check_passes_on_seaweedfs(seaweedfs: S3Server) -> None:  # noqa: F811
    # one race per check: SeaweedFS holds losing conditional writers up to seconds
    p = check(*seaweedfs.store_args(seaweedfs.new_bucket()), "--rounds", "1",
              "--format", "json")
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads(p.stdout)
    assert report["ok"] is True
    assert [c["check"] for c in report["checks"]] == [
        "read after write", "list after write", "put if absent (8 writers)",
        "conditional overwrite (8 writers)", "delete"]
    assert all(c["ok"] for c in report["checks"])
    assert report["store"].startswith("s3://")


def test_object_store_check_on_the_file_store_prints_a_table(tmp_path: Path) -> None:
    p = check("--object-store", "file", "--data-dir", str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == f"object store: {tmp_path}"
    assert lines[1].split() == ["check", "result", "detail"]
    assert "conditional overwrite (8 writers)  ok" in p.stdout
    assert lines[-1] == "all checks passed"
    assert not any(tmp_path.rglob("*read-after-write*")), "the check left objects behind"


def test_object_store_check_fails_clearly_when_the_store_is_down() -> None:
    port = free_port()
    p = check("--object-store", "s3", "--bucket", "b", "--aws-endpoint",
              f"http://127.0.0.1:{port}", "--aws-allow-http", "--aws-access-key-id", "k",
              "--aws-secret-access-key", "s", "--object-store-max-retries", "0")
    assert p.returncode == 1, p.stdout + p.stderr
    first = p.stdout.splitlines()[2]
    assert first.startswith("read after write") and "FAILED" in first
    assert f"on s3://b at http://127.0.0.1:{port} failed" in first
    assert "not run: the store is unavailable" in p.stdout
    assert p.stdout.splitlines()[-1] == "5 of 5 checks failed"


@pytest.mark.parametrize(("args", "message"), [
    (["--object-store", "s3"], "--object-store s3 needs --bucket"),
    (["--object-store", "google"], "--object-store google needs --bucket"),
    (["--object-store", "azure", "--bucket", "c"],
     "--object-store azure needs --azure-storage-account"),
    (["--object-store", "s3", "--bucket", "b", "--aws-endpoint", "http://127.0.0.1:1"],
     "--aws-endpoint http://127.0.0.1:1 is plain HTTP: add --aws-allow-http"),
    (["--object-store", "s3", "--bucket", "b", "--aws-endpoint", "127.0.0.1:1"],
     "'127.0.0.1:1' is not an http:// or https:// URL"),
    (["--object-store", "s3", "--bucket", "b", "--object-store-retry-timeout", "soon"],
     "--object-store-retry-timeout"),
])
@pytest.mark.parametrize("command", ["serve", "check"])
def test_bad_store_flags_are_usage_errors_naming_the_flag(command: str, args: list[str],
                                                          message: str) -> None:
    from click.testing import CliRunner

    from weir.cli.main import cli

    argv = (["serve", "--node-id", "n", "--http-bind", "127.0.0.1:1"] if command == "serve"
            else ["debug", "object-store-check"]) + args
    # (the machine's own AWS_*, ... settings unset: they would fill the flags)
    env: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith(("AWS_", "AZURE_", "GOOGLE_", "INFLUXDB3_"))}
    result = CliRunner(env=env).invoke(cli, argv)
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
