"""Building blocks of the OpenAPI document (media types, responses, parameters, bodies,
operations), the value sets the server accepts, and the shared `components`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Json = dict[str, Any]

TEXT = "text/plain"
JSON = "application/json"


def _ref(kind: str, name: str) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


def _text(pattern: str | None = None, example: str | None = None) -> Json:
    schema: Json = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    media: Json = {"schema": schema}
    if example is not None:
        media["example"] = example
    return media


def _json(schema: Json) -> Json:
    return {"schema": schema}


def _resp(description: str, content: Json | None = None, headers: Json | None = None) -> Json:
    out: Json = {"description": description}
    if content:
        out["content"] = content
    if headers:
        out["headers"] = headers
    return out


def _obj(properties: Json, required: Iterable[str] = (), **extra: Any) -> Json:
    """A JSON object; unknown keys are ignored by the server (as serde does), so allowed."""
    out: Json = {"type": "object", "properties": properties}
    req = list(required)
    if req:
        out["required"] = req
    out.update(extra)
    return out


def _q(name: str, schema: Json, description: str, required: bool = False) -> Json:
    """A query parameter."""
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema}


def _body(content: Json, description: str, required: bool = True) -> Json:
    return {"description": description, "required": required, "content": content}


def _json_body(schema: Json, description: str, required: bool = True) -> Json:
    return _body({JSON: _json(schema)}, description, required)


def _op(summary: str, tag: str, responses: Json, *, parameters: list[Json] | None = None,
        body: Json | None = None, description: str | None = None,
        operation_id: str | None = None) -> Json:
    op: Json = {"summary": summary, "tags": [tag], "responses": responses}
    if operation_id:
        op["operationId"] = operation_id
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    return op


#: a boolean as the server reads it from a query string or a JSON string value
#: (`http_io.parse_bool`: case-insensitive true/false, 1/0, yes/no; empty = default)
BOOL_QUERY = {"type": "string", "pattern": "^(?i:true|false|1|0|yes|no)?$",
              "examples": ["true", "false"]}
PRECISIONS_V3 = ["auto", "s", "second", "ms", "millisecond", "us", "u", "microsecond",
                 "ns", "n", "nanosecond"]
PRECISIONS_V1 = ["s", "ms", "u", "us", "n", "ns", "second", "millisecond", "microsecond",
                 "nanosecond"]
QUERY_FORMATS = ["json", "jsonl", "json_lines", "csv", "pretty", "parquet"]
EPOCHS = ["ns", "n", "u", "µ", "us", "ms", "s", "m", "h", "d", "w"]
ERROR_BEHAVIORS = ["log", "retry", "disable"]
FIELD_TYPES = ["utf8", "int64", "uint64", "float64", "bool"]
#: the names a write or `create database` accepts (catalog.validate_db_name): ASCII
#: letters, digits, `_`, `-`, starting with a letter or digit; `db/rp` at most once
DB_NAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]*(/[A-Za-z0-9_-]+)?$",
           "maxLength": 511}

#: the reference's 500 bodies that are deliberate (surface.md §1.0 table, §1.5, §2.11)
PLUGIN_500 = r"^(Plugin error: |Processing engine error: )"
TRIGGER_SPEC_500 = r"^failed to parse trigger from "
RUNNING_500 = r"^Cannot delete running plugin "


def components() -> Json:
    error = _obj({"error": {"type": "string"}}, ["error"])
    line_error = _obj({"error_message": {"type": "string"},
                       "line_number": {"type": "integer", "minimum": 1},
                       "original_line": {"type": "string"}},
                      ["error_message", "line_number", "original_line"])
    return {
        "securitySchemes": {
            "BearerAuth": {"type": "http", "scheme": "bearer",
                           "description": "`Authorization: Bearer <token>`"},
            "TokenAuth": {"type": "apiKey", "in": "header", "name": "Authorization",
                          "description": "`Authorization: Token <token>` (the v1/v2 clients' "
                                         "form) is accepted wherever BearerAuth is. It is not "
                                         "listed under `security`: an apiKey cannot say that "
                                         "the value starts with `Token `, and a bare value is "
                                         "a malformed header (400), not a wrong token."},
            "BasicAuth": {"type": "http", "scheme": "basic",
                          "description": "Basic auth: any user name without `:`, the token as "
                                         "the password"},
            "V1Password": {"type": "apiKey", "in": "query", "name": "p",
                           "description": "the v1 `p` query parameter (only `/query` and "
                                          "`/write`); it wins over the Authorization header"},
        },
        "schemas": {
            "Error": error,
            "V2Error": _obj({"code": {"type": "string",
                                      "enum": ["invalid", "unauthorized", "forbidden",
                                               "not found", "request too large",
                                               "internal error"]},
                             "message": {"type": "string"}}, ["code", "message"]),
            "LineError": line_error,
            "WriteErrorBody": {
                "description": "A refused write: the first bad line (`accept_partial=false`) or "
                               "every bad line of a partial write; a plain `{\"error\"}` for "
                               "request-level problems (invalid database name, soft-deleted or "
                               "`_internal` database, unknown precision, empty write).",
                "type": "object", "required": ["error"],
                "properties": {
                    "error": {"type": "string"},
                    "data": {"oneOf": [_ref("schemas", "LineError"),
                                       {"type": "array", "items": _ref("schemas", "LineError")}]},
                },
            },
            "Rows": {"type": "array", "items": {"type": "object"},
                     "description": "One object per row; null values are left out. (jsonl: "
                                    "the same objects, one a line, read as this array.)"},
            "Token": _obj({"id": {"type": "integer", "minimum": 0},
                           "name": {"type": "string"},
                           "token": {"type": "string", "pattern": "^apiv3_"},
                           "hash": {"type": "string"},
                           "created_at": {"type": "string"},
                           "expiry": {"type": ["string", "null"]}},
                          ["id", "name", "token", "hash", "created_at", "expiry"]),
            "V1Results": _obj({"results": {"type": "array", "items": _obj({
                "statement_id": {"type": "integer", "minimum": 0},
                "error": {"type": "string"},
                "partial": {"type": "boolean"},
                "series": {"type": "array", "items": _obj({
                    "name": {"type": "string"},
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "values": {"type": "array", "items": {"type": "array"}},
                    "partial": {"type": "boolean"},
                })},
            }, ["statement_id"])}}, ["results"]),
            "StringMap": {"type": "object",
                          "additionalProperties": {"type": ["string", "number", "boolean"]},
                          "description": "string values (numbers and booleans are turned into "
                                         "their text)"},
            "DryRunWal": _obj({"log_lines": {"type": "array", "items": {"type": "string"}},
                               "database_writes": {"type": "object", "additionalProperties": {
                                   "type": "array", "items": {"type": "string"}}},
                               "errors": {"type": "array", "items": {"type": "string"}}},
                              ["log_lines", "database_writes", "errors"]),
        },
        "responses": {
            "Unauthorized": _resp("No valid token (`Authorization` header, or `p` on the v1 "
                                  "routes).", {JSON: _json(_obj(
                                      {"error": {"const": "the request was not authenticated"}},
                                      ["error"]))}),
            "Forbidden": _resp("The token may not use this route or database.",
                               {JSON: _json(_ref("schemas", "Error"))}),
            "TooLarge": _resp("The body (raw or gzip-decoded) is larger than "
                              "`--max-http-request-size`.",
                              {TEXT: _text(r"^max request size \(\d+ bytes\) exceeded$")}),
            "NotJson": _resp("The body is not sent as `application/json` (or "
                             "`application/*+json`).", {TEXT: _text(
                                 "^unacceptable content-type, expected: application/json$")}),
            "NotFoundText": _resp("The database, table, trigger or token does not exist.",
                                  {TEXT: _text()}),
            "ConflictText": _resp("The resource already exists.", {TEXT: _text()}),
            "LimitJson": _resp("Over one of Core's limits (databases, tables, columns).",
                               {JSON: _json(_ref("schemas", "Error"))}),
            "AuthDisabled": _resp("The server runs `--without-auth`: token routes are off.",
                                  {TEXT: _text("^endpoint disabled, started without auth$")}),
        },
        "headers": {
            "ClusterUuid": {"description": "The catalog's UUID (every response once the "
                                           "server has started).",
                            "schema": {"type": "string"}},
            "AllowOrigin": {"description": "CORS (every response).",
                            "schema": {"type": "string", "const": "*"}},
        },
    }


def _bad_request(*, text: bool = True, json_error: bool = True,
                 description: str = "Missing or malformed parameters or body; a malformed "
                                    "`Authorization` header.") -> Json:
    """400: serde/usage errors are text; name validation and auth-header errors are JSON."""
    content: Json = {}
    if json_error:
        content[JSON] = _json(_ref("schemas", "Error"))
    if text:
        content[TEXT] = _text()
    return _resp(description, content)


def _std(*, json_body: bool = False, body: bool = False) -> Json:
    """Responses every authenticated route can give."""
    out: Json = {"400": _bad_request(), "401": _ref("responses", "Unauthorized"),
                 "403": _ref("responses", "Forbidden")}
    if body or json_body:
        out["413"] = _ref("responses", "TooLarge")
    if json_body:
        out["415"] = _ref("responses", "NotJson")
    return out


def _empty(status_description: str = "Done; empty body.") -> Json:
    return _resp(status_description)


def _content_encoding() -> Json:
    return {"name": "Content-Encoding", "in": "header", "required": False,
            "description": "`gzip` bodies are decoded (several members allowed); anything but "
                           "identity/gzip is refused with 400.",
            "schema": {"type": "string", "enum": ["identity", "gzip"]}}


def _query_ok() -> Json:
    """200 of a query or of `show databases`: the rows in the chosen format."""
    return _resp("The result, in the chosen format (`format`, else the Accept header).", {
        JSON: _json(_ref("schemas", "Rows")),
        "application/jsonl": _json(_ref("schemas", "Rows")),
        "text/csv": _text(),
        "text/plain": _text(),
        "application/vnd.apache.parquet": {"schema": {"type": "string",
                                                      "contentEncoding": "binary"}},
    })
