"""Tokens with a real server: nothing answers without one but what --disable-authz names
(as in the reference, not even /health and /ping)."""

from __future__ import annotations

import base64
import os
import subprocess

import httpx
import pytest

from conftest import weir_cmd
from support.cli import create_admin_token

NOT_AUTH = {"error": "the request was not authenticated"}


@pytest.fixture
def auth_server(server_factory):  # type: ignore[no-untyped-def]
    return server_factory(auth=True, extra_args=["--wal-flush-interval", "10ms"]).start()


def _admin(s) -> str:  # type: ignore[no-untyped-def]
    r = httpx.post(f"{s.url}/api/v3/configure/token/admin")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "_admin" and body["token"].startswith("apiv3_")
    return body["token"]


def test_everything_needs_a_token(auth_server):
    s = auth_server
    for method, path in [("GET", "/health"), ("GET", "/api/v1/health"), ("GET", "/ping"),
                         ("POST", "/api/v3/write_lp?db=x"), ("GET", "/api/v3/query_sql?db=x&q=1"),
                         ("GET", "/api/v3/configure/database?format=json"), ("GET", "/metrics"),
                         ("POST", "/write?db=x"), ("POST", "/api/v2/write?bucket=x")]:
        r = httpx.request(method, f"{s.url}{path}", content=b"m v=1")
        assert r.status_code == 401, (path, r.text)
        # byte for byte the reference's body (formatted: a space after the colon)
        assert r.text == '{"error": "the request was not authenticated"}', path
    token = _admin(s)
    assert httpx.post(f"{s.url}/api/v3/configure/token/admin").status_code == 409
    h = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{s.url}/api/v3/write_lp", params={"db": "d"}, content=b"m v=1 1",
                      headers=h).status_code == 204
    r = httpx.post(f"{s.url}/api/v3/query_sql", json={"db": "d", "q": "SELECT v FROM m"},
                   headers=h)
    assert r.json() == [{"v": 1.0}]
    # other accepted forms: Token scheme, Basic (token as password), v1 p= and u/p
    assert httpx.get(f"{s.url}/api/v3/configure/database", params={"format": "json"},
                     headers={"Authorization": f"Token {token}"}).status_code == 200
    basic = base64.b64encode(f"any:{token}".encode()).decode()
    assert httpx.get(f"{s.url}/api/v3/configure/database", params={"format": "json"},
                     headers={"Authorization": f"Basic {basic}"}).status_code == 200
    assert httpx.post(f"{s.url}/write", params={"db": "d", "u": "me", "p": token},
                      content=b"m v=2 2").status_code == 204
    wrong = {"Authorization": "Bearer apiv3_wrong"}
    assert httpx.get(f"{s.url}/api/v3/configure/database", params={"format": "json"},
                     headers=wrong).status_code == 401
    # regenerate: the old token stops working
    r = httpx.post(f"{s.url}/api/v3/configure/token/admin/regenerate", headers=h)
    assert r.status_code == 201
    new = {"Authorization": f"Bearer {r.json()['token']}"}
    assert httpx.get(f"{s.url}/metrics", headers=h).status_code == 401
    assert httpx.get(f"{s.url}/metrics", headers=new).status_code == 200


def test_scoped_tokens(auth_server):
    s = auth_server
    admin = {"Authorization": f"Bearer {_admin(s)}"}
    for db in ("a", "b"):
        assert httpx.post(f"{s.url}/api/v3/write_lp", params={"db": db}, content=b"m v=1 1",
                          headers=admin).status_code == 204
    r = httpx.post(f"{s.url}/api/v3/configure/token", headers=admin,
                   json={"token_name": "reader", "permissions": ["db:a:read"]})
    assert r.status_code == 201, r.text
    reader = {"Authorization": f"Bearer {r.json()['token']}"}
    q = lambda db, h: httpx.post(f"{s.url}/api/v3/query_sql",  # noqa: E731
                                 json={"db": db, "q": "SELECT * FROM m"}, headers=h)
    assert q("a", reader).status_code == 200
    assert q("b", reader).status_code == 403
    assert httpx.post(f"{s.url}/api/v3/write_lp", params={"db": "a"}, content=b"m v=2 2",
                      headers=reader).status_code == 403
    assert httpx.get(f"{s.url}/api/v3/configure/database", params={"format": "json"},
                     headers=reader).status_code == 403
    r = httpx.post(f"{s.url}/api/v3/configure/token", headers=admin,
                   json={"token_name": "writer", "permissions": ["db:b:write"]})
    writer = {"Authorization": f"Bearer {r.json()['token']}"}
    assert httpx.post(f"{s.url}/api/v2/write", params={"bucket": "b"}, content=b"m v=3 3",
                      headers=writer).status_code == 204
    r = httpx.post(f"{s.url}/api/v2/write", params={"bucket": "a"}, content=b"m v=3 3",
                   headers=writer)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert q("b", writer).status_code == 403
    rows = httpx.post(f"{s.url}/api/v3/query_sql", headers=admin, json={
        "db": "_internal", "q": "SELECT name, permissions FROM system.tokens ORDER BY name"}).json()
    assert rows == [{"name": "_admin", "permissions": "*:*:*"},
                    {"name": "reader", "permissions": "db:a:read"},
                    {"name": "writer", "permissions": "db:b:write"}]
    assert httpx.delete(f"{s.url}/api/v3/configure/token", params={"token_name": "reader"},
                        headers=admin).status_code == 200
    assert q("a", reader).status_code == 401
    assert httpx.delete(f"{s.url}/api/v3/configure/token", params={"token_name": "_admin"},
                        headers=admin).status_code == 405


def test_plaintext_tokens_never_reach_disk(auth_server):
    s = auth_server
    token = _admin(s)
    admin = {"Authorization": f"Bearer {token}"}
    httpx.post(f"{s.url}/api/v3/write_lp", params={"db": "d"}, content=b"m v=1 1", headers=admin)
    s.stop()
    secret = token.encode()
    stored = s.stored_objects()
    assert any("catalog" in path for path in stored), stored  # the tokens live there
    for path in stored:
        assert secret not in s.read_object(path), path
    assert secret not in s.log_path.read_bytes()
    s.start()  # tokens survive a restart
    assert httpx.get(f"{s.url}/metrics", headers=admin).status_code == 200


def test_cli_with_token(auth_server):
    s = auth_server
    env = {**os.environ, "INFLUXDB3_HOST_URL": s.url}
    token = create_admin_token(s)
    p = subprocess.run([*weir_cmd(), "create", "database", "x"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode != 0 and "not authenticated" in p.stderr
    env["INFLUXDB3_AUTH_TOKEN"] = token
    p = subprocess.run([*weir_cmd(), "create", "database", "x"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([*weir_cmd(), "create", "token", "--name", "w", "--permission",
                        "db:x:write"], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0 and "Token: apiv3_" in p.stdout, p.stderr


def test_token_endpoints_without_auth(server):
    r = httpx.post(f"{server.url}/api/v3/configure/token/admin")
    assert r.status_code == 405 and r.text == "endpoint disabled, started without auth"
    # tokens are accepted and ignored
    r = httpx.get(f"{server.url}/api/v3/configure/database", params={"format": "json"},
                  headers={"Authorization": "Bearer whatever"})
    assert r.status_code == 200


def test_offline_admin_token_file(server_factory, tmp_path):
    f = tmp_path / "admin.json"
    p = subprocess.run([*weir_cmd(), "create", "token", "--admin", "--offline", "--output-file",
                        str(f)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert oct(f.stat().st_mode & 0o777) == "0o600"
    import json

    token = json.loads(f.read_text())["token"]
    s = server_factory(auth=True, extra_args=["--admin-token-file", str(f)]).start()
    h = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{s.url}/metrics", headers=h).status_code == 200
    assert httpx.post(f"{s.url}/api/v3/configure/token/admin").status_code == 409


def test_public_request_triggers(server_factory, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "echo.py").write_text(
        "def process_request(influxdb3_local, query_parameters, request_headers,\n"
        "                    request_body, args=None):\n"
        "    return {'who': query_parameters.get('who'),\n"
        "            'saw_auth': 'authorization' in request_headers}\n")
    (plugins / "tick.py").write_text(
        "def process_scheduled_call(influxdb3_local, call_time, args=None):\n    pass\n")
    s = server_factory(auth=True, plugin_dir=plugins).start()
    admin = {"Authorization": f"Bearer {_admin(s)}"}
    env = {**os.environ, "INFLUXDB3_HOST_URL": s.url,
           "INFLUXDB3_AUTH_TOKEN": admin["Authorization"][7:]}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*weir_cmd(), *args], capture_output=True, text=True, env=env,
                              timeout=60)

    assert cli("create", "database", "d").returncode == 0
    p = cli("create", "trigger", "-d", "d", "--path", "echo.py", "--trigger-spec",
            "request:open", "--public", "opened")
    assert p.returncode == 0, p.stderr
    p = cli("create", "trigger", "-d", "d", "--path", "echo.py", "--trigger-spec",
            "request:closed", "closed")
    assert p.returncode == 0, p.stderr
    # only request triggers can be public; the error names the trigger, nothing is stored
    p = cli("create", "trigger", "-d", "d", "--path", "tick.py", "--trigger-spec", "every:1h",
            "--public", "ticker")
    assert p.returncode != 0 and "'ticker' cannot be public" in p.stderr, p.stderr
    r = httpx.post(f"{s.url}/api/v3/configure/processing_engine_trigger", headers=admin, json={
        "db": "d", "trigger_name": "t2", "plugin_filename": "tick.py",
        "trigger_specification": "every:1h", "public": True, "disabled": False,
        "trigger_settings": {"run_async": False, "error_behavior": "log"}})
    assert r.status_code == 400 and "only request triggers" in r.text

    url = f"{s.url}/api/v3/engine"
    r = httpx.get(f"{url}/open", params={"who": "anyone"})
    assert r.status_code == 200 and r.json() == {"who": "anyone", "saw_auth": False}
    # a token, even a wrong one, is ignored on a public path, and never reaches the plugin
    r = httpx.get(f"{url}/open", headers={"Authorization": "Bearer apiv3_wrong"})
    assert r.status_code == 200 and r.json()["saw_auth"] is False
    # ... but a malformed header is still refused, as on every path
    assert httpx.get(f"{url}/open", headers={"Authorization": "Weird a b"}).status_code == 400
    r = httpx.get(f"{url}/closed")
    assert r.status_code == 401 and r.json() == NOT_AUTH
    assert httpx.get(f"{url}/closed", headers=admin).status_code == 200
    # a path no trigger serves is not public: 401 without a token, 404 with one
    assert httpx.get(f"{url}/nothing").status_code == 401
    assert httpx.get(f"{url}/nothing", headers=admin).status_code == 404
    # the public path is not a door to anything else
    assert httpx.get(f"{s.url}/api/v3/configure/database",
                     params={"format": "json"}).status_code == 401

    rows = httpx.post(f"{s.url}/api/v3/query_sql", headers=admin, json={
        "db": "d", "q": "SELECT trigger_name, public FROM system.processing_engine_triggers "
                        "ORDER BY trigger_name"}).json()
    assert rows == [{"trigger_name": "closed", "public": False},
                    {"trigger_name": "opened", "public": True}]
    p = cli("show", "summary", "-d", "d")
    assert p.returncode == 0 and "enabled, public" in p.stdout, p.stderr

    # disabled, a public trigger asks for a token like any other path
    assert cli("disable", "trigger", "-d", "d", "opened").returncode == 0
    assert httpx.get(f"{url}/open").status_code == 401
    assert cli("enable", "trigger", "-d", "d", "opened").returncode == 0
    assert httpx.get(f"{url}/open").status_code == 200
    # public is kept in the catalog across a restart
    s.restart()
    assert httpx.get(f"{s.url}/api/v3/engine/open", params={"who": "x"}).json()["who"] == "x"
    assert httpx.get(f"{s.url}/api/v3/engine/closed").status_code == 401
