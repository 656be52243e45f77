"""The storage parts on their own: object stores, WAL format, catalog persistence."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weir.catalog import Catalog, Column, Limits, TriggerDefinition
from weir.errors import AlreadyExists, DatabaseNotFound, LimitExceeded, TriggerRunning
from weir.objectstore import FileObjectStore, MemoryObjectStore
from weir.wal import WalCorrupt, WalFile, WalOp, decode, encode, merge_ops


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


def _batch(n: int = 3) -> pa.RecordBatch:
    return pa.record_batch(
        [pa.array(["a"] * n).dictionary_encode(), pa.array([1.5] * n),
         pa.array(list(range(n)), pa.timestamp("ns"))],
        schema=pa.schema([
            pa.field("host", pa.dictionary(pa.int32(), pa.string()), metadata={b"weir:kind": b"tag"}),
            pa.field("usage", pa.float64(), metadata={b"weir:kind": b"field"}),
            pa.field("time", pa.timestamp("ns"), metadata={b"weir:kind": b"time"}),
        ]),
    )


def test_wal_roundtrip_and_corruption():
    wal = WalFile(seq=7, ops=[WalOp("db", "cpu", _batch()), WalOp("db2", "mem", _batch(1))],
                  written_ns=42)
    data = encode(wal)
    back = decode(data)
    assert back.seq == 7 and back.written_ns == 42
    assert [(o.db, o.table, o.batch.num_rows) for o in back.ops] == [("db", "cpu", 3), ("db2", "mem", 1)]
    assert back.ops[0].batch.schema.field("host").metadata == {b"weir:kind": b"tag"}
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    with pytest.raises(WalCorrupt):
        decode(bytes(flipped))
    with pytest.raises(WalCorrupt):
        decode(data[:-10])


def test_merge_ops_keeps_order_and_unifies_schemas():
    b1 = _batch(2)
    b2 = pa.record_batch([pa.array([7], pa.int64()), pa.array([99], pa.timestamp("ns"))],
                         names=["extra", "time"])
    merged = merge_ops([WalOp("d", "t", b1), WalOp("d", "u", _batch(1)), WalOp("d", "t", b2)])
    assert [(m.table, m.batch.num_rows) for m in merged] == [("t", 3), ("u", 1)]
    t = merged[0].batch
    assert t.column("time").cast(pa.int64()).to_pylist() == [0, 1, 99]
    assert t.column("extra").to_pylist() == [None, None, 7]


def test_catalog_persists_and_reloads(store):
    c = Catalog(store, "n1")
    c.load()
    c.create_database("db1")
    c.add_columns("db1", "cpu", [Column("host", "tag", "tag"), Column("usage", "field", "float")])
    c.persist()
    c.create_trigger(TriggerDefinition("t1", "p.py", "db1", "all_tables", {"a": "b"}))
    c2 = Catalog(store, "n1")
    c2.load()
    assert c2.uuid == c.uuid
    assert sorted(c2.databases()) == ["_internal", "db1"]
    assert list(c2.table("db1", "cpu").columns) == ["time", "host", "usage"]
    assert c2.get_trigger("db1", "t1").trigger_arguments == {"a": "b"}
    with pytest.raises(AlreadyExists):
        c2.create_database("db1")
    with pytest.raises(TriggerRunning):
        c2.delete_trigger("db1", "t1")
    assert c2.set_trigger_disabled("db1", "t1", True) is True
    c2.delete_trigger("db1", "t1")
    c2.delete_database("db1")
    assert c2.was_deleted("db1")
    with pytest.raises(DatabaseNotFound):
        c2.db("db1")


def test_catalog_limits(store):
    c = Catalog(store, "n1", Limits(databases=5))
    c.load()
    for i in range(5):
        c.create_database(f"d{i}")
    with pytest.raises(LimitExceeded, match="exceed limit of 5 databases"):
        c.create_database("d5")
    c.limits.columns_per_table = 3
    with pytest.raises(LimitExceeded, match="columns per table"):
        c.add_columns("d0", "t", [Column(f"f{i}", "field", "float") for i in range(5)])
