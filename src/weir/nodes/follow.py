"""Other nodes' data, as a query node of a cluster sees it.

Each ingest node of a cluster writes its own WAL files and publishes its own manifest in
the shared bucket (`<node>/wal/`, `<node>/manifests/`). A query node follows each of
them: it takes the node's newest manifest (its Parquet files) and reads the WAL files
after the manifest's `wal_seq` into a buffer of its own, so a query sees what the ingest
node has acknowledged, not only what it has persisted. The objects are immutable once
written, so following needs no coordination: a list of each prefix per poll.

A WAL file can disappear between the list and the read: the ingest node deleted it
after a snapshot, which means a newer manifest covers it. The poll then stops and the
next one takes that manifest first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from weir.buffer import Buffer, TableBuffer
from weir.objectstore import ObjectStore
from weir.persist import PersistedFile, PersistedIndex
from weir.wal import WalCorrupt, WalFile, decode, wal_path
from weir.wal.format import seq_from_path

log = logging.getLogger("weir.nodes")


@dataclass(frozen=True)
class FollowedState:
    """One followed node at one moment: what `Peers.view` hands a query."""

    node_id: str
    manifest_version: int
    wal_seq: int  # newest WAL file applied (or covered by the manifest)


class FollowedNode:
    """One ingest node's manifest and unpersisted WAL files, kept current by `poll`."""

    def __init__(self, store: ObjectStore, node_id: str,
                 knows_tables: Callable[[WalFile], bool]) -> None:
        self.store = store
        self.node_id = node_id
        #: whether this node's catalog knows every table and column of a WAL file (if not,
        #: the caller refreshes its catalog before the rows are used)
        self._knows_tables = knows_tables
        self.index = PersistedIndex()
        #: WAL files after the manifest's `wal_seq`, in order (kept to rebuild `buffer`
        #: when a newer manifest covers some of them)
        self._wal: list[WalFile] = []
        self.buffer = Buffer()
        self.lock = threading.Lock()

    @property
    def applied_seq(self) -> int:
        with self.lock:
            return self._wal[-1].seq if self._wal else self.index.last_wal_seq

    def poll(self, refresh_catalog: Callable[[], object]) -> bool:
        """Take a newer manifest and any new WAL files; True if anything changed."""
        changed = self._take_manifest()
        after = self.applied_seq
        seqs = sorted(s for p in self.store.list(f"{self.node_id}/wal/")
                      if (s := seq_from_path(p)) is not None and s > after)
        for seq in seqs:
            try:
                wal = decode(self.store.get(wal_path(self.node_id, seq)))
            except FileNotFoundError:  # snapshotted and deleted: a newer manifest has it
                changed |= self._take_manifest()
                break
            except WalCorrupt as e:  # a torn file is never acknowledged: skip it
                log.error("node %s: cannot read WAL file %d: %s", self.node_id, seq, e)
                continue
            if not self._knows_tables(wal):
                refresh_catalog()
            with self.lock:
                if wal.seq <= self.index.last_wal_seq:
                    continue
                self._wal.append(wal)
                self.buffer.apply(wal)
            changed = True
        return changed

    def _take_manifest(self) -> bool:
        fresh = PersistedIndex()
        fresh.version = self.index.version
        if not fresh.refresh(self.store, self.node_id):
            return False
        with self.lock:
            self.index = fresh
            self._wal = [w for w in self._wal if w.seq > fresh.last_wal_seq]
            self.buffer = _buffer_of(self._wal, fresh.all())
        return True

    def files(self, db_id: int, table_id: int) -> list[PersistedFile]:
        with self.lock:
            return self.index.for_table(db_id, table_id)

    def buffers(self, db: str, table: str) -> list[TableBuffer]:
        """Frozen copies of the table's buffered rows (call with the lock held, with
        `files`, for a consistent pair)."""
        with self.buffer.lock:
            return [tb.frozen() for tb in self.buffer.tables(db, table)]

    def state(self) -> FollowedState:
        with self.lock:
            return FollowedState(self.node_id, self.index.version,
                                 self._wal[-1].seq if self._wal else self.index.last_wal_seq)


def _buffer_of(wal: Iterable[WalFile], files: list[PersistedFile]) -> Buffer:
    """A buffer of `wal`'s rows that knows which of them may overwrite persisted points."""
    buf = Buffer()
    for f in files:
        key = (f.database, f.table)
        buf.persisted_before[key] = max(buf.persisted_before.get(key, f.max_time), f.max_time)
    for w in wal:
        buf.apply(w)
    return buf


class Peers:
    """Every other ingest node of the cluster, followed. `nodes()` says which they are
    (the cluster's membership records); a node that is gone stays followed, its data
    is still in the bucket."""

    def __init__(self, store: ObjectStore, own_node_id: str,
                 nodes: Callable[[], list[str]],
                 knows_tables: Callable[[WalFile], bool],
                 refresh_catalog: Callable[[], object]) -> None:
        self.store = store
        self.own_node_id = own_node_id
        self._nodes = nodes
        self._knows_tables = knows_tables
        self._refresh_catalog = refresh_catalog
        self.followed: dict[str, FollowedNode] = {}
        self._lock = threading.Lock()

    def poll(self) -> bool:
        """One round over every followed node (run off the event loop)."""
        for node_id in self._nodes():
            if node_id != self.own_node_id and node_id not in self.followed:
                with self._lock:
                    self.followed[node_id] = FollowedNode(self.store, node_id,
                                                          self._knows_tables)
        changed = False
        for node in list(self.followed.values()):
            try:
                changed |= node.poll(self._refresh_catalog)
            except Exception:  # one node's problem must not stop following the others
                log.exception("following node %s failed; trying again", node.node_id)
        return changed

    def nodes(self) -> list[FollowedNode]:
        with self._lock:
            return list(self.followed.values())

    def view(self, db: str, db_id: int, table: str, table_id: int
             ) -> tuple[list[PersistedFile], list[TableBuffer]]:
        """Every followed node's files and buffered rows of one table."""
        files: list[PersistedFile] = []
        buffers: list[TableBuffer] = []
        for node in self.nodes():
            with node.lock:
                files.extend(node.index.for_table(db_id, table_id))
                buffers.extend(node.buffers(db, table))
        return files, buffers
