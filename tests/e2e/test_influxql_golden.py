"""InfluxQL against a real server: a golden set of queries over a fixed data set.

Every expected value below was worked out by hand from DATA (the arithmetic is spelled
out in comments), or from the rows the data generator says it wrote (the `gen` cases),
never produced by the code under test. Queries go through the v1 `/query` API (InfluxDB
1.x JSON), so the response shapes are checked at the same time.

Every case runs twice: against the buffer (no snapshot), and against Parquet (a snapshot
after every WAL file, wait until system.parquet_files holds every row, restart). The
answers of the two modes must be the same bytes, in the v1 JSON and in the v3 JSON (which
tells integers from floats), so a storage path that changes a type or an order is caught
even where the hand-worked value would still match.

The data set (T = an hour boundary 4-5 hours before the run, so near-now nanosecond
timestamps that still fall in one gen1 window and are older than `now() - 1h`), written
with the v1 `/write` API in one request:

    cpu  host=a,region=us  usage=10 idle=90i  T+0
    cpu  host=b,region=eu  usage=5  idle=95i  T+30
    cpu  host=a,region=us  usage=20 idle=80i  T+60
    cpu  host=c            usage=40           T+90    (no region, no idle)
    cpu  host=b,region=eu  usage=15 idle=85i  T+120
    cpu  host=a,region=us  usage=30 idle=70i  T+180
    cpu  host=b,region=eu  usage=25 idle=75i  T+240
    mem  host=a  used=1000i free=3000i  T+0
    mem  host=b  used=2000i free=2000i  T+120
    disk host=a,path=/  status="ok" full=false  T+30
    recent host=a v=1i  (now: no timestamp)
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from conftest import WeirServer
from support.datagen import CPU, ESCAPED, Row, generate, rfc3339_ns
from support.persisted import SNAPSHOT_EVERY_FLUSH, wait_persisted, write_ok

_NOW_S = time.time_ns() // 10**9
T = _NOW_S - _NOW_S % 3600 - 4 * 3600  # seconds; the same in both modes
DB = "golden"
GEN_DB = "golden_gen"
NS = 10**9

DATA = f"""cpu,host=a,region=us usage=10,idle=90i {T * NS}
cpu,host=b,region=eu usage=5,idle=95i {(T + 30) * NS}
cpu,host=a,region=us usage=20,idle=80i {(T + 60) * NS}
cpu,host=c usage=40 {(T + 90) * NS}
cpu,host=b,region=eu usage=15,idle=85i {(T + 120) * NS}
cpu,host=a,region=us usage=30,idle=70i {(T + 180) * NS}
cpu,host=b,region=eu usage=25,idle=75i {(T + 240) * NS}
mem,host=a used=1000i,free=3000i {T * NS}
mem,host=b used=2000i,free=2000i {(T + 120) * NS}
disk,host=a,path=/ status="ok",full=false {(T + 30) * NS}
recent,host=a v=1i
"""
DATA_ROWS = {"cpu": 7, "mem": 2, "disk": 1, "recent": 1}

USAGE = [10, 5, 20, 40, 15, 30, 25]  # in time order

# Production-shaped rows for the `gen` cases: 12 cpu series and 5 escaped ones, near-now
# nanosecond times over 20 minutes (two or three gen1 windows), every field type,
# integers beyond 2^53, rows at and 1 ns before a window boundary.
GEN = generate(seed=16, hosts=4, regions=3, points_per_series=20, span_ns=20 * 60 * NS,
               escaped_series=5, boundary_rows=True, now_ns=time.time_ns())


# Integers beyond 2^53 (B = 2^60), where any trip through float64 shows, at near-now
# times with a nanosecond part. `lin` has two points 2 us apart whose linear fill needs an
# integer slope: (2^62 + 2001) / 2000 as a float rounds up to ...695, Go's integer
# division gives ...694.
BIG_DB = "golden_big"
B = 2**60
BIG_I = [B + 1, B + 3, B + 8, B + 2]
BIG_U = [2**64 - 5, 2**64 - 1, 2**63 + 1, 2**64 - 3]
BIG_T0 = (T + 720) * NS + 7  # +0, +2m, +4m, +6m from a 4-minute boundary
LIN_T0 = (T + 1800) * NS
BIG_DATA = "\n".join(
    [f"big,h=a i={i}i,u={u}u {BIG_T0 + k * 120 * NS}"
     for k, (i, u) in enumerate(zip(BIG_I, BIG_U, strict=True))]
    + [f"lin,h=a j=0i {LIN_T0}", f"lin,h=a j={2**62 + 2001}i {LIN_T0 + 2000}"])
BIG_ROWS = {"big": 4, "lin": 2}


def ts(offset_s: int) -> str:
    """T + offset as the v1 API prints it."""
    t = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=T + offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def at(offset_s: int) -> str:
    """T + offset as an InfluxQL time literal."""
    return f"'{ts(offset_s)}'"


@pytest.fixture(scope="module", params=["buffer", "parquet"])
def srv(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> WeirServer:
    mode = request.param
    s = WeirServer(Path(tmp_path_factory.mktemp(f"golden-{mode}")) / "data",
                   extra_args=SNAPSHOT_EVERY_FLUSH if mode == "parquet"
                   else ["--wal-flush-interval", "10ms"])
    s.start()
    # one request per database: with a snapshot per WAL file, a file flushed while the
    # previous snapshot runs waits for the next flush, so wait for each before the next
    r = httpx.post(f"{s.url}/write", params={"db": DB}, content=DATA.encode(), timeout=30)
    assert r.status_code == 204, r.text
    if mode == "parquet":
        wait_persisted(s, DB, DATA_ROWS)
    write_ok(s, BIG_DB, BIG_DATA)
    if mode == "parquet":
        wait_persisted(s, BIG_DB, BIG_ROWS)
    write_ok(s, GEN_DB, GEN.lp())
    if mode == "parquet":
        wait_persisted(s, GEN_DB, {t: len(GEN.table_rows(t)) for t in (CPU, ESCAPED)})
        s.restart()  # nothing left in the buffer: every answer comes from Parquet
    s.mode = mode  # type: ignore[attr-defined]
    yield s
    s.stop()


# (query, params) -> (mode, v1 body, v3 body) of the first mode that asked it
_ANSWERS: dict[tuple, tuple[str, str, str]] = {}


def _same_in_both_modes(srv: WeirServer, db: str, q: str, params: dict, v1_body: str
                        ) -> None:
    if "now()" in q:  # each mode wrote `recent` at its own now
        return
    r = httpx.get(f"{srv.url}/api/v3/query_influxql",
                  params={"db": db, "q": q, "format": "json"}, timeout=30)
    v3_body = f"{r.status_code} {r.text}"
    key = (db, q, tuple(sorted(params.items())))
    mode = srv.mode  # type: ignore[attr-defined]
    first = _ANSWERS.setdefault(key, (mode, v1_body, v3_body))
    if first[0] != mode:
        assert (v1_body, v3_body) == first[1:], (
            f"{q!r} answers differently from {mode} than from {first[0]}:\n"
            f"v1 {first[0]}: {first[1][:2000]}\nv1 {mode}: {v1_body[:2000]}\n"
            f"v3 {first[0]}: {first[2][:2000]}\nv3 {mode}: {v3_body[:2000]}")


def q1(srv: WeirServer, q: str, db: str = DB, **params: str) -> dict:
    r = httpx.get(f"{srv.url}/query", params={"db": db, "q": q, **params}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    _same_in_both_modes(srv, db, q, params, r.text)
    return r.json()


def series(srv: WeirServer, q: str, **params: str) -> list[dict]:
    res = q1(srv, q, **params)["results"]
    assert len(res) == 1, res
    assert "error" not in res[0], res[0]
    return res[0].get("series", [])


def one(srv: WeirServer, q: str, **params: str) -> dict:
    s = series(srv, q, **params)
    assert len(s) == 1, s
    return s[0]


def error_of(srv: WeirServer, q: str) -> str:
    res = q1(srv, q)["results"][0]
    assert "series" not in res
    return res["error"]


# ---- raw selects -------------------------------------------------------------------------


def test_raw_field_projection(srv: WeirServer) -> None:
    s = one(srv, "SELECT usage FROM cpu")
    assert s == {"name": "cpu", "columns": ["time", "usage"], "values": [
        [ts(0), 10], [ts(30), 5], [ts(60), 20], [ts(90), 40], [ts(120), 15], [ts(180), 30],
        [ts(240), 25]]}


def test_select_star_sorts_columns_and_shows_missing_as_null(srv: WeirServer) -> None:
    s = one(srv, "SELECT * FROM cpu WHERE host = 'c'")
    assert s["columns"] == ["time", "host", "idle", "region", "usage"]
    assert s["values"] == [[ts(90), "c", None, None, 40]]


def test_field_and_tag_projection(srv: WeirServer) -> None:
    s = one(srv, f"SELECT usage, host FROM cpu WHERE time >= {at(180)}")
    assert s["columns"] == ["time", "usage", "host"]
    assert s["values"] == [[ts(180), 30, "a"], [ts(240), 25, "b"]]


def test_string_and_boolean_fields(srv: WeirServer) -> None:
    s = one(srv, "SELECT * FROM disk")
    assert s["columns"] == ["time", "full", "host", "path", "status"]
    assert s["values"] == [[ts(30), False, "a", "/", "ok"]]


def test_integer_fields_stay_integers(srv: WeirServer) -> None:
    s = one(srv, "SELECT used, free FROM mem")
    assert s["values"] == [[ts(0), 1000, 3000], [ts(120), 2000, 2000]]


@pytest.mark.parametrize("where,expected", [
    ("host = 'a'", [0, 60, 180]),
    ("host != 'a'", [30, 90, 120, 240]),  # includes c
    ("host =~ /^(a|c)$/", [0, 60, 90, 180]),
    ("host !~ /a|b/", [90]),
    ("region = ''", [90]),  # c has no region: a missing tag equals ''
    ("region != 'us'", [30, 90, 120, 240]),
    ("usage > 20", [90, 180, 240]),
    ("usage >= 20 AND usage <= 30", [60, 180, 240]),
    ("idle < 80", [180, 240]),  # c has no idle: never matches
    ("usage > nosuch", []),  # a name that is nothing, beside a field: a missing field
    ("usage < nosuch", []),
    ("nosuch != 5", []),
    ("nosuch = ''", [0, 30, 60, 90, 120, 180, 240]),  # ... beside a string: a missing tag
    ("host = 'a' OR usage < 10", [0, 30, 60, 180]),
    ("(host = 'a' OR host = 'b') AND usage > 12", [60, 120, 180, 240]),
    (f"time >= {at(60)} AND time < {at(180)}", [60, 90, 120]),
    (f"time > {(T + 120) * 10**9}", [180, 240]),  # integer: ns since the epoch
    (f"time <= {at(0)} + 30s", [0, 30]),
    ("time > now() - 1h", []),  # the data is 4 to 5 hours old
])
def test_where(srv: WeirServer, where: str, expected: list[int]) -> None:
    s = series(srv, f"SELECT usage FROM cpu WHERE {where}")
    got = s[0]["values"] if s else []
    assert [r[0] for r in got] == [ts(x) for x in expected]


def test_now_relative_time(srv: WeirServer) -> None:
    assert one(srv, "SELECT count(v) FROM recent WHERE time > now() - 1h")["values"][0][1] == 1
    assert series(srv, "SELECT count(v) FROM recent WHERE time < now() - 1h") == []


def test_order_by_time_desc_limit(srv: WeirServer) -> None:
    s = one(srv, "SELECT usage FROM cpu ORDER BY time DESC LIMIT 2")
    assert s["values"] == [[ts(240), 25], [ts(180), 30]]


def test_limit_offset_per_series(srv: WeirServer) -> None:
    # the second point of each host; c has only one point, so no series for c
    s = series(srv, "SELECT usage FROM cpu GROUP BY host LIMIT 1 OFFSET 1")
    assert s == [
        {"name": "cpu", "tags": {"host": "a"}, "columns": ["time", "usage"],
         "values": [[ts(60), 20]]},
        {"name": "cpu", "tags": {"host": "b"}, "columns": ["time", "usage"],
         "values": [[ts(120), 15]]},
    ]


def test_slimit_soffset(srv: WeirServer) -> None:
    s = series(srv, "SELECT usage FROM cpu GROUP BY host SLIMIT 2")
    assert [x["tags"] for x in s] == [{"host": "a"}, {"host": "b"}]
    s = series(srv, "SELECT usage FROM cpu GROUP BY host SLIMIT 1 SOFFSET 1")
    assert [x["tags"] for x in s] == [{"host": "b"}]
    assert s[0]["values"] == [[ts(30), 5], [ts(120), 15], [ts(240), 25]]


# ---- aggregates --------------------------------------------------------------------------


def test_aggregates_over_everything(srv: WeirServer) -> None:
    s = one(srv, "SELECT count(usage), sum(usage), mean(usage), median(usage), min(usage), "
                 "max(usage), spread(usage), first(usage), last(usage), stddev(usage) "
                 "FROM cpu")
    assert s["columns"] == ["time", "count", "sum", "mean", "median", "min", "max", "spread",
                            "first", "last", "stddev"]
    [row] = s["values"]
    # no time range: aggregates are stamped with the epoch
    assert row[0] == "1970-01-01T00:00:00Z"
    assert row[1] == 7
    assert row[2] == 145  # 10+5+20+40+15+30+25
    assert row[3] == pytest.approx(145 / 7)
    assert row[4] == 20  # sorted 5 10 15 [20] 25 30 40
    assert row[5:10] == [5, 40, 35, 10, 25]  # min, max, max-min, first, last in time
    assert row[10] == pytest.approx(statistics.stdev(USAGE))  # sample deviation


def test_aggregate_time_is_the_range_start(srv: WeirServer) -> None:
    s = one(srv, f"SELECT mean(usage) FROM cpu WHERE time >= {at(60)} "
                 f"AND time <= {at(180)}")
    assert s["values"] == [[ts(60), 26.25]]  # (20+40+15+30)/4


def test_lone_selector_returns_the_points_time(srv: WeirServer) -> None:
    assert one(srv, "SELECT max(usage) FROM cpu")["values"] == [[ts(90), 40]]
    assert one(srv, "SELECT min(usage) FROM cpu")["values"] == [[ts(30), 5]]
    assert one(srv, "SELECT first(usage) FROM cpu")["values"] == [[ts(0), 10]]
    assert one(srv, "SELECT last(usage) FROM cpu")["values"] == [[ts(240), 25]]
    # and other columns come from that point
    s = one(srv, "SELECT max(usage), host FROM cpu")
    assert s["columns"] == ["time", "max", "host"]
    assert s["values"] == [[ts(90), 40, "c"]]


def test_percentile_is_nearest_rank(srv: WeirServer) -> None:
    # n = 7: rank = floor(n * p / 100 + 0.5); sorted 5 10 15 20 25 30 40
    assert one(srv, "SELECT percentile(usage, 50) FROM cpu")["values"] == [[ts(60), 20]]  # 4th
    assert one(srv, "SELECT percentile(usage, 90) FROM cpu")["values"] == [[ts(180), 30]]  # 6th
    assert one(srv, "SELECT percentile(usage, 100) FROM cpu")["values"] == [[ts(90), 40]]
    # with another aggregate the time is the range start again
    s = one(srv, "SELECT percentile(usage, 10), count(usage) FROM cpu")  # floor(1.2) = 1st
    assert s["values"] == [["1970-01-01T00:00:00Z", 5, 7]]


def test_group_by_tag(srv: WeirServer) -> None:
    s = series(srv, "SELECT mean(usage) FROM cpu GROUP BY host")
    assert [(x["tags"], x["values"]) for x in s] == [
        ({"host": "a"}, [["1970-01-01T00:00:00Z", 20]]),  # (10+20+30)/3
        ({"host": "b"}, [["1970-01-01T00:00:00Z", 15]]),  # (5+15+25)/3
        ({"host": "c"}, [["1970-01-01T00:00:00Z", 40]]),
    ]
    assert all(x["columns"] == ["time", "mean"] for x in s)


def test_group_by_tag_missing_is_empty_string(srv: WeirServer) -> None:
    # the series without the tag comes last, as in the reference (NULLS LAST)
    s = series(srv, "SELECT sum(usage) FROM cpu GROUP BY region")
    assert [(x["tags"], x["values"][0][1]) for x in s] == [
        ({"region": "eu"}, 45), ({"region": "us"}, 60), ({"region": ""}, 40)]


def test_group_by_star(srv: WeirServer) -> None:
    s = series(srv, "SELECT count(usage) FROM cpu GROUP BY *")
    assert [(x["tags"], x["values"][0][1]) for x in s] == [
        ({"host": "a", "region": "us"}, 3), ({"host": "b", "region": "eu"}, 3),
        ({"host": "c", "region": ""}, 1)]


# GROUP BY time over host a only: points at +0 (10), +60 (20), +180 (30); the range
# [T, T+5m) has 1-minute buckets +0 +60 +120 +180 +240, of which +120 and +240 are empty.
A_RANGE = (f"FROM cpu WHERE host = 'a' AND time >= {at(0)} "
           f"AND time < {at(300)} GROUP BY time(1m)")


@pytest.mark.parametrize("fill,expected", [
    ("", [10, 20, None, 30, None]),
    ("fill(null)", [10, 20, None, 30, None]),
    ("fill(previous)", [10, 20, 20, 30, 30]),
    ("fill(linear)", [10, 20, 25, 30, None]),  # no later point after +180 to reach
    ("fill(0)", [10, 20, 0, 30, 0]),
    ("fill(-1.5)", [10, 20, -1.5, 30, -1.5]),
])
def test_group_by_time_fill(srv: WeirServer, fill: str, expected: list) -> None:
    s = one(srv, f"SELECT mean(usage) {A_RANGE} {fill}")
    assert s["values"] == [[ts(60 * i), v] for i, v in enumerate(expected)]


def test_group_by_time_fill_none(srv: WeirServer) -> None:
    s = one(srv, f"SELECT mean(usage) {A_RANGE} fill(none)")
    assert s["values"] == [[ts(0), 10], [ts(60), 20], [ts(180), 30]]


def test_count_fills_empty_buckets_with_zero(srv: WeirServer) -> None:
    s = one(srv, f"SELECT count(usage) {A_RANGE}")
    assert [r[1] for r in s["values"]] == [1, 1, 0, 1, 0]


def test_group_by_time_desc_and_limit(srv: WeirServer) -> None:
    s = one(srv, f"SELECT mean(usage) {A_RANGE} fill(previous) ORDER BY time DESC LIMIT 3")
    assert s["values"] == [[ts(240), 30], [ts(180), 30], [ts(120), 20]]


def test_group_by_time_and_tag(srv: WeirServer) -> None:
    # 2-minute buckets over [T, T+4m): +0 and +120
    s = series(srv, f"SELECT max(usage) FROM cpu WHERE time >= {at(0)} AND "
                    f"time < {at(240)} GROUP BY time(2m), host")
    assert [(x["tags"]["host"], x["values"]) for x in s] == [
        ("a", [[ts(0), 20], [ts(120), 30]]),   # a: 10, 20 | 30
        ("b", [[ts(0), 5], [ts(120), 15]]),    # b: 5 | 15 (25 is at +240, outside)
        ("c", [[ts(0), 40], [ts(120), None]]),  # c: 40 | nothing
    ]


def test_group_by_time_with_offset(srv: WeirServer) -> None:
    # time(2m, 1m): buckets start at odd minutes: [-1m,+1m) [+1m,+3m) [+3m,+5m)
    s = one(srv, f"SELECT count(usage) FROM cpu WHERE time >= {at(0)} AND "
                 f"time < {at(240)} GROUP BY time(2m, 1m)")
    assert s["values"] == [[ts(-60), 2], [ts(60), 3], [ts(180), 1]]  # 0,30 | 60,90,120 | 180


def test_math_on_aggregates_and_aliases(srv: WeirServer) -> None:
    s = one(srv, "SELECT max(usage) - min(usage) AS range, sum(usage) / 5 FROM cpu")
    assert s["columns"] == ["time", "range", "sum"]
    assert s["values"] == [["1970-01-01T00:00:00Z", 35, 29]]  # 40-5, 145/5


def test_duplicate_names_get_suffixes(srv: WeirServer) -> None:
    s = one(srv, "SELECT max(usage), max(idle) FROM cpu")
    assert s["columns"] == ["time", "max", "max_1"]
    assert s["values"][0][1:] == [40, 95]


def test_wildcard_aggregate(srv: WeirServer) -> None:
    s = one(srv, "SELECT count(*) FROM cpu")
    assert s["columns"] == ["time", "count_idle", "count_usage"]
    assert s["values"][0][1:] == [6, 7]


def test_several_measurements(srv: WeirServer) -> None:
    s = series(srv, "SELECT count(used), count(usage) FROM cpu, mem")
    assert [(x["name"], x["values"][0][1:]) for x in s] == [("cpu", [0, 7]), ("mem", [2, 0])]
    s = series(srv, "SELECT * FROM /^(mem|disk)$/")
    assert [x["name"] for x in s] == ["disk", "mem"]


# ---- transformations --------------------------------------------------------------------


def test_derivative_of_raw_points(srv: WeirServer) -> None:
    # host a: (0, 10) (60, 20) (180, 30); per second by default
    s = one(srv, "SELECT derivative(usage) FROM cpu WHERE host = 'a'")
    assert s["columns"] == ["time", "derivative"]
    assert [r[0] for r in s["values"]] == [ts(60), ts(180)]
    assert [r[1] for r in s["values"]] == [pytest.approx(10 / 60), pytest.approx(10 / 120)]


def test_non_negative_derivative_per_series_with_unit(srv: WeirServer) -> None:
    s = series(srv, "SELECT non_negative_derivative(usage, 1m) FROM cpu GROUP BY host")
    got = {x["tags"]["host"]: x["values"] for x in s}
    assert got["a"] == [[ts(60), 10], [ts(180), 5]]  # 10 per 60s, 10 per 120s
    assert got["b"][0] == [ts(120), pytest.approx(10 * 60 / 90)]  # 5 -> 15 over 90s
    assert got["b"][1] == [ts(240), 5]  # 15 -> 25 over 120s
    assert "c" not in got  # a single point has no derivative


def test_derivative_of_an_aggregate_uses_the_interval(srv: WeirServer) -> None:
    # means 10 @0, 20 @60, 30 @180 (fill(none)); the unit defaults to GROUP BY's 1m
    s = one(srv, f"SELECT derivative(mean(usage)) {A_RANGE} fill(none)")
    assert s["values"] == [[ts(60), 10], [ts(180), 5]]


def test_difference_and_non_negative_difference(srv: WeirServer) -> None:
    s = one(srv, f"SELECT difference(max(usage)) {A_RANGE}")  # 10, 20, -, 30, -
    assert s["values"] == [[ts(60), 10], [ts(180), 10]]
    # all points in time order: 10 5 20 40 15 30 25 -> +15 @60, +20 @90, +15 @180
    s = one(srv, "SELECT non_negative_difference(usage) FROM cpu")
    assert s["values"] == [[ts(60), 15], [ts(90), 20], [ts(180), 15]]


def test_cumulative_sum_and_moving_average(srv: WeirServer) -> None:
    s = one(srv, "SELECT cumulative_sum(usage) FROM cpu WHERE host = 'b'")
    assert s["values"] == [[ts(30), 5], [ts(120), 20], [ts(240), 45]]
    s = one(srv, "SELECT moving_average(usage, 3) FROM cpu WHERE host = 'a'")
    assert s["values"] == [[ts(180), 20]]  # (10+20+30)/3


# ---- production-shaped data: expectations from the generator's rows ---------------------

GEN_CPU = GEN.table_rows(CPU)
GEN_ESC = GEN.table_rows(ESCAPED)
EPOCH = "1970-01-01T00:00:00Z"


def _series_key(r: Row) -> tuple[str, str]:
    return (r.tags["host"], r.tags.get("region", ""))


def test_gen_raw_points_of_one_series(srv: WeirServer) -> None:
    rows = [r for r in GEN_CPU if _series_key(r) == ("host-00001", "region-001")]
    s = one(srv, "SELECT * FROM cpu WHERE host = 'host-00001' AND region = 'region-001'",
            db=GEN_DB)
    cols = ["time", "cores", "healthy", "host", "region", "state", "uptime", "usage"]
    assert s["columns"] == cols
    assert s["values"] == [[rfc3339_ns(r.time), *(r.get(c) for c in cols[1:])]
                           for r in sorted(rows, key=lambda r: r.time)], GEN.describe()


def test_gen_count_per_series(srv: WeirServer) -> None:
    want = Counter(_series_key(r) for r in GEN_CPU if "usage" in r.fields)
    s = series(srv, "SELECT count(usage) FROM cpu GROUP BY host, region", db=GEN_DB)
    got = {(x["tags"]["host"], x["tags"]["region"]): x["values"] for x in s}
    assert got == {k: [[EPOCH, n]] for k, n in want.items()}, GEN.describe()
    # a missing tag ("") sorts after every value, as in the reference (NULLS LAST)
    assert [(x["tags"]["host"], x["tags"]["region"]) for x in s] == sorted(
        want, key=lambda k: [(v == "", v) for v in k])


def test_gen_big_integer_selectors_per_series(srv: WeirServer) -> None:
    # integers beyond 2^53 (up to 2^63-1 and 2^64-1) come back exact, never via float64
    s = series(srv, "SELECT max(cores), min(cores), max(uptime), min(uptime), count(cores) "
                    "FROM cpu GROUP BY *", db=GEN_DB)
    got = {(x["tags"]["host"], x["tags"]["region"]): x["values"][0][1:] for x in s}
    want = {}
    for key in {_series_key(r) for r in GEN_CPU}:
        rows = [r for r in GEN_CPU if _series_key(r) == key]
        cores = [r.fields["cores"] for r in rows if "cores" in r.fields]
        up = [r.fields["uptime"] for r in rows if "uptime" in r.fields]
        want[key] = [max(cores), min(cores), max(up) if up else None,
                     min(up) if up else None, len(cores)]
    assert got == want, GEN.describe()


def test_gen_first_and_last_per_series(srv: WeirServer) -> None:
    s = series(srv, "SELECT first(cores), last(cores) FROM cpu GROUP BY host, region",
               db=GEN_DB)
    got = {(x["tags"]["host"], x["tags"]["region"]): x["values"][0][1:] for x in s}
    want = {}
    for key in {_series_key(r) for r in GEN_CPU}:
        rows = sorted((r for r in GEN_CPU if _series_key(r) == key), key=lambda r: r.time)
        want[key] = [rows[0].fields["cores"], rows[-1].fields["cores"]]
    assert got == want, GEN.describe()


def test_gen_group_by_time_counts(srv: WeirServer) -> None:
    minute = 60 * NS
    lo = min(r.time for r in GEN_CPU) // minute * minute
    hi = (max(r.time for r in GEN_CPU) // minute + 1) * minute
    per_bucket = Counter(r.time - r.time % minute for r in GEN_CPU)
    s = one(srv, f"SELECT count(cores) FROM cpu WHERE time >= {lo} AND time < {hi} "
                 "GROUP BY time(1m)", db=GEN_DB)
    assert s["values"] == [[rfc3339_ns(b), per_bucket.get(b, 0)]
                           for b in range(lo, hi, minute)], GEN.describe()


def test_gen_rows_at_and_before_a_window_boundary(srv: WeirServer) -> None:
    [b] = GEN.boundaries
    edge = [r for r in GEN_CPU if r.time in (b - 1, b)]
    assert {r.time for r in edge} == {b - 1, b}
    s = one(srv, f"SELECT count(cores) FROM cpu WHERE time >= {b - 1} AND time <= {b} "
                 "GROUP BY time(10m) fill(none)", db=GEN_DB)
    # b - 1 is the last nanosecond of the previous 10m bucket, b the first of its own
    assert s["values"] == [
        [rfc3339_ns(b - 600 * NS), sum(r.time == b - 1 for r in edge)],
        [rfc3339_ns(b), sum(r.time == b for r in edge)]]
    s = one(srv, f"SELECT cores, host FROM cpu WHERE time = {b - 1}", db=GEN_DB)
    # the order of points at one time is not InfluxQL's to promise: compare sorted
    assert sorted(s["values"]) == sorted([rfc3339_ns(b - 1), r.fields["cores"], r.tags["host"]]
                                         for r in edge if r.time == b - 1)


def test_gen_escaped_names(srv: WeirServer) -> None:
    want = Counter(r.tags["mount,point"] for r in GEN_ESC if "used bytes" in r.fields)
    s = series(srv, 'SELECT count("used bytes") FROM "disk io,x" GROUP BY "mount,point"',
               db=GEN_DB)
    assert {x["tags"]["mount,point"]: x["values"][0][1] for x in s} == dict(want)
    assert all(x["name"] == "disk io,x" for x in s)
    s = one(srv, 'SHOW TAG VALUES FROM "disk io,x" WITH KEY = "host name"', db=GEN_DB)
    assert s["values"] == [["host name", v]
                           for v in sorted({r.tags["host name"] for r in GEN_ESC})]
    s = one(srv, 'SHOW FIELD KEYS FROM "disk io,x"', db=GEN_DB)
    assert s["values"] == [["free,u", "unsigned"], ["note", "string"], ["ratio=pct", "float"],
                           ["ro flag", "boolean"], ["used bytes", "integer"]]


def test_gen_strings_with_quotes_and_backslashes(srv: WeirServer) -> None:
    rows = sorted((r for r in GEN_ESC if r.tags["host name"] == "h 1" and "note" in r.fields),
                  key=lambda r: (r.time, r.tags["mount,point"]))
    s = one(srv, 'SELECT note, "mount,point" FROM "disk io,x" WHERE "host name" = \'h 1\'',
            db=GEN_DB)
    assert s["values"] == [[rfc3339_ns(r.time), r.fields["note"], r.tags["mount,point"]]
                           for r in rows]
    assert any('"' in r.fields["note"] or "\\" in r.fields["note"] for r in GEN_ESC)


# ---- integers beyond 2^53 ----------------------------------------------------------------


def test_big_integer_aggregates(srv: WeirServer) -> None:
    s = one(srv, "SELECT min(i), max(i), first(i), last(i), sum(i), spread(i), "
                 "percentile(i, 50), count(i) FROM big", db=BIG_DB)
    assert s["values"] == [[EPOCH, B + 1, B + 8, B + 1, B + 2, sum(BIG_I), 7, B + 2, 4]]
    s = one(srv, "SELECT min(u), max(u), first(u), last(u), spread(u) FROM big", db=BIG_DB)
    assert s["values"] == [[EPOCH, 2**63 + 1, 2**64 - 1, 2**64 - 5, 2**64 - 3, 2**63 - 2]]


def test_stddev_and_mean_of_big_integers(srv: WeirServer) -> None:
    # cast to float64 first, B+1 and B+3 are the same number and every deviation is 0
    s = one(srv, "SELECT stddev(i), stddev(u), mean(i) FROM big", db=BIG_DB)
    [[_t, sd_i, sd_u, mean]] = s["values"]
    assert sd_i == pytest.approx(statistics.stdev(BIG_I), rel=1e-12)  # sqrt(29/3)
    assert sd_u == pytest.approx(statistics.stdev(BIG_U), rel=1e-12)
    assert mean == sum(BIG_I) / 4  # the nearest double to B + 3.5
    # per GROUP BY time bucket: B+1, B+3 | B+8, B+2
    s = one(srv, f"SELECT stddev(i) FROM big WHERE time >= {BIG_T0 - 7} AND "
                 f"time < {BIG_T0 - 7 + 480 * NS} GROUP BY time(4m)", db=BIG_DB)
    assert [v[1] for v in s["values"]] == [pytest.approx(2**0.5, rel=1e-12),
                                           pytest.approx(18**0.5, rel=1e-12)]


def test_transformations_of_big_integers(srv: WeirServer) -> None:
    s = one(srv, "SELECT derivative(i, 1m), difference(i), cumulative_sum(i) FROM big",
            db=BIG_DB)
    times = [rfc3339_ns(BIG_T0 + k * 120 * NS) for k in range(4)]
    # a derivative of integers is a float (it was truncated to an integer: 2, 5, -6 -> 1, 2, -3)
    assert s["values"] == [
        [times[0], None, None, B + 1],
        [times[1], 1.0, 2, 2 * B + 4],
        [times[2], 2.5, 5, 3 * B + 12],
        [times[3], -3.0, -6, 4 * B + 14]]
    s = one(srv, "SELECT derivative(i) FROM big", db=BIG_DB)  # per second: 2/120 ...
    assert [v[1] for v in s["values"]] == [2 / 120, 5 / 120, -6 / 120]
    # the difference of unsigned integers is exact and signed (it was a server error)
    s = one(srv, "SELECT difference(u), non_negative_difference(u) FROM big", db=BIG_DB)
    assert s["values"] == [[times[1], 4, 4], [times[2], -(2**63 - 2), None],
                           [times[3], 2**63 - 4, 2**63 - 4]]


def test_linear_fill_of_big_integers_uses_an_integer_slope(srv: WeirServer) -> None:
    s = one(srv, f"SELECT max(j) FROM lin WHERE time >= {LIN_T0} AND time < {LIN_T0 + 3000} "
                 "GROUP BY time(1u) fill(linear)", db=BIG_DB)
    slope = (2**62 + 2001) // 2000  # per ns, truncated as Go's integer division
    assert s["values"] == [[rfc3339_ns(LIN_T0), 0],
                           [rfc3339_ns(LIN_T0 + 1000), slope * 1000],
                           [rfc3339_ns(LIN_T0 + 2000), 2**62 + 2001]]


# ---- SHOW --------------------------------------------------------------------------------


def test_show_measurements(srv: WeirServer) -> None:
    assert one(srv, "SHOW MEASUREMENTS") == {
        "name": "measurements", "columns": ["name"],
        "values": [["cpu"], ["disk"], ["mem"], ["recent"]]}
    assert one(srv, "SHOW MEASUREMENTS WITH MEASUREMENT =~ /^m/")["values"] == [["mem"]]
    assert one(srv, "SHOW MEASUREMENTS WHERE host = 'b'")["values"] == [["cpu"], ["mem"]]


def test_show_tag_keys(srv: WeirServer) -> None:
    s = series(srv, "SHOW TAG KEYS")
    assert [(x["name"], x["values"]) for x in s] == [
        ("cpu", [["host"], ["region"]]), ("disk", [["host"], ["path"]]), ("mem", [["host"]]),
        ("recent", [["host"]])]
    assert s[0]["columns"] == ["tagKey"]
    assert one(srv, "SHOW TAG KEYS FROM cpu WHERE host = 'c'")["values"] == [["host"]]


def test_show_tag_values(srv: WeirServer) -> None:
    s = one(srv, "SHOW TAG VALUES FROM cpu WITH KEY = host")
    assert s == {"name": "cpu", "columns": ["key", "value"],
                 "values": [["host", "a"], ["host", "b"], ["host", "c"]]}
    s = one(srv, "SHOW TAG VALUES FROM cpu WITH KEY IN (region) WHERE usage > 20")
    assert s["values"] == [["region", "eu"], ["region", "us"]]  # b has 25, a has 30
    s = one(srv, "SHOW TAG VALUES FROM cpu WITH KEY =~ /reg/ LIMIT 1")
    assert s["values"] == [["region", "eu"]]


def test_show_field_keys(srv: WeirServer) -> None:
    s = series(srv, "SHOW FIELD KEYS FROM cpu, disk")
    assert [(x["name"], x["columns"], x["values"]) for x in s] == [
        ("cpu", ["fieldKey", "fieldType"], [["idle", "integer"], ["usage", "float"]]),
        ("disk", ["fieldKey", "fieldType"], [["full", "boolean"], ["status", "string"]]),
    ]


def test_show_databases_and_retention_policies(srv: WeirServer) -> None:
    s = one(srv, "SHOW DATABASES")
    assert s["name"] == "databases" and s["columns"] == ["name"]
    assert [DB] in s["values"]
    # the reference's v1 answer: one policy per database, named after the database
    s = one(srv, "SHOW RETENTION POLICIES")
    assert s["columns"] == ["name", "duration", "default"]
    assert s["values"] == [[DB, "0s", True]]


# ---- errors: named, never a wrong answer ----------------------------------------------------


@pytest.mark.parametrize("q,needle", [
    ("SHOW SERIES", "SHOW SERIES"),
    ("DROP MEASUREMENT cpu", "This feature is not implemented: DROP MEASUREMENT"),
    ("DELETE FROM cpu", "This feature is not implemented: DELETE"),
    ("CREATE DATABASE x", "This feature is not implemented: CREATE DATABASE"),
    ("SELECT elapsed(usage) FROM cpu", "elapsed()"),
    ("SELECT derivative(usage), usage FROM cpu", "mixing transformation functions"),
    ("SELECT derivative(mean(usage)) FROM cpu", "GROUP BY interval"),
    ("SELECT * FROM (SELECT usage FROM cpu)", "subquery"),
    ("SELECT usage INTO other FROM cpu", "SELECT INTO"),
    ("SELECT usage FROM cpu TZ('Europe/Paris')", "TZ()"),
    ("SELECT mean(usage), host FROM cpu", "mixing aggregate and non-aggregate"),
    ("SELECT usage FROM cpu GROUP BY time(1m)", "aggregate function"),
    ("SELECT mean(status) FROM disk", "mean"),
    ("SELECT usage FROM cpu WHERE time > now() - 1h OR host = 'a'", "time"),
    ("SELEC usage FROM cpu", "error in InfluxQL statement: parsing error: invalid InfluxQL "
     "statement at pos 0"),
])
def test_unsupported_and_invalid_statements(srv: WeirServer, q: str, needle: str) -> None:
    assert needle in error_of(srv, q)
