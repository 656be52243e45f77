"""Databases and tables (`/api/v3/configure/database`, `/table`) and tokens
(`/api/v3/configure/token...`)."""

from __future__ import annotations

from .parts import (
    BOOL_QUERY,
    DB_NAME,
    FIELD_TYPES,
    QUERY_FORMATS,
    TEXT,
    Json,
    _bad_request,
    _empty,
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


def configure_paths() -> Json:
    retention = {"type": ["string", "null"],
                 "description": "humantime greater than zero, e.g. `30d`; absent, null or "
                                "`none`: keep data forever"}
    create_db_body = _obj({"db": DB_NAME, "retention_period": retention}, ["db"])
    db_body = _obj({"db": {"type": "string", "minLength": 1}, "retention_period": retention},
                   ["db"])
    db_q = _q("db", {"type": "string", "minLength": 1}, "The database.", required=True)
    hard = _q("hard_delete_at", {"type": "string"}, "When the soft-deleted data goes for "
              "good: `never`, `now`, `default` (now + `--hard-delete-default-duration`; also "
              "when absent) or an RFC 3339 time (a past one means now). Shown as "
              "`hard_deletion_time` in `system.databases` / `system.tables`.")
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
                                     "humantime greater than zero, e.g. `7d`.",
                                     required=True)]),
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


def token_paths() -> Json:
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
        _obj({"resource_type": {"type": "string", "enum": ["db"]},
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
