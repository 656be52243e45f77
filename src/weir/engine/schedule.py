"""Schedule triggers (`every:<duration>`, `cron:<expr>`): calls at each fire time.

A schedule sleeps until its next fire time; runs of one trigger never overlap (unless
it is `run_async`). If a run overruns, later fire times are run back to back (none is
skipped).

**Across a restart.** After each run has ended (its write-back included, its error
handled by `error_behavior`) the trigger records how far it has come, durably, in the
object store (`weir.ports.TriggerStateStore`: `<node_id>/triggers/<db>/<trigger>.json`,
one small put per run, the latest winning when runs are quicker than puts):

    {"format": 1, "database": "mydb", "trigger_name": "hourly",
     "trigger_specification": "every:1h",
     "covered_until": "2026-12-03T04:00:00Z", "covered_until_ns": 1796270400000000000,
     "last_run": "2026-12-03T04:00:00Z", "last_run_ns": 1796270400000000000,
     "updated_at": "2026-12-03T04:00:00.412Z"}

`covered_until` is the fire time up to which nothing more is owed: every fire time at or
before it was run, was reported missed, or came before the trigger started. `last_run`
is the fire time of the last run that ended (null until one has). A run that the server
stopped or died in is never recorded. When the trigger starts again (after a clean stop
or a kill -9), the fire times after `covered_until` up to now were missed while the
server was down: their count and range go to the trigger's log (one line, however long
the outage). With the trigger setting `catch_up`, one catch-up call follows, before the
schedule resumes: an ordinary `process_scheduled_call` with the same arguments and
`call_time` = the last missed fire time. Without it the missed runs are only reported.

A trigger that is created, or enabled after being disabled, starts afresh: only the time
the server was down while the trigger was enabled counts as missed. Each record is
written after its run, so a kill -9 between a run's end and its record makes that run
count as missed too (and, with `catch_up`, a catch-up call may repeat the last one).
"""

from __future__ import annotations

import asyncio
import calendar
import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from weir.catalog import TriggerDefinition
from weir.engine.loader import PluginRef
from weir.engine.specs import NS_PER_MS, NS_PER_S, TriggerSpec
from weir.engine.triggers import Outcome, RunnerHost, TriggerRunner
from weir.ports import TriggerStateStore

# (TriggerStateStore: re-exported for the engine, whose storage must be one)
__all__ = ["MissedRuns", "ScheduleHost", "ScheduleState", "ScheduleTriggerRunner",
           "TriggerStateStore", "missed_runs", "next_fire_ns", "rfc3339"]

STATE_FORMAT = 1


# ---- fire times in nanoseconds ---------------------------------------------------------


def rfc3339(ns: int) -> str:
    """A Unix time in ns as RFC 3339 UTC: `2026-12-03T04:20:01Z`, with as many fraction
    digits as it needs (`...01.5Z`, `...01.000000001Z`)."""
    secs, frac = divmod(ns, NS_PER_S)
    text = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{frac:09d}".rstrip("0") if frac else "") + "Z"


def _every_period_ns(spec: TriggerSpec) -> int:
    """An `every:` schedule's period as its fire times use it: whole milliseconds (as
    `TriggerSpec.next_fire_after` computes them, like the reference)."""
    return ((spec.every_ns or 0) // NS_PER_MS) * NS_PER_MS


def next_fire_ns(spec: TriggerSpec, after_ns: int) -> int | None:
    """The first fire time strictly after `after_ns` (Unix ns), or None if the schedule
    never fires again: the same times as `TriggerSpec.next_fire_after`, in integers."""
    if spec.every_ns is not None:
        period = _every_period_ns(spec)
        return (after_ns // period + 1) * period
    if spec.cron is not None:
        nxt = spec.cron.next_after(datetime.fromtimestamp(after_ns // NS_PER_S, UTC))
        return None if nxt is None else _ns(nxt)
    raise ValueError(f"{spec.canonical()} is not a schedule")


def _ns(t: datetime) -> int:
    return (calendar.timegm(t.utctimetuple()) * 1_000_000 + t.microsecond) * 1_000


def _clock(ns: int) -> str:
    """A fire time as the runs' start lines show it (whole seconds)."""
    return f"{datetime.fromtimestamp(ns // NS_PER_S, UTC):%Y-%m-%d %H:%M:%S} UTC"


@dataclass(frozen=True)
class MissedRuns:
    """The fire times f of a schedule with `after` < f <= `until`: how many, the first
    and the last (Unix ns)."""

    count: int
    first_ns: int
    last_ns: int

    def describe(self) -> str:
        """`missed 3 scheduled runs while the server was down (from <first> to <last>)`."""
        if self.count == 1:
            return (f"missed 1 scheduled run while the server was down "
                    f"(at {rfc3339(self.first_ns)})")
        return (f"missed {self.count} scheduled runs while the server was down "
                f"(from {rfc3339(self.first_ns)} to {rfc3339(self.last_ns)})")


def missed_runs(spec: TriggerSpec, after_ns: int, until_ns: int) -> MissedRuns | None:
    """The fire times in (`after_ns`, `until_ns`], or None if there is none. `every:` is
    arithmetic; `cron:` takes one croniter step per matching day (run it in a thread when
    the window may be long)."""
    if until_ns <= after_ns:
        return None
    if spec.every_ns is not None:
        period = _every_period_ns(spec)
        a, b = after_ns // period, until_ns // period
        return MissedRuns(b - a, (a + 1) * period, b * period) if b > a else None
    if spec.cron is None:
        raise ValueError(f"{spec.canonical()} is not a schedule")
    first = next_fire_ns(spec, after_ns)
    if first is None or first > until_ns:
        return None
    # fire times are whole seconds: f > after_ns <=> f_s > floor(after_ns), and so on
    after_s, until_s = after_ns // NS_PER_S, until_ns // NS_PER_S
    last = spec.cron.prev_at_or_before(datetime.fromtimestamp(until_s, UTC))
    last_ns = _ns(last) if last is not None else first
    return MissedRuns(spec.cron.count_between(after_s, until_s), first, last_ns)


# ---- the durable record ------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleState:
    """What a schedule trigger records after each run (see the module docstring)."""

    trigger_specification: str
    covered_until_ns: int
    last_run_ns: int | None = None

    def to_json(self, database: str, trigger_name: str) -> bytes:
        last = self.last_run_ns
        return json.dumps({
            "format": STATE_FORMAT, "database": database, "trigger_name": trigger_name,
            "trigger_specification": self.trigger_specification,
            "covered_until": rfc3339(self.covered_until_ns),
            "covered_until_ns": self.covered_until_ns,
            "last_run": None if last is None else rfc3339(last), "last_run_ns": last,
            "updated_at": rfc3339(time.time_ns() // NS_PER_MS * NS_PER_MS),
        }, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ScheduleState:
        """Parse a record; ValueError if it is not one this version writes."""
        try:
            d = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"not JSON: {e}") from None
        if not isinstance(d, dict) or d.get("format") != STATE_FORMAT:
            raise ValueError(f"not a format {STATE_FORMAT} schedule record")
        spec, covered, last = (d.get("trigger_specification"), d.get("covered_until_ns"),
                               d.get("last_run_ns"))
        if (not isinstance(spec, str) or type(covered) is not int
                or not (last is None or type(last) is int)):
            raise ValueError("a field is missing or has the wrong type")
        return cls(spec, covered, last)


# ---- the runner --------------------------------------------------------------------------


class ScheduleHost(RunnerHost, Protocol):
    """What a schedule runner needs of the engine besides what every runner does: where
    its record is kept."""

    @property
    def trigger_states(self) -> TriggerStateStore: ...


class ScheduleTriggerRunner(TriggerRunner):
    """`every:` / `cron:`: reports (and with `catch_up` runs once for) the fire times
    missed while the server was down, then calls at each fire time after its start."""

    what = "schedule"
    context = "schedule plugin"

    def __init__(self, host: ScheduleHost, defn: TriggerDefinition, spec: TriggerSpec,
                 ref: PluginRef) -> None:
        super().__init__(host, defn, spec, ref)
        self._states = host.trigger_states
        self._state: ScheduleState | None = None
        #: runs begun and not yet recorded, in fire-time order: True once handled, False
        #: if the trigger stopped before it was (then nothing after it is recorded either)
        self._runs: dict[int, bool | None] = {}
        #: whether the last attempt of each call in progress succeeded (by id of header)
        self._outcomes: dict[int, bool] = {}
        self._pending: bytes | None = None
        self._writer: asyncio.Task[None] | None = None
        self._write_failed = False

    async def _run(self) -> None:
        now = time.time_ns()
        await self._resume(now)
        next_t = next_fire_ns(self.spec, now)
        while not self._stopping:
            if next_t is None:
                self.log("WARN", "the schedule has no more fire times; the trigger is idle")
                return
            while (delay := next_t - time.time_ns()) > 0:
                if await self._sleep(delay / NS_PER_S):
                    return
            fire = next_t
            await self._fire(fire, f"starting execution with scheduled time {_clock(fire)}")
            next_t = next_fire_ns(self.spec, fire)

    # ---- after a restart -----------------------------------------------------------------

    async def _resume(self, now: int) -> None:
        """Report the fire times missed since the record (and catch up on them if the
        trigger says so); a trigger without a record starts one at `now`."""
        spec = self.spec.canonical()
        state = await self._load(spec)
        if state is None:
            self._save(ScheduleState(spec, now))
            return
        self._state = state
        missed = await asyncio.to_thread(missed_runs, self.spec, state.covered_until_ns, now)
        if missed is None:
            last = (f"the last run was for {rfc3339(state.last_run_ns)}"
                    if state.last_run_ns is not None else "it had not run yet")
            self.log("INFO", f"no scheduled run was missed while the server was down ({last})")
            return
        if not self.defn.catch_up:
            self.log("WARN", f"{missed.describe()}; they are not run (the trigger setting "
                             "catch_up runs one call for them)")
            self._save(replace(state, covered_until_ns=missed.last_ns))
            return
        self.log("WARN", f"{missed.describe()}; catch_up: running one catch-up call with "
                         f"scheduled time {rfc3339(missed.last_ns)}")
        what = "the missed run" if missed.count == 1 else f"the {missed.count} missed runs"
        await self._fire(missed.last_ns, "starting catch-up execution with scheduled time "
                                         f"{_clock(missed.last_ns)} (for {what})")

    async def _load(self, spec: str) -> ScheduleState | None:
        """The trigger's record; None (logged) if it has none usable."""
        try:
            data = await self._states.load_trigger_state(self.db, self.name)
        except Exception as e:  # noqa: BLE001 - any store failure: start afresh, say why
            self.log("ERROR", f"cannot read the schedule's record, so runs missed while the "
                              f"server was down are not known: {type(e).__name__}: {e}")
            return None
        if data is None:
            return None
        try:
            state = ScheduleState.from_json(data)
        except ValueError as e:
            self.log("WARN", f"the schedule's record is unreadable ({e}); starting afresh")
            return None
        if state.trigger_specification != spec:
            return None  # left by an earlier trigger of this name
        return state

    # ---- one run, and its record ---------------------------------------------------------

    async def _fire(self, fire: int, start_line: str) -> None:
        header: dict[str, Any] = {"kind": "schedule", "call_time": fire // NS_PER_S}
        self._runs[fire] = None
        if self.defn.run_async:
            await self._spawn(self._call(fire, header, start_line))
        else:
            await self._call(fire, header, start_line)

    async def invoke(self, header: dict[str, Any], payload: bytes, start_line: str,
                     *args: Any, **kwargs: Any) -> Outcome:
        """Every runner's call, remembering whether it succeeded (for `_call`)."""
        out = await super().invoke(header, payload, start_line, *args, **kwargs)
        self._outcomes[id(header)] = out.ok
        return out

    async def _call(self, fire: int, header: dict[str, Any], start_line: str) -> None:
        try:
            await self.run_with_policy(header, b"", start_line)
        finally:
            ok = self._outcomes.pop(id(header), False)
        # handled: it succeeded, or error_behavior has dealt with its failure; a failure
        # seen while stopping (a retry cut short, a call the shutdown ended) is not
        self._runs[fire] = ok or not self._stopping
        done: int | None = None
        for f, handled in list(self._runs.items()):
            if not handled:
                break
            done = f
            del self._runs[f]
        if done is not None:
            base = self._state or ScheduleState(self.spec.canonical(), done)
            self._save(replace(base, covered_until_ns=max(base.covered_until_ns, done),
                               last_run_ns=done))

    def _save(self, state: ScheduleState) -> None:
        """Record `state` (in the background: the latest one wins)."""
        self._state = state
        self._pending = state.to_json(self.db, self.name)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending(),
                                               name=f"record {self.db}/{self.name}")

    async def _write_pending(self) -> None:
        while self._pending is not None:
            data, self._pending = self._pending, None
            try:
                await self._states.save_trigger_state(self.db, self.name, data)
            # the next run's record tries again
            except Exception as e:  # noqa: BLE001 - any store failure is logged
                if not self._write_failed:  # once per streak of failures
                    self.log("ERROR", f"cannot record the schedule's progress (runs may be "
                                      f"reported missed after a restart): "
                                      f"{type(e).__name__}: {e}")
                self._write_failed = True
            else:
                self._write_failed = False

    async def stop(self, reason: str = "the trigger was stopped", timeout: float | None = None
                   ) -> None:
        """Stop as every runner does, then finish writing the record."""
        await super().stop(reason, timeout)
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            await writer
