"""The processing engine's routes (only with `--plugin-dir`): triggers, the plugin
environment, plugin test runs and uploads, request triggers."""

from __future__ import annotations

from .parts import (
    BOOL_QUERY,
    ERROR_BEHAVIORS,
    JSON,
    PLUGIN_500,
    RUNNING_500,
    TEXT,
    TRIGGER_SPEC_500,
    Json,
    _bad_request,
    _body,
    _empty,
    _json,
    _json_body,
    _obj,
    _op,
    _q,
    _ref,
    _resp,
    _std,
    _text,
)

ENGINE_REQUEST_PATH = "/api/v3/engine/{path}"

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
        "trigger_settings": _obj({
            "run_async": {"type": "boolean"},
            "error_behavior": {"type": "string", "enum": ERROR_BEHAVIORS},
            "catch_up": {
                "type": "boolean", "default": False,
                "description": "Weir's addition, for `every:` / `cron:` triggers (400 for "
                               "others): after the server was down, run ONE catch-up call "
                               "(`call_time` = the last missed fire time, the same "
                               "arguments) before the schedule resumes. Every schedule "
                               "trigger logs the runs it missed (count and range) either "
                               "way."}}),
        "trigger_arguments": {"oneOf": [_ref("schemas", "StringMap"), {"type": "null"}]},
        "disabled": {"type": "boolean", "default": False},
        "public": {"type": "boolean", "default": False,
                   "description": "Weir's addition: a `request:` trigger that answers without a "
                                  "token. Refused (400) for other specifications."},
        "node_spec": {
            "type": "string", "default": "all",
            "description": "InfluxDB 3 Enterprise's: the nodes of a cluster that run the "
                           "trigger, `all` or `nodes:<node-id>[,<node-id>...]` (400 "
                           "otherwise). Every node stores it; only the named nodes (in "
                           "`process` mode; WAL and Parquet triggers also in `ingest` mode) "
                           "run it."},
    }, ["db", "trigger_name", "plugin_filename", "trigger_specification"],
        description="The reference requires `trigger_settings` and `disabled`; Weir defaults "
                    "them (`run_async` false, `error_behavior` log, `catch_up` false, "
                    "`disabled` false).")
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
                             "reference answers); or the enabled trigger that has it does not "
                             "run on this node (its `node_spec` names other nodes, or this "
                             "node is not in `process` mode): then a JSON `{\"error\": ...}` "
                             "naming the nodes that run it."),
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


def engine_paths() -> Json:
    """The processing engine's routes (only with `--plugin-dir`)."""
    return {**_trigger_paths(), **_plugin_environment_paths(), **_plugin_file_paths(),
            **_request_trigger_paths()}
