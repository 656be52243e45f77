"""The in-memory, queryable copy of flushed writes: Arrow batches per table.

Two generations: `active` receives every flushed WAL file; a snapshot moves `active`
to `persisting` while its Parquet files are written, and drops it in the same locked
step that publishes those files, so a query never sees a row twice or not at all.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pyarrow as pa

from weir.wal import WalFile

Key = tuple[str, str]  # (database, table)

# Past this many small batches a table's buffer is concatenated into one, so queries
# under a stream of tiny writes scan a few large batches rather than thousands.
_COMPACT_AT = 64


@dataclass
class Generation:
    tables: dict[Key, list[pa.RecordBatch]] = field(default_factory=dict)
    nbytes: int = 0
    #: WAL sequence of the newest file applied to this generation
    max_seq: int = 0

    def add(self, key: Key, batch: pa.RecordBatch) -> None:
        lst = self.tables.setdefault(key, [])
        lst.append(batch)
        self.nbytes += batch.nbytes
        if len(lst) >= _COMPACT_AT:
            t = pa.concat_tables(
                [pa.Table.from_batches([b]) for b in lst], promote_options="default"
            ).combine_chunks()
            self.tables[key] = t.to_batches()


class Buffer:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.active = Generation()
        self.persisting: Generation | None = None

    def apply(self, wal: WalFile) -> None:
        with self.lock:
            for op in wal.ops:
                if op.batch.num_rows:
                    self.active.add((op.db, op.table), op.batch)
            self.active.max_seq = max(self.active.max_seq, wal.seq)

    @property
    def nbytes(self) -> int:
        with self.lock:
            return self.active.nbytes + (self.persisting.nbytes if self.persisting else 0)

    def batches(self, db: str, table: str) -> list[pa.RecordBatch]:
        """Every buffered batch of a table (call with `lock` held for a consistent view)."""
        with self.lock:
            out = list(self.persisting.tables.get((db, table), ())) if self.persisting else []
            out.extend(self.active.tables.get((db, table), ()))
            return out

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
                    g.nbytes -= sum(b.nbytes for b in g.tables.pop(key))
