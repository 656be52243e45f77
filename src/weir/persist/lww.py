"""Last write wins: rows of one table merged into one row per point, and the order
points are stored in.

A point is (tag set, time). Rows are given oldest first (WAL order, then file order by
sequence); for each point every field takes its last non-null value, so a later write
replaces the fields it names and keeps the others, as in InfluxDB.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from weir.buffer import tag_columns

__all__ = ["dedupe", "sort_for_storage"]


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


def sort_for_storage(table: pa.Table, tags: list[str] | None = None) -> pa.Table:
    """Rows sorted by series key then time: a series' rows are adjacent, so Parquet
    statistics prune by tag.

    The tag with the most distinct values comes first (ties by name). A dashboard
    usually asks for a few hosts, and sorting by host first keeps each data page's
    host range narrow, so the page index skips the pages of every other host; sorted by
    name, TSBS's `arch` and `datacenter` came first and every page of a 10-minute row
    group spanned a third of the hosts (nothing was skipped). Tags that a host
    determines still form one run per series."""
    if table.num_rows < 2:
        return table
    names = sorted(t for t in (tags if tags is not None else tag_columns(table.schema))
                   if t in table.column_names)
    # Sorting on tag strings costs ~1 s per million rows; on each value's rank among the
    # column's distinct values (an int, found once per distinct value) it is a few times
    # cheaper and gives the same order.
    ranked = {t: _ranks(table.column(t)) for t in names}
    order_of_tags = sorted(names, key=lambda t: -ranked[t][1])  # (stable: ties by name)
    keys = pa.table({**{f"k{i}": ranked[t][0] for i, t in enumerate(order_of_tags)},
                     "time": table.column("time")})
    order = pc.sort_indices(keys, [(f"k{i}", "ascending", "at_end")
                                   for i in range(len(order_of_tags))]
                            + [("time", "ascending", "at_end")])
    return table.take(order)


def _ranks(col: pa.ChunkedArray) -> tuple[pa.ChunkedArray, int]:
    """Each value's position in the sorted distinct values of `col` (null stays null),
    and how many distinct values the rows hold."""
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
    return ranks, pc.count_distinct(ranks).as_py()


def _plain(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col
