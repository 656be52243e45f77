"""The buffer on its own, fed real WAL files of parsed production-shaped line protocol
(near-now nanosecond times, thousands of series, escaped names): what `apply` keeps and
counts, the overwrite flag that decides whether a table must be merged, `freeze` and
`release` of the persisting generation, `drop` of a database or a table, and `nbytes`."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pyarrow as pa

from support.datagen import CPU, ESCAPED, Dataset, generate
from support.inprocess import batch
from weir.buffer import Buffer, Generation, TableBuffer
from weir.wal import WalFile, WalOp

DB = "metrics"
# 1,600 cpu series (40 hosts x 40 regions), 3 points each, and 50 escaped series
DATA = generate(seed=1101, hosts=40, regions=40, points_per_series=3)


def wal(seq: int, lp: str, db: str = DB) -> WalFile:
    """A WAL file as a flush writes it: one op per table of the parsed body."""
    return WalFile(seq=seq, ops=[WalOp(db, table, b) for table, b in batch(lp)],
                   written_ns=time.time_ns())


def points(batches: list[pa.RecordBatch]) -> list[tuple[Any, ...]]:
    """Each buffered row as (tag set, time, non-null fields), in buffer order."""
    out = []
    for b in batches:
        tags = [f.name for f in b.schema if (f.metadata or {}).get(b"weir:kind") == b"tag"]
        times = b.column("time").cast(pa.int64()).to_pylist()
        for row, t in zip(b.to_pylist(), times, strict=True):
            del row["time"]
            tagset = tuple(sorted((k, row.pop(k)) for k in tags if row.get(k) is not None))
            out.append((tagset, t, tuple(sorted((k, v) for k, v in row.items()
                                                if v is not None))))
    return out


def expected_points(data: Dataset, table: str) -> list[tuple[Any, ...]]:
    return [(tuple(sorted(r.tags.items())), r.time,
             tuple(sorted((k, v) for k, v in r.fields.items() if v is not None)))
            for r in data.table_rows(table)]


def assert_counts_consistent(g: Generation) -> None:
    """A generation's byte count is the sum of its tables', each the sum of its batches'."""
    for key, tb in g.tables.items():
        assert tb.nbytes == sum(b.nbytes for b in tb.batches), key
        assert tb.rows == sum(b.num_rows for b in tb.batches), key
    assert g.nbytes == sum(tb.nbytes for tb in g.tables.values())


# ---- apply ---------------------------------------------------------------------------------


def test_apply_keeps_every_row_in_wal_order_and_counts_them() -> None:
    chunks = DATA.chunks(4)
    files = [wal(seq, lp) for seq, lp in enumerate(chunks, start=1)]
    buf = Buffer()
    for f in files:
        buf.apply(f)

    assert buf.active.max_seq == 4
    assert buf.persisting is None
    assert set(buf.active.tables) == {(DB, CPU), (DB, ESCAPED)}
    assert_counts_consistent(buf.active)
    assert buf.nbytes == buf.active.nbytes > 0
    for table in (CPU, ESCAPED):
        tb = buf.active.tables[(DB, table)]
        rows = DATA.table_rows(table)
        assert tb.rows == len(rows), DATA.describe()
        assert tb.min_time == min(r.time for r in rows)
        assert tb.max_time == max(r.time for r in rows)
        # the batches exactly as the WAL files carried them, oldest first
        sent = [op.batch for f in files for op in f.ops if op.table == table]
        assert len(buf.batches(DB, table)) == len(sent)
        assert all(a.equals(b) for a, b in zip(buf.batches(DB, table), sent, strict=True))
        # and the rows are the generator's, values included (big integers, escapes, nulls)
        assert sorted(points(buf.batches(DB, table))) == sorted(expected_points(DATA, table))
        # every point once, each series moving forward in time: nothing to merge
        assert tb.overwrites is False


def test_empty_ops_create_nothing_but_the_sequence_advances() -> None:
    buf = Buffer()
    (name, b), *_ = batch(DATA.lp([CPU]))
    buf.apply(WalFile(seq=7, ops=[WalOp(DB, name, b.slice(0, 0))], written_ns=0))
    assert buf.active.tables == {} and buf.nbytes == 0
    assert buf.active.max_seq == 7
    assert buf.freeze() is None  # nothing to persist


def test_many_small_writes_are_concatenated_without_losing_or_reordering_rows() -> None:
    now = time.time_ns() - 10**9
    buf = Buffer()
    sent = []
    for seq in range(1, 201):
        lines = [f"cpu,host=h{h:04d},region=r{h % 7} usage={seq + h / 1000}"
                 + (f",cores={h}i" if h % 2 else "") + f" {now - 10**12 + seq * 10**6 + h}"
                 for h in range(seq % 5, 2000, 97)]
        f = wal(seq, "\n".join(lines))
        sent += [op.batch for op in f.ops]
        buf.apply(f)
    tb = buf.active.tables[(DB, CPU)]
    # 200 tiny batches would make every query scan 200 pieces: they are concatenated
    assert len(tb.batches) < 64
    assert tb.rows == sum(b.num_rows for b in sent)
    assert points(tb.batches) == points(sent)  # same rows, same (WAL) order
    assert tb.min_time == min(p[1] for p in points(sent))
    assert tb.max_time == max(p[1] for p in points(sent))


def test_concatenated_writes_stay_batches_of_bounded_rows_in_time_order() -> None:
    """Writes in time order, concatenated, end as batches of at most 64 Ki rows, each a
    stretch of time after the one before: a query of the last minutes can leave out the
    rest (weir.query.engine)."""
    start = time.time_ns() - 3600 * 10**9
    buf = Buffer()
    for seq in range(1, 131):
        lines = [f"cpu,host=h{h:04d} usage={h / 10} {start + (seq * 10 + k) * 10**9 + h}"
                 for k in range(10) for h in range(200)]
        buf.apply(wal(seq, "\n".join(lines)))
    tb = buf.active.tables[(DB, CPU)]
    assert tb.rows == 130 * 2000
    sizes = [b.num_rows for b in tb.batches]
    assert max(sizes) <= 65_536 and len(sizes) < 64
    assert sum(1 for n in sizes if n == 65_536) == 2  # (64 writes each, cut in two)
    ranges = [(b.column("time").cast(pa.int64()).to_numpy().min(),
               b.column("time").cast(pa.int64()).to_numpy().max()) for b in tb.batches]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))


# ---- the overwrite flag ------------------------------------------------------------------


def test_rewriting_existing_points_marks_only_the_tables_it_touches() -> None:
    data = generate(seed=1102, hosts=30, regions=40, points_per_series=2, overwrites=40,
                    tables=(CPU,))
    other = generate(seed=1103, hosts=1, regions=1, escaped_series=200, tables=(ESCAPED,))
    buf = Buffer()
    buf.apply(wal(1, data.base_lp()))
    buf.apply(wal(2, other.lp()))
    assert buf.active.tables[(DB, CPU)].overwrites is False
    buf.apply(wal(3, data.overwrites_lp()))
    assert buf.active.tables[(DB, CPU)].overwrites is True
    assert buf.active.tables[(DB, ESCAPED)].overwrites is False


def test_a_point_repeated_in_one_body_or_a_backfill_marks_the_table() -> None:
    now = time.time_ns()
    repeated = Buffer()
    repeated.apply(wal(1, f"cpu,host=a usage=1 {now}\ncpu,host=b usage=1 {now}\n"
                          f"cpu,host=a usage=2 {now}"))
    assert repeated.active.tables[(DB, "cpu")].overwrites is True

    backfill = Buffer()
    backfill.apply(wal(1, f"cpu,host=a usage=1 {now}"))
    backfill.apply(wal(2, f"cpu,host=b usage=1 {now - 5}"))  # another series: fine
    assert backfill.active.tables[(DB, "cpu")].overwrites is False
    backfill.apply(wal(3, f"cpu,host=a usage=1 {now - 5}"))  # back in time in series a
    assert backfill.active.tables[(DB, "cpu")].overwrites is True


def test_rows_at_or_before_the_persisted_time_may_overwrite_parquet() -> None:
    now = time.time_ns()
    buf = Buffer()
    buf.persisted_before[(DB, "cpu")] = now
    buf.apply(wal(1, f"cpu,host=a usage=1 {now + 1}"))
    assert buf.active.tables[(DB, "cpu")].overwrites is False
    buf.apply(wal(2, f"cpu,host=new usage=1 {now}"))  # a new series, but not after the files
    assert buf.active.tables[(DB, "cpu")].overwrites is True


# ---- freeze and release ------------------------------------------------------------------


def test_freeze_moves_active_to_persisting_and_release_drops_it() -> None:
    first, second, third = DATA.chunks(3)
    buf = Buffer()
    buf.apply(wal(1, first))
    buf.apply(wal(2, second))
    before = buf.nbytes
    active = buf.active

    gen = buf.freeze()
    assert gen is active and buf.persisting is gen
    assert gen.max_seq == 2
    assert buf.active is not gen and buf.active.tables == {} and buf.active.nbytes == 0
    assert buf.nbytes == before  # still buffered (queries read it) until released

    # a second snapshot must wait for the first, even with new rows to persist
    buf.apply(wal(3, third))
    assert buf.freeze() is None
    assert buf.active.max_seq == 3 and gen.max_seq == 2
    assert buf.nbytes == gen.nbytes + buf.active.nbytes
    # both generations are read, the persisting (older) one first
    tbs = buf.tables(DB, CPU)
    assert tbs == [gen.tables[(DB, CPU)], buf.active.tables[(DB, CPU)]]
    assert sorted(points(buf.batches(DB, CPU))) == sorted(expected_points(DATA, CPU))
    assert points(buf.batches(DB, CPU))[: gen.tables[(DB, CPU)].rows] == points(
        gen.tables[(DB, CPU)].batches)

    buf.release(Generation())  # not the persisting one: nothing happens
    assert buf.persisting is gen

    buf.release(gen)
    assert buf.persisting is None
    assert buf.nbytes == buf.active.nbytes
    assert buf.tables(DB, CPU) == [buf.active.tables[(DB, CPU)]]
    assert buf.active.tables[(DB, CPU)].rows < len(DATA.table_rows(CPU))

    nxt = buf.freeze()
    assert nxt is not None and nxt.max_seq == 3
    buf.release(nxt)
    assert buf.freeze() is None  # nothing left
    assert buf.nbytes == 0


def test_release_after_the_buffer_moved_on_does_not_drop_a_newer_generation() -> None:
    buf = Buffer()
    buf.apply(wal(1, DATA.lp([ESCAPED])))
    old = buf.freeze()
    assert old is not None
    buf.release(old)
    buf.apply(wal(2, DATA.lp([CPU])))
    new = buf.freeze()
    buf.release(old)  # a late second release of the old one
    assert buf.persisting is new and new is not None
    assert buf.tables(DB, CPU) == [new.tables[(DB, CPU)]]


# ---- drop ------------------------------------------------------------------------------------


def _two_databases_in_two_generations() -> tuple[Buffer, Generation]:
    """`metrics` and `metrics2`, both tables each, in the persisting and the active
    generation."""
    a, b = ("\n".join(line for i, (_t, line) in enumerate(DATA.lines) if i % 2 == half)
            for half in (0, 1))
    buf = Buffer()
    buf.apply(wal(1, a))
    buf.apply(wal(2, a, db=DB + "2"))
    gen = buf.freeze()
    assert gen is not None
    buf.apply(wal(3, b))
    buf.apply(wal(4, b, db=DB + "2"))
    return buf, gen


def test_drop_table_removes_it_from_both_generations_and_from_the_byte_count() -> None:
    buf, gen = _two_databases_in_two_generations()
    kept = sum(tb.nbytes for g in (gen, buf.active) for k, tb in g.tables.items()
               if k != (DB, CPU))
    buf.drop(DB, CPU)
    assert buf.tables(DB, CPU) == [] and buf.batches(DB, CPU) == []
    for g in (gen, buf.active):
        assert (DB, CPU) not in g.tables
        assert set(g.tables) == {(DB, ESCAPED), (DB + "2", CPU), (DB + "2", ESCAPED)}
        assert_counts_consistent(g)
    assert buf.nbytes == gen.nbytes + buf.active.nbytes
    assert sum(tb.nbytes for g in (gen, buf.active) for tb in g.tables.values()) == kept
    # the other database's table of the same name is untouched
    assert sum(tb.rows for tb in buf.tables(DB + "2", CPU)) == len(DATA.table_rows(CPU))


def test_drop_database_removes_all_its_tables_and_only_its_own() -> None:
    buf, gen = _two_databases_in_two_generations()
    other = buf.nbytes - sum(tb.nbytes for g in (gen, buf.active)
                             for k, tb in g.tables.items() if k[0] == DB)
    buf.drop(DB)
    for g in (gen, buf.active):
        assert {k[0] for k in g.tables} == {DB + "2"}
        assert_counts_consistent(g)
    assert buf.nbytes == other > 0
    for table in (CPU, ESCAPED):
        assert buf.tables(DB, table) == []
        assert sorted(points(buf.batches(DB + "2", table))) == sorted(
            expected_points(DATA, table))


def test_a_dropped_table_forgets_its_series() -> None:
    """Writing the same points again after a drop overwrites nothing: the dropped rows
    are gone, so the table must not be marked for last-write-wins merging."""
    buf = Buffer()
    buf.apply(wal(1, DATA.lp([CPU])))
    buf.drop(DB, CPU)
    buf.apply(wal(2, DATA.lp([CPU])))
    tb: TableBuffer = buf.active.tables[(DB, CPU)]
    assert tb.overwrites is False
    assert tb.rows == len(DATA.table_rows(CPU))
    # whereas without the drop the same body is a rewrite of every point
    buf.apply(wal(3, DATA.lp([CPU])))
    assert tb.overwrites is True


def test_many_small_writes_count_the_bytes_the_buffer_holds() -> None:
    """Small writes are concatenated every few dozen batches; the byte count then follows
    what is held, not the sum of what came in (which would start snapshots and
    back-pressure early)."""
    buf = Buffer()
    now = time.time_ns()
    sent = 0
    for i in range(640):
        w = wal(i + 1, f"cpu,host=h{i % 13},region=r{i % 3} usage={i * 0.5},n={i}i {now + i}\n")
        sent += sum(op.batch.nbytes for op in w.ops)
        buf.apply(w)
    tb = buf.active.tables[(DB, "cpu")]
    assert tb.rows == 640 and len(tb.batches) < 640
    assert tb.nbytes == sum(b.nbytes for b in tb.batches)
    assert buf.nbytes == buf.active.nbytes == tb.nbytes < sent
    assert_counts_consistent(buf.active)
