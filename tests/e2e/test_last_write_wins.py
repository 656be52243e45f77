"""Last write wins, end to end: a point is (table, tag set, time); a later acknowledged
write replaces the fields it names and keeps the others, wherever the copies sit (one
body, the buffer, Parquet from one or more snapshots) and across restarts and kill -9.

Servers snapshot every 4 WAL files (`force_snapshot` writes marker rows until one has
happened), so a write made right after a snapshot sits in the buffer when it is queried.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from support.storage_helpers import (
    LwwModel,
    assert_matches_model,
    kill9_and_start,
    near_now,
    parquet_files,
    server_rows,
    snapshot_now,
    wait_for,
    write_ok,
)

# every test on the file store and on S3 (issue #13)
pytestmark = [pytest.mark.both_stores, pytest.mark.usefixtures("store_kind")]

FLAGS = ["--wal-flush-interval", "10ms", "--wal-snapshot-size", "4", "--gen1-duration", "1m"]
DB = "lww"


@pytest.fixture
def s(server_factory):  # type: ignore[no-untyped-def]
    return server_factory(extra_args=FLAGS).start()


def force_snapshot(server, db: str = DB) -> None:  # type: ignore[no-untyped-def]
    snapshot_now(server, db)


def points_at(server, t: int, table: str = "m", db: str = DB) -> list[dict]:  # type: ignore[no-untyped-def]
    return [r for r in server_rows(server, db, table) if r["time"] == t]


# --- the rule itself ---------------------------------------------------------------------

def test_three_writes_are_one_point(s):  # type: ignore[no-untyped-def]
    t = near_now(5)
    write_ok(s, DB, f"m,h=x v=1 {t}")
    write_ok(s, DB, f"m,h=x v=2 {t}")
    write_ok(s, DB, f"m,h=x w=3 {t}")
    assert server_rows(s, DB, "m") == [{"h": "x", "v": 2.0, "w": 3.0, "time": t}]
    # the same rule for many series at once, in three bodies
    model = LwwModel()
    base = near_now(60)
    bodies: list[list[str]] = [[], [], []]
    for i in range(500):
        ts = base - (i % 7) * 1_000_000_000
        tags = {"host": f"h{i:04d}", "region": f"r{i % 3}"}
        bodies[0].append(model.write("many", tags, {"v": float(i), "s": f"a{i}"}, ts))
        bodies[1].append(model.write("many", tags, {"v": float(-i)}, ts))
        bodies[2].append(model.write("many", tags, {"n": i}, ts))
    for body in bodies:
        write_ok(s, DB, "\n".join(body))
    assert_matches_model(s, DB, model, "three bodies over 500 series")


def test_later_line_in_one_body_wins(s):  # type: ignore[no-untyped-def]
    t = near_now(3)
    write_ok(s, DB, "\n".join([
        f"m,h=x v=1,s=\"first\" {t}",
        f"m,h=x v=2 {t}",
        f"m,h=x w=3 {t}",
        f"m,h=x v=4 {t}",
        f"m,h=y v=9 {t}",
        f"m,h=y v=9 {t}",  # an exact repeat is still one point
    ]))
    assert server_rows(s, DB, "m") == [
        {"h": "x", "s": "first", "v": 4.0, "w": 3.0, "time": t},
        {"h": "y", "v": 9.0, "time": t},
    ]


def test_overwrite_across_a_snapshot_boundary(s):  # type: ignore[no-untyped-def]
    model = LwwModel()
    base = near_now(30)
    n = 300
    write_ok(s, DB, "\n".join(
        model.write("m", {"h": f"h{i}"}, {"v": 1.0, "s": "parquet"}, base - i) for i in range(n)))
    force_snapshot(s)
    assert sum(f["row_count"] for f in parquet_files(s, DB, "m")) == n, \
        "the first write should be in Parquet before the overwrite"
    # now overwrite every point while the first copies are in Parquet
    write_ok(s, DB, "\n".join(
        model.write("m", {"h": f"h{i}"}, {"v": 2.0}, base - i) for i in range(n)))
    assert_matches_model(s, DB, model, "first write in Parquet, overwrite in the buffer")
    assert s.rows(DB, "SELECT count(*) AS n FROM m") == [{"n": n}]


def test_overwrite_across_two_snapshots(s):  # type: ignore[no-untyped-def]
    t = near_now(10)
    write_ok(s, DB, f"m,h=x v=1,s=\"one\" {t}")
    force_snapshot(s)
    write_ok(s, DB, f"m,h=x v=2 {t}")
    force_snapshot(s)
    assert len(parquet_files(s, DB, "m")) >= 1
    want = {"h": "x", "s": "one", "v": 2.0, "time": t}
    assert points_at(s, t) == [want], "two copies in two snapshots' Parquet"
    write_ok(s, DB, f"m,h=x w=3 {t}")
    want["w"] = 3.0
    assert points_at(s, t) == [want], "two Parquet copies and one in the buffer"
    force_snapshot(s)
    assert points_at(s, t) == [want], "three Parquet copies"
    s.restart()
    assert points_at(s, t) == [want], "after a restart"


def test_overwrite_survives_restart_and_kill9(s):  # type: ignore[no-untyped-def]
    t = near_now(20)
    write_ok(s, DB, f"m,h=x v=1,s=\"a\" {t}")
    force_snapshot(s)
    write_ok(s, DB, f"m,h=x v=2 {t}")  # in the WAL and the buffer only
    s.restart()
    want = {"h": "x", "s": "a", "v": 2.0, "time": t}
    assert points_at(s, t) == [want], "Parquet copy + replayed WAL after SIGTERM"
    write_ok(s, DB, f"m,h=x w=3 {t}")
    write_ok(s, DB, f"m,h=x w=4,s=\"b\" {t}")  # two WAL files: replay keeps their order
    kill9_and_start(s)
    want.update(w=4.0, s="b")
    assert points_at(s, t) == [want], "Parquet copy + two replayed WAL files after kill -9"
    force_snapshot(s)
    write_ok(s, DB, f"m,h=x v=5 {t}")
    kill9_and_start(s)
    want["v"] = 5.0
    assert points_at(s, t) == [want], "after a snapshot of the replayed data and kill -9"
    kill9_and_start(s)
    assert points_at(s, t) == [want], "a second kill -9 with nothing new"


# --- what does not merge -----------------------------------------------------------------

def test_field_type_conflict_is_refused_and_changes_nothing(s):  # type: ignore[no-untyped-def]
    t = near_now(7)
    write_ok(s, DB, f"m,h=x v=1,n=2i {t}")
    for bad in (f'm,h=x v="text" {t}', f"m,h=x v=3i {t}", f'm,h=x w=5,v="text" {t}',
                f"m,h=x n=1.5 {t}"):
        r = s.write(DB, bad)
        assert r.status_code == 400, (bad, r.status_code, r.text)
        assert "v" in r.text or "n" in r.text
    want = [{"h": "x", "n": 2, "v": 1.0, "time": t}]
    assert server_rows(s, DB, "m") == want
    force_snapshot(s)
    r = s.write(DB, f'm,h=x v="text" {t}')
    assert r.status_code == 400, r.text
    s.restart()
    assert server_rows(s, DB, "m") == want


def test_conflicting_line_in_a_body_leaves_the_point_to_the_good_lines(s):  # type: ignore[no-untyped-def]
    t = near_now(7)
    write_ok(s, DB, f"m,h=x v=1 {t}")
    r = s.write(DB, "\n".join([f"m,h=x v=2 {t}", f'm,h=x v="bad",w=7 {t}', f"m,h=x w=4 {t}"]))
    assert r.status_code == 400 and '"line_number":2' in r.text.replace(" ", ""), r.text
    assert server_rows(s, DB, "m") == [{"h": "x", "v": 2.0, "w": 4.0, "time": t}]


def test_different_tag_sets_are_different_points(s):  # type: ignore[no-untyped-def]
    t = near_now(4)
    write_ok(s, DB, "\n".join([
        f"m,h=x v=1 {t}",
        f"m,h=x,r=y v=2 {t}",
        f"m,h=y v=3 {t}",
        f"m,r=y v=4 {t}",
        f"m v=5 {t}",
        f"m,h=x v=6 {t + 1}",  # one nanosecond later
        f"n,h=x v=7 {t}",  # another table
    ]))
    got = server_rows(s, DB, "m")
    assert got == [
        {"h": "x", "r": "y", "v": 2.0, "time": t},
        {"h": "x", "v": 1.0, "time": t},
        {"h": "x", "v": 6.0, "time": t + 1},
        {"h": "y", "v": 3.0, "time": t},
        {"r": "y", "v": 4.0, "time": t},
        {"v": 5.0, "time": t},
    ], got
    assert server_rows(s, DB, "n") == [{"h": "x", "v": 7.0, "time": t}]


def test_series_identity_ignores_tag_order_and_treats_absent_tags_as_null(s):  # type: ignore[no-untyped-def]
    t = near_now(4)
    write_ok(s, DB, f"m,h=x v=1 {t}")  # the table has only tag h here
    force_snapshot(s)  # its Parquet file has no column r at all
    write_ok(s, DB, f"m,h=x,r=y v=2 {t}")  # a new series (r=y), adds column r
    write_ok(s, DB, f"m,r=y,h=x s=\"b\" {t}")  # the same series as the line above
    write_ok(s, DB, f"m,h=x w=3 {t}")  # r absent = null: the first series
    want = [
        {"h": "x", "r": "y", "s": "b", "v": 2.0, "time": t},
        {"h": "x", "v": 1.0, "w": 3.0, "time": t},
    ]
    assert server_rows(s, DB, "m") == want
    kill9_and_start(s)
    assert server_rows(s, DB, "m") == want


def test_aggregates_count_each_point_once(s):  # type: ignore[no-untyped-def]
    base = near_now(120)
    n = 200
    # every point written three times: once persisted, once in a later snapshot, once buffered
    write_ok(s, DB, "\n".join(f"m,h=h{i % 10} v=100 {base - i * 1_000_000}" for i in range(n)))
    force_snapshot(s)
    write_ok(s, DB, "\n".join(f"m,h=h{i % 10} v={i} {base - i * 1_000_000}" for i in range(n)))
    force_snapshot(s)
    write_ok(s, DB, "\n".join(f"m,h=h{i % 10} w=1i {base - i * 1_000_000}" for i in range(n)))
    agg = s.rows(DB, "SELECT count(*) AS c, count(v) AS cv, count(w) AS cw, sum(v) AS sv, "
                     "min(v) AS lo, max(v) AS hi, avg(v) AS mean, sum(w) AS sw FROM m")
    assert agg == [{"c": n, "cv": n, "cw": n, "sv": float(sum(range(n))), "lo": 0.0,
                    "hi": float(n - 1), "mean": (n - 1) / 2, "sw": n}]
    by_host = s.rows(DB, "SELECT h, count(*) AS c, sum(v) AS sv FROM m GROUP BY h ORDER BY h")
    assert by_host == [{"h": f"h{k}", "c": n // 10,
                        "sv": float(sum(i for i in range(n) if i % 10 == k))} for k in range(10)]
    assert s.rows(DB, "SELECT count(DISTINCT time) AS c FROM m") == [{"c": n}]
    assert s.rows(DB, "SELECT count(*) AS c FROM m WHERE CAST(time AS BIGINT) >= "
                      f"{base - 49 * 1_000_000}")[0]["c"] == 50


# --- what plugins see --------------------------------------------------------------------

SEEN_PLUGIN = """\
import json

def process_writes(influxdb3_local, table_batches, args=None):
    for batch in table_batches:
        if batch["table_name"] == "m" and batch["rows"]:
            influxdb3_local.info("rows " + json.dumps(batch["rows"]))
"""

QUERY_PLUGIN = """\
import json

def process_request(influxdb3_local, query_parameters, request_headers, request_body,
                    args=None):
    rows = influxdb3_local.query("SELECT h, v, w, s, time FROM m ORDER BY h")
    clean = [{k: v for k, v in r.items() if v is not None} for r in rows]
    return 200, {"Content-Type": "application/json"}, json.dumps(clean, default=str)
"""


def test_absent_tags_on_both_sides_of_a_snapshot(s):  # type: ignore[no-untyped-def]
    """Series that leave out some tags, overwritten across a snapshot: the merge of
    Parquet and buffer must handle null tags in either copy."""
    model = LwwModel()
    t = near_now(10)

    def tags(i: int, a: int, b: int) -> dict[str, str]:
        return {**({"host": f"h{i % 3}"} if i % a else {}),
                **({"region": f"r{i % 5}"} if i % b else {})}

    write_ok(s, DB, "\n".join(model.write("cpu", tags(i, 2, 3), {"v": float(i)}, t - i % 7)
                              for i in range(40)))
    force_snapshot(s)
    write_ok(s, DB, "\n".join(model.write("cpu", tags(i, 3, 2), {"w": i}, t - i % 7)
                              for i in range(40)))
    assert_matches_model(s, DB, model, "null tags in Parquet and in the buffer")
    kill9_and_start(s)
    assert_matches_model(s, DB, model, "after kill -9")


@pytest.fixture
def engine_server(server_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "seen.py").write_text(SEEN_PLUGIN)
    (plugins / "ask.py").write_text(QUERY_PLUGIN)
    s = server_factory(plugin_dir=plugins,
                       extra_args=[*FLAGS, "--plugin-call-timeout", "10s"]).start()
    assert httpx.post(f"{s.url}/api/v3/configure/database", json={"db": DB}).status_code in (
        200, 201, 204)
    return s


def _create_trigger(s, name: str, plugin: str, spec: str) -> None:  # type: ignore[no-untyped-def]
    r = httpx.post(f"{s.url}/api/v3/configure/processing_engine_trigger", json={
        "db": DB, "plugin_filename": plugin, "trigger_name": name,
        "trigger_specification": spec, "trigger_arguments": None,
        "trigger_settings": {"run_async": False, "error_behavior": "log"},
        "disabled": False}, timeout=60)
    assert r.status_code in (200, 201), r.text


def _seen_rows(s) -> list[dict]:  # type: ignore[no-untyped-def]
    r = s.query("_internal", "SELECT log_text FROM system.processing_engine_logs "
                             "WHERE trigger_name = 'seen' ORDER BY event_time")
    if r.status_code != 200:
        return []
    out: list[dict] = []
    for row in r.json():
        text = row["log_text"]
        if text.startswith("rows "):
            out.extend(json.loads(text[len("rows "):]))
    return out


def test_wal_trigger_sees_the_writes_as_sent(engine_server):  # type: ignore[no-untyped-def]
    s = engine_server
    _create_trigger(s, "seen", "seen.py", "table:m")
    t = near_now(5)
    sent = [f"m,h=x v=1 {t}", f"m,h=x v=2 {t}", f"m,h=x w=3 {t}"]
    for line in sent:
        write_ok(s, DB, line)
    # the reference hands WAL triggers each write as it came, duplicates and all
    want = [{"h": "x", "v": 1.0, "time": t}, {"h": "x", "v": 2.0, "time": t},
            {"h": "x", "w": 3.0, "time": t}]
    got = wait_for(lambda: len(_seen_rows(s)) >= 3 and _seen_rows(s), timeout=30,
                   what="the WAL trigger to log three rows")
    assert got == want


def test_plugin_query_sees_one_row_per_point(engine_server):  # type: ignore[no-untyped-def]
    s = engine_server
    _create_trigger(s, "ask", "ask.py", "request:ask")
    t = near_now(5)
    write_ok(s, DB, f"m,h=x v=1,s=\"a\" {t}\nm,h=y v=10 {t}")
    force_snapshot(s)
    write_ok(s, DB, f"m,h=x v=2 {t}")
    write_ok(s, DB, f"m,h=x w=3 {t}\nm,h=y v=11 {t}")
    r = httpx.get(f"{s.url}/api/v3/engine/ask", timeout=60)
    assert r.status_code == 200, r.text
    assert r.json() == [{"h": "x", "v": 2.0, "w": 3.0, "s": "a", "time": t},
                        {"h": "y", "v": 11.0, "time": t}]
