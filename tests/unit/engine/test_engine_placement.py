"""Which triggers an engine runs on its node (node specs, process and ingest modes), and
`sync_with_catalog` after the catalog changed behind the engine's back, as another node
of a cluster changes it. A real database on the memory object store, real workers."""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from support.inprocess import (
    make_config,
    open_database,
    query_rows,
    running_engine,
    wait_for,
    write,
)
from weir.catalog import Catalog, TriggerDefinition
from weir.database import Database
from weir.engine import ProcessingEngine
from weir.engine.node_spec import InvalidNodeSpec
from weir.errors import AlreadyExists

pytestmark = pytest.mark.anyio

TICK = """
def process_scheduled_call(influxdb3_local, call_time, args=None):
    influxdb3_local.info("tick")
"""
ECHO = """
def process_request(influxdb3_local, query_parameters, request_headers, request_body,
                    args=None):
    return {"ok": True}
"""
WRITES = """
def process_writes(influxdb3_local, table_batches, args=None):
    influxdb3_local.info("saw writes")

def process_parquet_persist(influxdb3_local, persisted_files, args=None):
    influxdb3_local.info("saw files")
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def node(tmp_path: Path, **config: Any) -> AsyncIterator[tuple[Database, ProcessingEngine]]:
    """A database with the database `foo` and the three plugins, and an engine over it,
    on a node configured with `config` (node_id, modes). The engine decides by node id
    and modes alone, so these single-store nodes stand for cluster nodes (the memory
    store holds no cluster: `serve` refuses that combination)."""
    async with open_database(make_config(tmp_path, **config)) as db:
        await write(db, "foo", "setup,host=a v=1i")
        for name, code in (("tick.py", TICK), ("echo.py", ECHO), ("writes.py", WRITES)):
            (db.config.plugin_dir / name).write_text(textwrap.dedent(code))  # type: ignore[operator]
        async with running_engine(db) as engine:
            yield db, engine


async def create(engine: ProcessingEngine, name: str, plugin: str, spec: str,
                 **kw: Any) -> TriggerDefinition:
    return await engine.create_trigger(database="foo", trigger_name=name,
                                       plugin_filename=plugin, trigger_specification=spec,
                                       **kw)


def ticks(engine: ProcessingEngine, name: str) -> int:
    return sum(1 for e in engine.logs.entries(name) if e.log_text == "tick")


def not_run_warnings(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and f"not running trigger {name} " in r.getMessage()]


# ---- a single (Core) node -----------------------------------------------------------------


async def test_single_node_runs_all_and_its_own_name_not_others(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "weir.engine")
    async with node(tmp_path, node_id="n1") as (db, engine):
        await create(engine, "plain", "tick.py", "every:50ms")
        mine = await create(engine, "mine", "tick.py", "every:50ms", node_spec="nodes:n0, n1")
        other = await create(engine, "other", "tick.py", "every:50ms", node_spec="nodes:n2")
        assert mine.node_spec == "nodes:n0,n1" and other.node_spec == "nodes:n2"
        assert engine.running("foo", "plain") and engine.running("foo", "mine")
        await wait_for(lambda: ticks(engine, "mine") >= 2 and ticks(engine, "plain") >= 2)
        # the other node's trigger is stored and managed as any, only not run here
        assert not engine.running("foo", "other") and ticks(engine, "other") == 0
        assert db.catalog.get_trigger("foo", "other").node_spec == "nodes:n2"
        assert not_run_warnings(caplog, "other") == [
            "not running trigger other of database foo on this node: its node spec "
            "'nodes:n2' does not name this node (n1)"]
        await engine.disable_trigger("foo", "other")
        await engine.enable_trigger("foo", "other")
        await engine.sync_with_catalog()
        assert not engine.running("foo", "other")
        assert len(not_run_warnings(caplog, "other")) == 1  # once per trigger
        rows = await query_rows(db, "foo", "SELECT trigger_name, node_spec FROM "
                                           "system.processing_engine_triggers "
                                           "ORDER BY trigger_name")
        assert rows == [{"trigger_name": "mine", "node_spec": "nodes:n0,n1"},
                        {"trigger_name": "other", "node_spec": "nodes:n2"},
                        {"trigger_name": "plain", "node_spec": "all"}]
        await engine.delete_trigger("foo", "other", force=True)
        assert [t.trigger_name for t in db.catalog.triggers("foo")] == ["plain", "mine"]


async def test_a_bad_node_spec_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    async with node(tmp_path) as (db, engine):
        for bad in ("some", "nodes:", "nodes:a,,b", "nodes"):
            with pytest.raises(InvalidNodeSpec, match=f"unsupported node spec format {bad!r}"):
                await create(engine, "t", "tick.py", "every:1s", node_spec=bad)
        assert db.catalog.triggers("foo") == []


async def test_request_to_a_trigger_of_other_nodes_is_404_naming_them(tmp_path: Path) -> None:
    async with node(tmp_path, node_id="n1") as (_db, engine):
        await create(engine, "far", "echo.py", "request:far", node_spec="nodes:n2,n3")
        reply = await engine.handle_request("far", {}, {}, b"")
        assert reply.status == 404
        assert json.loads(reply.body) == {"error": (
            "request trigger 'far' of database 'foo' does not run on this node (n1): its node "
            "spec 'nodes:n2,n3' does not name this node (n1); it runs on nodes n2, n3")}
        assert not engine.serves_request("far")
        # its path is still taken, cluster-wide
        with pytest.raises(Exception, match="already used by trigger 'far'"):
            await create(engine, "near", "echo.py", "request:far")
        # a path nobody has: the reference's answer, unchanged
        assert (await engine.handle_request("nothing", {}, {}, b"")).body == b'{error: "not found"}'
        await create(engine, "here", "echo.py", "request:here", node_spec="nodes:n1")
        assert (await engine.handle_request("here", {}, {}, b"")).status == 200


# ---- modes ----------------------------------------------------------------------------------


async def test_a_node_without_process_mode_runs_no_trigger(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "weir.engine")
    async with node(tmp_path, node_id="n1",
                    modes=frozenset({"ingest", "query"})) as (db, engine):
        await create(engine, "sched", "tick.py", "every:50ms")
        await create(engine, "req", "echo.py", "request:req")
        assert not engine.running("foo", "sched") and not engine.running("foo", "req")
        assert not_run_warnings(caplog, "sched") == [
            "not running trigger sched of database foo on this node: this node (n1) is not in "
            "process mode (its modes: ingest,query)"]
        reply = await engine.handle_request("req", {}, {}, b"")
        assert reply.status == 404 and b"runs on every process node" in reply.body
        assert {t.trigger_name for t in db.catalog.triggers("foo")} == {"sched", "req"}
        await asyncio.sleep(0.2)
        assert ticks(engine, "sched") == 0


async def test_a_process_only_node_runs_schedules_and_requests_not_wal_triggers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "weir.engine")
    async with node(tmp_path, node_id="p1",
                    modes=frozenset({"process"})) as (db, engine):
        await create(engine, "sched", "tick.py", "every:50ms")
        await create(engine, "req", "echo.py", "request:req")
        await create(engine, "wal", "writes.py", "all_tables")
        await create(engine, "pq", "writes.py", "parquet:all_tables")
        assert engine.running("foo", "sched") and engine.running("foo", "req")
        assert not engine.running("foo", "wal") and not engine.running("foo", "pq")
        assert "is not in ingest mode" in not_run_warnings(caplog, "wal")[0]
        await write(db, "foo", "cpu,host=a usage=1")
        await wait_for(lambda: ticks(engine, "sched") >= 1)
        assert not [e for e in engine.logs.entries("wal") if e.log_text == "saw writes"]


# ---- catalog changes made elsewhere -------------------------------------------------------


def defn(name: str, spec: str = "every:50ms", **kw: Any) -> TriggerDefinition:
    plugin = kw.pop("plugin_filename", "tick.py")
    return TriggerDefinition(trigger_name=name, plugin_filename=plugin, database="foo",
                             trigger_specification=spec, **kw)


async def test_sync_starts_and_stops_what_changed_and_leaves_the_rest(tmp_path: Path) -> None:
    async with node(tmp_path, node_id="n1") as (db, engine):
        await create(engine, "steady", "tick.py", "every:50ms")
        steady = engine._runners[("foo", "steady")]
        catalog = db.catalog  # as another node's change arrives: in the catalog only
        catalog.create_trigger(defn("new"))
        catalog.create_trigger(defn("pinned_here", node_spec="nodes:n1"))
        catalog.create_trigger(defn("pinned_there", node_spec="nodes:n2"))
        catalog.create_trigger(defn("off", disabled=True))
        await engine.sync_with_catalog()
        assert {k[1] for k in engine._runners} == {"steady", "new", "pinned_here"}
        await wait_for(lambda: ticks(engine, "new") >= 1)
        catalog.set_trigger_disabled("foo", "new", True)
        catalog.set_trigger_disabled("foo", "off", False)
        await engine.sync_with_catalog()
        assert {k[1] for k in engine._runners} == {"steady", "off", "pinned_here"}
        catalog.delete_trigger("foo", "pinned_here", force=True)
        # deleted and made again with other arguments: the running one is replaced
        catalog.delete_trigger("foo", "off", force=True)
        catalog.create_trigger(defn("off", trigger_arguments={"v": "2"}))
        await engine.sync_with_catalog()
        assert {k[1] for k in engine._runners} == {"steady", "off"}
        assert engine._runners[("foo", "off")].defn.trigger_arguments == {"v": "2"}
        await engine.sync_with_catalog()  # nothing changed: nothing moves
        assert engine._runners[("foo", "steady")] is steady and not steady.stopping


async def test_sync_is_safe_concurrently_with_itself_and_the_api(tmp_path: Path) -> None:
    async with node(tmp_path, node_id="n1") as (db, engine):
        catalog = db.catalog
        for i in range(4):
            catalog.create_trigger(defn(f"t{i}"))
        await asyncio.gather(*(engine.sync_with_catalog() for _ in range(3)),
                             engine.disable_trigger("foo", "t0"),
                             create(engine, "made", "tick.py", "every:50ms"))
        await engine.sync_with_catalog()
        assert {k[1] for k in engine._runners} == {"t1", "t2", "t3", "made"}
        catalog.set_trigger_disabled("foo", "t1", True)
        await asyncio.gather(engine.sync_with_catalog(), engine.enable_trigger("foo", "t1"),
                             engine.sync_with_catalog(), engine.enable_trigger("foo", "t0"))
        await engine.sync_with_catalog()
        assert {k[1] for k in engine._runners} == {"t0", "t1", "t2", "t3", "made"}
        # one worker each: nothing was started twice
        assert len({id(r) for r in engine._runners.values()}) == 5
        with pytest.raises(AlreadyExists):
            await create(engine, "made", "tick.py", "every:50ms")
        await engine.stop()
        await engine.sync_with_catalog()  # after stop: a no-op
        assert engine._runners == {}


async def test_sync_after_another_nodes_catalog_change_arrives(tmp_path: Path) -> None:
    """Another node's Catalog on the same store writes the changes; this node's catalog
    takes them in with refresh() and its listener has the engine sync."""
    async with node(tmp_path, node_id="n1") as (db, engine):
        await create(engine, "steady", "tick.py", "every:50ms")
        steady = engine._runners[("foo", "steady")]
        other = Catalog(db.catalog.store, "n2", prefix=db.catalog.prefix)
        other.load()
        synced: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()
        db.catalog.add_change_listener(lambda: loop.call_soon_threadsafe(
            lambda: synced.append(loop.create_task(engine.sync_with_catalog()))))
        other.create_trigger(defn("theirs_for_us", node_spec="nodes:n1"))
        other.create_trigger(defn("theirs_for_them", node_spec="nodes:n2"))
        other.set_trigger_disabled("foo", "steady", True)
        assert await asyncio.to_thread(db.catalog.refresh)
        await wait_for(lambda: synced)
        await asyncio.gather(*synced)
        assert {k[1] for k in engine._runners} == {"theirs_for_us"}
        assert steady.stopping
        await wait_for(lambda: ticks(engine, "theirs_for_us") >= 1)
