"""The processing engine: triggers run Python plugins in isolated worker processes.

Public face: `ProcessingEngine` (and `EngineOptions`). The server builds one with the
services (plugins write and query through them), the storage whose events it listens to
(`EngineStorage`: `weir.ports.StorageEvents` and the catalog) and its config, awaits
`start()`, mounts `weir.server.engine_routes.engine_routes(engine)`, and awaits `stop()`
at shutdown; `start()` registers the engine's WAL, persist and database-deleted
listeners and system tables itself.

Modules: `plugin_api` (the contract plugins see), `line_builder`, `specs` (trigger
specifications, cron, every), `loader` (plugin files), `workers` (worker processes),
`worker/` (the code that runs inside them), `plugin_env` (which of the server's
environment variables they inherit), `triggers` (runners), `schedule` (the schedule
runner), `logs`, `services` (what workers ask of the server), `environment` (venv, pip),
`dry_run` (test endpoints), `processing_engine` (the engine itself). Its
system tables are `weir.system_tables.engine`.

Imports are lazy so that a worker process, which imports `weir.engine.worker`, does
not load the server side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weir.engine.options import EngineOptions
    from weir.engine.processing_engine import ProcessingEngine

__all__ = ["EngineOptions", "ProcessingEngine"]


def __getattr__(name: str) -> Any:
    if name == "ProcessingEngine":
        from weir.engine.processing_engine import ProcessingEngine

        return ProcessingEngine
    if name == "EngineOptions":
        from weir.engine.options import EngineOptions

        return EngineOptions
    raise AttributeError(f"module 'weir.engine' has no attribute {name!r}")
