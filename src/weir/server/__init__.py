"""The HTTP server: routes, error mapping, start-up and clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import io
import json
import logging
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from weir.auth import TokenStore
from weir.catalog import Catalog, Limits
from weir.cluster import RUNNING, STARTING, Heartbeat, NodeRecord, join_cluster, read_nodes
from weir.config import NODE_MODES, ServeConfig
from weir.database import Database
from weir.metrics import ServerMetrics
from weir.objectstore import ObjectStore, open_store
from weir.server import metrics, routes_configure, routes_data, routes_tokens, routes_v1
from weir.server.app import WeirApp
from weir.server.auth import open_paths
from weir.server.openapi import document_bytes
from weir.server.routes_caches import routes as cache_routes
from weir.server.state import ServerState, state_of
from weir.service import Services
from weir.system_tables import EngineTables, NodeInfo, ServerTables, TokenTables
from weir.system_tables.server import redacted_cli_params

if TYPE_CHECKING:
    from weir.engine import ProcessingEngine
    from weir.server.flight import FlightService

log = logging.getLogger("weir.server")


def build_routes(state: ServerState) -> list[BaseRoute]:
    routes: list[BaseRoute] = [*routes_data.routes, *routes_v1.routes, *routes_configure.routes,
              *metrics.routes, *routes_tokens.routes,
              Route("/openapi.json", _openapi, methods=["GET"])]
    routes.extend(cache_routes)
    if state.engine is not None:
        # (the engine's modules load only when --plugin-dir turns the engine on)
        from weir.server.engine_routes import engine_routes

        routes.extend(engine_routes(state.engine))
    for route in routes:
        # Starlette adds HEAD to every GET route; the reference routes exact (method,
        # path) pairs only, so HEAD is 404 `Not found` like any other unrouted method
        if isinstance(route, Route) and route.methods is not None:
            route.methods.discard("HEAD")
    return routes


async def _openapi(request: Request) -> Response:
    """`GET /openapi.json`: the document of the routes this server has (weir.server.openapi)."""
    st = state_of(request)
    body = document_bytes(auth=st.tokens is not None, engine=st.engine is not None,
                          open_paths=frozenset(open_paths(st.config.disable_authz)))
    return Response(body, media_type="application/json")


async def serve(config: ServeConfig) -> None:
    """Listen at once, then start the database (loading the catalog, replaying the WAL)
    and the engine; until then requests get 503 and /ready says why. Serve until
    signalled."""
    server_metrics = ServerMetrics.create()
    # opened here, with the cloud stores' flags the database's own default does not take
    store = open_store(config.object_store, str(config.data_dir), config.object_store_options)
    database = Database(config, store=store, limits=Limits.from_config(config),
                        metrics=server_metrics)
    services = Services.over(database,
                             hard_delete_default_s=config.hard_delete_default_duration)
    state = ServerState(config=config, database=database, services=services,
                        metrics=server_metrics, starting="loading the catalog")
    if not config.without_auth:
        # (tokens live in the catalog: none authenticates before it is loaded)
        state.tokens = TokenStore(database.catalog)
        database.add_system_tables(TokenTables(state.tokens))
    else:  # the table is there without auth too (no hash column), as in the reference
        database.add_system_tables(TokenTables(TokenStore(database.catalog),
                                               started_with_auth=False))
    heartbeat = _cluster_heartbeat(config, store)
    _add_server_tables(state, store)
    if config.plugin_dir is not None:
        from weir.engine import ProcessingEngine  # (loads the engine only when it is on)

        state.engine = ProcessingEngine(services, database, config,
                                        metrics=server_metrics.triggers)
    else:
        # the engine's tables are there without --plugin-dir too, as in the reference:
        # the catalog's triggers, no plugin log, no plugin files
        from weir.engine.specs import system_table_spec  # (plain Python, no engine)

        database.add_system_tables(EngineTables(database.catalog, _NoPluginLogs(),
                                                _NoPluginFiles(),
                                                render_spec=system_table_spec))
    app = WeirApp(state, build_routes(state))
    metrics.register_server_gauges(state)
    host, port = config.host_port
    flight = _start_flight(state)
    server = uvicorn.Server(uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False,
        lifespan="off", timeout_graceful_shutdown=5,
        http=flight.protocol_class() if flight is not None else "auto",
    ))
    # uvicorn re-raises SIGTERM once its graceful shutdown is done; with the default
    # handler that would end the process before the `finally` below (Flight, engine, WAL)
    # runs, so turn it into SystemExit here
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # `kill -USR2 <pid>` prints every asyncio task's stack: SIGUSR1's thread stacks show
    # an idle loop when what is stuck is a coroutine awaiting something that never comes
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, _print_tasks)
    started: list[str] = []  # what start-up has started, for the shutdown
    failure: list[BaseException] = []

    async def start_up() -> None:
        try:
            await _start(state, started, heartbeat)
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: BLE001 - re-raised once uvicorn has stopped
            failure.append(e)
            server.should_exit = True

    startup = asyncio.create_task(start_up(), name="start-up")
    try:
        await server.serve()
    finally:
        if not startup.done():  # signalled while starting: stop starting
            startup.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await startup
        if flight is not None:
            await flight.stop()
        if "database" in started:
            log.info("shutting down: flushing the WAL")
            if "engine" in started and state.engine is not None:
                await state.engine.stop()
            await database.stop()
            log.info("shutdown complete")
        if heartbeat is not None and "cluster" in started:
            await heartbeat.stop()  # (once the WAL is flushed: `stopped` means stopped)
    if failure:
        raise failure[0]


async def _start(state: ServerState, started: list[str],
                 heartbeat: Heartbeat | None = None) -> None:
    """Everything that must be done before the server serves requests."""
    config, database = state.config, state.database
    host, port = config.host_port
    log.info("Weir listening on http://%s:%d (node %s, object store %s); starting",
             host, port, config.node_id, config.object_store)
    if heartbeat is not None:
        # before the database reads or writes anything in the bucket: a bucket of another
        # cluster, a store without conditional writes or a node id in use stop the start
        state.starting = f"joining cluster {heartbeat.cluster_id}"
        await asyncio.to_thread(join_cluster, heartbeat.store, heartbeat.cluster_id,
                                heartbeat.record)
        started.append("cluster")
        # beating from now on, so a long WAL replay neither looks like a dead node nor
        # frees this node id for another process
        heartbeat.start()
        log.info("joined cluster %s as node %s (modes %s)", heartbeat.cluster_id,
                 config.node_id, ",".join(heartbeat.record.modes))
    state.starting = "loading the catalog and replaying the WAL"
    started.append("database")  # (stop() after a partial start only flushes what exists)
    await database.start()
    if state.tokens is not None:
        if config.admin_token_file is not None:
            _load_admin_token_file(state.tokens, config.admin_token_file)
        if not state.tokens.has_admin():
            log.warning("authentication is on and no operator token exists yet: create one "
                        "with `influxdb3 create token --admin`")
    if state.engine is not None:
        state.starting = "starting the processing engine"
        started.append("engine")
        await state.engine.start()
        if config.cluster_id is not None:
            _sync_engine_with_catalog(state.engine, database.catalog)
    state.starting = None
    if heartbeat is not None:
        heartbeat.set_state(RUNNING)
        await heartbeat.beat_now()  # (others see it running at once, not a beat later)
    log.info("Weir is ready on http://%s:%d (replayed %d WAL files)", host, port,
             database.replayed_files)


def _sync_engine_with_catalog(engine: ProcessingEngine, catalog: Catalog) -> None:
    """Triggers created, changed or deleted on other nodes start and stop here too: the
    catalog's refresh (on the cluster's poll thread) hands the engine a sync."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    def start_sync() -> None:
        task = loop.create_task(engine.sync_with_catalog(), name="engine-sync")
        pending.add(task)  # (kept until done: the loop holds tasks only weakly)
        task.add_done_callback(pending.discard)

    def changed() -> None:
        loop.call_soon_threadsafe(start_sync)

    catalog.add_change_listener(changed)


def _cluster_heartbeat(config: ServeConfig, store: ObjectStore) -> Heartbeat | None:
    """A cluster node's record and the heartbeat that keeps it fresh (None: a single node)."""
    if config.cluster_id is None:
        return None
    now = time.time_ns()
    me = NodeRecord(node_id=config.node_id, instance_id=str(uuid.uuid4()),
                    modes=tuple(m for m in NODE_MODES if m in config.modes),
                    http_address=config.http_bind, pid=os.getpid(),
                    core_count=os.cpu_count() or 1, started_ns=now, heartbeat_ns=now,
                    state=STARTING, cli_params=redacted_cli_params(config.cli_params))
    return Heartbeat(store, config.cluster_id, me)


def _add_server_tables(state: ServerState, store: ObjectStore) -> None:
    """system.queries (the query log) and system.nodes (this node, or in a cluster every
    node's record in the bucket)."""
    config, database = state.config, state.database
    started_ms = int(time.time() * 1000)

    def node() -> NodeInfo:
        return NodeInfo(node_id=config.node_id, instance_id=database.catalog.uuid,
                        core_count=os.cpu_count() or 1, started_at_ms=started_ms,
                        cli_params=config.cli_params)

    cluster_id = config.cluster_id
    cluster_nodes = (None if cluster_id is None
                     else lambda: read_nodes(store, cluster_id))
    database.add_system_tables(ServerTables(node, state.services.queries.log, cluster_nodes))


class _NoPluginLogs:
    def entries(self) -> list[Any]:
        return []


class _NoPluginFiles:
    def list_files(self, plugin_filename: str) -> list[tuple[str, str, int, int]]:
        return []


def _print_tasks() -> None:
    tasks = sorted(asyncio.all_tasks(), key=lambda t: t.get_name())
    out = io.StringIO()  # (one write: the dump does not interleave with log lines)
    print(f"{len(tasks)} asyncio tasks (SIGUSR2):", file=out)
    for task in tasks:
        task.print_stack(limit=12, file=out)
    sys.stderr.write(out.getvalue())
    sys.stderr.flush()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _start_flight(state: ServerState) -> FlightService | None:
    """Arrow Flight (gRPC) queries, served on the HTTP port (weir.server.flight)."""
    try:
        from weir.server.flight import FlightService

        return FlightService(state, asyncio.get_running_loop())
    except Exception:  # pyarrow without Flight: HTTP still works
        log.exception("Arrow Flight is unavailable; serving HTTP only")
        return None


def _load_admin_token_file(store: TokenStore, path: Path) -> None:
    """`--admin-token-file`: the JSON file `create token --admin --offline` writes."""
    try:
        doc = json.loads(path.read_text())
        store.import_token(doc.get("name") or "_admin", doc["token"], doc.get("expiry_millis"))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"error: cannot load --admin-token-file {path}: {e}") from None
    log.info("loaded the admin token from %s", path)


def run(config: ServeConfig) -> None:
    """Run the server in the foreground until SIGINT/SIGTERM."""
    level = getattr(logging, config.log_filter.split(",")[0].upper(), logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # `kill -USR1 <pid>` prints every thread's stack to stderr and the server goes on: what
    # a server that seems stuck is waiting for (a store request, a lock, a plugin); USR2
    # prints the asyncio tasks' (serve, below)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config))
