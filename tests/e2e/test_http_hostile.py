"""Regressions for what schemathesis found fuzzing the HTTP API (tests/test_openapi_fuzz.py):
JSON values of the wrong type, odd query values and malformed forms were answered with
500 (or accepted) where the reference answers 400 (serde's checks), plus routing and
metrics details. Each case runs against a real server, which must go on serving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import WeirServer


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeirServer]:
    base = Path(tmp_path_factory.mktemp("http_hostile"))
    (base / "plugins").mkdir()
    s = WeirServer(base / "data", plugin_dir=base / "plugins", extra_args=[
        "--wal-flush-interval", "10ms", "--package-manager", "disabled"]).start()
    assert s.write("hostile", "m v=1i 1").status_code == 204
    yield s
    s.stop()


@pytest.fixture(scope="module")
def auth_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WeirServer, dict]]:
    s = WeirServer(Path(tmp_path_factory.mktemp("http_hostile_auth")) / "data",
                   auth=True).start()
    token = httpx.post(f"{s.url}/api/v3/configure/token/admin", timeout=30).json()["token"]
    yield s, {"Authorization": f"Bearer {token}"}
    s.stop()


@pytest.fixture(autouse=True)
def no_tracebacks(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for name in ("srv", "auth_srv"):
        if name in request.fixturenames:
            s = request.getfixturevalue(name)
            s = s[0] if isinstance(s, tuple) else s
            assert httpx.get(f"{s.url}/health", timeout=10).status_code in (200, 401)
            assert "Traceback" not in s.log(), s.log()


def post_json(s: WeirServer, path: str, body: object, **kw: object) -> httpx.Response:
    return httpx.post(f"{s.url}{path}", json=body, timeout=30, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("body", [{"db": [None, None]}, {"db": {}}, {"db": 5},
                                  {"db": "ok", "retention_period": 7}, ["db"]])
def test_database_body_of_the_wrong_type_is_400(srv, method, body) -> None:
    r = httpx.request(method, f"{srv.url}/api/v3/configure/database", json=body, timeout=30)
    assert r.status_code == 400, r.text
    assert r.text.startswith("serde json error: invalid type")


@pytest.mark.parametrize("body, text", [
    ({"db": "t1", "table": "x", "fields": [{"type": "utf8"}]}, "missing field `name`"),
    ({"db": "t1", "table": "x", "fields": [{"name": 3, "type": "utf8"}]}, "invalid type"),
    ({"db": "t1", "table": "x", "fields": [{"name": "f", "type": ["utf8"]}]}, "field type"),
    ({"db": "t1", "table": "x", "fields": {}}, "invalid type for `fields`"),
    ({"db": "t1", "table": "x", "fields": ["f"]}, "invalid type for `fields`"),
    ({"db": "t1", "table": "x", "tags": "abc"}, "invalid type for `tags`"),
    ({"db": "t1", "table": "x", "tags": [1]}, "invalid type for `tags`"),
    ({"db": "t1", "table": 1}, "invalid type for `table`"),
    ({"db": "t1", "table": "x", "fields": [{"name": "", "type": "utf8"}]}, "cannot be empty"),
    ({"db": "t1", "table": "x", "tags": [""]}, "cannot be empty"),
    ({"db": "t1", "table": ""}, "cannot be empty"),
])
def test_table_body_of_the_wrong_shape_is_400(srv, body, text) -> None:
    r = post_json(srv, "/api/v3/configure/table", body)
    assert r.status_code == 400, r.text
    assert text in r.text
    tables = srv.rows("hostile", "SELECT table_name FROM information_schema.tables "
                                 "WHERE table_schema = 'iox'")
    assert tables == [{"table_name": "m"}]


def test_create_table_keeps_the_column_limit(srv) -> None:
    fields = [{"name": f"f{i}", "type": "int64"} for i in range(501)]
    r = post_json(srv, "/api/v3/configure/table", {"db": "hostile", "table": "wide",
                                                   "fields": fields})
    assert r.status_code == 422, r.text
    assert "columns per table limit of 500" in r.json()["error"]
    r = post_json(srv, "/api/v3/configure/table", {"db": "hostile", "table": "wide",
                                                   "fields": fields[:500]})
    assert r.status_code == 200, r.text  # 500 fields (time is not counted)
    r = post_json(srv, "/api/v3/configure/table", {"db": "hostile", "table": "wide2",
                                                   "tags": ["t"], "fields": fields[:500]})
    assert r.status_code == 422, r.text
    httpx.delete(f"{srv.url}/api/v3/configure/table", params={"db": "hostile",
                                                               "table": "wide"})


@pytest.mark.parametrize("path", ["/api/v3/query_sql", "/api/v3/query_influxql"])
@pytest.mark.parametrize("body", [{"db": "hostile", "q": "SELECT 1", "format": {}},
                                  {"db": "hostile", "q": ["SELECT 1"]},
                                  {"db": {}, "q": "SELECT 1"}])
def test_query_body_of_the_wrong_type_is_400(srv, path, body) -> None:
    r = post_json(srv, path, body)
    assert r.status_code == 400, r.text
    assert "invalid type" in r.text


@pytest.mark.parametrize("q", ["²", "SELECT v FROM m WHERE v > ²", "³0s", "SELECT ½ FROM m"])
def test_influxql_unicode_digits_are_not_numbers(srv, q) -> None:
    """`str.isdigit` is true for `²`; the lexer's number pattern is not (was 500)."""
    r = httpx.get(f"{srv.url}/query", params={"db": "hostile", "q": q}, timeout=30)
    assert r.status_code == 200, r.text  # `²` alone is no statement; elsewhere a name
    assert r.json()["results"][0]["statement_id"] == 0
    assert ("error" in r.json()["results"][0]) is (q == "²" or q == "³0s")
    r = httpx.get(f"{srv.url}/api/v3/query_influxql", params={"db": "hostile", "q": q})
    assert r.status_code in (200, 400), r.text
    assert not r.text.startswith("internal error")


def test_v1_query_request_errors_are_json(srv) -> None:
    r = httpx.get(f"{srv.url}/query", params={"db": "hostile", "q": "SHOW DATABASES",
                                              "params": "{not json"})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"].startswith("error decoding query body: serde json error")


@pytest.mark.parametrize("size", ["-3135", " 5", "1.5", "٣", "++2"])
def test_v1_chunk_size_must_be_unsigned(srv, size) -> None:
    r = httpx.get(f"{srv.url}/query", params={"q": "SHOW DATABASES", "chunked": "true",
                                              "chunk_size": size})
    assert r.status_code == 400, r.text
    assert "chunk_size" in r.json()["error"]
    r = httpx.get(f"{srv.url}/query", params={"q": "SHOW DATABASES", "chunked": "true",
                                              "chunk_size": "+2"})
    assert r.status_code == 200


def test_v1_multipart_part_without_a_name_is_400(srv) -> None:
    body = b"--b\r\n\xf3\xbe\x97\xb1--b--\r\n"
    r = httpx.post(f"{srv.url}/query", params={"q": "SHOW DATABASES"}, content=body,
                   headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 400, r.text
    assert "Content-Disposition" in r.json()["error"]
    r = httpx.post(f"{srv.url}/query", files={"q": (None, "SHOW DATABASES")})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path, body", [
    ("/api/v3/plugin_test/wal", {"filename": "a\x00b.py", "database": "hostile",
                                 "input_lp": "m v=1"}),
    ("/api/v3/plugin_test/schedule", {"filename": "a\x00b.py", "database": "hostile"}),
    ("/api/v3/plugins/files", {"plugin_name": "a\x00b.py", "content": "x = 1"}),
    ("/api/v3/configure/processing_engine_trigger",
     {"db": "hostile", "trigger_name": "t", "plugin_filename": "a\x00b.py",
      "trigger_specification": "all_tables"}),
])
def test_nul_in_a_plugin_filename_is_a_plugin_error(srv, path, body) -> None:
    """pathlib raises ValueError on NUL; it was an unhandled 500."""
    r = post_json(srv, path, body)
    assert r.status_code == 500, r.text
    assert r.text.startswith("Plugin error: reading plugin file: invalid plugin filename")


@pytest.mark.parametrize("path, body", [
    ("/api/v3/configure/plugin_environment/install_packages", {"packages": [""]}),
    ("/api/v3/configure/plugin_environment/install_packages", {"packages": ["--index-url=x"]}),
    ("/api/v3/configure/plugin_environment/install_requirements",
     {"requirements_location": ""}),
])
def test_disabled_package_manager_refuses_before_checking_the_request(srv, path, body) -> None:
    r = post_json(srv, path, body)
    assert r.status_code == 403, r.text
    assert r.text.startswith("Package installation has been disabled")


@pytest.mark.parametrize("path", ["/health", "/api/v3/query_sql", "/metrics", "/openapi.json",
                                  "/query", "/api/v3/configure/database"])
def test_head_is_not_routed(srv, path) -> None:
    """The reference routes exact (method, path) pairs; Starlette added HEAD to GETs."""
    r = httpx.head(f"{srv.url}{path}")
    assert r.status_code == 404


def test_metrics_count_engine_calls_and_bound_unknown_paths(srv) -> None:
    """404s are counted without their path (InfluxDB 3 Core's rule), so arbitrary URLs,
    unknown request-trigger paths included, cannot grow /metrics without bound."""
    def counters() -> dict[tuple[str, str], int]:
        text = httpx.get(f"{srv.url}/metrics").text
        out: dict[tuple[str, str], int] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "http_requests_total":
                    key = (sample.labels.get("path", ""), sample.labels.get("status", ""))
                    out[key] = out.get(key, 0) + int(sample.value)
        return out

    before = counters()
    for i in range(5):
        assert httpx.get(f"{srv.url}/api/v3/engine/nothing_{i}").status_code == 404
        assert httpx.get(f"{srv.url}/no/such/path/{i}").status_code == 404
    after = counters()
    assert after[("", "client_error")] - before.get(("", "client_error"), 0) == 10
    assert not any("nothing_" in path or path.startswith("/no/such") for path, _ in after)
    assert after[("/metrics", "ok")] - before.get(("/metrics", "ok"), 0) == 1


# ---- tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize("path, body", [
    ("/api/v3/configure/token", {"token_name": "t", "permissions": [
        {"resource_type": "db", "resource_identifier": [], "actions": [{}]}]}),
    ("/api/v3/configure/token", {"token_name": "t", "permissions": [
        {"resource_identifier": "db1", "actions": ["read"]}]}),
    # (found by the OpenAPI fuzzer, seed 362721968: an array here was taken as "db")
    ("/api/v3/configure/token", {"token_name": "t", "permissions": [
        {"resource_type": ["db"], "resource_identifier": ["db1"], "actions": ["read"]}]}),
    ("/api/v3/configure/token", {"token_name": "t", "permissions": "db:x:read"}),
    ("/api/v3/configure/token", {"token_name": "t", "permissions": [7]}),
    ("/api/v3/configure/token", {"token_name": ["t"], "permissions": ["db:x:read"]}),
    ("/api/v3/configure/token/named_admin", {"token_name": "t", "expiry_secs": "abc"}),
    ("/api/v3/configure/token/named_admin", {"token_name": "t", "expiry_secs": -1}),
    ("/api/v3/configure/token/named_admin", {"token_name": "t", "expiry_secs": 1.5}),
    ("/api/v3/configure/token/named_admin", {"token_name": "t", "expiry_secs": True}),
    ("/api/v3/configure/token/named_admin", {"token_name": "t", "expiry_secs": 0,
                                             "expiry": {}}),
    ("/api/v3/configure/token/named_admin", {"token_name": "t", "expiry": 30}),
    ("/api/v3/configure/token/named_admin", {"token_name": 5}),
])
def test_token_body_of_the_wrong_type_is_400(auth_srv, path, body) -> None:
    s, headers = auth_srv
    r = post_json(s, path, body, headers=headers)
    assert r.status_code == 400, r.text
    assert "invalid type" in r.text


def test_token_for_another_resource_type_is_400_and_not_created(auth_srv) -> None:
    s, headers = auth_srv
    r = post_json(s, "/api/v3/configure/token", {"token_name": "tables", "permissions": [
        {"resource_type": "table", "resource_identifier": ["cpu"], "actions": ["read"]}]},
        headers=headers)
    assert r.status_code == 400 and "unsupported resource_type 'table'" in r.text, r.text
    names = httpx.get(f"{s.url}/api/v3/query_sql", headers=headers,
                      params={"db": "_internal", "q": "SELECT name FROM system.tokens"}).json()
    assert "tables" not in [t["name"] for t in names]


@pytest.mark.parametrize("body", [{"token_name": "far", "expiry_secs": 10**15},
                                  {"token_name": "far", "expiry": "100000000y"}])
def test_token_expiry_past_year_9999_is_400(auth_srv, body) -> None:
    """The RFC3339 expiry in the answer could not be rendered (was 500)."""
    s, headers = auth_srv
    r = post_json(s, "/api/v3/configure/token/named_admin", body, headers=headers)
    assert r.status_code == 400, r.text
    assert "year 9999" in r.text
    r = post_json(s, "/api/v3/configure/token/named_admin",
                  {"token_name": f"near{len(str(body))}", "expiry_secs": 3600},
                  headers=headers)
    assert r.status_code == 201, r.text


def test_v1_empty_chunk_size_is_the_default(srv) -> None:
    """As InfluxDB 1.x: an empty chunk_size is absent (and the document says so)."""
    r = httpx.get(f"{srv.url}/query", params={"q": "SHOW DATABASES", "chunked": "true",
                                              "chunk_size": ""})
    assert r.status_code == 200, r.text
