"""The storage life cycle a long-running server depends on, end to end on real servers:
retention, hard deletes, compaction keeping file counts bounded, snapshot retry after
a failing disk, and the buffer's memory bound."""

from __future__ import annotations

import itertools
import threading
import time

import httpx
import pytest

from support.storage_helpers import stored_parquet, wait_for

DB = "life"
SEC = 1_000_000_000


def files(server, table: str | None = None) -> list[dict]:  # type: ignore[no-untyped-def]
    where = f" WHERE table_name = '{table}'" if table else ""
    return server.rows(DB, f"SELECT * FROM system.parquet_files{where}")


def lines(table: str, hosts: int, times: list[int], value: str = "v={i}") -> str:
    return "\n".join(f"{table},host=h{h:04d},region=r{h % 7} "
                     f"{value.format(i=k * hosts + h)},n={h}i {t}"
                     for k, t in enumerate(times) for h in range(hosts))


def ok(r: httpx.Response) -> None:
    assert r.status_code == 204, r.text


def test_retention_hides_old_rows_at_once_and_compactor_removes_them(server_factory):
    s = server_factory(extra_args=["--wal-flush-interval", "10ms", "--wal-snapshot-size", "1",
                                   "--compaction-interval", "200ms",
                                   "--retention-check-interval", "1s"]).start()
    now = time.time_ns()
    old = [now - (3 * 3600 + k) * SEC for k in range(5)]      # 3 hours old
    new = [now - k * SEC for k in range(5)]                    # seconds old
    ok(s.write(DB, lines("cpu", 200, old)))
    ok(s.write(DB, lines("cpu", 200, new)))
    wait_for(lambda: sum(f["row_count"] for f in files(s, "cpu")) == 2000, timeout=60,
             what="both halves in Parquet")
    assert s.rows(DB, "SELECT count(*) AS c FROM cpu") == [{"c": 2000}]

    r = httpx.put(f"{s.url}/api/v3/configure/database",
                  json={"db": DB, "retention_period": "1h"}, timeout=30)
    assert r.status_code == 200, r.text
    # invisible at once: every query, from Parquet and from the buffer
    ok(s.write(DB, lines("cpu", 10, [now - 2 * 3600 * SEC, now - 2 * SEC - 500], "w={i}")))
    assert s.rows(DB, "SELECT count(*) AS c FROM cpu") == [{"c": 1010}]
    cut = s.rows(DB, "SELECT min(CAST(time AS BIGINT)) AS t FROM cpu")[0]["t"]
    assert cut >= now - 3600 * SEC
    # and removed from storage by the compactor
    wait_for(lambda: all(f["max_time"] >= now - 3600 * SEC for f in files(s, "cpu")),
             timeout=60, what="expired files removed")
    assert s.rows(DB, "SELECT count(*) AS c FROM cpu") == [{"c": 1010}]
    s.restart()
    assert s.rows(DB, "SELECT count(*) AS c FROM cpu") == [{"c": 1010}]


def test_hard_delete_now_frees_storage(server_factory):
    s = server_factory(extra_args=["--wal-flush-interval", "10ms", "--wal-snapshot-size", "1",
                                   "--compaction-interval", "200ms"]).start()
    now = time.time_ns()
    ok(s.write(DB, lines("gone", 100, [now - k * SEC for k in range(3)])))
    ok(s.write(DB, lines("kept", 100, [now - k * SEC for k in range(3)])))
    wait_for(lambda: {f["table_name"] for f in files(s)} == {"gone", "kept"}, timeout=60,
             what="both tables in Parquet")
    gone_paths = {f["path"] for f in files(s, "gone")}
    r = httpx.delete(f"{s.url}/api/v3/configure/table",
                     params={"db": DB, "table": "gone", "hard_delete_at": "now"}, timeout=30)
    assert r.status_code == 200, r.text
    wait_for(lambda: not files(s, "gone"), timeout=60, what="the table's files unlisted")
    assert s.rows(DB, "SELECT count(*) AS c FROM kept") == [{"c": 300}]
    s.restart()  # the restart also removes the unlisted files from disk
    on_disk = stored_parquet(s)
    assert not any(p.endswith(q) or q.endswith(p) for p in on_disk for q in gone_paths)
    assert s.rows(DB, "SELECT count(*) AS c FROM kept") == [{"c": 300}]
    # the name is free again once the catalog has forgotten it
    wait_for(lambda: s.write(DB, "gone,host=a v=1i").status_code == 204, timeout=60,
             what="the deleted name accepted again")


@pytest.mark.slow
def test_compaction_keeps_file_count_bounded_and_results_unchanged(server_factory):
    s = server_factory(extra_args=["--wal-flush-interval", "10ms", "--wal-snapshot-size", "1",
                                   "--gen1-duration", "1m", "--compaction-interval", "300ms",
                                   "--compaction-file-rows", "5000"]).start()
    now = time.time_ns() - 3600 * SEC
    stop = threading.Event()
    seen: list[int] = []
    expected = {"c": 0}

    def reader() -> None:
        # a query in a loop during compaction sees every written row exactly once
        while not stop.is_set():
            c = s.rows(DB, "SELECT count(*) AS c FROM cpu")[0]["c"]
            seen.append(c)

    ok(s.write(DB, lines("cpu", 50, [now + j * SEC for j in range(5)])))
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        # 40 writes across 20 one-minute windows, each its own snapshot: 40+ gen1 files,
        # half of them overwriting points an earlier write stored
        for k in range(40):
            times = [now + (k % 20) * 60 * SEC + j * SEC for j in range(5)]
            ok(s.write(DB, lines("cpu", 50, times)))
            expected["c"] = min(k + 1, 20) * 250
            wait_for(lambda: seen and seen[-1] >= expected["c"], timeout=60,
                     what="the write to be visible")
    finally:
        stop.set()
        t.join(60)
    # every row exactly once while files are swapped: never more, never fewer
    assert max(seen) == 20 * 250
    assert all(b >= a for a, b in itertools.pairwise(seen))
    total = wait_for(lambda: (fs := files(s, "cpu")) and sum(f["row_count"] for f in fs)
                     == 5000 and len(fs) <= 4 and fs, timeout=90,
                     what=f"the compactor to settle {files(s, 'cpu')} {s.rows(DB, 'SELECT * FROM system.compactions')}")
    assert len(total) <= 4
    done = s.rows(DB, "SELECT status, input_files, output_files FROM system.compactions")
    assert done and all(r["status"] == "ok" for r in done)
    agg = s.rows(DB, "SELECT count(*) AS c, sum(n) AS n FROM cpu")
    assert agg == [{"c": 5000, "n": 100 * sum(range(50))}]
    s.restart()
    assert s.rows(DB, "SELECT count(*) AS c, sum(n) AS n FROM cpu") == agg


@pytest.mark.file_only("a plain file where a directory must go breaks the disk; "
                       "test_object_store_outage.py takes S3 away instead")
def test_failed_snapshot_is_retried_and_reported(server_factory):
    s = server_factory(extra_args=["--wal-flush-interval", "10ms", "--wal-snapshot-size", "1",
                                   "--compaction-interval", "0s"]).start()
    now = time.time_ns()
    ok(s.write(DB, "cpu,host=a v=1 " + str(now - SEC)))
    wait_for(lambda: files(s, "cpu"), timeout=60, what="a first snapshot")
    # A failing disk: a plain file where the next snapshot must create a directory.
    table_dir = next(p for p in s.data_dir.rglob("*.parquet")).parent.parent.parent
    blocker = table_dir / time.strftime("%Y-%m-%d", time.gmtime((now + 86400 * SEC) // SEC))
    blocker.write_bytes(b"not a directory")
    s.expect_log(r"snapshot failed \(attempt \d+\)")
    ok(s.write(DB, "cpu,host=a v=2 " + str(now + 86400 * SEC)))
    failed = wait_for(lambda: s.rows(DB, "SELECT * FROM system.snapshots WHERE status = "
                                         "'failed'"), timeout=60, what="a failed snapshot")
    assert failed[0]["error"] and failed[0]["attempt"] >= 1
    assert s.rows(DB, "SELECT count(*) AS c FROM cpu") == [{"c": 2}]  # still in the buffer
    blocker.unlink()
    wait_for(lambda: sum(f["row_count"] for f in files(s, "cpu")) == 2, timeout=90,
             what="the retried snapshot")
    last = s.rows(DB, "SELECT status, attempt FROM system.snapshots ORDER BY started_at DESC "
                      "LIMIT 1")
    assert last[0]["status"] == "ok" and last[0]["attempt"] >= 2
    s.kill9()
    s.start()
    assert s.rows(DB, "SELECT count(*) AS c FROM cpu") == [{"c": 2}]


@pytest.mark.file_only("a plain file where a directory must go breaks the disk")
def test_buffer_limit_makes_writes_wait_then_503_and_loses_nothing(server_factory):
    # a tiny memory bound, snapshots that cannot free it (the disk refuses), then a disk
    # that works again: writes past the bound get 503 and nothing acknowledged is lost
    s = server_factory(extra_args=["--wal-flush-interval", "10ms", "--wal-snapshot-size",
                                   "100000", "--force-snapshot-bytes", "20k",
                                   "--buffer-mem-limit", "40k",
                                   "--compaction-interval", "0s"]).start()
    now = time.time_ns()
    ok(s.write(DB, "cpu,host=a v=0 " + str(now)))
    dbdir = s.data_dir / "test-node" / "dbs"
    dbdir.parent.mkdir(parents=True, exist_ok=True)
    assert not dbdir.exists()  # nothing snapshotted yet
    dbdir.write_bytes(b"not a directory")
    s.expect_log(r"snapshot failed \(attempt \d+\)")
    acked, refused = 0, 0
    for k in range(300):
        r = s.write(DB, lines("cpu", 20, [now - (k + 1) * SEC]))
        if r.status_code == 204:
            acked += 20
        else:
            assert r.status_code == 503, r.text
            assert "--buffer-mem-limit" in r.text
            refused += 1
            break
    assert refused == 1
    dbdir.unlink()
    wait_for(lambda: s.write(DB, "cpu,host=z v=1 " + str(now)).status_code == 204,
             timeout=90, what="writes accepted again")
    assert s.rows(DB, "SELECT count(*) AS c FROM cpu") == [{"c": acked + 2}]


def test_snapshotted_wal_files_to_keep(server_factory):
    s = server_factory(extra_args=["--wal-flush-interval", "10ms", "--wal-snapshot-size", "1",
                                   "--snapshotted-wal-files-to-keep", "3",
                                   "--compaction-interval", "0s"]).start()
    now = time.time_ns()
    for k in range(12):
        ok(s.write(DB, f"cpu,host=a v={k} {now + k}"))
    wait_for(lambda: sum(f["row_count"] for f in files(s, "cpu")) == 12, timeout=60,
             what="every write in Parquet")
    # the newest three snapshotted WAL files stay (a later issue's triggers replay them)
    wait_for(lambda: len([p for p in s.stored_objects("test-node/wal/")
                          if p.endswith(".wal")]) == 3, timeout=30,
             what="all but three snapshotted WAL files deleted")
    s.restart()  # kept files are not replayed again: nothing doubles
    assert s.rows(DB, "SELECT count(*) AS c, sum(v) AS v FROM cpu") == [{"c": 12, "v": 66.0}]



@pytest.mark.parametrize("grace", ["1s", None])
def test_hard_deleted_database_is_forgotten_after_the_grace_period(server_factory, grace):
    args = ["--wal-flush-interval", "10ms", "--wal-snapshot-size", "1",
            "--compaction-interval", "200ms"]
    s = server_factory(extra_args=args + (["--delete-grace-period", grace] if grace else [])
                       ).start()
    ok(s.write("doomed", lines("cpu", 50, [time.time_ns() - SEC])))
    wait_for(lambda: s.rows("doomed", "SELECT * FROM system.parquet_files"), timeout=60,
             what="a snapshot of the doomed database")
    assert stored_parquet(s)
    r = httpx.delete(f"{s.url}/api/v3/configure/database",
                     params={"db": "doomed", "hard_delete_at": "now"}, timeout=30)
    assert r.status_code == 200, r.text
    wait_for(lambda: "hard delete of doomed" in s.log(), timeout=60,
             what="the hard delete to remove the files")

    def listed() -> list[dict]:
        return s.rows("_internal", "SELECT database_name, deleted FROM system.databases "
                                   "WHERE database_name LIKE 'doomed%'")

    if grace:
        wait_for(lambda: not listed(), timeout=60, what="the catalog to forget the database")
    s.restart()  # unlisted files are removed from disk at start-up
    assert not stored_parquet(s)
    if grace:
        assert not listed()
    else:  # within the default 24h grace period the deleted database is still shown
        rows = listed()
        assert rows and all(r["deleted"] for r in rows)
