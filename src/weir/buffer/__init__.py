"""The in-memory, queryable copy of flushed writes: Arrow batches per table.

Two generations: `active` receives every flushed WAL file; a snapshot moves `active`
to `persisting` while its Parquet files are written, and drops it in the same locked
step that publishes those files, so a query never sees a row twice or not at all.

Batches are kept as written, in WAL order (the order last-write-wins merges by). Each
table remembers whether any of its rows may overwrite an earlier point (see
`series.SeriesTracker`); only such tables are merged at query and snapshot time.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from weir.buffer.series import SeriesTracker, tag_columns
from weir.wal import WalFile

__all__ = ["Buffer", "Generation", "TableBuffer", "tag_columns"]

Key = tuple[str, str]  # (database, table)

_UIDS = itertools.count(1)

# Past this many small batches since the last concatenation, those batches (only
# those: the older large ones stay as they are, so the cost is linear in what was
# written) become one, and queries under a stream of tiny writes scan a few large
# batches rather than thousands.
_COMPACT_AT = 64
# The concatenated rows are kept as batches of at most this many rows, not one: rows are
# mostly written in time order, so each batch covers a short stretch of time, and a query
# of the last minutes leaves out the batches before them (weir.query.engine) instead of
# scanning the whole hour.
_BATCH_ROWS = 65_536


@dataclass
class TableBuffer:
    """One table's rows in one generation, oldest first."""

    batches: list[pa.RecordBatch] = field(default_factory=list)
    nbytes: int = 0
    rows: int = 0
    min_time: int = np.iinfo(np.int64).max
    max_time: int = np.iinfo(np.int64).min
    #: some row may overwrite an earlier point (of the buffer, or of Parquet files):
    #: merge by last-write-wins before use
    overwrites: bool = False
    #: bumped on every change, so merged copies can be cached (by `uid` and `version`)
    version: int = 0
    #: this table buffer's identity, for life (copies made by `frozen` share it)
    uid: int = field(default_factory=lambda: next(_UIDS))
    #: batches before this index are already concatenated
    _small_from: int = 0

    def add(self, batch: pa.RecordBatch, overwrites: bool) -> None:
        times = batch.column("time").cast(pa.int64())
        self.batches.append(batch)
        self.nbytes += batch.nbytes
        self.rows += batch.num_rows
        lo, hi = _min_max(times)
        self.min_time = min(self.min_time, lo)
        self.max_time = max(self.max_time, hi)
        self.overwrites |= overwrites
        self.version += 1
        if len(self.batches) - self._small_from >= _COMPACT_AT:
            small = self.batches[self._small_from:]
            t = pa.concat_tables(
                [pa.Table.from_batches([b]) for b in small], promote_options="default"
            ).combine_chunks()
            self.batches[self._small_from:] = t.to_batches(max_chunksize=_BATCH_ROWS)
            self._small_from = len(self.batches)
            # what the buffer holds now (the small batches' own buffers are freed), so
            # snapshots and back-pressure are not started early
            self.nbytes = sum(b.nbytes for b in self.batches)


    def frozen(self) -> TableBuffer:
        """A copy that later writes leave as it is (its batch list is its own). Take it
        with the buffer's lock held: writes change the batch list in place."""
        return dataclasses.replace(self, batches=list(self.batches))


@dataclass
class Generation:
    tables: dict[Key, TableBuffer] = field(default_factory=dict)
    nbytes: int = 0
    #: WAL sequence of the newest file applied to this generation
    max_seq: int = 0


class Buffer:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.active = Generation()
        self.persisting: Generation | None = None
        self._trackers: dict[Key, SeriesTracker] = {}
        #: newest persisted time per table at start-up (set before replay)
        self.persisted_before: dict[Key, int] = {}

    def apply(self, wal: WalFile) -> None:
        with self.lock:
            for op in wal.ops:
                if not op.batch.num_rows:
                    continue
                key = (op.db, op.table)
                tracker = self._trackers.get(key)
                if tracker is None:
                    tracker = self._trackers[key] = SeriesTracker(self.persisted_before.get(key))
                seen = tracker.observe(op.batch)
                tb = self.active.tables.setdefault(key, TableBuffer())
                before = tb.nbytes
                tb.add(op.batch, seen.earlier_rows or seen.old_files)
                self.active.nbytes += tb.nbytes - before
            self.active.max_seq = max(self.active.max_seq, wal.seq)

    @property
    def nbytes(self) -> int:
        with self.lock:
            return self.active.nbytes + (self.persisting.nbytes if self.persisting else 0)

    def tables(self, db: str, table: str) -> list[TableBuffer]:
        """The table's buffers, oldest generation first (call with `lock` held for a
        consistent view with the persisted files)."""
        with self.lock:
            return [tb for g in (self.persisting, self.active)
                    if g is not None and (tb := g.tables.get((db, table))) is not None]

    def batches(self, db: str, table: str) -> list[pa.RecordBatch]:
        """Every buffered batch of a table, oldest first, as written (not merged)."""
        return [b for tb in self.tables(db, table) for b in tb.batches]

    def freeze(self) -> Generation | None:
        """Move `active` to `persisting` and return it; None if there is nothing to persist
        or a snapshot is already running."""
        with self.lock:
            if self.persisting is not None or not self.active.tables:
                return None
            self.persisting, self.active = self.active, Generation()
            return self.persisting

    def release(self, gen: Generation) -> None:
        with self.lock:
            if self.persisting is gen:
                self.persisting = None

    def drop(self, db: str, table: str | None = None) -> None:
        with self.lock:
            for g in (self.active, self.persisting):
                if g is None:
                    continue
                for key in [k for k in g.tables if k[0] == db and (table is None or k[1] == table)]:
                    g.nbytes -= g.tables.pop(key).nbytes
            for key in [k for k in self._trackers if k[0] == db and (table is None or k[1] == table)]:
                del self._trackers[key]


def _min_max(times: pa.Array) -> tuple[int, int]:
    arr = times.to_numpy(zero_copy_only=False)
    return int(arr.min()), int(arr.max())
