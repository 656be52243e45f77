"""Joining a cluster: the store's conditional writes are checked, the bucket's cluster
marker is claimed or refused, and a node id that a live process beats for is refused."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from dataclasses import replace

import pytest

from support.stores import Wrapped
from weir.cluster import (
    MARKER_KEY,
    RUNNING,
    STARTING,
    ClusterIdMismatch,
    Heartbeat,
    NodeIdInUse,
    NodeRecord,
    ObjectStoreUnsafe,
    join_cluster,
    read_node,
)
from weir.errors import ClusterRefused
from weir.objectstore import ObjectStore


def record(node_id: str = "a", state: str = STARTING) -> NodeRecord:
    now = time.time_ns()
    return NodeRecord(node_id=node_id, instance_id=uuid.uuid4().hex, modes=("ingest", "query"),
                      http_address="127.0.0.1:8181", pid=os.getpid(), core_count=2,
                      started_ns=now, heartbeat_ns=now, state=state,
                      cli_params='{"node-id":"a"}')


class IgnoresConditions(Wrapped):
    """A real store behind an S3 look-alike's manners: conditional writes are accepted and
    done unconditionally (every racing writer "wins")."""

    def put_if_absent(self, path: str, data: bytes) -> bool:
        self.inner.put(path, data)
        return True

    def put_if_match(self, path: str, data: bytes, etag: str) -> bool:
        self.inner.put(path, data)
        return True


def test_first_node_marks_the_bucket_and_writes_its_record(store: ObjectStore) -> None:
    me = record("a")
    join_cluster(store, "c1", me)
    marker = json.loads(store.get(MARKER_KEY))
    assert marker["cluster_id"] == "c1" and marker["created_by"] == "a"
    assert abs(marker["created_ns"] - time.time_ns()) < 60 * 10**9
    written = read_node(store, "c1", "a")
    assert written is not None and written.instance_id == me.instance_id
    join_cluster(store, "c1", record("b"))  # a second node of the same cluster joins
    assert json.loads(store.get(MARKER_KEY))["created_by"] == "a"
    # nothing of the store check is left behind
    assert store.list("weir-object-store-check/") == []


def test_another_cluster_id_is_refused_naming_both(store: ObjectStore) -> None:
    join_cluster(store, "c1", record("a"))
    with pytest.raises(ClusterIdMismatch) as e:
        join_cluster(store, "c2", record("b"))
    assert "'c1'" in str(e.value) and "'c2'" in str(e.value)
    assert isinstance(e.value, ClusterRefused)
    assert read_node(store, "c2", "b") is None


def test_a_store_ignoring_conditional_writes_is_refused(store: ObjectStore) -> None:
    with pytest.raises(ObjectStoreUnsafe) as e:
        join_cluster(IgnoresConditions(store), "c1", record("a"))
    message = str(e.value)
    assert "conditional writes" in message and "writers created the same object" in message
    assert not store.exists(MARKER_KEY)


def test_the_check_is_quick(store: ObjectStore) -> None:
    t0 = time.monotonic()
    join_cluster(store, "c1", record("a"))
    assert time.monotonic() - t0 < 1.0


def test_a_node_id_that_beats_is_refused(store: ObjectStore) -> None:
    running = record("a", RUNNING)
    join_cluster(store, "c1", running)

    async def beat_while_another_joins() -> None:
        heartbeat = Heartbeat(store, "c1", running, interval_s=0.1)
        heartbeat.start()
        try:
            with pytest.raises(NodeIdInUse) as e:
                await asyncio.to_thread(join_cluster, store, "c1", record("a"), 0.3)
            assert "node id 'a' is in use by a running node" in str(e.value)
        finally:
            await heartbeat.stop()

    asyncio.run(beat_while_another_joins())
    after = read_node(store, "c1", "a")
    assert after is not None and after.instance_id == running.instance_id
    assert after.state == "stopped"


def test_a_fresh_record_that_no_longer_beats_is_taken_over(store: ObjectStore) -> None:
    """A node killed a moment ago (no `stopped`, a fresh heartbeat) restarts at once."""
    join_cluster(store, "c1", record("a", RUNNING))
    again = record("a")
    t0 = time.monotonic()
    join_cluster(store, "c1", again, watch_s=0.3)
    assert time.monotonic() - t0 >= 0.3
    assert read_node(store, "c1", "a").instance_id == again.instance_id  # type: ignore[union-attr]


def test_a_stopped_or_stale_record_is_taken_over_without_waiting(store: ObjectStore) -> None:
    store.put("c1/nodes/a.json", replace(record("a"), state="stopped").to_json())
    join_cluster(store, "c1", record("a"), watch_s=30)  # would time the test out if it waited
    old = time.time_ns() - 60 * 10**9
    store.put("c1/nodes/b.json", replace(record("b"), heartbeat_ns=old, state=RUNNING).to_json())
    join_cluster(store, "c1", record("b"), watch_s=30)


def test_join_on_s3(s3_store: ObjectStore) -> None:
    t0 = time.monotonic()
    join_cluster(s3_store, "c1", record("a"))
    assert time.monotonic() - t0 < 2.0
    with pytest.raises(ClusterIdMismatch):
        join_cluster(s3_store, "c2", record("b"))
    with pytest.raises(ObjectStoreUnsafe):
        join_cluster(IgnoresConditions(s3_store), "c1", record("c"))
