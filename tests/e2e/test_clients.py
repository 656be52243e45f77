"""Real clients, unchanged, against a real server with authentication on:

* `influxdb3-python` (InfluxDBClient3): writes, and Arrow Flight queries (SQL and
  InfluxQL; all/pandas/polars/reader modes; query parameters) on the HTTP port;
* `influxdb-client` (v2): the write API with token header, org/bucket, precision, gzip;
* the `influxdb3 query --language influxql` CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from conftest import WeirServer, weir_cmd

influxdb_client_3 = pytest.importorskip("influxdb_client_3")
influxdb_client = pytest.importorskip("influxdb_client")


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    s = WeirServer(Path(tmp_path_factory.mktemp("clients")) / "data", auth=True,
                   extra_args=["--wal-flush-interval", "10ms"])
    s.start()
    r = httpx.post(f"{s.url}/api/v3/configure/token/admin", timeout=10)
    assert r.status_code == 201, r.text
    yield s, r.json()["token"]
    # SIGTERM after Flight served queries: a clean shutdown (Flight, then the WAL)
    s.stop()
    assert "shutdown complete" in s.log()


def client3(srv: WeirServer, token: str, database: str, **kw: object):  # type: ignore[no-untyped-def]
    return influxdb_client_3.InfluxDBClient3(host=srv.url, token=token, database=database,
                                             **kw)


def test_influxdb3_python_write_and_flight_queries(auth) -> None:  # type: ignore[no-untyped-def]
    srv, token = auth
    Point = influxdb_client_3.Point
    with client3(srv, token, "c3") as c:
        c.write(record=[
            Point("cpu").tag("host", "a").field("usage", 0.5).time(1_000_000_000),
            Point("cpu").tag("host", "b").field("usage", 1.5).time(2_000_000_000),
        ])
        c.write(record="cpu,host=c usage=2.5 3000000000")
        # SQL, default mode: a pyarrow Table streamed over Flight
        table = c.query("SELECT host, usage FROM cpu ORDER BY time")
        assert isinstance(table, pa.Table)
        assert table.to_pydict() == {"host": ["a", "b", "c"], "usage": [0.5, 1.5, 2.5]}
        # IOx's column-type metadata, which point-building clients read
        assert table.schema.field("usage").metadata[b"iox::column::type"] == \
            b"iox::column_type::field::float"
        assert table.schema.field("host").metadata[b"iox::column::type"] == \
            b"iox::column_type::tag"
        # query parameters travel in the ticket
        t = c.query("SELECT usage FROM cpu WHERE host = $h", query_parameters={"h": "b"})
        assert t.column("usage").to_pylist() == [1.5]
        # pandas and polars result modes
        df = c.query("SELECT host, usage FROM cpu ORDER BY time", mode="pandas")
        assert list(df["usage"]) == [0.5, 1.5, 2.5]
        pl = c.query("SELECT host, usage FROM cpu ORDER BY time", mode="polars")
        assert pl["usage"].to_list() == [0.5, 1.5, 2.5]
        assert c.query("SELECT count(*) AS n FROM cpu", mode="reader").read_all() \
            .column("n").to_pylist() == [3]
        # InfluxQL over Flight: the leading iox::measurement column
        t = c.query("SELECT usage FROM cpu WHERE host = 'c'", language="influxql")
        assert t.column_names == ["iox::measurement", "time", "usage"]
        assert t.column("iox::measurement").to_pylist() == ["cpu"]
        assert t.column("usage").to_pylist() == [2.5]
        t = c.query("SELECT mean(usage) FROM cpu GROUP BY host", language="influxql")
        md = json.loads(t.schema.metadata[b"iox::influxql::group_key::metadata"])
        assert md == {"measurement_column_index": 0, "tag_key_columns": [
            {"tag_key": "host", "column_index": 2, "is_projected": False}]}
        df = c.query("SELECT mean(usage) FROM cpu GROUP BY host", language="influxql",
                     mode="pandas")
        assert list(df["host"]) == ["a", "b", "c"] and list(df["mean"]) == [0.5, 1.5, 2.5]
        pl = c.query("SHOW MEASUREMENTS", language="influxql", mode="polars")
        assert pl["name"].to_list() == ["cpu"]
        # errors name the problem
        with pytest.raises(Exception, match="SHOW SERIES"):
            c.query("SHOW SERIES", language="influxql")
        with pytest.raises(Exception, match="not found"):
            c.query("SELECT * FROM nope")


def test_flight_needs_a_valid_token(auth) -> None:  # type: ignore[no-untyped-def]
    srv, token = auth
    with client3(srv, token, "c3") as c:
        c.write(record="tok,host=a v=1i 1")
    with (client3(srv, "apiv3_wrong", "c3") as c,
          pytest.raises(Exception, match=r"(?i)unauthenticated|not authenticated")):
        c.query("SELECT * FROM tok")


def test_flight_large_result_streams_in_batches(auth) -> None:  # type: ignore[no-untyped-def]
    srv, token = auth
    # 100,000 rows in four writes (four WAL flushes, four buffer batches), more than
    # DataFusion's 8,192-row batches hold ten times over: a stream of one batch would
    # mean the result was gathered whole
    rows, writes = 100_000, 4
    t0 = time.time_ns() - rows
    for w in range(writes):
        part = range(w * rows // writes, (w + 1) * rows // writes)
        lines = "\n".join(f"big,host=h{i % 7} v={i}i {t0 + i}" for i in part)
        r = httpx.post(f"{srv.url}/api/v3/write_lp", params={"db": "big", "precision": "ns"},
                       content=lines.encode(), headers={"Authorization": f"Bearer {token}"},
                       timeout=60)
        assert r.status_code == 204, r.text
    with client3(srv, token, "big") as c:
        reader = c.query("SELECT host, v FROM big", mode="chunk")
        n = 0
        batches = 0
        for chunk in reader:
            n += chunk.data.num_rows
            batches += 1
        assert n == rows
        assert batches > 1, f"{rows} rows arrived in {batches} batch"
        total = c.query("SELECT sum(v) AS s FROM big").column("s").to_pylist()[0]
        assert total == sum(range(rows))


def test_influxdb_client_v2_write_api(auth) -> None:  # type: ignore[no-untyped-def]
    srv, token = auth
    from influxdb_client import InfluxDBClient, Point, WritePrecision
    from influxdb_client.client.write_api import SYNCHRONOUS

    with InfluxDBClient(url=srv.url, token=token, org="any-org", enable_gzip=True) as c:
        w = c.write_api(write_options=SYNCHRONOUS)
        w.write(bucket="v2", record=Point("m").tag("k", "a").field("f", 1.5)
                .time(1_700_000_000, WritePrecision.S), write_precision=WritePrecision.S)
        w.write(bucket="v2", record="m,k=b f=2.5 1700000001000",
                write_precision=WritePrecision.MS)
        w.write(bucket="v2", record=[{"measurement": "m", "tags": {"k": "c"},
                                      "fields": {"f": 3.5}, "time": 1_700_000_002_000_000}],
                write_precision=WritePrecision.US)
        with pytest.raises(Exception) as ei:  # a type conflict: v2 error shape, 400
            w.write(bucket="v2", record='m,k=d f="x" 1700000003', write_precision="s")
        assert ei.value.status == 400  # type: ignore[attr-defined]
    with InfluxDBClient(url=srv.url, token="wrong", org="o") as c:
        with pytest.raises(Exception) as ei:
            c.write_api(write_options=SYNCHRONOUS).write(bucket="v2", record="m f=1")
        assert ei.value.status == 401  # type: ignore[attr-defined]
    r = httpx.post(f"{srv.url}/api/v3/query_sql", headers={"Authorization": f"Bearer {token}"},
                   json={"db": "v2", "q": "SELECT k, f, time FROM m ORDER BY time"})
    assert r.json() == [
        {"k": "a", "f": 1.5, "time": "2023-11-14T22:13:20"},
        {"k": "b", "f": 2.5, "time": "2023-11-14T22:13:21"},
        {"k": "c", "f": 3.5, "time": "2023-11-14T22:13:22"},
    ]


def test_v1_query_with_p_parameter_token(auth) -> None:  # type: ignore[no-untyped-def]
    srv, token = auth
    r = httpx.post(f"{srv.url}/write", params={"db": "v1db", "p": token, "precision": "s"},
                   content=b"w,host=a v=1 10\nw,host=a v=2 20")
    assert r.status_code == 204, r.text
    r = httpx.get(f"{srv.url}/query", params={"db": "v1db", "u": "me", "p": token,
                                               "q": "SELECT sum(v) FROM w", "epoch": "s"})
    assert r.json() == {"results": [{"statement_id": 0, "series": [
        {"name": "w", "columns": ["time", "sum"], "values": [[0, 3]]}]}]}
    r = httpx.get(f"{srv.url}/query", params={"db": "v1db", "p": "nope", "q": "SHOW DATABASES"})
    assert r.status_code == 401


def test_cli_query_language_influxql(auth) -> None:  # type: ignore[no-untyped-def]
    srv, token = auth
    r = httpx.post(f"{srv.url}/api/v3/write_lp", params={"db": "c3"},
                   headers={"Authorization": f"Bearer {token}"},
                   content=b"clicpu,host=a usage=1 1000000000\nclicpu,host=b usage=3 2000000000")
    assert r.status_code == 204, r.text
    env = {**os.environ, "INFLUXDB3_HOST_URL": srv.url, "INFLUXDB3_AUTH_TOKEN": token}
    out = subprocess.run([*weir_cmd(), "query", "--database", "c3", "--language",
                          "influxql", "--format", "json", "SELECT mean(usage) FROM clicpu"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [
        {"iox::measurement": "clicpu", "time": "1970-01-01T00:00:00", "mean": 2.0}]
    out = subprocess.run([*weir_cmd(), "query", "-d", "c3", "-l", "influxql",
                          "SHOW SERIES"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode != 0
    assert "SHOW SERIES" in out.stderr + out.stdout


def test_raw_flight_tickets_on_the_http_port(auth) -> None:  # type: ignore[no-untyped-def]
    """The reference's ticket shapes, through pyarrow's own Flight client, while HTTP/1.1
    requests keep working on the same port."""
    import pyarrow.flight as flight

    srv, token = auth
    # (Core allows 5 databases: the tests of this module share theirs)
    r = httpx.post(f"{srv.url}/api/v3/write_lp", params={"db": "v1db"},
                   headers={"Authorization": f"Bearer {token}"},
                   content=b"rawm,t=x v=1i 1\nrawm v=2i 2")
    assert r.status_code == 204, r.text
    port = srv.url.rsplit(":", 1)[1]
    client = flight.connect(f"grpc+tcp://127.0.0.1:{port}")
    opts = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])

    def get(ticket: object) -> pa.Table:
        raw = ticket if isinstance(ticket, bytes) else json.dumps(ticket).encode()
        return client.do_get(flight.Ticket(raw), opts).read_all()

    t = get({"namespace_name": "v1db", "sql_query": "SELECT sum(v) AS s FROM rawm"})
    assert t.column("s").to_pylist() == [3]  # query_type defaults to sql
    t = get({"bucket": "v1db", "sql_query": "SELECT v FROM rawm WHERE t = $t",
             "query_type": "sql", "params": {"t": "x"}})
    assert t.column("v").to_pylist() == [1]
    t = get({"database": "v1db", "sql_query": "SELECT v FROM rawm GROUP BY t",
             "query_type": "influxql"})
    assert t.column_names == ["iox::measurement", "time", "t", "v"]
    assert t.column("iox::measurement").to_pylist() == ["rawm", "rawm"]
    assert t.column("t").to_pylist() == ["x", None]  # the series without t last
    # an HTTP/1.1 request on the same port between two gRPC calls
    r = httpx.get(f"{srv.url}/query", params={"db": "v1db", "q": "SELECT count(v) FROM rawm",
                                               "p": token})
    assert r.json()["results"][0]["series"][0]["values"][0][1] == 2
    with pytest.raises(flight.FlightError, match="invalid ticket"):
        get(b"\x08\x01not json")
    with pytest.raises(flight.FlightError, match="query_type"):
        get({"database": "v1db", "sql_query": "x", "query_type": "flux"})
    with pytest.raises(flight.FlightError, match="database not found"):
        get({"database": "nope", "sql_query": "SELECT 1"})
    # an error while executing (SQL results stream batch by batch) is a clean message
    with pytest.raises(flight.FlightError, match="error while executing plan") as info:
        get({"database": "v1db", "sql_query": "SELECT CAST(t AS BIGINT) FROM rawm"})
    assert "Traceback" not in str(info.value)
    client.close()
