"""Hard deletion: when a soft-deleted database or table goes for good (`hard_delete_at`:
never, now, default or an RFC 3339 time, as the reference's API takes it)."""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class HardDelete:
    """A soft-deleted database (`table_id` None) or table whose hard-deletion time has
    come: the storage side removes its data, then calls `Catalog.complete_hard_delete`."""

    db_id: int
    db_name: str
    table_id: int | None
    table_name: str | None
    deletion_time_ns: int


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))")


def parse_rfc3339_ns(text: str) -> int:
    """An RFC 3339 timestamp (`2025-12-31T23:59:59Z`, up to nanoseconds, any offset) as
    nanoseconds since the epoch, in integers (a float cannot hold times near now)."""
    m = _RFC3339.fullmatch(text.strip())
    if not m:
        raise ValueError(f"invalid timestamp {text!r}: expected RFC 3339, e.g. "
                         "2025-12-31T23:59:59Z")
    y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
    try:
        # datetime only to check the date exists (30 February does not); a leap second
        # (:60) is allowed as RFC 3339 allows it.
        datetime.datetime(y, mo, d, h, mi, min(sec, 59))
    except ValueError as e:
        raise ValueError(f"invalid timestamp {text!r}: {e}") from None
    if sec > 60:
        raise ValueError(f"invalid timestamp {text!r}: second must be in 0..60")
    secs = calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0))
    if m.group(9):
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        secs -= offset if m.group(9) == "+" else -offset
    frac = (m.group(7) or "").ljust(9, "0")
    return secs * 1_000_000_000 + int(frac or 0)


def resolve_hard_delete_time(value: str | None, now_ns: int,
                             default_duration_s: float) -> int | None:
    """`hard_delete_at` (never, now, default or RFC 3339) as the time the deleted thing
    goes for good: None for never, `now_ns` for now or a past time, now plus
    --hard-delete-default-duration for default (also when no value is given, as the
    reference's clients send nothing for a plain delete)."""
    v = (value or "default").strip()
    low = v.lower()
    if low == "never":
        return None
    if low == "now":
        return now_ns
    if low == "default":
        return now_ns + round(default_duration_s * 1_000_000_000)
    try:
        at = parse_rfc3339_ns(v)
    except ValueError:
        raise ValueError(f"Cannot parse the timestamp: {_rfc3339_failure(v)}") from None
    return max(at, now_ns)


def _rfc3339_failure(text: str) -> str:
    """Why `text` is no RFC 3339 time, in the words of the parser the reference uses
    (chrono's ParseError), for its `Cannot parse the timestamp: ...` answer."""
    invalid, short = "input contains invalid characters", "premature end of input"
    i = 0

    def take(spec: str) -> str | None:
        nonlocal i
        for c in spec:
            if i >= len(text):
                return short
            ch = text[i]
            ok = ("0" <= ch <= "9") if c == "d" else (ch in "Tt " if c == "T" else ch == c)
            if not ok:
                return invalid
            i += 1
        return None

    if (err := take("dddd-dd-ddTdd:dd:dd")) is not None:
        return err
    if i < len(text) and text[i] == ".":
        i += 1
        if (err := take("d")) is not None:
            return err
        while i < len(text) and "0" <= text[i] <= "9":
            i += 1
    if i >= len(text):
        return short
    if text[i] in "Zz":
        i += 1
    elif text[i] in "+-":
        i += 1
        if (err := take("dd:dd")) is not None:
            return err
    else:
        return invalid
    if i < len(text):
        return "trailing input"
    return "input is out of range"  # the shape is right: a field is (month 13, 30 Feb)
