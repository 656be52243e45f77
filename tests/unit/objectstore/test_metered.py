"""MeteredStore times each operation of the store it wraps (a real file store), by the
reference's op names and results, and counts the bytes put and got."""

from __future__ import annotations

import pytest

from weir.metrics import ObjectStoreMetrics, Registry
from weir.objectstore import FileObjectStore
from weir.objectstore.metered import MeteredStore


def test_every_operation_is_timed_by_op_and_result(tmp_path):  # type: ignore[no-untyped-def]
    m = ObjectStoreMetrics(Registry())
    store = MeteredStore(FileObjectStore(tmp_path / "os"), m)
    store.put("n/a", b"12345")
    assert store.put_if_absent("n/b", b"xy") is True
    assert store.put_if_absent("n/b", b"zz") is False  # an error of a conditional put
    assert store.get("n/a") == b"12345"
    with pytest.raises(FileNotFoundError):
        store.get("n/missing")
    assert store.list("n/") == ["n/a", "n/b"]
    assert store.size("n/b") == 2
    assert store.exists("n/gone") is False  # (a head that finds nothing)
    store.delete("n/a")

    def count(op: str, result: str) -> int:
        return m.op_duration.count((op, result, "main"))

    assert {(op, r): count(op, r) for op in ("put", "put_opts", "get", "list", "head",
                                             "delete") for r in ("success", "error")} == {
        ("put", "success"): 1, ("put", "error"): 0,
        ("put_opts", "success"): 1, ("put_opts", "error"): 1,
        ("get", "success"): 1, ("get", "error"): 1,
        ("list", "success"): 1, ("list", "error"): 0,
        ("head", "success"): 1, ("head", "error"): 1,
        ("delete", "success"): 1, ("delete", "error"): 0}
    assert m.transfer_bytes.value(("put", "success", "main")) == 5
    assert m.transfer_bytes.value(("put_opts", "success", "main")) == 2
    assert m.transfer_bytes.value(("get", "success", "main")) == 5
    assert store.durable is True
