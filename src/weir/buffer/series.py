"""Series identity for one table, so the buffer can tell cheaply whether a write may
overwrite a point it already holds.

A point is (table, tag set, time). Deduplicating every query would cost a hash
aggregation over the whole buffer; instead each incoming batch is checked against the
newest time seen per series: a row newer than every earlier row of its series cannot
collide with one, which is what steady ingest looks like. Only writes that go back in
time within a series (overwrites, backfill, a row repeated in one body) mark the table
as needing last-write-wins merging.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

KIND_META = b"weir:kind"
_NO_TIME = np.iinfo(np.int64).min


@dataclass
class Collisions:
    """What one batch may collide with."""

    #: two rows of the same point inside the batch, or a row not newer than an earlier
    #: row of its series (in the buffer or persisted since start-up)
    earlier_rows: bool
    #: a row at or before `persisted_before`: it may overwrite a point in Parquet files
    #: that were there when the server started
    old_files: bool


def tag_columns(schema: pa.Schema) -> list[str]:
    return [f.name for f in schema if (f.metadata or {}).get(KIND_META) == b"tag"]


class SeriesTracker:
    """Series ids for the tag sets of one table, and the newest time seen per series."""

    def __init__(self, persisted_before: int | None = None) -> None:
        #: the newest time in Parquet files that existed at start-up (None: none)
        self.persisted_before = persisted_before
        self._tag_ids: dict[str, int] = {}
        self._value_codes: list[dict[str, int]] = []
        self._series: dict[tuple[tuple[int, int], ...], int] = {}
        #: (tag ids in batch column order, their codes) -> series id: the common case
        self._seen: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
        self._newest = np.full(64, _NO_TIME, dtype=np.int64)

    def observe(self, batch: pa.RecordBatch) -> Collisions:
        """Record the batch's rows; say whether any may collide with an earlier point."""
        times = batch.column("time").cast(pa.int64()).to_numpy(zero_copy_only=False)
        if len(times) == 0:
            return Collisions(False, False)
        sids = self._series_ids(batch)
        order = np.lexsort((times, sids))
        s, t = sids[order], times[order]
        within = bool(np.any((s[1:] == s[:-1]) & (t[1:] == t[:-1])))
        if len(self._newest) < len(self._series):
            grown = np.full(max(len(self._series), 2 * len(self._newest)), _NO_TIME, np.int64)
            grown[: len(self._newest)] = self._newest
            self._newest = grown
        earlier = within or bool(np.any(times <= self._newest[sids]))
        np.maximum.at(self._newest, sids, times)
        old = self.persisted_before is not None and int(times.min()) <= self.persisted_before
        return Collisions(earlier, old)

    def _series_ids(self, batch: pa.RecordBatch) -> np.ndarray:
        tags = tag_columns(batch.schema)
        n = batch.num_rows
        if not tags:
            return np.full(n, self._series.setdefault((), len(self._series)), dtype=np.int64)
        # Per row, one int64 for its combination of tag values within this batch (mixed
        # radix over the columns' codes, renumbered when it would overflow); then one
        # dictionary look-up per distinct series of the batch, never one per row.
        ids = []
        columns = []
        local = np.zeros(n, dtype=np.int64)
        radix = 1
        for name in tags:
            tag_id = self._tag_ids.setdefault(name, len(self._tag_ids))
            if tag_id == len(self._value_codes):
                self._value_codes.append({})
            known = self._value_codes[tag_id]
            col = batch.column(name)
            if not pa.types.is_dictionary(col.type):
                col = pc.dictionary_encode(col)
            dictionary = col.dictionary.to_pylist()
            mapping = np.array([known.setdefault(v, len(known)) for v in dictionary] + [-1],
                               dtype=np.int64)
            idx = col.indices.fill_null(len(dictionary)).to_numpy(zero_copy_only=False)
            ids.append(tag_id)
            columns.append(mapping[idx])
            width = len(dictionary) + 1
            if radix * width >= 2**62:
                _, local = np.unique(local, return_inverse=True)
                local = local.reshape(-1).astype(np.int64)
                radix = int(local.max()) + 1
            local = local * width + idx
            radix *= width
        _, first, inverse = np.unique(local, return_index=True, return_inverse=True)
        matrix = np.stack(columns, axis=1)[first].tolist()
        sid_of_local = np.empty(len(first), dtype=np.int64)
        series, seen = self._series, self._seen
        sig = tuple(ids)
        for k, row in enumerate(matrix):
            raw = (sig, tuple(row))
            sid = seen.get(raw)
            if sid is None:
                # the canonical key: (tag id, value code) for each tag present, in tag-id
                # order, so column order and absent tags never make two ids for one series
                key = tuple(sorted((i, c) for i, c in zip(ids, row, strict=True) if c >= 0))
                sid = seen[raw] = series.setdefault(key, len(series))
            sid_of_local[k] = sid
        return sid_of_local[inverse.reshape(-1)]

