"""A shared manifest (a cluster node's, which the cluster's compactor publishes too): a
publish that keeps losing the race for the next version keeps trying, with jittered
waits, for the patience it has, and then lands with both writers' changes; only when
the other writer never lets up does it give up."""

from __future__ import annotations

import time

import pytest

from weir import persist
from weir.objectstore import MemoryObjectStore
from weir.persist import ManifestConflict, PersistedFile, PersistedIndex

NOW = time.time_ns()


def parquet(name: str) -> PersistedFile:
    return PersistedFile(database="db", db_id=1, table="cpu", table_id=2,
                         path=f"ingest-a/dbs/1/2/{name}.parquet", size_bytes=4, row_count=1,
                         min_time=NOW, max_time=NOW, seq=1, generation=1)


class RacedStore(MemoryObjectStore):
    """Before each of the node's own manifest puts, the compactor publishes first (as
    many times as `rivals` says), so that put finds its version taken."""

    def __init__(self) -> None:
        super().__init__()
        self.rivals = 0
        self.compactor = PersistedIndex()
        self.compactor.shared = True
        self.rival_files: list[PersistedFile] = []
        self._rival_publishing = False

    def put_if_absent(self, path: str, data: bytes) -> bool:
        if self.rivals > 0 and "/manifests/" in path and not self._rival_publishing:
            self.rivals -= 1
            self._rival_publishing = True
            try:
                self.compactor.refresh(self, "ingest-a")
                f = parquet(f"compacted-{self.rivals}")
                self.rival_files.append(f)
                self.compactor.publish(self, "ingest-a", add=[f])
            finally:
                self._rival_publishing = False
        return super().put_if_absent(path, data)


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persist, "_PUBLISH_BACKOFF_S", 0.001)


def test_a_snapshot_that_loses_many_races_in_a_row_still_lands(quick: None) -> None:
    store = RacedStore()
    node = PersistedIndex()
    node.shared = True
    node.publish(store, "ingest-a", add=[parquet("first")], wal_seq=1)
    # more lost races than the attempts that used to be all it had (20)
    store.rivals = 3 * persist._PUBLISH_TRIES
    node.publish(store, "ingest-a", add=[parquet("second")], wal_seq=2)
    assert store.rivals == 0
    fresh = PersistedIndex.load(store, "ingest-a")
    assert {f.path for f in fresh.all()} == {
        parquet("first").path, parquet("second").path, *(f.path for f in store.rival_files)}
    assert fresh.last_wal_seq == 2 and fresh.version == node.version


def test_it_gives_up_only_after_its_attempts_and_its_patience(
        quick: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persist, "_PUBLISH_PATIENCE_S", 0.0)
    store = RacedStore()
    node = PersistedIndex()
    node.shared = True
    store.rivals = 10**6
    with pytest.raises(ManifestConflict, match=r"lost the race for the next version 20 "
                                               r"times in a row"):
        node.publish(store, "ingest-a", add=[parquet("never")], wal_seq=1)
    assert parquet("never").path not in {f.path for f in
                                         PersistedIndex.load(store, "ingest-a").all()}
