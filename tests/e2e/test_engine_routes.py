"""The processing engine's HTTP routes, served by the real ASGI app over a real database
(memory object store): status codes and bodies as the reference answers them."""

from __future__ import annotations

import asyncio
import json
import socket
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from support.inprocess import (
    fast_options,
    make_config,
    open_database,
    query_rows,
    services_for,
    wait_for,
    write,
)
from weir.config import ServeConfig
from weir.database import Database
from weir.engine import ProcessingEngine
from weir.server.app import WeirApp
from weir.server.engine_routes import engine_routes
from weir.server.state import ServerState

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = make_config(tmp_path, package_manager="disabled")
    async with open_database(config) as db:
        await write(db, "foo", "setup v=1i")  # creates foo
        services = services_for(db)
        engine = ProcessingEngine(services, db, config, fast_options())
        await engine.start()
        state = ServerState(config=config, database=db, services=services, engine=engine)
        app = WeirApp(state, engine_routes(engine))
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://weir") as c:
                c.engine = engine  # type: ignore[attr-defined]
                c.db = db  # type: ignore[attr-defined]
                yield c
        finally:
            await engine.stop()


def write_plugin(client: httpx.AsyncClient, name: str, code: str) -> None:
    path = client.engine.files.plugin_dir / name  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))


def trigger_body(**kw: object) -> dict[str, object]:
    body: dict[str, object] = {
        "db": "foo", "plugin_filename": "req.py", "trigger_name": "t1",
        "trigger_specification": "request:custom/path", "trigger_arguments": None,
        "trigger_settings": {"run_async": False, "error_behavior": "log"}, "disabled": False}
    body.update(kw)
    return body


REQUEST_PLUGIN = """
import json
def process_request(influxdb3_local, query_parameters, request_headers, request_body,
                    args=None):
    influxdb3_local.write(LineBuilder("request_data").tag("tag1", "v").int64_field("field1", 1))
    return 200, {"Content-Type": "application/json", "X-Plugin": "yes"}, json.dumps(
        {"q": query_parameters, "auth": "authorization" in request_headers,
         "x": request_headers.get("x-custom"), "body": request_body.decode()})
"""
TRIGGER_URL = "/api/v3/configure/processing_engine_trigger"


async def test_trigger_configuration(client: httpx.AsyncClient) -> None:
    write_plugin(client, "req.py", REQUEST_PLUGIN)
    r = await client.post(TRIGGER_URL, json=trigger_body())
    assert (r.status_code, r.text) == (200, "")
    r = await client.post(TRIGGER_URL, json=trigger_body())
    assert r.status_code == 409
    r = await client.post(TRIGGER_URL, json=trigger_body(trigger_name="t2",
                                                         trigger_specification="every:x"))
    assert (r.status_code, r.text) == (500, "failed to parse trigger from every:x: couldn't "
                                            "parse to duration")
    r = await client.post(TRIGGER_URL, json=trigger_body(trigger_name="t2",
                                                         plugin_filename="nope.py"))
    assert r.status_code == 500
    assert r.text.startswith("Plugin error: reading plugin file: Plugin not found: ")
    r = await client.post(TRIGGER_URL, json=trigger_body(trigger_name="t2", db="nope"))
    assert (r.status_code, r.text) == (404, "Database not found nope")
    r = await client.post(TRIGGER_URL, content=json.dumps(trigger_body()))
    assert r.status_code == 415
    body = trigger_body(trigger_name="t2")
    del body["db"]
    r = await client.post(TRIGGER_URL, json=body)
    assert (r.status_code, r.text) == (400, "serde json error: missing field `db`")
    r = await client.post(TRIGGER_URL, json=trigger_body(
        trigger_name="t2", trigger_settings={"run_async": False, "error_behavior": "explode"}))
    assert r.status_code == 400 and "unknown variant `explode`" in r.text

    r = await client.post(f"{TRIGGER_URL}/disable", params={"db": "foo", "trigger_name": "t1"})
    assert r.status_code == 200
    r = await client.post(f"{TRIGGER_URL}/disable", params={"db": "foo", "trigger_name": "t1"})
    assert r.status_code == 200
    r = await client.post(f"{TRIGGER_URL}/enable", params={"db": "foo"})
    assert (r.status_code, r.text) == (400, "serde error: missing field `trigger_name`")
    r = await client.post(f"{TRIGGER_URL}/enable", params={"db": "foo", "trigger_name": "zz"})
    assert r.status_code == 404
    r = await client.post(f"{TRIGGER_URL}/enable", params={"db": "foo", "trigger_name": "t1"})
    assert r.status_code == 200
    r = await client.request("DELETE", TRIGGER_URL, json={"db": "foo", "trigger_name": "t1"})
    assert (r.status_code, r.text) == (
        500, "Cannot delete running plugin t1. Disable it first or use --force.")
    r = await client.delete(TRIGGER_URL, params={"db": "foo", "trigger_name": "t1",
                                                 "force": "true"})
    assert r.status_code == 200
    assert client.db.catalog.triggers("foo") == []  # type: ignore[attr-defined]


async def test_request_trigger_route(client: httpx.AsyncClient) -> None:
    write_plugin(client, "req.py", REQUEST_PLUGIN)
    assert (await client.post(TRIGGER_URL, json=trigger_body())).status_code == 200
    r = await client.post("/api/v3/engine/custom/path?a=1&a=2&b=x", content=b"payload",
                          headers={"Authorization": "Bearer abc", "X-Custom": "hdr"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-plugin"] == "yes"
    assert r.json() == {"q": {"a": "2", "b": "x"}, "auth": False, "x": "hdr",
                        "body": "payload"}
    # the plugin's write is committed before the reply
    assert await query_rows(client.db, "foo",  # type: ignore[attr-defined]
                            "SELECT tag1, field1 FROM request_data") == [
        {"tag1": "v", "field1": 1}]
    r = await client.get("/api/v3/engine/custom/path")
    assert r.status_code == 200
    r = await client.get("/api/v3/engine/other")
    assert (r.status_code, r.text) == (404, '{error: "not found"}')
    r = await client.put("/api/v3/engine/custom/path")
    assert (r.status_code, r.text) == (404, "Not found")

    # hot reload through PUT /api/v3/plugins/files
    r = await client.put("/api/v3/plugins/files", json={
        "plugin_name": "t1",
        "content": "def process_request(local, q, h, b, args=None):\n    return 'v2'\n"})
    assert r.status_code == 200
    r = await client.get("/api/v3/engine/custom/path")
    assert (r.status_code, r.text, r.headers["content-type"]) == (200, "v2", "text/html")


async def test_plugin_uploads(client: httpx.AsyncClient) -> None:
    engine: ProcessingEngine = client.engine  # type: ignore[attr-defined]
    r = await client.post("/api/v3/plugins/files?db=foo", json={
        "plugin_name": "my_plugin/utils/helper.py", "content": "X = 1\n"})
    assert r.status_code == 200
    assert (engine.files.plugin_dir / "my_plugin/utils/helper.py").read_text() == "X = 1\n"
    for bad in ("../evil.py", "/etc/passwd", "sub/../../evil.py"):
        r = await client.post("/api/v3/plugins/files", json={"plugin_name": bad, "content": ""})
        assert r.status_code == 500
        assert r.text.startswith("Plugin error: Path traversal detected: plugin filename")
    files = [{"relative_path": "__init__.py",
              "content": "from .impl import process_scheduled_call\n"},
             {"relative_path": "impl.py",
              "content": "def process_scheduled_call(local, t, args=None):\n    pass\n"}]
    (engine.files.plugin_dir / "pkg").mkdir()
    (engine.files.plugin_dir / "pkg" / "__init__.py").write_text(
        "def process_scheduled_call(local, t, args=None):\n    pass\n")
    (engine.files.plugin_dir / "pkg" / "stale.py").write_text("")
    r = await client.post(TRIGGER_URL, json=trigger_body(
        trigger_name="pk", plugin_filename="pkg", trigger_specification="every:1h"))
    assert r.status_code == 200
    r = await client.put("/api/v3/plugins/directory", json={"plugin_name": "pk", "files": files})
    assert r.status_code == 200
    assert sorted(p.name for p in (engine.files.plugin_dir / "pkg").iterdir()) == [
        "__init__.py", "impl.py"]
    assert sorted(p.name for p in engine.files.plugin_dir.iterdir()) == ["my_plugin", "pkg"]
    r = await client.put("/api/v3/plugins/directory", json={"plugin_name": "nobody",
                                                            "files": files})
    assert r.status_code == 404


async def test_plugin_test_routes_and_packages(client: httpx.AsyncClient) -> None:
    write_plugin(client, "wal.py", """
        def process_writes(influxdb3_local, table_batches, args=None):
            influxdb3_local.info("rows", len(table_batches[0]["rows"]), args)
            influxdb3_local.write(LineBuilder("out").int64_field("n", 1))
        """)
    r = await client.post("/api/v3/plugin_test/wal", json={
        "filename": "wal.py", "database": "foo", "input_lp": "cpu v=1i 1\ncpu v=2i 2",
        "input_arguments": {"k": "v"}})
    assert r.status_code == 200
    body = r.json()
    assert body["log_lines"][1] == "INFO: rows 2 {'k': 'v'}"
    assert body["database_writes"] == {"foo": ["out n=1i"]} and body["errors"] == []
    r = await client.post("/api/v3/plugin_test/schedule", json={
        "filename": "wal.py", "database": "foo"})
    assert r.status_code == 200
    assert r.json()["errors"][0].startswith("error executing plugin: the process_scheduled_call "
                                            "function is not present in the plugin.")
    r = await client.post("/api/v3/plugin_test/wal", json={
        "filename": "missing.py", "database": "foo", "input_lp": "cpu v=1i 1"})
    assert r.status_code == 500 and r.text.startswith("Plugin error: ")
    r = await client.post("/api/v3/configure/plugin_environment/install_packages",
                          json={"packages": ["x"]})
    assert (r.status_code, r.text) == (403, "Package installation has been disabled. Contact "
                                            "your administrator for more information.")


async def test_logs_are_queryable(client: httpx.AsyncClient) -> None:
    write_plugin(client, "req.py", REQUEST_PLUGIN)
    await client.post(TRIGGER_URL, json=trigger_body())
    await client.get("/api/v3/engine/custom/path")
    db = client.db  # type: ignore[attr-defined]
    rows = await wait_for(lambda: query_rows(
        db, "_internal", "SELECT trigger_name, log_level, log_text "
                         "FROM system.processing_engine_logs ORDER BY event_time"))
    assert {r["trigger_name"] for r in rows} == {"t1"}
    assert rows[0]["log_text"] == "starting execution of request plugin."


async def test_plugins_call_the_server_while_running(tmp_path: Path) -> None:
    """An alerting plugin (a WAL trigger) POSTs to a request trigger of the same server
    while it runs: nothing may wait on the other."""
    config = make_config(tmp_path)
    async with open_database(config) as db:
        await write(db, "foo", "setup v=1i")
        await _call_each_other(db, config)


async def _call_each_other(db: Database, config: ServeConfig) -> None:
    services = services_for(db)
    engine = ProcessingEngine(services, db, config, fast_options())
    await engine.start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = WeirApp(ServerState(config=config, database=db, services=services, engine=engine),
                  engine_routes(engine))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started)
        plugins = engine.files.plugin_dir
        (plugins / "notify.py").write_text(textwrap.dedent("""
            import json
            def process_request(influxdb3_local, query_parameters, request_headers,
                                request_body, args=None):
                influxdb3_local.info("alert received:", json.loads(request_body)["table"])
                return {"ok": True, "auth": "authorization" in request_headers}
            """))
        (plugins / "alert.py").write_text(textwrap.dedent(f"""
            import json, urllib.request
            def process_writes(influxdb3_local, table_batches, args=None):
                for tb in table_batches:
                    req = urllib.request.Request(
                        "http://127.0.0.1:{port}/api/v3/engine/notify",
                        data=json.dumps({{"table": tb["table_name"]}}).encode(),
                        headers={{"Authorization": "Bearer any-token",
                                  "Content-Type": "application/json"}})
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        influxdb3_local.info("notify answered", resp.read().decode())
            """))
        await engine.create_trigger(database="foo", trigger_name="notify",
                                    plugin_filename="notify.py",
                                    trigger_specification="request:notify")
        await engine.create_trigger(database="foo", trigger_name="alert",
                                    plugin_filename="alert.py", trigger_specification="all_tables")
        await write(db, "foo", "cpu v=1i")
        await wait_for(lambda: any(e.log_text == 'notify answered {"ok": true, "auth": false}'
                                   for e in engine.logs.entries("alert")))
        assert [e.log_text for e in engine.logs.entries("notify")][1] == "alert received: cpu"
    finally:
        server.should_exit = True
        await serving
        await engine.stop()
