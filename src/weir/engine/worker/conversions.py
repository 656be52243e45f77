"""Arrow data as the Python values plugins expect (runs inside the worker).

* `table_batches` rows (WAL triggers) are sparse: only the columns present in a row,
  tags first, then fields, then ``"time"``.
* `query()` rows hold every result column, NULL as None.
* In both, timestamps become int nanoseconds and dictionary (tag) columns become str.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

KIND_META = b"weir:kind"
_KIND_ORDER = {b"tag": 0, b"field": 1, b"time": 2}


def _plain(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A column in the plugin API's types: dictionaries decoded, timestamps and durations
    as int64 nanoseconds."""
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = t.value_type
    if pa.types.is_timestamp(t):
        if t.unit != "ns" or t.tz is not None:
            arr = arr.cast(pa.timestamp("ns"))
        arr = arr.cast(pa.int64())
    elif pa.types.is_duration(t):
        if t.unit != "ns":
            arr = arr.cast(pa.duration("ns"))
        arr = arr.cast(pa.int64())
    return arr


def column_values(arr: pa.Array | pa.ChunkedArray) -> list[Any]:
    """One column as Python values, with the plugin API's type mapping."""
    values: list[Any] = _plain(arr).to_pylist()
    return values


def query_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Every row of a query result as a dict of all its columns, in column order."""
    if table.num_rows == 0:
        return []
    # (pyarrow builds the dicts: several times faster than zipping Python lists)
    rows: list[dict[str, Any]] = _plain_table(table, range(table.num_columns)).to_pylist()
    return rows


def sparse_rows(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """WAL rows: only the non-null columns of each row, tags, then fields, then time."""
    if table.num_rows == 0:
        return []
    order = sorted(range(table.num_columns), key=lambda i: _KIND_ORDER.get(
        (table.schema.field(i).metadata or {}).get(KIND_META, b"field"), 1))
    plain = _plain_table(table, order)
    rows: list[dict[str, Any]] = plain.to_pylist()
    for name, col in zip(plain.column_names, plain.columns, strict=True):
        if col.null_count:
            for i in pc.indices_nonzero(col.is_null()).to_pylist():
                del rows[i][name]
    return rows


def _plain_table(table: pa.Table | pa.RecordBatch, order: Iterable[int]) -> pa.Table:
    """The columns `order` names, in that order, in the plugin API's types. (A query may
    repeat a name; as a dict key the later column wins, as it always did.)"""
    columns = list(order)
    return pa.Table.from_arrays([_plain(table.column(i)) for i in columns],
                                names=[table.schema.field(i).name for i in columns])
