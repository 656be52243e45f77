"""Catalog limits as `serve` options, retention periods and soft/hard deletes, end to end:
real servers on free ports driven through HTTP and the `influxdb3` CLI (the catalog's API
for the storage side on its own: tests/unit/catalog/test_catalog_hard_delete.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from conftest import WeirServer, weir_cmd

NS = 1_000_000_000
DAY_NS = 86_400 * NS


def cli(srv: WeirServer, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "INFLUXDB3_HOST_URL": srv.url}
    env.pop("INFLUXDB3_AUTH_TOKEN", None)
    return subprocess.run([*weir_cmd(), *args], capture_output=True, text=True, env=env,
                          input=stdin, timeout=60)


def create_db(srv: WeirServer, name: str, **body: object) -> httpx.Response:
    return httpx.post(f"{srv.url}/api/v3/configure/database", json={"db": name, **body},
                      timeout=30)


def sys_rows(srv: WeirServer, table: str, where: str = "") -> list[dict]:
    return srv.rows("_internal", f"SELECT * FROM system.{table} {where}")


def db_row(srv: WeirServer, name: str, deleted: bool = False) -> dict:
    """The database's system.databases row; a soft-deleted one is listed by the
    reference's `<name>-<%Y%m%dT%H%M%S>`."""
    rows = [r for r in sys_rows(srv, "databases")
            if r["deleted"] == deleted and (
                re.fullmatch(rf"{re.escape(name)}-\d{{8}}T\d{{6}}", r["database_name"])
                if deleted else r["database_name"] == name)]
    assert len(rows) == 1, rows
    return rows[0]


def epoch_s(value: str | None) -> float | None:
    """A JSON timestamp of `system.*.hard_deletion_time` as seconds since the epoch."""
    if value is None:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


# ---- limits --------------------------------------------------------------------------------


def test_default_limits_allow_a_sixth_database_and_many_tables(server: WeirServer) -> None:
    now = time.time_ns()
    for i in range(7):
        assert create_db(server, f"db{i}").status_code == 200
    # a write that creates a database on the fly, past the reference's old limit of 5
    r = server.write("db_by_write", f"cpu,host=a usage=1.5 {now}")
    assert r.status_code == 204, r.text
    lines = "\n".join(f"t{i},host=a v={i} {now}" for i in range(30))
    assert server.write("db0", lines).status_code == 204
    assert len(server.rows("db0", "SHOW TABLES")) >= 30


@pytest.fixture
def limited(server_factory) -> WeirServer:  # type: ignore[no-untyped-def]
    """Databases and tables lowered (the first through its environment variable), columns
    raised above the default of 500."""
    return server_factory(
        extra_args=["--wal-flush-interval", "10ms", "--num-table-limit", "3",
                    "--num-total-columns-per-table-limit", "600"],
        env={"INFLUXDB3_NUM_DATABASE_LIMIT": "2"}).start()


def test_lowered_database_limit_http_cli_and_write(limited: WeirServer) -> None:
    assert create_db(limited, "a").status_code == 200
    p = cli(limited, "create", "database", "b")
    assert p.returncode == 0 and 'Database "b" created successfully' in p.stdout, p.stderr
    r = create_db(limited, "c")
    assert r.status_code == 422
    assert r.json() == {"error": "Adding a new database would exceed limit of 2 databases"}
    p = cli(limited, "create", "database", "c")
    assert p.returncode != 0
    assert "Adding a new database would exceed limit of 2 databases" in p.stderr
    r = limited.write("c", f"m v=1 {time.time_ns()}")
    assert r.status_code == 422, r.text
    assert "Adding a new database would exceed limit of 2 databases" in r.text
    # a table creation that would create the database is refused the same way
    r = httpx.post(f"{limited.url}/api/v3/configure/table",
                   json={"db": "c", "table": "t", "tags": ["h"], "fields": []})
    assert r.status_code == 422 and "limit of 2 databases" in r.text
    names = {d["iox::database"] for d in httpx.get(
        f"{limited.url}/api/v3/configure/database", params={"format": "json"}).json()}
    assert names == {"_internal", "a", "b"}
    # deleting one frees its place
    assert cli(limited, "delete", "database", "a", "--yes").returncode == 0
    assert create_db(limited, "c").status_code == 200


def test_lowered_table_limit_counts_all_databases(limited: WeirServer) -> None:
    now = time.time_ns()
    assert limited.write("a", f"t1 v=1 {now}\nt2 v=2 {now}").status_code == 204
    assert limited.write("b", f"t3 v=3 {now}").status_code == 204
    r = limited.write("b", f"t4 v=4 {now}")
    assert r.status_code == 422
    assert ("Update to schema would exceed number of tables limit: attempted to create "
            "table but already have 3 table(s) (limit: 3)") in r.text
    p = cli(limited, "create", "table", "t5", "--database", "b", "--tags", "h")
    assert p.returncode != 0
    assert ("Update to schema would exceed number of tables limit: attempted to create "
            "table but already have 3 table(s) (limit: 3)") in p.stderr
    assert limited.rows("b", "SELECT v FROM t3") == [{"v": 3.0}]


def test_raised_column_limit(limited: WeirServer) -> None:
    now = time.time_ns()
    fields = ",".join(f"f{i}={i}i" for i in range(550))  # 551 columns (time not counted)
    r = limited.write("a", f"wide,host=x {fields} {now}")
    assert r.status_code == 204, r.text
    (row,) = limited.rows("a", "SELECT f549, host FROM wide")
    assert row == {"f549": 549, "host": "x"}
    r = limited.write("a", f"wide,host=x {','.join(f'g{i}=1i' for i in range(60))} {now}")
    assert r.status_code == 422
    assert "Update to schema would exceed number of columns per table limit of 600 columns" \
        in r.text
    # create table checks the same limit (one place: the catalog)
    r = httpx.post(f"{limited.url}/api/v3/configure/table", json={
        "db": "a", "table": "too_wide", "tags": [],
        "fields": [{"name": f"f{i}", "type": "int64"} for i in range(601)]})
    assert r.status_code == 422
    assert r.json() == {"error": "Update to schema would exceed number of columns per table "
                                 "limit of 600 columns"}


def test_limit_lowered_below_what_exists_keeps_it(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory(extra_args=["--wal-flush-interval", "10ms"]).start()
    now = time.time_ns()
    for name in ("x", "y", "z"):
        assert srv.write(name, f"m v=1 {now}").status_code == 204
    srv.extra_args += ["--num-database-limit", "2"]
    srv.restart()
    for name in ("x", "y", "z"):
        assert srv.rows(name, "SELECT v FROM m") == [{"v": 1.0}]
    assert srv.write("z", f"m v=2 {now + 1}").status_code == 204
    r = create_db(srv, "w")
    assert r.status_code == 422 and "limit of 2 databases" in r.text


def test_limit_options_reject_nonsense() -> None:
    p = subprocess.run([*weir_cmd(), "serve", "--node-id", "n", "--object-store", "memory",
                        "--num-database-limit", "0"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "--num-database-limit" in p.stderr


# ---- retention -----------------------------------------------------------------------------


def test_retention_period_create_update_show(server: WeirServer) -> None:
    p = cli(server, "create", "database", "r1", "--retention-period", "30d")
    assert p.returncode == 0, p.stderr
    assert db_row(server, "r1")["retention_period_ns"] == 30 * DAY_NS
    p = cli(server, "show", "retention", "--database", "r1", "--format", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == [{"database_name": "r1", "retention_period": "30d"}]
    r = httpx.get(f"{server.url}/query", params={"q": "SHOW RETENTION POLICIES", "db": "r1"})
    assert r.status_code == 200 and "720h0m0s" in r.text, r.text

    p = cli(server, "update", "database", "-d", "r1", "--retention-period", "7d")
    assert p.returncode == 0 and 'Database "r1" updated successfully' in p.stdout, p.stderr
    assert db_row(server, "r1")["retention_period_ns"] == 7 * DAY_NS
    p = cli(server, "update", "database", "--database", "r1", "-r", "none")
    assert p.returncode == 0, p.stderr
    assert db_row(server, "r1").get("retention_period_ns") is None

    # the dedicated endpoint: POST sets, DELETE clears, both 204
    r = httpx.post(f"{server.url}/api/v3/configure/database/retention_period",
                   params={"db": "r1", "duration": "12h"})
    assert r.status_code == 204, r.text
    assert db_row(server, "r1")["retention_period_ns"] == 12 * 3600 * NS
    # PUT with a new period, as `update database` sends it
    r = httpx.put(f"{server.url}/api/v3/configure/database",
                  json={"db": "r1", "retention_period": "2d"})
    assert r.status_code == 200
    assert db_row(server, "r1")["retention_period_ns"] == 2 * DAY_NS
    server.restart()
    assert db_row(server, "r1")["retention_period_ns"] == 2 * DAY_NS
    r = httpx.delete(f"{server.url}/api/v3/configure/database/retention_period",
                     params={"db": "r1"})
    assert r.status_code == 204
    assert db_row(server, "r1").get("retention_period_ns") is None


def test_retention_period_bad_values(server: WeirServer) -> None:
    assert create_db(server, "r2").status_code == 200
    for bad in ("0s", "soon", "-3d"):
        r = httpx.post(f"{server.url}/api/v3/configure/database/retention_period",
                       params={"db": "r2", "duration": bad})
        assert r.status_code == 400, (bad, r.text)
    r = httpx.post(f"{server.url}/api/v3/configure/database/retention_period",
                   params={"db": "nope", "duration": "1d"})
    assert r.status_code == 404
    p = cli(server, "create", "database", "r3", "--retention-period", "0s")
    assert p.returncode == 2 and "--retention-period" in p.stderr
    assert db_row(server, "r2").get("retention_period_ns") is None


# ---- deletes -------------------------------------------------------------------------------


@pytest.fixture
def deleter(server_factory) -> WeirServer:  # type: ignore[no-untyped-def]
    # Compaction off: the storage side carries out due hard deletes in its maintenance
    # pass; these tests look at the times the catalog recorded before that happens.
    return server_factory(extra_args=["--wal-flush-interval", "10ms",
                                      "--hard-delete-default-duration", "2h",
                                      "--compaction-interval", "0s"]).start()


def test_delete_database_hard_delete_times(deleter: WeirServer) -> None:
    now = time.time_ns()
    for name in ("d_default", "d_never", "d_now", "d_at", "d_past", "d_plain"):
        assert deleter.write(name, f"m,h=a v=1 {now}").status_code == 204
    future = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    cases = {"d_default": ["--hard-delete", "default"], "d_never": ["--hard-delete", "never"],
             "d_now": ["--hard-delete", "now"],
             "d_at": ["--hard-delete", future.strftime("%Y-%m-%dT%H:%M:%SZ")],
             "d_past": ["--hard-delete", "2001-01-01T00:00:00Z"], "d_plain": []}
    before = time.time()
    for name, args in cases.items():
        p = cli(deleter, "delete", "database", name, *args, "--yes")
        assert p.returncode == 0, p.stderr
        assert f'Database "{name}" deleted successfully' in p.stdout
    after = time.time()

    def when(name: str) -> float | None:
        return epoch_s(db_row(deleter, name, deleted=True).get("hard_deletion_time"))

    def check(name: str, offset: float | None) -> None:
        got = when(name)
        if offset is None:
            assert got is None, (name, got)
        else:
            assert before + offset - 1 <= got <= after + offset + 1, (name, got)

    check("d_never", None)
    check("d_now", 0)
    check("d_past", 0)  # a time in the past means now
    check("d_default", 7200)  # --hard-delete-default-duration 2h
    check("d_plain", 7200)  # no --hard-delete: the default
    assert when("d_at") == future.timestamp()
    # the same after a restart: the times are in the catalog
    deleter.restart()
    check("d_never", None)
    assert when("d_at") == future.timestamp()
    names = {d["iox::database"].split("-")[0] for d in httpx.get(
        f"{deleter.url}/api/v3/configure/database",
        params={"format": "json", "show_deleted": "true"}).json() if d["deleted"]}
    assert {"d_never", "d_at"} <= names


def test_delete_table_soft_then_hard_time(deleter: WeirServer) -> None:
    now = time.time_ns()
    assert deleter.write("tdb", f"keep,h=a v=1 {now}\ngone,h=a v=2 {now}").status_code == 204
    p = cli(deleter, "delete", "table", "gone", "--database", "tdb", "--hard-delete", "now",
            "--yes")
    assert p.returncode == 0 and 'Table "tdb"."gone" deleted successfully' in p.stdout, \
        p.stderr
    # a soft-deleted table is listed as `<name>-<%Y%m%dT%H%M%S>`, as in the reference
    rows = {(r["table_name"].split("-")[0], r["deleted"]): r for r in sys_rows(deleter, "tables")
            if r["database_name"] == "tdb"}
    assert set(rows) == {("keep", False), ("gone", True)}
    assert rows[("keep", False)].get("hard_deletion_time") is None
    assert abs(epoch_s(rows[("gone", True)]["hard_deletion_time"]) - time.time()) < 30
    assert rows[("keep", False)]["series_key_columns"] == "h"
    assert rows[("keep", False)]["last_cache_count"] == 0
    assert deleter.rows("tdb", "SELECT v FROM keep") == [{"v": 1.0}]
    assert deleter.query("tdb", "SELECT * FROM gone").status_code != 200


def test_bad_hard_delete_deletes_nothing(deleter: WeirServer) -> None:
    assert deleter.write("keepme", f"m v=1 {time.time_ns()}").status_code == 204
    p = cli(deleter, "delete", "database", "keepme", "--hard-delete", "tomorrow", "--yes")
    assert p.returncode == 2 and "--hard-delete" in p.stderr
    r = httpx.delete(f"{deleter.url}/api/v3/configure/database",
                     params={"db": "keepme", "hard_delete_at": "tomorrow"})
    assert r.status_code == 400
    assert r.text == "Cannot parse the timestamp: input contains invalid characters"
    r = httpx.delete(f"{deleter.url}/api/v3/configure/table",
                     params={"db": "keepme", "table": "m", "hard_delete_at": "2025-13-01T00:00:00Z"})
    assert r.status_code == 400
    assert deleter.rows("keepme", "SELECT v FROM m") == [{"v": 1.0}]
