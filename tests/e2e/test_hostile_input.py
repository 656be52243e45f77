"""Hostile input against a real server: oversized and malformed bodies, deep JSON,
invalid UTF-8, absurd schemas, bad and expensive SQL. Each is refused with a clear
error, the server keeps serving, and data already stored is exactly as it was."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import WeirServer

LIMIT = 100_000  # --max-http-request-size
KEEP = "keep"
ROWS = 1000
KEEP_LP = "\n".join(f"m,h=h{i % 10} v={i}i,s=\"{'x' * 20}\" {i}" for i in range(ROWS))


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeirServer]:
    s = WeirServer(Path(tmp_path_factory.mktemp("hostile")) / "data", extra_args=[
        "--wal-flush-interval", "10ms", "--max-http-request-size", str(LIMIT),
        "--query-timeout", "2s", "--exec-mem-pool-bytes", "64m",
        # the reference's tables limit counts every database: keep's table plus 2000
        "--num-table-limit", "2001"]).start()
    r = httpx.post(f"{s.url}/api/v3/write_lp", params={"db": KEEP},
                   content=gzip.compress(KEEP_LP.encode()), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 204, r.text
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def kept_data_is_untouched(srv: WeirServer) -> Iterator[None]:
    """After every test: the server answers and the stored rows are the same."""
    before = srv.rows(KEEP, "SELECT count(*) AS n, sum(v) AS total FROM m")
    dbs = httpx.get(f"{srv.url}/api/v3/configure/database", params={"format": "json"}).json()
    yield
    assert httpx.get(f"{srv.url}/health").status_code == 200
    assert srv.rows(KEEP, "SELECT count(*) AS n, sum(v) AS total FROM m") == before
    assert before == [{"n": ROWS, "total": sum(range(ROWS))}]
    after = httpx.get(f"{srv.url}/api/v3/configure/database", params={"format": "json"}).json()
    assert after == dbs, "a refused request created or removed a database"
    assert "Traceback" not in srv.log(), srv.log()


def post(srv: WeirServer, path: str, body: bytes, **kw: object) -> httpx.Response:
    return httpx.post(f"{srv.url}{path}", content=body, timeout=30, **kw)  # type: ignore[arg-type]


def json_post(srv: WeirServer, path: str, body: bytes) -> httpx.Response:
    return post(srv, path, body, headers={"Content-Type": "application/json"})


# ---- size limits and encodings -----------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v3/write_lp?db=keep", "/api/v2/write?bucket=keep",
                                  "/write?db=keep"])
def test_oversized_and_inflating_writes_are_413(srv, path):
    big = ("m v=1i 1\n" * (LIMIT // 8)).encode()
    assert len(big) > LIMIT
    r = post(srv, path, big)
    assert r.status_code == 413 and str(LIMIT) in r.text, r.text
    bomb = gzip.compress(b"m v=1i 1\n" * 1_000_000)  # 9 MB inflated, a few KB sent
    assert len(bomb) < LIMIT
    r = post(srv, path, bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413, r.text


@pytest.mark.parametrize("path", ["/api/v3/query_sql", "/api/v3/query_influxql",
                                  "/api/v3/configure/database", "/api/v3/configure/table"])
def test_oversized_json_bodies_are_413(srv, path):
    body = json.dumps({"db": KEEP, "q": "SELECT 1", "pad": "x" * LIMIT}).encode()
    r = json_post(srv, path, body)
    assert r.status_code == 413, r.text


@pytest.mark.parametrize("body, why", [
    # (mtime=0: the bodies, and so the test ids, are the same in every pytest-xdist
    # worker; with the clock in the gzip header they differ and xdist refuses to run)
    pytest.param(b"not gzip at all", "incorrect header check", id="not-gzip"),
    pytest.param(gzip.compress(b"m v=9i 9\n", mtime=0)[:-6], "unexpected end of data",
                 id="truncated"),
    pytest.param(gzip.compress(b"m v=9i 9\n", mtime=0) + b"trailing junk",
                 "incorrect header check", id="trailing-junk"),
])
def test_malformed_gzip_is_400_and_writes_nothing(srv, body, why):
    r = post(srv, "/api/v3/write_lp?db=keep", body, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and why in r.text, r.text


# ---- JSON --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v3/query_sql", "/api/v3/configure/database",
                                  "/api/v3/configure/token/named_admin",
                                  "/api/v3/configure/table"])
def test_deep_json_is_400(srv, path):
    deep = b'{"db": "keep", "q": ' + b"[" * 40_000 + b"]" * 40_000 + b"}"
    assert len(deep) < LIMIT
    r = json_post(srv, path, deep)
    assert r.status_code in (400, 405), r.text  # 405: token paths without auth
    if r.status_code == 400:
        assert "json" in r.text.lower()


@pytest.mark.parametrize("body", [b"[1, 2]", b'"just a string"', b"null", b"{", b"\xff\xfe",
                                  b'{"db": 5, "q": ["SELECT 1"]}'])
def test_json_of_the_wrong_shape_is_400(srv, body):
    r = json_post(srv, "/api/v3/query_sql", body)
    assert r.status_code == 400, r.text


def test_wide_query_parameters_are_served(srv):
    params = {f"p{i}": str(i) for i in range(5000)}
    r = httpx.post(f"{srv.url}/api/v3/query_sql", timeout=30, json={
        "db": KEEP, "q": "SELECT count(*) AS n FROM m WHERE v < $p500", "params": params})
    assert r.status_code == 200 and r.json() == [{"n": 500}], r.text


# ---- UTF-8 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v3/write_lp?db=keep", "/write?db=keep",
                                  "/api/v2/write?bucket=keep"])
def test_invalid_utf8_body_is_refused_whole_naming_the_line(srv, path):
    r = post(srv, path, b"m v=7i 7\nm,h=\xff\xfe v=8i 8\nm v=9i 9\n")
    assert r.status_code == 400, r.text
    assert "not valid utf8" in r.text and "line 2, byte 5" in r.text, r.text


def test_invalid_utf8_in_names_and_queries(srv):
    r = httpx.post(f"{srv.url}/api/v3/write_lp?db=%FF", content=b"m v=1")
    assert r.status_code == 400 and "invalid character" in r.text
    r = httpx.get(f"{srv.url}/api/v3/query_sql?db=keep&q=SELECT%20%FF%FE")
    assert r.status_code == 400, r.text


# ---- absurd schemas ------------------------------------------------------------------------


def test_too_many_columns_is_422_and_creates_nothing(srv):
    fields = ",".join(f"f{i}=1" for i in range(600))
    tags = ",".join(f"t{i}=x" for i in range(600))
    r = srv.write("wide", f"fields {fields} 1\ntags,{tags} v=1 1\nok v=1 1")
    assert r.status_code == 422, r.text
    errors = r.json()["data"]
    assert [e["line_number"] for e in errors] == [1, 2]
    assert all("columns per table limit of 500" in e["error_message"] for e in errors)
    assert errors[0]["original_line"] == "fields f0=1,f1=1,f2="  # the reference's 20 bytes
    tables = srv.rows("wide", "SELECT table_name FROM information_schema.tables "
                              "WHERE table_schema = 'iox'")
    assert tables == [{"table_name": "ok"}], "a refused line left a table behind"
    r = httpx.post(f"{srv.url}/write", params={"db": "wide"}, content=f"more {fields}".encode())
    assert r.status_code == 422 and r.json()["data"]["line_number"] == 1
    assert httpx.delete(f"{srv.url}/api/v3/configure/database",
                        params={"db": "wide"}).status_code == 200


def test_a_write_that_stores_nothing_creates_no_database(srv):
    fields = ",".join(f"f{i}=1" for i in range(600))
    r = srv.write("never", f"wide {fields} 1")
    assert r.status_code == 422, r.text
    # the autouse check asserts the database list did not change


def test_too_many_tables_is_422_naming_each_line(srv):
    lp = "\n".join(f"t{i} v=1 1" for i in range(2003))
    r = srv.write("many", lp)
    assert r.status_code == 422, r.text
    errors = r.json()["data"]
    assert [e["line_number"] for e in errors] == [2001, 2002, 2003]
    assert all(e["error_message"].startswith("Update to schema would exceed number of tables "
                                             "limit: attempted to create table but already "
                                             "have ") and
               e["error_message"].endswith("(limit: 2001)") for e in errors)
    assert errors[0]["original_line"] == "t2000 v=1 1"
    assert srv.rows("many", "SELECT count(*) AS n FROM t1999") == [{"n": 1}]
    assert httpx.delete(f"{srv.url}/api/v3/configure/database",
                        params={"db": "many"}).status_code == 200


def test_oversized_string_field_names_its_line(srv):
    r = srv.write(KEEP, 'm v=1i 1\nm s="' + "x" * 120_000 + '" 2')
    assert r.status_code == 413  # the body is over the 100 kB limit
    r = srv.write("strings", 'm v=1i 1\nm s="' + "x" * 66_000 + '" 2')
    assert r.status_code == 400
    (err,) = r.json()["data"]
    assert err["line_number"] == 2 and "longer than 65536 bytes" in err["error_message"]
    assert httpx.delete(f"{srv.url}/api/v3/configure/database",
                        params={"db": "strings"}).status_code == 200


# ---- SQL -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sql, status, text", [
    ("SELECT count(*) FROM m WHERE", 400, "Expected: an expression"),
    ("SELECT * FROM not_here", 400, "table 'public.iox.not_here' not found"),
    ("SELECT nope FROM m", 400, "nope"),
    ("DROP TABLE m", 400, ""),
    ("SELECT 1; SELECT 2", 405, "only supports a single SQL statement"),  # as the reference
])
def test_sql_errors_are_clear(srv, sql, status, text):
    r = srv.query(KEEP, sql)
    assert r.status_code == status, r.text
    assert text in r.text


def test_expensive_queries_end_not_the_server(srv):
    """A runaway query hits the time limit (408) and a memory-hungry one the memory pool
    (the reference's 500 'Resources exhausted'); a cheap query is served meanwhile."""
    results: dict[str, httpx.Response] = {}

    def run(name: str, sql: str) -> None:
        results[name] = srv.query(KEEP, sql)

    slow = threading.Thread(target=run, args=(
        "slow", "SELECT a.s || b.s || c.s AS x FROM m a, m b, m c ORDER BY x"))
    slow.start()
    cheap = srv.query(KEEP, "SELECT count(*) AS n FROM m")
    slow.join(60)
    assert cheap.status_code == 200 and cheap.json() == [{"n": ROWS}]
    r = results["slow"]
    assert r.status_code == 408 and "time limit of 2" in r.text, r.text
    r = srv.query(KEEP, "SELECT array_length(array_agg(repeat(a.s, 10) || b.s)) FROM m a, m b")
    assert r.status_code == 500 and "Resources exhausted" in r.text, r.text
