"""Writes (v3, v2, v1) and SQL queries."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from weir.errors import WriteError
from weir.query import choose_format, content_type, encode
from weir.server.auth import READ, WRITE, require_db
from weir.server.errors import HttpError, json_error
from weir.server.http_io import opt_str, parse_bool, parse_json, read_body, require_str
from weir.server.routes_v1 import query_influxql
from weir.server.state import state_of

_V1_PRECISIONS = {"s", "ms", "u", "us", "n", "ns", "second", "millisecond",
                  "microsecond", "nanosecond"}


async def write_lp(request: Request) -> Response:
    st = state_of(request)
    q = request.query_params
    db = q.get("db")
    if not db:
        raise HttpError(400, "serde error: missing field `db`")
    precision = q.get("precision") or "auto"
    accept_partial = parse_bool(q.get("accept_partial"), "accept_partial", True)
    no_sync = parse_bool(q.get("no_sync"), "no_sync", False)
    require_db(request, db, WRITE)
    body = await read_body(request, st.config.max_http_request_size)
    _require_utf8(body)
    await st.database.write_lp(db, body, precision=precision, accept_partial=accept_partial,
                               no_sync=no_sync)
    return Response(status_code=204)


async def write_v1(request: Request) -> Response:
    st = state_of(request)
    q = request.query_params
    db = q.get("db")
    if not db:
        raise json_error(400, "missing query parameter 'db'")
    rp = q.get("rp")
    if rp and rp not in ("autogen", "default"):
        db = f"{db}/{rp}"
    precision = q.get("precision") or "ns"
    if precision not in _V1_PRECISIONS:
        raise json_error(400, f"invalid precision {precision!r}: expected s, ms, u, us, n or ns")
    require_db(request, db, WRITE)
    body = await read_body(request, st.config.max_http_request_size)
    _require_utf8(body)
    await st.database.write_lp(db, body, precision=precision, accept_partial=False)
    return Response(status_code=204)


async def write_v2(request: Request) -> Response:
    st = state_of(request)
    q = request.query_params
    bucket = q.get("bucket")
    if not bucket:
        raise HttpError(400, {"code": "invalid", "message": "missing query parameter 'bucket'"})
    precision = q.get("precision") or "ns"
    if precision not in _V1_PRECISIONS:
        raise HttpError(400, {"code": "invalid", "message": f"invalid precision {precision!r}"})
    try:
        require_db(request, bucket, WRITE)
        body = await read_body(request, st.config.max_http_request_size)
        _require_utf8(body)
        await st.database.write_lp(bucket, body, precision=precision, accept_partial=False)
    except HttpError as e:
        code = {413: "request too large", 403: "forbidden", 401: "unauthorized",
                404: "not found"}.get(e.status, "invalid")
        msg = e.body if isinstance(e.body, str) else json.dumps(e.body)
        raise HttpError(e.status, {"code": code, "message": msg}) from None
    except WriteError as e:
        data = e.body.get("data") if isinstance(e.body, dict) else None
        if isinstance(data, dict):
            msg = (f"write buffer error: line protocol parse failed: {data['error_message']} "
                   f"on line {data['line_number']}")
        else:
            msg = str(e)
        code = "internal error" if e.status >= 500 else "invalid"
        raise HttpError(e.status, {"code": code, "message": msg}) from None
    return Response(status_code=204)


def _require_utf8(body: bytes) -> None:
    """The reference refuses a body that is not UTF-8 as a whole; say where it breaks."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        line = body.count(b"\n", 0, e.start) + 1
        column = e.start - (body.rfind(b"\n", 0, e.start) + 1) + 1
        raise HttpError(400, f"body content is not valid utf8: invalid utf-8 sequence of "
                             f"{e.end - e.start} bytes from index {e.start} (line {line}, "
                             f"byte {column}: {body[e.start:e.end]!r})") from None


async def read_query_request(request: Request) -> dict[str, Any]:
    """The query endpoints' request: GET query string or POST JSON body, as a dict."""
    st = state_of(request)
    if request.method == "GET":
        q = request.query_params
        if not q:
            raise HttpError(400, "missing query parameters 'db' and 'q'")
        req: dict[str, Any] = {"db": q.get("db"), "q": q.get("q"), "format": q.get("format")}
        if q.get("params"):
            req["params"] = parse_json(q["params"].encode())
    else:
        body = await read_body(request, st.config.max_http_request_size)
        req = parse_json(body)
        if not isinstance(req, dict):
            raise HttpError(400, "serde json error: expected a JSON object")
    for name in ("db", "q", "format"):
        opt_str(req, name)
    return req


async def _query_request(request: Request) -> dict[str, Any]:
    req = await read_query_request(request)
    require_str(req, "db")  # (read_query_request checked the types of db, q and format)
    require_str(req, "q")
    require_db(request, req["db"], READ)
    params = req.get("params")
    if params is not None and not isinstance(params, dict):
        raise HttpError(400, "serde json error: params must be a JSON object")
    return req


async def query_sql(request: Request) -> Response:
    st = state_of(request)
    req = await _query_request(request)
    try:
        fmt = choose_format(req.get("format"), request.headers.get("accept"))
    except ValueError as e:
        raise HttpError(400, str(e)) from None
    table = await st.database.query(req["db"], req["q"], req.get("params"))
    body = await asyncio.to_thread(encode, table, fmt)
    return Response(body, media_type=content_type(fmt))


routes = [
    Route("/api/v3/write_lp", write_lp, methods=["POST"]),
    Route("/api/v2/write", write_v2, methods=["POST"]),
    Route("/write", write_v1, methods=["POST"]),
    Route("/api/v3/query_sql", query_sql, methods=["GET", "POST"]),
    Route("/api/v3/query_influxql", query_influxql, methods=["GET", "POST"]),
]
