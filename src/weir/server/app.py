"""The ASGI application: exact (method, path) routing as the reference does it.

Unmatched requests, including a known path with the wrong method, get 404 `Not found`;
OPTIONS gets the CORS preflight answer; every response carries
`Access-Control-Allow-Origin: *` and (once the catalog is loaded) `cluster-uuid`. While
the server starts, requests get 503 (weir.server.metrics: /ready says why). Every request
is counted for /metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from starlette.datastructures import State
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from weir.server.auth import authenticate, open_paths
from weir.server.errors import HttpError, to_response
from weir.server.metrics import ENGINE_PREFIX, HttpMetrics, starting_response
from weir.server.state import ServerState

log = logging.getLogger("weir.server")

class WeirApp:
    def __init__(self, state: ServerState, routes: Iterable[BaseRoute]) -> None:
        self.state = State()
        self.state.weir = state
        self.routes = list(routes)
        self.route_paths = {getattr(r, "path", None) for r in self.routes}
        self.open_paths = open_paths(state.config.disable_authz)
        self.http_metrics = HttpMetrics(state.metrics.registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan_noop(receive, send)
            return
        if scope["type"] != "http":
            return
        scope["app"] = self
        st: ServerState = self.state.weir
        extra = [(b"access-control-allow-origin", b"*")]
        if st.starting is None:
            extra.append((b"cluster-uuid", st.database.catalog.uuid.encode()))
        started = time.perf_counter()
        status: int | None = None
        body_bytes = 0
        complete = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, body_bytes, complete
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + extra
                status = message["status"]
            elif message["type"] == "http.response.body":
                body_bytes += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send(message)

        try:
            await self._handle(scope, receive, send_with_headers, st)
        finally:
            self.http_metrics.record(scope["method"], self._path_label(scope["path"], st),
                                     status if complete else None,
                                     time.perf_counter() - started, body_bytes)

    def _path_label(self, path: str, st: ServerState) -> str:
        """The path as /metrics names it: a routed path or a running request trigger's;
        "" for any other (see HttpMetrics)."""
        if path in self.route_paths:
            return path
        if (path.startswith(ENGINE_PREFIX) and st.engine is not None
                and st.engine.serves_request(path[len(ENGINE_PREFIX):])):
            return path
        return ""

    async def _handle(self, scope: Scope, receive: Receive, send_with_headers: Send,
                      st: ServerState) -> None:
        path = scope["path"]
        if scope["method"] == "OPTIONS":
            await Response(status_code=204, headers={
                "Access-Control-Allow-Methods": "*",
                "Access-Control-Allow-Headers": "*",
                "Access-Control-Max-Age": "86400",
            })(scope, receive, send_with_headers)
            return
        metrics_open = path == "/metrics" and (st.tokens is None or path in self.open_paths)
        if st.starting is not None and not metrics_open:
            # nothing is served before the catalog is loaded and the WAL replayed (and
            # tokens cannot be checked before): /ready says why, the rest says wait
            answer = (starting_response(st.starting) if path == "/ready" else JSONResponse(
                {"error": f"the server is starting ({st.starting}); retry once GET /ready "
                          "answers 200"}, status_code=503))
            await answer(scope, receive, send_with_headers)
            return
        try:
            scope["weir.token"] = authenticate(
                scope, st.tokens, self.open_paths,
                st.engine.is_public_request if st.engine is not None else None)
        except HttpError as e:
            await e.response()(scope, receive, send_with_headers)
            return
        for route in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                try:
                    await route.handle(scope, receive, send_with_headers)
                # handlers raise typed errors; shape them here (any other one: a logged 500)
                except Exception as exc:  # noqa: BLE001 - every error becomes a response
                    await to_response(exc)(scope, receive, send_with_headers)
                return
        await PlainTextResponse("Not found", status_code=404)(scope, receive, send_with_headers)


async def _lifespan_noop(receive: Receive, send: Send) -> None:
    # Start-up and shutdown are driven by weir.server.run, not by the ASGI lifespan.
    while True:
        msg: Any = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
