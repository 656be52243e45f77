"""Parquet files and the manifest that says which of them hold the data.

A snapshot writes the buffer as Parquet, one file per table per gen1 time window, rows
merged by last-write-wins and sorted by series key and time. The compactor merges files
into larger ones. Either step writes its Parquet files first, then publishes the whole
new file set as the next manifest `<node>/manifests/<version>.json` (put-if-absent, so
it is atomic and never overwrites), and only then deletes what it replaced (the WAL
files a snapshot covers, the inputs of a compaction). After a crash at any point the
newest manifest names exactly one copy of every point: files it does not name are
leftovers and are removed at start-up; WAL files after its `wal_seq` are replayed.

Each file carries `seq`, the newest WAL sequence whose rows it may hold. Where files
overlap in time, the one with the higher `seq` holds the later writes; `merge` marks a
file whose rows may overwrite points in older files (a query merges it with them).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import NotRequired, TypedDict, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from weir.buffer import Generation, TableBuffer, tag_columns
from weir.catalog import Catalog
from weir.errors import NotFound
from weir.objectstore import ObjectStore
from weir.persist.lww import dedupe, sort_for_storage

log = logging.getLogger("weir.persist")

#: manifests kept behind the newest (older ones are deleted)
_MANIFESTS_KEPT = 5
#: a shared manifest's publish that keeps losing the race gives up after this many
#: attempts or this long, whichever comes later (a cluster's compactor publishing a job of
#: each small table in turn took 20 versions in a row from a snapshot in 1.4 s)
_PUBLISH_TRIES = 20
_PUBLISH_PATIENCE_S = 30.0
#: the most a lost race waits before its next attempt (a random share of it, growing with
#: the attempts: two writers that keep meeting fall out of step)
_PUBLISH_BACKOFF_S = 0.25


class ManifestConflict(RuntimeError):
    """Another writer published the manifest version this one meant to write."""


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
    #: newest WAL sequence of the rows it may hold (orders overlapping files)
    seq: int = 0
    #: 1 for a snapshot's file, one more than its newest input for a compacted file
    generation: int = 1
    #: its rows may overwrite points of older files that overlap it in time
    merge: bool = False


class PersistedFileJson(TypedDict):
    """A PersistedFile as a manifest stores it (`seq` and later fields: newer manifests)."""

    database: str
    db_id: int
    table: str
    table_id: int
    path: str
    size_bytes: int
    row_count: int
    min_time: int
    max_time: int
    seq: NotRequired[int]
    generation: NotRequired[int]
    merge: NotRequired[bool]


class ManifestJson(TypedDict):
    """`<node>/manifests/<version>.json` (format 2), and Weir 0.1's
    `<node>/snapshots/*.json`, which have only `wal_seq` and `files`."""

    format: NotRequired[int]
    version: NotRequired[int]
    wal_seq: int
    snapshot_count: NotRequired[int]
    written_ns: NotRequired[int]
    files: list[PersistedFileJson]
    #: WAL triggers' checkpoints as of `wal_seq` (their markers in the WAL files it covers)
    trigger_checkpoints: NotRequired[list[TriggerCheckpointJson]]


class TriggerCheckpointJson(TypedDict):
    db: str
    trigger: str
    seq: int


def _file_json(f: PersistedFile) -> PersistedFileJson:
    # every field, by asdict (PersistedFileJson names them; PersistedFile(**raw) is
    # checked against the fields)
    return cast(PersistedFileJson, asdict(f))


@dataclass
class PersistEvent:
    """What a snapshot persisted (handed to `parquet` triggers)."""

    seq: int
    files: list[PersistedFile] = field(default_factory=list)


class PersistedIndex:
    """The current manifest: every live Parquet file, by (db id, table id)."""

    def __init__(self) -> None:
        self.files: dict[tuple[int, int], list[PersistedFile]] = {}
        self.last_wal_seq = 0
        self.snapshot_count = 0
        self.version = 0
        #: WAL triggers' checkpoints as of `last_wal_seq`: (db, trigger) -> WAL seq
        self.trigger_checkpoints: dict[tuple[str, str], int] = {}
        self.lock = threading.RLock()
        #: others publish this manifest too (a cluster's compactor): see `publish`
        self.shared = False

    def for_table(self, db_id: int, table_id: int) -> list[PersistedFile]:
        with self.lock:
            return list(self.files.get((db_id, table_id), ()))

    def all(self) -> list[PersistedFile]:
        with self.lock:
            return [f for fs in self.files.values() for f in fs]

    def table_keys(self) -> list[tuple[int, int]]:
        with self.lock:
            return [k for k, fs in self.files.items() if fs]

    def add(self, files: list[PersistedFile], wal_seq: int) -> None:
        """Record files in memory only (tests and legacy loading)."""
        with self.lock:
            for f in files:
                self.files.setdefault((f.db_id, f.table_id), []).append(f)
            self.last_wal_seq = max(self.last_wal_seq, wal_seq)
            self.snapshot_count += 1

    def publish(self, store: ObjectStore, node_id: str, *, add: Iterable[PersistedFile] = (),
                remove: Iterable[PersistedFile] = (), wal_seq: int | None = None,
                checkpoints: Mapping[tuple[str, str], int] | None = None) -> None:
        """Write the next manifest with `add` in and `remove` out, then use it. A snapshot
        (`wal_seq`) gives the WAL triggers' `checkpoints` as of that WAL file; without
        them the current ones are kept.

        Raises KeyError (nothing written) if a file to remove is no longer listed: the
        caller's view is stale (a hard delete or another compaction got there first).
        A `shared` index (a cluster node's, whose manifest the cluster's compactor also
        publishes) that loses the race for the next version loads the newest one and
        applies the same change to it; an unshared one raises ManifestConflict."""
        add, remove = list(add), list(remove)
        give_up = time.monotonic() + _PUBLISH_PATIENCE_S
        attempt = version = 0
        while True:
            attempt += 1
            with self.lock:
                if self._try_publish(store, node_id, add, remove, wal_seq, checkpoints):
                    version = self.version
                    break
                if not self.shared:
                    raise ManifestConflict(
                        f"manifest {_manifest_path(node_id, self.version + 1)} already "
                        f"exists: is another server using node id {node_id!r}?")
            if attempt >= _PUBLISH_TRIES and time.monotonic() >= give_up:
                raise ManifestConflict(f"manifest of node {node_id!r}: lost the race for the "
                                       f"next version {attempt} times in a row")
            time.sleep(random.uniform(0, min(_PUBLISH_BACKOFF_S, 0.002 * 2 ** attempt)))
            with self.lock:
                self.refresh(store, node_id)
        # Published: whatever fails from here must not reach the caller, which would take
        # the change for undone (a compaction deleting the outputs the manifest now lists,
        # a snapshot writing its files again). Old manifests left now go at the next one.
        try:
            for old in store.list(f"{node_id}/manifests/"):
                v = _manifest_version(old)
                if v is not None and v <= version - _MANIFESTS_KEPT:
                    store.delete(old)
        except OSError as e:  # (ObjectStoreUnavailable is one)
            log.warning("manifest %d of node %r is published; removing older manifests "
                        "failed (the next publish tries again): %s", version, node_id, e)

    def _try_publish(self, store: ObjectStore, node_id: str, add: list[PersistedFile],
                     remove: list[PersistedFile], wal_seq: int | None,
                     checkpoints: Mapping[tuple[str, str], int] | None) -> bool:
        """One attempt at the next version (lock held); False if another writer has it."""
        current = {f.path: f for fs in self.files.values() for f in fs}
        for f in remove:
            if f.path not in current:
                raise KeyError(f.path)
            del current[f.path]
        for f in add:
            current[f.path] = f
        seq = max(self.last_wal_seq, wal_seq or 0)
        snapshots = self.snapshot_count + (1 if wal_seq is not None else 0)
        version = self.version + 1
        marks = dict(self.trigger_checkpoints if checkpoints is None else checkpoints)
        doc: ManifestJson = {"format": 2, "version": version, "wal_seq": seq,
                             "snapshot_count": snapshots, "written_ns": time.time_ns(),
                             "files": [_file_json(f) for f in current.values()]}
        if marks:
            doc["trigger_checkpoints"] = [{"db": db, "trigger": name, "seq": s}
                                          for (db, name), s in sorted(marks.items())]
        path = _manifest_path(node_id, version)
        if not store.put_if_absent(path, json.dumps(doc, separators=(",", ":")).encode()):
            return False
        files: dict[tuple[int, int], list[PersistedFile]] = {}
        for f in current.values():
            files.setdefault((f.db_id, f.table_id), []).append(f)
        self.files, self.last_wal_seq = files, seq
        self.snapshot_count, self.version = snapshots, version
        self.trigger_checkpoints = marks
        return True

    def refresh(self, store: ObjectStore, node_id: str) -> bool:
        """Take the newest manifest of `node_id` if it is newer than this one (another
        node published it: the cluster's compactor, or the node this one follows).
        Returns whether anything changed."""
        newest = max((v for p in store.list(f"{node_id}/manifests/")
                      if (v := _manifest_version(p)) is not None), default=0)
        if newest <= self.version:
            return False
        try:
            fresh = PersistedIndex.load(store, node_id, version=newest)
        except FileNotFoundError:  # already replaced by a newer one: the next call sees it
            return False
        with self.lock:
            if fresh.version <= self.version:
                return False
            self.files, self.last_wal_seq = fresh.files, fresh.last_wal_seq
            self.snapshot_count, self.version = fresh.snapshot_count, fresh.version
            self.trigger_checkpoints = fresh.trigger_checkpoints
        return True

    @classmethod
    def load(cls, store: ObjectStore, node_id: str, *, version: int | None = None
             ) -> PersistedIndex:
        """The newest manifest of `node_id` (or the given `version` of it)."""
        idx = cls()
        if version is not None:
            manifests = [(version, _manifest_path(node_id, version))]
        else:
            manifests = sorted((v, p) for p in store.list(f"{node_id}/manifests/")
                               if (v := _manifest_version(p)) is not None)
        if manifests:
            version, path = manifests[-1]
            doc: ManifestJson = json.loads(store.get(path))
            for raw in doc["files"]:
                f = PersistedFile(**raw)
                idx.files.setdefault((f.db_id, f.table_id), []).append(f)
            idx.version, idx.last_wal_seq = version, doc["wal_seq"]
            idx.snapshot_count = doc.get("snapshot_count", 0)
            idx.trigger_checkpoints = {(c["db"], c["trigger"]): c["seq"]
                                       for c in doc.get("trigger_checkpoints", ())}
            return idx
        # Weir 0.1's layout: one manifest per snapshot, each listing only its own files.
        for path in store.list(f"{node_id}/snapshots/"):
            if path.endswith(".json"):
                doc = json.loads(store.get(path))
                idx.add([replace(PersistedFile(**f), seq=doc["wal_seq"]) for f in doc["files"]],
                         doc["wal_seq"])
        return idx

    def remove_leftovers(self, store: ObjectStore, node_id: str) -> int:
        """Delete Parquet files under this node that no manifest names (written by a
        snapshot or compaction that crashed before publishing, or inputs a crash left
        behind after publishing). Call before anything else writes files."""
        with self.lock:
            live = {f.path for fs in self.files.values() for f in fs}
        n = 0
        for path in store.list(f"{node_id}/dbs/"):
            if path.endswith(".parquet") and path not in live:
                store.delete(path)
                n += 1
        return n


def _manifest_path(node_id: str, version: int) -> str:
    return f"{node_id}/manifests/{version:020d}.json"


def _manifest_version(path: str) -> int | None:
    name = path.rsplit("/", 1)[-1]
    if not name.endswith(".json"):
        return None
    try:
        return int(name[:-5])
    except ValueError:
        return None


def _window_label(start_ns: int) -> str:
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=start_ns // 1000)
    return dt.strftime("%Y-%m-%d/%H-%M")


def gen1_windows(times: pa.ChunkedArray | pa.Array, gen1_ns: int) -> pa.Array:
    """The start of each row's gen1 window, in integer nanoseconds.

    Floor division on int64 (numpy's `%` is never negative, so negative times land in
    the window that contains them); a float would round times near now by up to 256 ns
    and put a row 1 ns before a window boundary in the next window."""
    ns = times.cast(pa.int64()).to_numpy(zero_copy_only=False)
    with np.errstate(over="ignore"):
        starts = ns - ns % gen1_ns
    # the earliest window starts before int64's range: clamp it to the first nanosecond
    return pa.array(np.where(starts > ns, np.iinfo(np.int64).min, starts), pa.int64())


def buffered_rows(tbs: list[TableBuffer], schema: pa.Schema) -> pa.Table:
    """A table's buffered rows (oldest generation first) in `schema`, merged by
    last-write-wins when any of them may overwrite another."""
    batches = [b for tb in tbs for b in tb.batches]
    t = conform(pa.concat_tables([pa.Table.from_batches([b]) for b in batches],
                                 promote_options="default") if batches
                else schema.empty_table(), schema)
    if any(tb.overwrites for tb in tbs):
        t = dedupe(t)
    return t


def conform(t: pa.Table, schema: pa.Schema) -> pa.Table:
    """`t` with exactly the columns of `schema`, in its order (missing ones null)."""
    cols = []
    for f in schema:
        if f.name in t.column_names:
            col = t.column(f.name)
            cols.append(col if col.type == f.type else col.cast(f.type))
        else:
            cols.append(pa.nulls(t.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


#: small row groups keep min/max statistics useful for pruning by series and time
ROW_GROUP_ROWS = 128 * 1024
#: rows per data page. With the page index written, a reader skips the pages of a row
#: group whose series or time cannot match: one host's hour in a 128 Ki-row group of
#: 100 hosts reads a page or two per column instead of the whole chunk. DataFusion's CPU
#: time over 864,000 TSBS rows: single-groupby-1-1-1 11.7 -> 5.5 ms, high-cpu-1 44 -> 9 ms,
#: cpu-max-all-8 132 -> 20 ms; a scan of every row ~10% slower, files ~5% larger,
#: encoding ~30% slower (1,024-row pages saved little more and doubled encoding time).
PAGE_ROWS = 2048


def parquet_options(schema: pa.Schema) -> dict[str, object]:
    """How every Parquet file is written. Dictionary pages for tags only: a field of
    measurements rarely repeats, so trying a dictionary for it costs time and then falls
    back anyway (snapshots of TSBS `cpu` encode 40% faster and come out 17% smaller).

    `time` is delta-encoded and not compressed: within a series its steps repeat, so a
    day of 100 TSBS hosts' times (404,400 rows sorted by series) is 164 KiB instead of
    2.5 MiB of zstd, and reads in 1.8 ms instead of 5.2 (pyarrow). Every query reads it
    (each names `time`, and last-value and lastpoint queries read all of it)."""
    tags = set(tag_columns(schema))
    dictionary = [f.name for f in schema if f.name in tags or pa.types.is_dictionary(f.type)]
    options: dict[str, object] = {"compression": "zstd", "use_dictionary": dictionary,
                                  "write_page_index": True, "max_rows_per_page": PAGE_ROWS}
    time_field = schema.field("time") if "time" in schema.names else None
    if time_field is not None and pa.types.is_timestamp(time_field.type) \
            and "time" not in dictionary:
        options["column_encoding"] = {"time": "DELTA_BINARY_PACKED"}
        options["compression"] = {f.name: "none" if f.name == "time" else "zstd"
                                  for f in schema}
    return options


def parquet_bytes(t: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(t, sink, row_group_size=ROW_GROUP_ROWS, **parquet_options(t.schema))
    data: bytes = sink.getvalue().to_pybytes()
    return data


def write_snapshot(
    gen: Generation,
    *,
    store: ObjectStore,
    catalog: Catalog,
    node_id: str,
    gen1_ns: int,
) -> PersistEvent:
    """Write `gen` as Parquet files (not yet published). Runs in a worker thread."""
    seq = gen.max_seq
    event = PersistEvent(seq=seq)
    # a copy: deleting a database or table drops its buffers from this generation too,
    # from another thread, while this runs (what was dropped is skipped below)
    for (db, table), tb in list(gen.tables.items()):
        try:
            dbs = catalog.db(db)
            tschema = catalog.table(db, table)
        except NotFound:  # deleted since it was written: nothing to persist
            continue
        t = buffered_rows([tb], tschema.arrow_schema())
        if t.num_rows == 0:
            continue
        windows = gen1_windows(t.column("time"), gen1_ns)
        for w in pc.unique(windows).to_pylist():
            part = sort_for_storage(t.filter(pc.equal(windows, w)))
            path = (
                f"{node_id}/dbs/{dbs.id}/{tschema.id}/{_window_label(w)}/{seq:011d}.parquet"
            )
            data = parquet_bytes(part)
            store.put(path, data)
            lo, hi = _time_range(part)
            event.files.append(PersistedFile(
                database=db, db_id=dbs.id, table=table, table_id=tschema.id, path=path,
                size_bytes=len(data), row_count=part.num_rows, min_time=lo, max_time=hi,
                seq=seq, generation=1, merge=tb.overwrites))
    log.info("snapshot up to WAL %d wrote %d parquet files", seq, len(event.files))
    return event


def _time_range(t: pa.Table) -> tuple[int, int]:
    times = t.column("time").cast(pa.int64())
    return pc.min(times).as_py(), pc.max(times).as_py()


__all__ = [
    "ROW_GROUP_ROWS",
    "ManifestConflict",
    "PersistEvent",
    "PersistedFile",
    "PersistedIndex",
    "buffered_rows",
    "conform",
    "gen1_windows",
    "parquet_bytes",
    "parquet_options",
    "write_snapshot",
]
