"""Reading requests the way the reference does: size limits, gzip, JSON, query flags."""

from __future__ import annotations

import json
import zlib
from typing import Any

from starlette.requests import Request

from weir.server.errors import HttpError


async def read_body(request: Request, max_size: int) -> bytes:
    """The request body, gzip-decoded if so encoded; 413 past `max_size` (raw or decoded)."""
    # an empty Content-Encoding names no coding: refused, as the reference does (codings
    # themselves are case-insensitive, RFC 9110 8.4.1)
    enc = request.headers.get("content-encoding", "identity").strip().lower()
    if enc not in ("identity", "gzip"):
        raise HttpError(400, f"unacceptable content-encoding: {enc}")
    too_big = HttpError(413, f"max request size ({max_size} bytes) exceeded")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_size:
            raise too_big
        chunks.append(chunk)
    raw = b"".join(chunks)
    if enc != "gzip":
        return raw
    return gunzip(raw, max_size)


def gunzip(raw: bytes, max_size: int) -> bytes:
    """Decode gzip (several members allowed), never inflating past `max_size`."""
    out: list[bytes] = []
    total = 0
    data = raw
    try:
        while data:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while True:
                piece = d.decompress(data, max_size + 1 - total)
                total += len(piece)
                out.append(piece)
                if total > max_size:
                    raise HttpError(413, f"max request size ({max_size} bytes) exceeded")
                if d.eof or not d.unconsumed_tail:
                    break
                data = d.unconsumed_tail
            if not d.eof:
                raise HttpError(400, "error decoding gzip stream: unexpected end of data")
            data = d.unused_data
    except zlib.error as e:
        raise HttpError(400, f"error decoding gzip stream: {e}") from None
    return b"".join(out)


def parse_bool(value: str | None, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise HttpError(400, f"serde error: invalid value for {name}: expected true or false, got {value!r}")


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise HttpError(400, f"serde json error: {e}") from None


async def read_json(request: Request, max_size: int, check_content_type: bool = True) -> Any:
    if check_content_type:
        ct = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not (ct == "application/json" or (ct.startswith("application/") and ct.endswith("+json"))):
            raise HttpError(415, "unacceptable content-type, expected: application/json")
    return parse_json(await read_body(request, max_size))


def require(params: dict[str, Any], name: str) -> Any:
    v = params.get(name)
    if v is None:
        raise HttpError(400, f"serde error: missing field `{name}`")
    return v


def json_object(body: Any) -> dict[str, Any]:
    """A JSON body that must be an object (400 otherwise)."""
    if not isinstance(body, dict):
        raise HttpError(400, "serde json error: invalid type: expected a JSON object")
    return body


def invalid_type(name: str, expected: str) -> HttpError:
    """serde's answer to a JSON value of the wrong type (400)."""
    return HttpError(400, f"serde json error: invalid type for `{name}`: expected {expected}")


def require_str(params: dict[str, Any], name: str) -> str:
    """A required string field of a JSON body: 400 if missing or not a string."""
    v = require(params, name)
    if not isinstance(v, str):
        raise invalid_type(name, "a string")
    return v


def opt_str(params: dict[str, Any], name: str) -> str | None:
    """An optional string field of a JSON body (absent or null: None)."""
    v = params.get(name)
    if v is not None and not isinstance(v, str):
        raise invalid_type(name, "a string")
    return v


def str_list(params: dict[str, Any], name: str) -> list[str]:
    """An optional list-of-strings field of a JSON body (absent or null: [])."""
    v = params.get(name)
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise invalid_type(name, "a list of strings")
    return v
