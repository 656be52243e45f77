"""The cluster's one compactor: the node holding the compactor lease compacts every
ingest node's files.

Each ingest node keeps its own manifest; the compactor publishes into it too (a shared
`PersistedIndex`: whoever loses the race for a version loads the newest and applies its
change again). Its outputs go under `<cluster>/compacted/<node>/`, a folder no ingest
node cleans up, and the inputs it replaces are deleted only after the longest query any
node may still be running over an older manifest (`delete_delay_s`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Protocol

from weir.persist import PersistedIndex
from weir.persist.compactor import Compactor

log = logging.getLogger("weir.nodes")


class Lease(Protocol):
    """The compactor lease (weir.cluster.lease.CompactorLease)."""

    def acquire_or_renew(self, now_ns: int | None = None) -> bool: ...

    def held(self, now_ns: int | None = None) -> bool: ...


#: makes the compactor of one node's manifest: (node id, its index, output prefix,
#: may_publish, oldest_query) -> Compactor
MakeCompactor = Callable[[str, PersistedIndex, str, Callable[[], bool],
                          Callable[[], float | None]], Compactor]


class ClusterCompaction:
    def __init__(self, *, cluster_id: str, own_node_id: str, own_index: Callable[[], PersistedIndex],
                 lease: Lease, ingest_nodes: Callable[[], list[str]],
                 make_compactor: MakeCompactor) -> None:
        self.cluster_id = cluster_id
        self.own_node_id = own_node_id
        self._own_index = own_index
        self.lease = lease
        self._ingest_nodes = ingest_nodes
        self._make = make_compactor
        self.compactors: dict[str, Compactor] = {}
        self._held = False
        self._swept = False

    def run_once(self, expire: bool = True) -> int:
        """With the lease, one pass over every ingest node's files; jobs run."""
        held = self.lease.acquire_or_renew()
        if held != self._held:
            log.info("compactor lease %s", "taken: this node compacts the cluster's files"
                     if held else "lost or held by another node")
            self._held = held
            self._swept = False  # (each time it is taken: see _sweep_leftovers)
        if not held:
            return 0
        if not self._swept:
            self._sweep_leftovers()
        jobs = 0
        for node_id in self._ingest_nodes():
            if not self.lease.acquire_or_renew():  # (a long pass keeps renewing it)
                break
            compactor = self._compactor(node_id)
            if node_id != self.own_node_id:
                compactor.index.refresh(compactor.store, node_id)
            jobs += compactor.run_once(expire=expire)
        # inputs replaced earlier are deleted once their delay is over, lease or not
        for c in self.compactors.values():
            c.delete_due()
        return jobs

    def _sweep_leftovers(self) -> None:
        """Outputs of a compactor that died before publishing them (or replaced inputs it
        had not yet deleted) lie in the compacted folders unlisted: once the lease is
        ours, nobody else writes there, so what no manifest names goes, after the delay
        (a query on another node may still read a replaced file)."""
        for node_id in self._ingest_nodes():
            compactor = self._compactor(node_id)
            compactor.index.refresh(compactor.store, node_id)
            live = {f.path for f in compactor.index.all()}
            unlisted = [p for p in compactor.store.list(f"{compactor.output_prefix}/")
                        if p.endswith(".parquet") and p not in live]
            if unlisted:
                log.info("%d unlisted compacted files of node %s are deleted after the "
                         "delay (a compactor stopped before cleaning up)", len(unlisted),
                         node_id)
                compactor.doom(unlisted)
        self._swept = True

    def _compactor(self, node_id: str) -> Compactor:
        c = self.compactors.get(node_id)
        if c is None:
            if node_id == self.own_node_id:
                index = self._own_index()
            else:
                index = PersistedIndex()
                index.shared = True
            # another node's query may be reading what a job replaces: always wait the
            # full delay before deleting it (a running query is assumed somewhere)
            # renewed before each publish: a job longer than the lease still lands, and
            # one whose lease another node took meanwhile publishes nothing
            c = self._make(node_id, index, f"{self.cluster_id}/compacted/{node_id}",
                           self.lease.acquire_or_renew, lambda: -math.inf)
            self.compactors[node_id] = c
        elif node_id == self.own_node_id:
            c.index = self._own_index()  # (replaced at start-up)
        return c
