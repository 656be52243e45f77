"""InfluxQL time: duration units, timestamp strings, v1 epoch precisions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

DURATION_UNITS = {
    "ns": 1, "u": 1_000, "µ": 1_000, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
    "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}

#: the v1 `epoch` parameter: unit -> nanoseconds
EPOCH_UNITS = {"ns": 1, "n": 1, "u": 1_000, "µ": 1_000, "us": 1_000, "ms": 1_000_000,
               "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
               "d": 86_400_000_000_000, "w": 604_800_000_000_000}

_TS = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_timestamp(text: str) -> int | None:
    """RFC3339 (or `YYYY-MM-DD[ HH:MM:SS[.fffffffff]]`, UTC) to ns since the epoch."""
    m = _TS.match(text.strip())
    if not m:
        return None
    y, mo, d, hh, mm, ss, frac, tz = m.groups()
    try:
        base = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0),
                        tzinfo=UTC)
    except ValueError:
        return None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        off = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        base = base.replace(tzinfo=timezone(sign * off))
    secs = int((base - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
    ns = int((frac or "0").ljust(9, "0"))
    return secs * 1_000_000_000 + ns


def format_rfc3339(ns: int) -> str:
    """A v1 `/query` timestamp: RFC3339 UTC with `Z`; the fraction in 0, 3, 6 or 9 digits
    as the reference prints it (`...:01Z`, `...:01.500Z`)."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=secs)).strftime(
        "%Y-%m-%dT%H:%M:%S")
    if frac == 0:
        return base + "Z"
    if frac % 1_000_000 == 0:
        return f"{base}.{frac // 1_000_000:03d}Z"
    if frac % 1_000 == 0:
        return f"{base}.{frac // 1_000:06d}Z"
    return f"{base}.{frac:09d}Z"


def format_v1_duration(ns: int | None) -> str:
    """A retention duration as 1.x prints it (`0s` = infinite, `168h0m0s`)."""
    if not ns:
        return "0s"
    secs = ns // 1_000_000_000
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m}m{s}s"
