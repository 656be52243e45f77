"""Databases and tables: /api/v3/configure/database, /table; health, ping, metrics."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:  # (the engine loads only when --plugin-dir turns it on)
    from weir.engine.wal_triggers import WalLag

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


async def metrics(request: Request) -> Response:
    st = state_of(request)
    db = st.database
    lines = [
        "# HELP weir_buffer_bytes Bytes held in the in-memory buffer.",
        "# TYPE weir_buffer_bytes gauge",
        f"weir_buffer_bytes {db.buffer.nbytes}",
        "# HELP weir_wal_last_sequence Sequence number of the newest WAL file.",
        "# TYPE weir_wal_last_sequence gauge",
        f"weir_wal_last_sequence {db.wal.last_seq}",
        "# HELP weir_parquet_files Parquet files persisted.",
        "# TYPE weir_parquet_files gauge",
        f"weir_parquet_files {len(db.index.all())}",
        "# HELP weir_http_requests_total HTTP requests served, by path.",
        "# TYPE weir_http_requests_total counter",
    ]
    for path, n in sorted(st.requests.items()):
        lines.append(f'weir_http_requests_total{{path="{path}"}} {n}')
    if st.engine is not None:
        lines.extend(_wal_trigger_metrics(st.engine.wal_lags()))
    lines.append(f"weir_uptime_seconds {time.time() - st.started:.3f}")
    lines.append("# EOF")
    return PlainTextResponse("\n".join(lines) + "\n",
                             media_type="text/plain; version=0.0.4; charset=utf-8")


def _wal_trigger_metrics(lags: list[tuple[str, str, WalLag]]) -> list[str]:
    """Each running WAL trigger's lag: WAL files, and seconds (when known)."""
    files = ["# HELP weir_trigger_wal_lag_files WAL files a WAL trigger has yet to process.",
             "# TYPE weir_trigger_wal_lag_files gauge"]
    seconds = ["# HELP weir_trigger_wal_lag_seconds Age of the oldest WAL file a WAL trigger "
               "has yet to process.", "# TYPE weir_trigger_wal_lag_seconds gauge"]
    for db, trigger, lag in sorted(lags, key=lambda x: (x[0], x[1])):
        labels = f'db="{_label(db)}",trigger="{_label(trigger)}"'
        files.append(f"weir_trigger_wal_lag_files{{{labels}}} {lag.files}")
        if lag.seconds is not None:
            seconds.append(f"weir_trigger_wal_lag_seconds{{{labels}}} {lag.seconds:.3f}")
    return files + seconds


def _label(value: str) -> str:
    """A Prometheus label value: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


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
    Route("/metrics", metrics, methods=["GET"]),
]
