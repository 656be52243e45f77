"""The OpenAPI 3.1 document of Weir's HTTP API, served at `GET /openapi.json`.

It describes what the server really answers (surface.md §1 and the handlers in
weir.server): every routed (method, path), its query parameters and bodies, and each
status code with the body shape and content type the handler sends, including the
reference's quirks (text bodies for most errors, the v2 write API's `{"code","message"}`,
the 500s InfluxDB 3 answers on purpose). The document is built from small helpers, one
function per route group, and cached per server configuration: with `--without-auth`
nothing requires a token; without `--plugin-dir` the processing-engine routes are absent.

`tests/test_openapi.py` checks that the document and the routes cannot drift apart;
`tests/test_openapi_fuzz.py` fuzzes a live server against it with schemathesis.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable
from typing import Any

import weir

Json = dict[str, Any]

OPENAPI_PATH = "/openapi.json"
ENGINE_REQUEST_PATH = "/api/v3/engine/{path}"

TEXT = "text/plain"
JSON = "application/json"

# ---- reusable pieces ---------------------------------------------------------------------


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


def _components() -> Json:
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
            "ClusterUuid": {"description": "The catalog's UUID (every response).",
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


# ---- route groups ------------------------------------------------------------------------


def _write_paths() -> Json:
    lp_body = _body({TEXT: {"schema": {"type": "string"},
                            "example": "cpu,host=a usage=0.5 1700000000000000000"}},
                    "Line protocol, UTF-8 (gzip with `Content-Encoding: gzip`).")
    db = _q("db", DB_NAME, "The database (created on first write).", required=True)
    write_errors: Json = {
        **_std(body=True),
        "400": _resp("A refused write (JSON, see WriteErrorBody), or a request problem: a "
                     "missing `db`, a bad boolean, a body that is not UTF-8 or not gzip, an "
                     "unknown Content-Encoding, a malformed Authorization header.",
                     {JSON: _json(_ref("schemas", "WriteErrorBody")), TEXT: _text()}),
        "422": _resp("Over Core's database/table/column limits.",
                     {JSON: _json(_ref("schemas", "WriteErrorBody"))}),
    }
    v2_errors: Json = {
        "204": _empty("Written."),
        "400": _resp("Every v2 error has the `{code, message}` shape (a malformed "
                     "Authorization header, checked before routing, is `{\"error\"}`).",
                     {JSON: _json({"oneOf": [_ref("schemas", "V2Error"),
                                             _ref("schemas", "Error")]})}),
        "401": _ref("responses", "Unauthorized"),
        "403": _resp("Forbidden.", {JSON: _json(_ref("schemas", "V2Error"))}),
        "413": _resp("Too large.", {JSON: _json(_ref("schemas", "V2Error"))}),
        "422": _resp("Over Core's limits.", {JSON: _json(_ref("schemas", "V2Error"))}),
    }
    return {
        "/api/v3/write_lp": {"post": _op(
            "Write line protocol (v3)", "write", {"204": _empty("Written."), **write_errors},
            operation_id="write_lp",
            description="Good lines are written and bad ones listed (400, or 422 for limits) "
                        "unless `accept_partial=false`, which refuses the whole batch at the "
                        "first bad line.",
            parameters=[db,
                        _q("precision", {"type": "string", "enum": PRECISIONS_V3},
                           "Timestamp unit; `auto` (default) guesses from the magnitude."),
                        _q("accept_partial", BOOL_QUERY, "Write the good lines of a batch "
                           "(default true)."),
                        _q("no_sync", BOOL_QUERY, "Answer before the WAL is durable "
                           "(default false)."),
                        _content_encoding()],
            body=lp_body)},
        "/api/v2/write": {"post": _op(
            "Write line protocol (v2)", "write", v2_errors, operation_id="write_v2",
            description="The whole batch is refused if a line is bad.",
            parameters=[_q("bucket", DB_NAME, "The database.", required=True),
                        _q("org", {"type": "string"}, "Ignored."),
                        _q("precision", {"type": "string", "enum": PRECISIONS_V1},
                           "Timestamp unit (default ns)."),
                        _content_encoding()],
            body=lp_body)},
        "/write": {"post": _op(
            "Write line protocol (v1)", "write",
            {"204": _empty("Written."), **write_errors}, operation_id="write_v1",
            description="The whole batch is refused if a line is bad. Parameter errors are "
                        "`{\"error\"}` JSON.",
            parameters=[db,
                        _q("rp", {"type": "string"}, "Retention policy; other than "
                           "autogen/default it makes the database `db/rp`."),
                        _q("precision", {"type": "string", "enum": PRECISIONS_V1},
                           "Timestamp unit (default ns)."),
                        _q("u", {"type": "string"}, "User name (ignored)."),
                        _content_encoding()],
            body=lp_body)},
    }


def _query_ok() -> Json:
    return _resp("The result, in the chosen format (`format`, else the Accept header).", {
        JSON: _json(_ref("schemas", "Rows")),
        "application/jsonl": _json(_ref("schemas", "Rows")),
        "text/csv": _text(),
        "text/plain": _text(),
        "application/vnd.apache.parquet": {"schema": {"type": "string",
                                                      "contentEncoding": "binary"}},
    })


def _query_errors(sql: bool) -> Json:
    out: Json = {
        **_std(body=True),
        "400": _resp("A missing `db`/`q`, bad JSON, an unknown format or Accept value, a SQL "
                     "or InfluxQL error (text), a malformed Authorization header (JSON).",
                     {TEXT: _text(), JSON: _json(_ref("schemas", "Error"))}),
        "404": _resp("Unknown database.", {JSON: _json(_obj(
            {"error": {"type": "string", "pattern": "^query error: database not found: "}},
            ["error"]))}),
        "408": _resp("The query ran past `--query-timeout`.", {TEXT: _text()}),
    }
    if sql:
        out["405"] = _resp("A SQL feature DataFusion does not implement.", {TEXT: _text()})
        out["500"] = _resp("DataFusion failed while executing the plan (the reference's "
                           "answer for execution errors).",
                           {TEXT: _text(r"^query error: error while executing plan: ")})
    return out


def _query_params(db_required: bool) -> list[Json]:
    return [
        _q("db", {"type": "string"}, "The database." if db_required else
           "The database (or name it in the query: `FROM db.rp.m`).", required=db_required),
        _q("q", {"type": "string"}, "The query.", required=True),
        _q("format", {"type": "string", "enum": QUERY_FORMATS}, "Output format."),
        _q("params", {"type": "string", "contentMediaType": JSON},
           "Placeholder values (`$name`) as one JSON-encoded object."),
    ]


def _query_body(db_required: bool) -> Json:
    props: Json = {
        "db": {"type": "string"},
        "q": {"type": "string"},
        "format": {"type": ["string", "null"], "enum": [*QUERY_FORMATS, None]},
        "params": {"type": ["object", "null"],
                   "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
    }
    return _json_body(_obj(props, ["db", "q"] if db_required else ["q"]),
                      "The query as JSON (the content type is not checked).")


def _query_paths() -> Json:
    out: Json = {}
    for path, name, sql in (("/api/v3/query_sql", "SQL", True),
                            ("/api/v3/query_influxql", "InfluxQL", False)):
        ok = {"200": _query_ok(), **_query_errors(sql)}
        key = "query_sql" if sql else "query_influxql"
        out[path] = {
            "get": _op(f"Query with {name} (query string)", "query", ok,
                       operation_id=f"{key}_get", parameters=_query_params(sql)),
            "post": _op(f"Query with {name} (JSON body)", "query", ok,
                        operation_id=f"{key}_post", body=_query_body(sql)),
        }
    v1_params = [
        _q("q", {"type": "string"}, "InfluxQL; several statements separated by `;`."),
        _q("db", {"type": "string"}, "Default database."),
        _q("rp", {"type": "string"}, "Default retention policy."),
        _q("epoch", {"type": "string", "enum": [*EPOCHS, ""]}, "Integer timestamps in this "
           "unit (RFC3339 when absent or empty, as InfluxDB 1.x)."),
        _q("pretty", {"type": "string", "pattern": "^(?i:true|false|1|0|t|f)?$"},
           "Indented JSON."),
        _q("chunked", {"type": "string", "pattern": "^(?i:true|false|1|0|t|f)?$"},
           "Stream one JSON document a line per chunk of rows."),
        _q("chunk_size", {"type": "integer", "minimum": 0},
           "Rows per chunk (default 10000; 0 counts as 1)."),
        _q("params", {"type": "string", "contentMediaType": JSON},
           "Placeholder values as one JSON-encoded object."),
        _q("u", {"type": "string"}, "User name (ignored)."),
    ]
    v1_ok = {
        "200": _resp("Statement results; a statement's error is inside its result, with 200.",
                     {JSON: _json(_ref("schemas", "V1Results")),
                      "application/csv": _text()}),
        **_std(body=True),
        "400": _resp("No query, a bad epoch, chunk_size, boolean or params.",
                     {JSON: _json(_ref("schemas", "Error"))}),
    }
    v1_form = _obj({"q": {"type": "string"}, "db": {"type": "string"},
                    "rp": {"type": "string"},
                    "epoch": {"type": "string", "enum": [*EPOCHS, ""]}},
                   description="`q` is needed here unless the URL has it.")
    out["/query"] = {
        "get": _op("Query with InfluxQL (v1)", "query", v1_ok, operation_id="query_v1_get",
                   parameters=[{**v1_params[0], "required": True}, *v1_params[1:]]),
        "post": _op("Query with InfluxQL (v1, form or body)", "query", v1_ok,
                    operation_id="query_v1_post", parameters=v1_params,
                    description="The body's parameters override the URL's.",
                    body=_body({"application/x-www-form-urlencoded": _json(v1_form),
                                "multipart/form-data": _json(v1_form),
                                "application/vnd.influxql": _text(),
                                TEXT: _text()},
                               "Parameters as a form, or the query text itself.",
                               required=False)),
    }
    return out


def _service_paths() -> Json:
    health = _op("Health", "service", {
        "200": _resp("Serving.", {TEXT: _text("^OK$")}),
        "400": _bad_request(text=False, description="A malformed Authorization header."),
        "401": _ref("responses", "Unauthorized"), "403": _ref("responses", "Forbidden")})
    ping_headers = {name: {"schema": {"type": "string"}, "required": True}
                    for name in ("Request-Id", "X-Request-Id", "X-Influxdb-Build",
                                 "X-Influxdb-Version")}
    ping_body = _obj({"product_name": {"const": "InfluxDB 3 Core"},
                      "version": {"type": "string"}, "revision": {"type": "string"},
                      "process_id": {"type": "string", "format": "uuid"}},
                     ["product_name", "version", "revision", "process_id"])
    ping_responses = {
        "200": _resp("Version information.", {JSON: _json(ping_body)}, ping_headers),
        "400": _bad_request(text=False, description="A malformed Authorization header."),
        "401": _ref("responses", "Unauthorized"), "403": _ref("responses", "Forbidden")}
    return {
        "/health": {"get": {**health, "operationId": "health"}},
        "/api/v1/health": {"get": {**health, "operationId": "health_v1"}},
        "/ping": {"get": _op("Ping", "service", ping_responses, operation_id="ping_get"),
                  "post": _op("Ping", "service", ping_responses, operation_id="ping_post")},
        "/metrics": {"get": _op("Prometheus metrics", "service", {
            "200": _resp("Metrics in the Prometheus text format, ending with `# EOF`.",
                         {TEXT: _text(r"# EOF\n$")}),
            **_std()}, operation_id="metrics")},
        OPENAPI_PATH: {"get": _op("This document", "service", {
            "200": _resp("The OpenAPI document.", {JSON: _json({"type": "object",
                                                               "required": ["openapi"]})}),
            **_std()}, operation_id="openapi")},
    }


def _configure_paths() -> Json:
    retention = {"type": ["string", "null"],
                 "description": "humantime, e.g. `30d`; absent or null: none"}
    create_db_body = _obj({"db": DB_NAME, "retention_period": retention}, ["db"])
    db_body = _obj({"db": {"type": "string", "minLength": 1}, "retention_period": retention},
                   ["db"])
    db_q = _q("db", {"type": "string", "minLength": 1}, "The database.", required=True)
    hard = _q("hard_delete_at", {"type": "string"}, "`never`, `now`, `default` or an RFC3339 "
              "time (accepted; Weir deletes softly).")
    not_found = _ref("responses", "NotFoundText")
    fields = {"type": "array", "items": _obj({"name": {"type": "string", "minLength": 1},
                                              "type": {"type": "string",
                                                       "enum": FIELD_TYPES}},
                                             ["name", "type"])}
    table_body = _obj({"db": {"type": "string", "minLength": 1},
                       "table": {"type": "string", "minLength": 1},
                       "tags": {"type": ["array", "null"],
                                "items": {"type": "string", "minLength": 1}},
                       "fields": {"type": ["array", "null"], "items": fields["items"]}},
                      ["db", "table"])
    return {
        "/api/v3/configure/database": {
            "get": _op("List databases", "configure", {
                "200": _query_ok(), **_std()}, operation_id="show_databases",
                parameters=[_q("format", {"type": "string", "enum": QUERY_FORMATS},
                               "Output format.", required=True),
                            _q("show_deleted", BOOL_QUERY, "Also list soft-deleted ones.")]),
            "post": _op("Create a database", "configure", {
                "200": _empty(), **_std(json_body=True), "409": _ref("responses", "ConflictText"),
                "422": _ref("responses", "LimitJson")}, operation_id="create_database",
                body=_json_body(create_db_body, "The database.")),
            "put": _op("Update a database's retention period", "configure", {
                "200": _empty(), **_std(json_body=True), "404": not_found},
                operation_id="update_database", body=_json_body(db_body, "The database.")),
            "delete": _op("Delete a database (soft)", "configure", {
                "200": _empty(), **_std(), "404": not_found}, operation_id="delete_database",
                parameters=[db_q, hard]),
        },
        "/api/v3/configure/database/retention_period": {
            "post": _op("Set a retention period", "configure", {
                "204": _empty(), **_std(), "404": not_found}, operation_id="set_retention",
                parameters=[db_q, _q("duration", {"type": "string", "minLength": 1},
                                     "humantime, e.g. `7d`.", required=True)]),
            "delete": _op("Clear the retention period", "configure", {
                "204": _empty(), **_std(), "404": not_found}, operation_id="clear_retention",
                parameters=[db_q]),
        },
        "/api/v3/configure/table": {
            "post": _op("Create a table", "configure", {
                "200": _empty(), **_std(json_body=True), "404": not_found,
                "409": _ref("responses", "ConflictText"), "422": _ref("responses", "LimitJson")},
                operation_id="create_table", body=_json_body(table_body, "The table.")),
            "delete": _op("Delete a table (soft)", "configure", {
                "200": _empty(), **_std(), "404": not_found}, operation_id="delete_table",
                parameters=[db_q, _q("table", {"type": "string", "minLength": 1}, "The table.",
                                     required=True), hard]),
        },
    }


def _token_paths() -> Json:
    created = _resp("The new token; its text is shown only here. (The reference sends it "
                    "with the header `Content-Type: json`, which is not a media type, so the "
                    "body's shape, `#/components/schemas/Token`, is given here rather than "
                    "under `content`.)")
    common = {"401": _ref("responses", "Unauthorized"), "403": _ref("responses", "Forbidden"),
              "405": _ref("responses", "AuthDisabled")}
    expiry = {"expiry_secs": {"type": ["integer", "null"], "minimum": 0},
              "expiry": {"type": ["string", "null"], "description": "humantime, e.g. `30d`"}}
    permission = {"oneOf": [
        {"type": "string", "pattern": "^db:[^:]+:[^:]+$",
         "description": "`db:<db,...|*>:<read,write>`"},
        _obj({"resource_type": {"type": "string"},
              "resource_identifier": {"type": "array", "items": {"type": "string"}},
              "actions": {"type": "array", "items": {"type": "string",
                                                     "enum": ["read", "write"]}}},
             ["resource_identifier", "actions"]),
    ]}
    return {
        "/api/v3/configure/token/admin": {"post": _op(
            "Create the operator token", "tokens", {
                "201": created, "400": _bad_request(), "409": _ref("responses", "ConflictText"),
                "405": _ref("responses", "AuthDisabled")},
            operation_id="create_admin_token",
            description="Needs no token while there is no operator token; 409 after.")},
        "/api/v3/configure/token/admin/regenerate": {"post": _op(
            "Replace the operator token", "tokens", {"201": created, "400": _bad_request(),
                                                     **common},
            operation_id="regenerate_admin_token",
            description="The old operator token stops working at once.")},
        "/api/v3/configure/token/named_admin": {"post": _op(
            "Create another admin token", "tokens", {
                "201": created, "400": _bad_request(), "409": _ref("responses", "ConflictText"),
                "413": _ref("responses", "TooLarge"), **common},
            operation_id="create_named_admin_token",
            body=_json_body(_obj({"token_name": {"type": "string", "minLength": 1}, **expiry},
                                 ["token_name"]), "The token's name and expiry.")),
        },
        "/api/v3/configure/token": {
            "post": _op("Create a database-scoped token", "tokens", {
                "201": created, "400": _bad_request(), "409": _ref("responses", "ConflictText"),
                "413": _ref("responses", "TooLarge"), **common},
                operation_id="create_scoped_token",
                description="As InfluxDB 3 Enterprise offers; at least one permission.",
                body=_json_body(_obj({"token_name": {"type": "string", "minLength": 1},
                                      "permissions": {"type": "array", "minItems": 1,
                                                      "items": permission}, **expiry},
                                     ["token_name", "permissions"]),
                                "The token's name, permissions and expiry.")),
            "delete": _op("Delete a token", "tokens", {
                "200": _empty(), "400": _bad_request(),
                "404": _ref("responses", "NotFoundText"), **common,
                "405": _resp("The operator token cannot be deleted, or the server runs "
                             "`--without-auth`.", {TEXT: _text(
                                 "^(cannot delete operator token|endpoint disabled, started "
                                 "without auth)$")})},
                operation_id="delete_token",
                parameters=[_q("token_name", {"type": "string", "minLength": 1},
                               "The token's name.", required=True)]),
        },
    }


_S = {"type": "string"}
_NOT_FOUND = _ref("responses", "NotFoundText")
#: 500 `Plugin error: ...`: the plugin file cannot be found, read or trusted
_PLUGIN_500 = _resp("The plugin file cannot be found, read or trusted (`Plugin error: ...`).",
                    {TEXT: _text(PLUGIN_500)})


def _trigger_paths() -> Json:
    s = _S
    trigger_body = _obj({
        "db": s, "trigger_name": s, "plugin_filename": {
            "type": "string", "description": "relative to `--plugin-dir`, or `gh:<path>`"},
        "trigger_specification": {
            "type": "string",
            "description": "`table:<t>`, `all_tables`, `every:<duration>`, `cron:<expr>`, "
                           "`request:<path>`, `parquet:all_tables`, `parquet:<t>`"},
        "trigger_settings": _obj({"run_async": {"type": "boolean"},
                                  "error_behavior": {"type": "string",
                                                     "enum": ERROR_BEHAVIORS}}),
        "trigger_arguments": {"oneOf": [_ref("schemas", "StringMap"), {"type": "null"}]},
        "disabled": {"type": "boolean", "default": False},
        "public": {"type": "boolean", "default": False,
                   "description": "Weir's addition: a `request:` trigger that answers without a "
                                  "token. Refused (400) for other specifications."},
    }, ["db", "trigger_name", "plugin_filename", "trigger_specification"],
        description="The reference requires `trigger_settings` and `disabled`; Weir defaults "
                    "them (`run_async` false, `error_behavior` log, `disabled` false).")
    trigger_500 = _resp(
        "As the reference answers: the plugin file cannot be read (`Plugin error: ...`), or the "
        "trigger specification does not parse (`failed to parse trigger from <spec>...`).",
        {TEXT: _text(f"{PLUGIN_500}|{TRIGGER_SPEC_500}")})
    pair = [_q("db", {"type": "string", "minLength": 1}, "The database.", required=True),
            _q("trigger_name", {"type": "string", "minLength": 1}, "The trigger.",
               required=True)]
    not_found, plugin_500 = _NOT_FOUND, _PLUGIN_500
    return {
        "/api/v3/configure/processing_engine_trigger": {
            "post": _op("Create a trigger", "processing engine", {
                "200": _empty("Created (and started unless disabled)."),
                **_std(json_body=True), "404": not_found,
                "409": _ref("responses", "ConflictText"), "500": trigger_500},
                operation_id="create_trigger", body=_json_body(trigger_body, "The trigger."),
                description="Checks in the reference's order: restrictions, the plugin file, "
                            "the database, the name, the specification."),
            "delete": _op("Delete a trigger", "processing engine", {
                "200": _empty(), **_std(json_body=True), "404": not_found,
                "500": _resp("The trigger is enabled and `force` is false (the reference's "
                             "status for this catalog error).", {TEXT: _text(RUNNING_500)})},
                operation_id="delete_trigger",
                description="Parameters come from the query string when there is one, else "
                            "from the JSON body.",
                parameters=[_q("db", s, "The database."), _q("trigger_name", s, "The trigger."),
                            _q("force", BOOL_QUERY, "Delete an enabled trigger too.")],
                body=_json_body(_obj({"db": s, "trigger_name": s,
                                      "force": {"type": "boolean"}}, ["db", "trigger_name"]),
                                "The trigger (when the URL has no query string).",
                                required=False)),
        },
        "/api/v3/configure/processing_engine_trigger/enable": {"post": _op(
            "Enable a trigger", "processing engine", {
                "200": _empty("Enabled (also if it already was)."), **_std(),
                "404": not_found, "500": plugin_500},
            operation_id="enable_trigger", parameters=pair)},
        "/api/v3/configure/processing_engine_trigger/disable": {"post": _op(
            "Disable a trigger", "processing engine", {
                "200": _empty("Disabled (also if it already was)."), **_std(),
                "404": not_found},
            operation_id="disable_trigger", parameters=pair)},
    }


def _plugin_environment_paths() -> Json:
    s = _S
    install_403 = _resp("Package installation is disabled (`--package-manager disabled`).",
                        {TEXT: _text("^Package installation has been disabled")})
    install_500 = _resp("The installer could not run.", {TEXT: _text(PLUGIN_500)})
    return {
        "/api/v3/configure/plugin_environment/install_packages": {"post": _op(
            "Install packages into the plugin venv", "processing engine", {
                "200": _empty("pip ran (its exit status is not reported)."),
                **_std(json_body=True), "403": install_403, "500": install_500},
            operation_id="install_packages",
            body=_json_body(_obj({"packages": {"type": "array", "items": s}}, ["packages"]),
                            "The packages.")),
        },
        "/api/v3/configure/plugin_environment/install_requirements": {"post": _op(
            "Install a requirements file into the plugin venv", "processing engine", {
                "200": _empty("pip ran (its exit status is not reported)."),
                **_std(json_body=True), "403": install_403, "500": install_500},
            operation_id="install_requirements",
            body=_json_body(_obj({"requirements_location": s}, ["requirements_location"]),
                            "A requirements file on the server.")),
        },
    }


def _plugin_file_paths() -> Json:
    """Plugin test runs and plugin uploads."""
    s = _S
    not_found, plugin_500 = _NOT_FOUND, _PLUGIN_500
    dry_common = {"filename": s, "database": s,
                  "input_arguments": {"oneOf": [_ref("schemas", "StringMap"),
                                                {"type": "null"}]},
                  "cache_name": {"type": ["string", "null"]}}
    dry_schedule_ok = {"allOf": [_ref("schemas", "DryRunWal"), _obj(
        {"trigger_time": {"type": ["string", "null"]}}, ["trigger_time"])]}
    file_body = _obj({"plugin_name": s, "content": s}, ["plugin_name", "content"])
    return {
        "/api/v3/plugin_test/wal": {"post": _op(
            "Dry-run a WAL plugin", "processing engine", {
                "200": _resp("What the plugin logged and would have written; its errors.",
                             {JSON: _json(_ref("schemas", "DryRunWal"))}),
                **_std(json_body=True), "500": plugin_500},
            operation_id="test_wal_plugin",
            body=_json_body(_obj({**dry_common, "input_lp": s},
                                 ["filename", "database", "input_lp"]), "The test run.")),
        },
        "/api/v3/plugin_test/schedule": {"post": _op(
            "Dry-run a schedule plugin", "processing engine", {
                "200": _resp("What the plugin logged and would have written; its errors.",
                             {JSON: _json(dry_schedule_ok)}),
                **_std(json_body=True), "500": plugin_500},
            operation_id="test_schedule_plugin",
            body=_json_body(_obj({**dry_common, "schedule": {"type": ["string", "null"]}},
                                 ["filename", "database"]), "The test run.")),
        },
        "/api/v3/plugins/files": {
            "post": _op("Upload a plugin file", "processing engine", {
                "200": _empty(), **_std(json_body=True), "500": plugin_500},
                operation_id="upload_plugin_file",
                description="`plugin_name` is a path relative to the plugin directory.",
                body=_json_body(file_body, "The file.")),
            "put": _op("Replace a trigger's plugin file", "processing engine", {
                "200": _empty(), **_std(json_body=True), "404": not_found, "500": plugin_500},
                operation_id="replace_plugin_file",
                description="`plugin_name` is a trigger's name.",
                body=_json_body(file_body, "The file.")),
        },
        "/api/v3/plugins/directory": {"put": _op(
            "Replace a trigger's plugin directory", "processing engine", {
                "200": _empty(), **_std(json_body=True), "404": not_found, "500": plugin_500},
            operation_id="replace_plugin_directory",
            body=_json_body(_obj({"plugin_name": s, "files": {"type": "array", "items": _obj(
                {"relative_path": s, "content": s}, ["relative_path", "content"])}},
                ["plugin_name", "files"]), "The trigger's name and its new files.")),
        },
    }


def _request_trigger_paths() -> Json:
    return {
        ENGINE_REQUEST_PATH: {
            method: _op(f"Call a request trigger ({method.upper()})", "processing engine", {
                "200": _resp("Whatever the plugin returns.", {"*/*": {}}),
                **{k: v for k, v in _std(body=True).items() if k != "400"},
                "400": _bad_request(text=False, description="A malformed Authorization "
                                                             "header."),
                "404": _resp("No running request trigger has this path (body "
                             "`{error: \"not found\"}`, not JSON, and no Content-Type, as the "
                             "reference answers)."),
                "500": _resp("The plugin raised, returned something unusable, or its database "
                             "is gone.", {JSON: _json(_ref("schemas", "Error"))}),
                "default": _resp("Any other status and body the plugin returns. (A plugin "
                                 "that answers one of the statuses above itself is not "
                                 "described here.)"),
            }, operation_id=f"request_trigger_{method}",
                description="`path` is everything after `/api/v3/engine/` (it may contain "
                            "`/`); the plugin gets the query parameters, the headers (without "
                            "Authorization) and the body.",
                parameters=[{"name": "path", "in": "path", "required": True,
                             "schema": {"type": "string", "minLength": 1},
                             "description": "The trigger's `request:<path>`."}],
                body=_body({"*/*": {"schema": {}}}, "Passed to the plugin as bytes.",
                           required=False) if method == "post" else None)
            for method in ("get", "post")
        },
    }


def _engine_paths() -> Json:
    """The processing engine's routes (only with `--plugin-dir`)."""
    return {**_trigger_paths(), **_plugin_environment_paths(), **_plugin_file_paths(),
            **_request_trigger_paths()}


# ---- the document ------------------------------------------------------------------------


def _add_common_headers(paths: Json) -> None:
    for item in paths.values():
        for op in item.values():
            for resp in op["responses"].values():
                if "$ref" in resp:
                    continue
                headers = resp.setdefault("headers", {})
                headers.setdefault("cluster-uuid", _ref("headers", "ClusterUuid"))
                headers.setdefault("Access-Control-Allow-Origin", _ref("headers", "AllowOrigin"))


def _secure(paths: Json, open_paths: frozenset[str]) -> None:
    v1 = [{"BearerAuth": []}, {"BasicAuth": []}, {"V1Password": []}]
    for path, item in paths.items():
        for method, op in item.items():
            if path in open_paths or (path == "/api/v3/configure/token/admin"
                                      and method == "post"):
                op["security"] = []
            elif path in ("/query", "/write"):
                op["security"] = v1


def _without_auth(paths: Json) -> None:
    for item in paths.values():
        for op in item.values():
            op.pop("security", None)
            for code, name in (("401", "Unauthorized"), ("403", "Forbidden")):
                if op["responses"].get(code) == _ref("responses", name):
                    del op["responses"][code]


@functools.cache
def build_document(*, auth: bool = True, engine: bool = True,
                   open_paths: frozenset[str] = frozenset({"/health", "/api/v1/health",
                                                           "/ping"})) -> Json:
    """The document for a server with/without auth and the processing engine; cached,
    so treat it as read-only (`document_bytes` gives the served bytes)."""
    paths: Json = {**_write_paths(), **_query_paths(), **_service_paths(),
                   **_configure_paths(), **_token_paths()}
    if engine:
        paths.update(_engine_paths())
    _add_common_headers(paths)
    doc: Json = {
        "openapi": "3.1.0",
        "info": {
            "title": "Weir HTTP API",
            "version": weir.__version__,
            "description": "InfluxDB 3 Core's HTTP API as Weir serves it. Routing is by exact "
                           "(method, path): anything else, a known path with another method "
                           "included, is 404 `Not found`; OPTIONS on any path is the CORS "
                           "preflight (204). Every response carries "
                           "`Access-Control-Allow-Origin: *` and `cluster-uuid`.",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in ("write", "query", "configure", "tokens",
                                       "processing engine", "service")],
        "paths": paths,
        "components": _components(),
    }
    if auth:
        doc["security"] = [{"BearerAuth": []}, {"BasicAuth": []}]
        _secure(paths, open_paths)
    else:
        _without_auth(paths)
    return doc


@functools.cache
def document_bytes(*, auth: bool = True, engine: bool = True,
                   open_paths: frozenset[str] = frozenset({"/health", "/api/v1/health",
                                                           "/ping"})) -> bytes:
    """The served JSON of `build_document(...)`, encoded once."""
    return json.dumps(build_document(auth=auth, engine=engine, open_paths=open_paths),
                      ensure_ascii=False, separators=(",", ":")).encode()


def documented_operations(doc: Json) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation in `doc`."""
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in item
            if m in methods}


def copy_document(**kw: Any) -> Json:
    """A private, mutable copy of `build_document(**kw)`."""
    return copy.deepcopy(build_document(**kw))
