"""What the compactor decides to merge (`plan_jobs`), on file lists shaped like a
server's: gen1 files of 10-minute windows near now, runs of small files, closed windows
of a gen1 duration, an hour and a day, and the row-group pruning of a time slice read."""

from __future__ import annotations

import io
import time

import pyarrow as pa
import pyarrow.parquet as pq

from weir.persist import PersistedFile
from weir.persist.compactor import compaction_windows, plan_jobs
from weir.persist.read import _row_groups_meeting

MIN = 60 * 10**9
HOUR = 60 * MIN
DAY = 24 * HOUR
GEN1 = 10 * MIN
WINDOWS = compaction_windows(GEN1)
# a day boundary two days ago: every window of that day is closed
DAY0 = (time.time_ns() // DAY - 2) * DAY


def gen1(start: int, seq: int, rows: int = 300_000, span: int = 30 * 10**9,
         generation: int = 1) -> PersistedFile:
    return PersistedFile(database="db", db_id=1, table="cpu", table_id=2,
                         path=f"n/dbs/1/2/{seq:011d}-{generation}.parquet", size_bytes=1,
                         row_count=rows, min_time=start, max_time=start + span - 1, seq=seq,
                         generation=generation)


def test_windows_follow_the_gen1_duration() -> None:
    assert WINDOWS == [GEN1, HOUR, DAY]
    assert compaction_windows(HOUR) == [HOUR, DAY]
    assert compaction_windows(7 * MIN) == [7 * MIN]  # an hour is no whole multiple of it
    assert compaction_windows(DAY) == [DAY]


def test_a_closed_day_becomes_one_job_of_all_its_files() -> None:
    # three hours of 30-second snapshots: 360 disjoint gen1 files
    files = [gen1(DAY0 + 10 * HOUR + i * 30 * 10**9, seq=i + 1, rows=10_000)
             for i in range(360)]
    jobs = plan_jobs(files, 1_000_000, windows=WINDOWS, closed_before=DAY0 + 3 * DAY,
                     max_file_rows=50_000_000)
    assert len(jobs) == 1
    assert jobs[0].window == (DAY0, DAY0 + DAY)
    assert [f.path for f in jobs[0].files] == [f.path for f in files]  # time order


def test_an_open_window_merges_runs_of_small_files_within_an_hour() -> None:
    now = DAY0 + 2 * DAY + 10 * HOUR + 35 * MIN
    # 50 minutes of 30-second snapshots up to now, crossing the 10:00 hour
    start = now - 50 * MIN
    files = [gen1(start + i * 30 * 10**9, seq=i + 1, rows=100_000) for i in range(100)]
    jobs = plan_jobs(files, 1_000_000, windows=WINDOWS, closed_before=now - GEN1,
                     max_file_rows=50_000_000)
    windowed = [j for j in jobs if j.window is not None]
    runs = [j for j in jobs if j.window is None]
    # windows ending by now - 10 min are closed, the largest first: the 9 o'clock hour
    # (its last 15 minutes), then the gen1 windows 10:00 and 10:10 are one job each
    hour = now - now % HOUR
    assert sorted(j.window for j in windowed if j.window) == [
        (hour - HOUR, hour), (hour, hour + GEN1), (hour + GEN1, hour + 2 * GEN1)]
    for j in windowed:
        assert j.window is not None
        assert all(j.window[0] <= f.min_time and f.max_time < j.window[1] for f in j.files)
    # the rest: runs of at most a million rows that never cross an hour boundary
    assert runs
    for j in runs:
        assert sum(f.row_count for f in j.files) <= 1_000_000
        assert len({f.min_time // HOUR for f in j.files}) == 1
    taken = [f.path for j in jobs for f in j.files]
    assert len(taken) == len(set(taken))


def test_a_window_is_written_again_only_if_that_halves_its_files() -> None:
    # an hour already compacted into six 40 M-row files: a 50 M cap would give five
    six = [gen1(DAY0 + i * GEN1, seq=i + 1, rows=40_000_000, span=GEN1, generation=3)
           for i in range(6)]
    assert plan_jobs(six, 1_000_000, windows=WINDOWS, closed_before=DAY0 + 3 * DAY,
                     max_file_rows=50_000_000) == []
    # ten 1 M-row files of an hour make one
    ten = [gen1(DAY0 + i * 6 * MIN, seq=i + 1, rows=1_000_000, span=6 * MIN)
           for i in range(10)]
    (job,) = plan_jobs(ten, 1_000_000, windows=WINDOWS, closed_before=DAY0 + 3 * DAY,
                       max_file_rows=50_000_000)
    assert job.window == (DAY0, DAY0 + DAY) and len(job.files) == 10


def test_overlapping_files_are_always_merged_together_first() -> None:
    a = gen1(DAY0 + HOUR, seq=1, rows=1000)
    late = gen1(DAY0 + HOUR + 10 * 10**9, seq=9, rows=10)  # a later write into a's range
    others = [gen1(DAY0 + 2 * HOUR + i * MIN, seq=2 + i, rows=1000) for i in range(5)]
    jobs = plan_jobs([a, late, *others], 1_000_000, windows=WINDOWS,
                     closed_before=DAY0 + 3 * DAY, max_file_rows=50_000_000)
    assert jobs[0].window is None and [f.seq for f in jobs[0].files] == [1, 9]
    # the day's other files wait for the merge: no job takes a file twice
    assert [f.path for j in jobs[1:] for f in j.files] == [f.path for f in others]


def test_a_time_slice_reads_only_the_row_groups_that_meet_it() -> None:
    times = pa.array(range(0, 1_000_000, 10), pa.int64()).cast(pa.timestamp("ns"))
    sink = io.BytesIO()
    pq.write_table(pa.table({"time": times, "v": pa.array(range(len(times)), pa.int64())}),
                   sink, row_group_size=10_000)
    meta = pq.ParquetFile(io.BytesIO(sink.getvalue())).metadata
    assert meta.num_row_groups == 10  # 100,000 ns each
    assert _row_groups_meeting(meta, 250_000, 450_000) == [2, 3, 4]
    assert _row_groups_meeting(meta, 299_990, 300_000) == [2]
    assert _row_groups_meeting(meta, 2_000_000, 3_000_000) == []
