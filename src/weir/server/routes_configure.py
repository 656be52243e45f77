"""Databases and tables: /api/v3/configure/database, /table; health, ping.
(/metrics and /ready: weir.server.metrics.)"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import weir
from weir.catalog import API_FIELD_TYPES
from weir.query import content_type, encode
from weir.server.errors import HttpError
from weir.server.http_io import (
    invalid_type,
    json_object,
    opt_str,
    parse_bool,
    read_json,
    require_str,
    str_list,
)
from weir.server.state import state_of

_FORMATS = {"json": "json", "jsonl": "jsonl", "json_lines": "jsonl", "csv": "csv",
            "pretty": "pretty", "parquet": "parquet"}


async def show_databases(request: Request) -> Response:
    st = state_of(request)
    q = request.query_params
    fmt = q.get("format")
    if fmt is None:
        raise HttpError(400, "serde error: missing field `format`")
    if fmt not in _FORMATS:
        raise HttpError(400, f"serde error: unknown format `{fmt}`: expected json, jsonl, csv, "
                             "pretty or parquet")
    show_deleted = parse_bool(q.get("show_deleted"), "show_deleted", False)
    table = st.services.admin.databases(show_deleted)
    fmt = _FORMATS[fmt]
    body = await asyncio.to_thread(encode, table, fmt)
    return Response(body, media_type=content_type(fmt))


async def create_database(request: Request) -> Response:
    st = state_of(request)
    req = json_object(await read_json(request, st.config.max_http_request_size))
    db = require_str(req, "db")
    await st.services.admin.create_database(db, opt_str(req, "retention_period"))
    return Response(status_code=200)


async def update_database(request: Request) -> Response:
    st = state_of(request)
    req = json_object(await read_json(request, st.config.max_http_request_size))
    db = require_str(req, "db")
    await st.services.admin.set_retention(db, opt_str(req, "retention_period"))
    return Response(status_code=200)


async def delete_database(request: Request) -> Response:
    st = state_of(request)
    db = request.query_params.get("db")
    if not db:
        raise HttpError(400, "serde error: missing field `db`")
    await st.services.admin.delete_database(db, request.query_params.get("hard_delete_at"))
    return Response(status_code=200)


async def set_retention(request: Request) -> Response:
    st = state_of(request)
    q = request.query_params
    db = q.get("db")
    if not db:
        raise HttpError(400, "serde error: missing field `db`")
    if request.method == "DELETE":
        await st.services.admin.set_retention(db, None)
    else:
        dur = q.get("duration")
        if not dur:
            raise HttpError(400, "serde error: missing field `duration`")
        await st.services.admin.set_retention(db, dur)
    return Response(status_code=204)


async def create_table(request: Request) -> Response:
    st = state_of(request)
    req = json_object(await read_json(request, st.config.max_http_request_size))
    db, table = require_str(req, "db"), require_str(req, "table")
    tags = str_list(req, "tags")
    raw_fields = req.get("fields")
    raw_fields = [] if raw_fields is None else raw_fields
    if not isinstance(raw_fields, list) or not all(isinstance(f, dict) for f in raw_fields):
        raise invalid_type("fields", "a list of {name, type} objects")
    fields = []
    for f in raw_fields:
        name = require_str(f, "name")
        ftype = API_FIELD_TYPES.get(f.get("type")) if isinstance(f.get("type"), str) else None
        if ftype is None:
            raise HttpError(400, f"invalid field type {f.get('type')!r} for field "
                                 f"{name!r}: expected utf8, int64, uint64, float64 or bool")
        fields.append((name, ftype))
    await st.services.admin.create_table(db, table, list(tags), fields)
    return Response(status_code=200)


async def delete_table(request: Request) -> Response:
    st = state_of(request)
    q = request.query_params
    db, table = q.get("db"), q.get("table")
    if db is None or table is None:  # serde names the first missing field
        raise HttpError(400, f"serde error: missing field `{'db' if db is None else 'table'}`")
    await st.services.admin.delete_table(db, table, q.get("hard_delete_at"))
    return Response(status_code=200)


async def health(request: Request) -> Response:
    return PlainTextResponse("OK")


async def ping(request: Request) -> Response:
    st = state_of(request)
    rid = _uuid7()
    return JSONResponse(
        {"product_name": "InfluxDB 3 Core", "version": weir.__version__, "revision": "weir",
         "process_id": st.process_id},
        headers={"Request-Id": rid, "X-Request-Id": rid, "X-Influxdb-Build": "Core",
                 "X-Influxdb-Version": weir.__version__},
    )


def _uuid7() -> str:
    import os
    import uuid
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62) | (
        rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


async def _database_dispatch(request: Request) -> Response:
    handler = {"GET": show_databases, "POST": create_database, "PUT": update_database,
               "DELETE": delete_database}[request.method]
    return await handler(request)


async def _table_dispatch(request: Request) -> Response:
    return await (create_table if request.method == "POST" else delete_table)(request)


routes = [
    Route("/api/v3/configure/database", _database_dispatch,
          methods=["GET", "POST", "PUT", "DELETE"]),
    Route("/api/v3/configure/database/retention_period", set_retention,
          methods=["POST", "DELETE"]),
    Route("/api/v3/configure/table", _table_dispatch, methods=["POST", "DELETE"]),
    Route("/health", health, methods=["GET"]),
    Route("/api/v1/health", health, methods=["GET"]),
    Route("/ping", ping, methods=["GET", "POST"]),
]
