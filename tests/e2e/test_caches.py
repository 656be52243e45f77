"""Last-value and distinct-value caches on a real server (issue #12): the configure routes
with the reference's bodies, statuses and errors; the SQL functions `last_cache()` and
`distinct_cache()` against a model of production-shaped data (thousands of series, ns
times near now); `system.last_caches` / `system.distinct_caches`; count, TTL,
max_cardinality and max_age; caches refilled from the buffer and Parquet when created and
after a restart (graceful and kill -9); the influxdb3 CLI commands."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from conftest import WeirServer
from support.cli import cli, poll
from support.datagen import CPU, Dataset, Row, generate, iso_ns
from support.persisted import write_ok
from support.storage_helpers import parquet_files, snapshot_now

NS = 1_000_000_000
LAST = "/api/v3/configure/last_cache"
DISTINCT = "/api/v3/configure/distinct_cache"
FIELDS = ("cores", "healthy", "state", "time", "uptime", "usage")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    s = WeirServer(tmp_path_factory.mktemp("caches") / "data",
                   extra_args=["--wal-flush-interval", "10ms"]).start()
    yield s
    s.stop()


def post(server: WeirServer, path: str, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, timeout=60, **kw)


def delete(server: WeirServer, path: str, *, params: dict[str, str] | None = None,
           body: Any = None) -> httpx.Response:
    return httpx.request("DELETE", f"{server.url}{path}", params=params,
                         json=body, timeout=60)


def sql(server: WeirServer, db: str, q: str) -> list[dict[str, Any]]:
    r = server.query(db, q)
    assert r.status_code == 200, r.text
    return r.json()


def model_last(data: Dataset, keys: tuple[str, ...], count: int = 1,
               extra: Sequence[Row] = ()) -> list[dict]:
    """Per key (rows with every key tag), the newest `count` rows as JSON gives them."""
    by_key: dict[tuple[str, ...], list[Row]] = {}
    for r in [*data.table_rows(CPU), *extra]:
        if all(k in r.tags for k in keys):
            by_key.setdefault(tuple(r.tags[k] for k in keys), []).append(r)
    out = []
    for key in sorted(by_key):
        for r in sorted(by_key[key], key=lambda r: r.time, reverse=True)[:count]:
            row = dict(zip(keys, key, strict=True))
            row.update({f: iso_ns(r.time) if f == "time" else r.fields[f]
                        for f in FIELDS if f == "time" or r.fields.get(f) is not None})
            out.append(row)
    return out


def last_rows(server: WeirServer, db: str, keys: tuple[str, ...], args: str = "'cpu'"
              ) -> list[dict]:
    cols = ", ".join((*keys, *FIELDS))
    return sql(server, db, f"SELECT {cols} FROM last_cache({args}) ORDER BY "
                           f"{', '.join(keys) or 'time'}, time DESC")


# ---- the configure routes ----------------------------------------------------------------


def test_last_cache_create_statuses_and_bodies(srv: WeirServer) -> None:
    now = time.time_ns()
    write_ok(srv, "lc_db", f'tbl,t1=a,t2=b,t3=c f1=true,f2="hello",f3=4i,f4=4u,f5=5 {now}')
    cases: list[tuple[Any, int, str | None]] = [
        ({}, 400, "serde error: missing field `db`"),
        ({"table": "tbl"}, 400, "serde error: missing field `db`"),
        ({"db": "lc_db"}, 400, "serde error: missing field `table`"),
        ({"db": "nope", "table": "tbl"}, 404, "Database not found nope"),
        ({"db": "lc_db", "table": "nope"}, 404, "Table nope not in DB schema for lc_db"),
        ({"db": "lc_db", "table": "tbl"}, 201, None),
        ({"db": "lc_db", "table": "tbl"}, 409,
         "attempted to create a resource that already exists"),
        ({"db": "lc_db", "table": "tbl", "name": "my_cache"}, 201, None),
        ({"db": "lc_db", "table": "tbl", "name": "my_cache"}, 409, None),
        ({"db": "lc_db", "table": "tbl", "name": "my_cache", "ttl": 666}, 409, None),
        ({"db": "lc_db", "table": "tbl", "key_columns": ["t1", "t2"]}, 201, None),
        ({"db": "lc_db", "table": "tbl", "key_columns": ["t1", "t2"]}, 409, None),
        ({"db": "lc_db", "table": "tbl", "key_columns": ["not_a_key_column"]}, 400,
         "invalid configuration provided: invalid key column provided: not_a_key_column"),
        ({"db": "lc_db", "table": "tbl", "key_columns": ["f5"]}, 400,
         "only uint64, int64, bool, tag, and string columns are supported in the last cache"),
        ({"db": "lc_db", "table": "tbl", "value_columns": ["not_a_value_column"]}, 400,
         "invalid configuration provided: invalid value column provided: not_a_value_column"),
        ({"db": "lc_db", "table": "tbl", "name": "too_small", "count": 0}, 400,
         "serde json error: last cache size must be greater than 0"),
        ({"db": "lc_db", "table": "tbl", "name": "x", "count": "1"}, 400, None),
        ({"db": "lc_db", "table": "tbl", "name": "x", "key_columns": "t1"}, 400, None),
        (["lc_db"], 400, None),
    ]
    for body, status, text in cases:
        r = post(srv, LAST, body)
        assert r.status_code == status, (body, r.status_code, r.text)
        if text is not None:
            assert r.text == text, body
    r = httpx.post(f"{srv.url}{LAST}", content=b'{"db":"lc_db","table":"tbl"}', timeout=30)
    assert (r.status_code, r.text) == (415, "unacceptable content-type, expected: "
                                            "application/json")

    r = post(srv, LAST, {"db": "lc_db", "table": "tbl", "name": "explicit",
                         "key_columns": ["t3", "f3"], "value_columns": ["f1", "f5"],
                         "count": 5, "ttl": 60})
    assert r.status_code == 201
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    batch = body["catalog_batch"]["Database"]
    assert batch["database_name"] == "lc_db"
    assert isinstance(body["sequence_number"], int) and isinstance(batch["time_ns"], int)
    op = batch["ops"][0]["CreateLastCache"]
    assert {k: v for k, v in op.items() if k != "table_id"} == {
        "table": "tbl", "id": 3, "node_spec": "all", "name": "explicit",
        "key_columns": [{"tag": 2}, {"field": [0, 2]}],
        "value_columns": {"explicit": {"columns": [{"field": [0, 0]}, {"field": [0, 4]}]}},
        "count": 5, "ttl": 60}
    names = [r["name"] for r in sql(srv, "lc_db", "SELECT name FROM system.last_caches")]
    assert names == ["tbl_t1_t2_t3_last_cache", "my_cache", "tbl_t1_t2_last_cache", "explicit"]
    assert sql(srv, "_internal", "SELECT table_name, last_cache_count, distinct_cache_count "
                                 "FROM system.tables WHERE database_name = 'lc_db'") == [
        {"table_name": "tbl", "last_cache_count": 4, "distinct_cache_count": 0}]


def test_last_cache_delete_from_query_or_body(srv: WeirServer) -> None:
    now = time.time_ns()
    write_ok(srv, "lcd_db", f"tbl,t1=a f1=1 {now}")
    for use_query in (False, True):
        assert post(srv, LAST, {"db": "lcd_db", "table": "tbl", "name": "c"}).status_code == 201
        for partial in ({}, {"db": "lcd_db"}, {"table": "tbl"}, {"name": "c"},
                        {"db": "lcd_db", "table": "tbl"}, {"db": "lcd_db", "name": "c"}):
            r = (delete(srv, LAST, params=partial) if use_query and partial
                 else delete(srv, LAST, body=partial))
            assert r.status_code == 400, (use_query, partial, r.text)
        if use_query:  # no query string and no body: the JSON body is expected
            r = httpx.request("DELETE", f"{srv.url}{LAST}", timeout=30)
            assert r.status_code == 415
        full = {"db": "lcd_db", "table": "tbl", "name": "c"}
        r = delete(srv, LAST, params=full) if use_query else delete(srv, LAST, body=full)
        assert (r.status_code, r.text) == (200, "")
        r = delete(srv, LAST, params=full) if use_query else delete(srv, LAST, body=full)
        assert (r.status_code, r.text) == (404, "the requested resource was not found: c")
    r = delete(srv, LAST, params={"db": "nope", "table": "tbl", "name": "c"})
    assert (r.status_code, r.text) == (404, "Database not found nope")
    r = delete(srv, LAST, params={"db": "lcd_db", "table": "nope", "name": "c"})
    assert r.status_code == 404


def test_distinct_cache_create_and_delete(srv: WeirServer) -> None:
    now = time.time_ns()
    write_ok(srv, "dc_db", f'bar,t1=a,t2=aa,t3=aaa f1="potato",f2=true,f3=4i,f4=4u,f5=5 {now}')
    cases: list[tuple[Any, int, str | None]] = [
        ({}, 400, "serde error: missing field `db`"),
        ({"table": "bar", "columns": ["t1"]}, 400, "serde error: missing field `db`"),
        ({"db": "dc_db", "table": "bar"}, 400, "serde error: missing field `columns`"),
        ({"db": "carrot", "table": "bar", "columns": ["t1"]}, 404, "Database not found carrot"),
        ({"db": "dc_db", "table": "celery", "columns": ["t1"]}, 404,
         "Table celery not in DB schema for dc_db"),
        ({"db": "dc_db", "table": "bar", "columns": []}, 400,
         "invalid configuration provided: no columns provided when creating distinct cache"),
        ({"db": "dc_db", "table": "bar", "columns": ["leek"]}, 400,
         "invalid configuration provided: invalid column provided: leek"),
        ({"db": "dc_db", "table": "bar", "columns": ["f2"]}, 400,
         "only tag and string columns are supported in the distinct cache"),
        ({"db": "dc_db", "table": "bar", "columns": ["t1"], "max_cardinality": 0}, 400, None),
        ({"db": "dc_db", "table": "bar", "columns": ["t1", "t2"]}, 201, None),
        ({"db": "dc_db", "table": "bar", "columns": ["t1", "t2"]}, 409,
         "attempted to create a resource that already exists"),
        ({"db": "dc_db", "table": "bar", "columns": ["t1", "t2"], "max_cardinality": 1}, 409,
         None),
        ({"db": "dc_db", "table": "bar", "columns": ["t1", "t2"], "max_age": 1}, 409, None),
        ({"db": "dc_db", "table": "bar", "columns": ["t1"], "name": "my_cache"}, 201, None),
        ({"db": "dc_db", "table": "bar", "columns": ["t1", "t2"], "name": "my_cache"}, 409,
         None),
    ]
    for body, status, text in cases:
        r = post(srv, DISTINCT, body)
        assert r.status_code == status, (body, r.status_code, r.text)
        if text is not None:
            assert r.text == text, body
    r = post(srv, DISTINCT, {"db": "dc_db", "table": "bar", "name": "strings",
                             "columns": ["t3", "f1"], "max_cardinality": 20000, "max_age": 200})
    assert r.status_code == 201
    op = r.json()["catalog_batch"]["Database"]["ops"][0]["CreateDistinctCache"]
    assert {k: v for k, v in op.items() if k != "table_id"} == {
        "table_name": "bar", "node_spec": "all", "cache_id": 2, "cache_name": "strings",
        "column_ids": [{"tag": 2}, {"field": [0, 0]}], "max_cardinality": 20000,
        "max_age_seconds": 200, "source": {"type": "User"}}
    rows = sql(srv, "dc_db", "SELECT * FROM system.distinct_caches")
    assert [(r["name"], r["column_names"], r["max_cardinality"], r["max_age_seconds"])
            for r in rows] == [
        ("bar_t1_t2_distinct_cache", ["t1", "t2"], 100000, 86400),
        ("my_cache", ["t1"], 100000, 86400), ("strings", ["t3", "f1"], 20000, 200)]

    for partial in ({"db": "dc_db"}, {"db": "dc_db", "table": "bar"},
                    {"table": "bar", "name": "my_cache"}):
        assert delete(srv, DISTINCT, params=partial).status_code == 400
        assert delete(srv, DISTINCT, body=partial).status_code == 400
    assert httpx.request("DELETE", f"{srv.url}{DISTINCT}", timeout=30).status_code == 415
    full = {"db": "dc_db", "table": "bar", "name": "my_cache"}
    assert delete(srv, DISTINCT, params=full).status_code == 200
    r = delete(srv, DISTINCT, body=full)
    assert (r.status_code, r.text) == (404, "the requested resource was not found: my_cache")
    assert delete(srv, DISTINCT, body={**full, "name": "strings"}).status_code == 200
    assert [r["name"] for r in sql(srv, "dc_db", "SELECT name FROM system.distinct_caches")] \
        == ["bar_t1_t2_distinct_cache"]
    assert sql(srv, "_internal", "SELECT last_cache_count, distinct_cache_count FROM "
                                 "system.tables WHERE database_name = 'dc_db'") == [
        {"last_cache_count": 0, "distinct_cache_count": 1}]


# ---- the SQL functions over production-shaped data ----------------------------------------


def test_functions_over_thousands_of_series(srv: WeirServer) -> None:
    data = generate(seed=1212, hosts=100, regions=20, points_per_series=3, tables=(CPU,))
    for chunk in data.chunks(4):
        write_ok(srv, "fn_db", chunk)
    # created after the writes: filled from the buffer before the 201
    assert post(srv, LAST, {"db": "fn_db", "table": "cpu"}).status_code == 201
    assert post(srv, DISTINCT, {"db": "fn_db", "table": "cpu",
                                "columns": ["region", "host"]}).status_code == 201
    keys = ("host", "region")
    want = model_last(data, keys)
    assert len(want) > 1900
    assert last_rows(srv, "fn_db", keys) == want
    assert last_rows(srv, "fn_db", keys, "'cpu', 'cpu_host_region_last_cache'") == want

    got = sql(srv, "fn_db", "SELECT * FROM distinct_cache('cpu')")
    combos = {(r.tags.get("region"), r.tags["host"]) for r in data.table_rows(CPU)}
    assert [(r.get("region"), r["host"]) for r in got] == sorted(
        combos, key=lambda c: (c[0] is not None, c[0] or "", c[1]))

    # filters, aggregates and joins over the functions' rows
    one = sql(srv, "fn_db", "SELECT host, region, usage FROM last_cache('cpu') "
                            "WHERE host = 'host-00042' AND region IN ('region-003', 'region-004')"
                            " ORDER BY region")
    assert one == [{k: v for k, v in w.items() if k in ("host", "region", "usage")}
                   for w in want if w["host"] == "host-00042"
                   and w["region"] in ("region-003", "region-004")]
    n = sql(srv, "fn_db", "SELECT count(DISTINCT host) AS n FROM distinct_cache('cpu')")
    assert n == [{"n": 100}]

    # a new write: the caches follow (from the WAL flush)
    t = time.time_ns()
    write_ok(srv, "fn_db", f"cpu,host=host-00042,region=region-003 usage=1234.5 {t}\n"
                           f"cpu,host=new-host,region=region-999 usage=1 {t}")
    got = sql(srv, "fn_db", "SELECT host, region, usage, time FROM last_cache('cpu') "
                            "WHERE host IN ('host-00042', 'new-host') AND region IN "
                            "('region-003', 'region-999') ORDER BY host")
    assert got == [{"host": "host-00042", "region": "region-003", "usage": 1234.5,
                    "time": iso_ns(t)},
                   {"host": "new-host", "region": "region-999", "usage": 1.0,
                    "time": iso_ns(t)}]
    assert sql(srv, "fn_db", "SELECT host FROM distinct_cache('cpu') WHERE region = "
                             "'region-999'") == [{"host": "new-host"}]


def test_function_errors(srv: WeirServer) -> None:
    write_ok(srv, "fe_db", f"cpu,host=a usage=1 {time.time_ns()}\nmem,host=a free=1i "
                           f"{time.time_ns()}")
    for body in ({"db": "fe_db", "table": "cpu", "name": "one"},
                 {"db": "fe_db", "table": "cpu", "name": "two"}):
        assert post(srv, LAST, body).status_code == 201
    for q, message in [
        ("SELECT * FROM last_cache('cpu')", "could not find cache for the given arguments"),
        ("SELECT * FROM last_cache('mem')", "could not find cache for the given arguments"),
        ("SELECT * FROM last_cache('nope')", "provided table name is invalid"),
        ("SELECT * FROM last_cache(1)", "first argument must be the table name as a string"),
        ("SELECT * FROM last_cache('cpu', 2)",
         "second argument, if passed, must be the cache name as a string"),
        ("SELECT * FROM distinct_cache('cpu')",
         "could not find distinct value cache for the given arguments"),
        ("SELECT * FROM distinct_cache('nope')", "provided table name (nope) is invalid"),
    ]:
        r = srv.query("fe_db", q)
        assert (r.status_code, r.text) == (400, f"Error during planning: {message}"), q
    assert sql(srv, "fe_db", "SELECT host, usage FROM last_cache('cpu', 'two')") == [
        {"host": "a", "usage": 1.0}]


def test_count_ttl_cardinality_and_max_age(srv: WeirServer) -> None:
    now = time.time_ns()
    lines = [f"cpu,host=h{h:03d} usage={h * 10 + p},n={p}i {now - (5 - p) * NS + h}"
             for p in range(5) for h in range(300)]
    write_ok(srv, "lim_db", "\n".join(lines))
    assert post(srv, LAST, {"db": "lim_db", "table": "cpu", "name": "three",
                            "count": 3}).status_code == 201
    got = sql(srv, "lim_db", "SELECT host, n FROM last_cache('cpu', 'three') "
                             "WHERE host IN ('h000', 'h299') ORDER BY host, time DESC")
    assert got == [{"host": h, "n": n} for h in ("h000", "h299") for n in (4, 3, 2)]
    assert sql(srv, "lim_db", "SELECT count(*) AS n FROM last_cache('cpu', 'three')") == [
        {"n": 900}]

    # max_cardinality: the most recently seen combinations stay
    assert post(srv, DISTINCT, {"db": "lim_db", "table": "cpu", "columns": ["host"],
                                "name": "top", "max_cardinality": 100}).status_code == 201
    got = sql(srv, "lim_db", "SELECT host FROM distinct_cache('cpu', 'top')")
    assert [r["host"] for r in got] == [f"h{h:03d}" for h in range(200, 300)]
    write_ok(srv, "lim_db", f"cpu,host=h000 usage=0 {time.time_ns()}")
    got = [r["host"] for r in sql(srv, "lim_db", "SELECT host FROM distinct_cache('cpu', 'top')")]
    assert len(got) == 100 and got[0] == "h000" and "h200" not in got

    # max_age: by the rows' own time
    write_ok(srv, "lim_db", f"old,host=stale v=1 {now - 3600 * NS}\nold,host=fresh v=1 {now}")
    assert post(srv, DISTINCT, {"db": "lim_db", "table": "old", "columns": ["host"],
                                "max_age": 1800}).status_code == 201
    assert sql(srv, "lim_db", "SELECT host FROM distinct_cache('old')") == [{"host": "fresh"}]

    # ttl: a row is read for `ttl` seconds after it entered (a stored row: from its time)
    assert post(srv, LAST, {"db": "lim_db", "table": "cpu", "name": "short", "ttl": 5,
                            "key_columns": ["host"]}).status_code == 201
    write_ok(srv, "lim_db", f"cpu,host=h001 usage=-1 {time.time_ns()}")
    entered = time.monotonic()
    q = "SELECT host, usage FROM last_cache('cpu', 'short') WHERE host = 'h001'"
    assert sql(srv, "lim_db", q) == [{"host": "h001", "usage": -1.0}]
    assert poll(lambda: sql(srv, "lim_db", q) == [], timeout=30)
    assert time.monotonic() - entered >= 4.5
    assert sql(srv, "lim_db", "SELECT count(*) AS n FROM last_cache('cpu', 'short')") == [
        {"n": 0}]


def test_deleting_the_table_drops_its_caches(srv: WeirServer) -> None:
    write_ok(srv, "drop_db", f"cpu,host=a usage=1 {time.time_ns()}\n"
                             f"mem,host=a free=1i {time.time_ns()}")
    assert post(srv, LAST, {"db": "drop_db", "table": "cpu"}).status_code == 201
    assert post(srv, DISTINCT, {"db": "drop_db", "table": "mem",
                                "columns": ["host"]}).status_code == 201
    r = httpx.delete(f"{srv.url}/api/v3/configure/table",
                     params={"db": "drop_db", "table": "cpu"}, timeout=30)
    assert r.status_code == 200
    assert sql(srv, "drop_db", "SELECT name FROM system.last_caches") == []
    write_ok(srv, "drop_db", f"cpu,host=b usage=2 {time.time_ns()}")  # a new table cpu
    r = srv.query("drop_db", "SELECT * FROM last_cache('cpu')")
    assert (r.status_code, r.text) == (
        400, "Error during planning: could not find cache for the given arguments")
    assert sql(srv, "drop_db", "SELECT name FROM system.distinct_caches") == [
        {"name": "mem_host_distinct_cache"}]


# ---- refilled from stored data, after restarts -------------------------------------------


def test_refilled_from_parquet_and_the_buffer_and_after_restarts(server_factory) -> None:
    s = server_factory(extra_args=["--wal-flush-interval", "10ms",
                                   "--wal-snapshot-size", "4"]).start()
    data = generate(seed=1213, hosts=60, regions=25, points_per_series=2, tables=(CPU,))
    write_ok(s, "rf_db", data.lp())
    snapshot_now(s, "rf_db")  # every point above is in Parquet now
    # a newer point for 30 series (one of them new), left in the buffer (fewer WAL files
    # than a snapshot takes)
    t = time.time_ns()
    newer = [Row(CPU, {"host": f"host-{h:05d}", "region": "region-001"},
                 {"usage": 1000.0 + h}, t) for h in range(30)]
    write_ok(s, "rf_db", "\n".join(f"cpu,host={r.tags['host']},region={r.tags['region']} "
                                    f"usage={r.fields['usage']} {t}" for r in newer))
    assert max(f["max_time"] for f in parquet_files(s, "rf_db", "cpu")) < t

    keys = ("host", "region")
    assert post(s, LAST, {"db": "rf_db", "table": "cpu", "count": 2}).status_code == 201
    assert post(s, DISTINCT, {"db": "rf_db", "table": "cpu",
                              "columns": ["host"]}).status_code == 201
    want = model_last(data, keys, count=2, extra=newer)
    assert last_rows(s, "rf_db", keys) == want
    hosts = [{"host": f"host-{h:05d}"} for h in range(60)]
    assert sql(s, "rf_db", "SELECT * FROM distinct_cache('cpu')") == hosts

    for how in ("restart", "kill -9"):
        if how == "restart":
            s.restart()
        else:
            s.kill9()
            s.start()
        assert last_rows(s, "rf_db", keys) == want, how
        assert sql(s, "rf_db", "SELECT * FROM distinct_cache('cpu')") == hosts, how
        names = sql(s, "rf_db", "SELECT name, count FROM system.last_caches")
        assert names == [{"name": "cpu_host_region_last_cache", "count": 2}]
    t2 = time.time_ns()
    write_ok(s, "rf_db", f"cpu,host=brand-new,region=region-001 usage=1 {t2}")
    assert sql(s, "rf_db", "SELECT host, usage FROM last_cache('cpu') WHERE host = "
                           "'brand-new'") == [{"host": "brand-new", "usage": 1.0}]
    assert {"host": "brand-new"} in sql(s, "rf_db", "SELECT * FROM distinct_cache('cpu')")


# ---- the influxdb3 CLI -------------------------------------------------------------------


def test_cli_create_and_delete(srv: WeirServer) -> None:
    now = time.time_ns()
    write_ok(srv, "cli_db", "\n".join(f"cpu,host=h{i},region=r{i % 3} usage={i} {now + i}"
                                      for i in range(30)))
    p = cli(srv, "create", "last_cache", "-d", "cli_db", "-t", "cpu", "--key-columns", "host",
            "--value-columns", "usage", "--count", "2", "--ttl", "1h", "by_host")
    assert p.stdout.startswith("new cache created: ")
    op = json.loads(p.stdout.removeprefix("new cache created: "))["catalog_batch"][
        "Database"]["ops"][0]["CreateLastCache"]
    assert (op["name"], op["count"], op["ttl"]) == ("by_host", 2, 3600)
    p = cli(srv, "create", "last_cache", "-d", "cli_db", "-t", "cpu", "--key-columns", "host",
            "by_host", check=False)
    assert p.returncode != 0
    assert "409 Conflict" in p.stderr and "already exists" in p.stderr
    p = cli(srv, "query", "-d", "cli_db", "--format", "json",
            "SELECT host, usage FROM last_cache('cpu', 'by_host') WHERE host = 'h7'")
    assert json.loads(p.stdout) == [{"host": "h7", "usage": 7.0}]

    p = cli(srv, "create", "distinct_cache", "-d", "cli_db", "-t", "cpu", "--columns",
            "region,host", "--max-cardinality", "20000", "--max-age", "200s", "regions")
    op = json.loads(p.stdout.removeprefix("new cache created: "))["catalog_batch"][
        "Database"]["ops"][0]["CreateDistinctCache"]
    assert (op["cache_name"], op["max_cardinality"], op["max_age_seconds"]) == (
        "regions", 20000, 200)
    p = cli(srv, "query", "-d", "cli_db", "--format", "json",
            "SELECT DISTINCT region FROM distinct_cache('cpu', 'regions') ORDER BY region")
    assert json.loads(p.stdout) == [{"region": "r0"}, {"region": "r1"}, {"region": "r2"}]

    p = cli(srv, "create", "last_cache", "-d", "cli_db", "-t", "cpu", "--key-columns",
            "region", "--count", "20", "by_region")  # no upper bound, as the reference
    p = cli(srv, "query", "-d", "cli_db", "--format", "json",
            "SELECT count(*) AS n FROM last_cache('cpu', 'by_region') WHERE region = 'r0'")
    assert json.loads(p.stdout) == [{"n": 10}]
    cli(srv, "delete", "last_cache", "-d", "cli_db", "-t", "cpu", "by_region")
    p = cli(srv, "delete", "last_cache", "-d", "cli_db", "-t", "cpu", "by_host")
    assert p.stdout.strip() == "last cache deleted successfully"
    p = cli(srv, "delete", "distinct_cache", "-d", "cli_db", "-t", "cpu", "regions")
    assert p.stdout.strip() == "distinct cache deleted successfully"
    p = cli(srv, "delete", "distinct_cache", "-d", "cli_db", "-t", "cpu", "regions",
            check=False)
    assert p.returncode != 0 and "404 Not Found" in p.stderr
    assert sql(srv, "cli_db", "SELECT * FROM system.last_caches") == []


# ---- FlightSQL (prepared statements plan before they run) --------------------------------


def test_functions_over_flightsql(srv: WeirServer) -> None:
    fsql = pytest.importorskip("adbc_driver_flightsql.dbapi")
    now = time.time_ns()
    write_ok(srv, "fsql_db", "\n".join(f"cpu,host=h{i:03d},region=r{i % 4} usage={i} {now + i}"
                                       for i in range(400)))
    assert post(srv, LAST, {"db": "fsql_db", "table": "cpu"}).status_code == 201
    assert post(srv, DISTINCT, {"db": "fsql_db", "table": "cpu",
                                "columns": ["region"]}).status_code == 201
    with fsql.connect(f"grpc://127.0.0.1:{srv.port}", autocommit=True, db_kwargs={
            "adbc.flight.sql.rpc.call_header.database": "fsql_db"}) as conn, \
            conn.cursor() as cur:
        cur.execute("SELECT host, usage FROM last_cache('cpu') WHERE host = $1",
                    parameters=("h123",))
        assert cur.fetch_arrow_table().to_pylist() == [{"host": "h123", "usage": 123.0}]
        cur.execute("SELECT * FROM distinct_cache('cpu')")
        assert cur.fetch_arrow_table().column("region").to_pylist() == ["r0", "r1", "r2", "r3"]


# ---- SHOW TAG VALUES from a distinct-value cache -----------------------------------------


def received_queries(server: WeirServer) -> float:
    """SQL statements storage has received (the metric Core names so)."""
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("influxdb_iox_query_log_phase_entered_total")
               and 'phase="received"' in line)


def tag_values(server: WeirServer, db: str, q: str) -> list[list[str]]:
    r = httpx.get(f"{server.url}/query", params={"db": db, "q": q}, timeout=60)
    assert r.status_code == 200, r.text
    res = r.json()["results"][0]
    assert "error" not in res, res
    return [v for s in res.get("series", []) for v in s["values"]]


def test_show_tag_values_from_a_distinct_cache(srv: WeirServer) -> None:
    data = generate(seed=1214, hosts=200, regions=10, points_per_series=2, tables=(CPU,),
                    span_ns=20 * 60 * NS)
    write_ok(srv, "tv_db", data.lp())
    rows = data.table_rows(CPU)
    hosts = sorted({r.tags["host"] for r in rows})
    in_r3 = sorted({r.tags["host"] for r in rows if r.tags.get("region") == "region-003"})
    queries = {
        "SHOW TAG VALUES FROM cpu WITH KEY = host": [["host", h] for h in hosts],
        "SHOW TAG VALUES FROM cpu WITH KEY = host WHERE region = 'region-003'":
            [["host", h] for h in in_r3],
        "SHOW TAG VALUES FROM cpu WITH KEY IN (region, host) WHERE time > now() - 1h "
        "AND region = 'region-003' LIMIT 3":
            [["host", h] for h in in_r3[:3]] + [["region", "region-003"]],
    }
    before = {q: tag_values(srv, "tv_db", q) for q in queries}  # no cache: from the data
    assert before == queries

    assert post(srv, DISTINCT, {"db": "tv_db", "table": "cpu",
                                "columns": ["region", "host"]}).status_code == 201
    for q, want in queries.items():
        n = received_queries(srv)
        assert tag_values(srv, "tv_db", q) == want, q
        assert received_queries(srv) == n, f"{q}: answered from the data, not the cache"

    # conditions a cache cannot answer go to the data, and agree
    n = received_queries(srv)
    assert tag_values(srv, "tv_db", "SHOW TAG VALUES FROM cpu WITH KEY = host WHERE "
                                    "region =~ /region-00[3]/") == queries[
        "SHOW TAG VALUES FROM cpu WITH KEY = host WHERE region = 'region-003'"]
    assert received_queries(srv) > n

    # a row older than the cache's max_age: only a time range inside max_age stays cached
    write_ok(srv, "tv_db", f"cpu,host=ancient,region=region-003 usage=1 "
                           f"{time.time_ns() - 2 * 86400 * NS}")
    n = received_queries(srv)
    got = tag_values(srv, "tv_db", "SHOW TAG VALUES FROM cpu WITH KEY = host")
    assert got == [["host", h] for h in sorted([*hosts, "ancient"])]
    assert received_queries(srv) > n
    n = received_queries(srv)
    got = tag_values(srv, "tv_db", "SHOW TAG VALUES FROM cpu WITH KEY = host "
                                   "WHERE time > now() - 1h")
    assert got == [["host", h] for h in hosts]
    assert received_queries(srv) == n
