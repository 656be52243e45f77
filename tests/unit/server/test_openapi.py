"""`GET /openapi.json`: the document is a valid OpenAPI 3.1 document, and it cannot drift
from the routes: every (method, path) Weir routes is documented, every documented
operation is routed, and nothing else is (the reference has no 405: 404 `Not found`)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import schemathesis
from starlette.routing import Route

from weir.server import build_routes
from weir.server.openapi import (
    ENGINE_REQUEST_PATH,
    OPENAPI_PATH,
    build_document,
    copy_document,
    documented_operations,
)

ENGINE_STUB = SimpleNamespace(config=SimpleNamespace(max_http_request_size=1024))
OTHER_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]


def routed_operations(engine: bool) -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every route build_routes gives a server."""
    state = SimpleNamespace(engine=ENGINE_STUB if engine else None)
    out = set()
    for route in build_routes(state):  # type: ignore[arg-type]
        assert isinstance(route, Route), route
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {path:path} -> {path}
        for method in route.methods or ():
            out.add((method, path))
    return out


@pytest.mark.parametrize("engine", [True, False], ids=["plugin-dir", "no-plugin-dir"])
def test_every_route_is_documented_and_every_operation_routed(engine: bool) -> None:
    routed = routed_operations(engine)
    documented = documented_operations(build_document(engine=engine))
    assert routed - documented == set(), "routed but not in the OpenAPI document"
    assert documented - routed == set(), "documented but not routed"
    assert (("GET", ENGINE_REQUEST_PATH) in routed) is engine
    assert ("GET", OPENAPI_PATH) in routed


def test_no_head_routes() -> None:
    """Starlette adds HEAD to GET routes; the reference routes exact pairs only."""
    assert not any(m == "HEAD" for m, _ in routed_operations(True))


@pytest.mark.parametrize("kw", [{}, {"auth": False}, {"engine": False},
                                {"open_paths": frozenset({"/health", "/api/v1/health",
                                                          "/ping", "/metrics"})}])
def test_document_is_valid_openapi(kw: dict) -> None:
    schema = schemathesis.openapi.from_dict(copy_document(**kw))
    schema.validate()  # the OpenAPI 3.1 meta-schema, as schemathesis checks it
    ops = [result.ok() for result in schema.get_all_operations()]
    assert len(ops) == len(documented_operations(build_document(**kw)))
    for op in ops:
        assert op.definition.raw["responses"], op.label


def test_security_follows_the_server() -> None:
    doc = build_document()
    assert doc["security"]
    # (with auth on, the health checks need a token too, as in the reference, unless
    # --disable-authz names them)
    for path in ("/health", "/api/v1/health", "/ping"):
        for op in doc["paths"][path].values():
            assert "security" not in op
    assert doc["paths"]["/api/v3/configure/token/admin"]["post"]["security"] == []
    assert {"V1Password": []} in doc["paths"]["/query"]["get"]["security"]
    assert "security" not in doc["paths"]["/metrics"]["get"]  # the default: a token
    trigger = doc["paths"]["/api/v3/configure/processing_engine_trigger"]["post"]
    body = trigger["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["public"] == {"type": "boolean", "default": False,
                                            "description": body["properties"]["public"][
                                                "description"]}
    assert body["properties"]["trigger_settings"]["properties"]["error_behavior"]["enum"] == [
        "log", "retry", "disable"]
    catch_up = body["properties"]["trigger_settings"]["properties"]["catch_up"]
    assert catch_up["type"] == "boolean" and catch_up["default"] is False
    assert "ONE catch-up call" in catch_up["description"]
    open_doc = build_document(auth=False)
    assert "security" not in open_doc
    assert all("security" not in op and "401" not in op["responses"]
               for item in open_doc["paths"].values() for op in item.values())


def test_only_the_reference_500s_are_documented() -> None:
    doc = build_document()
    with_500 = {(m, p) for p, item in doc["paths"].items() for m, op in item.items()
                if "500" in op["responses"]}
    assert with_500 == {
        ("get", "/api/v3/query_sql"), ("post", "/api/v3/query_sql"),
        ("post", "/api/v3/configure/processing_engine_trigger"),
        ("delete", "/api/v3/configure/processing_engine_trigger"),
        ("post", "/api/v3/configure/processing_engine_trigger/enable"),
        ("post", "/api/v3/configure/plugin_environment/install_packages"),
        ("post", "/api/v3/configure/plugin_environment/install_requirements"),
        ("post", "/api/v3/plugin_test/wal"), ("post", "/api/v3/plugin_test/schedule"),
        ("post", "/api/v3/plugins/files"), ("put", "/api/v3/plugins/files"),
        ("put", "/api/v3/plugins/directory"),
        ("get", ENGINE_REQUEST_PATH), ("post", ENGINE_REQUEST_PATH),
    }
    trigger_500 = doc["paths"]["/api/v3/configure/processing_engine_trigger"]["post"][
        "responses"]["500"]["content"]["text/plain"]["schema"]["pattern"]
    assert re.search(trigger_500, "failed to parse trigger from bogus")
    assert re.search(trigger_500, "Plugin error: reading plugin file: Plugin not found: /x")
    assert not re.search(trigger_500, "internal error: TypeError: boom")
