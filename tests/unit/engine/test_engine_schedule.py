"""Schedule triggers across a restart: which fire times were missed (every: and cron:,
nanosecond-precise, near now), how they are described, and the durable record."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from weir.engine.schedule import (
    MissedRuns,
    ScheduleState,
    missed_runs,
    next_fire_ns,
    rfc3339,
)
from weir.engine.specs import NS_PER_S, TriggerSpec, parse_trigger_spec

MS = 1_000_000
DAY = 86_400 * NS_PER_S


def spec(text: str) -> TriggerSpec:
    return parse_trigger_spec(text)


def brute_force(s: TriggerSpec, after_ns: int, until_ns: int) -> list[int]:
    """Every fire time in (after, until], one next_fire_ns at a time."""
    out = []
    t = next_fire_ns(s, after_ns)
    while t is not None and t <= until_ns:
        out.append(t)
        t = next_fire_ns(s, t)
    return out


def window(s: TriggerSpec, after_ns: int, until_ns: int) -> MissedRuns | None:
    fires = brute_force(s, after_ns, until_ns)
    return MissedRuns(len(fires), fires[0], fires[-1]) if fires else None


# ---- every: ------------------------------------------------------------------------------


def test_every_window_edges_to_the_nanosecond() -> None:
    s = spec("every:1s")
    base = time.time_ns() // NS_PER_S * NS_PER_S  # a fire time, now
    # a fire time exactly at the end of the window was missed (the runner starts after it)
    assert missed_runs(s, base - 3 * NS_PER_S, base) == MissedRuns(
        3, base - 2 * NS_PER_S, base)
    # ... and exactly at its start was not (it ran, or it was reported before)
    assert missed_runs(s, base - 3 * NS_PER_S + 1, base - 1) == MissedRuns(
        2, base - 2 * NS_PER_S, base - NS_PER_S)
    assert missed_runs(s, base - 1, base) == MissedRuns(1, base, base)
    assert missed_runs(s, base, base + NS_PER_S - 1) is None
    assert missed_runs(s, base - 1, base - 1) is None
    assert missed_runs(s, base, base - NS_PER_S) is None  # a clock gone backwards


def test_every_fire_times_are_whole_milliseconds_since_the_epoch() -> None:
    now = time.time_ns()
    s = spec("every:250ms")
    got = missed_runs(s, now - NS_PER_S, now)
    assert got is not None and got.count == 4
    assert got.first_ns % (250 * MS) == 0 and got.last_ns % (250 * MS) == 0
    assert got.last_ns <= now < got.last_ns + 250 * MS
    # a duration with a sub-millisecond part fires every whole millisecond of it, as the
    # reference computes (1500us -> every 1 ms)
    odd = missed_runs(spec("every:1500us"), now - 10 * MS, now)
    assert odd is not None and odd.count == 10


@pytest.mark.parametrize("text", ["every:1s", "every:250ms", "every:7s", "every:1m",
                                  "every:1h 30m", "every:1day"])
def test_every_matches_fire_times_one_by_one(text: str) -> None:
    s = spec(text)
    now = time.time_ns()
    for after, until in ((now - 20 * NS_PER_S, now), (now - 3 * DAY - 17, now + 123_456_789),
                         (now - 1, now)):
        assert missed_runs(s, after, until) == window(s, after, until)


def test_every_next_fire_is_the_runners_float_schedule_in_integers() -> None:
    now = time.time_ns()
    for text in ("every:1s", "every:250ms", "every:7s", "every:1h"):
        s = spec(text)
        for delta in (0, 1, 999_999, 1_000_000, 123_456_789_123):
            t = now + delta
            want = s.next_fire_after(t / NS_PER_S)
            assert want is not None
            assert abs(next_fire_ns(s, t) - want * NS_PER_S) < 1_000  # float rounding only


def test_a_long_outage_is_one_count_and_a_range() -> None:
    now = time.time_ns()
    got = missed_runs(spec("every:1ms"), now - 30 * DAY, now)
    assert got is not None and got.count == 30 * 86_400 * 1000
    text = got.describe()
    assert text == (f"missed 2592000000 scheduled runs while the server was down "
                    f"(from {rfc3339(got.first_ns)} to {rfc3339(got.last_ns)})")
    assert "\n" not in text


# ---- cron: -------------------------------------------------------------------------------


@pytest.mark.parametrize("text,longest", [
    # (the longest window is kept to about a thousand fire times: brute force is slow)
    ("cron:* * * * * *", 1_000 * NS_PER_S), ("cron:*/5 * * * * *", 3 * 3_600 * NS_PER_S),
    ("cron:0 */5 * * * *", 3 * DAY), ("cron:30 0 12 * * *", 400 * DAY),
    ("cron:0 30 9 * * MON-FRI", 400 * DAY), ("cron:0 0 12 L * ?", 800 * DAY),
    ("cron:5 4 3 ? * 6L", 800 * DAY), ("cron:0 0 0 ? * 2#1", 800 * DAY),
    ("cron:15,45 10 3 1 1,7 *", 800 * DAY), ("cron:@hourly", 40 * DAY),
    ("cron:@daily", 400 * DAY),
])
def test_cron_matches_fire_times_one_by_one(text: str, longest: int) -> None:
    s = spec(text)
    now = time.time_ns()
    spans = [1, NS_PER_S, 61 * NS_PER_S, 3_600 * NS_PER_S + 17, 2 * DAY + 999_999_999,
             40 * DAY + 5, 400 * DAY + 1, 800 * DAY]
    for span in (x for x in spans if x <= longest):
        for after in (now - span, now - span - 1, now - span + 1):
            assert missed_runs(s, after, now) == window(s, after, now), (text, span)


def test_cron_fire_times_are_whole_seconds_whatever_the_window_ends() -> None:
    s = spec("cron:*/5 * * * * *")
    now = time.time_ns()
    base = now // (5 * NS_PER_S) * (5 * NS_PER_S)  # a fire time
    assert missed_runs(s, base - 10 * NS_PER_S, base) == MissedRuns(
        2, base - 5 * NS_PER_S, base)
    assert missed_runs(s, base - 10 * NS_PER_S - 1, base - 1) == MissedRuns(
        2, base - 10 * NS_PER_S, base - 5 * NS_PER_S)
    assert missed_runs(s, base - 1, base + 4 * NS_PER_S + 999_999_999) == MissedRuns(
        1, base, base)
    assert missed_runs(s, base, base + 4 * NS_PER_S + 999_999_999) is None


def test_cron_counts_a_year_of_seconds_without_visiting_each() -> None:
    s = spec("cron:* * * * * *")
    now = time.time_ns()
    started = time.perf_counter()
    got = missed_runs(s, now - 365 * DAY, now)
    assert time.perf_counter() - started < 5
    assert got is not None and got.count == 365 * 86_400
    assert got.last_ns == now // NS_PER_S * NS_PER_S
    assert got.first_ns == (now - 365 * DAY) // NS_PER_S * NS_PER_S + NS_PER_S


def test_a_cron_that_does_not_fire_in_the_window() -> None:
    s = spec("cron:0 0 0 1 1 *")  # New Year only
    now = time.time_ns()
    year_start = datetime(datetime.now(UTC).year, 1, 1, tzinfo=UTC)
    start_ns = int(year_start.timestamp()) * NS_PER_S
    if now - start_ns > 2 * NS_PER_S:
        assert missed_runs(s, start_ns, now) is None
        assert missed_runs(s, start_ns - 1, now) == MissedRuns(1, start_ns, start_ns)


def test_next_fire_for_cron_is_strictly_after() -> None:
    s = spec("cron:*/5 * * * * *")
    base = time.time_ns() // (5 * NS_PER_S) * (5 * NS_PER_S)
    assert next_fire_ns(s, base) == base + 5 * NS_PER_S
    assert next_fire_ns(s, base - 1) == base
    with pytest.raises(ValueError, match="is not a schedule"):
        next_fire_ns(spec("all_tables"), base)
    with pytest.raises(ValueError, match="is not a schedule"):
        missed_runs(spec("request:x"), base - NS_PER_S, base)


# ---- what the log says -------------------------------------------------------------------


def test_rfc3339() -> None:
    t = int(datetime(2026, 12, 3, 4, 20, 1, tzinfo=UTC).timestamp()) * NS_PER_S
    assert rfc3339(t) == "2026-12-03T04:20:01Z"
    assert rfc3339(t + 500 * MS) == "2026-12-03T04:20:01.5Z"
    assert rfc3339(t + 1) == "2026-12-03T04:20:01.000000001Z"
    assert rfc3339(t + 123_456_000) == "2026-12-03T04:20:01.123456Z"


def test_describe() -> None:
    t = int(datetime(2026, 12, 3, 4, 20, 1, tzinfo=UTC).timestamp()) * NS_PER_S
    assert MissedRuns(3, t, t + 2 * NS_PER_S).describe() == (
        "missed 3 scheduled runs while the server was down "
        "(from 2026-12-03T04:20:01Z to 2026-12-03T04:20:03Z)")
    assert MissedRuns(1, t, t).describe() == (
        "missed 1 scheduled run while the server was down (at 2026-12-03T04:20:01Z)")


# ---- the record --------------------------------------------------------------------------


def test_record_round_trip_and_format() -> None:
    t = int(datetime(2026, 12, 3, 4, 0, tzinfo=UTC).timestamp()) * NS_PER_S
    state = ScheduleState("every:1h", t + 1, t)
    data = state.to_json("mydb", "hourly")
    d = json.loads(data)
    assert d.pop("updated_at").endswith("Z")
    assert d == {"format": 1, "database": "mydb", "trigger_name": "hourly",
                 "trigger_specification": "every:1h",
                 "covered_until": "2026-12-03T04:00:00.000000001Z", "covered_until_ns": t + 1,
                 "last_run": "2026-12-03T04:00:00Z", "last_run_ns": t}
    assert ScheduleState.from_json(data) == state
    fresh = ScheduleState("cron:0 0 * * * *", t)
    assert json.loads(fresh.to_json("d", "n"))["last_run"] is None
    assert ScheduleState.from_json(fresh.to_json("d", "n")) == fresh


@pytest.mark.parametrize("data,needle", [
    (b"\xff", "not JSON"), (b"{", "not JSON"), (b"[]", "format 1"),
    (b'{"format": 2}', "format 1"),
    (b'{"format": 1, "trigger_specification": "every:1s"}', "wrong type"),
    (b'{"format": 1, "trigger_specification": "every:1s", "covered_until_ns": "1"}',
     "wrong type"),
    (b'{"format": 1, "trigger_specification": "every:1s", "covered_until_ns": true}',
     "wrong type"),
    (b'{"format": 1, "trigger_specification": "every:1s", "covered_until_ns": 1, '
     b'"last_run_ns": 1.5}', "wrong type"),
])
def test_unreadable_records(data: bytes, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        ScheduleState.from_json(data)
