"""Files that follow each other in time, written again as one run sorted by series.

A snapshot or gen1 file is sorted by series key then time, but a closed window copied
file after file would keep one sorted run per input: a day of ten-minute files is 144
runs, and one host's day sits in 144 places, a page per column in each. Sorted across
the whole window, that host's day is a few adjacent pages (TSBS `high-cpu-1`, one host
over 12 h of a compacted day: 89 → 8 ms in DataFusion).

A window can hold more rows than memory should (a day of 1,000 hosts every 10 s is
8.6 M rows), so it is sorted in passes: the leading tag's values (the tag rows are
sorted by first, `storage_tag_order`) are cut into ranges of at most `budget_rows` rows,
and each pass reads from every input the rows of one range, sorts them and writes them.
Ranges follow each other in sort order, so the passes' outputs, one after the other, are
the window sorted whole. Memory holds one pass; a row group whose leading-tag statistics
miss the range is not read, so a day of hour files (each sorted by series already) is
read about once or twice. A window whose passes would each read most of it (many
passes over row groups that each span most series: a busy ten-minute window of small
snapshot files) is copied in time order instead, each row group sorted on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from weir.buffer import tag_columns
from weir.persist import conform
from weir.persist.lww import sort_for_storage, storage_tag_order

__all__ = ["copy_in_time_order", "write_series_sorted"]


@dataclass(frozen=True)
class _Range:
    """Rows whose leading tag is in [low, high], or (`nulls`) those without it."""

    low: str | None = None
    high: str | None = None
    nulls: bool = False


_EVERY_ROW = _Range()


#: more passes than this, and the window is copied in time order instead (see below)
MAX_PASSES = 16
#: ... and so it is when the passes would read more than this many times its rows
MAX_READ_FACTOR = 5


def write_series_sorted(inputs: Sequence[pq.ParquetFile], schema: pa.Schema,
                        write: Callable[[pa.Table], None], *,
                        keep: Callable[[pa.Table], pa.Table], budget_rows: int) -> bool:
    """Every row of `inputs` (disjoint in time, each of `schema`'s columns or fewer),
    passed through `keep` (which drops rows, e.g. past the retention period), handed to
    `write` sorted by series key then time, a pass of at most about `budget_rows` rows at
    a time. Returns False if the rows were handed over in time order instead, input row
    group by input row group: when a pass would read most row groups again (inputs whose
    row groups each span most series, as a busy window's many small snapshot files do),
    sorting a window of many passes would cost a read of the whole window per pass."""
    tags = tag_columns(schema)
    total = sum(f.metadata.num_rows for f in inputs)
    if not tags:  # (rows sorted by time alone: the inputs in order are that already)
        copy_in_time_order(inputs, schema, write, keep)
        return True
    if total <= budget_rows:
        _write_pass(inputs, schema, None, _EVERY_ROW, None, write, keep)
        return True
    if -(-total // budget_rows) > MAX_PASSES:
        copy_in_time_order(inputs, schema, write, keep)
        return False
    distinct, leading_counts = _tag_census(inputs, tags)
    order = storage_tag_order(distinct)
    leading = order[0]
    ranges = _ranges(leading_counts, budget_rows)
    reads = sum(f.metadata.row_group(i).num_rows for rng in ranges for f in inputs
                for i in _row_groups_touching(f, leading, rng))
    if reads > MAX_READ_FACTOR * total:
        copy_in_time_order(inputs, schema, write, keep)
        return False
    for rng in ranges:
        _write_pass(inputs, schema, leading, rng, order, write, keep)
    return True


def copy_in_time_order(inputs: Sequence[pq.ParquetFile], schema: pa.Schema,
                       write: Callable[[pa.Table], None],
                       keep: Callable[[pa.Table], pa.Table]) -> None:
    """Every row group of `inputs`, in order, passed through `keep` and handed to
    `write` as it is (each is sorted by series on its own)."""
    for f in inputs:
        for i in range(f.metadata.num_row_groups):
            t = keep(conform(f.read_row_group(i), schema))
            if t.num_rows:
                write(t)


def _write_pass(inputs: Sequence[pq.ParquetFile], schema: pa.Schema, leading: str | None,
                rng: _Range, order: list[str] | None,
                write: Callable[[pa.Table], None],
                keep: Callable[[pa.Table], pa.Table]) -> None:
    parts = []
    for f in inputs:
        for i in _row_groups_touching(f, leading, rng):
            t = conform(f.read_row_group(i), schema)
            if leading is not None:
                t = t.filter(_in_range(t.column(leading), rng))
            t = keep(t)
            if t.num_rows:
                parts.append(t)
    if not parts:
        return
    t = pa.concat_tables(parts)
    del parts
    write(sort_for_storage(t, tag_order=order))


def _row_groups_touching(f: pq.ParquetFile, leading: str | None,
                         rng: _Range) -> Iterator[int]:
    """The row groups of `f` that may hold rows of `rng` (by their min/max statistics)."""
    md = f.metadata
    names = [md.schema.column(j).name for j in range(md.num_columns)]
    col = names.index(leading) if leading in names else None
    for i in range(md.num_row_groups):
        stats = md.row_group(i).column(col).statistics if col is not None else None
        if stats is not None and not _may_hold(stats, md.row_group(i).num_rows, rng):
            continue
        yield i


def _may_hold(stats: pq.Statistics, rows: int, rng: _Range) -> bool:
    if rng.nulls:
        return not stats.has_null_count or stats.null_count > 0
    if stats.has_null_count and stats.null_count == rows:
        return False
    if not stats.has_min_max:
        return True
    assert rng.low is not None and rng.high is not None  # (a range of values has both)
    return not (_text(stats.min) > rng.high or _text(stats.max) < rng.low)


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


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
                idx = vc.field("values")
                counts[t].append(pa.table({
                    "value": c.dictionary.cast(pa.string()).take(idx),
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
    leading = storage_tag_order(distinct)[0]
    return distinct, per_value[leading]


def _ranges(per_value: pa.Table, budget_rows: int) -> list[_Range]:
    """The leading tag's values cut, in sort order, into ranges of about `budget_rows`
    rows (a value with more rows than that is a range alone), then the null rows."""
    non_null = per_value.filter(pc.is_valid(per_value.column("value")))
    non_null = non_null.sort_by("value")
    values = non_null.column("value").to_pylist()
    rows = non_null.column("rows").to_pylist()
    out: list[_Range] = []
    start, acc = 0, 0
    for i, n in enumerate(rows):
        if acc and acc + n > budget_rows:
            out.append(_Range(values[start], values[i - 1]))
            start, acc = i, 0
        acc += n
    if acc:
        out.append(_Range(values[start], values[-1]))
    if non_null.num_rows < per_value.num_rows:
        out.append(_Range(nulls=True))
    return out


def _in_range(col: pa.ChunkedArray, rng: _Range) -> pa.ChunkedArray:
    """Which rows of tag column `col` fall in `rng` (evaluated on a dictionary's values
    once, then looked up per row)."""
    chunks = []
    for c in col.chunks:
        if pa.types.is_dictionary(c.type):
            on_values = _value_in_range(c.dictionary.cast(pa.string()), rng)
            chunks.append(pc.fill_null(on_values.take(c.indices), rng.nulls))
        else:
            chunks.append(pc.fill_null(_value_in_range(c.cast(pa.string()), rng),
                                       rng.nulls))
    return pa.chunked_array(chunks, pa.bool_())


def _value_in_range(values: pa.Array, rng: _Range) -> pa.Array:
    if rng.nulls:
        return pc.is_null(values)
    assert rng.low is not None and rng.high is not None  # (a range of values has both)
    return pc.and_(pc.greater_equal(values, rng.low), pc.less_equal(values, rng.high))


