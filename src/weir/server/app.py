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

from weir.server.errors import HttpError, to_response
from weir.server.state import ServerState

log = logging.getLogger("weir.server")

_AUTH_MALFORMED = (
    "Authorization header was malformed, the request was not in the form of "
    "'Authorization: <auth-scheme> <token>', supported auth-schemes are Bearer, Token and Basic"
)


def check_auth_header(value: str | None) -> None:
    """The reference validates the header's shape even without auth."""
    if value is None:
        return
    parts = value.split(" ")
    if len(parts) != 2 or parts[0] not in ("Bearer", "Token", "Basic") or not parts[1]:
        raise HttpError(400, {"error": _AUTH_MALFORMED})


class WeirApp:
    def __init__(self, state: ServerState, routes: Iterable[BaseRoute]) -> None:
        self.state = State()
        self.state.weir = state
        self.routes = list(routes)

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
        st.requests[path if not path.startswith("/api/v3/engine/") else "/api/v3/engine"] = (
            st.requests.get(path, 0) + 1
        )
        if scope["method"] == "OPTIONS":
            await Response(status_code=204, headers={
                "Access-Control-Allow-Methods": "*",
                "Access-Control-Allow-Headers": "*",
                "Access-Control-Max-Age": "86400",
            })(scope, receive, send_with_headers)
            return
        try:
            check_auth_header(_header(scope, b"authorization"))
        except HttpError as e:
            await e.response()(scope, receive, send_with_headers)
            return
        for route in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                try:
                    await route.handle(scope, receive, send_with_headers)
                except Exception as exc:  # handlers raise typed errors; shape them here
                    await to_response(exc)(scope, receive, send_with_headers)
                return
        await PlainTextResponse("Not found", status_code=404)(scope, receive, send_with_headers)


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k == name:
            return v.decode("latin-1")
    return None


async def _lifespan_noop(receive: Receive, send: Send) -> None:
    # Start-up and shutdown are driven by weir.server.run, not by the ASGI lifespan.
    while True:
        msg: Any = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
