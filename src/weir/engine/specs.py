"""Trigger specifications: parsing, canonical form, and when schedules fire.

Forms (the reference's five, plus Weir's Parquet trigger):

* ``table:<NAME>``, ``all_tables``          - WAL triggers (`process_writes`)
* ``every:<DURATION>``, ``cron:<EXPR>``     - schedules (`process_scheduled_call`)
* ``request:<PATH>``                        - `/api/v3/engine/<PATH>` (`process_request`)
* ``parquet:all_tables``, ``parquet:<NAME>`` (or ``parquet:table:<NAME>``) - after a
  snapshot persisted Parquet files (`process_parquet_persist`; Weir only)

``every:`` takes a humantime duration (``10s``, ``1h 30m``, ``1 day``), at least 1 ms
and at most 1 year; its fire times are aligned to the Unix epoch.

``cron:`` uses the reference's dialect (the Rust `cron` crate): 6 or 7 fields,
**seconds first** - ``sec min hour day-of-month month day-of-week [year]`` - or one
of ``@yearly @monthly @weekly @daily @hourly``. Day of week is 1-7 with **1 = Sunday**
(or SUN..SAT); ``?`` means "any" in the day fields; a day matches only when *both*
day-of-month and day-of-week match. Times are UTC. Weir also accepts the Quartz
extensions ``L`` (last day of month), ``<n>W`` (weekday nearest day n), ``<d>L``
(last weekday d of the month) and ``<d>#<k>`` (k-th weekday d), which the
reference's crate rejects. Python cron libraries read this dialect differently
(seconds last, 0 = Sunday, either-day matching), so each field is expanded here
with the crate's rules and handed to croniter as explicit values.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from weir.config import DurationError, parse_duration
from weir.errors import CatalogError

if TYPE_CHECKING:
    from croniter import croniter as Croniter

__all__ = [
    "CronError",
    "CronSchedule",
    "InvalidTriggerSpec",
    "TriggerSpec",
    "format_humantime",
    "parse_trigger_spec",
    "system_table_spec",
]

_FORMS = ("expect one of the following forms: 'table:<TABLE_NAME>', 'all_tables', "
          "'cron:<CRON_EXPRESSION>', 'every:<DURATION>', or 'request:<PATH>' "
          "(Weir also accepts 'parquet:all_tables' and 'parquet:<TABLE_NAME>')")

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
_YEAR_NS = 31_557_600 * NS_PER_S  # humantime's year: 365.25 days


def _croniter(expression: str, start: datetime, **kw: bool) -> Croniter:
    """croniter, imported on first use: with dateutil it costs ~50 ms, which every server
    start and CLI call paid whether or not a trigger had a schedule."""
    from croniter import croniter
    return croniter(expression, start, **kw)


class InvalidTriggerSpec(CatalogError):
    """A trigger specification that cannot be parsed. The reference answers 500."""

    def __init__(self, spec: str, context: str | None = None) -> None:
        msg = f"failed to parse trigger from {spec}"
        super().__init__(f"{msg}: {context}" if context else msg)
        self.spec = spec
        self.context = context


# ---- humantime ---------------------------------------------------------------------


def format_humantime(ns: int) -> str:
    """Format a duration the way humantime's `format_duration` does (`1h 30m`,
    `1day`, `2months`, `1ms 234us 567ns`)."""
    if ns <= 0:
        return "0s"
    secs, nanos = divmod(ns, NS_PER_S)
    years, secs = divmod(secs, 31_557_600)
    months, secs = divmod(secs, 2_630_016)
    days, secs = divmod(secs, 86_400)
    hours, secs = divmod(secs, 3_600)
    minutes, secs = divmod(secs, 60)
    millis, nanos = divmod(nanos, 1_000_000)
    micros, nanos = divmod(nanos, 1_000)
    parts = []
    for n, one, many in ((years, "year", "years"), (months, "month", "months"),
                         (days, "day", "days")):
        if n:
            parts.append(f"{n}{one if n == 1 else many}")
    for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s"), (millis, "ms"),
                    (micros, "us"), (nanos, "ns")):
        if n:
            parts.append(f"{n}{unit}")
    return " ".join(parts)


def _parse_every(spec: str, text: str) -> int:
    try:
        secs = parse_duration(text)
    except DurationError:
        raise InvalidTriggerSpec(spec, "couldn't parse to duration") from None
    ns = round(secs * NS_PER_S)
    if ns > _YEAR_NS:
        raise InvalidTriggerSpec(spec, "don't support every schedules of over 1 year")
    if ns < NS_PER_MS:
        raise InvalidTriggerSpec(spec, "every schedules must be at least 1ms")
    return ns


# ---- cron --------------------------------------------------------------------------

_MONTHS = {name: i + 1 for i, names in enumerate((
    ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
    ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
    ("sep", "september"), ("oct", "october"), ("nov", "november"), ("dec", "december"),
)) for name in names}
_WEEKDAYS = {name: i + 1 for i, names in enumerate((
    ("sun", "sunday"), ("mon", "monday"), ("tue", "tues", "tuesday"),
    ("wed", "wednesday"), ("thu", "thurs", "thursday"), ("fri", "friday"),
    ("sat", "saturday"),
)) for name in names}

_SHORTHANDS = {
    "@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *", "@weekly": "0 0 0 * * 1",
    "@daily": "0 0 0 * * *", "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}


@dataclass(frozen=True)
class _Unit:
    name: str
    lo: int
    hi: int
    names: dict[str, int] = field(default_factory=dict)
    any_ok: bool = False  # `?` allowed


_SECONDS = _Unit("Seconds", 0, 59)
_MINUTES = _Unit("Minutes", 0, 59)
_HOURS = _Unit("Hours", 0, 23)
_DOM = _Unit("Days of Month", 1, 31, any_ok=True)
_MONTH = _Unit("Months", 1, 12, _MONTHS)
_DOW = _Unit("Days of Week", 1, 7, _WEEKDAYS, any_ok=True)
_YEARS = _Unit("Years", 1970, 2099)

_NUM = re.compile(r"\d+")
_NAME = re.compile(r"[A-Za-z]+")


class CronError(ValueError):
    """A cron expression the reference dialect does not accept."""


def _ordinal(unit: _Unit, tok: str) -> int:
    if _NUM.fullmatch(tok):
        v = int(tok)
    elif _NAME.fullmatch(tok) and unit.names:
        try:
            v = unit.names[tok.lower()]
        except KeyError:
            kind = "month name" if unit is _MONTH else "day of the week"
            raise CronError(f"'{tok}' is not a valid {kind}.") from None
    else:
        raise CronError(f"invalid value '{tok}' for {unit.name}")
    if not unit.lo <= v <= unit.hi:
        raise CronError(f"{unit.name} must be between {unit.lo} and {unit.hi} "
                         f"('{tok}' specified)")
    return v


def _expand_item(unit: _Unit, item: str) -> set[int]:
    """One comma-separated item of a field, expanded to its values (crate rules)."""
    base, slash, step_text = item.partition("/")
    if slash:
        if not _NUM.fullmatch(step_text):
            raise CronError(f"invalid step '{step_text}' for {unit.name}")
        step = int(step_text)
        if step == 0:
            raise CronError("range step cannot be zero")
        if step > unit.hi:
            raise CronError(f"{unit.name} step must be between 1 and {unit.hi} "
                             f"('{step}' specified)")
    else:
        step = 1
    if base == "*" or (base == "?" and unit.any_ok):
        lo, hi = unit.lo, unit.hi
    elif "-" in base:
        a, _, b = base.partition("-")
        lo, hi = _ordinal(unit, a), _ordinal(unit, b)
        if lo > hi:
            raise CronError(f"Invalid range for {unit.name}: {base}")
    else:
        if slash and not _NUM.fullmatch(base):
            raise CronError(f"a step needs '*', a number or a range before it: '{item}'")
        lo = _ordinal(unit, base)
        hi = unit.hi if slash else lo  # `5/15` means 5, 20, 35, ... up to the maximum
    return set(range(lo, hi + 1, step))


_DOM_SPECIAL = re.compile(r"(?i)^(L|\d{1,2}W)$")
_DOW_SPECIAL = re.compile(r"(?i)^([A-Za-z]+|\d)(L|#[1-5])$")


def _field(unit: _Unit, text: str) -> str:
    """Translate one field to croniter syntax: `*` or explicit values (plus specials)."""
    items = text.split(",")
    if any(not it for it in items):
        raise CronError(f"empty value in {unit.name} field '{text}'")
    if len(items) == 1 and items[0] in ("*", "?") and (items[0] == "*" or unit.any_ok):
        return "*"
    values: set[int] = set()
    specials: list[str] = []
    for it in items:
        if unit is _DOM and _DOM_SPECIAL.match(it):
            tok = it.upper()
            if tok != "L":
                _ordinal(_DOM, tok[:-1])
            specials.append(tok)
            continue
        m = _DOW_SPECIAL.match(it) if unit is _DOW else None
        if m:
            day = _ordinal(_DOW, m.group(1)) - 1  # croniter: 0 = Sunday
            mark = m.group(2).upper()
            specials.append(f"L{day}" if mark == "L" else f"{day}{mark}")
            continue
        if unit is _DOW and it.upper() == "L":
            values.add(7)  # Quartz: `L` alone in day-of-week is Saturday
            continue
        values |= _expand_item(unit, it)
    if unit is _DOW:
        values = {v - 1 for v in values}
    if not specials and values == set(range(unit.lo - (unit is _DOW),
                                            unit.hi + 1 - (unit is _DOW))):
        return "*"
    return ",".join([*(str(v) for v in sorted(values)), *specials])


@dataclass(frozen=True)
class CronSchedule:
    """A parsed reference-dialect cron expression; `next_after` gives fire times."""

    expression: str
    croniter_expression: str

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        expr = expression.strip()
        text = _SHORTHANDS.get(expr.lower(), expr) if expr.startswith("@") else expr
        if text.startswith("@"):
            raise CronError(f"unknown shorthand '{expr}': use @yearly, @monthly, @weekly, "
                             "@daily or @hourly")
        parts = text.split()
        if len(parts) not in (6, 7):
            raise CronError(
                f"cron expressions have 6 or 7 fields, seconds first "
                f"(sec min hour day-of-month month day-of-week [year], e.g. "
                f"'0 */5 * * * *'); got {len(parts)}")
        units = (_SECONDS, _MINUTES, _HOURS, _DOM, _MONTH, _DOW, _YEARS)
        out = [_field(u, p) for u, p in zip(units, parts, strict=False)]
        if len(out) == 7 and out[6] == "*":
            out.pop()
        translated = " ".join(out)
        try:
            _croniter(translated, datetime(2000, 1, 1, tzinfo=UTC), day_or=False,
                     second_at_beginning=True)
        # croniter's own validation of the specials; it raises more than CroniterError
        except Exception as e:  # noqa: BLE001 - any croniter failure: a bad expression
            raise CronError(str(e)) from None
        schedule = cls(expression=expr, croniter_expression=translated)
        if schedule.next_after(datetime.now(UTC)) is None:
            raise CronError("the expression never fires after now")
        return schedule

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after `after` (UTC), or None if there is none."""
        if after.tzinfo is None:
            after = after.replace(tzinfo=UTC)
        it = _croniter(self.croniter_expression, after.astimezone(UTC), day_or=False,
                      second_at_beginning=True)
        try:
            nxt: datetime = it.get_next(datetime)
        # croniter raises when no date matches (e.g. Feb 30), and not one exception type
        except Exception:  # noqa: BLE001 - any croniter failure: no next date
            return None
        return nxt.astimezone(UTC)

    def prev_at_or_before(self, at: datetime) -> datetime | None:
        """The last fire time at or before `at` (UTC), or None if there is none."""
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        # fire times are whole seconds: the last one before the next second
        base = at.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        it = _croniter(self.croniter_expression, base, day_or=False, second_at_beginning=True)
        try:
            prev: datetime = it.get_prev(datetime)
        # as in next_after: croniter raises when no earlier date matches
        except Exception:  # noqa: BLE001 - any croniter failure: no earlier date
            return None
        return prev.astimezone(UTC)

    def count_between(self, after_s: int, until_s: int) -> int:
        """How many fire times f there are with `after_s` < f <= `until_s` (Unix seconds).

        Exact, in one croniter step per matching day rather than one per fire time (a
        per-second expression fires 86,400 times a day): the day fields choose the days,
        and every matching day has the same times of day.
        """
        if until_s <= after_s:
            return 0
        fields = self.croniter_expression.split()
        times = _times_of_day(fields[0], fields[1], fields[2])
        first_day = after_s - after_s % 86_400
        days = _croniter(" ".join(["0", "0", "0", *fields[3:]]),
                        datetime.fromtimestamp(first_day - 1, UTC), day_or=False,
                        second_at_beginning=True)
        count = 0
        while True:
            try:
                day = int(days.get_next(float))
            # as in next_after: croniter raises when no later date matches
            except Exception:  # noqa: BLE001 - any croniter failure: no more days
                return count
            if day > until_s:
                return count
            count += (bisect.bisect_right(times, until_s - day)
                      - bisect.bisect_right(times, after_s - day))


def _times_of_day(seconds: str, minutes: str, hours: str) -> list[int]:
    """The sorted seconds of the day at which a translated expression fires (its first
    three fields are `*` or explicit values: `_field` writes no ranges or steps)."""

    def values(text: str, hi: int) -> list[int]:
        return list(range(hi + 1)) if text == "*" else [int(v) for v in text.split(",")]

    return sorted(h * 3600 + m * 60 + s for h in values(hours, 23)
                  for m in values(minutes, 59) for s in values(seconds, 59))


# ---- trigger specifications ---------------------------------------------------------


@dataclass(frozen=True)
class TriggerSpec:
    """A parsed trigger specification.

    `kind` is the plugin type: ``wal``, ``schedule``, ``request`` or ``parquet``.
    `table` is None for all-tables triggers.
    """

    kind: str
    table: str | None = None
    cron: CronSchedule | None = None
    every_ns: int | None = None
    path: str | None = None

    def canonical(self) -> str:
        """The string form the reference's CLI sends and `show summary` prints."""
        if self.kind == "wal":
            return f"table:{self.table}" if self.table is not None else "all_tables"
        if self.kind == "schedule":
            if self.cron is not None:
                return f"cron:{self.cron.expression}"
            return f"every:{format_humantime(self.every_ns or 0)}"
        if self.kind == "request":
            return f"request:{self.path}"
        if self.table is None:
            return "parquet:all_tables"
        return f"parquet:table:{self.table}" if self.table == "all_tables" \
            else f"parquet:{self.table}"

    def system_table_json(self) -> str:
        """`system.processing_engine_triggers.trigger_specification`: the JSON of the
        reference's internal enum (`"all_tables_wal_write"`, `{"schedule": ...}`...)."""
        if self.kind == "wal":
            value: object = ({"single_table_wal_write": {"table_name": self.table}}
                             if self.table is not None else "all_tables_wal_write")
        elif self.kind == "schedule" and self.cron is not None:
            value = {"schedule": {"schedule": self.cron.expression}}
        elif self.kind == "schedule":
            secs, nanos = divmod(self.every_ns or 0, NS_PER_S)
            value = {"every": {"duration": {"secs": secs, "nanos": nanos}}}
        elif self.kind == "request":
            value = {"request_path": {"path": self.path}}
        else:
            value = ({"parquet_persist_table": {"table_name": self.table}}
                     if self.table is not None else "parquet_persist_all_tables")
        return json.dumps(value, separators=(",", ":"))

    @property
    def restriction_name(self) -> str:
        """The type name in `--restrict-plugin-triggers-to` refusals."""
        return {"wal": "WalRows", "schedule": "Schedule", "request": "Request",
                "parquet": "ParquetPersist"}[self.kind]

    @property
    def restriction_key(self) -> str:
        """The word `--restrict-plugin-triggers-to` uses for this kind."""
        return self.kind

    @property
    def request_path(self) -> str | None:
        """The path matched against `/api/v3/engine/<rest>` (leading `/` ignored)."""
        return self.path.lstrip("/") if self.path is not None else None

    def next_fire_after(self, after_s: float) -> float | None:
        """The next fire time (Unix seconds) strictly after `after_s`, for schedules.

        `every:` times are multiples of the duration since the epoch, computed in whole
        milliseconds like the reference. Returns None when a cron expression can never
        fire again.
        """
        if self.every_ns is not None:
            d_ms = self.every_ns // NS_PER_MS
            now_ms = math.floor(after_s * 1000)
            return (now_ms // d_ms + 1) * d_ms / 1000
        if self.cron is not None:
            # cron resolution is one second: the next time strictly after `after_s`.
            base = datetime.fromtimestamp(math.floor(after_s), UTC)
            nxt = self.cron.next_after(base)
            return nxt.timestamp() if nxt is not None else None
        raise ValueError(f"{self.canonical()} is not a schedule")


def parse_trigger_spec(spec: str) -> TriggerSpec:
    """Parse a trigger specification; raises InvalidTriggerSpec with the reference's
    message (`failed to parse trigger from <spec>: <context>`)."""
    s = spec.strip()
    if s.startswith("table:"):
        name = s
        while name.startswith("table:"):
            name = name[len("table:"):]
        name = name.strip()
        if not name:
            raise InvalidTriggerSpec(spec, "table name is empty")
        return TriggerSpec(kind="wal", table=name)
    if s in ("all_tables", "all-tables"):  # the docs spell it both ways
        return TriggerSpec(kind="wal")
    if s.startswith(("cron:", "schedule:")):  # `schedule:<cron>` is the docs' older name
        expr = s.split(":", 1)[1].strip()
        try:
            return TriggerSpec(kind="schedule", cron=CronSchedule.parse(expr))
        except CronError as e:
            raise InvalidTriggerSpec(spec, f"invalid cron expression '{expr}': {e}") from None
    if s.startswith("every:"):
        return TriggerSpec(kind="schedule", every_ns=_parse_every(spec, s[len("every:"):]))
    if s.startswith("request:"):
        path = s[len("request:"):].strip()
        if not path:
            raise InvalidTriggerSpec(spec, "request path is empty")
        return TriggerSpec(kind="request", path=path)
    if s.startswith("parquet:"):
        rest = s[len("parquet:"):].strip()
        if rest == "all_tables":
            return TriggerSpec(kind="parquet")
        if rest.startswith("table:"):
            rest = rest[len("table:"):].strip()
        if not rest:
            raise InvalidTriggerSpec(spec, "table name is empty")
        return TriggerSpec(kind="parquet", table=rest)
    raise InvalidTriggerSpec(spec, _FORMS)


def system_table_spec(spec: str) -> str:
    """A stored specification as `system.processing_engine_triggers` shows it: the
    reference's JSON, or the text itself if it does not parse."""
    try:
        return parse_trigger_spec(spec).system_table_json()
    except InvalidTriggerSpec:
        return spec
