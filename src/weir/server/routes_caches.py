"""Last-value and distinct-value caches: `/api/v3/configure/last_cache` and
`/api/v3/configure/distinct_cache` (POST creates, DELETE deletes), with the reference's
bodies: a create reads a JSON body (415 without a JSON content type) and answers 201 with
the catalog batch that records the cache; a delete reads `db`, `table` and `name` from the
query string, or, when there is none, from a JSON body, and answers 200 with no body.

What the body parser refuses (a missing field, a wrong type, a count of 0) is the
reference's serde error, 400; the catalog's refusals are mapped in `server/errors.py`:
no such database or table 404, a cache of that name already 409, a bad column 400."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from weir.server.errors import HttpError
from weir.server.http_io import invalid_type, json_object, opt_str, read_json, require_str
from weir.server.state import state_of


async def create_last_cache(request: Request) -> Response:
    st = state_of(request)
    req = json_object(await read_json(request, st.config.max_http_request_size))
    db, table = require_str(req, "db"), require_str(req, "table")
    name = opt_str(req, "name")
    key_columns = _opt_str_list(req, "key_columns")
    value_columns = _opt_str_list(req, "value_columns")
    count = _opt_uint(req, "count", 1)
    if count == 0:
        raise HttpError(400, "serde json error: last cache size must be greater than 0")
    ttl = _opt_uint(req, "ttl", 4 * 60 * 60)
    created = await st.services.caches.create_last_cache(
        db, table, name=name, key_columns=key_columns, value_columns=value_columns,
        count=count, ttl_s=ttl)
    return JSONResponse(created.to_json(), status_code=201)


async def create_distinct_cache(request: Request) -> Response:
    st = state_of(request)
    req = json_object(await read_json(request, st.config.max_http_request_size))
    db, table = require_str(req, "db"), require_str(req, "table")
    name = opt_str(req, "name")
    if "columns" not in req:
        raise HttpError(400, "serde error: missing field `columns`")
    columns = _opt_str_list(req, "columns")
    if columns is None:
        raise invalid_type("columns", "a list of strings")
    max_cardinality = _opt_uint(req, "max_cardinality", 100_000)
    if max_cardinality == 0:
        raise HttpError(400, "serde json error: invalid value: integer `0`, expected a "
                             "nonzero usize")
    max_age = _opt_uint(req, "max_age", 24 * 60 * 60)
    created = await st.services.caches.create_distinct_cache(
        db, table, columns, name=name, max_cardinality=max_cardinality, max_age_s=max_age)
    return JSONResponse(created.to_json(), status_code=201)


async def _delete_params(request: Request) -> tuple[str, str, str]:
    """`db`, `table`, `name`: from the query string if there is one, else the JSON body."""
    if request.url.query:
        q = request.query_params
        for field in ("db", "table", "name"):
            if not q.get(field):
                raise HttpError(400, f"serde error: missing field `{field}`")
        return q["db"], q["table"], q["name"]
    st = state_of(request)
    req = json_object(await read_json(request, st.config.max_http_request_size))
    return require_str(req, "db"), require_str(req, "table"), require_str(req, "name")


async def delete_last_cache(request: Request) -> Response:
    db, table, name = await _delete_params(request)
    await state_of(request).services.caches.delete_last_cache(db, table, name)
    return Response(status_code=200)


async def delete_distinct_cache(request: Request) -> Response:
    db, table, name = await _delete_params(request)
    await state_of(request).services.caches.delete_distinct_cache(db, table, name)
    return Response(status_code=200)


def _opt_str_list(params: dict[str, Any], name: str) -> list[str] | None:
    """An optional list-of-strings field (absent or null: None)."""
    v = params.get(name)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise invalid_type(name, "a list of strings")
    return v


def _opt_uint(params: dict[str, Any], name: str, default: int) -> int:
    """An optional unsigned integer field (absent: `default`; null is refused, as serde
    refuses it for a field with a default)."""
    if name not in params:
        return default
    v = params[name]
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**64:
        raise invalid_type(name, "an unsigned integer")
    return v


async def _last_cache(request: Request) -> Response:
    handler = create_last_cache if request.method == "POST" else delete_last_cache
    return await handler(request)


async def _distinct_cache(request: Request) -> Response:
    handler = create_distinct_cache if request.method == "POST" else delete_distinct_cache
    return await handler(request)


routes = [
    Route("/api/v3/configure/last_cache", _last_cache, methods=["POST", "DELETE"]),
    Route("/api/v3/configure/distinct_cache", _distinct_cache, methods=["POST", "DELETE"]),
]
