"""A node of a cluster: several servers sharing one bucket (`serve --cluster-id`).

What each node does follows its modes (`serve --mode`):
- ingest: accepts writes into its own WAL and manifest (as a single node does);
- query: follows every other ingest node's manifest and WAL (weir.nodes.follow), so its
  queries see every node's data;
- compact: competes for the compactor lease; the holder compacts every ingest node's
  files (weir.nodes.compaction);
- process: runs processing-engine triggers (weir.engine decides which).

Every node polls the bucket each `--cluster-poll-interval`: the catalog log (changes made
on other nodes), its own manifest (the compactor publishes into it) and, in query mode,
the other nodes' files. Nothing else is shared: the bucket's conditional writes are the
only coordination.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from weir.buffer import TableBuffer
from weir.catalog import Catalog
from weir.config import ServeConfig
from weir.errors import NotFound
from weir.nodes.compaction import ClusterCompaction, Lease, MakeCompactor
from weir.nodes.follow import FollowedNode, Peers
from weir.objectstore import ObjectStore
from weir.persist import PersistedFile, PersistedIndex
from weir.wal import WalFile

log = logging.getLogger("weir.nodes")


class ClusterNode:
    """This node's part in a cluster, as the database uses it."""

    def __init__(self, config: ServeConfig, store: ObjectStore, catalog: Catalog,
                 own_index: Callable[[], PersistedIndex],
                 ingest_nodes: Callable[[], list[str]],
                 lease: Lease | None, make_compactor: MakeCompactor) -> None:
        assert config.cluster_id is not None
        self.config = config
        self.store = store
        self.catalog = catalog
        self._own_index = own_index
        self.modes = config.modes
        self.peers: Peers | None = None
        if "query" in self.modes:
            self.peers = Peers(store, config.node_id, ingest_nodes, self._knows_tables,
                               self.refresh_catalog)
        self.compaction: ClusterCompaction | None = None
        if "compact" in self.modes and lease is not None:
            self.compaction = ClusterCompaction(
                cluster_id=config.cluster_id, own_node_id=config.node_id,
                own_index=own_index, lease=lease, ingest_nodes=ingest_nodes,
                make_compactor=make_compactor)
        self._task: asyncio.Task[None] | None = None

    # ---- the poll loop -----------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="cluster-follow")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        interval = self.config.cluster_poll_interval
        while True:
            try:
                await asyncio.to_thread(self.poll)
            except Exception:  # a store outage: keep serving what is known, try again
                log.exception("following the cluster's bucket failed; retrying in %gs",
                              interval)
            await asyncio.sleep(interval)

    def poll(self) -> bool:
        """One look at the bucket: catalog, own manifest, other nodes. True if anything
        changed."""
        changed = self.refresh_catalog()
        index = self._own_index()
        changed |= index.refresh(self.store, self.config.node_id)
        if self.peers is not None:
            changed |= self.peers.poll()
        return changed

    def refresh_catalog(self) -> bool:
        """Other nodes' catalog changes (its change listeners hear of them)."""
        return self.catalog.refresh()

    def _knows_tables(self, wal: WalFile) -> bool:
        for op in wal.ops:
            try:
                columns = self.catalog.table(op.db, op.table).columns
            except NotFound:
                return False
            if any(name not in columns for name in op.batch.schema.names):
                return False
        return True

    # ---- what queries and writes ask ---------------------------------------------------

    def view(self, db: str, db_id: int, table: str, table_id: int
             ) -> tuple[list[PersistedFile], list[TableBuffer]]:
        """Other nodes' files and buffered rows of a table (none unless in query mode)."""
        if self.peers is None:
            return [], []
        return self.peers.view(db, db_id, table, table_id)

    def followed(self) -> list[FollowedNode]:
        return self.peers.nodes() if self.peers is not None else []


__all__ = ["ClusterNode", "Lease", "MakeCompactor"]
