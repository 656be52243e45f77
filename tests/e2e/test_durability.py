"""Nothing acknowledged is lost, nothing is counted twice: restarts, kill -9, snapshots."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from support.persisted import wait_persisted
from support.storage_helpers import stored_objects

# every test on the file store and on S3 (issue #13)
pytestmark = [pytest.mark.both_stores, pytest.mark.usefixtures("store_kind")]


def _count(server, db: str, table: str = "m") -> int:
    return server.rows(db, f"SELECT count(*) AS n FROM {table}")[0]["n"]


def test_clean_restart_keeps_everything(server_factory):
    s = server_factory(extra_args=["--wal-flush-interval", "10ms"]).start()
    for i in range(20):
        assert s.write("d", f"m,k=a v={i} {i + 1}").status_code == 204
    s.restart()
    assert _count(s, "d") == 20
    assert s.rows("d", "SELECT sum(v) AS s FROM m")[0]["s"] == sum(range(20))


def test_no_sync_writes_flush_on_sigterm(server_factory):
    s = server_factory(extra_args=["--wal-flush-interval", "1s"]).start()
    for i in range(10):
        assert s.write("d", f"m v={i} {i + 1}", no_sync="true").status_code == 204
    s.restart()
    assert _count(s, "d") == 10


def test_kill9_during_ingest_loses_no_acknowledged_write(server_factory):
    s = server_factory(extra_args=["--wal-flush-interval", "10ms",
                                   "--wal-snapshot-size", "5"]).start()
    acked: list[int] = []
    stop = threading.Event()
    base = time.time_ns() - 3600 * 10**9  # near now: what the snapshots must handle

    def writer(start: int) -> None:
        i = start
        with httpx.Client(timeout=5) as c:
            while not stop.is_set():
                try:
                    r = c.post(f"{s.url}/api/v3/write_lp", params={"db": "d"},
                               content=f"m,w=w{start} v={i}i {base + i}".encode())
                except httpx.HTTPError:
                    return
                if r.status_code == 204:
                    acked.append(i)
                i += 1

    threads = [threading.Thread(target=writer, args=(k * 1_000_000,)) for k in range(4)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    s.kill9()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) > 50
    s.port = s.port  # same data dir, new process
    s.start()
    got = [r["v"] for r in s.rows("d", "SELECT v FROM m")]
    assert len(got) == len(set(got)), "a write was counted twice"
    missing = set(acked) - set(got)
    assert not missing, f"{len(missing)} acknowledged writes lost"
    # the snapshot path ran during the test: parquet files exist and are queried
    files = s.rows("d", "SELECT * FROM system.parquet_files")
    assert files, "expected at least one snapshot to Parquet"


def test_snapshot_to_parquet_then_query_and_restart(server_factory):
    s = server_factory(extra_args=["--wal-flush-interval", "10ms",
                                   "--wal-snapshot-size", "3", "--gen1-duration", "1m",
                                   "--snapshotted-wal-files-to-keep", "0"]).start()
    # two gen1 windows near now: 6 points in the minute that starts at m0, 6 in the next;
    # three writes of 4 lines, so three WAL files and one snapshot of all 12 points
    now_s = time.time_ns() // 10**9
    m0 = now_s - now_s % 60 - 5 * 60
    times = [m0 + i * 10 for i in range(12)]
    for k in range(3):
        lp = "\n".join(f"m,k=a v={i} {times[i]}" for i in range(4 * k, 4 * k + 4))
        assert s.write("d", lp, precision="s").status_code == 204
    files = wait_persisted(s, "d", {"m": 12})
    ns = 10**9
    assert [(f["table_name"], f["row_count"], f["min_time"], f["max_time"]) for f in files] == [
        ("m", 6, m0 * ns, (m0 + 50) * ns),           # window [m0, m0 + 1m)
        ("m", 6, (m0 + 60) * ns, (m0 + 110) * ns),   # window [m0 + 1m, m0 + 2m)
    ]
    assert _count(s, "d") == 12
    s.restart()
    assert _count(s, "d") == 12
    assert s.rows("d", "SELECT sum(v) AS s FROM m")[0]["s"] == sum(range(12))
    rows = s.rows("d", "SELECT v, CAST(time AS BIGINT) AS t FROM m ORDER BY time")
    assert [(r["v"], r["t"]) for r in rows] == [(i, times[i] * ns) for i in range(12)]
    # the snapshotted WAL files were removed
    assert len(stored_objects(s, ".wal", "test-node/wal/")) < 3


def test_memory_object_store_serves(server_factory):
    s = server_factory(object_store="memory",
                       extra_args=["--wal-flush-interval", "10ms"]).start()
    assert s.write("d", "m v=1 1").status_code == 204
    assert _count(s, "d") == 1


def test_second_server_on_same_node_cannot_corrupt(server_factory, tmp_path):
    a = server_factory(extra_args=["--wal-flush-interval", "10ms"]).start()
    assert a.write("d", "m v=1 1").status_code == 204
    b = server_factory(extra_args=["--wal-flush-interval", "10ms"])
    b.data_dir = a.data_dir
    b.start()
    # both wrote WAL seq 2 at once: only one wins; the loser refuses writes, never overwrites
    ra = a.write("d", "m v=2 2")
    rb = b.write("d", "m v=3 3")
    assert {ra.status_code, rb.status_code} <= {204, 500}
    for srv, r in ((a, ra), (b, rb)):
        if r.status_code == 500:  # the loser says why in its log, once or more
            srv.expect_log(r"another process has written to the WAL ahead of this one")
    a.stop()
    b.stop()
    c = server_factory(extra_args=["--wal-flush-interval", "10ms"])
    c.data_dir = a.data_dir
    c.start()
    vals = sorted(r["v"] for r in c.rows("d", "SELECT v FROM m"))
    acked = [1.0] + ([2.0] if ra.status_code == 204 else []) + (
        [3.0] if rb.status_code == 204 else [])
    assert set(acked) <= set(vals)


def test_restart_after_deleting_a_database_at_the_limit(server_factory):
    s = server_factory(extra_args=["--wal-flush-interval", "10ms",
                                   "--num-database-limit", "5"]).start()
    for i in range(1, 6):
        assert s.write(f"d{i}", "m v=1 1").status_code == 204
    assert httpx.delete(f"{s.url}/api/v3/configure/database",
                        params={"db": "d1"}).status_code == 200
    assert s.write("d6", "m v=1 1").status_code == 204
    s.restart()  # the WAL still holds d1's rows: they must not resurrect it
    dbs = httpx.get(f"{s.url}/api/v3/configure/database", params={"format": "json"}).json()
    assert {d["iox::database"] for d in dbs} == {"_internal", "d2", "d3", "d4", "d5", "d6"}
    assert s.query("d1", "SELECT * FROM m").status_code == 404
