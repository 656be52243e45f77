"""The HTTP server: routes, error mapping, start-up and clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import sys

import uvicorn

from weir.config import ServeConfig
from weir.database import Database
from weir.server.app import WeirApp
from weir.server.state import ServerState

log = logging.getLogger("weir.server")


def build_routes(state: ServerState) -> list:
    from weir.server import routes_configure, routes_data, routes_tokens

    routes = [*routes_data.routes, *routes_configure.routes, *routes_tokens.routes]
    if state.engine is not None:
        from weir.server.engine_routes import engine_routes

        routes.extend(engine_routes(state.engine))
    return routes


async def serve(config: ServeConfig, ready: asyncio.Event | None = None) -> None:
    """Start the database (replaying the WAL), the engine, then serve until signalled."""
    database = Database(config)
    await database.start()
    state = ServerState(config=config, database=database)
    if not config.without_auth:
        from weir.auth import TokenStore
        from weir.server.routes_tokens import token_system_tables

        state.tokens = TokenStore(database.catalog)
        database.add_system_tables(token_system_tables(state.tokens, database))
        if not state.tokens.has_admin():
            log.warning("authentication is on and no operator token exists yet: create one "
                        "with `influxdb3 create token --admin`")
    if config.plugin_dir is not None:
        from weir.engine import ProcessingEngine

        state.engine = ProcessingEngine(database, config)
        await state.engine.start()
    app = WeirApp(state, build_routes(state))
    host, port = config.host_port
    server = uvicorn.Server(uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False,
        lifespan="off", timeout_graceful_shutdown=5,
    ))
    log.info("Weir listening on http://%s:%d (node %s, object store %s)", host, port,
             config.node_id, config.object_store)
    try:
        await server.serve()
    finally:
        log.info("shutting down: flushing the WAL")
        if state.engine is not None:
            await state.engine.stop()
        await database.stop()
        log.info("shutdown complete")


def run(config: ServeConfig) -> None:
    """Run the server in the foreground until SIGINT/SIGTERM."""
    level = getattr(logging, config.log_filter.split(",")[0].upper(), logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        pass
