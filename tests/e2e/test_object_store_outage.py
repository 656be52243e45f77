"""Weir on S3 while the S3 server goes away and comes back (issue #13's fault case): a
write while the store does not answer gets a clear 503 (nothing acknowledged, retry
later), writes resume by themselves once it is back, and every acknowledged row is there
exactly once, also after a restart from the bucket alone.

The S3 server is moto's, stopped and started again on the same port: its buckets live in
this test process, so they outlast the outage, as a real S3 service's would."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import WeirServer, free_port
from support.cli import poll
from support.s3 import moto_at, outage_bucket_args

DB = "db"


def _lines(start: int, n: int, now: int) -> str:
    return "\n".join(f"cpu,host=h{i % 50} v={i}i {now + i}" for i in range(start, start + n))


def test_writes_get_503_while_s3_is_down_and_nothing_acknowledged_is_lost_or_doubled(
        server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    moto = moto_at(port)
    endpoint = f"http://127.0.0.1:{port}"
    args = [*outage_bucket_args(port), "--wal-flush-interval", "10ms",
            "--compaction-interval", "0s"]

    def start(name: str) -> WeirServer:
        return server_factory(name, object_store="s3", extra_args=args).start()

    s = start("before")
    now = time.time_ns()
    acked = 0
    try:
        r = s.write(DB, _lines(0, 500, now), precision="ns")
        assert r.status_code == 204, r.text
        acked += 500

        moto.stop()
        s.expect_log(r"WAL flush failed")
        for k in range(3):
            r = s.write(DB, _lines(10_000 + k * 100, 100, now), precision="ns")
            assert r.status_code == 503, (r.status_code, r.text)
            assert "could not be stored" in r.text and endpoint in r.text, r.text

        moto = moto_at(port)
        # back: the next write goes through without anything done to the server
        assert poll(lambda: s.write(DB, _lines(500, 500, now), precision="ns").status_code
                    == 204, timeout=30), s.log()
        acked += 500
        # the refused rows are absent, the acknowledged ones there once each
        got = s.rows(DB, "SELECT count(*) AS c, count(DISTINCT v) AS d, min(v) AS lo, "
                         "max(v) AS hi FROM cpu")
        assert got == [{"c": acked, "d": acked, "lo": 0, "hi": acked - 1}], got
        s.stop()

        # a new server with an empty data dir: everything comes from the bucket
        again = start("after")
        got = again.rows(DB, "SELECT count(*) AS c, count(DISTINCT v) AS d FROM cpu")
        assert got == [{"c": acked, "d": acked}], got
        again.stop()
    finally:
        moto.stop()


def test_a_query_that_needs_parquet_while_s3_is_down_gets_503_then_answers(
        server_factory) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    moto = moto_at(port)
    s = server_factory("query-outage", object_store="s3", extra_args=[
        *outage_bucket_args(port), "--wal-flush-interval", "10ms", "--wal-snapshot-size", "1",
        "--compaction-interval", "0s"]).start()
    try:
        now = time.time_ns()
        assert s.write(DB, _lines(0, 1000, now), precision="ns").status_code == 204
        # persisted: the rows are read from the Parquet file in the bucket
        assert poll(lambda: s.rows(DB, "SELECT count(*) AS n FROM "
                                   "system.parquet_files")[0]["n"] > 0, timeout=30), s.log()
        assert poll(lambda: s.rows(DB, "SELECT count(*) AS c FROM cpu") == [{"c": 1000}],
                    timeout=30)
        moto.stop()
        r = s.query(DB, "SELECT count(*) AS c, sum(v) AS t FROM cpu")
        assert r.status_code == 503, (r.status_code, r.text)
        assert "object store" in r.text and "Parquet" in r.text, r.text
        moto = moto_at(port)
        assert poll(lambda: s.query(DB, "SELECT count(*) AS c FROM cpu").json()
                    == [{"c": 1000}], timeout=30), s.log()
        s.stop()
    finally:
        moto.stop()
