"""The ASGI application: exact (method, path) routing as the reference does it.

Unmatched requests, including a known path with the wrong method, get 404 `Not found`;
OPTIONS gets the CORS preflight answer; every response carries
`Access-Control-Allow-Origin: *` and `cluster-uuid`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from starlette.datastructures import State
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from weir.server.auth import authenticate, open_paths
from weir.server.errors import HttpError, to_response
from weir.server.state import ServerState

log = logging.getLogger("weir.server")

class WeirApp:
    def __init__(self, state: ServerState, routes: Iterable[BaseRoute]) -> None:
        self.state = State()
        self.state.weir = state
        self.routes = list(routes)
        self.route_paths = {getattr(r, "path", None) for r in self.routes}
        self.open_paths = open_paths(state.config.disable_authz)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan_noop(receive, send)
            return
        if scope["type"] != "http":
            return
        scope["app"] = self
        st: ServerState = self.state.weir
        extra = [(b"access-control-allow-origin", b"*"),
                 (b"cluster-uuid", st.database.catalog.uuid.encode())]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        path = scope["path"]
        # one counter per routed path (request triggers share one); every other path
        # shares "unrouted", so arbitrary URLs cannot grow /metrics without bound
        key = ("/api/v3/engine" if path.startswith("/api/v3/engine/")
               else path if path in self.route_paths else "unrouted")
        st.requests[key] = st.requests.get(key, 0) + 1
        if scope["method"] == "OPTIONS":
            await Response(status_code=204, headers={
                "Access-Control-Allow-Methods": "*",
                "Access-Control-Allow-Headers": "*",
                "Access-Control-Max-Age": "86400",
            })(scope, receive, send_with_headers)
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
