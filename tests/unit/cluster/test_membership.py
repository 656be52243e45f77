"""Node records: the heartbeat keeps them fresh, survives a store outage, says `stopped` on a
clean stop; `read_nodes` lists every node and computes `unresponsive` from the last beat."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import replace

from support.stores import Wrapped
from weir.cluster import (
    RUNNING,
    STOPPED,
    UNRESPONSIVE,
    Heartbeat,
    NodeRecord,
    node_key,
    read_nodes,
)
from weir.errors import ObjectStoreUnavailable
from weir.objectstore import ObjectStore

S = 1_000_000_000


def record(node_id: str, state: str = RUNNING, heartbeat_ns: int | None = None) -> NodeRecord:
    now = time.time_ns()
    return NodeRecord(node_id=node_id, instance_id=uuid.uuid4().hex, modes=("query",),
                      http_address="127.0.0.1:8181", pid=os.getpid(), core_count=2,
                      started_ns=now - 10 * S, heartbeat_ns=now if heartbeat_ns is None
                      else heartbeat_ns, state=state, cli_params='{"mode":"query"}')


def test_records_round_trip_and_states_are_computed(store: ObjectStore) -> None:
    now = time.time_ns()
    fresh, stopped = record("b"), record("c", STOPPED, now - 3600 * S)
    stale = record("a", heartbeat_ns=now - 6 * S)
    for r in (fresh, stopped, stale):
        store.put(node_key("c1", r.node_id), r.to_json())
    store.put("c1/nodes/broken.json", b"{")  # skipped with a warning, never fatal
    got = read_nodes(store, "c1", now)
    assert [(r.node_id, r.state) for r in got] == [("a", UNRESPONSIVE), ("b", RUNNING),
                                                   ("c", STOPPED)]
    assert got[1] == fresh
    assert read_nodes(store, "other") == []
    # a beat 4 intervals old is still running
    assert read_nodes(store, "c1", fresh.heartbeat_ns + 4 * S)[1].state == RUNNING


def test_heartbeat_beats_then_says_stopped(store: ObjectStore) -> None:
    me = record("a")

    async def run() -> list[int]:
        hb = Heartbeat(store, "c1", me, interval_s=0.05)
        hb.beat()
        hb.start()
        beats = []
        for _ in range(4):
            await asyncio.sleep(0.08)
            [r] = read_nodes(store, "c1")
            beats.append(r.heartbeat_ns)
        await hb.stop()
        return beats

    beats = asyncio.run(run())
    assert beats == sorted(beats) and len(set(beats)) >= 3
    [r] = read_nodes(store, "c1")
    assert r.state == STOPPED and r.instance_id == me.instance_id and r.modes == ("query",)


class Outage(Wrapped):
    """A real store that can be taken away (puts fail as an unreachable S3 would)."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.down = False

    def put(self, path: str, data: bytes) -> None:
        if self.down:
            raise ObjectStoreUnavailable("the object store is unavailable: connection refused")
        self.inner.put(path, data)


def test_heartbeat_outlives_a_store_outage(store: ObjectStore, caplog) -> None:  # type: ignore[no-untyped-def]
    flaky = Outage(store)
    me = record("a")

    async def run() -> None:
        hb = Heartbeat(flaky, "c1", me, interval_s=0.05)
        hb.beat()
        hb.start()
        flaky.down = True
        await asyncio.sleep(0.3)
        before = read_nodes(store, "c1")[0].heartbeat_ns
        flaky.down = False
        await asyncio.sleep(0.2)
        assert read_nodes(store, "c1")[0].heartbeat_ns > before
        await hb.stop()

    asyncio.run(run())
    warnings = [r for r in caplog.records if "cannot write this node's heartbeat" in r.message]
    assert len(warnings) == 1  # once per outage, not once per beat
    assert read_nodes(store, "c1")[0].state == STOPPED


def test_stop_during_an_outage_is_quiet(store: ObjectStore) -> None:
    flaky = Outage(store)

    async def run() -> None:
        hb = Heartbeat(flaky, "c1", record("a"), interval_s=0.05)
        hb.beat()
        hb.start()
        flaky.down = True
        await hb.stop()  # logs, does not raise

    asyncio.run(run())
    assert read_nodes(store, "c1")[0].state == RUNNING  # the last beat that got through


def test_set_state(store: ObjectStore) -> None:
    hb = Heartbeat(store, "c1", replace(record("a"), state="starting"))
    hb.beat()
    assert read_nodes(store, "c1")[0].state == "starting"
    hb.set_state(RUNNING)
    hb.beat()
    assert read_nodes(store, "c1")[0].state == RUNNING
