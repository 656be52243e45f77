"""`GET /openapi.json` from a live server: the served document is the built one, each
documented operation is routed and nothing else is, and the document needs a token when
auth is on (the document against the routes in-process: tests/unit/server/test_openapi.py)."""

from __future__ import annotations

import httpx
import pytest
import schemathesis

from conftest import WeirServer
from weir.server.openapi import build_document

OTHER_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]


@pytest.fixture(scope="module")
def engine_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("openapi")
    (base / "plugins").mkdir()
    s = WeirServer(base / "data", plugin_dir=base / "plugins",
                   extra_args=["--package-manager", "disabled"]).start()
    yield s
    s.stop()


def test_served_document_is_the_built_one(engine_server) -> None:  # type: ignore[no-untyped-def]
    r = httpx.get(f"{engine_server.url}/openapi.json", timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == build_document(auth=False, engine=True)
    schemathesis.openapi.from_url(f"{engine_server.url}/openapi.json").validate()


def test_live_routes_match_the_document(engine_server) -> None:  # type: ignore[no-untyped-def]
    """Each documented operation reaches a handler (never the router's 404 `Not found`);
    every other method on those paths gets exactly that 404."""
    doc = httpx.get(f"{engine_server.url}/openapi.json", timeout=30).json()
    with httpx.Client(base_url=engine_server.url, timeout=30) as client:
        for path, item in doc["paths"].items():
            url = path.replace("{path}", "no_such_trigger")
            for method in OTHER_METHODS:
                r = client.request(method, url)
                if method.lower() in item:
                    assert (r.status_code, r.text) != (404, "Not found"), (method, path)
                else:
                    assert r.status_code == 404, (method, path, r.status_code)
                    assert r.text == ("" if method == "HEAD" else "Not found"), (method, path)


def test_openapi_json_needs_a_token(server_factory) -> None:  # type: ignore[no-untyped-def]
    s = server_factory(auth=True).start()
    r = httpx.get(f"{s.url}/openapi.json", timeout=30)
    assert r.status_code == 401
    assert r.text == '{"error": "the request was not authenticated"}' or r.json() == {
        "error": "the request was not authenticated"}
    token = httpx.post(f"{s.url}/api/v3/configure/token/admin", timeout=30).json()["token"]
    r = httpx.get(f"{s.url}/openapi.json", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json() == build_document(auth=True, engine=False)
