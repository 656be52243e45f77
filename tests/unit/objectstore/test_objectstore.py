"""The object stores on their own (file and memory): put/get/list/delete, put_if_absent,
the Arrow filesystem view, keys that would escape the store's directory."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weir.objectstore import FileObjectStore, MemoryObjectStore


@pytest.fixture(params=["file", "memory"])
def store(request, tmp_path):
    return FileObjectStore(tmp_path / "os") if request.param == "file" else MemoryObjectStore()


def test_store_put_get_list_delete(store):
    store.put("n/a/1.bin", b"one")
    store.put("n/a/2.bin", b"two")
    store.put("n/b/3.bin", b"three")
    assert store.get("n/a/1.bin") == b"one"
    assert store.list("n/a/") == ["n/a/1.bin", "n/a/2.bin"]
    store.put("n/a/1.bin", b"uno")
    assert store.get("n/a/1.bin") == b"uno"
    store.delete("n/a/1.bin")
    store.delete("n/a/1.bin")  # already gone: no error
    with pytest.raises(FileNotFoundError):
        store.get("n/a/1.bin")
    assert store.size("n/b/3.bin") == 5


def test_put_if_absent_refuses_existing(store):
    assert store.put_if_absent("w/1", b"x") is True
    assert store.put_if_absent("w/1", b"y") is False
    assert store.get("w/1") == b"x"


def test_arrow_filesystem_reads_parquet(store):
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"a": [1, 2, 3]}), sink)
    store.put("p/f.parquet", sink.getvalue().to_pybytes())
    fs = store.arrow_filesystem()
    assert pq.read_table("p/f.parquet", filesystem=fs).column("a").to_pylist() == [1, 2, 3]


def test_file_store_rejects_escaping_keys(tmp_path):
    s = FileObjectStore(tmp_path / "os")
    with pytest.raises(ValueError):
        s.put("../evil", b"x")
