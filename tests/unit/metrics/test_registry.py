"""weir.metrics renders what Prometheus' own text-format parser reads back: families
with their types and help, label values escaped, empty labels left out, histogram
buckets cumulative with +Inf, sum and count, and the reference's `# EOF` line."""

from __future__ import annotations

import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from weir.metrics import QueryMetrics, Registry, TriggerMetrics, WriteMetrics


def parse(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_counter_gauge_histogram_round_trip() -> None:
    reg = Registry()
    c = reg.counter("things_total", "Things\ncounted \\ here.", ("db", "path"))
    c.inc(("a\"b\\c\nd", "/x"), 2)
    c.inc(("a\"b\\c\nd", "/x"))
    c.inc(("plain", ""))  # an empty label is an absent one
    g = reg.gauge("level", "A level.")
    g.set(-2.5)
    h = reg.histogram("lat_seconds", "Latency.", ("op",), buckets=(0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0):
        h.observe(v, ("get",))
    reg.computed_gauge("read_now", "Read at render time.", ("k",), lambda: [(("v",), 7)])
    text = reg.render()
    assert text.endswith("# EOF\n")
    fams = parse(text)
    assert {n: f.type for n, f in fams.items()} == {  # type: ignore[attr-defined]
        "things": "counter", "level": "gauge", "lat_seconds": "histogram", "read_now": "gauge"}
    assert fams["things"].documentation == "Things\ncounted \\ here."  # type: ignore[attr-defined]
    got = samples(text)
    assert got[("things_total", frozenset({("db", 'a"b\\c\nd'), ("path", "/x")}))] == 3
    assert got[("things_total", frozenset({("db", "plain")}))] == 1
    assert got[("level", frozenset())] == -2.5
    assert got[("read_now", frozenset({("k", "v")}))] == 7
    op = ("op", "get")
    assert [got[("lat_seconds_bucket", frozenset({op, ("le", le)}))]
            for le in ("0.1", "1", "+Inf")] == [2, 3, 4]
    assert got[("lat_seconds_count", frozenset({op}))] == 4
    assert got[("lat_seconds_sum", frozenset({op}))] == pytest.approx(3.65)


def test_families_without_series_are_not_shown_and_names_are_unique() -> None:
    reg = Registry()
    reg.counter("quiet_total", "Never counted.", ("db",))
    assert reg.render() == "# EOF\n"
    with pytest.raises(ValueError, match="already registered"):
        reg.counter("quiet_total", "Again.")
    c = reg.counter("loud_total", "Counted.", ("db",))
    with pytest.raises(ValueError, match="takes labels"):
        c.inc(("a", "b"))
    with pytest.raises(ValueError, match="only goes up"):
        c.inc(("a",), -1)


def test_counting_from_threads_loses_nothing() -> None:
    reg = Registry()
    c = reg.counter("n_total", "N.", ("t",))
    h = reg.histogram("d_seconds", "D.")

    def work() -> None:
        for _ in range(5000):
            c.inc(("x",))
            h.observe(0.01)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.value(("x",)) == 20000
    assert h.count() == 20000


def test_recorders_use_the_reference_names() -> None:
    reg = Registry()
    writes, queries, triggers = WriteMetrics(reg), QueryMetrics(reg), TriggerMetrics(reg)
    writes.record("db1", 3, 1, 42)
    ok = queries.start()
    ok.planned()
    ok.finished("success", 5)
    bad = queries.start()
    bad.finished("fail")
    bad.finished("success")  # counted once
    triggers.record("db1", "t1", "wal", False, 0.2)
    got = samples(reg.render())
    db = frozenset({("db", "db1")})
    assert got[("influxdb3_write_lines_total", db)] == 3
    assert got[("influxdb3_write_lines_rejected_total", db)] == 1
    assert got[("influxdb3_write_bytes_total", db)] == 42

    def phase(name: str, p: str) -> float:
        return got[(name, frozenset({("phase", p)}))]

    entered = "influxdb_iox_query_log_phase_entered_total"
    assert [phase(entered, p) for p in ("received", "planned", "success", "fail", "cancel")
            ] == [2, 1, 1, 1, 0]
    current = "influxdb_iox_query_log_phase_current"
    assert [phase(current, p) for p in ("received", "planned", "success", "fail")] == [0, 0, 1, 1]
    assert got[("influxdb_iox_query_log_end2end_duration_seconds_count", frozenset())] == 2
    assert got[("influxdb_iox_query_log_plan_duration_seconds_count", frozenset())] == 1
    assert got[("influxdb_iox_query_log_execute_duration_seconds_count", frozenset())] == 1
    assert got[("influxdb_iox_query_log_num_rows_sum", frozenset())] == 5
    t = frozenset({("db", "db1"), ("trigger", "t1"), ("trigger_type", "wal")})
    assert got[("weir_processing_engine_calls_total", t)] == 1
    assert got[("weir_processing_engine_errors_total", t)] == 1
