"""The WAL file format on its own: encode/decode round trip, corruption detected,
merge_ops keeping order and unifying schemas."""

from __future__ import annotations

import pyarrow as pa
import pytest

from weir.objectstore import MemoryObjectStore
from weir.wal import Wal, WalCorrupt, WalFile, WalOp, decode, encode, merge_ops, wal_path


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


def test_readers_behind_the_flusher_get_a_file_or_none(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    """WAL triggers read flushed files back (`Wal.read`): a stored file as written, None
    for one deleted after a snapshot, None (logged) for a damaged one."""

    async def flushed(_: WalFile) -> None:
        return None

    store = MemoryObjectStore()
    wal = Wal(store, "n", on_flushed=flushed)
    assert wal.first_seq() is None
    batch = pa.record_batch({"v": pa.array([1.0, 2.0])})
    for seq in (3, 4, 5):
        store.put(wal_path("n", seq), encode(WalFile(seq=seq, ops=[WalOp("db", "t", batch)],
                                                     checkpoints={("db", "trig"): seq - 1})))
    store.put(wal_path("n", 6), b"WEIRWAL1 torn")
    assert wal.first_seq() == 3
    got = wal.read(4)
    assert got is not None and got.seq == 4 and got.checkpoints == {("db", "trig"): 3}
    assert got.ops[0].batch.equals(batch)
    assert wal.read(2) is None  # deleted (or never written)
    with caplog.at_level("ERROR", logger="weir.wal"):
        assert wal.read(6) is None
    assert "cannot read WAL file n/wal/00000000006.wal" in caplog.text
    assert wal.delete_upto(4) == 2 and wal.first_seq() == 5
