"""`weir.objectstore.check` (behind `influxdb3 debug object-store-check`) passes a store
that keeps its promises and names what a look-alike breaks: conditional writes accepted
and ignored, a listing that lags, a delete that does not take."""

from __future__ import annotations

from pathlib import Path

from weir.errors import ObjectStoreUnavailable
from weir.objectstore import FileObjectStore, MemoryObjectStore
from weir.objectstore.check import CHECK_PREFIX, check_store
from weir.server.errors import to_response


class IgnoresConditions(MemoryObjectStore):
    """What many S3 look-alikes do with If-None-Match and If-Match: store anyway."""

    def put_if_absent(self, path: str, data: bytes) -> bool:
        self.put(path, data)
        return True

    def put_if_match(self, path: str, data: bytes, etag: str) -> bool:
        self.put(path, data)
        return True


class ListsNothing(MemoryObjectStore):
    def list(self, prefix: str) -> list[str]:
        return []


class Unreachable(MemoryObjectStore):
    def put(self, path: str, data: bytes) -> None:
        raise ObjectStoreUnavailable("put of 'x' on s3://b at http://127.0.0.1:9 failed: "
                                     "connection refused")


def by_name(results: list) -> dict[str, tuple[bool, str]]:  # type: ignore[type-arg]
    return {r.check: (r.ok, r.detail) for r in results}


def test_memory_and_file_stores_pass_and_are_left_clean(tmp_path: Path) -> None:
    for store in (MemoryObjectStore(), FileObjectStore(tmp_path)):
        results = check_store(store)
        assert all(r.ok for r in results), results
        assert store.list(CHECK_PREFIX) == []


def test_ignored_conditional_writes_are_caught() -> None:
    got = by_name(check_store(IgnoresConditions(), writers=8, rounds=2))
    ok, detail = got["put if absent (8 writers)"]
    assert not ok and "8 of 8 writers created the same object" in detail
    assert "If-None-Match" in detail
    ok, detail = got["conditional overwrite (8 writers)"]
    assert not ok and "8 of 8 writers replaced the same version" in detail
    assert got["read after write"][0] and got["delete"][0]


def test_a_listing_that_misses_objects_fails_the_list_check() -> None:
    got = by_name(check_store(ListsNothing(), rounds=1))
    ok, detail = got["list after write"]
    assert not ok and detail.startswith("listed [], wrote [")


def test_an_unreachable_store_fails_first_and_skips_the_rest() -> None:
    results = check_store(Unreachable())
    assert not results[0].ok and "connection refused" in results[0].detail
    assert [r.detail for r in results[1:]] == ["not run: the store is unavailable"] * 4


def test_object_store_unavailable_is_a_503_at_the_http_edge() -> None:
    r = to_response(ObjectStoreUnavailable("get of 'n/catalog.json' on s3://b failed: x"))
    assert r.status_code == 503
    assert r.body == (b'{"error":"object store unavailable: get of \'n/catalog.json\' on '
                      b's3://b failed: x"}')
