"""The last-N-value cache of one table (influxdb3_cache `last_cache` in the reference).

For each distinct combination of the key columns' values it keeps the newest `count` rows'
value columns, newest first. Rows reach it from every flushed WAL file, in WAL order, and
enter as the reference lets them: a row missing a key column (or with a null one) is
ignored, and so is a row older than the newest one kept for its key; a row at the same time
as that newest one updates it field by field (later non-null values win), as Weir's
last-write-wins does. Each row lives `ttl` after it entered; an expired row is no longer
read and is dropped by `evict`.

Beyond the reference, `load` merges rows read back from storage (when the cache is created
and after a restart): a stored row counts as having entered at its own time, so only rows
newer than `ttl` come back.

Reads build one Arrow table: the key columns (tags as strings), then the value columns
(explicit ones in their order with `time` last; else every other column of the table, by
name, so new fields show up), one row per kept row, keys in ascending order, newest row
first within a key. The table is kept until the cache changes or its oldest row expires.
"""

from __future__ import annotations

import functools
import operator
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weir.catalog import ARROW_TYPES, TAG, LastCacheDefinition

__all__ = ["ColumnType", "LastCache", "last_cache_schema"]

_NS = 1_000_000_000
_MAX_NS = 2**63 - 1


class ColumnType(Protocol):
    """A catalog column, as the cache reads it (weir.catalog.Column)."""

    @property
    def kind(self) -> str: ...

    @property
    def type(self) -> str: ...


@dataclass(slots=True)
class _Row:
    #: when the row entered the cache (ns since the epoch): its TTL counts from here
    entered_ns: int
    time: int
    #: the value columns the row has (the same tuple object for every row of a write;
    #: missing: null) and their values
    names: tuple[str, ...]
    values: tuple[object, ...]


@dataclass
class _Candidates:
    """The rows of a write that may enter, column by column, as plain Python values."""

    names: tuple[str, ...]
    keys: list[tuple[object, ...]]
    times: list[int]
    values: list[tuple[object, ...]]


def last_cache_schema(definition: LastCacheDefinition, columns: Mapping[str, ColumnType]
                      ) -> pa.Schema:
    """The columns `last_cache()` returns for `definition` over a table with `columns`
    (its current catalog columns, in catalog order)."""
    keys = definition.key_columns
    fields = [pa.field(k, pa.string() if columns[k].kind == TAG else ARROW_TYPES[columns[k].type],
                       nullable=columns[k].kind != TAG) for k in keys]
    return pa.schema(fields + [pa.field(v, ARROW_TYPES[columns[v].type])
                               for v in _value_columns(definition, columns)])


def _value_columns(definition: LastCacheDefinition, columns: Mapping[str, ColumnType]
                   ) -> list[str]:
    keys = set(definition.key_columns)
    if definition.value_columns is None:
        return sorted(c for c in columns if c not in keys)
    return [*(v for v in definition.value_columns if v != "time" and v not in keys), "time"]


class LastCache:
    """One cache's rows. Pushes come from the event loop, reads from query threads: every
    method takes the cache's lock for the part that touches its state."""

    def __init__(self, definition: LastCacheDefinition) -> None:
        self.definition = definition
        self._keys = definition.key_columns
        self._key_set = frozenset(self._keys)
        self._count = definition.count
        self._ttl_ns = definition.ttl_s * _NS
        self._stores: dict[tuple[object, ...], deque[_Row]] = {}
        self._lock = threading.Lock()
        self._version = 0
        #: the last table read, the (version, schema) it was built for, and when its
        #: oldest row expires
        self._read: tuple[int, pa.Schema, int, pa.Table] | None = None

    # ---- writes ----------------------------------------------------------------------

    def push(self, batch: pa.RecordBatch, now_ns: int) -> None:
        """The rows of one WAL write (oldest first) that may enter the cache."""
        rows = self._candidates(batch)
        if rows is None:
            return
        names = rows.names
        with self._lock:
            stores, count = self._stores, self._count
            for key, t, values in zip(rows.keys, rows.times, rows.values, strict=True):
                store = stores.get(key)
                if store is None:
                    stores[key] = deque((_Row(now_ns, t, names, values),), maxlen=count)
                    continue
                if store:
                    newest = store[0]
                    if t < newest.time:
                        continue  # older than what the cache holds for this key: ignored
                    if t == newest.time:  # the same point again: later non-null fields win
                        merged = dict(zip(newest.names, newest.values, strict=True))
                        merged.update((c, v) for c, v in zip(names, values, strict=True)
                                      if v is not None)
                        newest.names, newest.values = tuple(merged), tuple(merged.values())
                        newest.entered_ns = now_ns
                        continue
                store.appendleft(_Row(now_ns, t, names, values))
            self._version += 1

    def load(self, table: pa.Table, now_ns: int) -> None:
        """Merge rows read back from storage (any order; each counts as having entered at
        its own time, at the latest now): per key the newest `count` rows of what the
        cache holds and these are kept, a row the cache holds winning at equal times."""
        rows = self._candidates(table)
        if rows is None:
            return
        by_key: dict[tuple[object, ...], list[_Row]] = {}
        for key, t, values in zip(rows.keys, rows.times, rows.values, strict=True):
            by_key.setdefault(key, []).append(_Row(min(t, now_ns), t, rows.names, values))
        with self._lock:
            for key, loaded in by_key.items():
                store = self._stores.get(key)
                held = list(store) if store is not None else []
                times = {r.time for r in held}
                merged = held + [r for r in loaded if r.time not in times]
                merged.sort(key=lambda r: r.time, reverse=True)
                self._stores[key] = deque(merged[:self._count], maxlen=self._count)
            self._version += 1

    def _candidates(self, data: pa.RecordBatch | pa.Table) -> _Candidates | None:
        """The rows of `data` that can matter: per key, the newest `count`, oldest first,
        as plain values (`time` as ns); None if none. Rows with a missing or null key
        column are left out; found with Arrow, so that only these rows cost Python time."""
        names = data.schema.names
        if data.num_rows == 0 or "time" not in names or any(k not in names for k in self._keys):
            return None
        if self.definition.value_columns is None:
            values_names = [n for n in names if n not in self._key_set and n != "time"]
        else:
            values_names = [v for v in self.definition.value_columns
                            if v in names and v not in self._key_set and v != "time"]
        cols = {n: _plain(data.column(n)) for n in (*self._keys, *values_names)}
        cols["time"] = data.column("time").cast(pa.int64())
        table = pa.table(cols)
        if self._keys:
            valid = functools.reduce(pc.and_, [pc.is_valid(table.column(k)) for k in self._keys])
            if not pc.all(valid).as_py():
                table = table.filter(valid)
        n = table.num_rows
        if n > self._count:
            order = pc.sort_indices(table, sort_keys=[*((k, "ascending") for k in self._keys),
                                                      ("time", "ascending")])
            table = table.take(order)
            table = table.filter(pa.array(self._last_of_each_key(table)))
        n = table.num_rows
        if n == 0:
            return None
        keys: list[tuple[object, ...]] = list(zip(
            *[table.column(k).to_pylist() for k in self._keys], strict=True)) \
            if self._keys else [()] * n
        values: list[tuple[object, ...]] = list(zip(
            *[table.column(v).to_pylist() for v in values_names], strict=True)) \
            if values_names else [()] * n
        return _Candidates(tuple(values_names), keys, table.column("time").to_pylist(), values)

    def _last_of_each_key(self, table: pa.Table) -> np.ndarray:
        """For rows sorted by key then time: True for the last `count` rows of each key."""
        n = table.num_rows
        ends = np.zeros(n, dtype=bool)
        ends[-1] = True
        for k in self._keys:
            col = table.column(k).combine_chunks()
            changed = pc.not_equal(col.slice(1), col.slice(0, n - 1))
            ends[:-1] |= changed.to_numpy(zero_copy_only=False)
        last = np.flatnonzero(ends)
        pos = np.arange(n)
        group_end = last[np.searchsorted(last, pos)]
        keep: np.ndarray = (group_end - pos) < self._count
        return keep

    # ---- eviction and reads ----------------------------------------------------------

    def evict(self, now_ns: int) -> None:
        """Drop expired rows, and keys left with none."""
        cutoff = now_ns - self._ttl_ns
        with self._lock:
            changed = False
            for key in list(self._stores):
                store = self._stores[key]
                kept = [r for r in store if r.entered_ns > cutoff]
                if len(kept) == len(store):
                    continue
                changed = True
                if kept:
                    self._stores[key] = deque(kept, maxlen=self._count)
                else:
                    del self._stores[key]
            if changed:
                self._version += 1

    def __len__(self) -> int:
        """Keys held (expired rows included until evicted)."""
        with self._lock:
            return len(self._stores)

    def read(self, columns: Mapping[str, ColumnType], now_ns: int) -> pa.Table:
        """Every unexpired row, as `last_cache()` returns them (see the module doc);
        `columns` are the table's catalog columns now."""
        schema = last_cache_schema(self.definition, columns)
        with self._lock:
            read = self._read
            if read is not None and read[0] == self._version and read[1].equals(schema) \
                    and now_ns < read[2]:
                return read[3]
            table, expires = self._build(schema, now_ns)
            self._read = (self._version, schema, expires, table)
            return table

    def _build(self, schema: pa.Schema, now_ns: int) -> tuple[pa.Table, int]:
        cutoff = now_ns - self._ttl_ns
        value_names = schema.names[len(self._keys):]
        rows: list[tuple[object, ...]] = []
        oldest = _MAX_NS
        #: per value-column layout of rows (the columns a write had), the getter that
        #: takes the output's values from `row.values + (row.time, None)`
        getters: dict[tuple[str, ...], Callable[[tuple[object, ...]], tuple[object, ...]]] = {}
        for key in sorted(self._stores):
            for row in self._stores[key]:
                if row.entered_ns <= cutoff:
                    continue
                oldest = min(oldest, row.entered_ns)
                get = getters.get(row.names)
                if get is None:
                    get = getters[row.names] = _getter(row.names, value_names)
                rows.append(key + get((*row.values, row.time, None)))
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
        arrays = [pa.array(list(vals), type=f.type)
                  for vals, f in zip(columns, schema, strict=True)]
        expires = _MAX_NS if oldest == _MAX_NS else oldest + self._ttl_ns
        return pa.Table.from_arrays(arrays, schema=schema), expires


def _getter(names: tuple[str, ...], wanted: list[str]
            ) -> Callable[[tuple[object, ...]], tuple[object, ...]]:
    """For rows whose values are `names` followed by their time and a null: a function
    picking `wanted` out of them, in that order (a column they lack: the null)."""
    at = {c: i for i, c in enumerate(names)}
    n = len(names)
    picks = [n if c == "time" else at.get(c, n + 1) for c in wanted]
    if not picks:
        return lambda values: ()
    pick = operator.itemgetter(*picks)
    if len(picks) == 1:
        return lambda values: (pick(values),)
    return pick


def _plain(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Dictionary-encoded tags as plain strings (Arrow sorts and compares those)."""
    if pa.types.is_dictionary(col.type):
        return col.cast(col.type.value_type)
    return col
