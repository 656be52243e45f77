"""The WAL file format on its own: encode/decode round trip, corruption detected,
merge_ops keeping order and unifying schemas."""

from __future__ import annotations

import pyarrow as pa
import pytest

from weir.wal import WalCorrupt, WalFile, WalOp, decode, encode, merge_ops


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
