"""Snapshots: the buffer written to Parquet files, one per table per gen1 time window.

A snapshot writes its Parquet files first, then one manifest
`<node>/snapshots/<seq>.json` (an atomic put) naming the files and the last WAL
sequence they cover. Only then are those WAL files deleted. After a crash at any point
either the manifest exists (its WAL files are skipped on replay) or it does not (the
WAL is replayed and the unreferenced Parquet files are ignored): nothing is lost and
nothing counted twice.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from weir.buffer import Generation
from weir.catalog import Catalog
from weir.objectstore import ObjectStore

log = logging.getLogger("weir.persist")


@dataclass(frozen=True)
class PersistedFile:
    database: str
    db_id: int
    table: str
    table_id: int
    path: str
    size_bytes: int
    row_count: int
    min_time: int
    max_time: int


@dataclass
class PersistEvent:
    """What a snapshot persisted (handed to `parquet` triggers)."""

    seq: int
    files: list[PersistedFile] = field(default_factory=list)


class PersistedIndex:
    """Every Parquet file the snapshots have published, by (db id, table id)."""

    def __init__(self) -> None:
        self.files: dict[tuple[int, int], list[PersistedFile]] = {}
        self.last_wal_seq = 0
        self.snapshot_count = 0

    def add(self, files: list[PersistedFile], wal_seq: int) -> None:
        for f in files:
            self.files.setdefault((f.db_id, f.table_id), []).append(f)
        self.last_wal_seq = max(self.last_wal_seq, wal_seq)
        self.snapshot_count += 1

    def for_table(self, db_id: int, table_id: int) -> list[PersistedFile]:
        return list(self.files.get((db_id, table_id), ()))

    def all(self) -> list[PersistedFile]:
        return [f for fs in self.files.values() for f in fs]

    @classmethod
    def load(cls, store: ObjectStore, node_id: str) -> PersistedIndex:
        idx = cls()
        for path in store.list(f"{node_id}/snapshots/"):
            if not path.endswith(".json"):
                continue
            doc = json.loads(store.get(path))
            idx.add([PersistedFile(**f) for f in doc["files"]], doc["wal_seq"])
        return idx


def _window_label(start_ns: int) -> str:
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=start_ns // 1000)
    return dt.strftime("%Y-%m-%d/%H-%M")


def gen1_windows(times: pa.ChunkedArray | pa.Array, gen1_ns: int) -> pa.Array:
    """The start of each row's gen1 window, in integer nanoseconds.

    Floor division on int64 (numpy's `//` floors, so negative times land in the window
    that contains them); a float would round times near now by up to 256 ns and put a
    row 1 ns before a window boundary in the next window."""
    ns = times.cast(pa.int64()).to_numpy(zero_copy_only=False)
    with np.errstate(over="ignore"):
        starts = ns - ns % gen1_ns
    # the earliest window starts before int64's range: clamp it to the first nanosecond
    return pa.array(np.where(starts > ns, np.iinfo(np.int64).min, starts), pa.int64())


def write_snapshot(
    gen: Generation,
    *,
    store: ObjectStore,
    catalog: Catalog,
    node_id: str,
    gen1_ns: int,
) -> PersistEvent:
    """Write `gen` as Parquet plus its manifest. Runs in a worker thread."""
    seq = gen.max_seq
    event = PersistEvent(seq=seq)
    for (db, table), batches in gen.tables.items():
        try:
            dbs = catalog.db(db)
            tschema = catalog.table(db, table)
        except Exception:  # deleted since it was written: nothing to persist
            continue
        schema = tschema.arrow_schema()
        t = pa.concat_tables(
            [pa.Table.from_batches([b]) for b in batches], promote_options="default"
        )
        # Fill columns the batches lacked and order columns as the table schema does.
        cols = []
        for f in schema:
            if f.name in t.column_names:
                cols.append(t.column(f.name).cast(f.type))
            else:
                cols.append(pa.nulls(t.num_rows, f.type))
        t = pa.Table.from_arrays(cols, schema=schema)
        if t.num_rows == 0:
            continue
        windows = gen1_windows(t.column("time"), gen1_ns)
        for w in pc.unique(windows).to_pylist():
            part = t.filter(pc.equal(windows, w)).sort_by([("time", "ascending")])
            path = (
                f"{node_id}/dbs/{dbs.id}/{tschema.id}/{_window_label(w)}/{seq:011d}.parquet"
            )
            sink = pa.BufferOutputStream()
            pq.write_table(part, sink, compression="zstd")
            data = sink.getvalue().to_pybytes()
            store.put(path, data)
            ptimes = part.column("time").cast(pa.int64())
            event.files.append(
                PersistedFile(
                    database=db,
                    db_id=dbs.id,
                    table=table,
                    table_id=tschema.id,
                    path=path,
                    size_bytes=len(data),
                    row_count=part.num_rows,
                    min_time=pc.min(ptimes).as_py(),
                    max_time=pc.max(ptimes).as_py(),
                )
            )
    manifest = {
        "wal_seq": seq,
        "written_ns": time.time_ns(),
        "files": [asdict(f) for f in event.files],
    }
    store.put(f"{node_id}/snapshots/{seq:020d}.json", json.dumps(manifest).encode())
    log.info("snapshot up to WAL %d persisted %d parquet files", seq, len(event.files))
    return event


__all__ = ["PersistEvent", "PersistedFile", "PersistedIndex", "write_snapshot"]
