"""The rows a plugin sees (`weir.engine.worker.conversions`), built by pyarrow: the same
values, keys and key order as building them value by value in Python (the model below),
for every column type a WAL batch or a query result carries, nulls anywhere."""

from __future__ import annotations

import random
import time
from typing import Any

import pyarrow as pa
import pytest

from weir.engine.worker.conversions import KIND_META, query_rows, sparse_rows

NOW = time.time_ns()
_KIND_ORDER = {b"tag": 0, b"field": 1, b"time": 2}


def _values(arr: pa.Array | pa.ChunkedArray) -> list[Any]:
    t = arr.type
    if pa.types.is_dictionary(t):
        arr, t = arr.cast(t.value_type), t.value_type
    if pa.types.is_timestamp(t):
        arr = arr.cast(pa.timestamp("ns")).cast(pa.int64())
    elif pa.types.is_duration(t):
        arr = arr.cast(pa.duration("ns")).cast(pa.int64())
    return arr.to_pylist()


def model_sparse(table: pa.Table) -> list[dict[str, Any]]:
    order = sorted(range(table.num_columns), key=lambda i: _KIND_ORDER.get(
        (table.schema.field(i).metadata or {}).get(KIND_META, b"field"), 1))
    names = [table.schema.field(i).name for i in order]
    cols = [_values(table.column(i)) for i in order]
    return [{n: v for n, v in zip(names, vals, strict=True) if v is not None}
            for vals in zip(*cols, strict=True)]


def model_query(table: pa.Table) -> list[dict[str, Any]]:
    cols = [_values(c) for c in table.columns]
    return [dict(zip(table.column_names, vals, strict=True))
            for vals in zip(*cols, strict=True)]


def random_table(rng: random.Random, rows: int) -> pa.Table:
    def maybe(v: Any) -> Any:
        return None if rng.random() < 0.2 else v

    def meta(kind: bytes) -> dict[bytes, bytes]:
        return {KIND_META: kind}

    tag = pa.array([maybe(f"h{rng.randrange(9)}") for _ in range(rows)],
                   pa.string()).dictionary_encode()
    fields = [
        pa.field("time", pa.timestamp("ns"), metadata=meta(b"time")),
        pa.field("usage", pa.float64(), metadata=meta(b"field")),
        pa.field("host", tag.type, metadata=meta(b"tag")),
        pa.field("n", pa.int64(), metadata=meta(b"field")),
        pa.field("u", pa.uint64(), metadata=meta(b"field")),
        pa.field("ok", pa.bool_(), metadata=meta(b"field")),
        pa.field("s", pa.string(), metadata=meta(b"field")),
        pa.field("region", tag.type, metadata=meta(b"tag")),
        pa.field("ts_tz", pa.timestamp("ms", tz="UTC")),
        pa.field("took", pa.duration("us")),
    ]
    arrays = [
        pa.array([NOW + i for i in range(rows)], pa.timestamp("ns")),
        pa.array([maybe(rng.uniform(-1e9, 1e9)) for _ in range(rows)], pa.float64()),
        tag,
        pa.array([maybe(rng.randrange(-2**63, 2**63)) for _ in range(rows)], pa.int64()),
        pa.array([maybe(rng.randrange(2**64)) for _ in range(rows)], pa.uint64()),
        pa.array([maybe(rng.random() < 0.5) for _ in range(rows)], pa.bool_()),
        pa.array([maybe(rng.choice(["", "a b", "é", "x" * 40])) for _ in range(rows)],
                 pa.string()),
        pa.array([maybe(f"r{rng.randrange(3)}") for _ in range(rows)],
                 pa.string()).dictionary_encode(),
        pa.array([maybe(NOW // 10**6 + i) for i in range(rows)], pa.timestamp("ms", tz="UTC")),
        pa.array([maybe(rng.randrange(10**9)) for _ in range(rows)], pa.duration("us")),
    ]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


@pytest.mark.parametrize("seed", range(8))
def test_rows_are_what_python_would_build(seed: int) -> None:
    rng = random.Random(seed)
    table = random_table(rng, rng.choice([1, 7, 500, 3000]))
    # several chunks, as a merged WAL call or a query result arrives
    chunked = pa.concat_tables([table.slice(0, table.num_rows // 2),
                                table.slice(table.num_rows // 2)])
    for t in (table, chunked):
        sparse = sparse_rows(t)
        assert sparse == model_sparse(t)
        assert [list(r) for r in sparse] == [list(r) for r in model_sparse(t)]  # key order
        assert query_rows(t) == model_query(t)
        assert [list(r) for r in query_rows(t)] == [list(r) for r in model_query(t)]
    batch = table.to_batches()[0]
    assert sparse_rows(batch) == model_sparse(table)


def test_empty_and_repeated_names() -> None:
    assert sparse_rows(pa.table({"a": pa.array([], pa.int64())})) == []
    assert query_rows(pa.table({"a": pa.array([], pa.int64())})) == []
    # a query may name a column twice: as a dict key the later one wins
    t = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    assert query_rows(t) == [{"a": 2}]
