"""What a request plugin returns, turned into (status, headers, body) (runs in the worker).

Flask's conventions, as the reference applies them:

* str -> 200 text/html; dict or list -> 200 JSON (`json.dumps`);
* `(body[, status][, headers])` or `(body, headers)`: the body part as above (other
  objects become `str(obj)` text/plain), headers extend or override;
* an object whose `__flask_response__()` is True -> its `status_code`, `headers`,
  `get_data()`;
* another iterable -> its str / UTF-8 bytes items concatenated, text/html;
* None or anything else -> 500 `{"error":"Unsupported return type from Python function"}`.

Weir also accepts what real plugins return although the reference refuses it:
`(status, headers, body)` and `(status, body)` with the int first (the seed request
example does this), bytes bodies (sent as-is, application/octet-stream), and
werkzeug-style response objects without `__flask_response__`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

UNSUPPORTED = json.dumps({"error": "Unsupported return type from Python function"},
                         separators=(",", ":")).encode()


class ResponseConversionError(Exception):
    """The plugin's return value cannot be turned into a response."""


class HttpAnswer:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def _is_status(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _body_part(value: Any) -> tuple[bytes, str]:
    if isinstance(value, str):
        return value.encode(), "text/html"
    if isinstance(value, dict | list):
        return json.dumps(value).encode(), "application/json"
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value), "application/octet-stream"
    return str(value).encode(), "text/plain"


def _header_value(v: Any) -> str:
    s = v if isinstance(v, str) else str(v)
    return "" if any(c in s for c in "\r\n\0") else s


def _merge_headers(headers: dict[str, str], extra: Any) -> None:
    if isinstance(extra, Mapping):
        items: Iterable[Any] = extra.items()
    elif isinstance(extra, list | tuple) and all(isinstance(p, list | tuple) and len(p) == 2
                                                 for p in extra):
        items = extra
    else:
        raise ResponseConversionError("expected a dictionary in header item")
    for k, v in items:
        name = str(k)
        for existing in [h for h in headers if h.lower() == name.lower()]:
            del headers[existing]
        headers[name] = _header_value(v)


def _answer(status: int, headers: dict[str, str], body: bytes) -> HttpAnswer:
    if not 100 <= status <= 999:
        return HttpAnswer(500, {"Content-Type": "application/json"}, json.dumps(
            {"error": f"invalid HTTP status code {status} returned by the plugin"},
            separators=(",", ":")).encode())
    return HttpAnswer(status, headers, body)


def _from_response_object(value: Any) -> HttpAnswer:
    status = value.status_code
    headers: dict[str, str] = {}
    _merge_headers(headers, dict(value.headers))
    data = value.get_data()
    body = data.encode() if isinstance(data, str) else bytes(data)
    return _answer(int(status), headers, body)


def _looks_like_response_object(value: Any) -> bool:
    flask = getattr(value, "__flask_response__", None)
    if callable(flask):
        try:
            return flask() is True
        except Exception:  # noqa: BLE001 - the plugin's object's own code: then not one
            return False
    return (hasattr(value, "status_code") and hasattr(value, "headers")
            and callable(getattr(value, "get_data", None)))


def _from_tuple(value: tuple[Any, ...]) -> HttpAnswer:
    if not 1 <= len(value) <= 3:
        raise ResponseConversionError(
            f"a response tuple has 1 to 3 items, this one has {len(value)}")
    headers: dict[str, str] = {}
    if len(value) >= 2 and _is_status(value[0]):
        # Weir: (status, headers, body) or (status, body)
        status = value[0]
        body_value = value[-1]
        body, ctype = _body_part(body_value)
        headers["Content-Type"] = ctype
        if len(value) == 3:
            _merge_headers(headers, value[1])
        return _answer(status, headers, body)
    body, ctype = _body_part(value[0])
    headers["Content-Type"] = ctype
    status = 200
    if len(value) >= 2:
        if _is_status(value[1]):
            status = value[1]
        else:
            _merge_headers(headers, value[1])
    if len(value) == 3:
        _merge_headers(headers, value[2])
    return _answer(status, headers, body)


def to_http_answer(value: Any) -> HttpAnswer:
    """Convert a request plugin's return value (see the module docstring)."""
    if value is None:
        return HttpAnswer(500, {}, UNSUPPORTED)
    if isinstance(value, str):
        return HttpAnswer(200, {"Content-Type": "text/html"}, value.encode())
    if isinstance(value, dict | list):
        return HttpAnswer(200, {"Content-Type": "application/json"}, json.dumps(value).encode())
    if isinstance(value, tuple):
        return _from_tuple(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return HttpAnswer(200, {"Content-Type": "application/octet-stream"}, bytes(value))
    if _looks_like_response_object(value):
        return _from_response_object(value)
    if isinstance(value, Iterable):
        parts = []
        for item in value:
            if isinstance(item, str):
                parts.append(item.encode())
            elif isinstance(item, bytes | bytearray):
                try:
                    bytes(item).decode("utf-8")
                except UnicodeDecodeError:
                    continue
                parts.append(bytes(item))
        return HttpAnswer(200, {"Content-Type": "text/html"}, b"".join(parts))
    return HttpAnswer(500, {}, UNSUPPORTED)
