"""A snapshot written to the memory object store, read back: `write_snapshot` of a frozen
buffer generation (real parsed production-shaped rows: near-now nanosecond times,
thousands of series, gen1 window edges, big integers, escapes), then the Parquet files
and the manifest index checked against the generator's rows."""

from __future__ import annotations

import io
import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.datagen import CPU, ESCAPED, GEN1_NS, Dataset, Row, generate
from support.inprocess import batch
from weir.buffer import Buffer, Generation
from weir.catalog import Catalog
from weir.objectstore import MemoryObjectStore
from weir.persist import PersistedFile, PersistedIndex, PersistEvent, write_snapshot
from weir.wal import WalFile, WalOp

NODE = "node-a"
DB = "metrics"
# 2,000 cpu series and 60 escaped ones over 25 minutes: three or four 10-minute windows,
# with rows exactly at a window start and 1 ns before it
DATA = generate(seed=1201, hosts=50, regions=40, points_per_series=3, escaped_series=60,
                boundary_rows=True)


class Setup:
    def __init__(self, tables: dict | None = None) -> None:
        self.store = MemoryObjectStore()
        self.catalog = Catalog(self.store, NODE)
        self.catalog.load()
        for spec in (tables or DATA.tables).values():
            self.catalog.create_table(DB, spec.name, list(spec.tag_keys),
                                      list(spec.field_types.items()), create_database=True)
        self.buffer = Buffer()
        self.seq = 0

    def apply(self, lp: str) -> None:
        self.seq += 1
        self.buffer.apply(WalFile(seq=self.seq, ops=[WalOp(DB, t, b) for t, b in batch(lp)],
                                  written_ns=time.time_ns()))

    def snapshot(self) -> tuple[Generation, PersistEvent]:
        gen = self.buffer.freeze()
        assert gen is not None
        event = write_snapshot(gen, store=self.store, catalog=self.catalog, node_id=NODE,
                               gen1_ns=GEN1_NS)
        return gen, event

    def read(self, f: PersistedFile) -> pa.Table:
        return pq.read_table(io.BytesIO(self.store.get(f.path)))


def window_label(start_ns: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=start_ns // 10**9)
            ).strftime("%Y-%m-%d/%H-%M")


def file_rows(t: pa.Table, table: str) -> list[Row]:
    """A Parquet file's rows as the generator's `Row`s (null fields and tags left out)."""
    spec = DATA.tables[table]
    times = t.column("time").cast(pa.int64()).to_pylist()
    out = []
    for d, ts in zip(t.to_pylist(), times, strict=True):
        out.append(Row(table, {k: d[k] for k in spec.tag_keys if d.get(k) is not None},
                       {k: d[k] for k in spec.field_types if d.get(k) is not None}, ts))
    return out


def as_set(rows: list[Row]) -> list[tuple[Any, ...]]:
    return sorted((r.key, tuple(sorted(r.fields.items()))) for r in rows)


def storage_order(rows: list[Row], table: str) -> list[tuple[Any, ...]]:
    """The order a snapshot file must have: tag values (a missing tag after every
    value), the tag with the most distinct values among `rows` first, ties by name;
    then time."""
    tags = sorted(sorted(DATA.tables[table].tag_keys),
                  key=lambda k: -len({r.tags.get(k) for r in rows} - {None}))
    return [(*((r.tags.get(k) is None, r.tags.get(k) or "") for k in tags), r.time)
            for r in rows]


# ---- files and rows ------------------------------------------------------------------------


def shuffled_parts(data: Dataset, n: int, seed: int) -> list[str]:
    """The lines in a seeded random order (agents writing interleaved, late rows), cut
    into `n` bodies."""
    lines = [line for _t, line in data.lines]
    random.Random(seed).shuffle(lines)
    size = -(-len(lines) // n)
    return ["\n".join(lines[i:i + size]) for i in range(0, len(lines), size)]


@pytest.fixture(scope="module")
def snap() -> tuple[Setup, Generation, PersistEvent]:
    s = Setup()
    for part in shuffled_parts(DATA, 3, seed=1):
        s.apply(part)
    gen, event = s.snapshot()
    return s, gen, event


def test_one_file_per_table_and_window_named_by_ids_window_and_sequence(snap) -> None:
    s, gen, event = snap
    assert event.seq == gen.max_seq == 3
    dbs = s.catalog.db(DB)
    want = {}
    for table in (CPU, ESCAPED):
        tid = s.catalog.table(DB, table).id
        assert len(DATA.windows(table)) >= 3, DATA.describe()
        for w in DATA.windows(table):
            want[f"{NODE}/dbs/{dbs.id}/{tid}/{window_label(w)}/{3:011d}.parquet"] = (table, w)
    assert sorted(f.path for f in event.files) == sorted(want)
    # written, nothing else, and not published: no manifest names them yet
    assert s.store.list(f"{NODE}/dbs/") == sorted(want)
    assert s.store.list(f"{NODE}/manifests/") == []
    for f in event.files:
        table, _w = want[f.path]
        assert (f.database, f.db_id, f.table, f.table_id) == (
            DB, dbs.id, table, s.catalog.table(DB, table).id)
        # the buffer's overwrite flag travels with the file (the edge rows go back in time
        # in their series, so a table may be marked)
        assert (f.seq, f.generation, f.merge) == (3, 1, gen.tables[(DB, table)].overwrites)
        assert f.size_bytes == len(s.store.get(f.path))


def test_each_file_holds_exactly_its_windows_rows(snap) -> None:
    s, _gen, event = snap
    for f in event.files:
        t = s.read(f)
        w = next(w for w in DATA.windows(f.table)
                 if f.path.split("/")[-3:-1] == window_label(w).split("/"))
        want = DATA.windows(f.table)[w]
        got = file_rows(t, f.table)
        assert as_set(got) == as_set(want), (f.path, DATA.describe())
        assert f.row_count == t.num_rows == len(want)
        assert (f.min_time, f.max_time) == (min(r.time for r in want),
                                            max(r.time for r in want))
        assert w <= f.min_time and f.max_time < w + GEN1_NS
    # the edge rows: 1 ns before a window start in the window before it, not in its own
    (b,) = DATA.boundaries
    seen = {b: 0, b - 1: 0}
    for f in event.files:
        times = set(s.read(f).column("time").cast(pa.int64()).to_pylist())
        assert not (b in times and b - 1 in times), f.path
        for edge in seen:
            seen[edge] += edge in times
    assert seen == {b: 2, b - 1: 2}  # in each table's file of its own window
    total = sum(f.row_count for f in event.files)
    assert total == len(DATA.rows), DATA.describe()


def test_rows_are_sorted_by_series_key_then_time(snap) -> None:
    s, gen, event = snap
    for table in (CPU, ESCAPED):
        # written in another order: the order of the files is the snapshot's doing
        buffered = [r for b in gen.tables[(DB, table)].batches
                    for r in file_rows(pa.Table.from_batches([b]), table)]
        assert storage_order(buffered, table) != sorted(storage_order(buffered, table))
    sizes = []
    for f in event.files:
        keys = storage_order(file_rows(s.read(f), f.table), f.table)
        assert keys == sorted(keys), f.path
        sizes.append(len(keys))
    assert sum(sizes) == len(DATA.rows) and max(sizes) > 1000


def test_files_have_the_catalogs_schema(snap) -> None:
    s, _gen, event = snap
    for f in event.files:
        schema = s.read(f).schema
        want = s.catalog.table(DB, f.table).arrow_schema()
        assert schema.names == want.names
        for field in want:
            got = schema.field(field.name)
            assert got.type == field.type, (f.path, field.name)
            assert (got.metadata or {}).get(b"weir:kind") == field.metadata[b"weir:kind"]


def test_time_is_delta_encoded_and_uncompressed_and_the_rest_zstd(snap) -> None:
    # within a series the steps of time repeat: delta-encoded, a day of 100 hosts' times
    # is 164 KiB instead of 2.5 MiB of zstd, and reads in a third of the time
    s, _gen, event = snap
    for f in event.files:
        meta = pq.ParquetFile(io.BytesIO(s.store.get(f.path))).metadata
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                column = group.column(c)
                if column.path_in_schema == "time":
                    assert "DELTA_BINARY_PACKED" in column.encodings, f.path
                    assert column.compression == "UNCOMPRESSED", f.path
                else:
                    assert column.compression == "ZSTD", (f.path, column.path_in_schema)


# ---- the manifest ----------------------------------------------------------------------------


def test_published_manifest_names_the_files_with_sequence_and_generation() -> None:
    # every series moving forward in time (no edge rows): only a rewrite marks a table
    data1 = generate(seed=1202, hosts=30, regions=20, points_per_series=3)
    data2 = generate(seed=1203, hosts=20, regions=10, points_per_series=2, tables=(CPU,))
    s = Setup()
    s.apply(data1.lp())
    s.apply(data1.lp([ESCAPED]))  # the same points again: the table is marked for merging
    gen1, first = s.snapshot()
    index = PersistedIndex()
    index.publish(s.store, NODE, add=first.files, wal_seq=first.seq)
    s.buffer.release(gen1)
    for table in (CPU, ESCAPED):  # merged or not, every point once
        got = [r for f in first.files if f.table == table for r in file_rows(s.read(f), table)]
        assert as_set(got) == as_set(data1.table_rows(table)), data1.describe()

    (m1,) = s.store.list(f"{NODE}/manifests/")
    doc = json.loads(s.store.get(m1))
    assert (doc["version"], doc["wal_seq"], doc["snapshot_count"]) == (1, 2, 1)
    assert sorted((d["path"], d["seq"], d["generation"]) for d in doc["files"]) == sorted(
        (f.path, 2, 1) for f in first.files)
    merged = {d["table"]: d["merge"] for d in doc["files"]}
    assert merged == {CPU: False, ESCAPED: True}

    # a second snapshot: new files beside the first (never over them), a newer sequence
    s.apply(data2.lp())
    s.apply(data2.lp())
    _gen2, second = s.snapshot()
    assert second.seq == 4 and second.files
    assert not {f.path for f in first.files} & {f.path for f in second.files}
    index.publish(s.store, NODE, add=second.files, wal_seq=second.seq)

    loaded = PersistedIndex.load(s.store, NODE)
    assert (loaded.version, loaded.last_wal_seq, loaded.snapshot_count) == (2, 4, 2)
    assert sorted(loaded.all(), key=lambda f: f.path) == sorted(
        first.files + second.files, key=lambda f: f.path)
    # where two files cover the same window, the later writes carry the higher sequence
    by_window: dict[str, list[PersistedFile]] = {}
    for f in loaded.all():
        by_window.setdefault(f.path.rsplit("/", 1)[0], []).append(f)
    overlapping = [fs for fs in by_window.values() if len(fs) > 1]
    assert overlapping
    for fs in overlapping:
        assert sorted(f.seq for f in fs) == [2, 4]
        newest = max(fs, key=lambda f: f.seq)
        assert newest in second.files and newest.merge is True


def test_rewritten_points_are_merged_last_write_wins_and_marked() -> None:
    data = generate(seed=1204, hosts=40, regions=25, points_per_series=2, overwrites=400,
                    escaped_series=40)
    s = Setup(data.tables)
    s.apply(data.base_lp())
    s.apply(data.overwrites_lp())
    gen, event = s.snapshot()
    assert all(tb.overwrites for tb in gen.tables.values())
    assert event.files and all(f.merge for f in event.files)
    for table in (CPU, ESCAPED):
        got = [r for f in event.files if f.table == table for r in file_rows(s.read(f), table)]
        # one row per point; a later write replaced the fields it named, kept the others
        assert as_set(got) == as_set(data.table_rows(table)), data.describe()


def test_a_table_deleted_since_it_was_buffered_is_not_written() -> None:
    s = Setup()
    s.apply(DATA.lp())
    gone = s.catalog.table(DB, ESCAPED).id
    s.catalog.delete_table(DB, ESCAPED)
    _gen, event = s.snapshot()
    assert {f.table for f in event.files} == {CPU}
    assert sum(f.row_count for f in event.files) == len(DATA.table_rows(CPU))
    assert s.store.list(f"{NODE}/dbs/") == sorted(f.path for f in event.files)
    assert not [p for p in s.store.list(f"{NODE}/dbs/") if f"/{gone}/" in p]


def test_a_snapshot_that_fails_midway_raises_and_publishes_nothing() -> None:
    class FullDisk(MemoryObjectStore):
        def __init__(self) -> None:
            super().__init__()
            self.parquet_puts = 0

        def put(self, path: str, data: bytes) -> None:
            if path.endswith(".parquet"):
                self.parquet_puts += 1
                if self.parquet_puts == 3:
                    raise OSError(28, "No space left on device")
            super().put(path, data)

    s = Setup()
    s.store = FullDisk()
    s.apply(DATA.lp())
    with pytest.raises(OSError, match="No space"):
        s.snapshot()
    assert s.store.list(f"{NODE}/manifests/") == []
    assert len(s.store.list(f"{NODE}/dbs/")) == 2  # written before the failure, unnamed
    assert PersistedIndex.load(s.store, NODE).all() == []
