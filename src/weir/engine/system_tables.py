"""The processing engine's `system.*` tables (surface.md §4).

In every database: `processing_engine_logs` (the global ring buffer, unfiltered),
`processing_engine_triggers` and `processing_engine_trigger_arguments` (that
database's triggers). In `_internal` also `plugin_files` (every trigger's local
plugin files, across databases; `gh:` plugins have none).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from weir.engine.loader import PluginFiles
from weir.engine.logs import PluginLogs
from weir.engine.specs import InvalidTriggerSpec, parse_trigger_spec

INTERNAL_DB = "_internal"

TRIGGERS_SCHEMA = pa.schema([
    ("trigger_name", pa.string()), ("plugin_filename", pa.string()),
    ("trigger_specification", pa.string()), ("disabled", pa.bool_()),
    ("error_behavior", pa.string()),
    ("public", pa.bool_()),  # Weir: request triggers that answer without a token
])
ARGUMENTS_SCHEMA = pa.schema([
    ("trigger_name", pa.string()), ("argument_key", pa.string()),
    ("argument_value", pa.string()),
])
PLUGIN_FILES_SCHEMA = pa.schema([
    ("plugin_name", pa.string()), ("file_name", pa.string()), ("file_path", pa.string()),
    ("size_bytes", pa.int64()), ("last_modified", pa.int64()),
])


def _spec_json(spec: str) -> str:
    try:
        return parse_trigger_spec(spec).system_table_json()
    except InvalidTriggerSpec:
        return spec


def _triggers_of(catalog: Any, database: str) -> list[Any]:
    if not catalog.db_exists(database):
        return []
    return list(catalog.triggers(database))


def triggers_table(catalog: Any, database: str) -> pa.Table:
    ts = _triggers_of(catalog, database)
    return pa.table([
        pa.array([t.trigger_name for t in ts], pa.string()),
        pa.array([t.plugin_filename for t in ts], pa.string()),
        pa.array([_spec_json(t.trigger_specification) for t in ts], pa.string()),
        pa.array([bool(t.disabled) for t in ts], pa.bool_()),
        pa.array([t.error_behavior for t in ts], pa.string()),
        pa.array([bool(t.public) for t in ts], pa.bool_()),
    ], schema=TRIGGERS_SCHEMA)


def arguments_table(catalog: Any, database: str) -> pa.Table:
    rows = [(t.trigger_name, k, v) for t in _triggers_of(catalog, database)
            for k, v in (t.trigger_arguments or {}).items()]
    return pa.table([pa.array([r[i] for r in rows], pa.string()) for i in range(3)],
                    schema=ARGUMENTS_SCHEMA)


def plugin_files_table(catalog: Any, files: PluginFiles) -> pa.Table:
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


def engine_system_tables(catalog: Any, logs: PluginLogs, files: PluginFiles
                         ) -> Callable[[str], dict[str, Callable[[], pa.Table]]]:
    """The provider to hand to `Database.add_system_tables`."""

    def provider(database: str) -> dict[str, Callable[[], pa.Table]]:
        tables: dict[str, Callable[[], pa.Table]] = {
            "processing_engine_logs": logs.to_table,
            "processing_engine_triggers": lambda: triggers_table(catalog, database),
            "processing_engine_trigger_arguments": lambda: arguments_table(catalog, database),
        }
        if database == INTERNAL_DB:
            tables["plugin_files"] = lambda: plugin_files_table(catalog, files)
        return tables

    return provider
