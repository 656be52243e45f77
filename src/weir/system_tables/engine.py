"""The processing engine's `system.*` tables (surface.md §4).

In every database: `processing_engine_logs` (the global ring buffer, unfiltered),
`processing_engine_triggers` and `processing_engine_trigger_arguments` (that
database's triggers). In `_internal` also `plugin_files` (every trigger's local
plugin files, across databases; `gh:` plugins have none).

`processing_engine_triggers` has the reference's columns, then Weir's: `public`, the
`delivery` a trigger promises, a WAL trigger's position (`wal_checkpoint`: the last WAL
file it has durably processed; `wal_lag_files`, `wal_lag_rows`, `wal_lag_seconds`: what
waits for it; `wal_lagging`: past --trigger-max-wal-lag; `wal_skipped_files`: deleted
before it read them), the trigger's `last_error`, and last its `node_spec` (which nodes
of a cluster run it: `all` or `nodes:<node-id>,...`, InfluxDB 3 Enterprise's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from weir.catalog import INTERNAL_DB
from weir.system_tables.base import SystemTable

__all__ = ["ARGUMENTS_SCHEMA", "LOGS_SCHEMA", "PLUGIN_FILES_SCHEMA", "TRIGGERS_SCHEMA",
           "EngineTables", "TriggerStatus"]


class TriggerInfo(Protocol):
    @property
    def trigger_name(self) -> str: ...

    @property
    def plugin_filename(self) -> str: ...

    @property
    def trigger_specification(self) -> str: ...

    @property
    def trigger_arguments(self) -> Mapping[str, str] | None: ...

    @property
    def error_behavior(self) -> str: ...

    @property
    def run_async(self) -> bool: ...

    @property
    def disabled(self) -> bool: ...

    @property
    def public(self) -> bool: ...

    @property
    def catch_up(self) -> bool: ...

    @property
    def node_spec(self) -> str: ...


class TriggerCatalog(Protocol):
    def db_exists(self, name: str) -> bool: ...

    def triggers(self, db: str | None = None) -> Iterable[TriggerInfo]: ...


class LogEntryInfo(Protocol):
    @property
    def event_time_ns(self) -> int: ...

    @property
    def trigger_name(self) -> str: ...

    @property
    def log_level(self) -> str: ...

    @property
    def log_text(self) -> str: ...


class PluginLogSource(Protocol):
    def entries(self) -> Iterable[LogEntryInfo]: ...


class PluginFileLister(Protocol):
    def list_files(self, plugin_filename: str) -> Iterable[tuple[str, str, int, int]]:
        """(file name, absolute path, size, modified ms) of a plugin's local files."""
        ...


#: a trigger specification as the triggers table shows it (the reference's JSON)
SpecRenderer = Callable[[str], str]


@dataclass(frozen=True)
class TriggerStatus:
    """What the engine says of a trigger beyond its definition (None: not known, or not
    a WAL trigger)."""

    delivery: str | None = None
    wal_checkpoint: int | None = None
    wal_lag_files: int | None = None
    wal_lag_rows: int | None = None
    wal_lag_seconds: float | None = None
    wal_lagging: bool | None = None
    wal_skipped_files: int | None = None
    last_error: str | None = None


#: the engine's status of a trigger of a database
StatusSource = Callable[[str, TriggerInfo], TriggerStatus]

TRIGGERS_SCHEMA = pa.schema([
    ("trigger_name", pa.string()), ("plugin_filename", pa.string()),
    ("trigger_specification", pa.string()), ("disabled", pa.bool_()),
    ("error_behavior", pa.string()),
    ("public", pa.bool_()),  # Weir: request triggers that answer without a token
    ("catch_up", pa.bool_()),  # Weir: schedules that run one call for runs they missed
    # Weir: the delivery promised, a WAL trigger's position and lag, the last error
    ("delivery", pa.string()), ("wal_checkpoint", pa.int64()),
    ("wal_lag_files", pa.int64()), ("wal_lag_rows", pa.int64()),
    ("wal_lag_seconds", pa.float64()), ("wal_lagging", pa.bool_()),
    ("wal_skipped_files", pa.int64()), ("last_error", pa.string()),
    ("node_spec", pa.string()),  # Enterprise's: `all` or `nodes:<node-id>,...`
])
ARGUMENTS_SCHEMA = pa.schema([
    ("trigger_name", pa.string()), ("argument_key", pa.string()),
    ("argument_value", pa.string()),
])
PLUGIN_FILES_SCHEMA = pa.schema([
    ("plugin_name", pa.string()), ("file_name", pa.string()), ("file_path", pa.string()),
    ("size_bytes", pa.int64()), ("last_modified", pa.int64()),
])
LOGS_SCHEMA = pa.schema([
    pa.field("event_time", pa.timestamp("ns")),
    pa.field("trigger_name", pa.string()),
    pa.field("log_level", pa.string()),
    pa.field("log_text", pa.string()),
])


class EngineTables:
    """The provider of the processing engine's tables."""

    def __init__(self, catalog: TriggerCatalog, logs: PluginLogSource,
                 files: PluginFileLister, *, render_spec: SpecRenderer,
                 status: StatusSource | None = None) -> None:
        self._catalog = catalog
        self._logs = logs
        self._files = files
        self._render_spec = render_spec
        self._status = status

    def __call__(self, database: str, /) -> dict[str, SystemTable]:
        catalog, render, status = self._catalog, self._render_spec, self._status
        tables = {
            "processing_engine_logs": SystemTable(LOGS_SCHEMA,
                                                  lambda: logs_table(self._logs)),
            "processing_engine_triggers": SystemTable(
                TRIGGERS_SCHEMA, lambda: triggers_table(catalog, database, render, status)),
            "processing_engine_trigger_arguments": SystemTable(
                ARGUMENTS_SCHEMA, lambda: arguments_table(catalog, database)),
        }
        if database == INTERNAL_DB:
            tables["plugin_files"] = SystemTable(
                PLUGIN_FILES_SCHEMA, lambda: plugin_files_table(catalog, self._files))
        return tables


def logs_table(logs: PluginLogSource) -> pa.Table:
    items = list(logs.entries())
    return pa.table([
        pa.array([e.event_time_ns for e in items], pa.timestamp("ns")),
        pa.array([e.trigger_name for e in items], pa.string()),
        pa.array([e.log_level for e in items], pa.string()),
        pa.array([e.log_text for e in items], pa.string()),
    ], schema=LOGS_SCHEMA)


def _triggers_of(catalog: TriggerCatalog, database: str) -> list[TriggerInfo]:
    if not catalog.db_exists(database):
        return []
    return list(catalog.triggers(database))


def triggers_table(catalog: TriggerCatalog, database: str, render_spec: SpecRenderer,
                   status: StatusSource | None = None) -> pa.Table:
    ts = _triggers_of(catalog, database)
    ss = [status(database, t) if status is not None else TriggerStatus() for t in ts]
    return pa.table([
        pa.array([t.trigger_name for t in ts], pa.string()),
        pa.array([t.plugin_filename for t in ts], pa.string()),
        pa.array([render_spec(t.trigger_specification) for t in ts], pa.string()),
        pa.array([bool(t.disabled) for t in ts], pa.bool_()),
        pa.array([t.error_behavior for t in ts], pa.string()),
        pa.array([bool(t.public) for t in ts], pa.bool_()),
        pa.array([bool(t.catch_up) for t in ts], pa.bool_()),
        pa.array([s.delivery for s in ss], pa.string()),
        pa.array([s.wal_checkpoint for s in ss], pa.int64()),
        pa.array([s.wal_lag_files for s in ss], pa.int64()),
        pa.array([s.wal_lag_rows for s in ss], pa.int64()),
        pa.array([s.wal_lag_seconds for s in ss], pa.float64()),
        pa.array([s.wal_lagging for s in ss], pa.bool_()),
        pa.array([s.wal_skipped_files for s in ss], pa.int64()),
        pa.array([s.last_error for s in ss], pa.string()),
        pa.array([t.node_spec for t in ts], pa.string()),
    ], schema=TRIGGERS_SCHEMA)


def arguments_table(catalog: TriggerCatalog, database: str) -> pa.Table:
    rows = [(t.trigger_name, k, v) for t in _triggers_of(catalog, database)
            for k, v in (t.trigger_arguments or {}).items()]
    return pa.table([pa.array([r[i] for r in rows], pa.string()) for i in range(3)],
                    schema=ARGUMENTS_SCHEMA)


def plugin_files_table(catalog: TriggerCatalog, files: PluginFileLister) -> pa.Table:
    rows = []
    for t in catalog.triggers():
        for file_name, path, size, mtime_ms in files.list_files(t.plugin_filename):
            rows.append((t.trigger_name, file_name, path, size, mtime_ms))
    return pa.table([
        pa.array([r[0] for r in rows], pa.string()),
        pa.array([r[1] for r in rows], pa.string()),
        pa.array([r[2] for r in rows], pa.string()),
        pa.array([r[3] for r in rows], pa.int64()),
        pa.array([r[4] for r in rows], pa.int64()),
    ], schema=PLUGIN_FILES_SCHEMA)
