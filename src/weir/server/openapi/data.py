"""Writes (v3, v2, v1), queries (SQL, InfluxQL, v1) and the service routes (health, ping,
metrics, this document)."""

from __future__ import annotations

from .parts import (
    BOOL_QUERY,
    DB_NAME,
    EPOCHS,
    JSON,
    PRECISIONS_V1,
    PRECISIONS_V3,
    QUERY_FORMATS,
    TEXT,
    Json,
    _bad_request,
    _body,
    _content_encoding,
    _empty,
    _json,
    _json_body,
    _obj,
    _op,
    _q,
    _query_ok,
    _ref,
    _resp,
    _std,
    _text,
)

OPENAPI_PATH = "/openapi.json"


def write_paths() -> Json:
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


def query_paths() -> Json:
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
        _q("chunk_size", {"type": "string", "pattern": "^(\\+?[0-9]+)?$"},
           "Rows per chunk, an unsigned integer (default 10000 when absent or empty, as "
           "InfluxDB 1.x; 0 counts as 1)."),
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


def service_paths() -> Json:
    starting = _resp("The server is starting (loading the catalog, replaying the WAL, "
                     "starting the processing engine): every route answers 503 until then.",
                     {JSON: _json(_obj({"error": {"type": "string"}}, ["error"]))})
    health = _op("Health", "service", {
        "200": _resp("Serving.", {TEXT: _text("^OK$")}),
        "503": starting,
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
        "/ready": {"get": _op("Readiness", "service", {
            "200": _resp("Started, and the object store answers.", {JSON: _json(_obj(
                {"status": {"const": "ready"}, "started": {"type": "string"},
                 "up": {"type": "string"}}, ["status", "started", "up"]))}),
            "503": _resp("Still starting (`starting`), or the object store does not answer "
                         "(`unavailable`); `reason` says why.", {JSON: _json(_obj(
                             {"status": {"enum": ["starting", "unavailable"]},
                              "reason": {"type": "string"}}, ["status", "reason"]))}),
            **_std()}, operation_id="ready")},
        "/metrics": {"get": _op("Prometheus metrics", "service", {
            "200": _resp("Metrics in the Prometheus text format, ending with `# EOF`.",
                         {TEXT: _text(r"# EOF\n$")}),
            **_std()}, operation_id="metrics")},
        OPENAPI_PATH: {"get": _op("This document", "service", {
            "200": _resp("The OpenAPI document.", {JSON: _json({"type": "object",
                                                               "required": ["openapi"]})}),
            **_std()}, operation_id="openapi")},
    }
