"""Joining a cluster at start-up, before the database opens anything in the bucket.

Three things are settled first, each with the store's conditional writes only:
1. the store keeps them at all: a short race of a few writers on put-if-absent and on
   if-match must have exactly one winner (`weir.objectstore.check`). Many S3 look-alikes
   accept the headers and ignore them; nodes on such a store would overwrite each other's
   catalog, so the node refuses to start instead;
2. the bucket belongs to this cluster: its root holds `weir-cluster.json`, written once
   by the first node of the first cluster to use it; a node of another cluster id stops;
3. this node id is free: no other process of it is beating (a fresh `starting`/`running`
   record of another instance). A record that is fresh but no longer beats (the last
   process was killed a moment ago) is watched for two beats before it is taken over, so a
   restart after a crash is not refused while a second process of a running node is.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from weir.cluster.membership import (
    HEARTBEAT_INTERVAL_S,
    NodeRecord,
    node_key,
)
from weir.errors import ClusterRefused
from weir.objectstore import ObjectStore
from weir.objectstore.check import check_store

#: the bucket-root object naming the cluster the bucket belongs to
MARKER_KEY = "weir-cluster.json"
#: writers racing in the start-up check: two show a store that lets both win, and keep
#: the check short (SeaweedFS holds a losing conditional writer for up to a second)
CHECK_WRITERS = 2


class ClusterIdMismatch(ClusterRefused):
    def __init__(self, cluster_id: str, bucket_cluster_id: str, created_by: str) -> None:
        super().__init__(
            f"this object store belongs to cluster {bucket_cluster_id!r} (created by node "
            f"{created_by!r}), not to cluster {cluster_id!r}: start the node with "
            f"--cluster-id {bucket_cluster_id}, or give cluster {cluster_id!r} its own bucket "
            "or data directory")
        self.cluster_id = cluster_id
        self.bucket_cluster_id = bucket_cluster_id


class NodeIdInUse(ClusterRefused):
    def __init__(self, node_id: str, cluster_id: str, detail: str) -> None:
        super().__init__(f"node id {node_id!r} is in use by a running node of cluster "
                         f"{cluster_id!r} ({detail}); give this node another --node-id, or "
                         "stop the other one first")
        self.node_id = node_id


class ObjectStoreUnsafe(ClusterRefused):
    """The store does not keep the conditional writes (or cannot be reached to show it)."""


def join_cluster(store: ObjectStore, cluster_id: str, me: NodeRecord,
                 watch_s: float = 2.5 * HEARTBEAT_INTERVAL_S) -> None:
    """Everything a node settles before it starts (blocking: run it in a thread). On
    return the bucket is this cluster's and `me` is written as this node's record."""
    check_conditional_writes(store)
    claim_bucket(store, cluster_id, me.node_id)
    claim_node_id(store, cluster_id, me, watch_s=watch_s)


def check_conditional_writes(store: ObjectStore, writers: int = CHECK_WRITERS) -> None:
    """One round of the object-store check with a few writers; raises ObjectStoreUnsafe
    naming the checks that failed."""
    failed = [r for r in check_store(store, writers=writers, rounds=1) if not r.ok]
    if failed:
        raise ObjectStoreUnsafe(
            "the object store does not keep the conditional writes cluster nodes coordinate "
            "by (many S3-compatible stores accept and ignore If-None-Match and If-Match), so "
            "this node will not start: "
            + "; ".join(f"{r.check}: {r.detail}" for r in failed)
            + ". `influxdb3 debug object-store-check` runs the full check")


def claim_bucket(store: ObjectStore, cluster_id: str, node_id: str,
                 now_ns: int | None = None) -> None:
    """Mark the bucket as `cluster_id`'s if it is nobody's yet; ClusterIdMismatch if it is
    another cluster's."""
    marker = {"cluster_id": cluster_id,
              "created_ns": time.time_ns() if now_ns is None else now_ns,
              "created_by": node_id}
    if store.put_if_absent(MARKER_KEY, json.dumps(marker).encode()):
        return
    data = store.get(MARKER_KEY)
    try:
        doc: Any = json.loads(data)
        theirs, created_by = str(doc["cluster_id"]), str(doc.get("created_by", "?"))
    except (ValueError, KeyError, TypeError) as e:
        raise ClusterRefused(f"the object store's {MARKER_KEY} is not a Weir cluster marker "
                             f"({e}); it names the cluster the store belongs to") from None
    if theirs != cluster_id:
        raise ClusterIdMismatch(cluster_id, theirs, created_by)


def claim_node_id(store: ObjectStore, cluster_id: str, me: NodeRecord,
                  watch_s: float = 2.5 * HEARTBEAT_INTERVAL_S) -> None:
    """Write `me` as the node's record unless another process of the node is alive
    (NodeIdInUse). The write is conditional on what was read, so of two processes
    starting at once with one node id, one is refused."""
    key = node_key(cluster_id, me.node_id)

    def refused(detail: str) -> NodeIdInUse:
        return NodeIdInUse(me.node_id, cluster_id, detail)

    def mine() -> bytes:
        return replace(me, heartbeat_ns=time.time_ns()).to_json()

    try:
        etag = store.etag(key)  # (the tag before the content: a change between them is
    except FileNotFoundError:   # seen as a failed put_if_match, never missed)
        if not store.put_if_absent(key, mine()):
            raise refused("another process of it started at the same moment") from None
        return
    try:
        current: NodeRecord | None = NodeRecord.from_json(store.get(key))
    except (FileNotFoundError, ValueError):
        current = None  # gone or unreadable: the conditional put below decides
    if (current is not None and current.instance_id != me.instance_id
            and current.as_read(time.time_ns()).live()):
        # fresh and live: does it still beat?
        time.sleep(watch_s)
        try:
            beating = store.etag(key) != etag
        except FileNotFoundError:
            beating = True  # (removed by someone: not ours to take)
        if beating:
            latest = _read_quietly(store, key) or current
            raise refused(f"pid {latest.pid} at {latest.http_address or 'no address'}, its "
                          f"last heartbeat {_ago(latest.heartbeat_ns)}")
    if not store.put_if_match(key, mine(), etag):
        raise refused("its record changed while this node was starting")


def _ago(ns: int) -> str:
    return f"{max(0.0, (time.time_ns() - ns) / 1e9):.1f}s ago"


def _read_quietly(store: ObjectStore, key: str) -> NodeRecord | None:
    try:
        return NodeRecord.from_json(store.get(key))
    except (FileNotFoundError, ValueError):
        return None
