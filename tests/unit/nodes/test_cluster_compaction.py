"""The cluster's compactor (weir.nodes.compaction): only the lease holder works, and it
cleans up after a compactor that died, leaving listed files alone."""

from __future__ import annotations

import time
from collections.abc import Callable

from weir.catalog import Catalog
from weir.cluster.lease import CompactorLease
from weir.nodes.compaction import ClusterCompaction
from weir.objectstore import MemoryObjectStore
from weir.persist import PersistedFile, PersistedIndex
from weir.persist.compactor import Compactor
from weir.persist.read import TableReader

NOW = time.time_ns()


def compaction(store: MemoryObjectStore, node_id: str, lease: CompactorLease
               ) -> ClusterCompaction:
    catalog = Catalog(store, node_id, prefix="c1")
    catalog.load()
    reader = TableReader(store)

    def make(owner: str, index: PersistedIndex, prefix: str, may_publish: Callable[[], bool],
             oldest: Callable[[], float | None]) -> Compactor:
        return Compactor(store, owner, index, catalog, reader, file_rows=1000,
                         delete_delay_s=60, retention_cutoff=lambda db: None,
                         oldest_query=oldest, output_prefix=prefix, may_publish=may_publish)

    own = PersistedIndex()
    own.shared = True
    return ClusterCompaction(cluster_id="c1", own_node_id=node_id, own_index=lambda: own,
                             lease=lease, ingest_nodes=lambda: ["ingest-a"],
                             make_compactor=make)


def listed(path: str) -> PersistedFile:
    return PersistedFile(database="db", db_id=1, table="cpu", table_id=2, path=path,
                         size_bytes=4, row_count=1, min_time=NOW, max_time=NOW, seq=1,
                         generation=2)


def test_only_the_lease_holder_compacts_and_it_sweeps_what_a_dead_one_left() -> None:
    store = MemoryObjectStore()
    kept, left = "c1/compacted/ingest-a/dbs/1/2/kept.parquet", \
        "c1/compacted/ingest-a/dbs/1/2/left-behind.parquet"
    store.put(kept, b"PAR1")
    store.put(left, b"PAR1")
    PersistedIndex().publish(store, "ingest-a", add=[listed(kept)], wal_seq=1)

    first = compaction(store, "compact-1", CompactorLease(store, "c1", "compact-1"))
    second = compaction(store, "compact-2", CompactorLease(store, "c1", "compact-2"))
    assert first.run_once() == 0 and first.compactors  # holds the lease: swept
    assert second.run_once() == 0 and not second.compactors  # does nothing at all
    doomed = first.compactors["ingest-a"]
    doomed.delete_due(now=time.monotonic() + 30)
    assert store.exists(left)  # not before the delay: a query may still read it
    doomed.delete_due(now=time.monotonic() + 61)
    assert not store.exists(left) and store.exists(kept)
