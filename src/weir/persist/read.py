"""What a query reads of one table: Parquet files as they are, plus rows merged by
last-write-wins where copies of a point may sit in more than one place.

Sources (files, and the buffer as the newest) are grouped where their time ranges
overlap. A group is read as it is unless one of its members may overwrite points of
another (`PersistedFile.merge`, or a buffer that saw overwrites); then the group is
read into memory, oldest first, and merged. Steady ingest never overlaps like that, so
the common query reads files directly; merged file-only groups are cached, since files
never change.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from weir.buffer import TableBuffer
from weir.objectstore import ObjectStore
from weir.persist import PersistedFile, buffered_rows, conform
from weir.persist.lww import dedupe

__all__ = ["TableRead", "TableReader", "overlap_groups"]


@dataclass
class TableRead:
    """Files to scan directly, and rows in memory (disjoint points from the files;
    batches may lack columns of the table's schema)."""

    files: list[PersistedFile]
    rows: list[pa.RecordBatch]


@dataclass(frozen=True)
class _Merged:
    """Merged rows, and the batches queries get (the same objects every time: the query
    engine reuses a table's provider while its batches are the same)."""

    table: pa.Table
    batches: list[pa.RecordBatch]


@dataclass
class _Source:
    min_time: int
    max_time: int
    merge: bool
    file: PersistedFile | None  # None: the buffer


class _Timed(Protocol):
    @property
    def min_time(self) -> int: ...
    @property
    def max_time(self) -> int: ...


_T = TypeVar("_T", bound=_Timed)


def _time_groups(items: list[_T]) -> list[list[_T]]:
    """Items grouped where their [min_time, max_time] ranges overlap, in time order."""
    groups: list[list[_T]] = []
    end = 0
    for item in sorted(items, key=lambda i: i.min_time):
        if not groups or item.min_time > end:
            groups.append([item])
            end = item.max_time
        else:
            groups[-1].append(item)
            end = max(end, item.max_time)
    return groups


def _buffer_key(buffered: list[TableBuffer]) -> tuple[tuple[int, int], ...]:
    """What a table's buffered rows are: each table buffer's identity and version."""
    return tuple((tb.uid, tb.version) for tb in buffered)


def overlap_groups(files: list[PersistedFile]) -> list[list[PersistedFile]]:
    """Files grouped where their time ranges overlap (each group sorted by `seq`)."""
    return [sorted(g, key=lambda f: f.seq) for g in _time_groups(files)]


class TableReader:
    """Plans reads of tables; caches merged file groups (bounded by bytes)."""

    def __init__(self, store: ObjectStore, cache_bytes: int = 128 * 1024 * 1024) -> None:
        self.store = store
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[Hashable, _Merged] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()

    def plan(self, files: list[PersistedFile], buffered: list[TableBuffer],
             schema: pa.Schema) -> TableRead:
        """`buffered`: frozen copies (`TableBuffer.frozen`), which writes do not change
        while this reads them."""
        sources = [_Source(f.min_time, f.max_time, f.merge, f) for f in files]
        rows_in_buffer = [tb for tb in buffered if tb.rows]
        if rows_in_buffer:
            sources.append(_Source(
                min(tb.min_time for tb in rows_in_buffer),
                max(tb.max_time for tb in rows_in_buffer),
                any(tb.overwrites for tb in rows_in_buffer),
                None))
        out = TableRead([], [])
        for group in _time_groups(sources):
            self._read_group(group, rows_in_buffer, schema, out)
        return out

    def _read_group(self, group: list[_Source], buffered: list[TableBuffer],
                    schema: pa.Schema, out: TableRead) -> None:
        group_files = sorted((s.file for s in group if s.file is not None), key=lambda f: f.seq)
        has_buffer = any(s.file is None for s in group)
        if len(group) == 1 or not any(s.merge for s in group):
            out.files.extend(group_files)
            if has_buffer:
                if any(tb.overwrites for tb in buffered):
                    out.rows.extend(self._merged_buffer(buffered, schema).batches)
                else:  # as written: no copy of the buffer per query
                    out.rows.extend(b for tb in buffered for b in tb.batches)
            return
        if not has_buffer:
            out.rows.extend(self._merged_files(group_files, schema).batches)
            return

        def merge() -> pa.Table:
            parts = [self.merged_files(group_files, schema)] if group_files else []
            parts.append(buffered_rows(buffered, schema))
            return dedupe(pa.concat_tables(parts)) if len(parts) > 1 else parts[0]

        key = ("files+buffer", tuple(f.path for f in group_files), _buffer_key(buffered),
               schema)
        out.rows.extend(self._kept(key, merge).batches)

    def _merged_buffer(self, buffered: list[TableBuffer], schema: pa.Schema) -> _Merged:
        """The buffer's rows merged by last-write-wins: made again only after a write
        (a dashboard's queries between two writes share one merge, and the same batches,
        which lets the query engine reuse the table's provider too)."""
        return self._kept(("buffer", _buffer_key(buffered), schema),
                          lambda: buffered_rows(buffered, schema))

    def merged_files(self, files: list[PersistedFile], schema: pa.Schema) -> pa.Table:
        """The files' rows (sorted by seq, oldest first) merged into one row per point."""
        return self._merged_files(files, schema).table

    def _merged_files(self, files: list[PersistedFile], schema: pa.Schema) -> _Merged:
        return self._kept(
            ("files", tuple(f.path for f in files), schema),
            lambda: dedupe(pa.concat_tables([self.read_file(f, schema) for f in files])))

    def _kept(self, key: Hashable, make: Callable[[], pa.Table]) -> _Merged:
        """`make()`, kept for the next call with the same key while the cache has room
        (least recently used go first; no entry over a quarter of the room)."""
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        t = make()
        merged = _Merged(t, t.to_batches())
        with self._lock:
            if key not in self._cache and t.nbytes <= self.cache_bytes // 4:
                self._cache[key] = merged
                self._cached += t.nbytes
                while self._cached > self.cache_bytes and self._cache:
                    _, old = self._cache.popitem(last=False)
                    self._cached -= old.table.nbytes
        return merged

    def read_file(self, f: PersistedFile, schema: pa.Schema,
                  time_range: tuple[int, int] | None = None) -> pa.Table:
        """One file's rows in `schema` (columns added since it was written are null),
        optionally only those with start <= time < end."""
        if time_range is None:
            return conform(pq.read_table(pa.BufferReader(self.store.get(f.path))), schema)
        lo, hi = time_range
        # only the row groups whose time statistics meet the range: a compacted window's
        # file is written a time slice at a time, so a slice of it is a few row groups
        with self.store.arrow_filesystem().open_input_file(f.path) as src:
            pf = pq.ParquetFile(src)
            keep = _row_groups_meeting(pf.metadata, lo, hi)
            t = pf.read_row_groups(keep) if keep else pf.schema_arrow.empty_table()
        times = t.column("time").cast(pa.int64())
        t = t.filter(pc.and_(pc.greater_equal(times, lo), pc.less(times, hi)))
        return conform(t, schema)


def _row_groups_meeting(meta: pq.FileMetaData, lo: int, hi: int) -> list[int]:
    """Row groups that may hold a time in [lo, hi) (all, where statistics are missing)."""
    if meta.num_row_groups == 0:
        return []
    first = meta.row_group(0)
    names = [first.column(j).path_in_schema for j in range(first.num_columns)]
    if "time" not in names:
        return list(range(meta.num_row_groups))
    col = names.index("time")
    keep = []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(col).statistics
        if (stats is None or not stats.has_min_max
                or (stats.min_raw < hi and stats.max_raw >= lo)):
            keep.append(i)
    return keep
