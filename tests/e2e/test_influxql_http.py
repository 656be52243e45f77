"""The InfluxQL HTTP surfaces against a real server: `/api/v3/query_influxql` (the
query_sql formats and errors) and the v1 `/query` (JSON, pretty, epoch, chunked, CSV,
GET and every POST form, several statements, statement errors with 200)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from conftest import WeirServer

DATA = b"""cpu,host=a usage=1.5 1000000000
cpu,host=b usage=2 2000000000
cpu,host=a usage=3.25 3000000000
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> WeirServer:
    s = WeirServer(Path(tmp_path_factory.mktemp("iqhttp")) / "data",
                   extra_args=["--wal-flush-interval", "10ms"])
    s.start()
    assert s.write("db1", DATA.decode(), precision="ns").status_code == 204
    assert s.write("db2", "other x=1i 5").status_code == 204
    yield s
    s.stop()


def v3(srv: WeirServer, body: dict, **kw: object) -> httpx.Response:
    return httpx.post(f"{srv.url}/api/v3/query_influxql", json=body, timeout=30, **kw)


# ---- /api/v3/query_influxql --------------------------------------------------------------


def test_v3_json_default(srv: WeirServer) -> None:
    r = v3(srv, {"db": "db1", "q": "SELECT usage FROM cpu WHERE host = 'a'"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == [
        {"iox::measurement": "cpu", "time": "1970-01-01T00:00:01", "usage": 1.5},
        {"iox::measurement": "cpu", "time": "1970-01-01T00:00:03", "usage": 3.25},
    ]


def test_v3_formats(srv: WeirServer) -> None:
    q = "SELECT usage FROM cpu WHERE host = 'b'"
    r = v3(srv, {"db": "db1", "q": q, "format": "csv"})
    assert r.text == "iox::measurement,time,usage\ncpu,1970-01-01T00:00:02,2.0\n"
    r = v3(srv, {"db": "db1", "q": q, "format": "jsonl"})
    assert r.text == '{"iox::measurement":"cpu","time":"1970-01-01T00:00:02","usage":2.0}\n'
    r = v3(srv, {"db": "db1", "q": q, "format": "pretty"})
    assert r.text.splitlines()[1] == "| iox::measurement | time                | usage |"
    r = v3(srv, {"db": "db1", "q": q, "format": "parquet"})
    assert pq.read_table(io.BytesIO(r.content)).column("usage").to_pylist() == [2.0]
    r = httpx.get(f"{srv.url}/api/v3/query_influxql",
                  params={"db": "db1", "q": q}, headers={"Accept": "text/csv"})
    assert r.headers["content-type"].startswith("text/csv")


def test_v3_group_by_tag_column(srv: WeirServer) -> None:
    r = v3(srv, {"db": "db1", "q": "SELECT sum(usage) FROM cpu GROUP BY host"})
    assert r.json() == [
        {"iox::measurement": "cpu", "time": "1970-01-01T00:00:00", "host": "a", "sum": 4.75},
        {"iox::measurement": "cpu", "time": "1970-01-01T00:00:00", "host": "b", "sum": 2.0},
    ]


def test_v3_database_from_the_query(srv: WeirServer) -> None:
    r = v3(srv, {"q": "SELECT x FROM db2.autogen.other"})
    assert r.status_code == 200 and r.json()[0]["x"] == 1
    r = v3(srv, {"db": "db1", "q": "SELECT x FROM db2.autogen.other"})
    assert r.status_code == 400 and "do not match" in r.text


def test_v3_errors(srv: WeirServer) -> None:
    r = v3(srv, {"q": "SELECT usage FROM cpu"})
    assert r.status_code == 400
    assert "must specify a 'db' parameter" in r.text
    r = v3(srv, {"db": "nope", "q": "SELECT usage FROM cpu"})
    assert r.status_code == 404
    assert r.json() == {"error": "query error: database not found: nope"}
    r = v3(srv, {"db": "db1", "q": "SHOW DATABASES; SHOW MEASUREMENTS"})
    assert r.status_code == 400 and "only one InfluxQl statement" in r.text
    r = v3(srv, {"db": "db1", "q": "SHOW SERIES"})
    assert r.status_code == 400 and "SHOW SERIES" in r.text
    r = v3(srv, {"db": "db1", "q": "SELEC x"})
    assert r.status_code == 400
    assert r.text.startswith("error in InfluxQL statement: parsing error: invalid InfluxQL "
                             "statement at pos 0")
    r = httpx.get(f"{srv.url}/api/v3/query_influxql")
    assert r.status_code == 400 and r.text == "missing query parameters 'db' and 'q'"


def test_v3_show_needs_no_db(srv: WeirServer) -> None:
    r = v3(srv, {"q": "SHOW DATABASES"})
    # the reference's v3 shape: `iox::database` and `deleted`, no measurement column
    assert r.json() == [{"iox::database": n, "deleted": False}
                        for n in ("_internal", "db1", "db2")]


def test_v3_bind_parameters(srv: WeirServer) -> None:
    r = v3(srv, {"db": "db1", "q": "SELECT usage FROM cpu WHERE host = $h",
                 "params": {"h": "b"}})
    assert [row["usage"] for row in r.json()] == [2.0]


# ---- /query (v1) -------------------------------------------------------------------------


def v1(srv: WeirServer, **params: str) -> httpx.Response:
    return httpx.get(f"{srv.url}/query", params=params, timeout=30)


def test_v1_times_and_epochs(srv: WeirServer) -> None:
    q = "SELECT usage FROM cpu WHERE host = 'b'"
    assert v1(srv, db="db1", q=q).json()["results"][0]["series"][0]["values"] == [
        ["1970-01-01T00:00:02Z", 2]]
    for epoch, v in [("ns", 2_000_000_000), ("u", 2_000_000), ("ms", 2000), ("s", 2),
                     ("m", 0)]:
        got = v1(srv, db="db1", q=q, epoch=epoch).json()["results"][0]["series"][0]
        assert got["values"] == [[v, 2]], epoch
    assert v1(srv, db="db1", q=q, epoch="fortnight").status_code == 400
    # a POST body's fields override the URL's; a bad epoch in the URL is still refused
    # (found by the OpenAPI fuzzer: the body's fields hid it, and the query ran)
    url = f"{srv.url}/query"
    for body in ({"q": q, "db": "db1", "epoch": "s"}, {"q": q, "db": "db1", "epoch": ""}):
        r = httpx.post(url, params={"epoch": "fortnight"}, data=body, timeout=30)
        assert r.status_code == 400 and "unknown epoch 'fortnight'" in r.json()["error"], r.text
        r = httpx.post(url, params={"epoch": "fortnight"}, files={"x": (None, "1")}, data=body,
                       timeout=30)
        assert r.status_code == 400 and "unknown epoch 'fortnight'" in r.json()["error"], r.text
    r = httpx.post(url, params={"epoch": "ms"}, data={"q": q, "db": "db1", "epoch": "s"},
                   timeout=30)
    assert r.json()["results"][0]["series"][0]["values"] == [[2, 2]]


def test_v1_empty_result_and_statement_errors(srv: WeirServer) -> None:
    r = v1(srv, db="db1", q="SELECT usage FROM cpu WHERE host = 'zzz'")
    assert r.json() == {"results": [{"statement_id": 0}]}
    r = v1(srv, db="nope", q="SELECT usage FROM cpu")
    assert r.status_code == 200
    assert r.json() == {"results": [{"statement_id": 0, "error": "Cannot retrieve database: "
                                     "External error: database not found: nope"}]}
    r = v1(srv, q="SELECT usage FROM cpu")
    assert r.json()["results"][0]["error"].startswith("must specify a 'db' parameter")


def test_v1_several_statements(srv: WeirServer) -> None:
    r = v1(srv, db="db1", q="SELECT count(usage) FROM cpu; SHOW SERIES; SHOW MEASUREMENTS")
    res = r.json()["results"]
    assert res[0] == {"statement_id": 0, "series": [
        {"name": "cpu", "columns": ["time", "count"], "values": [["1970-01-01T00:00:00Z", 3]]}]}
    assert res[1]["statement_id"] == 1 and "SHOW SERIES" in res[1]["error"]
    assert res[2] == {"statement_id": 2, "series": [
        {"name": "measurements", "columns": ["name"], "values": [["cpu"]]}]}


def test_v1_post_forms(srv: WeirServer) -> None:
    q = "SELECT usage FROM cpu WHERE host = 'b'"
    want = [["1970-01-01T00:00:02Z", 2]]
    r = httpx.post(f"{srv.url}/query", data={"db": "db1", "q": q})
    assert r.json()["results"][0]["series"][0]["values"] == want
    r = httpx.post(f"{srv.url}/query", params={"db": "db1"}, content=q.encode(),
                   headers={"Content-Type": "application/vnd.influxql"})
    assert r.json()["results"][0]["series"][0]["values"] == want
    r = httpx.post(f"{srv.url}/query", files={"db": (None, "db1"), "q": (None, q)})
    assert r.json()["results"][0]["series"][0]["values"] == want
    # body parameters win over the URL's
    r = httpx.post(f"{srv.url}/query", params={"db": "nope"}, data={"db": "db1", "q": q})
    assert r.json()["results"][0]["series"][0]["values"] == want
    r = httpx.post(f"{srv.url}/query", params={"db": "db1"})
    assert r.status_code == 400 and "expected a query" in r.json()["error"]


def test_v1_pretty(srv: WeirServer) -> None:
    r = v1(srv, db="db1", q="SHOW MEASUREMENTS", pretty="true")
    assert r.text.startswith('{\n  "results": [')
    assert json.loads(r.text)["results"][0]["series"][0]["values"] == [["cpu"]]


def test_v1_chunked(srv: WeirServer) -> None:
    r = v1(srv, db="db1", q="SELECT usage FROM cpu GROUP BY host", chunked="true",
           chunk_size="1")
    lines = [json.loads(x) for x in r.text.splitlines()]
    # host a has two points (two chunks, the first partial), then host b
    assert lines == [
        {"results": [{"statement_id": 0, "series": [
            {"name": "cpu", "tags": {"host": "a"}, "columns": ["time", "usage"],
             "values": [["1970-01-01T00:00:01Z", 1.5]], "partial": True}], "partial": True}]},
        {"results": [{"statement_id": 0, "series": [
            {"name": "cpu", "tags": {"host": "a"}, "columns": ["time", "usage"],
             "values": [["1970-01-01T00:00:03Z", 3.25]]}], "partial": True}]},
        {"results": [{"statement_id": 0, "series": [
            {"name": "cpu", "tags": {"host": "b"}, "columns": ["time", "usage"],
             "values": [["1970-01-01T00:00:02Z", 2]]}]}]},
    ]
    r = v1(srv, db="db1", q="SELECT usage FROM cpu", chunked="true")
    assert len(r.text.splitlines()) == 1


def test_v1_csv(srv: WeirServer) -> None:
    r = httpx.get(f"{srv.url}/query", params={"db": "db1", "q": "SELECT usage FROM cpu "
                                              "GROUP BY host"},
                  headers={"Accept": "application/csv"})
    assert r.headers["content-type"].startswith("application/csv")
    assert r.text == ("name,tags,time,usage\n"
                      "cpu,host=a,1000000000,1.5\n"
                      "cpu,host=a,3000000000,3.25\n"
                      "cpu,host=b,2000000000,2\n")


def test_v1_rp_parameter_and_qualified_names(srv: WeirServer) -> None:
    r = httpx.post(f"{srv.url}/write", params={"db": "db3", "rp": "weekly"}, content=b"m v=7i 1")
    assert r.status_code == 204
    r = v1(srv, db="db3", rp="weekly", q="SELECT v FROM m")
    assert r.json()["results"][0]["series"][0]["values"] == [["1970-01-01T00:00:00.000000001Z",
                                                              7]]
    r = v1(srv, q='SELECT v FROM "db3"."weekly"."m"')
    assert r.json()["results"][0]["series"][0]["values"][0][1] == 7
