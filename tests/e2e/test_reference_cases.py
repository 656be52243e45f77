"""The reference's own server tests, run against a real Weir server.

InfluxDB 3 Core's integration tests (`influxdb3/tests/server/*.rs` in influxdata/influxdb)
are a checklist of exact status codes, error bodies and result tables. Every case there
that is observable over HTTP (and the Flight JSON tickets of `flight.rs`) is here, named
`<file>::<test>[<case>]` after the reference test it mirrors, with the reference's data
and expected answers. Where Weir deliberately answers otherwise, the case checks Weir's
answer and says why; README.md ("Differences from InfluxDB 3 Core") lists those.

Not here: FlightSQL (`flight.rs`, `auth_grpc`; tests/e2e/test_flightsql.py), the
last/distinct value caches (`configure.rs`, `system_tables.rs`, their own tests), the
processing engine's package and trigger-restriction tests, log lines (`logs.rs`) and the
gen1 lookback guard (durability, not HTTP).

The reference's test server runs with `--wal-snapshot-size 1` on the memory object store;
so do these, one server per reference test whose answer lists databases (SHOW DATABASES,
SHOW RETENTION POLICIES), a shared one (a database per test) for the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import WeirServer

# the reference's data is written in seconds: 2998574930 s is 2065-01-07T17:28:50Z
SECOND = {"precision": "second"}


def start(tmp: pytest.TempPathFactory, name: str, *args: str, auth: bool = False
          ) -> WeirServer:
    s = WeirServer(Path(tmp.mktemp(name)) / "data", object_store="memory", auth=auth,
                   extra_args=["--wal-flush-interval", "10ms", "--wal-snapshot-size", "1",
                               *args])
    return s.start()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeirServer]:
    s = start(tmp_path_factory, "shared")
    yield s
    s.stop()


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeirServer]:
    """A server of its own, for a test whose answer lists every database."""
    s = start(tmp_path_factory, "fresh")
    yield s
    s.stop()


def write(srv: WeirServer, db: str, lp: str, **params: str) -> None:
    r = srv.write(db, lp, **(params or SECOND))
    assert r.status_code == 204, r.text


def sql(srv: WeirServer, **params: str) -> httpx.Response:
    return httpx.get(f"{srv.url}/api/v3/query_sql", params=params, timeout=30)


def influxql(srv: WeirServer, **params: str) -> httpx.Response:
    return httpx.get(f"{srv.url}/api/v3/query_influxql", params=params, timeout=30)


def v1(srv: WeirServer, headers: dict[str, str] | None = None, **params: str
       ) -> httpx.Response:
    return httpx.get(f"{srv.url}/query", params=params, headers=headers, timeout=30)


def v1_lines(srv: WeirServer, **params: str) -> list[Any]:
    """A v1 answer as the reference's tests read it: one JSON document per line."""
    r = v1(srv, **params)
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def table(*lines: str) -> str:
    """A pretty table as the reference writes its expectations (no final newline)."""
    return "\n".join(lines)


# ---- query.rs ----------------------------------------------------------------------------

CPU_S1 = ("cpu,host=s1,region=us-east usage=0.9 2998574936\n"
          "cpu,host=s1,region=us-east usage=0.89 2998574937\n"
          "cpu,host=s1,region=us-east usage=0.85 2998574938")


def test_query__api_v3_query_sql(shared: WeirServer) -> None:
    write(shared, "q_sql", CPU_S1)
    r = sql(shared, db="q_sql", format="pretty", q="SELECT host, region, time, usage FROM cpu")
    assert r.text == table(
        "+------+---------+---------------------+-------+",
        "| host | region  | time                | usage |",
        "+------+---------+---------------------+-------+",
        "| s1   | us-east | 2065-01-07T17:28:56 | 0.9   |",
        "| s1   | us-east | 2065-01-07T17:28:57 | 0.89  |",
        "| s1   | us-east | 2065-01-07T17:28:58 | 0.85  |",
        "+------+---------+---------------------+-------+")
    r = sql(shared, db="q_sql", format="pretty", q="SELECT count(usage) FROM cpu")
    assert r.text == table(
        "+------------------+",
        "| count(cpu.usage) |",
        "+------------------+",
        "| 3                |",
        "+------------------+")


def test_query__api_v3_query_sql_not_found(shared: WeirServer) -> None:
    r = sql(shared, q="SELECT * FROM foo", format="pretty", db="q_no_such_db")
    assert r.status_code == 404


@pytest.mark.parametrize("q", ["SHOW MEASUREMENTS", "SELEC * FROM cpu", "SELECT * cpu",
                               "SELECT count( FROM cpu"])
def test_query__api_v3_query_sql_invalid_query_should_return_400(shared: WeirServer,
                                                                 q: str) -> None:
    write(shared, "q_invalid", "cpu,host=a usage=1.0 1")
    r = sql(shared, db="q_invalid", format="pretty", q=q)
    assert 400 <= r.status_code < 500, r.text


PARAMS_LP = """cpu,host=a,region=us-east usage=0.9 {0}
cpu,host=b,region=us-east usage=0.50 {0}
cpu,host=a,region=us-east usage=0.80 {1}
cpu,host=b,region=us-east usage=0.60 {1}
cpu,host=a,region=us-east usage=0.70 {2}
cpu,host=b,region=us-east usage=0.70 {2}
cpu,host=a,region=us-east usage=0.50 {3}
cpu,host=b,region=us-east usage=0.80 {3}"""


def test_query__api_v3_query_sql_params(shared: WeirServer) -> None:
    write(shared, "q_sql_params", PARAMS_LP.format(*range(2998574936, 2998574940)))
    q = ("SELECT host, region, time, usage FROM cpu WHERE host = $host AND usage > $usage "
         "ORDER BY time")
    want = table(
        "+------+---------+---------------------+-------+",
        "| host | region  | time                | usage |",
        "+------+---------+---------------------+-------+",
        "| b    | us-east | 2065-01-07T17:28:58 | 0.7   |",
        "| b    | us-east | 2065-01-07T17:28:59 | 0.8   |",
        "+------+---------+---------------------+-------+")
    url = f"{shared.url}/api/v3/query_sql"
    params = {"host": "b", "usage": 0.60}
    r = httpx.post(url, json={"db": "q_sql_params", "q": q, "params": params,
                              "format": "pretty"})
    assert r.text == want
    r = httpx.get(url, params={"db": "q_sql_params", "q": q, "format": "pretty",
                               "params": json.dumps(params)})
    assert r.text == want
    r = httpx.post(url, json={"db": "q_sql_params", "q": "SELECT * FROM cpu WHERE host = $host",
                              "params": {"not_host": "a"}, "format": "pretty"})
    assert 400 <= r.status_code < 500
    assert "No value found for placeholder with name $host" in r.text


INFLUXQL_LP = ("cpu,host=s1,region=us-east usage=0.9 2998574930\n"
               "cpu,host=s1,region=us-east usage=0.89 2998574931\n"
               "cpu,host=s1,region=us-east usage=0.85 2998574932\n"
               "mem,host=s1,region=us-east usage=0.5 2998574933\n"
               "mem,host=s1,region=us-east usage=0.6 2998574934\n"
               "mem,host=s1,region=us-east usage=0.7 2998574935")
CPU_TIME_HOST_REGION_USAGE = table(
    "+------------------+---------------------+------+---------+-------+",
    "| iox::measurement | time                | host | region  | usage |",
    "+------------------+---------------------+------+---------+-------+",
    "| cpu              | 2065-01-07T17:28:50 | s1   | us-east | 0.9   |",
    "| cpu              | 2065-01-07T17:28:51 | s1   | us-east | 0.89  |",
    "| cpu              | 2065-01-07T17:28:52 | s1   | us-east | 0.85  |",
    "+------------------+---------------------+------+---------+-------+")
MEASUREMENTS = table(
    "+------------------+------+",
    "| iox::measurement | name |",
    "+------------------+------+",
    "| measurements     | cpu  |",
    "| measurements     | mem  |",
    "+------------------+------+")
FIELD_KEYS = table(
    "+------------------+----------+-----------+",
    "| iox::measurement | fieldKey | fieldType |",
    "+------------------+----------+-----------+",
    "| cpu              | usage    | float     |",
    "| mem              | usage    | float     |",
    "+------------------+----------+-----------+")
TAG_KEYS = table(
    "+------------------+--------+",
    "| iox::measurement | tagKey |",
    "+------------------+--------+",
    "| cpu              | host   |",
    "| cpu              | region |",
    "| mem              | host   |",
    "| mem              | region |",
    "+------------------+--------+")
TAG_VALUES = table(
    "+------------------+------+-------+",
    "| iox::measurement | key  | value |",
    "+------------------+------+-------+",
    "| cpu              | host | s1    |",
    "| mem              | host | s1    |",
    "+------------------+------+-------+")
RP_FOO = table(
    "+---------------+---------+----------+",
    "| iox::database | name    | duration |",
    "+---------------+---------+----------+",
    "| foo           | autogen | 0s       |",
    "+---------------+---------+----------+")
API_V3_QUERY_INFLUXQL = [
    ("foo", "SELECT time, host, region, usage FROM cpu", CPU_TIME_HOST_REGION_USAGE),
    (None, "SELECT time, host, region, usage FROM foo.autogen.cpu",
     CPU_TIME_HOST_REGION_USAGE),
    ("foo", "SELECT host, region, usage FROM cpu, mem", table(
        "+------------------+---------------------+------+---------+-------+",
        "| iox::measurement | time                | host | region  | usage |",
        "+------------------+---------------------+------+---------+-------+",
        "| cpu              | 2065-01-07T17:28:50 | s1   | us-east | 0.9   |",
        "| cpu              | 2065-01-07T17:28:51 | s1   | us-east | 0.89  |",
        "| cpu              | 2065-01-07T17:28:52 | s1   | us-east | 0.85  |",
        "| mem              | 2065-01-07T17:28:53 | s1   | us-east | 0.5   |",
        "| mem              | 2065-01-07T17:28:54 | s1   | us-east | 0.6   |",
        "| mem              | 2065-01-07T17:28:55 | s1   | us-east | 0.7   |",
        "+------------------+---------------------+------+---------+-------+")),
    ("foo", "SHOW MEASUREMENTS", MEASUREMENTS),
    (None, "SHOW MEASUREMENTS ON foo", MEASUREMENTS),
    ("foo", "SHOW FIELD KEYS", FIELD_KEYS),
    (None, "SHOW FIELD KEYS ON foo", FIELD_KEYS),
    ("foo", "SHOW TAG KEYS", TAG_KEYS),
    (None, "SHOW TAG KEYS ON foo", TAG_KEYS),
    ("foo", 'SHOW TAG VALUES WITH KEY = "host" WHERE time > 2065-01-07', TAG_VALUES),
    (None, 'SHOW TAG VALUES ON foo WITH KEY = "host" WHERE time > 2065-01-07', TAG_VALUES),
    (None, "SHOW DATABASES", table(
        "+---------------+---------+",
        "| iox::database | deleted |",
        "+---------------+---------+",
        "| _internal     | false   |",
        "| bar           | false   |",
        "| foo           | false   |",
        "+---------------+---------+")),
    (None, "SHOW RETENTION POLICIES", table(
        "+---------------+---------+----------+",
        "| iox::database | name    | duration |",
        "+---------------+---------+----------+",
        "| _internal     | autogen | 168h0m0s |",
        "| bar           | autogen | 0s       |",
        "| foo           | autogen | 0s       |",
        "+---------------+---------+----------+")),
    (None, "SHOW RETENTION POLICIES ON foo", RP_FOO),
    ("foo", "SHOW RETENTION POLICIES", RP_FOO),
]


@pytest.fixture(scope="module")
def influxql_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeirServer]:
    """api_v3_query_influxql's server: `foo` and `bar` (SHOW DATABASES lists them)."""
    s = start(tmp_path_factory, "influxql")
    write(s, "foo", INFLUXQL_LP)
    write(s, "bar", INFLUXQL_LP)
    yield s
    s.stop()


@pytest.mark.parametrize("db,q,want", API_V3_QUERY_INFLUXQL,
                         ids=[q for _db, q, _w in API_V3_QUERY_INFLUXQL])
def test_query__api_v3_query_influxql(influxql_srv: WeirServer, db: str | None, q: str,
                                      want: str) -> None:
    params = {"q": q, "format": "pretty", **({"db": db} if db else {})}
    r = influxql(influxql_srv, **params)
    assert r.status_code == 200, r.text
    assert r.text == want


def test_query__api_v3_query_influxql_params(shared: WeirServer) -> None:
    write(shared, "q_iql_params", PARAMS_LP.format(*range(2998574931, 2998574935)))
    q = "SELECT time, host, region, usage FROM cpu WHERE host = $host AND usage > $usage"
    want = table(
        "+------------------+---------------------+------+---------+-------+",
        "| iox::measurement | time                | host | region  | usage |",
        "+------------------+---------------------+------+---------+-------+",
        "| cpu              | 2065-01-07T17:28:53 | b    | us-east | 0.7   |",
        "| cpu              | 2065-01-07T17:28:54 | b    | us-east | 0.8   |",
        "+------------------+---------------------+------+---------+-------+")
    url = f"{shared.url}/api/v3/query_influxql"
    params = {"host": "b", "usage": 0.60}
    r = httpx.post(url, json={"db": "q_iql_params", "q": q, "params": params,
                              "format": "pretty"})
    assert r.text == want
    r = httpx.get(url, params={"db": "q_iql_params", "q": q, "format": "pretty",
                               "params": json.dumps(params)})
    assert r.text == want
    r = httpx.post(url, json={"db": "q_iql_params", "q": "SELECT * FROM cpu WHERE host = $host",
                              "params": {"not_host": "a"}, "format": "pretty"})
    assert 400 <= r.status_code < 500
    assert ("Bind parameter '$host' was referenced in the InfluxQL statement but its value "
            "is undefined") in r.text


@pytest.mark.parametrize("q", ["show tags", "show", "select from", "select * from",
                               "show measurements where"])
def test_query__api_v3_query_influxql_invalid_query_should_return_client_error(
        shared: WeirServer, q: str) -> None:
    r = influxql(shared, db="_internal", q=q, format="pretty")
    assert 400 <= r.status_code < 500, r.text
    assert "error in InfluxQL statement: parsing error:" in r.text


FORMAT_CASES: list[tuple[str | None, str, Any, str]] = [
    ("foo", "SELECT time, host, region, usage FROM cpu",
     [{"iox::measurement": "cpu", "time": f"2065-01-07T17:28:5{s}", "host": h,
       "region": "us-east", "usage": u}
      for s, h, u in [(1, "a", 0.9), (1, "b", 0.5), (2, "a", 0.8), (2, "b", 0.6),
                      (3, "a", 0.7), (3, "b", 0.7), (4, "a", 0.5), (4, "b", 0.8)]],
     '{"iox::measurement":"cpu","time":"2065-01-07T17:28:51","host":"a","region":"us-east",'
     '"usage":0.9}\n'),
    ("foo", "SHOW MEASUREMENTS", [{"iox::measurement": "measurements", "name": "cpu"}],
     '{"iox::measurement":"measurements","name":"cpu"}\n'),
    ("foo", "SHOW FIELD KEYS",
     [{"iox::measurement": "cpu", "fieldKey": "usage", "fieldType": "float"}],
     '{"iox::measurement":"cpu","fieldKey":"usage","fieldType":"float"}\n'),
    ("foo", "SHOW TAG KEYS", [{"iox::measurement": "cpu", "tagKey": "host"},
                              {"iox::measurement": "cpu", "tagKey": "region"}],
     '{"iox::measurement":"cpu","tagKey":"host"}\n{"iox::measurement":"cpu","tagKey":"region"}\n'),
    (None, "SHOW DATABASES", [{"iox::database": "_internal", "deleted": False},
                              {"iox::database": "foo", "deleted": False}],
     '{"iox::database":"_internal","deleted":false}\n{"iox::database":"foo","deleted":false}\n'),
    (None, "SHOW RETENTION POLICIES",
     [{"iox::database": "_internal", "name": "autogen", "duration": "168h0m0s"},
      {"iox::database": "foo", "name": "autogen", "duration": "0s"}],
     '{"iox::database":"_internal","name":"autogen","duration":"168h0m0s"}\n'
     '{"iox::database":"foo","name":"autogen","duration":"0s"}\n'),
]


@pytest.fixture(scope="module")
def formats_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeirServer]:
    """api_v3_query_json_format / jsonl_format's server: only `foo`."""
    s = start(tmp_path_factory, "formats")
    write(s, "foo", PARAMS_LP.format(*range(2998574931, 2998574935)))
    yield s
    s.stop()


@pytest.mark.parametrize("db,q,want,_jsonl", FORMAT_CASES, ids=[c[1] for c in FORMAT_CASES])
def test_query__api_v3_query_json_format(formats_srv: WeirServer, db: str | None, q: str,
                                         want: Any, _jsonl: str) -> None:
    r = influxql(formats_srv, q=q, format="json", **({"db": db} if db else {}))
    assert r.json() == want


@pytest.mark.parametrize("db,q,_json,first", FORMAT_CASES, ids=[c[1] for c in FORMAT_CASES])
def test_query__api_v3_query_jsonl_format(formats_srv: WeirServer, db: str | None, q: str,
                                          _json: Any, first: str) -> None:
    r = influxql(formats_srv, q=q, format="jsonl", **({"db": db} if db else {}))
    # every line as the reference writes it (keys in column order)
    assert r.text == "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in _json)
    assert r.text.startswith(first)


def test_query__api_v1_query_sql_not_found(shared: WeirServer) -> None:
    r = v1(shared, q="SELECT * FROM foo", format="pretty", db="q_v1_no_such_db")
    assert r.status_code == 200
    assert r.json() == {"results": [{"statement_id": 0, "error": "Cannot retrieve database: "
                                     "External error: database not found: q_v1_no_such_db"}]}


V1_LP = ("cpu,host=a usage=0.9 2998574931\ncpu,host=a usage=0.89 2998574932\n"
         "cpu,host=a usage=0.85 2998574933\nmem,host=a usage=0.5 2998574934\n"
         "mem,host=a usage=0.6 2998574935\nmem,host=a usage=0.7 2998574936")


def _v1_series(name: str, rows: list[list[Any]]) -> dict[str, Any]:
    return {"name": name, "columns": ["time", "host", "usage"], "values": rows}


V1_CPU = [["2065-01-07T17:28:51Z", "a", 0.9], ["2065-01-07T17:28:52Z", "a", 0.89],
          ["2065-01-07T17:28:53Z", "a", 0.85]]
V1_MEM = [["2065-01-07T17:28:54Z", "a", 0.5], ["2065-01-07T17:28:55Z", "a", 0.6],
          ["2065-01-07T17:28:56Z", "a", 0.7]]


@pytest.fixture(scope="module")
def v1_db(shared: WeirServer) -> str:
    write(shared, "q_v1", V1_LP)
    return "q_v1"


@pytest.mark.parametrize("case", ["empty", "basic", "two measurements", "db in query",
                                  "epoch"])
def test_query__api_v1_query_json_format(shared: WeirServer, v1_db: str, case: str) -> None:
    q, db, epoch, series = {
        "empty": ("SELECT * FROM cpu WHERE host='c'", v1_db, None, None),
        "basic": ("SELECT time, host, usage FROM cpu", v1_db, None,
                  [_v1_series("cpu", V1_CPU)]),
        "two measurements": ("SELECT time, host, usage FROM cpu, mem", v1_db, None,
                             [_v1_series("cpu", V1_CPU), _v1_series("mem", V1_MEM)]),
        "db in query": (f"SELECT time, host, usage FROM {v1_db}.autogen.cpu", None, None,
                        [_v1_series("cpu", V1_CPU)]),
        "epoch": ("SELECT time, host, usage FROM cpu", v1_db, "s", [_v1_series("cpu", [
            [2998574931, "a", 0.9], [2998574932, "a", 0.89], [2998574933, "a", 0.85]])]),
    }[case]
    params = {"q": q, **({"db": db} if db else {}), **({"epoch": epoch} if epoch else {})}
    result: dict[str, Any] = {"statement_id": 0}
    if series:
        result["series"] = series
    assert v1(shared, **params).json() == {"results": [result]}


@pytest.mark.parametrize("case", ["basic", "two measurements", "db in query", "epoch"])
def test_query__api_v1_query_csv_format(shared: WeirServer, v1_db: str, case: str) -> None:
    cpu = "cpu,,2998574931000000000,a,0.9\ncpu,,2998574932000000000,a,0.89\n" \
          "cpu,,2998574933000000000,a,0.85\n"
    q, db, epoch, want = {
        "basic": ("SELECT time, host, usage FROM cpu", v1_db, None, cpu),
        "two measurements": ("SELECT time, host, usage FROM cpu, mem", v1_db, None,
                             cpu + "mem,,2998574934000000000,a,0.5\n"
                             "mem,,2998574935000000000,a,0.6\nmem,,2998574936000000000,a,0.7\n"),
        "db in query": (f"SELECT time, host, usage FROM {v1_db}.autogen.cpu", None, None, cpu),
        "epoch": ("SELECT time, host, usage FROM cpu", v1_db, "s",
                  "cpu,,2998574931,a,0.9\ncpu,,2998574932,a,0.89\ncpu,,2998574933,a,0.85\n"),
    }[case]
    params = {"q": q, **({"db": db} if db else {}), **({"epoch": epoch} if epoch else {})}
    r = v1(shared, headers={"Accept": "application/csv"}, **params)
    assert r.text == "name,tags,time,host,usage\n" + want


def _chunk(series: dict[str, Any], partial_series: bool, partial_result: bool
           ) -> dict[str, Any]:
    s = dict(series)
    if partial_series:
        s["partial"] = True
    res: dict[str, Any] = {"series": [s], "statement_id": 0}
    if partial_result:
        res["partial"] = True
    return {"results": [res]}


def _epoch_s(rows: list[list[Any]], first: int) -> list[list[Any]]:
    return [[first + i, *r[1:]] for i, r in enumerate(rows)]


@pytest.mark.parametrize("chunk_size,q", [(None, "SELECT time, host, usage FROM cpu"),
                                          ("2", "SELECT time, host, usage FROM cpu"),
                                          (None, "SELECT time, host, usage FROM cpu, mem"),
                                          ("2", "SELECT time, host, usage FROM cpu, mem")])
def test_query__api_v1_query_chunked(shared: WeirServer, v1_db: str, chunk_size: str | None,
                                     q: str) -> None:
    cpu = _v1_series("cpu", _epoch_s(V1_CPU, 2998574931))
    mem = _v1_series("mem", _epoch_s(V1_MEM, 2998574934))

    def part(s: dict[str, Any], rows: slice) -> dict[str, Any]:
        return {**s, "values": s["values"][rows]}

    want = {
        (None, False): [_chunk(cpu, False, False)],
        ("2", False): [_chunk(part(cpu, slice(0, 2)), True, True),
                       _chunk(part(cpu, slice(2, 3)), False, False)],
        (None, True): [_chunk(cpu, False, True), _chunk(mem, False, False)],
        ("2", True): [_chunk(part(cpu, slice(0, 2)), True, True),
                      _chunk(part(cpu, slice(2, 3)), False, True),
                      _chunk(part(mem, slice(0, 2)), True, True),
                      _chunk(part(mem, slice(2, 3)), False, False)],
    }[(chunk_size, "mem" in q)]
    params = {"db": v1_db, "q": q, "epoch": "s", "chunked": "true",
              **({"chunk_size": chunk_size} if chunk_size else {})}
    assert v1_lines(shared, **params) == want


def test_query__api_v1_query_data_conversion(shared: WeirServer) -> None:
    write(shared, "q_v1_conv", "weather,location=us-midwest temperature_integer=82i 2998574930\n"
          "weather,location=us-midwest temperature_float=82 2998574930\n"
          'weather,location=us-midwest temperature_str="too warm" 2998574930\n'
          "weather,location=us-midwest too_hot=true 2998574930")
    r = v1(shared, db="q_v1_conv", q="SELECT time, location, temperature_integer, "
           "temperature_float, temperature_str, too_hot FROM weather")
    assert r.json() == {"results": [{"statement_id": 0, "series": [{
        "name": "weather",
        "columns": ["time", "location", "temperature_integer", "temperature_float",
                    "temperature_str", "too_hot"],
        "values": [["2065-01-07T17:28:50Z", "us-midwest", 82, 82, "too warm", True]]}]}]}


URI_BODY_LP = ("cpu,host=a usage=0.9 2998674931\ncpu,host=b usage=0.89 2998674931\n"
               "cpu,host=c usage=0.85 2998674931\nmem,host=a usage=0.5 2998674932\n"
               "mem,host=b usage=0.6 2998674932\nmem,host=c usage=0.7 2998674932")


def _hosts(name: str, t: str, usages: list[float]) -> dict[str, Any]:
    return {"results": [{"statement_id": 0, "series": [{
        "name": name, "columns": ["time", "host", "usage"],
        "values": [[t, h, u] for h, u in zip("abc", usages, strict=True)]}]}]}


@pytest.mark.parametrize("case", ["query and db in uri", "query in uri, db in body",
                                  "db in uri overwritten by db in body",
                                  "db in uri overwritten by db in body, db not valid",
                                  "db in uri, query in body", "no query specified"])
def test_query__api_v1_query_uri_and_body(shared: WeirServer, case: str) -> None:
    write(shared, "q_v1_uri", URI_BODY_LP)
    cpu = _hosts("cpu", "2065-01-08T21:15:31Z", [0.9, 0.89, 0.85])
    mem = _hosts("mem", "2065-01-08T21:15:32Z", [0.5, 0.6, 0.7])
    q = "SELECT * FROM cpu"
    method, uri, body, status, want = {
        "query and db in uri": ("GET", {"q": q, "db": "q_v1_uri"}, None, 200, cpu),
        "query in uri, db in body": ("POST", {"q": q}, {"db": "q_v1_uri"}, 200, cpu),
        "db in uri overwritten by db in body": (
            "POST", {"q": q, "db": "not_a_valid_db"}, {"db": "q_v1_uri"}, 200, cpu),
        "db in uri overwritten by db in body, db not valid": (
            "POST", {"q": q, "db": "q_v1_uri"}, {"db": "not_a_valid_db"}, 200,
            {"results": [{"statement_id": 0, "error": "Cannot retrieve database: External "
                          "error: database not found: not_a_valid_db"}]}),
        "db in uri, query in body": ("POST", {"db": "q_v1_uri"}, {"q": "SELECT * FROM mem"},
                                     200, mem),
        "no query specified": ("POST", {"db": "q_v1_uri"}, {}, 400,
                               {"error": "expected a query to be provided in the query "
                                         "string or body"}),
    }[case]
    r = httpx.request(method, f"{shared.url}/query", params=uri,
                      content=None if body is None else str(httpx.QueryParams(body)),
                      headers=None if body is None else {
                          "Content-Type": "application/x-www-form-urlencoded"})
    assert (r.status_code, r.json()) == (status, want)


GROUP_BY_LP = ("bar,t1=a,t2=aa val=1 2998574931\nbar,t1=b,t2=aa val=2 2998574932\n"
               "bar,t1=a,t2=bb val=3 2998574933\nbar,t1=b,t2=bb val=4 2998574934")


def _bar(tags: dict[str, str] | None, columns: list[str], values: list[list[Any]]
         ) -> dict[str, Any]:
    s: dict[str, Any] = {"name": "bar", "columns": columns, "values": values}
    if tags is not None:
        s["tags"] = tags
    return s


def _t(second: int) -> str:
    return f"2065-01-07T17:28:5{second}Z"


# the series of each query in the reference's snapshots (api_v1_query_group_by-N.snap)
_BY_T1 = [_bar({"t1": "a"}, ["time", "t2", "val"], [[_t(1), "aa", 1], [_t(3), "bb", 3]]),
          _bar({"t1": "b"}, ["time", "t2", "val"], [[_t(2), "aa", 2], [_t(4), "bb", 4]])]
_BY_T1_T2 = [_bar({"t1": a, "t2": b}, ["time", "val"], [[_t(s), v]])
             for a, b, s, v in [("a", "aa", 1, 1), ("a", "bb", 3, 3), ("b", "aa", 2, 2),
                                ("b", "bb", 4, 4)]]
GROUP_BY_CASES: dict[str, list[dict[str, Any]]] = {
    "select * from bar group by t1": _BY_T1,
    "select * from bar group by t1, t2": _BY_T1_T2,
    "select * from bar group by /t/": _BY_T1_T2,
    # a regex (or *) in GROUP BY leaves every tag out of `SELECT *`, t2 too
    "select * from bar group by /t[1]/": [
        _bar({"t1": "a"}, ["time", "val"], [[_t(1), 1], [_t(3), 3]]),
        _bar({"t1": "b"}, ["time", "val"], [[_t(2), 2], [_t(4), 4]])],
    "select * from bar group by /t[1,2]/": _BY_T1_T2,
    "select * from bar group by t1, t2, t3": [
        {**s, "tags": {**s["tags"], "t3": ""}} for s in _BY_T1_T2],
    "select * from bar group by *": _BY_T1_T2,
    "select * from bar group by /not_a_match/": [
        _bar(None, ["time", "val"], [[_t(i), i] for i in range(1, 5)])],
}


def _as_chunks(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """chunked=true: one document per series, `partial` on all but the last."""
    return [_chunk(s, False, i < len(series) - 1) for i, s in enumerate(series)]


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("q", list(GROUP_BY_CASES))
def test_query__api_v1_query_group_by(shared: WeirServer, q: str, chunked: bool) -> None:
    write(shared, "q_v1_group_by", GROUP_BY_LP)
    series = GROUP_BY_CASES[q]
    got = v1_lines(shared, db="q_v1_group_by", q=q, chunked=str(chunked).lower())
    if not chunked or len(series) == 1:
        assert got == [{"results": [{"series": series, "statement_id": 0}]}]
    else:
        assert got == _as_chunks(series)


def test_query__test_influxql_group_by_tag_called_name(shared: WeirServer) -> None:
    write(shared, "q_name_tag", "bar,name=a,label=a value=1 1743693748\n"
          "bar,name=b,label=a value=2 1743693748\nbar,name=a,label=b value=3 1743693748\n"
          "bar,name=b,label=b value=4 1743693748")
    # `name` is a keyword: unquoted it is no column
    r = v1(shared, db="q_name_tag",
           q="SELECT time, name, label, value FROM bar GROUP BY name LIMIT 1")
    assert "invalid InfluxQL statement" in r.text
    r = v1(shared, db="q_name_tag",
           q='SELECT time, "name", label, value FROM bar GROUP BY label LIMIT 1').json()
    assert [s["tags"]["label"] for s in r["results"][0]["series"]] == ["a", "b"]
    r = v1(shared, db="q_name_tag",
           q='SELECT time, "name", label, value FROM bar GROUP BY "name" LIMIT 1').json()
    assert [s["tags"]["name"] for s in r["results"][0]["series"]] == ["a", "b"]


@pytest.mark.parametrize("chunked", [False, True])
def test_query__api_v1_query_group_by_with_nulls(shared: WeirServer, chunked: bool) -> None:
    write(shared, "q_v1_nulls", "bar,t1=a val=1 2998574931\nbar val=2 2998574932\n"
          "bar,t1=a val=3 2998574933")
    # the series without t1 comes last (the reference sorts NULL tags last)
    series = [_bar({"t1": "a"}, ["time", "val"], [[_t(1), 1], [_t(3), 3]]),
              _bar({"t1": ""}, ["time", "val"], [[_t(2), 2]])]
    got = v1_lines(shared, db="q_v1_nulls", q="select * from bar group by t1",
                   chunked=str(chunked).lower())
    assert got == (_as_chunks(series) if chunked else
                   [{"results": [{"series": series, "statement_id": 0}]}])


def test_query__api_v1_query_api_show_databases_and_retention_policies(
        fresh: WeirServer) -> None:
    url = f"{fresh.url}/api/v3/configure/database"
    assert httpx.post(url, json={"db": "foo"}).status_code == 200
    assert httpx.post(url, json={"db": "bar", "retention_period": "30d"}).status_code == 200
    # the v1 answers, byte for byte (the reference's snapshots); databases in the order
    # they were created
    assert v1(fresh, q="SHOW DATABASES").text == (
        '{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],'
        '"values":[["_internal"],["foo"],["bar"]]}]}]}')
    assert v1(fresh, q="SHOW RETENTION POLICIES", db="foo").text == (
        '{"results":[{"statement_id":0,"series":[{"name":"retention_policies","columns":'
        '["name","duration","default"],"values":[["foo","0s",true]]}]}]}')
    assert v1(fresh, q="SHOW RETENTION POLICIES", db="bar").text == (
        '{"results":[{"statement_id":0,"series":[{"name":"retention_policies","columns":'
        '["name","duration","default"],"values":[["bar","720h0m0s",true]]}]}]}')
    assert v1(fresh, q="SHOW RETENTION POLICIES", db="frodo").text == (
        '{"results":[{"statement_id":0,"error":"datafusion error: Error during planning: '
        'database not found: frodo"}]}')


def test_query__api_v3_query_null_tag_values_null_fields(shared: WeirServer) -> None:
    write(shared, "q_nulls", "cpu,host=a,region=us-east usage=0.9,system=0.1 2998674931\n"
          "cpu,host=b usage=0.80,system=0.1 2998674934")
    r = sql(shared, db="q_nulls", format="pretty",
            q="SELECT host, region, time, usage FROM cpu ORDER BY time")
    assert r.text == table(
        "+------+---------+---------------------+-------+",
        "| host | region  | time                | usage |",
        "+------+---------+---------------------+-------+",
        "| a    | us-east | 2065-01-08T21:15:31 | 0.9   |",
        "| b    |         | 2065-01-08T21:15:34 | 0.8   |",
        "+------+---------+---------------------+-------+")
    write(shared, "q_nulls", "cpu,host=a,region=us-east usage=0.9 2998674935")
    r = sql(shared, db="q_nulls", format="pretty", q="SELECT * FROM cpu ORDER BY time")
    assert r.text == table(
        "+------+---------+--------+---------------------+-------+",
        "| host | region  | system | time                | usage |",
        "+------+---------+--------+---------------------+-------+",
        "| a    | us-east | 0.1    | 2065-01-08T21:15:31 | 0.9   |",
        "| b    |         | 0.1    | 2065-01-08T21:15:34 | 0.8   |",
        "| a    | us-east |        | 2065-01-08T21:15:35 | 0.9   |",
        "+------+---------+--------+---------------------+-------+")


def test_query__api_query_with_default_browser_header(shared: WeirServer) -> None:
    write(shared, "q_browser", "cpu,region=us,host=a usage=99 2998674934")
    r = httpx.get(f"{shared.url}/api/v3/query_sql",
                  params={"db": "q_browser", "format": "pretty", "q": "SELECT * FROM cpu"},
                  headers={"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,"
                                     "*/*;q=0.8"})
    assert r.text == table(
        "+------+--------+---------------------+-------+",
        "| host | region | time                | usage |",
        "+------+--------+---------------------+-------+",
        "| a    | us     | 2065-01-08T21:15:34 | 99.0  |",
        "+------+--------+---------------------+-------+")


# ---- configure.rs (databases, tables, tokens; the caches are tests/e2e/test_caches.py) -----

CONFIGURE_LP = 'tbl,t1=a,t2=b,t3=c f1=true,f2="hello",f3=4i,f4=4u,f5=5 1000'
SOFT_DELETED = re.compile(r"-\d{8}T\d{6}$")  # `<name>-<%Y%m%dT%H%M%S>`, as the reference


def show_databases(srv: WeirServer) -> list[dict[str, Any]]:
    r = influxql(srv, q="SHOW DATABASES", format="json")
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    return rows


def test_configure__api_v3_configure_db_delete(fresh: WeirServer) -> None:
    write(fresh, "foo", CONFIGURE_LP)
    assert show_databases(fresh) == [{"deleted": False, "iox::database": "_internal"},
                                     {"deleted": False, "iox::database": "foo"}]
    r = httpx.delete(f"{fresh.url}/api/v3/configure/database", params={"db": "foo"})
    assert r.status_code == 200
    # foo is now listed as `foo-<deletion time>`
    _internal, gone = show_databases(fresh)
    assert _internal["iox::database"] == "_internal"
    assert gone["iox::database"].startswith("foo-") and gone["deleted"]
    assert SOFT_DELETED.search(gone["iox::database"])
    # Weir: a write to the deleted name is refused until the database is created anew
    # (the reference creates a new foo; README, Differences); to both, a write to the
    # listed name is one to a deleted database
    for name in ("foo", gone["iox::database"]):
        r = fresh.write(name, CONFIGURE_LP, **SECOND)
        assert (r.status_code, r.json()) == (400, {"error": f"cannot write to soft-deleted "
                                                   f"database '{name}' - it is marked for "
                                                   "deletion"})
    assert httpx.post(f"{fresh.url}/api/v3/configure/database",
                      json={"db": "foo"}).status_code == 200
    write(fresh, "foo", CONFIGURE_LP)
    assert [d["iox::database"] for d in show_databases(fresh)] == [
        "_internal", "foo", gone["iox::database"]]


def test_configure__api_v3_configure_db_delete_no_db(shared: WeirServer) -> None:
    r = httpx.delete(f"{shared.url}/api/v3/configure/database", params={"db": "c_no_such_db"})
    assert r.status_code == 404


def test_configure__api_v3_configure_db_delete_missing_query_param(shared: WeirServer) -> None:
    assert httpx.delete(f"{shared.url}/api/v3/configure/database").status_code == 400


def test_configure__api_v3_configure_db_create_and_same_name(shared: WeirServer) -> None:
    url = f"{shared.url}/api/v3/configure/database"
    assert httpx.post(url, json={"db": "c_create"}).status_code == 200
    assert httpx.post(url, json={"db": "c_create"}).status_code == 409


def test_configure__api_v3_configure_db_create_db_hit_limit(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    # Core refuses a sixth database; Weir's default limit is higher (README, Differences),
    # with the reference's limit it answers the same
    s = start(tmp_path_factory, "dblimit", "--num-database-limit", "5")
    try:
        url = f"{s.url}/api/v3/configure/database"
        for i in range(5):
            assert httpx.post(url, json={"db": f"foo{i}"}).status_code == 200
        r = httpx.post(url, json={"db": "foo5"})
        assert r.status_code == 422
        assert r.json() == {"error": "Adding a new database would exceed limit of 5 databases"}
    finally:
        s.stop()


def test_configure__api_v3_configure_db_create_db_reuse_old_name(shared: WeirServer) -> None:
    url = f"{shared.url}/api/v3/configure/database"
    assert httpx.post(url, json={"db": "c_reuse"}).status_code == 200
    assert httpx.delete(url, params={"db": "c_reuse"}).status_code == 200
    assert httpx.post(url, json={"db": "c_reuse"}).status_code == 200


def _create_table(srv: WeirServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{srv.url}/api/v3/configure/table", json=body)


def test_configure__api_v3_configure_table_create_then_write(shared: WeirServer) -> None:
    assert httpx.post(f"{shared.url}/api/v3/configure/database",
                      json={"db": "c_table"}).status_code == 200
    r = _create_table(shared, {"db": "c_table", "table": "bar", "tags": ["tag1", "tag2"],
                               "fields": [{"name": "field1", "type": "uint64"},
                                          {"name": "field2", "type": "int64"},
                                          {"name": "field3", "type": "float64"},
                                          {"name": "field4", "type": "utf8"},
                                          {"name": "field5", "type": "bool"}]})
    assert r.status_code == 200
    assert shared.rows("c_table", "SELECT * FROM bar") == []
    write(shared, "c_table",
          'bar,tag1=1,tag2=2 field1=1u,field2=2i,field3=3,field4="4",field5=true 2998574938')
    assert shared.rows("c_table", "SELECT * FROM bar") == [{
        "tag1": "1", "tag2": "2", "field1": 1, "field2": 2, "field3": 3.0, "field4": "4",
        "field5": True, "time": "2065-01-07T17:28:58"}]


def test_configure__api_v3_configure_table_create_no_fields(shared: WeirServer) -> None:
    assert httpx.post(f"{shared.url}/api/v3/configure/database",
                      json={"db": "c_nofields"}).status_code == 200
    r = _create_table(shared, {"db": "c_nofields", "table": "bar", "tags": ["one", "two"],
                               "fields": []})
    assert r.status_code == 200
    assert shared.rows("c_nofields", "SELECT * FROM bar") == []
    write(shared, "c_nofields", "bar,one=1,two=2 new_field=0 2998574938")
    assert shared.rows("c_nofields", "SELECT * FROM bar") == [{
        "one": "1", "two": "2", "new_field": 0.0, "time": "2065-01-07T17:28:58"}]


def test_configure__api_v3_configure_table_create_invalid_field_types(
        shared: WeirServer) -> None:
    r = _create_table(shared, {"db": "c_badtype", "table": "bar", "tags": ["tag1"],
                               "fields": [{"name": "invalid", "type": "foobar"}]})
    assert 400 <= r.status_code < 500


def test_configure__api_v3_configure_table_delete(shared: WeirServer) -> None:
    write(shared, "c_tdel", CONFIGURE_LP)
    r = httpx.delete(f"{shared.url}/api/v3/configure/table",
                     params={"db": "c_tdel", "table": "tbl"})
    assert r.status_code == 200
    # Weir: a soft-deleted table is no measurement any more (the reference still lists
    # it as `tbl-<time>` in SHOW MEASUREMENTS; README, Differences). It is listed, by
    # that name, in system.tables
    r = influxql(shared, q="SHOW MEASUREMENTS ON c_tdel", format="json")
    assert r.json() == []
    rows = shared.rows("_internal", "SELECT table_name, deleted FROM system.tables "
                                    "WHERE database_name = 'c_tdel'")
    [gone] = rows
    assert gone["deleted"] and SOFT_DELETED.search(gone["table_name"])
    assert gone["table_name"].startswith("tbl-")
    write(shared, "c_tdel", CONFIGURE_LP)
    r = influxql(shared, q="SHOW MEASUREMENTS ON c_tdel", format="json")
    assert r.json() == [{"iox::measurement": "measurements", "name": "tbl"}]


def test_configure__api_v3_configure_table_delete_no_db(shared: WeirServer) -> None:
    r = httpx.delete(f"{shared.url}/api/v3/configure/table",
                     params={"db": "c_no_such_db", "table": "foo"})
    assert r.status_code == 404


def test_configure__api_v3_configure_table_delete_missing_query_param(
        shared: WeirServer) -> None:
    r = httpx.delete(f"{shared.url}/api/v3/configure/table")
    assert (r.status_code, r.text) == (400, "serde error: missing field `db`")


@pytest.mark.parametrize("hard_delete_at,status,body", [
    ("never", 200, ""),
    ("2125-12-31T23:59:59Z", 200, ""),
    ("invalid-timestamp", 400, "Cannot parse the timestamp: input contains invalid characters"),
    ("2020-01-01T00:00:00Z", 200, ""),  # a past time is now
])
def test_configure__api_v3_configure_table_delete_with_hard_delete_at(
        shared: WeirServer, hard_delete_at: str, status: int, body: str) -> None:
    db = f"c_hard_{abs(hash(hard_delete_at))}"
    write(shared, db, CONFIGURE_LP)
    r = httpx.delete(f"{shared.url}/api/v3/configure/table",
                     params={"db": db, "table": "tbl", "hard_delete_at": hard_delete_at})
    assert (r.status_code, r.text) == (status, body)


def test_configure__try_deleting_table_after_db_is_deleted(shared: WeirServer) -> None:
    write(shared, "c_db_first", CONFIGURE_LP)
    assert httpx.delete(f"{shared.url}/api/v3/configure/database",
                        params={"db": "c_db_first"}).status_code == 200
    r = httpx.delete(f"{shared.url}/api/v3/configure/table",
                     params={"db": "c_db_first", "table": "tbl"})
    assert r.status_code == 404


def test_configure__test_token_paths_are_not_allowed_when_starting_without_auth(
        shared: WeirServer) -> None:
    for path in ("/api/v3/configure/token/admin", "/api/v3/configure/token/admin/regenerate"):
        r = httpx.post(f"{shared.url}{path}")
        assert (r.status_code, r.text) == (405, "endpoint disabled, started without auth")
    assert httpx.delete(f"{shared.url}/api/v3/configure/token").status_code == 405


# ---- auth.rs -----------------------------------------------------------------------------


def admin_token(srv: WeirServer) -> str:
    r = httpx.post(f"{srv.url}/api/v3/configure/token/admin")
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


@pytest.fixture(scope="module")
def auth_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WeirServer, str]]:
    s = start(tmp_path_factory, "auth", auth=True)
    yield s, admin_token(s)
    s.stop()


NOT_AUTHENTICATED = '{"error": "the request was not authenticated"}'
MALFORMED = ('{"error": "Authorization header was malformed, the request was not in the form '
             "of 'Authorization: <auth-scheme> <token>', supported auth-schemes are Bearer, "
             'Token and Basic"}')


def test_auth__auth_http(auth_srv: tuple[WeirServer, str]) -> None:
    s, token = auth_srv
    write_url, params = f"{s.url}/api/v3/write_lp", {"db": "foo"}
    query_url, q = f"{s.url}/api/v3/query_sql", {"db": "foo", "q": "select * from cpu"}
    body = b"cpu,host=a val=1i 2998574937"

    r = httpx.post(write_url, params=params, content=body)
    assert (r.status_code, r.text) == (401, NOT_AUTHENTICATED)
    r = httpx.get(query_url, params=q)
    assert (r.status_code, r.text) == (401, NOT_AUTHENTICATED)
    assert httpx.post(write_url, params=params, content=body,
                      headers={"Authorization": f"Bearer {token}"}).status_code == 204
    # both the Bearer and the Token scheme
    assert httpx.post(write_url, params=params, content=body,
                      headers={"Authorization": f"Token {token}"}).status_code == 204
    assert httpx.get(query_url, params=q,
                     headers={"Authorization": f"Bearer {token}"}).status_code == 200
    for malformed in (f"Bearer {token} whee", f"bearer {token}", "Bearer"):
        r = httpx.get(query_url, params=q, headers={"Authorization": malformed})
        assert (r.status_code, r.text) == (400, MALFORMED)
    r = httpx.get(query_url, params=q, headers={"auth": f"Bearer {token}"})
    assert r.status_code == 401


def test_auth__http_write_basic_auth(auth_srv: tuple[WeirServer, str]) -> None:
    s, token = auth_srv
    url, body = f"{s.url}/write", b"cpu,host=a val=1i 2998574937"
    assert httpx.post(url, params={"db": "foo"}, content=body).status_code == 401
    assert httpx.post(url, params={"db": "foo"}, content=body,
                      auth=("username", token)).status_code == 204
    assert httpx.post(url, params={"db": "foo", "u": "ignored", "p": token},
                      content=body).status_code == 204
    r = httpx.get(url, params={"db": "foo"}, headers={"Authorization": f"Basic {token} whee"})
    assert (r.status_code, r.text) == (400, MALFORMED)


def test_auth__v1_password_parameter(auth_srv: tuple[WeirServer, str]) -> None:
    s, token = auth_srv
    query_url, write_url = f"{s.url}/query", f"{s.url}/write"
    for url in (query_url, write_url):
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, params={"p": "not-the-token-you-were-looking-for"}
                         ).status_code == 401
    assert httpx.post(f"{s.url}/api/v3/write_lp", params={"db": "v1p"},
                      content=b"cpu,host=a usage=0.9",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 204
    q = {"q": "SELECT * FROM cpu", "db": "v1p"}
    assert httpx.get(query_url, params={"p": token, **q}).status_code == 200
    assert httpx.get(query_url, params=q,
                     headers={"Authorization": f"Bearer {token}"}).status_code == 200
    body = b"cpu,host=val usage=0.5"
    assert httpx.post(write_url, params={"p": token, "db": "v1p"},
                      content=body).status_code == 204
    assert httpx.post(write_url, params={"db": "v1p"}, content=body,
                      headers={"Authorization": f"Bearer {token}"}).status_code == 204


AUTHZ_PATHS = {"health": ["/health", "/api/v1/health"], "ping": ["/ping"],
               "metrics": ["/metrics"]}


@pytest.mark.parametrize("disabled", [[], ["health"], ["ping"], ["metrics"],
                                      ["health", "ping"], ["health", "metrics"],
                                      ["ping", "metrics"], ["health", "ping", "metrics"]],
                         ids=lambda d: ",".join(d) or "none")
def test_auth__disabled_auth_test_exhaustive(tmp_path_factory: pytest.TempPathFactory,
                                             disabled: list[str]) -> None:
    """Also disabled_auth_for_health_and_ping (the `health,ping` case): what
    --disable-authz names answers without a token, the rest needs one, /health too."""
    s = start(tmp_path_factory, "authz", *(["--disable-authz", ",".join(disabled)]
                                           if disabled else []), auth=True)
    try:
        token = admin_token(s)
        for name, paths in AUTHZ_PATHS.items():
            for path in paths:
                if name in disabled:
                    assert httpx.get(f"{s.url}{path}").status_code == 200, path
                else:
                    assert httpx.get(f"{s.url}{path}").status_code == 401, path
                    assert httpx.get(f"{s.url}{path}", headers={
                        "Authorization": f"Bearer {token}"}).status_code == 200, path
    finally:
        s.stop()


def test_configure__api_v3_configure_token_delete(auth_srv: tuple[WeirServer, str]) -> None:
    s, token = auth_srv
    r = httpx.delete(f"{s.url}/api/v3/configure/token", params={"token_name": "_admin"},
                     headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 405
    # the operator token exists: creating it again is a conflict
    assert httpx.post(f"{s.url}/api/v3/configure/token/admin").status_code == 409


# ---- write.rs ----------------------------------------------------------------------------


@pytest.mark.parametrize("db,precision,rp,status", [
    (None, None, None, 400), ("foo", None, None, 204), ("foo", "s", None, 204),
    ("foo", "ms", None, 204), ("foo", "u", "autogen", 204), ("foo", "us", None, 204),
    ("foo", "n", "autogen", 204), ("foo", "ns", None, 204), ("foo", "invalid", None, 400),
    ("foo", None, "bar", 204), ("foo", None, "default", 204), ("foo", None, "autogen", 204),
])
def test_write__api_v1_write_request_parsing(shared: WeirServer, db: str | None,
                                             precision: str | None, rp: str | None,
                                             status: int) -> None:
    params = {k: v for k, v in [("db", db), ("rp", rp), ("precision", precision)] if v}
    r = httpx.post(f"{shared.url}/write", params=params, content=b"cpu,host=a usage=0.5")
    assert r.status_code == status, r.text


def test_write__api_v1_write_round_trip(shared: WeirServer) -> None:
    lp = b"cpu,host=a usage=0.5 2998574931\ncpu,host=a usage=0.6 2998574932\n" \
         b"cpu,host=a usage=0.7 2998574933"
    assert httpx.post(f"{shared.url}/write", params={"db": "w_v1_rt", "precision": "s"},
                      content=lp).status_code == 204
    r = influxql(shared, q="SELECT time, host, usage FROM w_v1_rt.autogen.cpu",
                 format="pretty")
    assert r.text == W_ROUND_TRIP


W_ROUND_TRIP = table(
    "+------------------+---------------------+------+-------+",
    "| iox::measurement | time                | host | usage |",
    "+------------------+---------------------+------+-------+",
    "| cpu              | 2065-01-07T17:28:51 | a    | 0.5   |",
    "| cpu              | 2065-01-07T17:28:52 | a    | 0.6   |",
    "| cpu              | 2065-01-07T17:28:53 | a    | 0.7   |",
    "+------------------+---------------------+------+-------+")


@pytest.mark.parametrize("org,bucket,precision,status", [
    (None, None, None, 400), (None, "foo", None, 204), ("bar", "foo", None, 204),
    (None, "foo", "s", 204), (None, "foo", "ms", 204), (None, "foo", "us", 204),
    (None, "foo", "u", 204), (None, "foo", "n", 204), (None, "foo", "ns", 204),
])
def test_write__api_v2_write_request_parsing(shared: WeirServer, org: str | None,
                                             bucket: str | None, precision: str | None,
                                             status: int) -> None:
    params = {k: v for k, v in [("bucket", bucket), ("org", org), ("precision", precision)]
              if v}
    r = httpx.post(f"{shared.url}/api/v2/write", params=params,
                   content=b"cpu,host=a usage=0.5")
    assert r.status_code == status, r.text


def test_write__api_v2_write_round_trip(shared: WeirServer) -> None:
    lp = b"cpu,host=a usage=0.5 2998574931\ncpu,host=a usage=0.6 2998574932\n" \
         b"cpu,host=a usage=0.7 2998574933"
    assert httpx.post(f"{shared.url}/api/v2/write",
                      params={"bucket": "w_v2_rt", "precision": "s"}, content=lp
                      ).status_code == 204
    r = influxql(shared, q="SELECT time, host, usage FROM w_v2_rt.autogen.cpu",
                 format="pretty")
    assert r.text == W_ROUND_TRIP


@pytest.mark.parametrize("token", [None, "apiv3_nonexistent_token"])
def test_write__api_v2_write_without_or_invalid_token_returns_unauthorized(
        auth_srv: tuple[WeirServer, str], token: str | None) -> None:
    s, _admin = auth_srv
    r = httpx.post(f"{s.url}/api/v2/write", params={"bucket": "mydb", "precision": "ns"},
                   content=b"cpu,host=a usage=0.5",
                   headers={"Authorization": f"Bearer {token}"} if token else None)
    assert r.status_code == 401
    assert r.json() == {"error": "the request was not authenticated"}


def test_write__writes_with_different_schema_should_fail(shared: WeirServer) -> None:
    write(shared, "w_schema", "t0,t0_tag0=initTag t0_f0=0i\nt0,t0_tag0=initTag t0_f0=1i 2998574931")
    r = shared.write("w_schema", "t0,t0_tag0=initTag t0_f0=0u 2998574930\n"
                     "t0,t0_tag0=initTag t0_f0=1u 2998574931", precision="second")
    assert r.status_code == 400


def test_write__duplicate_field_names_should_fail(shared: WeirServer) -> None:
    r = shared.write("w_dup", "cpu,host=a usage=0.5,usage=0.6", precision="nanosecond")
    assert r.status_code == 400
    assert "multiple instances of 'usage' field found" in r.text


@pytest.mark.parametrize("path,param", [("/write", "db"), ("/api/v2/write", "bucket"),
                                        ("/api/v3/write_lp", "db")])
def test_write__api_no_sync_param(shared: WeirServer, path: str, param: str) -> None:
    r = httpx.post(f"{shared.url}{path}", params={param: "w_nosync", "no_sync": "true"},
                   content=b"cpu,host=a usage=0.5")
    assert r.status_code == 204, r.text


@pytest.mark.parametrize("params,body,needle", [
    # api_v2_write_error_response_format: invalid line protocol
    ({"bucket": "test_bucket"}, b"invalid_line_protocol_syntax", ""),
    # api_v2_write_parameter_validation_v2_format: the bucket is missing
    ({}, b"cpu,host=a usage=0.5", "bucket"),
    # api_v2_write_empty_body_error
    ({"bucket": "test_bucket"}, b"", ""),
    # api_v2_write_malformed_line_protocol_error: no measurement
    ({"bucket": "test_bucket"}, b",tag=value field=1", ""),
])
def test_write__api_v2_write_errors_are_v2_shaped(shared: WeirServer, params: dict[str, str],
                                                  body: bytes, needle: str) -> None:
    r = httpx.post(f"{shared.url}/api/v2/write", params=params, content=body)
    assert r.status_code == 400
    err = r.json()
    assert set(err) == {"code", "message"} and err["code"] == "invalid"
    assert err["message"] and needle in err["message"]


def test_write__api_v2_write_error_response_conflicting_schema(shared: WeirServer) -> None:
    url = f"{shared.url}/api/v2/write"
    assert httpx.post(url, params={"bucket": "w_v2_conflict"},
                      content=b"measurement,tag=value field=42i").status_code == 204
    r = httpx.post(url, params={"bucket": "w_v2_conflict"},
                   content=b'measurement,tag=value field="string_value"')
    assert r.status_code == 400
    err = r.json()
    assert err["code"] == "invalid"
    assert any(w in err["message"] for w in ("parsing", "field", "type", "mismatch"))


def test_write__api_v2_write_success_no_error_response(shared: WeirServer) -> None:
    r = httpx.post(f"{shared.url}/api/v2/write", params={"bucket": "test_bucket"},
                   content=b"cpu,host=server01 usage=0.75")
    assert (r.status_code, r.text) == (204, "")


def test_write__test_table_creation_with_special_characters(shared: WeirServer) -> None:
    db = "test_special_chars"
    assert httpx.post(f"{shared.url}/api/v3/configure/database",
                      json={"db": db}).status_code == 200
    r = _create_table(shared, {
        "db": db, "table": "metrics",
        "tags": ["normal_tag", "tag with spaces", "tag,with,commas", "tag=with=equals",
                 "tag with spaces,and=all"],
        "fields": [{"name": "normal_field", "type": "float64"},
                   {"name": "field with spaces", "type": "int64"},
                   {"name": "field,with,commas", "type": "utf8"},
                   {"name": "field=with=equals", "type": "bool"},
                   {"name": "field with all,special=chars", "type": "uint64"}]})
    assert r.status_code == 200, r.text
    write(shared, db, r"metrics,normal_tag=value1,tag\ with\ spaces=value2,tag\,with\,commas"
          r"=value3,tag\=with\=equals=value4,tag\ with\ spaces\,and\=all=value5 "
          r'normal_field=1.0,field\ with\ spaces=42i,field\,with\,commas="test",'
          r"field\=with\=equals=true,field\ with\ all\,special\=chars=100u 1000000000",
          precision="nanosecond")
    write(shared, db, r"metrics,normal_tag=value1,tag\ with\ spaces=value\ with\ spaces "
          r"normal_field=2.0,field\ with\ spaces=84i 2000000000", precision="nanosecond")
    assert shared.rows(db, "SELECT * FROM metrics ORDER BY time") == [
        {"field with all,special=chars": 100, "field with spaces": 42,
         "field,with,commas": "test", "field=with=equals": True, "normal_field": 1.0,
         "normal_tag": "value1", "tag with spaces": "value2",
         "tag with spaces,and=all": "value5", "tag,with,commas": "value3",
         "tag=with=equals": "value4", "time": "1970-01-01T00:00:01"},
        {"field with spaces": 84, "normal_field": 2.0, "normal_tag": "value1",
         "tag with spaces": "value with spaces", "time": "1970-01-01T00:00:02"}]
    want = {
        "field with all,special=chars": "UInt64", "field with spaces": "Int64",
        "field,with,commas": "Utf8", "field=with=equals": "Boolean",
        "normal_field": "Float64", "normal_tag": "Dictionary(Int32, Utf8)",
        "tag with spaces": "Dictionary(Int32, Utf8)",
        "tag with spaces,and=all": "Dictionary(Int32, Utf8)",
        "tag,with,commas": "Dictionary(Int32, Utf8)",
        "tag=with=equals": "Dictionary(Int32, Utf8)",
        # Weir's DataFusion spells the reference's `Timestamp(ns)` in its older way
        "time": "Timestamp(Nanosecond, None)"}
    cols = shared.rows(db, "SHOW COLUMNS FROM metrics")
    assert {c["column_name"]: c["data_type"] for c in cols} == want
    assert all((c["table_catalog"], c["table_schema"], c["table_name"],
                c["is_nullable"]) == ("public", "iox", "metrics",
                                      "NO" if c["column_name"] == "time" else "YES")
               for c in cols)


# the write error bodies of the reference's own server unit tests (influxdb3_server tests.rs)
@pytest.mark.parametrize("db,lp,accept_partial,status,body", [
    ("foo", "cpu,host=a val= 123\ncpu,host=b val=5 124\ncpu,host=b val= 124", "false", 400,
     {"error": "line protocol parsing error", "data": {
         "error_message": "No fields were provided", "line_number": 1,
         "original_line": "cpu,host=a val= 123"}}),
    ("foo", "cpu,host=b val=2 155\ncpu,host=a val= 123\ncpu,host=b val=5 199", "true", 400,
     {"error": "partial write of line protocol occurred", "data": [{
         "error_message": "No fields were provided", "line_number": 2,
         "original_line": "cpu,host=a val= 123"}]}),
    ("this#_is_fine", "cpu,host=b val=2 155\n", "true", 400,
     {"error": "invalid character in database or rp name: must be ASCII, containing only "
               "letters, numbers, underscores, or hyphens"}),
    ("?this_is_fine", "cpu,host=b val=2 155\n", "true", 400,
     {"error": "db name did not start with a number or letter"}),
    ("", "cpu,host=b val=2 155\n", "true", 400, {"error": "db name cannot be empty"}),
])
def test_write__write_lp_tests(shared: WeirServer, db: str, lp: str, accept_partial: str,
                               status: int, body: dict[str, Any]) -> None:
    r = httpx.post(f"{shared.url}/api/v3/write_lp", content=lp.encode(),
                   params={"db": db, "accept_partial": accept_partial,
                           "precision": "nanosecond"})
    assert (r.status_code, r.json()) == (status, body)


@pytest.mark.parametrize("path,query,status,body", [
    ("/api/v3/write_lp", "", 400, "missing query parameter 'db'"),
    ("/api/v3/write_lp", "precision=s", 400, "serde error: missing field `db`"),
    ("/write", "", 400, '{"error":"no db destination provided"}'),
    ("/write", "precision=s", 400, '{"error":"failed to deserialize db/rp/precision in '
                                   'request: missing field `db`"}'),
    ("/write", "db=", 400,
     '{"error":"namespace name  length must be between 1 and 64 characters"}'),
    ("/write", "db=foo&precision=invalid", 400,
     '{"error":"failed to deserialize db/rp/precision in request: unknown variant '
     "`invalid`, expected one of `second`, `s`, `millisecond`, `ms`, `microsecond`, `us`, "
     '`u`, `nanosecond`, `ns`, `n`"}'),
    ("/api/v2/write", "", 400,
     '{"code":"invalid","message":"no org/bucket destination provided"}'),
    ("/api/v2/write", "org=x", 400, '{"code":"invalid","message":"missing bucket value"}'),
])
def test_write__parameter_errors_in_the_references_words(shared: WeirServer, path: str,
                                                         query: str, status: int,
                                                         body: str) -> None:
    """The request parsers' errors (influxdb3_server http.rs, iox_http write/v1.rs and
    v2.rs): which parameter is missing or wrong, in their words."""
    url = f"{shared.url}{path}" + (f"?{query}" if query else "")
    r = httpx.post(url, content=b"cpu,host=a usage=1")
    assert (r.status_code, r.text) == (status, body)


# ---- query.rs: SHOW TABLES; system_tables.rs (queries, generations, nodes) ----------------

#: Weir's own system tables (the storage life cycle), beside the reference's
WEIR_SYSTEM_TABLES = {"compactions", "snapshots"}


def test_query__api_v3_query_show_tables_ordering(shared: WeirServer) -> None:
    for t in ["xxx", "table_002", "table_009", "table_001", "table_003", "table_006", "aaa"]:
        assert _create_table(shared, {"db": "q_show_tables", "table": t, "tags": ["t"],
                                      "fields": []}).status_code == 200
    rows = shared.rows("q_show_tables", "SHOW TABLES")
    got = [(r["table_schema"], r["table_name"], r["table_type"]) for r in rows]
    assert all(r["table_catalog"] == "public" for r in rows)
    system = sorted({"distinct_caches", "influxdb_schema", "last_caches", "parquet_files",
                     "processing_engine_logs", "processing_engine_trigger_arguments",
                     "processing_engine_triggers", "queries"} | WEIR_SYSTEM_TABLES)
    # the reference's snapshot: iox tables, then system ones, by name; then
    # information_schema's views in DataFusion's order (no --plugin-dir: the engine's
    # tables are there all the same)
    assert got == [
        *[("iox", t, "BASE TABLE") for t in ["aaa", "table_001", "table_002", "table_003",
                                              "table_006", "table_009", "xxx"]],
        *[("system", t, "BASE TABLE") for t in system],
        *[("information_schema", v, "VIEW") for v in ["tables", "views", "columns",
                                                      "df_settings", "schemata", "routines",
                                                      "parameters"]]]


def test_system_tables__queries_table(fresh: WeirServer) -> None:
    """The reference asks over FlightSQL (query_type flightsql, text `CommandStatementQuery
    ...`); over HTTP the log says `sql` and the query's text."""
    write(fresh, "foo", "cpu,host=s1,region=us-east usage=0.9 2998574931\n"
          "cpu,host=s1,region=us-east usage=0.89 2998574932\n"
          "cpu,host=s1,region=us-east usage=0.85 2998574933")
    count = "SELECT COUNT(*) FROM system.queries WHERE running = false"
    assert fresh.rows("foo", count) == [{"count(*)": 0}]
    for q in ["SELECT * FROM cpu", "SELECT * FROM mem", "SELECT usage, time FROM cpu"]:
        fresh.query("foo", q)  # (mem is no table: that query fails)
    rows = fresh.rows("foo", "SELECT phase, query_type, query_text, success, running, "
                             "cancelled FROM system.queries WHERE success = true")
    assert sorted(r["query_text"] for r in rows) == sorted(
        ["SELECT * FROM cpu", count, "SELECT usage, time FROM cpu"])
    assert all((r["phase"], r["query_type"], r["success"], r["running"], r["cancelled"])
               == ("success", "sql", True, False, False) for r in rows)
    failed = fresh.rows("foo", "SELECT phase FROM system.queries "
                               "WHERE query_text = 'SELECT * FROM mem'")
    assert failed == [{"phase": "fail"}]


def test_system_tables__test_generation_durations_system_table_with_defaults(
        shared: WeirServer) -> None:
    assert shared.rows("_internal", "select * from system.generation_durations") == [
        {"level": 1, "duration_seconds": 600}]


def test_system_tables__test_generation_durations_system_table_with_non_defaults(
        tmp_path: Path) -> None:
    s = WeirServer(tmp_path / "data", extra_args=["--gen1-duration", "1m"]).start()
    try:
        q = "select * from system.generation_durations"
        assert s.rows("_internal", q) == [{"level": 1, "duration_seconds": 60}]
        # the same data dir with another --gen1-duration: the first one stays
        s.stop()
        s.extra_args = ["--gen1-duration", "5m"]
        s.start()
        assert s.rows("_internal", q) == [{"level": 1, "duration_seconds": 60}]
    finally:
        s.stop()


def test_system_tables__test_nodes_table_with_cli_params(shared: WeirServer) -> None:
    [row] = shared.rows("_internal", "SELECT node_id, cli_params FROM system.nodes")
    assert row["node_id"] == "test-node"
    params = json.loads(row["cli_params"])
    assert params["node-id"] == "test-node"
    assert params["without-auth"] == "*******"
    # every other option is there as given
    assert params["wal-snapshot-size"] == "1" and params["object-store"] == "memory"


def test_system_tables__test_nodes_table_filters_sensitive_params(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    s = start(tmp_path_factory, "nodes", "--aws-secret-access-key", "s3cr3t",
              "--aws-access-key-id", "AKIA", "--bucket", "b")
    try:
        [row] = s.rows("_internal", "SELECT cli_params FROM system.nodes")
        params = json.loads(row["cli_params"])
        for key, value in params.items():
            low = key.lower()
            if any(w in low for w in ("key", "secret", "password", "token")) or key in (
                    "without-auth", "tls-cert", "tls-key"):
                assert value == "*******", key
        assert params["node-id"] != "*******" and params["bucket"] == "b"
        assert "s3cr3t" not in row["cli_params"] and "AKIA" not in row["cli_params"]
    finally:
        s.stop()


# ---- ping.rs -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_ping__test_ping(shared: WeirServer, method: str) -> None:
    r = httpx.request(method, f"{shared.url}/ping")
    assert r.status_code == 200
    assert r.headers["Request-Id"] and r.headers["X-Request-Id"]
    assert r.headers["X-Influxdb-Build"] == "Core" and r.headers["X-Influxdb-Version"]
    body = r.json()
    assert "version" in body and "revision" in body


# ---- limits.rs ---------------------------------------------------------------------------


def test_limits__limits(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The reference's Core limits (5 databases, 2000 tables in all, 500 columns); Weir's
    defaults are higher (README, Differences), so they are given here."""
    s = start(tmp_path_factory, "limits", "--num-database-limit", "5",
              "--num-table-limit", "2000")
    try:
        line = "cpu,host=s1,region=us-east usage=0.9 2998574938\n"
        for db in ["one", "two", "three", "four", "five"]:
            write(s, db, line)
        assert s.write("six", line, **SECOND).status_code == 422
        # 1995 more tables (2000 in all): the 2001st, in another database, is refused
        write(s, "one", "".join(f"cpu{i},host=s1,region=us-east usage=0.9 2998574938\n"
                                for i in range(1995)))
        assert s.write("two", "cpu2000,host=s1 usage=0.9 2998574938", **SECOND
                       ).status_code == 422
        assert httpx.delete(f"{s.url}/api/v3/configure/database",
                            params={"db": "one"}).status_code == 200
        write(s, "two", "cpu2000,host=s1,region=us-east usage=0.9 2998574938")
        # 500 columns besides time fit; a 501st does not
        cols = "".join(f",column{i}=1" for i in range(4, 501))
        write(s, "two", f"cpu,host=foo,region=bar usage=2{cols} 2998574938")
        r = s.write("two", f"cpu,host=foo,region=bar usage=2{cols},column501=1 2998574938",
                    **SECOND)
        assert r.status_code == 422
    finally:
        s.stop()


# ---- flight.rs: InfluxQL over the JSON ticket --------------------------------------------


def test_flight__flight_influxql_json_ticket(shared: WeirServer) -> None:
    import pyarrow.flight as flight

    write(shared, "f_influxql", "cpu,host=s1,region=us-east usage=0.9 2998574936\n"
          "cpu,host=s1,region=us-east usage=0.89 2998574937\n"
          "cpu,host=s1,region=us-east usage=0.85 2998574938")
    client = flight.connect(f"grpc+tcp://127.0.0.1:{shared.port}")

    def get(q: str) -> Any:
        ticket = {"database": "f_influxql", "sql_query": q, "query_type": "influxql"}
        return client.do_get(flight.Ticket(json.dumps(ticket).encode())).read_all()

    try:
        t = get("SHOW MEASUREMENTS")
        assert t.to_pylist() == [{"iox::measurement": "measurements", "name": "cpu"}]
        # (flight_influxql's query without the prefix: `time` is the time column, once)
        t = get("SELECT time, host, region, usage FROM cpu")
        assert t.column_names == ["iox::measurement", "time", "host", "region", "usage"]
        assert t.column("usage").to_pylist() == [0.9, 0.89, 0.85]
        # qualified measurement names are not supported over Flight
        with pytest.raises(flight.FlightError,
                           match="database prefix in qualified measurement syntax"):
            get("SELECT time, host, region, usage FROM f_influxql.autogen.cpu")
        with pytest.raises(flight.FlightError,
                           match="This feature is not implemented: SHOW DATABASES"):
            get("SHOW DATABASES")
    finally:
        client.close()


# ---- telemetry.rs ------------------------------------------------------------------------


def test_telemetry__telemetry_snapshot_is_unavailable_without_test_mode(
        shared: WeirServer) -> None:
    assert httpx.get(f"{shared.url}/api/v3/test/telemetry_snapshot").status_code == 404
