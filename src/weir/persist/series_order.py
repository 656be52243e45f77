"""Files that follow each other in time, written again as one run sorted by series.

A snapshot or gen1 file is sorted by series key then time, but a closed window copied
file after file would keep one sorted run per input: a day of ten-minute files is 144
runs, and one host's day sits in 144 places, a page per column in each. Sorted across
the whole window, that host's day is a few adjacent pages (TSBS `single-groupby-5-1-12`
over a compacted day of 100 hosts, in process: 28.6 → 4.2 ms; `bench/compaction.py`).

A window can hold more rows than memory should (a day of 1,000 hosts every 10 s is
8.6 M rows), so a large one is sorted in parts: the values of the leading tag (the tag
rows are sorted by first, `storage_tag_order`) are cut into ranges of at most
`budget_rows` rows; one read of the inputs sends each row to its range's spill file (Arrow
IPC, LZ4, in a temporary directory), and then each range in turn is read back, sorted
and handed on. Ranges follow each other in sort order, so the parts, one after the
other, are the window sorted whole. Memory holds one input row group while spilling and
one range while sorting; the disk holds the window once, compressed, until it is
written. A window of more than `MAX_PARTS` ranges is copied in time order instead (each
row group sorted on its own), as are tables without tags, whose rows are sorted by time
alone and so are in order already.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from weir.buffer import tag_columns
from weir.persist import conform
from weir.persist.lww import sort_for_storage, storage_tag_order

__all__ = ["MAX_PARTS", "copy_in_time_order", "write_series_sorted"]

#: a window of more ranges than this is copied in time order instead: sorting tens of
#: millions of rows (a busy ten-minute window) would cost more than the copy's minute
MAX_PARTS = 32

_SPILL_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


def write_series_sorted(inputs: Sequence[pq.ParquetFile], schema: pa.Schema,
                        write: Callable[[pa.Table], None], *,
                        keep: Callable[[pa.Table], pa.Table], budget_rows: int,
                        spill_dir: str | None = None) -> bool:
    """Every row of `inputs` (disjoint in time, each of `schema`'s columns or fewer),
    passed through `keep` (which drops rows, e.g. past the retention period), handed to
    `write` sorted by series key then time, a part of at most about `budget_rows` rows at
    a time (a leading-tag value with more rows than that is a part alone). Returns
    False if the rows were handed over in time order instead, input row group by input
    row group (more than `MAX_PARTS` parts). `spill_dir`: where the parts wait (the
    system's temporary directory by default)."""
    tags = tag_columns(schema)
    total = sum(f.metadata.num_rows for f in inputs)
    if not tags:  # (rows sorted by time alone: the inputs in order are that already)
        copy_in_time_order(inputs, schema, write, keep)
        return True
    if total <= budget_rows:
        parts = list(_row_groups(inputs, schema, keep))
        if parts:
            write(sort_for_storage(pa.concat_tables(parts)))
        return True
    if -(-total // budget_rows) > MAX_PARTS:
        copy_in_time_order(inputs, schema, write, keep)
        return False
    distinct, per_value = _tag_census(inputs, tags)
    order = storage_tag_order(distinct)
    lows, has_nulls = _ranges(per_value, budget_rows)
    with tempfile.TemporaryDirectory(prefix="weir-sort-", dir=spill_dir) as tmp:
        spills = [Path(tmp) / f"{i}.arrows" for i in range(len(lows) + has_nulls)]
        _spill(_row_groups(inputs, schema, keep), order[0], lows, schema, spills)
        for path in spills:
            if path.exists():
                with pa.memory_map(str(path)) as source:
                    part = pa.ipc.open_stream(source).read_all()
                path.unlink()
                write(sort_for_storage(part, tag_order=order))
                del part
    return True


def copy_in_time_order(inputs: Sequence[pq.ParquetFile], schema: pa.Schema,
                       write: Callable[[pa.Table], None],
                       keep: Callable[[pa.Table], pa.Table]) -> None:
    """Every row group of `inputs`, in order, passed through `keep` and handed to
    `write` as it is (each is sorted by series on its own)."""
    for t in _row_groups(inputs, schema, keep):
        write(t)


def _row_groups(inputs: Sequence[pq.ParquetFile], schema: pa.Schema,
                keep: Callable[[pa.Table], pa.Table]) -> Iterator[pa.Table]:
    """The inputs' row groups in order, conformed to `schema` and through `keep`, read
    one at a time, the empty ones left out."""
    for f in inputs:
        for i in range(f.metadata.num_row_groups):
            t = keep(conform(f.read_row_group(i), schema))
            if t.num_rows:
                yield t


def _spill(row_groups: Iterator[pa.Table], leading: str, lows: list[str],
           schema: pa.Schema, spills: list[Path]) -> None:
    """Each row to the spill file of its range (by the leading tag's value; nulls to the
    last file)."""
    writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
    try:
        for t in row_groups:
            which = _range_index(t.column(leading), lows)
            order = np.argsort(which, kind="stable")
            t, which = t.take(pa.array(order)), which[order]
            bounds = np.flatnonzero(np.diff(which)) + 1
            for start, end in zip([0, *bounds], [*bounds, len(which)], strict=True):
                r = int(which[start])
                w = writers.get(r)
                if w is None:
                    w = writers[r] = pa.ipc.new_stream(str(spills[r]), schema,
                                                       options=_SPILL_OPTIONS)
                w.write_table(t.slice(start, end - start))
    finally:
        for w in writers.values():
            w.close()


def _range_index(col: pa.ChunkedArray, lows: list[str]) -> np.ndarray:
    """Each row's range: the last range whose lowest value is at most the row's value
    (`lows` sorted); a null value's is `len(lows)`."""
    bounds = np.array(lows, dtype=object)
    out = []
    for c in col.chunks:
        if not pa.types.is_dictionary(c.type):
            c = pc.dictionary_encode(c)
        values = c.dictionary.cast(pa.string()).to_numpy(zero_copy_only=False)
        of_value = np.append(np.searchsorted(bounds, values, side="right") - 1, len(lows))
        indices = pc.fill_null(c.indices, len(values)).to_numpy(zero_copy_only=False)
        out.append(of_value[indices])
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _tag_census(inputs: Sequence[pq.ParquetFile],
                tags: list[str]) -> tuple[dict[str, int], pa.Table]:
    """How many distinct values each tag has over `inputs`, and the rows per value of
    the one with most (the leading tag; `value`, `rows`, nulls as a null value)."""
    counts: dict[str, list[pa.Table]] = {t: [] for t in tags}
    for f in inputs:
        present = [t for t in tags if t in f.schema_arrow.names]
        for t in present:
            for chunk in f.read(columns=[t]).column(t).chunks:
                c = chunk if pa.types.is_dictionary(chunk.type) else pc.dictionary_encode(chunk)
                vc = pc.value_counts(c.indices)
                counts[t].append(pa.table({
                    "value": c.dictionary.cast(pa.string()).take(vc.field("values")),
                    "rows": vc.field("counts")}))
        for t in tags:
            if t not in present:  # (a file written before the tag existed: all null)
                counts[t].append(pa.table({"value": pa.nulls(1, pa.string()),
                                           "rows": pa.array([f.metadata.num_rows],
                                                            pa.int64())}))
    per_value = {t: pa.concat_tables(counts[t]).group_by("value", use_threads=False)
                 .aggregate([("rows", "sum")]).rename_columns(["value", "rows"])
                 for t in tags}
    distinct = {t: pc.count(per_value[t].column("value")).as_py() for t in tags}
    return distinct, per_value[storage_tag_order(distinct)[0]]


def _ranges(per_value: pa.Table, budget_rows: int) -> tuple[list[str], bool]:
    """The leading tag's values cut, in sort order, into ranges of about `budget_rows`
    rows (a value with more rows than that is a range alone): each range's lowest value;
    and whether null rows (a range of their own, after the others) exist."""
    non_null = per_value.filter(pc.is_valid(per_value.column("value"))).sort_by("value")
    values = non_null.column("value").to_pylist()
    rows = non_null.column("rows").to_pylist()
    lows: list[str] = []
    acc = 0
    for value, n in zip(values, rows, strict=True):
        if not lows or (acc and acc + n > budget_rows):
            lows.append(value)
            acc = 0
        acc += n
    return lows, non_null.num_rows < per_value.num_rows
