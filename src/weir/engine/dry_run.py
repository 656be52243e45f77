"""Plugin test runs (`POST /api/v3/plugin_test/wal` and `/schedule`).

A test run executes a plugin once in the shared dry-run worker: queries are real,
writes are not performed but returned (`database_writes`: each database's
`write_sync*` lines, then its buffered lines) and validated against the real catalog
without changing it; each problem becomes a string in `errors`. If the plugin
raises, the answer is only `errors: ["error executing plugin: <ExcType>: <msg>"]`.
The cache is real, in the namespace named by `cache_name` (default `_shared_test`),
shared by test runs and kept apart from triggers.

Weir runs a directory plugin as the package it is (the reference execs its
`__init__.py` alone, so relative imports fail), and also accepts `every:<dur>` or
`cron:<expr>` as the `schedule`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from weir.catalog import Catalog
from weir.engine.loader import PluginFiles, PluginRef
from weir.engine.specs import CronError, CronSchedule, InvalidTriggerSpec, parse_trigger_spec
from weir.engine.specs import format_humantime as _humantime
from weir.engine.wal_triggers import wal_call
from weir.engine.worker.local_api import database_name_problem
from weir.engine.workers import WorkerDied, WorkerSlot, WorkerStartError
from weir.lineprotocol import FieldType, TableColumns, parse

DEFAULT_SCHEDULE = "* * * * * *"


def _rust_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _line_error(line: str, number: int, message: str) -> str:
    """The reference reports each bad line as the Rust Debug form of its error."""
    return (f"WriteLineError {{ original_line: {_rust_str(line)}, line_number: {number}, "
            f"error_message: {_rust_str(message)} }}")


def _field_type_name(ftype: FieldType) -> str:
    """The catalog's name of a field type (`float`, `integer`, `uinteger`, ...)."""
    return ftype.name.lower()


def validate_writes(catalog: Catalog, writes: dict[str, list[str]]) -> list[str]:
    """Check would-be writes line by line against the catalog (never changing it) and
    against each other; one string per problem."""
    now = time.time_ns()
    errors: list[str] = []
    for db, lines in writes.items():
        problem = database_name_problem(db)
        if problem is not None:
            errors.append(f"database name {db} is invalid: {problem}")
            continue
        schema: dict[str, dict[str, tuple[str, str]]] = {}
        if catalog.db_exists(db):
            for tname, table in catalog.table_schemas(db).items():
                schema[tname] = {c.name: (c.kind, c.type) for c in table.columns.values()}
        for number, line in enumerate(lines, 1):
            parsed = parse(line, precision="ns", default_time_ns=now, stop_on_first_error=True)
            if parsed.errors:
                errors.extend(_line_error(line, number, e.message) for e in parsed.errors)
                continue
            for tname, tc in parsed.tables.items():
                cols = schema.setdefault(tname, {})
                conflict = _conflict(cols, tc)
                if conflict is not None:
                    errors.append(_line_error(line, number, conflict))
                    continue
                for tag in tc.tags:
                    cols.setdefault(tag, ("tag", "tag"))
                for fname, (ftype, _) in tc.fields.items():
                    cols.setdefault(fname, ("field", _field_type_name(ftype)))
    return errors


def _conflict(cols: dict[str, tuple[str, str]], tc: TableColumns) -> str | None:
    for tag in tc.tags:
        known = cols.get(tag)
        if known is not None and known[0] != "tag":
            return f"invalid column type for column '{tag}', expected {known[0]}, got tag"
    for fname, (ftype, _) in tc.fields.items():
        known = cols.get(fname)
        tname = _field_type_name(ftype)
        if known is None:
            continue
        if known[0] != "field":
            return f"invalid column type for column '{fname}', expected {known[0]}, got field"
        if known[1] != tname:
            return (f"invalid field value in line protocol for field '{fname}': expected type "
                    f"{known[1]}, but got {tname}")
    return None


def _merge_writes(result: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for source in (result.get("sync_writes") or {}, result.get("writes") or {}):
        for db, lines in source.items():
            out.setdefault(db, []).extend(lines)
    return out


def _failed(error: str, **extra: Any) -> dict[str, Any]:
    return {**extra, "log_lines": [], "database_writes": {},
            "errors": [f"error executing plugin: {error}"]}


class DryRunner:
    """Runs test calls; `slot` is the dry-run worker (mode `dry_run`)."""

    def __init__(self, catalog: Catalog, files: PluginFiles, slot: WorkerSlot,
                 call_timeout: Callable[[], float | None]) -> None:
        self.catalog = catalog
        self.files = files
        self.slot = slot
        self._call_timeout = call_timeout

    async def wal(self, filename: str, database: str, input_lp: str,
                  input_arguments: dict[str, str] | None = None,
                  cache_name: str | None = None) -> dict[str, Any]:
        ref = await self.files.resolve(filename)  # PluginError: HTTP 500
        parsed = parse(input_lp, precision="ns", default_time_ns=time.time_ns(),
                       stop_on_first_error=True)
        if parsed.errors:
            e = parsed.errors[0]
            return {"log_lines": [], "database_writes": {}, "errors": [
                f"error parsing input line protocol: line {e.line_number}: {e.message}"]}
        items = [(name, tc.to_arrow()) for name, tc in parsed.tables.items()]
        header, payload = wal_call(items)
        return await self._run(ref, header, payload, database, input_arguments, cache_name,
                               "starting execution of wal plugin.")

    async def schedule(self, filename: str, database: str, schedule: str | None = None,
                       input_arguments: dict[str, str] | None = None,
                       cache_name: str | None = None) -> dict[str, Any]:
        ref = await self.files.resolve(filename)
        if not self.catalog.db_exists(database):
            return {"trigger_time": None, "log_lines": [], "database_writes": {},
                    "errors": ["couldn't find db"]}
        expr = (schedule or DEFAULT_SCHEDULE).strip()
        try:
            fire = _next_fire(expr)
        except (CronError, InvalidTriggerSpec) as e:
            return {"trigger_time": None, "log_lines": [], "database_writes": {},
                    "errors": [f"invalid schedule '{expr}': {e}"]}
        when = datetime.fromtimestamp(fire, UTC)
        trigger_time = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        out = await self._run(ref, {"kind": "schedule", "call_time": fire}, b"", database,
                              input_arguments, cache_name,
                              f"starting execution with scheduled time "
                              f"{when:%Y-%m-%d %H:%M:%S} UTC")
        return {"trigger_time": trigger_time, **out}

    async def _run(self, ref: PluginRef, header: dict[str, Any], payload: bytes, database: str,
                   args: dict[str, str] | None, cache_name: str | None,
                   start_line: str) -> dict[str, Any]:
        header = {**header, "plugin": ref.to_wire(), "database": database, "args": args,
                  "cache_name": cache_name, "trigger_name": "dry_run"}
        started = time.perf_counter_ns()
        try:
            result, _ = await self.slot.call(header, payload, timeout=self._call_timeout())
        except WorkerDied as e:
            return _failed(e.reason)
        except WorkerStartError as e:
            return _failed(f"the plugin worker could not start: {e}")
        if not result.get("ok"):
            return _failed(result.get("error") or "unknown error")
        writes = _merge_writes(result)
        logs = [f"INFO: {start_line}", *(result.get("log_lines") or []),
                f"INFO: finished execution in {_humantime(time.perf_counter_ns() - started)}"]
        errors = validate_writes(self.catalog, writes)
        return {"log_lines": logs, "database_writes": writes, "errors": errors}


def _next_fire(expr: str) -> int:
    """The first fire time after now (whole seconds) of a cron expression, or of an
    `every:` / `cron:` trigger specification."""
    now = time.time()
    if expr.startswith(("every:", "cron:")):
        t = parse_trigger_spec(expr).next_fire_after(now)
    else:
        nxt = CronSchedule.parse(expr).next_after(datetime.fromtimestamp(int(now), UTC))
        t = nxt.timestamp() if nxt is not None else None
    if t is None:
        raise CronError("the schedule never fires")
    return int(t)
