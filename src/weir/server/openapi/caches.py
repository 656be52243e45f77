"""Last-value and distinct-value caches (`/api/v3/configure/last_cache`,
`/api/v3/configure/distinct_cache`; weir.server.routes_caches)."""

from __future__ import annotations

from .parts import JSON, Json, _body, _empty, _json, _json_body, _obj, _op, _q, _ref, _resp, _std

_NAME = {"type": "string", "minLength": 1}
_NAMES = {"type": ["array", "null"], "items": {"type": "string"}}
_UINT = {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}


def cache_paths() -> Json:
    batch = _obj({
        "catalog_batch": _obj({"Database": _obj({
            "time_ns": {"type": "integer"}, "database_id": {"type": "integer"},
            "database_name": {"type": "string"},
            "ops": {"type": "array", "items": {"type": "object"}}},
            ["time_ns", "database_id", "database_name", "ops"])}, ["Database"]),
        "sequence_number": {"type": "integer"}}, ["catalog_batch", "sequence_number"])
    created = _resp("The cache was created, and filled from stored data: the catalog batch "
                    "that records it (one `CreateLastCache` / `CreateDistinctCache` op, "
                    "columns as `{\"tag\": n}`, `{\"field\": [0, n]}` or `\"timestamp\"`).",
                    {JSON: _json(batch)})
    errors = {**_std(json_body=True), "404": _ref("responses", "NotFoundText"),
              "409": _ref("responses", "ConflictText")}
    last_body = _obj({
        "db": _NAME, "table": _NAME, "name": {"type": ["string", "null"]},
        "key_columns": {**_NAMES, "description": "Tags, string, integer or boolean fields; "
                        "absent or null: the table's tags."},
        "value_columns": {**_NAMES, "description": "Absent or null: every non-key column, "
                          "new ones too; `time` is always kept."},
        "count": {**_UINT, "minimum": 1, "default": 1},
        "ttl": {**_UINT, "default": 14400, "description": "seconds"},
    }, ["db", "table"])
    distinct_body = _obj({
        "db": _NAME, "table": _NAME, "name": {"type": ["string", "null"]},
        "columns": {"type": "array", "items": {"type": "string"},
                    "description": "Tags or string fields, top level first."},
        "max_cardinality": {**_UINT, "minimum": 1, "default": 100000},
        "max_age": {**_UINT, "default": 86400, "description": "seconds"},
    }, ["db", "table", "columns"])
    delete_params = [_q(n, _NAME, d) for n, d in (
        ("db", "The database."), ("table", "The table."), ("name", "The cache."))]
    delete_body = _body({JSON: _json(_obj({"db": _NAME, "table": _NAME, "name": _NAME},
                                          ["db", "table", "name"]))},
                        "`db`, `table`, `name`, read when there is no query string.",
                        required=False)

    def delete(kind: str) -> Json:
        return _op(f"Delete a {kind}-value cache", "configure", {
            "200": _empty(), **_std(json_body=True), "404": _ref("responses", "NotFoundText")},
            operation_id=f"delete_{kind}_cache", parameters=delete_params, body=delete_body,
            description="The parameters come from the query string when there is one, "
                        "else from the JSON body.")

    return {
        "/api/v3/configure/last_cache": {
            "post": _op("Create a last-value cache", "configure", {"201": created, **errors},
                        operation_id="create_last_cache",
                        body=_json_body(last_body, "The cache."),
                        description="Default name: `<table>_<key columns>_last_cache`."),
            "delete": delete("last"),
        },
        "/api/v3/configure/distinct_cache": {
            "post": _op("Create a distinct-value cache", "configure",
                        {"201": created, **errors}, operation_id="create_distinct_cache",
                        body=_json_body(distinct_body, "The cache."),
                        description="Default name: `<table>_<columns>_distinct_cache`."),
            "delete": delete("distinct"),
        },
    }
