"""Each group's newest time from a table's files and buffered batches (query.newest_times):
a file is read once, a file written before a group column existed counts its rows as
that column's nulls, and the buffer counts at every call."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from weir.query.newest_times import NewestTimes, group_newest
from weir.query.source import ParquetFileRef, TableSnapshot

NS = 10**9
T0 = 1_796_000_000 * NS


def rows(hosts: list[str | None], times: list[int], region: list[str] | None = None
         ) -> pa.Table:
    cols = {"host": pa.array(hosts, pa.string()).dictionary_encode(),
            "time": pa.array(times, pa.timestamp("ns"))}
    if region is not None:
        cols["region"] = pa.array(region, pa.string()).dictionary_encode()
    return pa.table(cols)


def test_group_newest_by_tags_dictionaries_and_nulls() -> None:
    t = rows(["a", "b", "a", None], [T0, T0 + 5, T0 + 9, T0 + 1], ["x", "x", "y", "x"])
    assert group_newest(t, ("host",)) == {("a",): T0 + 9, ("b",): T0 + 5, (None,): T0 + 1}
    assert group_newest(t, ("host", "region")) == {
        ("a", "x"): T0, ("b", "x"): T0 + 5, ("a", "y"): T0 + 9, (None, "x"): T0 + 1}
    assert group_newest(t, ()) == {(): T0 + 9}
    assert group_newest(t.slice(0, 0), ("host",)) == {}


def test_files_are_read_once_and_the_buffer_every_time(tmp_path: Path) -> None:
    # an old file without `region`, a newer one with it, and a buffered batch
    pq.write_table(rows(["a", "b"], [T0, T0 + 100 * NS]), tmp_path / "old.parquet")
    pq.write_table(rows(["a", "c"], [T0 + 50 * NS, T0 + 60 * NS], ["x", "x"]),
                   tmp_path / "new.parquet")
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    files = [ParquetFileRef("old.parquet", T0, T0 + 100 * NS, 2, 1),
             ParquetFileRef("new.parquet", T0 + 50 * NS, T0 + 60 * NS, 2, 1)]
    buffered = rows(["a"], [T0 + 200 * NS], ["x"]).to_batches()
    schema = rows([], [], []).schema
    t = TableSnapshot("cpu", schema, batches=buffered, files=files)
    newest = NewestTimes()
    # by host: a 200 (buffer), b 100, c 60 -> the oldest newest is c's
    assert newest.oldest_newest(t, fs, ("host",)) == T0 + 60 * NS
    # by host and region: (a, null) and (b, null) from the old file count too
    assert newest.oldest_newest(t, fs, ("host", "region")) == T0
    # the files' answers are kept: gone from disk, the same again
    (tmp_path / "old.parquet").unlink()
    (tmp_path / "new.parquet").unlink()
    assert newest.oldest_newest(t, fs, ("host",)) == T0 + 60 * NS
    # ... while the buffer is read every time
    t.batches = rows(["c"], [T0 + 300 * NS], ["x"]).to_batches()
    assert newest.oldest_newest(t, fs, ("host",)) == T0 + 50 * NS  # a, now from a file
    assert newest.oldest_newest(TableSnapshot("cpu", schema), fs, ("host",)) is None


def test_the_least_recently_used_files_are_let_go_past_the_groups_kept(
        tmp_path: Path) -> None:
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    newest = NewestTimes(max_groups=2)  # (one group per file here)
    refs = []
    for i in range(3):
        pq.write_table(rows(["a"], [T0 + i]), tmp_path / f"{i}.parquet")
        refs.append(ParquetFileRef(f"{i}.parquet", T0 + i, T0 + i, 1, 1))
        newest.oldest_newest(TableSnapshot("cpu", rows([], []).schema, files=[refs[-1]]),
                             fs, ("host",))
    (tmp_path / "0.parquet").unlink()
    (tmp_path / "2.parquet").unlink()
    # 2 is still kept; 0 was let go and must be read again (it is gone: an error)
    assert newest.oldest_newest(TableSnapshot("cpu", rows([], []).schema, files=[refs[2]]),
                                fs, ("host",)) == T0 + 2
    try:
        newest.oldest_newest(TableSnapshot("cpu", rows([], []).schema, files=[refs[0]]),
                             fs, ("host",))
    except FileNotFoundError:
        pass
    else:
        raise AssertionError("file 0 was still kept")


def test_buffered_batches_of_other_dictionaries_and_columns_count_as_one(
        tmp_path: Path) -> None:
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    schema = rows([], [], []).schema
    # each batch its own dictionary; the oldest from before `region` existed
    batches = [*rows(["a", "b"], [T0, T0 + 5]).to_batches(),
               *rows(["b", "c"], [T0 + 7, T0 + 3], ["x", "x"]).to_batches(),
               *rows(["c", "a"], [T0 + 9, T0 + 8], ["y", "x"]).to_batches()]
    t = TableSnapshot("cpu", schema, batches=batches)
    newest = NewestTimes()
    # by host: a 8, b 7, c 9
    assert newest.oldest_newest(t, fs, ("host",)) == T0 + 7
    # by host and region: (a, null) 0, (b, null) 5, (b, x) 7, (c, x) 3, (c, y) 9, (a, x) 8
    assert newest.oldest_newest(t, fs, ("host", "region")) == T0
