"""The distinct-value cache of one table (influxdb3_cache `distinct_cache` in the reference).

It keeps every distinct combination of its columns' values (tags or string fields; a
missing or null value is a null in the combination, as in the reference) with the newest
time it was seen at, by the rows' own time. A combination last seen `max_age` or longer
before now is no longer read (and is dropped by `evict`); past `max_cardinality`
combinations the least recently seen go, right after the write that brought the new ones
(the reference waits for its next eviction pass).

`load` merges combinations read back from storage (when the cache is created and after a
restart), so the cache starts with what is stored rather than empty.

Reads build one Arrow table of the combinations, one string column per cache column,
sorted as the reference's tree is (first column first, nulls before values); the table is
kept until a combination comes or goes, or the oldest one expires.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from weir.catalog import DistinctCacheDefinition

__all__ = ["DistinctCache", "distinct_cache_schema"]

_NS = 1_000_000_000
_Combo = tuple[str | None, ...]


def distinct_cache_schema(definition: DistinctCacheDefinition) -> pa.Schema:
    return pa.schema([pa.field(c, pa.string()) for c in definition.columns])


class DistinctCache:
    """One cache's combinations; pushes from the event loop, reads from query threads."""

    def __init__(self, definition: DistinctCacheDefinition) -> None:
        self.definition = definition
        self._columns = definition.columns
        self._max_age_ns = definition.max_age_s * _NS
        self._max_cardinality = definition.max_cardinality
        self._seen: dict[_Combo, int] = {}
        self._lock = threading.Lock()
        #: bumped when a combination is added or removed (a newer time for a known one
        #: does not change what is read until it would have expired)
        self._version = 0
        self._read: tuple[int, int, pa.Table] | None = None
        #: no combination seen within `max_age` was ever left out (none went for
        #: max_cardinality, and the refill from storage did not fail): the cache can
        #: answer exactly what storage would (`values`)
        self.complete = True

    def push(self, data: pa.RecordBatch | pa.Table, now_ns: int) -> None:
        """The rows of one WAL write: each one's combination, seen at its time."""
        self._merge(self._combinations(data), now_ns)

    def load(self, data: pa.Table, now_ns: int) -> None:
        """Combinations read back from storage (`time`: when each was last seen)."""
        self._merge(self._combinations(data), now_ns)

    def _combinations(self, data: pa.RecordBatch | pa.Table) -> list[tuple[_Combo, int]]:
        """(combination, newest time) of each distinct combination in `data`, found by
        Arrow's grouping so that only distinct ones cost Python time."""
        if data.num_rows == 0 or "time" not in data.schema.names:
            return []
        names = data.schema.names
        cols: dict[str, pa.Array | pa.ChunkedArray] = {}
        for c in self._columns:
            if c in names:
                col = data.column(c)
                cols[c] = col.cast(pa.string()) if col.type != pa.string() else col
            else:
                cols[c] = pa.nulls(data.num_rows, pa.string())
        cols["__time"] = data.column("time").cast(pa.int64())
        grouped = pa.table(cols).group_by(list(self._columns), use_threads=False) \
            .aggregate([("__time", "max")])
        values = [grouped.column(c).to_pylist() for c in self._columns]
        times = grouped.column("__time_max").to_pylist()
        return list(zip(zip(*values, strict=True), times, strict=True))

    def _merge(self, combos: list[tuple[_Combo, int]], now_ns: int) -> None:
        if not combos:
            return
        cutoff = now_ns - self._max_age_ns
        with self._lock:
            seen = self._seen
            added = False
            for combo, t in combos:
                old = seen.get(combo)
                if old is None or t > old:
                    # what is read changes if the combination is new or was expired
                    added |= old is None or (old <= cutoff < t)
                    seen[combo] = t
            over = len(seen) - self._max_cardinality
            if over > 0:
                self.complete = False
                for combo, _ in heapq.nsmallest(over, seen.items(), key=lambda kv: kv[1]):
                    del seen[combo]
            if added or over > 0:
                self._version += 1

    def evict(self, now_ns: int) -> None:
        """Drop combinations not seen within `max_age`."""
        cutoff = now_ns - self._max_age_ns
        with self._lock:
            stale = [c for c, t in self._seen.items() if t <= cutoff]
            for c in stale:
                del self._seen[c]
            if stale:
                self._version += 1

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def values(self, column: str, equal: Mapping[str, str], since_ns: int | None,
               now_ns: int) -> list[str]:
        """The distinct non-null values of `column` (one of the cache's) in combinations
        whose `equal` columns have those values, seen at or after `since_ns` (None: within
        `max_age`), sorted. (Whether that is all storage holds is the caller's to judge.)"""
        i = self._columns.index(column)
        conds = [(self._columns.index(c), v) for c, v in equal.items()]
        lo = since_ns if since_ns is not None else now_ns - self._max_age_ns + 1
        with self._lock:
            found = {c[i] for c, t in self._seen.items()
                     if t >= lo and all(c[j] == v for j, v in conds)}
        return sorted(v for v in found if v is not None)

    def read(self, now_ns: int) -> pa.Table:
        """The combinations seen within `max_age` of now, sorted (see the module doc)."""
        schema = distinct_cache_schema(self.definition)
        cutoff = now_ns - self._max_age_ns
        with self._lock:
            read = self._read
            if read is not None and read[0] == self._version and now_ns < read[1]:
                return read[2]
            live = [(c, t) for c, t in self._seen.items() if t > cutoff]
            oldest = min((t for _, t in live), default=None)
            expires = np.iinfo(np.int64).max if oldest is None else oldest + self._max_age_ns
            combos = sorted((c for c, _ in live), key=_sort_key)
            columns = list(zip(*combos, strict=True)) if combos else [() for _ in schema]
            table = pa.Table.from_arrays(
                [pa.array(list(v), pa.string()) for v in columns], schema=schema)
            self._read = (self._version, expires, table)
            return table


def _sort_key(combo: _Combo) -> tuple[tuple[bool, str], ...]:
    return tuple((v is not None, v or "") for v in combo)
