"""Following another node's manifest and WAL (weir.nodes.follow), and a manifest that
two nodes publish (an ingest node and the cluster's compactor)."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest

from weir.nodes.follow import FollowedNode, Peers
from weir.objectstore import MemoryObjectStore, ObjectStore
from weir.persist import ManifestConflict, PersistedFile, PersistedIndex
from weir.wal import WalFile, WalOp, encode, wal_path

NOW = time.time_ns()


def pfile(name: str, seq: int, rows: int = 10) -> PersistedFile:
    return PersistedFile(database="db", db_id=1, table="cpu", table_id=2,
                         path=f"a/dbs/1/2/{name}.parquet", size_bytes=100, row_count=rows,
                         min_time=NOW - 10**9, max_time=NOW, seq=seq)


def wal_file(seq: int, hosts: list[str]) -> WalFile:
    n = len(hosts)
    batch = pa.record_batch({
        "host": pa.array(hosts, pa.dictionary(pa.int32(), pa.string())),
        "usage": pa.array([float(seq)] * n),
        "time": pa.array([NOW + seq * 10**6 + i for i in range(n)], pa.timestamp("ns")),
    })
    return WalFile(seq=seq, ops=[WalOp("db", "cpu", batch)], written_ns=NOW)


def put_wal(store: ObjectStore, w: WalFile) -> None:
    store.put_if_absent(wal_path("a", w.seq), encode(w))


def buffered_rows(node: FollowedNode) -> int:
    with node.lock:
        return sum(tb.rows for tb in node.buffers("db", "cpu"))


def test_a_shared_manifest_takes_the_other_writers_change_and_applies_its_own() -> None:
    store = MemoryObjectStore()
    ingest = PersistedIndex()
    ingest.shared = True
    ingest.publish(store, "a", add=[pfile("s1", 1), pfile("s2", 2)], wal_seq=2,
                   checkpoints={("db", "t"): 2})
    compactor = PersistedIndex.load(store, "a")
    compactor.shared = True
    merged = pfile("c1", 2, rows=20)
    compactor.publish(store, "a", add=[merged], remove=[pfile("s1", 1), pfile("s2", 2)])
    # the ingest node has not seen the compaction: its next snapshot still lands
    ingest.publish(store, "a", add=[pfile("s3", 3)], wal_seq=3, checkpoints={("db", "t"): 3})
    newest = PersistedIndex.load(store, "a")
    assert sorted(f.path for f in newest.all()) == [merged.path, pfile("s3", 3).path]
    assert newest.version == 3 and newest.last_wal_seq == 3 and newest.snapshot_count == 2
    assert newest.trigger_checkpoints == {("db", "t"): 3}
    assert sorted(f.path for f in ingest.all()) == sorted(f.path for f in newest.all())
    # a stale compactor removing what is gone gets KeyError, and writes nothing
    with pytest.raises(KeyError):
        compactor.publish(store, "a", remove=[pfile("s1", 1)])
    assert PersistedIndex.load(store, "a").version == 3


def test_an_unshared_manifest_still_refuses_a_second_writer() -> None:
    store = MemoryObjectStore()
    one, two = PersistedIndex(), PersistedIndex()
    one.publish(store, "a", add=[pfile("s1", 1)], wal_seq=1)
    with pytest.raises(ManifestConflict, match="another server using node id 'a'"):
        two.publish(store, "a", add=[pfile("s2", 2)], wal_seq=2)


def test_a_followed_node_shows_its_wal_until_a_manifest_covers_it() -> None:
    store = MemoryObjectStore()
    refreshed: list[int] = []
    node = FollowedNode(store, "a", knows_tables=lambda w: True)
    for seq in (1, 2, 3):
        put_wal(store, wal_file(seq, [f"h{i}" for i in range(100)]))
    assert node.poll(lambda: refreshed.append(1))
    assert buffered_rows(node) == 300 and node.state().wal_seq == 3
    assert not node.poll(lambda: None)  # nothing new: nothing changes
    # the ingest node snapshots WAL 1-2 into a file, then deletes those WAL files
    ingest = PersistedIndex()
    ingest.publish(store, "a", add=[pfile("s1", 2, rows=200)], wal_seq=2)
    store.delete(wal_path("a", 1))
    store.delete(wal_path("a", 2))
    put_wal(store, wal_file(4, ["h0"]))
    assert node.poll(lambda: None)
    assert buffered_rows(node) == 101  # WAL 3 and 4 only
    assert [f.path for f in node.files(1, 2)] == [pfile("s1", 2).path]
    assert node.state().manifest_version == 1 and node.state().wal_seq == 4
    assert refreshed == []


def test_a_wal_file_gone_between_list_and_read_means_a_newer_manifest() -> None:
    store = MemoryObjectStore()
    node = FollowedNode(store, "a", knows_tables=lambda w: True)
    put_wal(store, wal_file(1, ["h0", "h1"]))

    class Snapshotting(MemoryObjectStore):
        """Lists WAL 1, then (as the ingest node's snapshot does) covers and deletes it
        before the read."""

        def get(self, path: str) -> bytes:
            if path == wal_path("a", 1) and store.exists(path):
                idx = PersistedIndex()
                idx.publish(store, "a", add=[pfile("s1", 1, rows=2)], wal_seq=1)
                store.delete(path)
            return store.get(path)

        def list(self, prefix: str) -> list[str]:
            return store.list(prefix)

    node.store = Snapshotting()
    assert node.poll(lambda: None)
    assert buffered_rows(node) == 0 and len(node.files(1, 2)) == 1


def test_rows_of_a_table_this_node_does_not_know_yet_refresh_its_catalog_first() -> None:
    store = MemoryObjectStore()
    known: list[bool] = [False]
    refreshes: list[int] = []

    def refresh() -> None:
        refreshes.append(1)
        known[0] = True

    node = FollowedNode(store, "a", knows_tables=lambda w: known[0])
    put_wal(store, wal_file(1, ["h0"]))
    node.poll(refresh)
    assert refreshes == [1] and buffered_rows(node) == 1


def test_peers_follow_every_ingest_node_but_this_one() -> None:
    store = MemoryObjectStore()
    put_wal(store, wal_file(1, ["h0", "h1", "h2"]))
    nodes = ["a", "q"]
    peers = Peers(store, "q", lambda: nodes, lambda w: True, lambda: None)
    assert peers.poll()
    assert [n.node_id for n in peers.nodes()] == ["a"]
    files, buffers = peers.view("db", 1, "cpu", 2)
    assert files == [] and sum(b.rows for b in buffers) == 3
