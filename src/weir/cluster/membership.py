"""Who is in the cluster: each node's record in the bucket, rewritten every heartbeat.

A node of cluster C writes `C/nodes/<node id>.json` once a second (`HEARTBEAT_INTERVAL_S`)
with what the others need to know of it (its modes, HTTP address, process) and the time
of the beat; on a clean shutdown it writes its record once more as `stopped`. Nothing
else tells the nodes apart, so a record whose last beat is older than a few intervals is
read as `unresponsive` (the node died without saying so, or cannot reach the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from weir.objectstore import ObjectStore

log = logging.getLogger("weir.cluster")

#: how often a node rewrites its record
HEARTBEAT_INTERVAL_S = 1.0
#: beats missed before a running node reads as unresponsive
MISSED_BEATS_UNRESPONSIVE = 5

#: the states a record is written with; `unresponsive` is only ever computed on reading
STARTING, RUNNING, STOPPED, UNRESPONSIVE = "starting", "running", "stopped", "unresponsive"
_LIVE = (STARTING, RUNNING)


def nodes_prefix(cluster_id: str) -> str:
    return f"{cluster_id}/nodes/"


def node_key(cluster_id: str, node_id: str) -> str:
    return f"{nodes_prefix(cluster_id)}{node_id}.json"


@dataclass(frozen=True)
class NodeRecord:
    """One node as it last described itself. Times are Unix nanoseconds."""

    node_id: str
    #: a fresh uuid per process: tells a restarted node, or an impostor, from the last one
    instance_id: str
    modes: tuple[str, ...]
    #: where its HTTP API listens (`--http-bind`)
    http_address: str
    pid: int
    core_count: int
    started_ns: int
    heartbeat_ns: int
    state: str
    #: its `serve` options as system.nodes shows them (a JSON object, secrets redacted by
    #: the writer); None from a node that did not record them
    cli_params: str | None = None

    def live(self) -> bool:
        """Starting or running (not stopped, not unresponsive)."""
        return self.state in _LIVE

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> NodeRecord:
        """Raises ValueError for what is not a node record."""
        try:
            doc: Any = json.loads(data)
            return cls(node_id=str(doc["node_id"]), instance_id=str(doc["instance_id"]),
                       modes=tuple(str(m) for m in doc["modes"]),
                       http_address=str(doc.get("http_address", "")),
                       pid=int(doc.get("pid", 0)), core_count=int(doc.get("core_count", 0)),
                       started_ns=int(doc["started_ns"]), heartbeat_ns=int(doc["heartbeat_ns"]),
                       state=str(doc["state"]),
                       cli_params=(str(doc["cli_params"])
                                   if doc.get("cli_params") is not None else None))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"not a node record: {e}") from None

    def as_read(self, now_ns: int) -> NodeRecord:
        """The record as others see it at `now_ns`: a live node whose last beat is older
        than `MISSED_BEATS_UNRESPONSIVE` intervals is unresponsive."""
        stale = now_ns - self.heartbeat_ns > MISSED_BEATS_UNRESPONSIVE * HEARTBEAT_INTERVAL_S * 1e9
        return replace(self, state=UNRESPONSIVE) if self.live() and stale else self


def read_node(store: ObjectStore, cluster_id: str, node_id: str) -> NodeRecord | None:
    """`node_id`'s record as written (no unresponsive computed), None if it has none."""
    try:
        return NodeRecord.from_json(store.get(node_key(cluster_id, node_id)))
    except FileNotFoundError:
        return None


def read_nodes(store: ObjectStore, cluster_id: str, now_ns: int | None = None) -> list[NodeRecord]:
    """Every node that ever joined `cluster_id`, by node id, with its state as of `now_ns`
    (default now). A record that cannot be read is skipped with a warning."""
    now = time.time_ns() if now_ns is None else now_ns
    out: list[NodeRecord] = []
    for key in store.list(nodes_prefix(cluster_id)):
        if not key.endswith(".json"):
            continue
        try:
            record = NodeRecord.from_json(store.get(key))
        except FileNotFoundError:  # removed between the listing and the read
            continue
        except ValueError as e:
            log.warning("skipping the node record %s: %s", key, e)
            continue
        out.append(record.as_read(now))
    return sorted(out, key=lambda r: r.node_id)


class Heartbeat:
    """Keeps this node's record fresh: `beat()` writes it once (blocking), `start()` runs a
    task that beats every interval, `stop()` ends the task and writes the record `stopped`.

    A beat that fails (the store is away) is logged and tried again at the next interval:
    the node keeps serving, and others see it unresponsive until the store is back."""

    def __init__(self, store: ObjectStore, cluster_id: str, record: NodeRecord,
                 interval_s: float = HEARTBEAT_INTERVAL_S) -> None:
        self.store = store
        self.cluster_id = cluster_id
        self.record = record
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    @property
    def key(self) -> str:
        return node_key(self.cluster_id, self.record.node_id)

    def set_state(self, state: str) -> None:
        """What the next beat says (starting -> running once the node serves)."""
        self.record = replace(self.record, state=state)

    def beat(self, now_ns: int | None = None) -> None:
        """Write the record with this beat's time (blocking: run it off the event loop)."""
        self.record = replace(self.record,
                              heartbeat_ns=time.time_ns() if now_ns is None else now_ns)
        self.store.put(self.key, self.record.to_json())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="cluster-heartbeat")

    async def beat_now(self) -> None:
        """One beat off the event loop; a failure is logged (once per outage), not raised."""
        try:
            await asyncio.to_thread(self.beat)
        except Exception as e:  # noqa: BLE001 - a heartbeat never stops the server
            if not self._failing:
                log.warning("cannot write this node's heartbeat (%s): %s; trying again "
                            "every %gs", self.key, e, self.interval_s)
            self._failing = True
        else:
            if self._failing:
                log.info("this node's heartbeat is written again (%s)", self.key)
            self._failing = False

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.beat_now()

    async def stop(self) -> None:
        """End the beats and say `stopped` (best effort: a store that is away keeps the
        last beat, and the node reads as unresponsive once it is old)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.set_state(STOPPED)
        try:
            await asyncio.to_thread(self.beat)
        except Exception as e:  # noqa: BLE001 - shutdown goes on
            log.warning("cannot record this node as stopped (%s): %s", self.key, e)

