"""Schedule triggers across a restart, in process (a real database on the memory object
store, real worker processes; a "restart" is a new engine over the same database): the
durable record, the missed-runs report, `catch_up`, and when a schedule starts afresh.
The same with real servers and kill -9 is in test_engine_schedule_restart.py."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from support.inprocess import (
    fast_options,
    make_config,
    open_database,
    query_rows,
    start_engine,
    wait_for,
    write,
)
from weir.catalog import TriggerDefinition
from weir.database import Database
from weir.engine import EngineOptions, ProcessingEngine
from weir.engine.schedule import ScheduleState, rfc3339
from weir.engine.specs import NS_PER_S
from weir.errors import InvalidRequest

pytestmark = pytest.mark.anyio

TICK = """
    import json
    def process_scheduled_call(influxdb3_local, call_time, args=None):
        influxdb3_local.write(LineBuilder("ticks").tag("trigger", args["name"])
                              .string_field("at", call_time.isoformat())
                              .string_field("args", json.dumps(args, sort_keys=True)))
    """


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(make_config(tmp_path)) as db:
        await write(db, "foo", "setup v=1i")
        yield db


class Engines:
    """Engines over one database, one at a time: `restart()` stops the running one."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.current: ProcessingEngine | None = None

    async def start(self, options: EngineOptions | None = None) -> ProcessingEngine:
        eng = await start_engine(self.db, options)
        self.current = eng
        return eng

    async def stop(self) -> None:
        if self.current is not None:
            await self.current.stop()
            self.current = None

    async def restart(self, pause: float = 0.0, options: EngineOptions | None = None
                      ) -> ProcessingEngine:
        await self.stop()
        # the server is down: nothing runs (the loop is blocked on purpose)
        time.sleep(pause)  # noqa: ASYNC251 - nothing in this process may run meanwhile
        return await self.start(options)


@pytest.fixture
async def engines(db: Database) -> AsyncIterator[Engines]:
    e = Engines(db)
    try:
        yield e
    finally:
        await e.stop()


def plugin(engine: ProcessingEngine, name: str, code: str) -> str:
    (engine.files.plugin_dir / name).write_text(textwrap.dedent(code))
    return name


def logs(engine: ProcessingEngine, trigger: str) -> list[str]:
    return [e.log_text for e in engine.logs.entries(trigger)]


async def create(engine: ProcessingEngine, name: str, spec: str, **kw: Any) -> None:
    plugin(engine, "tick.py", TICK)
    args = {"name": name, "k": "v, with = signs"}
    await engine.create_trigger(database="foo", trigger_name=name, plugin_filename="tick.py",
                                trigger_specification=spec, trigger_arguments=args, **kw)


async def ticks(db: Database, trigger: str) -> list[dict[str, Any]]:
    try:
        return await query_rows(db, "foo", "SELECT at, args FROM ticks WHERE trigger = "
                                            f"'{trigger}' ORDER BY at")
    except Exception:  # noqa: BLE001 - the table does not exist yet
        return []


async def record(db: Database, trigger: str) -> ScheduleState | None:
    data = await db.load_trigger_state("foo", trigger)
    return None if data is None else ScheduleState.from_json(data)


def at(ns: int) -> str:
    """A fire time as the plugin's `call_time.isoformat()` shows it (naive UTC)."""
    return datetime.fromtimestamp(ns // NS_PER_S, UTC).replace(tzinfo=None).isoformat()


def missed_line(engine: ProcessingEngine, trigger: str) -> str | None:
    return next((t for t in logs(engine, trigger) if t.startswith("missed ")), None)


async def test_the_record_follows_each_run_and_never_precedes_it(
        engines: Engines, db: Database) -> None:
    eng = await engines.start()
    plugin(eng, "slow.py", """
        import time
        def process_scheduled_call(influxdb3_local, call_time, args=None):
            time.sleep(1.5)
        """)
    before = time.time_ns()
    await eng.create_trigger(database="foo", trigger_name="slow", plugin_filename="slow.py",
                             trigger_specification="every:1s")
    # a new trigger's record starts at its start: nothing before it was owed
    fresh = await wait_for(lambda: record(db, "slow"))
    assert fresh.last_run_ns is None and fresh.covered_until_ns >= before
    assert fresh.trigger_specification == "every:1s"
    await wait_for(lambda: any(t.startswith("starting execution") for t in logs(eng, "slow")))
    assert await record(db, "slow") == fresh  # running, not done
    await wait_for(lambda: any(t.startswith("finished execution") for t in logs(eng, "slow")))
    done = await wait_for(lambda: _with_run(db, "slow"))
    first = next(t for t in logs(eng, "slow") if t.startswith("starting execution"))
    ran = datetime.fromtimestamp(done.last_run_ns // NS_PER_S, UTC)  # type: ignore[operator]
    assert first == f"starting execution with scheduled time {ran:%Y-%m-%d %H:%M:%S} UTC"
    assert done.covered_until_ns == done.last_run_ns and done.last_run_ns % NS_PER_S == 0
    raw = json.loads(await db.load_trigger_state("foo", "slow") or b"")
    assert raw["last_run"] == rfc3339(done.last_run_ns)
    assert raw["database"] == "foo" and raw["trigger_name"] == "slow"


async def _with_run(db: Database, trigger: str) -> ScheduleState | None:
    r = await record(db, trigger)
    return r if r is not None and r.last_run_ns is not None else None


@pytest.mark.parametrize("run_async", [False, True])
async def test_catch_up_runs_once_for_the_missed_window(engines: Engines, db: Database,
                                                        run_async: bool) -> None:
    eng = await engines.start()
    await create(eng, "caught", "every:1s", catch_up=True, run_async=run_async)
    await create(eng, "reported", "every:1s", run_async=run_async)
    await wait_for(lambda: _with_run(db, "caught"))
    await wait_for(lambda: _with_run(db, "reported"))
    await engines.stop()
    before = {name: await record(db, name) for name in ("caught", "reported")}
    time.sleep(3.2)  # noqa: ASYNC251 - the server is down: the loop is blocked on purpose
    eng = await engines.start()
    line = await wait_for(lambda: missed_line(eng, "caught"))
    # the window: after the last run recorded, up to the restart
    first, last = _window(line)
    assert first == before["caught"].covered_until_ns + NS_PER_S  # type: ignore[union-attr]
    assert line == (f"missed {(last - first) // NS_PER_S + 1} scheduled runs while the server "
                    f"was down (from {rfc3339(first)} to {rfc3339(last)}); catch_up: running "
                    f"one catch-up call with scheduled time {rfc3339(last)}")
    assert 3 <= (last - first) // NS_PER_S + 1 <= 12
    rows = await wait_for(lambda: _rows_after(db, "caught", last))
    in_window = [r for r in rows if at(first) <= r["at"] <= at(last)]
    assert [r["at"] for r in in_window] == [at(last)]  # one call, the last missed time
    assert {r["args"] for r in rows} == {json.dumps({"k": "v, with = signs", "name": "caught"},
                                                    sort_keys=True)}
    assert any(t.startswith("starting catch-up execution with scheduled time ")
               and t.endswith(f"(for the {(last - first) // NS_PER_S + 1} missed runs)")
               for t in logs(eng, "caught"))
    # without catch_up: reported, not run
    line = await wait_for(lambda: missed_line(eng, "reported"))
    first, last = _window(line)
    assert first == before["reported"].covered_until_ns + NS_PER_S  # type: ignore[union-attr]
    assert line.endswith("; they are not run (the trigger setting catch_up runs one call "
                         "for them)")
    rows = await wait_for(lambda: _rows_after(db, "reported", last))
    assert [r for r in rows if at(first) <= r["at"] <= at(last)] == []
    # the record moved past the reported window (a second restart does not report it again)
    r = await record(db, "reported")
    assert r is not None and r.covered_until_ns >= last


def _window(line: str) -> tuple[int, int]:
    text = line.split("(from ", 1)[1].split(")", 1)[0]
    a, b = text.split(" to ")
    return _parse(a), _parse(b)


def _parse(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * NS_PER_S


async def _rows_after(db: Database, trigger: str, t: int) -> list[dict[str, Any]] | None:
    """The trigger's rows once one of its regular runs after `t` is there."""
    rows = await ticks(db, trigger)
    return rows if any(r["at"] > at(t) for r in rows) else None


async def test_a_cron_schedule_catches_up_from_its_record(engines: Engines,
                                                          db: Database) -> None:
    # a trigger that last ran ~10 s ago, in the catalog as a server would find it
    now = time.time_ns()
    covered = now - 10 * NS_PER_S - NS_PER_S // 2
    covered -= covered % (2 * NS_PER_S)
    (db.config.plugin_dir / "tick.py").write_text(textwrap.dedent(TICK))
    db.catalog.create_trigger(_defn("even", "cron:*/2 * * * * *", catch_up=True))
    await db.save_trigger_state("foo", "even", ScheduleState(
        "cron:*/2 * * * * *", covered, covered).to_json("foo", "even"))
    eng = await engines.start()
    line = await wait_for(lambda: missed_line(eng, "even"))
    first, last = _window(line)
    assert first == covered + 2 * NS_PER_S and last % (2 * NS_PER_S) == 0
    assert line.startswith(f"missed {(last - first) // (2 * NS_PER_S) + 1} scheduled runs")
    rows = await wait_for(lambda: _rows_after(db, "even", last))
    assert [r["at"] for r in rows if r["at"] <= at(last)] == [at(last)]


def _defn(name: str, spec: str, **kw: Any) -> TriggerDefinition:
    return TriggerDefinition(trigger_name=name, plugin_filename="tick.py", database="foo",
                             trigger_specification=spec,
                             trigger_arguments={"name": name, "k": "v"}, **kw)


async def test_a_restart_within_the_interval_misses_nothing(engines: Engines,
                                                             db: Database) -> None:
    eng = await engines.start()
    second = (datetime.now(UTC).second + 30) % 60  # next fire 29-30 s away at least
    await create(eng, "minutely", f"cron:{second} * * * * *", catch_up=True)
    await wait_for(lambda: record(db, "minutely"))
    eng = await engines.restart()
    assert await wait_for(lambda: [t for t in logs(eng, "minutely") if "missed" in t]) == [
        "no scheduled run was missed while the server was down (it had not run yet)"]
    assert await ticks(db, "minutely") == []


async def test_catch_up_only_for_schedules(engines: Engines, db: Database) -> None:
    eng = await engines.start()
    plugin(eng, "w.py", "def process_writes(influxdb3_local, table_batches, args=None):\n"
                        "    pass\n")
    plugin(eng, "r.py", "def process_request(influxdb3_local, query_parameters, "
                        "request_headers, request_body, args=None):\n    return 'x'\n")
    for name, spec, file in (("wal_t", "table:cpu", "w.py"), ("all_t", "all_tables", "w.py"),
                             ("req_t", "request:r", "r.py")):
        with pytest.raises(InvalidRequest) as e:
            await eng.create_trigger(database="foo", trigger_name=name, plugin_filename=file,
                                     trigger_specification=spec, catch_up=True)
        assert str(e.value) == (f"trigger '{name}' cannot catch up: catch_up is only for "
                                f"schedule triggers (every:, cron:), and its spec is "
                                f"'{spec}'")
        assert name not in [t.trigger_name for t in eng.catalog.triggers("foo")]


async def test_disable_enable_and_recreate_start_afresh(engines: Engines,
                                                        db: Database) -> None:
    eng = await engines.start()
    await create(eng, "t", "every:1s", catch_up=True)
    await wait_for(lambda: _with_run(db, "t"))
    await eng.disable_trigger("foo", "t")
    # disabled: its fire times are not missed, nobody wanted them
    time.sleep(2.2)  # noqa: ASYNC251 - the loop is blocked on purpose: nothing runs meanwhile
    enabled_at = time.time_ns()
    await eng.enable_trigger("foo", "t")
    r = await wait_for(lambda: record(db, "t"))
    assert r.covered_until_ns >= enabled_at - NS_PER_S
    # a restart while disabled, then enable: the same
    await eng.disable_trigger("foo", "t")
    eng = await engines.restart(pause=1.5)
    await eng.enable_trigger("foo", "t")
    await wait_for(lambda: any(t.startswith("starting execution") for t in logs(eng, "t")))
    assert [t for t in logs(eng, "t") if "missed" in t] == []
    # deleting forgets the record; a namesake created later starts afresh
    await wait_for(lambda: _with_run(db, "t"))
    await eng.delete_trigger("foo", "t", force=True)
    assert await db.load_trigger_state("foo", "t") is None
    created_at = time.time_ns()
    await create(eng, "t", "every:1s", catch_up=True)
    r = await wait_for(lambda: record(db, "t"))
    assert r.covered_until_ns >= created_at


async def test_a_run_cut_short_by_the_stop_is_not_recorded(engines: Engines,
                                                           db: Database) -> None:
    slow_retry = fast_options(retry_base_delay=30.0, retry_max_delay=30.0)
    eng = await engines.start(slow_retry)
    plugin(eng, "fail.py", """
        def process_scheduled_call(influxdb3_local, call_time, args=None):
            raise ValueError("no")
        """)
    for name, behavior in (("retrying", "retry"), ("logging", "log")):
        await eng.create_trigger(database="foo", trigger_name=name, plugin_filename="fail.py",
                                 trigger_specification="every:1s", error_behavior=behavior)
    await wait_for(lambda: any("will retry in" in t for t in logs(eng, "retrying")))
    start = next(t for t in logs(eng, "retrying") if t.startswith("starting execution"))
    fire = datetime.strptime(start, "starting execution with scheduled time %Y-%m-%d %H:%M:%S "
                                    "UTC").replace(tzinfo=UTC)
    # a failure that error_behavior=log has dealt with is a run done
    await wait_for(lambda: _with_run(db, "logging"))
    eng = await engines.restart(options=slow_retry)
    # the retry was cut short by the stop: that fire time was missed
    line = await wait_for(lambda: missed_line(eng, "retrying"))
    assert (f"(from {rfc3339(int(fire.timestamp()) * NS_PER_S)} to " in line
            or f"(at {rfc3339(int(fire.timestamp()) * NS_PER_S)});" in line)


async def test_unreadable_and_foreign_records(engines: Engines, db: Database) -> None:
    eng = await engines.start()
    plugin(eng, "tick.py", TICK)
    eng.catalog.create_trigger(_defn("garbled", "every:1s"))
    eng.catalog.create_trigger(_defn("foreign", "every:1s"))
    await db.save_trigger_state("foo", "garbled", b"{not json")
    old = time.time_ns() - 60 * NS_PER_S
    await db.save_trigger_state("foo", "foreign", ScheduleState(
        "every:5s", old, old).to_json("foo", "foreign"))
    eng = await engines.restart()
    said = await wait_for(lambda: [t for t in logs(eng, "garbled") if "record" in t])
    assert len(said) == 1 and said[0].startswith("the schedule's record is unreadable (not "
                                                 "JSON: ")
    assert said[0].endswith("); starting afresh")
    await wait_for(lambda: _with_run(db, "foreign"))
    assert [t for t in logs(eng, "foreign") if "missed" in t] == []
    await wait_for(lambda: _with_run(db, "garbled"))
