"""The processing engine: the registry of running triggers and the one object the
server talks to (trigger lifecycle, request triggers, test runs, the plugin
environment, uploads, system tables, and the WAL / persist listeners).

The engine is a front end, like the HTTP API: plugins write and query through the
services (`weir.service`), the engine learns of WAL flushes, persists and deleted
databases from storage's events (`weir.ports.StorageEvents`), and the trigger
definitions live in the catalog. No lock is held while a plugin runs: lifecycle
changes take a short lock to update the registry, and stopping a trigger (which
waits for its call in progress) happens outside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Protocol

from weir.catalog import INTERNAL_DB, Catalog, TriggerDefinition
from weir.config import ServeConfig
from weir.engine.dry_run import DryRunner
from weir.engine.environment import PluginEnvironment
from weir.engine.loader import PluginFiles, PluginRef, check_entry_point
from weir.engine.logs import PluginLogs
from weir.engine.node_spec import (
    InvalidNodeSpec,
    Placement,
    parse_node_spec,
    placement,
)
from weir.engine.options import EngineOptions
from weir.engine.plugin_env import PluginEnvPolicy
from weir.engine.schedule import ScheduleTriggerRunner, TriggerStateStore
from weir.engine.services import EngineServices
from weir.engine.specs import (
    InvalidTriggerSpec,
    TriggerSpec,
    parse_trigger_spec,
    system_table_spec,
)
from weir.engine.triggers import (
    HttpReply,
    ParquetTriggerRunner,
    RequestTriggerRunner,
    TriggerRunner,
    delivery_text,
)
from weir.engine.wal_triggers import WalLag, WalTriggerRunner
from weir.engine.workers import WorkerSlot, WorkerSpec
from weir.errors import AlreadyExists, CatalogError, DatabaseNotFound, InvalidRequest, NotFound
from weir.metrics import Registry, TriggerMetrics
from weir.ports import FlushedWal, PersistEvent, StorageEvents, TriggerKey, WalTriggerLog
from weir.service import Services
from weir.system_tables import EngineTables
from weir.system_tables.engine import TriggerInfo, TriggerStatus

log = logging.getLogger("weir.engine")

ERROR_BEHAVIORS = ("log", "retry", "disable")
NOT_FOUND_BODY = b'{error: "not found"}'  # sic: the reference's body is not valid JSON
_RESTRICTION_ALIASES = {"wal_flush": "wal", "wal": "wal", "schedule": "schedule",
                        "request": "request", "parquet": "parquet"}
#: the runner of each kind of trigger (`TriggerSpec.kind`)
RUNNERS: dict[str, type[TriggerRunner]] = {
    "wal": WalTriggerRunner,
    "schedule": ScheduleTriggerRunner,
    "request": RequestTriggerRunner,
    "parquet": ParquetTriggerRunner,
}


class RequestPathTaken(CatalogError):
    """Another trigger already serves this `/api/v3/engine/<path>` (HTTP 409)."""

    def __init__(self, path: str, owner: TriggerDefinition) -> None:
        super().__init__(f"request path '{path}' is already used by trigger "
                         f"'{owner.trigger_name}' in database '{owner.database}'")


class EngineStorage(StorageEvents, TriggerStateStore, WalTriggerLog, Protocol):
    """What the engine needs of storage itself: its events (WAL flushes, persists, deleted
    databases, a place for system tables), the WAL as WAL triggers read it (checkpoints,
    flushed files after them) and the catalog, which holds the trigger definitions.
    Writes (a WAL trigger's call with its checkpoint too) and queries go through the
    services."""

    @property
    def catalog(self) -> Catalog: ...


class ProcessingEngine:
    """Runs the triggers stored in the catalog. `await start()`, then serve; `await stop()`.

    `services` serve the plugins' writes and queries, `storage` tells of WAL flushes,
    persists and deleted databases and holds the catalog; `options` defaults to
    `EngineOptions.from_config(config)`.
    """

    def __init__(self, services: Services, storage: EngineStorage, config: ServeConfig,
                 options: EngineOptions | None = None,
                 metrics: TriggerMetrics | None = None) -> None:
        self._storage = storage
        #: each trigger's plugin calls and failures (/metrics)
        self.metrics = metrics or TriggerMetrics(Registry())
        self.writes = services.writes
        self.config = config
        self.options = options or EngineOptions.from_config(config)
        if self.options.call_timeout is None:
            self.options.call_timeout = config.plugin_call_timeout
        # what a WAL trigger keeps in memory stays within what storage keeps for it
        self.options.wal_memory_files = max(1, min(self.options.wal_memory_files,
                                                   config.trigger_max_wal_lag))
        self.logs = PluginLogs(self.options.log_capacity)
        self.files = PluginFiles(config.plugin_dir, config.plugin_repo)
        venv = config.venv_dir if config.plugin_dir is not None else None
        self.env_policy = PluginEnvPolicy.from_config(config)
        self.environment = PluginEnvironment(venv, config.package_manager, self.env_policy)
        self.worker_services = EngineServices(services.writes, services.queries, self.logs)
        self._runners: dict[tuple[str, str], TriggerRunner] = {}
        self._paths: dict[str, RequestTriggerRunner] = {}
        self._starting: set[tuple[str, str]] = set()
        #: triggers `sync_with_catalog` is stopping: not started again until it is done
        self._sync_stopping: set[tuple[str, str]] = set()
        #: why each trigger this node does not run is not run (logged once per reason)
        self._not_run: dict[tuple[str, str], str] = {}
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._started = False
        self._stopped = False
        #: start() has started the catalog's triggers; a sync asked for before waits for it
        self._ready = False
        self._sync_pending = False
        self._dry_slot = WorkerSlot(lambda: self._worker_spec("dry run", {"mode": "dry_run"}),
                                    self.worker_services,
                                    lambda level, text: self.logs.add("dry_run", level, text))
        self.dry_runner = DryRunner(self.catalog, self.files, self._dry_slot,
                                    lambda: self.options.call_timeout)
        self.system_tables = EngineTables(self.catalog, self.logs, self.files,
                                          render_spec=system_table_spec,
                                          status=self.trigger_status)

    @property
    def catalog(self) -> Catalog:
        return self._storage.catalog

    @property
    def trigger_states(self) -> TriggerStateStore:
        """Where schedule triggers record how far they have run (`weir.engine.schedule`)."""
        return self._storage

    @property
    def wal_log(self) -> WalTriggerLog:
        """The WAL as WAL triggers read it (their checkpoints, the files after them)."""
        return self._storage

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Create the plugin venv if needed, register the system tables, start every
        enabled trigger (failures are logged), then listen to WAL flushes and persists
        (so replayed WAL data is not delivered to plugins, as in the reference)."""
        if self._started:
            return
        self._started = True
        if self.files.plugin_dir is not None:
            try:
                self.files.plugin_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                log.error("cannot create the plugin directory %s: %s", self.files.plugin_dir, e)
            if self.options.create_venv:
                await self.environment.ensure()
        self._storage.add_system_tables(self.system_tables)
        enabled = [dataclasses.replace(t) for t in self.catalog.triggers() if not t.disabled]
        await asyncio.gather(*(self._start_logged(t) for t in enabled))
        self._storage.add_wal_listener(self.on_wal_flush)
        self._storage.add_persist_listener(self.on_persist)
        self._storage.add_database_deleted_listener(self.on_database_deleted)
        self._ready = True
        if self._sync_pending:  # the catalog changed while the triggers were starting
            await self.sync_with_catalog()
        elsewhere = sum(1 for t in enabled if not self.placement_of(t).runs)
        log.info("processing engine started: %d of %d triggers running%s", len(self._runners),
                 len(enabled), f" ({elsewhere} run on other nodes)" if elsewhere else "")
        # names only, never values: what an operator checks when a plugin misses a variable
        withheld = self.env_policy.withheld(os.environ)
        shown = ", ".join(withheld[:30]) + (f" and {len(withheld) - 30} more"
                                             if len(withheld) > 30 else "")
        log.info("plugins see the server's environment except %d variable(s)%s (see "
                 "--plugin-env-allow, --plugin-env-deny)", len(withheld),
                 f": {shown}" if withheld else "")

    async def stop(self) -> None:
        """Stop every trigger and worker."""
        self._stopped = True
        async with self._lock:
            runners = list(self._runners.values())
            self._runners.clear()
            self._paths.clear()
        await asyncio.gather(*(r.stop("the server is shutting down", timeout=5.0)
                               for r in runners), return_exceptions=True)
        await self._dry_slot.close("the server is shutting down")
        for task in list(self._background):
            task.cancel()

    # ---- workers ---------------------------------------------------------------------

    def _worker_spec(self, label: str, init: dict[str, Any]) -> WorkerSpec:
        python, first_paths = self.environment.worker_python()
        env = {"TZ": "UTC", **self.environment.env_vars()}
        plugin_dir = self.files.plugin_dir
        if plugin_dir is not None:
            env["PLUGIN_DIR"] = env["INFLUXDB3_PLUGIN_DIR"] = str(plugin_dir)
        cwd = str(plugin_dir) if plugin_dir is not None and plugin_dir.is_dir() else None
        return WorkerSpec(label=label, python=python, init=init, env=env,
                          env_policy=self.env_policy, cwd=cwd,
                          memory_limit=self.options.memory_limit or None,
                          first_paths=first_paths,
                          start_timeout=self.options.worker_start_timeout,
                          fallback_python=sys.executable)

    def worker_slot(self, defn: TriggerDefinition, ref: PluginRef) -> WorkerSlot:
        init = {"mode": "trigger", "trigger_name": defn.trigger_name,
                "database": defn.database, "args": defn.trigger_arguments,
                "plugin": ref.to_wire()}
        return WorkerSlot(lambda: self._worker_spec(defn.trigger_name, init),
                          self.worker_services,
                          lambda level, text: self.logs.add(defn.trigger_name, level, text))

    # ---- running triggers ------------------------------------------------------------

    async def _start_runner(self, defn: TriggerDefinition, fresh: bool = False) -> None:
        """Resolve the plugin, start the worker and register the runner. The registry
        lock is not held while fetching or spawning; a trigger disabled or deleted in
        the meantime is stopped again instead of registered. `fresh`: the trigger was
        just created (a WAL trigger starts at the newest WAL file)."""
        key = (defn.database, defn.trigger_name)
        where = self.placement_of(defn)
        if not where.runs:
            self._note_not_run(defn, where)
            return
        async with self._lock:
            if key in self._runners or key in self._starting or key in self._sync_stopping:
                return
            self._starting.add(key)
        try:
            spec = parse_trigger_spec(defn.trigger_specification)
            ref = await self.files.resolve(defn.plugin_filename)
            runner = (WalTriggerRunner(self, defn, spec, ref, fresh=fresh) if spec.kind == "wal"
                      else RUNNERS[spec.kind](self, defn, spec, ref))
            try:
                await runner.start()
            except BaseException:
                await runner.slot.close()
                raise
            async with self._lock:
                try:
                    current = self.catalog.get_trigger(*key)
                    # still enabled, still for this node, and not deleted and made again
                    # with another definition (by another node) while this one started
                    wanted = (not current.disabled and not self._stopped
                              and self.placement_of(current).runs
                              and _same_definition(current, defn))
                except CatalogError:
                    wanted = False
                if wanted:
                    self._not_run.pop(key, None)
                    self._runners[key] = runner
                    if isinstance(runner, RequestTriggerRunner) and spec.request_path:
                        self._paths[spec.request_path] = runner
                    if isinstance(runner, WalTriggerRunner):
                        runner.poke()  # files flushed before the listener knew it
        finally:
            async with self._lock:
                self._starting.discard(key)
        if not wanted:
            await runner.stop("the trigger was disabled while it started")

    async def _start_logged(self, defn: TriggerDefinition, fresh: bool = False) -> bool:
        try:
            await self._start_runner(defn, fresh)
            return True
        # one trigger failing to start must not stop the others: its log says why
        except Exception as e:  # noqa: BLE001 - logged to the trigger's log
            self.logs.error(defn.trigger_name, f"error starting trigger: {e}")
            return False

    async def _detach(self, key: tuple[str, str]) -> TriggerRunner | None:
        async with self._lock:
            runner = self._runners.pop(key, None)
            if isinstance(runner, RequestTriggerRunner):
                path = runner.spec.request_path
                if path is not None and self._paths.get(path) is runner:
                    del self._paths[path]
            return runner

    async def _stop_runner(self, key: tuple[str, str], reason: str) -> None:
        runner = await self._detach(key)
        if runner is not None:
            await runner.stop(reason)  # outside the lock: it waits for the call in progress

    def disable_after_error(self, runner: TriggerRunner, error: str) -> None:
        """`error_behavior=disable`: disable the trigger in the catalog and stop it."""
        self._background_task(self._disable_after_error(runner, error))

    async def _disable_after_error(self, runner: TriggerRunner, error: str) -> None:
        with contextlib.suppress(CatalogError):
            self.catalog.set_trigger_disabled(runner.db, runner.name, True)
        self.logs.error(runner.name, f"trigger {runner.name} was disabled because of an error "
                                     f"(error_behavior=disable): {error}")
        await self.retire(runner, "the trigger was disabled after an error")

    async def retire(self, runner: TriggerRunner, reason: str) -> None:
        """Stop a runner (if it is still the registered one) without touching the catalog."""
        async with self._lock:
            if self._runners.get(runner.key) is runner:
                del self._runners[runner.key]
                path = runner.spec.request_path
                if path is not None and self._paths.get(path) is runner:
                    del self._paths[path]
        await runner.stop(reason)

    def _background_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def running(self, database: str, trigger_name: str) -> bool:
        return (database, trigger_name) in self._runners

    # ---- which triggers this node runs (clusters) --------------------------------------

    def placement_of(self, defn: TriggerDefinition) -> Placement:
        """Whether this node runs `defn` (enabled or not), by its node spec and the node's
        modes (`weir.engine.node_spec.placement`). A trigger whose specification does
        not parse is left to start and fail as it always did (its log says why)."""
        try:
            spec = parse_node_spec(defn.node_spec)
        except InvalidNodeSpec as e:  # only a hand-edited catalog has one
            return Placement(False, str(e))
        try:
            kind = parse_trigger_spec(defn.trigger_specification).kind
        except InvalidTriggerSpec:
            kind = "unknown"
        return placement(kind, spec, self.config.node_id, self.config.modes)

    def _note_not_run(self, defn: TriggerDefinition, where: Placement) -> None:
        key = (defn.database, defn.trigger_name)
        if self._not_run.get(key) == where.reason:
            return  # once per trigger (and reason): a sync may ask again and again
        self._not_run[key] = where.reason
        log.warning("not running trigger %s of database %s on this node: %s",
                    defn.trigger_name, defn.database, where.reason)

    def _runs_here(self, defn: TriggerDefinition) -> bool:
        return not defn.disabled and self.placement_of(defn).runs

    async def sync_with_catalog(self) -> None:
        """Start and stop triggers so that this node runs exactly the enabled triggers
        the catalog gives it, after another node changed the catalog (created, enabled,
        disabled, deleted a trigger, or deleted and made one again differently).

        Running triggers that should go on are not touched. Safe to call repeatedly and
        concurrently with itself and with create/enable/disable/delete: each stop is
        decided again under the registry lock against the catalog as it is then, a
        trigger being stopped here is not started by anyone until the stop is done, and
        the starts are decided after the stops from the catalog as it is then. No lock is
        held while a stopped trigger finishes its call in progress, which this awaits (so
        a caller on a path a plugin call waits for should run it as a task)."""
        if self._stopped:
            return
        if not self._ready:
            self._sync_pending = True  # start() syncs once its own starts are done
            return
        detached: list[TriggerRunner] = []
        async with self._lock:
            for key, runner in list(self._runners.items()):
                try:
                    current: TriggerDefinition | None = self.catalog.get_trigger(*key)
                except CatalogError:
                    current = None
                if (current is not None and self._runs_here(current)
                        and _same_definition(current, runner.defn)):
                    continue
                del self._runners[key]
                path = runner.spec.request_path
                if path is not None and self._paths.get(path) is runner:
                    del self._paths[path]
                self._sync_stopping.add(key)
                detached.append(runner)
        try:
            await asyncio.gather(*(r.stop("the catalog changed on another node")
                                   for r in detached), return_exceptions=True)
        finally:
            async with self._lock:
                self._sync_stopping.difference_update(r.key for r in detached)
        triggers = self.catalog.triggers()
        known = {(t.database, t.trigger_name) for t in triggers}
        for key in {r.key for r in detached} - known:
            # deleted elsewhere: this node's WAL need not be kept for it any longer
            self.wal_log.forget_trigger_progress(key)
        for key in [k for k in self._not_run if k not in known]:
            del self._not_run[key]  # deleted: a namesake is logged afresh
        wanted = [dataclasses.replace(t) for t in triggers
                  if self._runs_here(t) and (t.database, t.trigger_name) not in self._runners
                  and (t.database, t.trigger_name) not in self._starting]
        # created or enabled elsewhere (or deleted and made again): like a local create or
        # enable, a schedule starts afresh, and the time it was not running is not missed
        await asyncio.gather(*(self._forget_schedule(t.database, t.trigger_name)
                               for t in wanted if _kind(t) == "schedule"))
        await asyncio.gather(*(self._start_logged(t) for t in
                               [dataclasses.replace(t) for t in triggers if not t.disabled
                                and (t.database, t.trigger_name) not in self._runners]))

    async def _forget_schedule(self, database: str, trigger_name: str) -> None:
        """Drop a trigger's schedule record: it starts afresh, with nothing missed."""
        try:
            await self._storage.delete_trigger_state(database, trigger_name)
        # a record left behind costs at most a wrong "missed" report later: say so, go on
        except Exception as e:  # noqa: BLE001 - any object-store failure
            log.warning("cannot delete the schedule record of trigger %s in database %s: %s",
                        trigger_name, database, e)

    # ---- what triggers promise, and how far behind they are ---------------------------

    def trigger_status(self, database: str, trigger: TriggerInfo) -> TriggerStatus:
        """A trigger's columns of `system.processing_engine_triggers` beyond its
        definition: what delivery it promises, a WAL trigger's checkpoint and lag, its
        last error."""
        try:
            kind = parse_trigger_spec(trigger.trigger_specification).kind
        except InvalidTriggerSpec:
            kind = "unknown"
        status = TriggerStatus(
            delivery=delivery_text(kind, trigger.run_async, trigger.error_behavior,
                                   max(1, self.options.retry_attempts), trigger.catch_up),
            last_error=self._last_error(trigger.trigger_name))
        if kind != "wal":
            return status
        key: TriggerKey = (database, trigger.trigger_name)
        runner = self._runners.get(key)
        if isinstance(runner, WalTriggerRunner):
            lag = runner.lag()
            return dataclasses.replace(
                status, wal_checkpoint=lag.durable, wal_lag_files=lag.files,
                wal_lag_rows=lag.rows, wal_lag_seconds=lag.seconds, wal_lagging=lag.lagging,
                wal_skipped_files=lag.skipped_files)
        # not running (disabled, or its start failed): where it will resume
        checkpoint = self.wal_log.trigger_checkpoint(key)
        return dataclasses.replace(
            status, wal_checkpoint=checkpoint, wal_lagging=self.wal_log.trigger_lagging(key),
            wal_lag_files=(None if checkpoint is None
                           else max(0, self.wal_log.last_wal_seq - checkpoint)))

    def _last_error(self, trigger_name: str) -> str | None:
        for entry in reversed(self.logs.entries(trigger_name)):
            if entry.log_level == "ERROR":
                return entry.log_text.split("\n", 1)[0][:1000]
        return None

    def wal_lags(self) -> list[tuple[str, str, WalLag]]:
        """(database, trigger, lag) of every running WAL trigger (for /metrics)."""
        return [(r.db, r.name, r.lag()) for r in list(self._runners.values())
                if isinstance(r, WalTriggerRunner)]

    # ---- trigger management (the configure endpoints) --------------------------------

    async def create_trigger(self, *, database: str, trigger_name: str, plugin_filename: str,
                             trigger_specification: str,
                             trigger_arguments: dict[str, str] | None = None,
                             run_async: bool = False, error_behavior: str = "log",
                             disabled: bool = False, public: bool = False,
                             catch_up: bool = False, node_spec: str = "all"
                             ) -> TriggerDefinition:
        """Validate and store a trigger, then start it unless disabled. The checks come
        in the reference's order: restrictions, the plugin file, the catalog (database,
        name, specification); Weir then checks the plugin defines the right entry point
        and that a request path is free. A trigger that fails to start is only logged.

        `public` (Weir's addition) lets a request trigger answer without a token;
        `catch_up` (Weir's too) lets a schedule trigger run one call for the fire times it
        missed while the server was down (`weir.engine.schedule`).

        `node_spec` (InfluxDB 3 Enterprise's) names the nodes of a cluster that run it:
        `all` or `nodes:<node-id>[,<node-id>...]` (InvalidNodeSpec otherwise, before
        anything else is looked at). A trigger this node does not run is stored all the
        same, for the nodes that do."""
        nodes = parse_node_spec(node_spec)
        parsed: TriggerSpec | InvalidTriggerSpec
        try:
            parsed = parse_trigger_spec(trigger_specification)
        except InvalidTriggerSpec as e:
            parsed = e
        self._check_restrictions(parsed if isinstance(parsed, TriggerSpec) else None)
        if error_behavior not in ERROR_BEHAVIORS:
            raise InvalidRequest(f"unknown error_behavior '{error_behavior}': expected one of "
                                 "log, retry, disable")
        ref = await self.files.resolve(plugin_filename)
        catalog = self.catalog
        if database == INTERNAL_DB or not catalog.db_exists(database):
            raise DatabaseNotFound(database)
        if any(t.trigger_name == trigger_name for t in catalog.triggers(database)):
            raise AlreadyExists(trigger_name)
        if isinstance(parsed, InvalidTriggerSpec):
            raise parsed
        spec = parsed
        if public and spec.kind != "request":
            raise InvalidRequest(f"trigger '{trigger_name}' cannot be public: only request "
                                 f"triggers can (its spec is '{trigger_specification}')")
        if catch_up and spec.kind != "schedule":
            raise InvalidRequest(f"trigger '{trigger_name}' cannot catch up: catch_up is only "
                                 "for schedule triggers (every:, cron:), and its spec is "
                                 f"'{trigger_specification}'")
        check_entry_point(ref, spec.kind)
        if spec.kind == "request":
            for other in catalog.triggers():
                if other.trigger_name == trigger_name and other.database == database:
                    continue
                try:
                    other_spec = parse_trigger_spec(other.trigger_specification)
                except InvalidTriggerSpec:
                    continue
                if other_spec.request_path == spec.request_path:
                    raise RequestPathTaken(spec.path or "", other)
        args = ({str(k): str(v) for k, v in trigger_arguments.items()}
                if trigger_arguments is not None else None)
        defn = TriggerDefinition(
            trigger_name=trigger_name, plugin_filename=plugin_filename, database=database,
            trigger_specification=spec.canonical(), trigger_arguments=args,
            run_async=bool(run_async), error_behavior=error_behavior, disabled=bool(disabled),
            public=bool(public), catch_up=bool(catch_up), node_spec=nodes.canonical())
        if spec.kind == "schedule":
            await self._forget_schedule(database, trigger_name)  # an earlier namesake's
        catalog.create_trigger(defn)
        if not defn.disabled:
            await self._start_logged(dataclasses.replace(defn), fresh=True)
        elif spec.kind == "wal" and self.placement_of(defn).runs:
            # a WAL trigger's start point is its creation, even when it starts disabled
            # (on the node that runs it: the point is in that node's own WAL)
            key = (database, trigger_name)
            await self.writes.commit_trigger_call(key, self.wal_log.last_wal_seq, {})
        return defn

    def _check_restrictions(self, spec: TriggerSpec | None) -> None:
        allowed = [_RESTRICTION_ALIASES.get(r.strip().lower(), r.strip().lower())
                   for r in self.config.restrict_plugin_triggers_to]
        if spec is not None and allowed and spec.kind not in allowed:
            raise InvalidRequest(f"server is configured to reject {spec.restriction_name} "
                                 "plugin triggers")

    async def enable_trigger(self, database: str, trigger_name: str) -> None:
        """Enable (and start) a trigger; already enabled is fine. A trigger that is
        enabled in the catalog but not running (its start failed) is started again."""
        catalog = self.catalog
        if catalog.get_trigger(database, trigger_name).disabled:
            # the time it was disabled is not missed time: its schedule starts afresh
            await self._forget_schedule(database, trigger_name)
        catalog.set_trigger_disabled(database, trigger_name, False)
        defn = dataclasses.replace(catalog.get_trigger(database, trigger_name))
        if not self.running(database, trigger_name):
            await self._start_logged(defn)

    async def disable_trigger(self, database: str, trigger_name: str) -> None:
        """Disable a trigger; returns after its call in progress has finished."""
        self.catalog.set_trigger_disabled(database, trigger_name, True)
        await self._stop_runner((database, trigger_name), "the trigger was disabled")

    async def delete_trigger(self, database: str, trigger_name: str, force: bool = False
                             ) -> None:
        """Delete a trigger: only a disabled one unless `force` (the catalog refuses)."""
        self.catalog.delete_trigger(database, trigger_name, force)
        await self._stop_runner((database, trigger_name), "the trigger was deleted")
        self._not_run.pop((database, trigger_name), None)
        await self._forget_schedule(database, trigger_name)
        self.wal_log.forget_trigger_progress((database, trigger_name))

    async def on_database_deleted(self, database: str) -> None:
        """Stop the triggers of a deleted database (the catalog disabled them)."""
        keys = [k for k in self._runners if k[0] == database]
        await asyncio.gather(*(self._stop_runner(k, "its database was deleted") for k in keys))

    # ---- events ----------------------------------------------------------------------

    async def on_wal_flush(self, flushed: FlushedWal) -> None:
        """WAL listener: tell every WAL trigger of the flushed file (each keeps its own
        rows; a file with nothing for it only moves its checkpoint). Only enqueues, so
        the flush (and the writers waiting on it) never waits for plugins."""
        for r in list(self._runners.values()):
            if isinstance(r, WalTriggerRunner):
                r.enqueue(flushed)

    async def on_persist(self, event: PersistEvent) -> None:
        """Persist listener: hand each database's new Parquet files to its Parquet triggers."""
        by_db: dict[str, list[dict[str, Any]]] = {}
        for f in event.files:
            by_db.setdefault(f.database, []).append({
                "table_name": f.table, "path": f.path, "size_bytes": f.size_bytes,
                "row_count": f.row_count, "min_time": f.min_time, "max_time": f.max_time})
        for r in list(self._runners.values()):
            if isinstance(r, ParquetTriggerRunner) and r.db in by_db:
                r.enqueue(by_db[r.db])

    def serves_request(self, path: str) -> bool:
        """Whether a running request trigger serves `/api/v3/engine/<path>`."""
        runner = self._paths.get(path.lstrip("/"))
        return runner is not None and not runner.stopping

    def is_public_request(self, path: str) -> bool:
        """Whether `/api/v3/engine/<path>` is served by a running trigger created public
        (only running ones: a disabled public trigger asks for a token like any path)."""
        runner = self._paths.get(path.lstrip("/"))
        return runner is not None and not runner.stopping and runner.defn.public

    async def handle_request(self, path: str, query: dict[str, str], headers: dict[str, str],
                             body: bytes) -> HttpReply:
        """Serve `/api/v3/engine/<path>` (headers: lower-case, without authorization)."""
        runner = self._paths.get(path.lstrip("/"))
        if runner is None or runner.stopping:
            elsewhere = self._request_trigger_elsewhere(path.lstrip("/"))
            if elsewhere is not None:
                return HttpReply(404, {"Content-Type": "application/json"},
                                 json.dumps({"error": elsewhere}).encode())
            return HttpReply(404, {}, NOT_FOUND_BODY)
        if not self.catalog.db_exists(runner.db):
            return HttpReply(500, {"Content-Type": "application/json"},
                             b'{"error":"database not found"}')
        return await runner.handle(query, headers, body)

    def _request_trigger_elsewhere(self, path: str) -> str | None:
        """Why an enabled request trigger for `path` does not answer here (it runs on
        other nodes, or this node is not in process mode); None if there is none."""
        for t in self.catalog.triggers():
            if t.disabled:
                continue
            try:
                if parse_trigger_spec(t.trigger_specification).request_path != path:
                    continue
                spec = parse_node_spec(t.node_spec)
            except (InvalidTriggerSpec, InvalidNodeSpec):
                continue
            where = self.placement_of(t)
            if where.runs:
                return None  # ours, only not (yet, or any more) running: the usual 404
            return (f"request trigger '{t.trigger_name}' of database '{t.database}' does not "
                    f"run on this node ({self.config.node_id}): {where.reason}; it runs on "
                    f"{spec.describe()}")
        return None

    # ---- plugin files ----------------------------------------------------------------

    def upload_plugin_file(self, plugin_name: str, content: str) -> Path:
        """`POST /api/v3/plugins/files`: create or overwrite a file in the plugin dir."""
        return self.files.write_file(plugin_name, content)

    def _trigger_named(self, trigger_name: str) -> TriggerDefinition:
        for t in self.catalog.triggers():
            if t.trigger_name == trigger_name:
                return t
        raise NotFound(trigger_name)

    def replace_trigger_plugin(self, trigger_name: str, content: str) -> Path:
        """`PUT /api/v3/plugins/files`: rewrite a trigger's file (a package's __init__.py);
        the running trigger picks it up at its next call."""
        return self.files.replace_for_trigger(self._trigger_named(trigger_name).plugin_filename,
                                              content)

    def replace_trigger_directory(self, trigger_name: str, files: list[tuple[str, str]]) -> Path:
        """`PUT /api/v3/plugins/directory`: atomically replace a package plugin."""
        return self.files.replace_directory(self._trigger_named(trigger_name).plugin_filename,
                                            files)

    # ---- environment -----------------------------------------------------------------

    async def install_packages(self, packages: list[str]) -> str:
        return await self.environment.install_packages(packages)

    async def install_requirements(self, requirements_location: str) -> str:
        return await self.environment.install_requirements(requirements_location)


def _same_definition(a: TriggerDefinition, b: TriggerDefinition) -> bool:
    """Whether two definitions run the same (enabling or disabling is not a change)."""
    return dataclasses.replace(a, disabled=False) == dataclasses.replace(b, disabled=False)


def _kind(defn: TriggerDefinition) -> str:
    try:
        return parse_trigger_spec(defn.trigger_specification).kind
    except InvalidTriggerSpec:
        return "unknown"
