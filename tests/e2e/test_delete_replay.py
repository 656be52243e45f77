"""A deleted database or table stays deleted across a restart that replays the WAL, also
when one of the same name was made again since: the old rows, still in WAL files no
snapshot has covered, must not come back into the new one."""

from __future__ import annotations

import time

import httpx
import pytest

from support.storage_helpers import kill9_and_start, write_ok

# every test on the file store and on S3 (issue #13)
pytestmark = [pytest.mark.both_stores, pytest.mark.usefixtures("store_kind")]

S = 1_000_000_000


def _lines(table: str, host: str, n: int, now: int) -> str:
    return "\n".join(f"{table},host={host}{i} v={i}i {now - i * S}" for i in range(n))


def _count(server, db: str, table: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return server.rows(db, f"SELECT count(*) AS n, sum(v) AS s FROM {table}")


@pytest.mark.parametrize("restart", ["graceful", "kill -9"])
def test_a_database_made_again_does_not_get_the_deleted_ones_rows(server_factory, restart):
    s = server_factory(extra_args=["--wal-flush-interval", "10ms"]).start()
    now = time.time_ns()
    write_ok(s, "foo", _lines("cpu", "old", 300, now))
    r = httpx.delete(f"{s.url}/api/v3/configure/database", params={"db": "foo"}, timeout=30)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{s.url}/api/v3/configure/database", json={"db": "foo"}, timeout=30)
    assert r.status_code == 200, r.text
    write_ok(s, "foo", _lines("cpu", "new", 5, now))
    assert _count(s, "foo", "cpu") == [{"n": 5, "s": 10}]
    s = kill9_and_start(s) if restart == "kill -9" else s.restart()
    assert _count(s, "foo", "cpu") == [{"n": 5, "s": 10}]


def test_a_deleted_table_stays_deleted_and_one_made_again_starts_empty(server_factory):
    s = server_factory(extra_args=["--wal-flush-interval", "10ms"]).start()
    now = time.time_ns()
    write_ok(s, "db1", _lines("cpu", "old", 200, now) + "\n" + _lines("mem", "old", 50, now))
    write_ok(s, "db1", "keep,host=a v=1i " + str(now))
    for table in ("cpu", "mem"):
        r = httpx.delete(f"{s.url}/api/v3/configure/table",
                         params={"db": "db1", "table": table}, timeout=30)
        assert r.status_code == 200, r.text
    write_ok(s, "db1", _lines("cpu", "new", 3, now))  # cpu made again; mem not
    s = s.restart()
    assert _count(s, "db1", "cpu") == [{"n": 3, "s": 3}]
    tables = {r["table_name"] for r in s.rows(
        "db1", "SELECT table_name FROM information_schema.tables "
               "WHERE table_schema = 'iox'")}
    assert tables == {"cpu", "keep"}
    s = kill9_and_start(s)
    assert _count(s, "db1", "cpu") == [{"n": 3, "s": 3}]
    assert _count(s, "db1", "keep") == [{"n": 1, "s": 1}]
