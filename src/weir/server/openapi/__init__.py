"""The OpenAPI 3.1 document of Weir's HTTP API, served at `GET /openapi.json`.

It describes what the server really answers (surface.md §1 and the handlers in
weir.server): every routed (method, path), its query parameters and bodies, and each
status code with the body shape and content type the handler sends, including the
reference's quirks (text bodies for most errors, the v2 write API's `{"code","message"}`,
the 500s InfluxDB 3 answers on purpose). This module assembles the document and caches it
per server configuration: with `--without-auth` nothing requires a token; without
`--plugin-dir` the processing-engine routes are absent. The pieces: `parts` (building
blocks and shared components), and one module per route group: `data` (write, query,
service), `configure` (databases, tables, tokens), `caches` (last-value and
distinct-value caches), `engine` (the processing engine).

`tests/unit/server/test_openapi.py` checks that the document and the routes cannot drift apart;
`tests/fuzz/test_openapi_fuzz.py` fuzzes a live server against it with schemathesis.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import weir

from .caches import cache_paths
from .configure import configure_paths, token_paths
from .data import OPENAPI_PATH, query_paths, service_paths, write_paths
from .engine import ENGINE_REQUEST_PATH, engine_paths
from .parts import Json, _ref, components

__all__ = ["ENGINE_REQUEST_PATH", "OPENAPI_PATH", "build_document", "copy_document",
           "document_bytes", "documented_operations"]


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
    v1: list[dict[str, list[str]]] = [{"BearerAuth": []}, {"BasicAuth": []}, {"V1Password": []}]
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
                   open_paths: frozenset[str] = frozenset()) -> Json:
    """The document for a server with/without auth and the processing engine; cached,
    so treat it as read-only (`document_bytes` gives the served bytes)."""
    paths: Json = {**write_paths(), **query_paths(), **service_paths(),
                   **configure_paths(), **cache_paths(), **token_paths()}
    if engine:
        paths.update(engine_paths())
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
        "components": components(),
    }
    if auth:
        doc["security"] = [{"BearerAuth": []}, {"BasicAuth": []}]
        _secure(paths, open_paths)
    else:
        _without_auth(paths)
    return doc


@functools.cache
def document_bytes(*, auth: bool = True, engine: bool = True,
                   open_paths: frozenset[str] = frozenset()) -> bytes:
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
