"""Trigger specifications: the forms, canonical strings, and schedule fire times.

Cron fire times are worked out by hand from a calendar (2025-01-01 is a Wednesday),
in the reference's dialect: seconds first, 1 = Sunday, day-of-month AND day-of-week.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from weir.engine.specs import InvalidTriggerSpec, format_humantime, parse_trigger_spec

START = datetime(2025, 1, 1, tzinfo=UTC).timestamp()  # Wednesday 00:00:00


def fires(spec: str, n: int, start: float = START) -> list[str]:
    s = parse_trigger_spec(spec)
    out, t = [], start
    for _ in range(n):
        t = s.next_fire_after(t)
        if t is None:
            break
        out.append(datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S"))
    return out


@pytest.mark.parametrize("expr,expected", [
    ("* * * * * *", ["2025-01-01 00:00:01", "2025-01-01 00:00:02", "2025-01-01 00:00:03"]),
    ("*/15 * * * * *", ["2025-01-01 00:00:15", "2025-01-01 00:00:30", "2025-01-01 00:00:45"]),
    ("0 * * * * *", ["2025-01-01 00:01:00", "2025-01-01 00:02:00", "2025-01-01 00:03:00"]),
    ("30 5 * * * *", ["2025-01-01 00:05:30", "2025-01-01 01:05:30", "2025-01-01 02:05:30"]),
    ("0 0 12 * * *", ["2025-01-01 12:00:00", "2025-01-02 12:00:00", "2025-01-03 12:00:00"]),
    # 1 = Sunday, 2 = Monday, 7 = Saturday
    ("0 0 0 * * 1", ["2025-01-05 00:00:00", "2025-01-12 00:00:00", "2025-01-19 00:00:00"]),
    ("0 0 0 * * 2", ["2025-01-06 00:00:00", "2025-01-13 00:00:00", "2025-01-20 00:00:00"]),
    ("0 0 0 * * 7", ["2025-01-04 00:00:00", "2025-01-11 00:00:00", "2025-01-18 00:00:00"]),
    ("0 0 0 * * SUN", ["2025-01-05 00:00:00", "2025-01-12 00:00:00", "2025-01-19 00:00:00"]),
    ("0 0 9 ? * MON-FRI", ["2025-01-01 09:00:00", "2025-01-02 09:00:00",
                           "2025-01-03 09:00:00", "2025-01-06 09:00:00"]),
    ("0 0 9 ? * 2-6", ["2025-01-01 09:00:00", "2025-01-02 09:00:00",
                       "2025-01-03 09:00:00", "2025-01-06 09:00:00"]),
    # a step over weekdays starts at Sunday: Sun, Tue, Thu, Sat
    ("0 0 0 * * 1/2", ["2025-01-02 00:00:00", "2025-01-04 00:00:00", "2025-01-05 00:00:00",
                       "2025-01-07 00:00:00"]),
    ("0 0 0 1 * ?", ["2025-02-01 00:00:00", "2025-03-01 00:00:00", "2025-04-01 00:00:00"]),
    ("0 30 8 1,15 * *", ["2025-01-01 08:30:00", "2025-01-15 08:30:00", "2025-02-01 08:30:00"]),
    ("0 0 0 1 */4 *", ["2025-05-01 00:00:00", "2025-09-01 00:00:00", "2026-01-01 00:00:00"]),
    ("0 0 0 1 JAN,JUL *", ["2025-07-01 00:00:00", "2026-01-01 00:00:00"]),
    ("5-10/2 0 0 * * *", ["2025-01-01 00:00:05", "2025-01-01 00:00:07", "2025-01-01 00:00:09",
                          "2025-01-02 00:00:05"]),
    ("5/20 0 0 1 1 *", ["2025-01-01 00:00:05", "2025-01-01 00:00:25", "2025-01-01 00:00:45",
                        "2026-01-01 00:00:05"]),
    # day-of-month AND day-of-week: Friday the 13th, and New Year on a Sunday
    ("0 0 0 13 * 6", ["2025-06-13 00:00:00", "2026-02-13 00:00:00", "2026-03-13 00:00:00"]),
    ("0 0 0 1 1 SUN", ["2034-01-01 00:00:00"]),
    ("0 0 0 29 2 *", ["2028-02-29 00:00:00", "2032-02-29 00:00:00"]),
    ("0 0 0 1 1 * 2027", ["2027-01-01 00:00:00"]),
    ("0 0 0 1 1 * 2026-2027", ["2026-01-01 00:00:00", "2027-01-01 00:00:00"]),
    ("@yearly", ["2026-01-01 00:00:00", "2027-01-01 00:00:00"]),
    ("@monthly", ["2025-02-01 00:00:00", "2025-03-01 00:00:00"]),
    ("@weekly", ["2025-01-05 00:00:00", "2025-01-12 00:00:00"]),
    ("@daily", ["2025-01-02 00:00:00", "2025-01-03 00:00:00"]),
    ("@hourly", ["2025-01-01 01:00:00", "2025-01-01 02:00:00"]),
    # Weir's Quartz extensions
    ("0 0 0 L * *", ["2025-01-31 00:00:00", "2025-02-28 00:00:00", "2025-03-31 00:00:00"]),
    ("0 0 0 * * 6#3", ["2025-01-17 00:00:00", "2025-02-21 00:00:00", "2025-03-21 00:00:00"]),
    ("0 0 0 * * FRI#1", ["2025-01-03 00:00:00", "2025-02-07 00:00:00"]),
    ("0 0 0 * * 6L", ["2025-01-31 00:00:00", "2025-02-28 00:00:00", "2025-03-28 00:00:00"]),
    ("0 0 0 15W * *", ["2025-01-15 00:00:00", "2025-02-14 00:00:00", "2025-03-14 00:00:00"]),
])
def test_cron_fire_times(expr: str, expected: list[str]) -> None:
    assert fires(f"cron:{expr}", len(expected) + 1)[:len(expected)] == expected


def test_cron_with_a_past_year_limit_stops() -> None:
    assert fires("cron:0 0 0 1 1 * 2027", 3) == ["2027-01-01 00:00:00"]


@pytest.mark.parametrize("expr,needle", [
    ("* * * * *", "6 or 7 fields"),  # classic 5-field crontab
    ("* * * * * * * *", "6 or 7 fields"),
    ("60 * * * * *", "Seconds must be between 0 and 59"),
    ("* 60 * * * *", "Minutes"),
    ("* * 24 * * *", "Hours"),
    ("* * * 0 * *", "Days of Month"),
    ("* * * * 13 *", "Months"),
    ("* * * * * 0", "Days of Week must be between 1 and 7"),
    ("* * * * * 8", "Days of Week"),
    ("*/0 * * * * *", "range step cannot be zero"),
    ("? * * * * *", "invalid value"),  # `?` only in the day fields
    ("5-1 * * * * *", "Invalid range"),
    ("* * * * FOO *", "not a valid month name"),
    ("* * * * * FUNDAY", "not a valid day of the week"),
    ("0 0 0 30 2 *", "never fires"),
    ("0 0 0 1 1 * 2020", "never fires"),
    ("@fortnightly", "unknown shorthand"),
])
def test_bad_cron_expressions(expr: str, needle: str) -> None:
    with pytest.raises(InvalidTriggerSpec) as e:
        parse_trigger_spec(f"cron:{expr}")
    assert str(e.value).startswith(f"failed to parse trigger from cron:{expr}")
    assert needle in str(e.value)


@pytest.mark.parametrize("spec,start,expected", [
    ("every:10s", 1000.5, [1010.0, 1020.0]),
    ("every:1h", 3601.0, [7200.0, 10800.0]),
    ("every:1m 30s", 0.0, [90.0, 180.0]),
    ("every:1m30s", 89.999, [90.0, 180.0]),
    ("every:250ms", 1.0, [1.25, 1.5]),
    ("every:1 day", 86_400 * 3 + 5, [86_400 * 4, 86_400 * 5]),
])
def test_every_is_aligned_to_the_epoch(spec: str, start: float, expected: list[float]) -> None:
    s = parse_trigger_spec(spec)
    t, got = start, []
    for _ in expected:
        t = s.next_fire_after(t)
        got.append(t)
    assert got == pytest.approx(expected)


@pytest.mark.parametrize("spec,canonical,system_json", [
    ("table:cpu", "table:cpu", '{"single_table_wal_write":{"table_name":"cpu"}}'),
    ("  table: cpu ", "table:cpu", '{"single_table_wal_write":{"table_name":"cpu"}}'),
    ("all_tables", "all_tables", '"all_tables_wal_write"'),
    ("cron:* * * * * *", "cron:* * * * * *", '{"schedule":{"schedule":"* * * * * *"}}'),
    ("every:10s", "every:10s", '{"every":{"duration":{"secs":10,"nanos":0}}}'),
    ("every:90s", "every:1m 30s", '{"every":{"duration":{"secs":90,"nanos":0}}}'),
    ("every:1 day", "every:1day", '{"every":{"duration":{"secs":86400,"nanos":0}}}'),
    ("every:1500ms", "every:1s 500ms", '{"every":{"duration":{"secs":1,"nanos":500000000}}}'),
    ("request:foo/bar", "request:foo/bar", '{"request_path":{"path":"foo/bar"}}'),
    ("parquet:all_tables", "parquet:all_tables", '"parquet_persist_all_tables"'),
    ("parquet:cpu", "parquet:cpu", '{"parquet_persist_table":{"table_name":"cpu"}}'),
    ("parquet:table:all_tables", "parquet:table:all_tables",
     '{"parquet_persist_table":{"table_name":"all_tables"}}'),
])
def test_canonical_and_system_table_forms(spec: str, canonical: str, system_json: str) -> None:
    s = parse_trigger_spec(spec)
    assert s.canonical() == canonical
    assert s.system_table_json() == system_json
    assert parse_trigger_spec(canonical) == s


@pytest.mark.parametrize("spec,kind,restriction", [
    ("table:cpu", "wal", "WalRows"), ("all_tables", "wal", "WalRows"),
    ("every:1s", "schedule", "Schedule"), ("cron:0 * * * * *", "schedule", "Schedule"),
    ("request:x", "request", "Request"), ("parquet:all_tables", "parquet", "ParquetPersist"),
])
def test_kinds(spec: str, kind: str, restriction: str) -> None:
    s = parse_trigger_spec(spec)
    assert (s.kind, s.restriction_name) == (kind, restriction)


@pytest.mark.parametrize("spec,context", [
    ("table:", "table name is empty"),
    ("request:", "request path is empty"),
    ("every:abc", "couldn't parse to duration"),
    ("every:2y", "don't support every schedules of over 1 year"),
    ("every:500us", "at least 1ms"),
    ("tables:cpu", "expect one of the following forms: 'table:<TABLE_NAME>', 'all_tables', "
                   "'cron:<CRON_EXPRESSION>', 'every:<DURATION>', or 'request:<PATH>'"),
    ("", "expect one of the following forms"),
])
def test_bad_specs(spec: str, context: str) -> None:
    with pytest.raises(InvalidTriggerSpec) as e:
        parse_trigger_spec(spec)
    assert str(e.value).startswith(f"failed to parse trigger from {spec}: ")
    assert context in str(e.value)


def test_every_one_year_is_the_maximum() -> None:
    assert parse_trigger_spec("every:1y").every_ns == 31_557_600 * 10**9


@pytest.mark.parametrize("ns,text", [
    (1_234_567, "1ms 234us 567ns"), (10**9, "1s"), (90 * 10**9, "1m 30s"),
    (3_600 * 10**9 + 1, "1h 1ns"), (86_400 * 10**9, "1day"), (2 * 86_400 * 10**9, "2days"),
    (0, "0s"),
])
def test_humantime_format(ns: int, text: str) -> None:
    assert format_humantime(ns) == text
