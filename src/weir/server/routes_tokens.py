"""Tokens: /api/v3/configure/token*. (Their `system.tokens` table is
weir.system_tables.tokens.)"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from weir.auth import ADMIN_NAME, TokenStore, parse_permission, token_json
from weir.config import DurationError, parse_duration
from weir.errors import AlreadyExists, CatalogError
from weir.server.errors import HttpError
from weir.server.http_io import invalid_type, opt_str, parse_json, read_body, str_list
from weir.server.state import state_of


def _store(request: Request) -> TokenStore:
    st = state_of(request)
    if st.tokens is None:
        raise HttpError(405, "endpoint disabled, started without auth")
    return st.tokens


def _created(tok: Any, text: str) -> Response:
    return JSONResponse(token_json(tok, text), status_code=201,
                        headers={"Content-Type": "json"})


async def _body(request: Request) -> dict[str, Any]:
    raw = await read_body(request, state_of(request).config.max_http_request_size)
    if not raw.strip():
        return {}
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise HttpError(400, "serde json error: expected a JSON object")
    return body


#: the latest expiry a token can show (RFC3339 stops at year 9999)
_MAX_EXPIRY_MS = 253_402_300_799_000


def _expiry(body: dict[str, Any]) -> float | None:
    """`expiry_secs` (an unsigned integer, as the reference's u64) or `expiry` (humantime)."""
    secs = body.get("expiry_secs")
    text = opt_str(body, "expiry")
    if secs is not None:
        if isinstance(secs, bool) or not isinstance(secs, int) or secs < 0:
            raise invalid_type("expiry_secs", "an unsigned integer")
        out = float(secs)
    else:
        if not text:
            return None
        try:
            out = parse_duration(text)
        except DurationError as e:
            raise HttpError(400, f"invalid expiry: {e}") from None
    if time.time() * 1000 + out * 1000 > _MAX_EXPIRY_MS:
        raise HttpError(400, "invalid expiry: a token cannot expire after the year 9999")
    return out


def _token_name(body: dict[str, Any]) -> str:
    name = body.get("token_name")
    if not name:
        raise HttpError(400, "serde error: missing field `token_name`")
    if not isinstance(name, str):
        raise invalid_type("token_name", "a string")
    return name


def _permission_text(p: Any) -> str:
    """A permission as `db:<dbs>:<actions>`, from its text or its object form."""
    if isinstance(p, str):
        return p
    if not isinstance(p, dict):
        raise invalid_type("permissions", "a list of strings or permission objects")
    kind = p.get("resource_type", "db")
    if not isinstance(kind, str):
        raise invalid_type("resource_type", "a string")
    if kind != "db":
        raise HttpError(400, f"unsupported resource_type {kind!r}: tokens are scoped to "
                             "databases (\"db\")")
    dbs, actions = str_list(p, "resource_identifier"), str_list(p, "actions")
    return f"db:{','.join(dbs)}:{','.join(actions)}"


async def create_admin(request: Request) -> Response:
    store = _store(request)
    try:
        tok, text = await asyncio.to_thread(store.create, ADMIN_NAME, admin=True)
    except AlreadyExists:
        raise HttpError(409, "attempted to create a resource that already exists") from None
    return _created(tok, text)


async def regenerate_admin(request: Request) -> Response:
    store = _store(request)
    tok, text = await asyncio.to_thread(store.create, ADMIN_NAME, admin=True, replace=True)
    return _created(tok, text)


async def create_named_admin(request: Request) -> Response:
    store = _store(request)
    body = await _body(request)
    name = _token_name(body)
    try:
        tok, text = await asyncio.to_thread(store.create, name, admin=True,
                                            expiry_s=_expiry(body))
    except CatalogError as e:
        raise HttpError(409, str(e)) from None
    return _created(tok, text)


async def token_dispatch(request: Request) -> Response:
    store = _store(request)
    if request.method == "DELETE":
        name = request.query_params.get("token_name") or _token_name(await _body(request))
        if name == ADMIN_NAME:
            raise HttpError(405, "cannot delete operator token")
        await asyncio.to_thread(store.delete, name)
        return Response(status_code=200)
    # POST: a database-scoped token, as InfluxDB 3 Enterprise offers.
    body = await _body(request)
    name = _token_name(body)
    raw = body.get("permissions")
    if raw is not None and not isinstance(raw, list):
        raise invalid_type("permissions", "a list of strings or permission objects")
    perms = []
    for p in raw or []:
        text = _permission_text(p)
        try:
            perms.append(parse_permission(text))
        except ValueError as e:
            raise HttpError(400, str(e)) from None
    if not perms:
        raise HttpError(400, "a scoped token needs at least one permission "
                             "(e.g. \"db:mydb:read,write\")")
    try:
        tok, text = await asyncio.to_thread(store.create, name, admin=False, permissions=perms,
                                            expiry_s=_expiry(body))
    except CatalogError as e:
        raise HttpError(409, str(e)) from None
    return _created(tok, text)


routes = [
    Route("/api/v3/configure/token/admin", create_admin, methods=["POST"]),
    Route("/api/v3/configure/token/admin/regenerate", regenerate_admin, methods=["POST"]),
    Route("/api/v3/configure/token/named_admin", create_named_admin, methods=["POST"]),
    Route("/api/v3/configure/token", token_dispatch, methods=["POST", "DELETE"]),
]
