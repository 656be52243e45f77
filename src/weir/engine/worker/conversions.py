"""Arrow data as the Python values plugins expect (runs inside the worker).

* `table_batches` rows (WAL triggers) are sparse: only the columns present in a row,
  tags first, then fields, then ``"time"``.
* `query()` rows hold every result column, NULL as None.
* In both, timestamps become int nanoseconds and dictionary (tag) columns become str.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

KIND_META = b"weir:kind"
_KIND_ORDER = {b"tag": 0, b"field": 1, b"time": 2}


def column_values(arr: pa.Array | pa.ChunkedArray) -> list[Any]:
    """One column as Python values, with the plugin API's type mapping."""
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
    values: list[Any] = arr.to_pylist()
    return values


def query_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Every row of a query result as a dict of all its columns, in column order."""
    if table.num_rows == 0:
        return []
    names = table.column_names
    columns = [column_values(table.column(i)) for i in range(table.num_columns)]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def sparse_rows(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """WAL rows: only the non-null columns of each row, tags, then fields, then time."""
    if table.num_rows == 0:
        return []
    order = sorted(range(table.num_columns), key=lambda i: _KIND_ORDER.get(
        (table.schema.field(i).metadata or {}).get(KIND_META, b"field"), 1))
    names = [table.schema.field(i).name for i in order]
    columns = [column_values(table.column(i)) for i in order]
    return [{n: v for n, v in zip(names, values, strict=True) if v is not None}
            for values in zip(*columns, strict=True)]
