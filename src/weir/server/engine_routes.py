"""HTTP routes of the processing engine: trigger configuration, the plugin
environment, plugin test runs, plugin uploads and request triggers
(`/api/v3/engine/<path>`). Handlers parse the request and call the engine; typed
errors become the reference's answers in `weir.server.errors`, except the few the
reference answers unusually, which are returned here directly.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from weir.engine.environment import PackageInstallDisabled
from weir.engine.processing_engine import ERROR_BEHAVIORS, ProcessingEngine, RequestPathTaken
from weir.engine.specs import InvalidTriggerSpec
from weir.server.errors import HttpError
from weir.server.http_io import (
    invalid_type,
    json_object,
    opt_str,
    parse_bool,
    parse_json,
    read_body,
    read_json,
)

_HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive"}


def _missing(name: str) -> HttpError:
    return HttpError(400, f"serde json error: missing field `{name}`")


def _str_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        raise _missing(name)
    if not isinstance(value, str):
        raise invalid_type(name, "a string")
    return value


def _bool_field(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return parse_bool(value, name, default)
    raise invalid_type(name, "a boolean")


def _str_map(body: dict[str, Any], name: str) -> dict[str, str] | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str):  # from a query string
        value = parse_json(value.encode())
    if not isinstance(value, dict) or any(isinstance(v, dict | list) for v in value.values()):
        raise invalid_type(name, "a map of strings")
    return {str(k): v if isinstance(v, str) else str(v).lower() if isinstance(v, bool)
            else str(v) for k, v in value.items()}


def engine_routes(engine: ProcessingEngine) -> list[Route]:
    """The processing engine's routes, bound to `engine`."""
    max_size = engine.config.max_http_request_size

    async def body_or_query(request: Request) -> dict[str, Any]:
        """The reference reads the query string when there is one, else the JSON body."""
        if request.url.query:
            return dict(request.query_params)
        return json_object(await read_json(request, max_size))

    async def create_trigger(request: Request) -> Response:
        body = await body_or_query(request)
        settings = body.get("trigger_settings") or {}
        if isinstance(settings, str):
            settings = parse_json(settings.encode())
        settings = json_object(settings)
        run_async = _bool_field({**body, **settings}, "run_async", False)
        catch_up = _bool_field({**body, **settings}, "catch_up", False)  # Weir
        behavior = settings.get("error_behavior", body.get("error_behavior", "log"))
        if not isinstance(behavior, str) or behavior.lower() not in ERROR_BEHAVIORS:
            raise HttpError(400, f"serde json error: unknown variant `{behavior}`, expected one "
                                 "of `log`, `retry`, `disable`")
        try:
            await engine.create_trigger(
                database=_str_field(body, "db"),
                trigger_name=_str_field(body, "trigger_name"),
                plugin_filename=_str_field(body, "plugin_filename"),
                trigger_specification=_str_field(body, "trigger_specification"),
                trigger_arguments=_str_map(body, "trigger_arguments"),
                run_async=run_async, error_behavior=behavior.lower(),
                disabled=_bool_field(body, "disabled", False),
                public=_bool_field(body, "public", False), catch_up=catch_up,
                node_spec=opt_str(body, "node_spec") or "all")
        except InvalidTriggerSpec as e:
            return PlainTextResponse(str(e), status_code=500)
        except RequestPathTaken as e:
            return PlainTextResponse(str(e), status_code=409)
        return Response(status_code=200)

    async def delete_trigger(request: Request) -> Response:
        body = await body_or_query(request)
        await engine.delete_trigger(_str_field(body, "db"), _str_field(body, "trigger_name"),
                                    force=_bool_field(body, "force", False))
        return Response(status_code=200)

    async def trigger_dispatch(request: Request) -> Response:
        return await (create_trigger if request.method == "POST" else delete_trigger)(request)

    def _query_pair(request: Request) -> tuple[str, str]:
        q = request.query_params
        for name in ("db", "trigger_name"):
            if not q.get(name):
                raise HttpError(400, f"serde error: missing field `{name}`")
        return q["db"], q["trigger_name"]

    async def enable_trigger(request: Request) -> Response:
        await engine.enable_trigger(*_query_pair(request))
        return Response(status_code=200)

    async def disable_trigger(request: Request) -> Response:
        await engine.disable_trigger(*_query_pair(request))
        return Response(status_code=200)

    async def install_packages(request: Request) -> Response:
        if request.url.query:
            packages: Any = request.query_params.getlist("packages")
        else:
            packages = json_object(await read_json(request, max_size)).get("packages")
        if not isinstance(packages, list) or not all(isinstance(p, str) for p in packages):
            raise _missing("packages") if packages is None else invalid_type(
                "packages", "a list of strings")
        try:
            await engine.install_packages(packages)
        except PackageInstallDisabled as e:
            return PlainTextResponse(str(e), status_code=403)
        return Response(status_code=200)

    async def install_requirements(request: Request) -> Response:
        body = await body_or_query(request)
        try:
            await engine.install_requirements(_str_field(body, "requirements_location"))
        except PackageInstallDisabled as e:
            return PlainTextResponse(str(e), status_code=403)
        return Response(status_code=200)

    async def test_wal(request: Request) -> Response:
        body = json_object(await read_json(request, max_size))
        result = await engine.dry_runner.wal(
            _str_field(body, "filename"), _str_field(body, "database"),
            _str_field(body, "input_lp"), _str_map(body, "input_arguments"),
            opt_str(body, "cache_name"))
        return JSONResponse(result)

    async def test_schedule(request: Request) -> Response:
        body = json_object(await read_json(request, max_size))
        result = await engine.dry_runner.schedule(
            _str_field(body, "filename"), _str_field(body, "database"),
            opt_str(body, "schedule"), _str_map(body, "input_arguments"),
            opt_str(body, "cache_name"))
        return JSONResponse(result)

    async def plugin_files(request: Request) -> Response:
        body = json_object(await read_json(request, max_size))
        name, content = _str_field(body, "plugin_name"), _str_field(body, "content")
        if request.method == "POST":
            engine.upload_plugin_file(name, content)
        else:
            engine.replace_trigger_plugin(name, content)
        return Response(status_code=200)

    async def plugin_directory(request: Request) -> Response:
        body = json_object(await read_json(request, max_size))
        name = _str_field(body, "plugin_name")
        files = body.get("files")
        if not isinstance(files, list):
            raise _missing("files")
        pairs = []
        for f in files:
            f = json_object(f)
            pairs.append((_str_field(f, "relative_path"), _str_field(f, "content")))
        engine.replace_trigger_directory(name, pairs)
        return Response(status_code=200)

    async def request_trigger(request: Request) -> Response:
        if request.method not in ("GET", "POST"):  # Starlette adds HEAD to GET routes
            return PlainTextResponse("Not found", status_code=404)
        body = await read_body(request, max_size)
        headers: dict[str, str] = {}
        for k, v in request.headers.raw:
            name = k.decode("latin-1").lower()
            if name != "authorization":
                headers[name] = v.decode("latin-1")
        reply = await engine.handle_request(request.path_params["path"],
                                            dict(request.query_params), headers, body)
        out_headers: dict[str, str] = {}
        for key, value in reply.headers.items():
            if key.lower() in _HOP_HEADERS:
                continue
            try:
                key.encode("latin-1")
                value.encode("latin-1")
            except UnicodeEncodeError:
                continue
            out_headers[key] = value
        return Response(content=reply.body, status_code=reply.status, headers=out_headers)

    return [
        Route("/api/v3/configure/processing_engine_trigger", trigger_dispatch,
              methods=["POST", "DELETE"]),
        Route("/api/v3/configure/processing_engine_trigger/enable", enable_trigger,
              methods=["POST"]),
        Route("/api/v3/configure/processing_engine_trigger/disable", disable_trigger,
              methods=["POST"]),
        Route("/api/v3/configure/plugin_environment/install_packages", install_packages,
              methods=["POST"]),
        Route("/api/v3/configure/plugin_environment/install_requirements",
              install_requirements, methods=["POST"]),
        Route("/api/v3/plugin_test/wal", test_wal, methods=["POST"]),
        Route("/api/v3/plugin_test/schedule", test_schedule, methods=["POST"]),
        Route("/api/v3/plugins/files", plugin_files, methods=["POST", "PUT"]),
        Route("/api/v3/plugins/directory", plugin_directory, methods=["PUT"]),
        Route("/api/v3/engine/{path:path}", request_trigger, methods=["GET", "POST"]),
    ]
