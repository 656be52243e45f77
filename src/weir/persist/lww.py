"""Last write wins: rows of one table merged into one row per point, and the order
points are stored in.

A point is (tag set, time). Rows are given oldest first (WAL order, then file order by
sequence); for each point every field takes its last non-null value, so a later write
replaces the fields it names and keeps the others, as in InfluxDB.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from weir.buffer import tag_columns

__all__ = ["dedupe", "sort_for_storage", "storage_tag_order"]


def dedupe(table: pa.Table, tags: list[str] | None = None) -> pa.Table:
    """One row per point of `table` (rows oldest first), in the table's column order."""
    if table.num_rows < 2:
        return table
    tags = [t for t in (tags if tags is not None else tag_columns(table.schema))
            if t in table.column_names]
    keys = [*tags, "time"]
    # Group on plain values: the grouper needs one dictionary per column across chunks,
    # and Table.unify_dictionaries (pyarrow 26) crashes the process on tag columns whose
    # chunks came from Parquet and from the buffer with null tags in both.
    original = table.schema
    table = pa.Table.from_arrays([_plain(c) for c in table.columns],
                                 names=table.column_names)
    fields = [n for n in table.column_names if n not in keys]
    if not fields:
        out = table.group_by(keys, use_threads=False).aggregate([])
    else:
        # ordered aggregation ("last") needs the single-threaded grouper
        out = table.group_by(keys, use_threads=False).aggregate(
            [(f, "last") for f in fields])
        out = out.rename_columns([n[:-5] if n.endswith("_last") and n[:-5] in fields else n
                                  for n in out.column_names])
    cols = []
    for f in original:
        col = out.column(f.name)
        cols.append(col if col.type == f.type else col.cast(f.type))
    return pa.Table.from_arrays(cols, schema=original)


def sort_for_storage(table: pa.Table, tags: list[str] | None = None,
                     tag_order: list[str] | None = None) -> pa.Table:
    """Rows sorted by series key then time: a series' rows are adjacent, so Parquet
    statistics prune by tag.

    The tag with the most distinct values comes first (`storage_tag_order`). A dashboard
    usually asks for a few hosts, and sorting by host first keeps each data page's
    host range narrow, so the page index skips the pages of every other host; sorted by
    name, TSBS's `arch` and `datacenter` came first and every page of a 10-minute row
    group spanned a third of the hosts (nothing was skipped). Tags that a host
    determines still form one run per series. `tag_order`: that order, decided already
    (the compactor sorts a large window in parts that must agree)."""
    if table.num_rows < 2:
        return table
    names = sorted(t for t in (tags if tags is not None else tag_columns(table.schema))
                   if t in table.column_names)
    # Sorting on tag strings costs ~1 s per million rows; on each value's rank among the
    # column's distinct values (an int, found once per distinct value) it is a few times
    # cheaper and gives the same order.
    ranked = {t: _ranks(table.column(t)) for t in names}
    if tag_order is None:
        tag_order = storage_tag_order({t: r.distinct for t, r in ranked.items()})
    else:
        tag_order = [t for t in tag_order if t in ranked]
    keys = pa.table({**{f"k{i}": ranked[t].ranks for i, t in enumerate(tag_order)},
                     "time": table.column("time")})
    order = pc.sort_indices(keys, [(f"k{i}", "ascending", "at_end")
                                   for i in range(len(tag_order))]
                            + [("time", "ascending", "at_end")])
    # Taking a dictionary column across chunks unifies the chunks' dictionaries row by
    # row (two thirds of the sort's time); a tag column is rebuilt from its ranks instead,
    # whose dictionary is the sorted distinct values.
    cols = []
    for f in table.schema:
        r = ranked.get(f.name)
        if r is not None and f.type == pa.dictionary(pa.int32(), r.values.type):
            cols.append(pa.DictionaryArray.from_arrays(
                r.ranks.combine_chunks().take(order), r.values))
        else:
            cols.append(table.column(f.name).combine_chunks().take(order))
    return pa.Table.from_arrays(cols, schema=table.schema)


def storage_tag_order(distinct: dict[str, int]) -> list[str]:
    """Tags in the order rows are sorted by: most distinct values first, ties by name."""
    return sorted(sorted(distinct), key=lambda t: -distinct[t])


@dataclass(frozen=True)
class _Ranked:
    #: each row's position in `values` (null for a null tag)
    ranks: pa.ChunkedArray
    #: the column's distinct values, sorted
    values: pa.Array
    #: how many distinct values the rows hold
    distinct: int


def _ranks(col: pa.ChunkedArray) -> _Ranked:
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    values = pc.unique(pa.chunked_array([c.dictionary for c in col.chunks],
                                        col.type.value_type))
    ordered = values.take(pc.sort_indices(values))
    chunks = []
    for c in col.chunks:
        rank_of_entry = pc.index_in(c.dictionary, value_set=ordered)
        chunks.append(rank_of_entry.take(c.indices))
    ranks = pa.chunked_array(chunks, pa.int32())
    # (counted on the rows: a dictionary may hold values no row of these uses)
    return _Ranked(ranks, ordered, pc.count_distinct(ranks).as_py())


def _plain(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col
