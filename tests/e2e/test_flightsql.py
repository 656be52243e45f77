"""FlightSQL on the HTTP port, against a real server with authentication on:

* the ADBC FlightSQL driver (the Go driver Grafana's FlightSQL data source builds on) through
  its DB-API: queries over production-shaped data, prepared statements with parameters,
  get_objects / table schema / get_info / table types, tokens (bearer header, and a
  username/password handshake), and the errors it reports;
* pyarrow.flight, for the protocol's steps one at a time and for what ADBC does not send
  (GetSchema, each metadata command's filters, the prepared-statement action and DoPut by
  hand, the reference's protobuf ReadInfo tickets). Its FlightSQL messages are written
  here byte by byte (`pb`), independently of Weir's own declarations of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import weir
from conftest import WeirServer
from support.datagen import CPU, ESCAPED, Dataset, generate

fsql = pytest.importorskip("adbc_driver_flightsql.dbapi")
adbc_errors = pytest.importorskip("adbc_driver_manager")

DB = "fsql"
OTHER = "fsql_other"
SQL_ANY = "type.googleapis.com/arrow.flight.protocol.sql."


@dataclass
class Env:
    srv: WeirServer
    token: str
    data: Dataset

    @property
    def uri(self) -> str:
        return f"grpc://127.0.0.1:{self.srv.port}"

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    srv = WeirServer(Path(tmp_path_factory.mktemp("flightsql")) / "data", auth=True,
                     extra_args=["--wal-flush-interval", "10ms"])
    srv.start()
    r = httpx.post(f"{srv.url}/api/v3/configure/token/admin", timeout=10)
    assert r.status_code == 201, r.text
    e = Env(srv, r.json()["token"], generate(seed=14, hosts=40, regions=10))
    for body in e.data.chunks(4):
        r = httpx.post(f"{srv.url}/api/v3/write_lp", params={"db": DB}, content=body.encode(),
                       headers=e.headers(), timeout=60)
        assert r.status_code == 204, r.text
    r = httpx.post(f"{srv.url}/api/v3/write_lp", params={"db": OTHER},
                   content=b"other,k=v x=1i 1000", headers=e.headers(), timeout=10)
    assert r.status_code == 204, r.text
    yield e
    srv.stop()


def connect(e: Env, db: str | None = DB, token: str | None = "", **db_kwargs: str):  # type: ignore[no-untyped-def]
    """An ADBC FlightSQL connection as Grafana's data source makes one: the database in a
    call header, the token as a bearer `authorization` header."""
    kw = dict(db_kwargs)
    if db is not None:
        kw["adbc.flight.sql.rpc.call_header.database"] = db
    if token is not None:
        kw["adbc.flight.sql.authorization_header"] = f"Bearer {token or e.token}"
    return fsql.connect(e.uri, db_kwargs=kw, autocommit=True)


def query(e: Env, sql: str, params: object = None, **kw: object) -> pa.Table:
    with connect(e, **kw) as conn, conn.cursor() as cur:  # type: ignore[arg-type]
        cur.execute(sql, params)
        table: pa.Table = cur.fetch_arrow_table()
        return table


# ---- ADBC ------------------------------------------------------------------------------


def test_adbc_query_returns_every_row_of_production_shaped_data(env: Env) -> None:
    """Thousands of series with nanosecond times near now, every field type (integers past
    2^53, uintegers past 2^63, strings with quotes and backslashes), nulls, a missing tag."""
    data = env.data
    t = query(env, "SELECT host, region, usage, cores, uptime, state, healthy, time "
                   "FROM cpu ORDER BY time, host")
    expected = data.table_rows(CPU)
    assert t.num_rows == len(expected), data.describe()
    assert t.schema.field("time").type == pa.timestamp("ns")
    assert t.schema.field("uptime").type == pa.uint64()
    assert t.schema.field("host").metadata[b"iox::column::type"] == b"iox::column_type::tag"
    got = {(r["host"], r["region"], r["time"]): r for r in
           t.set_column(t.schema.get_field_index("time"), "time",
                        t.column("time").cast(pa.int64())).to_pylist()}
    for row in expected:
        g = got[(row.tags["host"], row.tags.get("region"), row.time)]
        for name in ("usage", "cores", "uptime", "state", "healthy"):
            assert g[name] == row.get(name), (name, row, data.describe())
    times = t.column("time").cast(pa.int64()).to_pylist()
    assert times == sorted(times) and data.now_ns - 30 * 60 * 10**9 < times[0]

    # aggregates, and a table whose name needs quoting
    t = query(env, 'SELECT count(*) AS n, count(DISTINCT host) AS hosts FROM cpu')
    assert t.to_pylist() == [{"n": len(expected), "hosts": 40}]
    t = query(env, 'SELECT count(*) AS n FROM "disk io,x"')
    assert t.to_pylist() == [{"n": len(data.table_rows(ESCAPED))}]


def test_adbc_prepared_statement_with_parameters(env: Env) -> None:
    data = env.data
    rows = data.table_rows(CPU)
    since_ns = sorted(r.time for r in rows)[len(rows) // 2]
    since = datetime.fromtimestamp(since_ns // 1000 / 10**6, UTC).replace(tzinfo=None)
    since_ns = since_ns // 1000 * 1000  # (a Python datetime holds microseconds)
    sql = "SELECT host, region, usage, time FROM cpu WHERE host = $1 AND time >= $2 " \
          "ORDER BY time"
    with connect(env) as conn, conn.cursor() as cur:
        # the parameters' schema, with the types DataFusion infers from where they stand
        params = cur.adbc_prepare(sql)
        assert params is not None
        assert params.names == ["$1", "$2"]
        assert params.field("$1").type == pa.string()
        assert params.field("$2").type == pa.timestamp("ns")
        for host in ("host-00003", "host-00031"):  # one statement, bound twice
            cur.execute(sql, (host, since))
            t = cur.fetch_arrow_table()
            want = sorted(r.time for r in rows if r.tags["host"] == host and r.time >= since_ns)
            assert want, data.describe()
            assert t.column("time").cast(pa.int64()).to_pylist() == want
            assert set(t.column("host").to_pylist()) == {host}
        # named parameters, bound by name as Arrow data
        cur.execute("SELECT count(*) AS n FROM cpu WHERE region = $region AND cores > $min",
                    pa.record_batch({"region": ["region-002"], "min": [0]}))
        n = cur.fetch_arrow_table().column("n")[0].as_py()
        assert n == sum(1 for r in rows if r.tags.get("region") == "region-002"
                        and r.get("cores") is not None and r.get("cores") > 0)
        # a missing parameter is DataFusion's own error
        with pytest.raises(adbc_errors.Error, match=r"No value found for placeholder with name "
                                                    r"\$2"):
            cur.execute("SELECT count(*) FROM cpu WHERE host = $1 AND usage > $2",
                        ("host-00001",))


def test_adbc_catalog_schemas_tables_and_columns(env: Env) -> None:
    data = env.data
    with connect(env) as conn:
        objs = conn.adbc_get_objects(depth="db_schemas").read_all().to_pylist()
        assert [c["catalog_name"] for c in objs] == ["public"]
        assert [s["db_schema_name"] for s in objs[0]["catalog_db_schemas"]] == \
            ["information_schema", "iox", "system"]
        objs = conn.adbc_get_objects(depth="tables", db_schema_filter="iox").read_all()
        tables = objs.to_pylist()[0]["catalog_db_schemas"][0]["db_schema_tables"]
        assert [(t["table_name"], t["table_type"]) for t in tables] == \
            [("cpu", "BASE TABLE"), ("disk io,x", "BASE TABLE")]
        objs = conn.adbc_get_objects(depth="columns", db_schema_filter="iox",
                                     table_name_filter="c_u").read_all().to_pylist()
        (table,) = objs[0]["catalog_db_schemas"][0]["db_schema_tables"]
        assert table["table_name"] == "cpu"
        assert sorted(c["column_name"] for c in table["table_columns"]) == \
            sorted(data.columns(CPU))
        schema = conn.adbc_get_table_schema("disk io,x", db_schema_filter="iox")
        assert sorted(schema.names) == sorted(data.columns(ESCAPED))
        assert schema.field("time").type == pa.timestamp("ns")
        assert schema.field("host name").metadata[b"iox::column::type"] == \
            b"iox::column_type::tag"
        assert conn.adbc_get_table_types() == ["BASE TABLE", "VIEW"]


def test_adbc_get_info(env: Env) -> None:
    with connect(env) as conn:
        info = conn.adbc_get_info()
    assert info["vendor_name"] == "Weir"
    assert info["vendor_version"] == weir.__version__
    assert info["vendor_arrow_version"] == "1.3"
    assert info["driver_name"] == "ADBC Flight SQL Driver - Go"


def test_adbc_tokens(env: Env) -> None:
    with pytest.raises(adbc_errors.Error, match=r"UNAUTHENTICATED.*not authenticated"):
        query(env, "SELECT 1", token=None)
    with pytest.raises(adbc_errors.Error, match=r"UNAUTHENTICATED.*not authenticated"):
        query(env, "SELECT 1", token="apiv3_not-a-token")
    # a token that may read one database only
    r = httpx.post(f"{env.srv.url}/api/v3/configure/token", headers=env.headers(),
                   json={"token_name": "fsql-reader", "permissions": [f"db:{OTHER}:read"]},
                   timeout=10)
    assert r.status_code == 201, r.text
    reader = r.json()["token"]
    assert query(env, "SELECT x FROM other", db=OTHER, token=reader).to_pylist() == [{"x": 1}]
    with pytest.raises(adbc_errors.Error, match=rf"UNAUTHORIZED.*may not read database "
                                                f"'{DB}'"):
        query(env, "SELECT count(*) FROM cpu", token=reader)
    with connect(env, token=reader) as conn, \
            pytest.raises(adbc_errors.Error, match="may not read"):
        conn.adbc_get_objects(depth="tables").read_all()
    # a username and password (JDBC's, and ADBC's): the handshake answers the password as
    # the bearer token, and the user name is ignored
    t = query(env, "SELECT count(*) AS n FROM cpu", token=None, username="anyone",
              password=env.token)
    assert t.column("n")[0].as_py() == len(env.data.table_rows(CPU))
    with pytest.raises(adbc_errors.Error, match="not authenticated"):
        query(env, "SELECT 1", token=None, username="anyone", password="wrong")


def test_adbc_errors_name_what_was_wrong(env: Env) -> None:
    with pytest.raises(adbc_errors.Error, match="no 'database' header in request"):
        query(env, "SELECT 1", db=None)
    with pytest.raises(adbc_errors.Error, match="database not found: nope"):
        query(env, "SELECT 1", db="nope")
    with pytest.raises(adbc_errors.Error, match=r"error while planning query: .*No field named "
                                                "nope") as info:
        query(env, "SELECT nope FROM cpu")
    assert "Traceback" not in str(info.value)
    with pytest.raises(adbc_errors.Error, match=r"table 'public\.iox\.nope' not found"):
        query(env, "SELECT * FROM nope")
    # FlightSQL writes (bulk ingest) are refused: Weir takes line protocol
    with connect(env) as conn, conn.cursor() as cur, \
            pytest.raises(adbc_errors.Error, match="read-only"):
        cur.adbc_ingest("cpu", pa.table({"usage": [1.0]}), mode="append")


# ---- pyarrow.flight, step by step --------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb(*fields: tuple[int, object]) -> bytes:
    """A protobuf message from (field number, value) pairs: bytes and str length-delimited,
    int and bool as varints."""
    out = b""
    for num, value in fields:
        if isinstance(value, bytes | str):
            raw = value.encode() if isinstance(value, str) else value
            out += _varint(num << 3 | 2) + _varint(len(raw)) + raw
        else:
            out += _varint(num << 3) + _varint(int(value))  # type: ignore[call-overload]
    return out


def unpb(raw: bytes) -> dict[int, list[object]]:
    """One level of a protobuf message: field number -> values (bytes or int)."""
    out: dict[int, list[object]] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        n = shift = 0
        while True:
            b = raw[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(raw):
        key = varint()
        if key & 7 == 0:
            value: object = varint()
        else:
            assert key & 7 == 2, key
            n = varint()
            value, i = raw[i:i + n], i + n
        out.setdefault(key >> 3, []).append(value)
    return out


def sql_cmd(name: str, *fields: tuple[int, object]) -> bytes:
    """A FlightSQL message packed in a google.protobuf.Any."""
    return pb((1, SQL_ANY + name), (2, pb(*fields)))


def unpack_any(raw: bytes, name: str) -> dict[int, list[object]]:
    msg = unpb(raw)
    assert msg[1] == [(SQL_ANY + name).encode()], msg
    return unpb(msg[2][0])  # type: ignore[arg-type]


@pytest.fixture
def client(env: Env):  # type: ignore[no-untyped-def]
    c = flight.connect(env.uri)
    yield c
    c.close()


def opts(e: Env, db: str | None = DB, **headers: str) -> flight.FlightCallOptions:
    h = [(b"authorization", f"Bearer {e.token}".encode())]
    if db is not None:
        h.append((b"database", db.encode()))
    h += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return flight.FlightCallOptions(headers=h)


def fetch(client: flight.FlightClient, cmd: bytes, o: flight.FlightCallOptions
          ) -> tuple[flight.FlightInfo, pa.Table]:
    """GetFlightInfo, then DoGet of its one endpoint: the announced schema must be the
    streamed one (ADBC refuses a stream whose schema differs)."""
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd), o)
    assert len(info.endpoints) == 1 and not info.endpoints[0].locations
    table = client.do_get(info.endpoints[0].ticket, o).read_all()
    assert table.schema.equals(info.schema, check_metadata=True), (table.schema, info.schema)
    return info, table


def test_statement_query_step_by_step(env: Env, client: flight.FlightClient) -> None:
    cmd = sql_cmd("CommandStatementQuery",
                  (1, "SELECT host, usage, time FROM cpu WHERE host = 'host-00002' "
                      "ORDER BY time"))
    info, t = fetch(client, cmd, opts(env))
    assert t.column("host").to_pylist() == ["host-00002"] * t.num_rows
    assert t.num_rows == sum(1 for r in env.data.table_rows(CPU)
                             if r.tags["host"] == "host-00002")
    # the ticket is the reference's: a ReadInfo (database, FLIGHT_SQL_MESSAGE, the command)
    ticket = unpb(info.endpoints[0].ticket.ticket)
    assert ticket[1] == [b"type.googleapis.com/influxdata.iox.querier.v1.ReadInfo"]
    read_info = unpb(ticket[2][0])  # type: ignore[arg-type]
    assert read_info[1] == [DB.encode()] and read_info[3] == [3] and read_info[4] == [cmd]
    # GetSchema announces the same schema without a ticket
    s = client.get_schema(flight.FlightDescriptor.for_command(cmd), opts(env)).schema
    assert s.equals(info.schema, check_metadata=True)
    # the database in `bucket` instead; two headers that disagree are refused
    _, t2 = fetch(client, cmd, opts(env, db=None, bucket=DB))
    assert t2.equals(t)
    with pytest.raises(flight.FlightError, match="More than one headers"):
        client.get_flight_info(flight.FlightDescriptor.for_command(cmd),
                               opts(env, bucket=OTHER))
    # DoGet checks the token too: a ticket is no credential
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.do_get(info.endpoints[0].ticket).read_all()
    # a path descriptor is not a FlightSQL command
    with pytest.raises(flight.FlightError, match="FlightSQL commands"):
        client.get_flight_info(flight.FlightDescriptor.for_path("cpu"), opts(env))
    with pytest.raises(flight.FlightError, match="read-only"):
        client.get_flight_info(flight.FlightDescriptor.for_command(
            sql_cmd("CommandStatementUpdate", (1, "DELETE FROM cpu"))), opts(env))


def test_metadata_commands(env: Env, client: flight.FlightClient) -> None:
    o = opts(env)
    _, t = fetch(client, sql_cmd("CommandGetCatalogs"), o)
    assert t.to_pylist() == [{"catalog_name": "public"}]
    _, t = fetch(client, sql_cmd("CommandGetDbSchemas", (2, "i%")), o)
    assert t.to_pylist() == [{"catalog_name": "public", "db_schema_name": "information_schema"},
                             {"catalog_name": "public", "db_schema_name": "iox"}]
    _, t = fetch(client, sql_cmd("CommandGetTableTypes"), o)
    assert t.column("table_type").to_pylist() == ["BASE TABLE", "VIEW"]
    # tables: patterns, a type filter, and the schemas
    _, t = fetch(client, sql_cmd("CommandGetTables", (2, "iox"), (4, "BASE TABLE"),
                                 (5, True)), o)
    assert t.column("table_name").to_pylist() == ["cpu", "disk io,x"]
    cpu = pa.ipc.read_schema(pa.py_buffer(t.column("table_schema")[0].as_py()))
    assert sorted(cpu.names) == sorted(env.data.columns(CPU))
    assert cpu.field("uptime").type == pa.uint64()
    _, t = fetch(client, sql_cmd("CommandGetTables", (2, "system"), (3, "%files")), o)
    assert t.to_pylist() == [{"catalog_name": "public", "db_schema_name": "system",
                              "table_name": "parquet_files", "table_type": "BASE TABLE"}]
    _, t = fetch(client, sql_cmd("CommandGetTables", (4, "VIEW")), o)
    assert set(t.column("db_schema_name").to_pylist()) == {"information_schema"}
    # the reference's header that names base tables `TABLE`
    o_table = opts(env, x_influxdata_base_table_type="TABLE")
    _, t = fetch(client, sql_cmd("CommandGetTables", (2, "iox")), o_table)
    assert set(t.column("table_type").to_pylist()) == {"TABLE"}
    _, t = fetch(client, sql_cmd("CommandGetTableTypes"), o_table)
    assert t.column("table_type").to_pylist() == ["TABLE", "VIEW"]
    # server information: what was asked for, in the specification's dense union
    _, t = fetch(client, sql_cmd("CommandGetSqlInfo", (1, 0), (1, 3), (1, 504), (1, 8)), o)
    assert {r["info_name"]: r["value"] for r in t.to_pylist()} == \
        {0: "Weir", 3: True, 504: '"', 8: 0}
    assert t.schema.field("value").type.type_codes == [0, 1, 2, 3, 4, 5]
    # no keys: empty answers in the specification's shape
    _, t = fetch(client, sql_cmd("CommandGetPrimaryKeys", (3, "cpu")), o)
    assert t.num_rows == 0 and t.schema.names[:4] == ["catalog_name", "db_schema_name",
                                                       "table_name", "column_name"]
    # the catalog and server commands need no database; the table listing does
    _, t = fetch(client, sql_cmd("CommandGetCatalogs"), opts(env, db=None))
    assert t.num_rows == 1
    with pytest.raises(flight.FlightError, match="no 'database' header"):
        client.get_flight_info(flight.FlightDescriptor.for_command(
            sql_cmd("CommandGetTables")), opts(env, db=None))


def test_prepared_statement_by_hand(env: Env, client: flight.FlightClient) -> None:
    o = opts(env)
    sql = "SELECT host, usage FROM cpu WHERE host = $host AND usage > $1 ORDER BY usage"
    results = list(client.do_action(flight.Action(
        "CreatePreparedStatement", sql_cmd("ActionCreatePreparedStatementRequest", (1, sql))),
        o))
    assert len(results) == 1
    created = unpack_any(results[0].body.to_pybytes(), "ActionCreatePreparedStatementResult")
    handle = created[1][0]
    dataset = pa.ipc.read_schema(pa.py_buffer(created[2][0]))
    assert dataset.names == ["host", "usage"]
    parameters = pa.ipc.read_schema(pa.py_buffer(created[3][0]))
    assert [(f.name, f.type) for f in parameters] == [("$1", pa.float64()),
                                                      ("$host", pa.string())]
    # bind the parameters with DoPut: the answer is the handle that now carries them
    prepared = sql_cmd("CommandPreparedStatementQuery", (1, handle))
    params = pa.table({"host": ["host-00004"], "$1": [-1e9]})
    writer, reader = client.do_put(flight.FlightDescriptor.for_command(prepared),
                                   params.schema, o)
    writer.write_table(params)
    writer.done_writing()
    put = reader.read()
    writer.close()
    bound = unpb(put.to_pybytes())[1][0]
    _, t = fetch(client, sql_cmd("CommandPreparedStatementQuery", (1, bound)), o)
    want = sorted(r.get("usage") for r in env.data.table_rows(CPU)
                  if r.tags["host"] == "host-00004" and r.get("usage") is not None)
    assert want, env.data.describe()
    assert t.column("usage").to_pylist() == want
    # parameters are one row
    two = pa.table({"host": ["a", "b"], "$1": [1.0, 2.0]})
    writer, reader = client.do_put(flight.FlightDescriptor.for_command(prepared),
                                   two.schema, o)
    writer.write_table(two)
    writer.done_writing()
    with pytest.raises(flight.FlightError, match="one row of parameters; 2 were sent"):
        reader.read()
        writer.close()  # (the call's status arrives with its end)
    # closing has nothing to free
    assert list(client.do_action(flight.Action(
        "ClosePreparedStatement", sql_cmd("ActionClosePreparedStatementRequest", (1, handle))),
        o)) == []
    # a statement that does not plan fails when prepared
    with pytest.raises(flight.FlightError, match="No field named nope"):
        list(client.do_action(flight.Action(
            "CreatePreparedStatement",
            sql_cmd("ActionCreatePreparedStatementRequest", (1, "SELECT nope FROM cpu"))), o))


def test_read_info_tickets(env: Env, client: flight.FlightClient) -> None:
    """The reference's protobuf ticket for SQL (with parameters) and InfluxQL, as its own
    clients may send it straight to DoGet."""
    def ticket(query: str, qtype: int, *params: tuple[int, object]) -> flight.Ticket:
        read_info = pb((1, DB), (2, query), (3, qtype), *params)
        return flight.Ticket(pb((1, "type.googleapis.com/influxdata.iox.querier.v1.ReadInfo"),
                                (2, read_info)))

    o = opts(env, db=None)
    t = client.do_get(ticket("SELECT count(*) AS n FROM cpu WHERE host = $h", 1,
                             (6, pb((1, "h"), (7, "host-00001")))), o).read_all()
    assert t.column("n")[0].as_py() == sum(1 for r in env.data.table_rows(CPU)
                                           if r.tags["host"] == "host-00001")
    t = client.do_get(ticket("SELECT count(usage) FROM cpu", 2), o).read_all()
    assert t.column("iox::measurement").to_pylist() == ["cpu"]
    # a JSON ticket still works next to them
    t = client.do_get(flight.Ticket(json.dumps(
        {"database": DB, "sql_query": "SELECT 1 AS one"}).encode()), o).read_all()
    assert t.to_pylist() == [{"one": 1}]
