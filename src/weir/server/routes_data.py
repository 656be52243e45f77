"""Writes (v3, v2, v1) and the v3 queries (SQL, InfluxQL): requests and answers only;
the services hold the rules."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from weir.auth import Token
from weir.errors import AccessDenied, LineProtocolError, WriteError
from weir.query import choose_format, content_type, encode
from weir.server.errors import HttpError, json_error, write_error_response
from weir.server.http_io import opt_str, parse_bool, parse_json, read_body, require_str
from weir.server.state import state_of
from weir.server.streaming import result_response
from weir.service import BodyReader


def _principal(request: Request) -> Token | None:
    tok: Token | None = request.scope.get("weir.token")
    return tok


def _body_reader(request: Request) -> BodyReader:
    limit = state_of(request).config.max_http_request_size
    return lambda: read_body(request, limit)


async def write_lp(request: Request) -> Response:
    st = state_of(request)
    q = request.query_params
    db = q.get("db")
    if not request.url.query:
        raise HttpError(400, "missing query parameter 'db'")
    if db is None:
        raise HttpError(400, "serde error: missing field `db`")
    # (an empty `db=` is the service's to refuse: `{"error":"db name cannot be empty"}`)
    accept_partial = parse_bool(q.get("accept_partial"), "accept_partial", True)
    no_sync = parse_bool(q.get("no_sync"), "no_sync", False)
    await st.services.writes.write_http(
        "v3", db=db, precision=q.get("precision"), accept_partial=accept_partial,
        no_sync=no_sync, principal=_principal(request), read_body=_body_reader(request))
    return Response(status_code=204)


async def write_v1(request: Request) -> Response:
    """The reference's v1 parameter errors: `{"error": ...}` in its request parser's
    words."""
    st = state_of(request)
    q = request.query_params
    db = q.get("db")
    if not request.url.query:
        raise json_error(400, "no db destination provided")
    if db is None:
        raise json_error(400, "failed to deserialize db/rp/precision in request: missing "
                              "field `db`")
    await st.services.writes.write_http(
        "v1", db=db, rp=q.get("rp"), precision=q.get("precision"),
        principal=_principal(request), read_body=_body_reader(request))
    return Response(status_code=204)


async def write_v2(request: Request) -> Response:
    """The v2 API answers every error as `{"code": ..., "message": ...}`."""
    st = state_of(request)
    q = request.query_params
    bucket = q.get("bucket")
    if not request.url.query:
        raise _v2_error(400, "no org/bucket destination provided")
    if not bucket:
        raise _v2_error(400, "missing bucket value")
    try:
        await st.services.writes.write_http(
            "v2", db=bucket, precision=q.get("precision"), principal=_principal(request),
            read_body=_body_reader(request))
    except HttpError as e:
        raise _v2_error(e.status, e.body if isinstance(e.body, str) else json.dumps(e.body)
                        ) from None
    except AccessDenied as e:
        raise _v2_error(403, json.dumps({"error": str(e)})) from None
    except WriteError as e:
        status = write_error_response(e)[0]
        msg = str(e)
        if isinstance(e, LineProtocolError):
            msg = (f"write buffer error: line protocol parse failed: {e.line.message} "
                   f"on line {e.line.line_number}")
        raise _v2_error(status, msg) from None
    return Response(status_code=204)


def _v2_error(status: int, message: str) -> HttpError:
    code = {413: "request too large", 403: "forbidden", 401: "unauthorized",
            404: "not found"}.get(status, "internal error" if status >= 500 else "invalid")
    return HttpError(status, {"code": code, "message": message})


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


async def query_sql(request: Request) -> Response:
    st = state_of(request)
    req = await read_query_request(request)
    require_str(req, "db")  # (read_query_request checked the types of db, q and format)
    require_str(req, "q")
    params = _params(req)
    fmt = _format(req, request)
    stream = await st.services.queries.sql_stream(req["db"], req["q"], params,
                                                  _principal(request))
    return await result_response(stream, fmt)


async def query_influxql(request: Request) -> Response:
    st = state_of(request)
    req = await read_query_request(request)
    if req.get("q") is None:
        raise HttpError(400, "serde error: missing field `q`")
    params = _params(req)
    fmt = _format(req, request)
    result = await st.services.queries.influxql(req["q"], req.get("db"), params,
                                                _principal(request))
    body = await asyncio.to_thread(encode, result.table, fmt)
    return Response(body, media_type=content_type(fmt))


def _params(req: dict[str, Any]) -> dict[str, Any] | None:
    params = req.get("params")
    if params is not None and not isinstance(params, dict):
        raise HttpError(400, "serde json error: params must be a JSON object")
    return params


def _format(req: dict[str, Any], request: Request) -> str:
    try:
        return choose_format(req.get("format"), request.headers.get("accept"))
    except ValueError as e:
        raise HttpError(400, str(e)) from None


routes = [
    Route("/api/v3/write_lp", write_lp, methods=["POST"]),
    Route("/api/v2/write", write_v2, methods=["POST"]),
    Route("/write", write_v1, methods=["POST"]),
    Route("/api/v3/query_sql", query_sql, methods=["GET", "POST"]),
    Route("/api/v3/query_influxql", query_influxql, methods=["GET", "POST"]),
]
