"""The v1 `/query`: InfluxQL answered as InfluxDB 1.x does (JSON or CSV series, `epoch`,
`chunked`, `pretty`, several statements). `/api/v3/query_influxql` is in routes_data.

v1 statement errors are answered with 200 and the error inside the statement's result,
as InfluxDB 1.x does; request errors (no `q`, bad `epoch`) are 400 `{"error": ...}`.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import math
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pyarrow as pa
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from weir.influxql.result import MEASUREMENT, InfluxQLResult
from weir.influxql.timeutil import EPOCH_UNITS, format_rfc3339
from weir.server.errors import HttpError, json_error
from weir.server.http_io import parse_json, read_body
from weir.server.state import state_of

DEFAULT_CHUNK_SIZE = 10_000
_UNSIGNED = re.compile(r"\+?[0-9]+")


# ---- /query (v1) -------------------------------------------------------------------------


def _multipart(body: bytes, ctype: str) -> dict[str, str]:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
    out: dict[str, str] = {}
    if not msg.is_multipart():
        raise json_error(400, "error decoding multipart file upload: no parts")
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:  # RFC 7578: every part names its field
            raise json_error(400, "error decoding multipart file upload: a part has no "
                                  "Content-Disposition name")
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        out[str(name)] = text
    return out


async def _v1_params(request: Request) -> dict[str, str]:
    st = state_of(request)
    params: dict[str, str] = dict(request.query_params)
    # a body's fields override the URL's, but a bad epoch in the URL is still an error
    # (the reference drops the whole query string unread when a form body comes)
    _check_epoch(params.get("epoch"))
    if request.method == "POST":
        body = await read_body(request, st.config.max_http_request_size)
        ctype = request.headers.get("content-type", "")
        mime = ctype.split(";")[0].strip().lower()
        if mime == "application/x-www-form-urlencoded":
            params.update(dict(parse_qsl(body.decode("utf-8", "replace"),
                                         keep_blank_values=True)))
        elif mime == "multipart/form-data":
            params.update(_multipart(body, ctype))
        elif mime in ("", "application/vnd.influxql", "text/plain"):
            if not params.get("q") and body:
                params["q"] = body.decode("utf-8", "replace")
        elif not params.get("q"):
            raise json_error(400, f"invalid mime type ({ctype})")
    return params


def _check_epoch(epoch: str | None) -> str | None:
    """`epoch` as given, None if absent or empty; 400 naming it if it is no unit."""
    if epoch and epoch not in EPOCH_UNITS:
        raise json_error(400, f"error decoding params from url: unknown epoch {epoch!r}: "
                              "expected ns, u, µ, ms, s, m, h, d or w")
    return epoch or None


def _bool(v: str | None, name: str) -> bool:
    if v is None or v == "":
        return False
    low = v.strip().lower()
    if low in ("true", "1", "t"):
        return True
    if low in ("false", "0", "f"):
        return False
    raise json_error(400, f"error decoding params from url: invalid value for {name}: {v!r}")


async def query_v1(request: Request) -> Response:
    st = state_of(request)
    params = await _v1_params(request)
    text = params.get("q")
    if not text:
        raise json_error(400, "expected a query to be provided in the query string or body")
    epoch = _check_epoch(params.get("epoch"))
    chunked = _bool(params.get("chunked"), "chunked")
    pretty = _bool(params.get("pretty"), "pretty")
    chunk_size = DEFAULT_CHUNK_SIZE
    if params.get("chunk_size"):
        # an unsigned integer, as the reference parses it (a "+" at most, no spaces)
        if not _UNSIGNED.fullmatch(params["chunk_size"]):
            raise json_error(400, "error reading field from body: chunk_size -- invalid "
                                  "digit found in string")
        chunk_size = max(1, int(params["chunk_size"]))
    accept = request.headers.get("accept", "")
    csv_out = any(a.split(";")[0].strip() in ("application/csv", "text/csv")
                  for a in accept.split(","))
    bind: dict[str, Any] = {}
    if params.get("params"):
        try:
            p = parse_json(params["params"].encode())
        except HttpError as e:  # v1 request errors are JSON, like the rest of /query's
            raise json_error(400, f"error decoding query body: {e.body}") from None
        if not isinstance(p, dict):
            raise json_error(400, "error decoding query body: params must be a JSON object")
        bind = p
    db = params.get("db") or None
    rp = params.get("rp") or None
    results = await st.services.queries.influxql_v1(text, db, rp, bind,
                                                    request.scope.get("weir.token"))
    if csv_out:
        body = _csv(results, epoch)
        return Response(body, media_type="application/csv")
    if chunked:
        return StreamingResponse(_chunked_json(results, epoch, chunk_size, pretty),
                                 media_type="application/json")
    doc = {"results": [_statement_json(i, r, epoch, None) for i, r in enumerate(results)]}
    return Response(_dumps(doc, pretty), media_type="application/json")


# ---- series ------------------------------------------------------------------------------


class _Series:
    __slots__ = ("columns", "name", "rows", "tags")

    def __init__(self, name: str, tags: dict[str, str] | None, columns: list[str],
                 rows: list[list[Any]]) -> None:
        self.name, self.tags, self.columns, self.rows = name, tags, columns, rows


def _py_values(col: pa.ChunkedArray, epoch: str | None) -> list[Any]:
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = t.value_type
    if pa.types.is_timestamp(t):
        mult = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[t.unit]
        ints = col.cast(pa.int64()).to_pylist()
        if epoch is None:
            return [None if v is None else format_rfc3339(v * mult) for v in ints]
        div = EPOCH_UNITS[epoch]
        return [None if v is None else (v * mult) // div for v in ints]
    if pa.types.is_floating(t):
        out: list[int | float | None] = []
        for v in col.to_pylist():
            if v is None or math.isnan(v) or math.isinf(v):
                out.append(None)
            elif v.is_integer() and abs(v) < 2**63:
                out.append(int(v))
            else:
                out.append(v)
        return out
    if pa.types.is_string(t) or pa.types.is_large_string(t) or t == pa.string_view():
        texts: list[str | None] = col.cast(pa.string()).to_pylist()
        return texts
    if pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_null(t):
        values: list[int | bool | None] = col.to_pylist()
        return values
    return [None if v is None else str(v) for v in col.to_pylist()]


def series_of(result: InfluxQLResult, epoch: str | None) -> list[_Series]:
    """Split a result into v1 series: one per measurement and GROUP BY tag values."""
    table = result.table
    if table.num_rows == 0:
        return []
    names = table.column_names
    group = [g for g in result.group_tags if g in names]
    hidden = {MEASUREMENT} | {g for g in group if g not in result.projected_tags}
    value_cols = [c for c in names if c not in hidden]
    meas = _py_values(table.column(MEASUREMENT), None)
    gvals = {g: _py_values(table.column(g), None) for g in group}
    vals = [_py_values(table.column(c), epoch) for c in value_cols]
    out: list[_Series] = []
    prev: tuple[Any, ...] | None = None
    for i in range(table.num_rows):
        key = (meas[i], *(gvals[g][i] or "" for g in group))
        if key != prev:
            tags = {g: (gvals[g][i] or "") for g in sorted(group)} if group else None
            out.append(_Series(meas[i] or "", tags, value_cols, []))
            prev = key
        out[-1].rows.append([v[i] for v in vals])
    return out


def _series_json(s: _Series, partial: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if s.name:
        d["name"] = s.name
    if s.tags:
        d["tags"] = s.tags
    if s.columns:
        d["columns"] = s.columns
    if s.rows:
        d["values"] = s.rows
    if partial:
        d["partial"] = True
    return d


def _statement_json(i: int, r: InfluxQLResult | str, epoch: str | None,
                    series: list[_Series] | None) -> dict[str, Any]:
    if isinstance(r, str):
        return {"statement_id": i, "error": r}
    d: dict[str, Any] = {"statement_id": i}
    ss = series if series is not None else series_of(r, epoch)
    if ss:
        d["series"] = [_series_json(s) for s in ss]
    return d


def _dumps(doc: Any, pretty: bool) -> bytes:
    if pretty:
        return json.dumps(doc, indent=2, ensure_ascii=False).encode()
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _chunked_json(results: list[InfluxQLResult | str], epoch: str | None, chunk_size: int,
                  pretty: bool) -> Iterator[bytes]:
    """One JSON document per line per series piece of at most chunk_size rows; `partial`
    marks a series that continues, and a statement that has more to come."""
    for i, r in enumerate(results):
        if isinstance(r, str):
            yield _dumps({"results": [{"statement_id": i, "error": r}]}, pretty) + b"\n"
            continue
        pieces: list[tuple[_Series, bool]] = []
        for s in series_of(r, epoch):
            for start in range(0, max(len(s.rows), 1), chunk_size):
                part = _Series(s.name, s.tags, s.columns, s.rows[start:start + chunk_size])
                pieces.append((part, start + chunk_size < len(s.rows)))
        if not pieces:
            yield _dumps({"results": [{"statement_id": i}]}, pretty) + b"\n"
            continue
        for j, (s, more) in enumerate(pieces):
            res: dict[str, Any] = {"statement_id": i, "series": [_series_json(s, more)]}
            if j < len(pieces) - 1:
                res["partial"] = True
            yield _dumps({"results": [res]}, pretty) + b"\n"


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    s = str(v)
    if "," in s or '"' in s:
        return '"' + s.replace('"', '""') + '"'
    return s


def _csv(results: list[InfluxQLResult | str], epoch: str | None) -> bytes:
    """name,tags,<columns> per statement; time as an integer (ns unless `epoch`)."""
    out: list[str] = []
    for i, r in enumerate(results):
        if isinstance(r, str):
            continue
        series = series_of(r, epoch or "ns")
        if not series:
            continue
        if i > 0 and out:
            out.append("\n")
        out.append(",".join(["name", "tags", *series[0].columns]) + "\n")
        for s in series:
            tags = ",".join(f"{k}={v}" for k, v in (s.tags or {}).items())
            prefix = _csv_cell(s.name) + "," + _csv_cell(tags)
            out.extend(prefix + "," + ",".join(_csv_cell(v) for v in row) + "\n"
                       for row in s.rows)
    return "".join(out).encode()


routes = [
    Route("/query", query_v1, methods=["GET", "POST"]),
]
