"""A table's provider is made once and reused by later queries while the table's rows are
the same objects; a new batch, other files, a new column or a retention cutoff change what
the next query reads, a table keeps a few providers (queries of different time ranges read
different batches), batch time ranges are kept while the batch lives, and an idle entry is
let go."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from weir.query import DatabaseSnapshot, ParquetFileRef, QueryEngine, TableSnapshot
from weir.query.tables import BatchTimeRanges

NS = pa.timestamp("ns")
TAG = pa.dictionary(pa.int32(), pa.string())
NOW = time.time_ns()
SCHEMA = pa.schema([pa.field("host", TAG), pa.field("usage", pa.float64()),
                    pa.field("time", NS)])


def _batch(hosts: list[str], first: int, schema: pa.Schema = SCHEMA) -> pa.RecordBatch:
    n = len(hosts)
    cols = {"host": pa.array(hosts).dictionary_encode().cast(TAG),
            "usage": pa.array([float(first + i) for i in range(n)]),
            "time": pa.array([NOW - (first + i) * 1_000_000 for i in range(n)], NS)}
    for f in schema:
        cols.setdefault(f.name, pa.nulls(n, f.type))
    return pa.RecordBatch.from_arrays([cols[f.name] for f in schema], schema=schema)


def _snap(batches: list[pa.RecordBatch], files: list[ParquetFileRef] | None = None,
          schema: pa.Schema = SCHEMA, min_time: int | None = None) -> DatabaseSnapshot:
    table = TableSnapshot("cpu", schema, list(batches), list(files or []), min_time)
    return DatabaseSnapshot(name="db", tables={"cpu": table},
                            filesystem=pafs.LocalFileSystem(), system_tables={})


def _count(engine: QueryEngine, snap: DatabaseSnapshot, where: str = "") -> int:
    rows = engine.execute(snap, f"SELECT count(*) AS n FROM cpu {where}").to_pylist()
    return int(rows[0]["n"])


def test_the_provider_is_reused_while_the_rows_are_the_same_objects() -> None:
    engine = QueryEngine()
    first = _batch([f"h{i % 50}" for i in range(5000)], 0)
    snap = _snap([first])
    assert engine._providers.get("db", snap.tables["cpu"]) is None
    assert _count(engine, snap) == 5000
    made = engine._providers.get("db", snap.tables["cpu"])
    assert made is not None
    # the next query's snapshot lists the same batch objects: the same provider serves it
    again = _snap([first])
    assert engine._providers.get("db", again.tables["cpu"]) is made
    assert _count(engine, again, "WHERE host = 'h7'") == 100
    # equal rows in another batch object (a write replaced it) are not taken for the same
    copy = pa.RecordBatch.from_arrays(first.columns, schema=first.schema)
    assert engine._providers.get("db", _snap([copy]).tables["cpu"]) is None


def test_a_write_a_new_column_and_a_snapshot_change_what_the_next_query_reads(
        tmp_path: Path) -> None:
    engine = QueryEngine()
    a = _batch(["h1"] * 10, 0)
    assert _count(engine, _snap([a])) == 10
    # a write: a batch more
    b = _batch(["h2"] * 5, 10)
    assert _count(engine, _snap([a, b])) == 15
    # a new column in the catalog: the rows read with it (null where not written)
    wider = SCHEMA.append(pa.field("idle", pa.float64()))
    rows = engine.execute(_snap([a, b], schema=wider),
                          "SELECT count(*) AS n, count(idle) AS idle FROM cpu").to_pylist()
    assert rows == [{"n": 15, "idle": 0}]
    # a snapshot: the same rows now in a Parquet file, the buffer empty
    path = tmp_path / "f.parquet"
    pq.write_table(pa.Table.from_batches([a, b]), path)
    ref = ParquetFileRef(str(path), NOW - 14_000_000, NOW, 15, path.stat().st_size)
    assert _count(engine, _snap([], [ref])) == 15
    assert _count(engine, _snap([b], [ref])) == 20  # (a write after it, to the buffer)


def test_the_retention_cutoff_applies_to_a_reused_provider() -> None:
    engine = QueryEngine()
    rows = _batch(["h1"] * 100, 0)  # one every ms, newest first
    assert _count(engine, _snap([rows])) == 100
    assert _count(engine, _snap([rows], min_time=NOW - 49_500_000)) == 50
    assert _count(engine, _snap([rows])) == 100


def test_an_idle_entry_is_let_go() -> None:
    engine = QueryEngine()
    engine._providers._max_idle = 0.05
    rows = _batch(["h1"] * 10, 0)
    snap = _snap([rows])
    assert _count(engine, snap) == 10
    time.sleep(0.1)
    assert engine._providers.get("db", snap.tables["cpu"]) is None
    assert engine._providers._entries == {}


def test_a_table_keeps_a_few_providers_for_queries_of_different_ranges() -> None:
    """Queries whose time bounds leave out different batches alternate between a few
    providers of the same table; the least recently used goes past `per_table`."""
    engine = QueryEngine()
    batches = [_batch(["h1"] * 10, 10 * i) for i in range(6)]
    snaps = [_snap(batches[i:i + 2]) for i in range(5)]
    for snap in snaps[:4]:
        assert _count(engine, snap) == 20
    made = [engine._providers.get("db", s.tables["cpu"]) for s in snaps[:4]]
    assert None not in made and len({id(m) for m in made}) == 4
    # a fifth: the one used longest ago (the first, as the gets above went in order) goes
    assert _count(engine, snaps[4]) == 20
    assert engine._providers.get("db", snaps[0].tables["cpu"]) is None
    assert engine._providers.get("db", snaps[3].tables["cpu"]) is made[3]


def test_batch_time_ranges_are_found_once_and_let_go_with_the_batch() -> None:
    ranges = BatchTimeRanges()
    b = _batch(["h1"] * 10, 0)  # times NOW - 9 ms .. NOW
    assert ranges.of(b) == (NOW - 9_000_000, NOW)
    assert len(ranges) == 1
    assert ranges.of(b) == (NOW - 9_000_000, NOW)
    assert len(ranges) == 1
    assert ranges.of(_batch([], 0)) == (0, -1)  # (no rows: in no range; let go at once)
    del b
    gc.collect()
    assert len(ranges) == 0
