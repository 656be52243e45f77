"""The compactor lease: of a cluster's compact-mode nodes, one compacts at a time.

The lease is one object, `<cluster id>/compactor-lease.json`, naming its holder and when
it expires. It changes hands only through the store's conditional writes: put-if-absent
while nobody ever held it, if-match (on the version just read) to renew it or to take
over an expired one, so of nodes racing for it exactly one wins.

Expiry is the holder's clock plus `ttl_s`, read by the others against theirs: the holder
stops counting itself as holder (`held`) a third of the ttl before the expiry, so a
clock skew or a slow renewal shorter than that never lets two nodes compact at once.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from weir.objectstore import ObjectStore

log = logging.getLogger("weir.cluster")


def lease_key(cluster_id: str) -> str:
    return f"{cluster_id}/compactor-lease.json"


@dataclass(frozen=True)
class LeaseRecord:
    holder: str
    acquired_ns: int
    expires_ns: int

    def to_json(self) -> bytes:
        return json.dumps({"holder": self.holder, "acquired_ns": self.acquired_ns,
                           "expires_ns": self.expires_ns}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LeaseRecord | None:
        """None for what is not a lease (it is then taken over as if expired)."""
        try:
            doc: Any = json.loads(data)
            return cls(str(doc["holder"]), int(doc["acquired_ns"]), int(doc["expires_ns"]))
        except (ValueError, KeyError, TypeError):
            return None


class CompactorLease:
    """This node's view of the lease. Every method does blocking store calls: run them off
    the event loop. Store errors (ObjectStoreUnavailable, OSError) propagate from
    `acquire_or_renew`; `held` then turns False by itself once the margin is reached."""

    def __init__(self, store: ObjectStore, cluster_id: str, node_id: str,
                 ttl_s: float = 30.0) -> None:
        if ttl_s <= 0:
            raise ValueError("the lease's ttl must be positive")
        self.store = store
        self.cluster_id = cluster_id
        self.node_id = node_id
        self.ttl_ns = int(ttl_s * 1e9)
        #: held until this (ns, our clock): the expiry we wrote less the safety margin
        self._held_until_ns: int | None = None

    @property
    def key(self) -> str:
        return lease_key(self.cluster_id)

    def acquire_or_renew(self, now_ns: int | None = None) -> bool:
        """Take the lease if it is free or expired, renew it if it is ours; True if this
        node holds it now."""
        now = time.time_ns() if now_ns is None else now_ns
        try:
            etag = self.store.etag(self.key)
        except FileNotFoundError:
            return self._won(self.store.put_if_absent(self.key, self._record(now, now)), now)
        try:
            # read after the tag: content newer than the tag fails the put below, safely
            current = LeaseRecord.from_json(self.store.get(self.key))
        except FileNotFoundError:
            return self._won(False, now)
        ours = current is not None and current.holder == self.node_id
        if current is not None and not ours and current.expires_ns > now:
            return self._won(False, now)  # someone else's, live
        acquired = current.acquired_ns if current is not None and ours else now
        ok = self.store.put_if_match(self.key, self._record(acquired, now), etag)
        if ok and current is not None and not ours:
            log.info("compactor lease taken over from %s (expired %.1fs ago)",
                     current.holder, (now - current.expires_ns) / 1e9)
        return self._won(ok, now)

    def held(self, now_ns: int | None = None) -> bool:
        """This node holds the lease and is not yet within the safety margin (a third of the
        ttl) of the expiry it last wrote."""
        now = time.time_ns() if now_ns is None else now_ns
        return self._held_until_ns is not None and now < self._held_until_ns

    def holder(self, now_ns: int | None = None) -> str | None:
        """The node holding a live lease, None if nobody does."""
        now = time.time_ns() if now_ns is None else now_ns
        try:
            current = LeaseRecord.from_json(self.store.get(self.key))
        except FileNotFoundError:
            return None
        return current.holder if current is not None and current.expires_ns > now else None

    def release(self, now_ns: int | None = None) -> None:
        """Give the lease up at once (on shutdown), so another node need not wait out the
        ttl. Best effort: a failure is logged, and the lease then expires by itself."""
        now = time.time_ns() if now_ns is None else now_ns
        self._held_until_ns = None
        try:
            etag = self.store.etag(self.key)
            current = LeaseRecord.from_json(self.store.get(self.key))
            if current is None or current.holder != self.node_id:
                return
            self.store.put_if_match(
                self.key, LeaseRecord(self.node_id, current.acquired_ns, now).to_json(), etag)
        except FileNotFoundError:
            return
        except Exception as e:  # noqa: BLE001 - shutdown goes on; the lease expires anyway
            log.warning("could not release the compactor lease (%s): %s", self.key, e)

    def _record(self, acquired_ns: int, now_ns: int) -> bytes:
        return LeaseRecord(self.node_id, acquired_ns, now_ns + self.ttl_ns).to_json()

    def _won(self, ok: bool, now_ns: int) -> bool:
        self._held_until_ns = now_ns + self.ttl_ns - self.ttl_ns // 3 if ok else None
        return ok
