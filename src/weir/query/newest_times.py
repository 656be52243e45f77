"""Each group's newest time in a table, from its files and buffered batches directly.

For a query that keeps each group's newest row of a whole table (query.newest_rows, no
filter), the oldest of the groups' newest times bounds what it reads. Aggregating every
row for it at every query cost most of `lastpoint` (~25–45 ms on a day of 100 hosts). A
Parquet file never changes once written (a compaction writes new paths), so each file's
newest time per group is read once (its group columns and `time`) and kept; only the
buffered batches are aggregated per query.

Rows hidden by the retention period still count: a group seen only there lowers the bound,
which leaves more to read, never less.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from weir.query.source import ParquetFileRef, TableSnapshot

__all__ = ["NewestTimes"]

#: a group's key: its group columns' values
GroupKey = tuple[object, ...]


class NewestTimes:
    """Per Parquet file and group columns, each group's newest time (ns); the most
    recently used files are kept, up to `max_groups` groups in all (about 100 bytes
    each: a million is ~100 MiB). Thread-safe."""

    def __init__(self, max_groups: int = 1_000_000) -> None:
        self._files: OrderedDict[tuple[str, tuple[str, ...]], dict[GroupKey, int]] = \
            OrderedDict()
        self._groups = 0
        self._lock = threading.Lock()
        self._max_groups = max_groups

    def oldest_newest(self, t: TableSnapshot, filesystem: pafs.FileSystem,
                      columns: tuple[str, ...]) -> int | None:
        """The oldest of `t`'s groups' newest times, grouped by `columns`; None if it has
        no rows."""
        newest: dict[GroupKey, int] = {}
        for f in t.files:
            _merge(newest, self._of_file(f, filesystem, columns).items())
        buffered = _buffered(t, columns)
        if buffered is not None:
            _merge(newest, group_newest(buffered, columns).items())
        return min(newest.values()) if newest else None

    def _of_file(self, f: ParquetFileRef, filesystem: pafs.FileSystem,
                 columns: tuple[str, ...]) -> dict[GroupKey, int]:
        key = (f.path, columns)
        with self._lock:
            known = self._files.get(key)
            if known is not None:
                self._files.move_to_end(key)
                return known
        with filesystem.open_input_file(f.path) as source:
            parquet = pq.ParquetFile(source)
            present = [c for c in columns if c in parquet.schema_arrow.names]
            table = parquet.read(columns=[*present, "time"])
        for c in columns:  # (a file written before the column existed: null there)
            if c not in present:
                table = table.append_column(c, pa.nulls(table.num_rows, pa.string()))
        found = group_newest(table, columns)
        with self._lock:
            if key not in self._files:
                self._files[key] = found
                self._groups += len(found)
            while self._groups > self._max_groups and len(self._files) > 1:
                self._groups -= len(self._files.popitem(last=False)[1])
        return found


def group_newest(table: pa.Table, columns: tuple[str, ...]) -> dict[GroupKey, int]:
    """Each group's (by `columns`) newest `time` in `table`, as ns."""
    times = table.column("time").cast(pa.int64())
    if not columns:
        newest = pc.max(times).as_py()
        return {} if newest is None else {(): newest}
    keys = []
    for c in columns:
        col = table.column(c)
        # (grouping by a dictionary column needs one dictionary: a file's row groups may
        # each have their own, a buffered batch has one and groups 2.5x faster by it)
        if pa.types.is_dictionary(col.type) and col.num_chunks > 1:
            col = col.cast(col.type.value_type)
        keys.append(col)
    grouped = pa.table([*keys, times], names=[*(f"k{i}" for i in range(len(keys))), "t"]) \
        .group_by([f"k{i}" for i in range(len(keys))]).aggregate([("t", "max")])
    key_values = [grouped.column(f"k{i}").to_pylist() for i in range(len(keys))]
    return dict(zip(zip(*key_values, strict=True), grouped.column("t_max").to_pylist(),
                    strict=True))


def _buffered(t: TableSnapshot, columns: tuple[str, ...]) -> pa.Table | None:
    """`t`'s buffered group columns and times as one table with one chunk (a buffer
    holds many small batches: one aggregate over them all costs a tenth of one each)."""
    parts = []
    for b in t.batches:
        if not b.num_rows:
            continue
        arrays, names = [], []
        for c in (*columns, "time"):
            i = b.schema.get_field_index(c)
            if i >= 0:
                arrays.append(b.column(i))
            else:  # (a batch from before the column existed)
                kind = t.schema.field(c).type if c in t.schema.names else pa.string()
                arrays.append(pa.nulls(b.num_rows, kind))
            names.append(c)
        parts.append(pa.Table.from_arrays(arrays, names=names))
    if not parts:
        return None
    return pa.concat_tables(parts, promote_options="permissive").unify_dictionaries() \
        .combine_chunks()


def _merge(newest: dict[GroupKey, int], found: Iterable[tuple[GroupKey, int]]) -> None:
    for k, t in found:
        if t > newest.get(k, t - 1):
            newest[k] = t
