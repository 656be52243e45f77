"""The compactor: keeps each table's Parquet files few, large, disjoint and merged.

A job takes files that belong together and writes them again as files that do not
overlap each other. Three kinds:

* files whose time ranges overlap (late or overwriting writes, or a gen1 window written
  by several snapshots): always all of them together, so no file outside the job
  overlaps it and the output may take the newest input's `seq`; points are merged by
  last-write-wins, oldest file first, sorted by series key and time, and written as files
  of about `file_rows` rows, split at time boundaries;
* a closed time window's files (the gen1 duration, an hour, a day: the largest closed
  one first): written again as one file (or as few as `max_file_rows` allows), so a table
  keeps about one file per day however long the server runs. A window is closed once
  the wall clock is a gen1 duration past its end; files of a later write into it overlap
  the window's file and are merged with it by the first kind;
* runs of small neighbouring files (within an hour) not taken by the above, once there
  are enough of them to be worth it, into one file.

Files of the last two kinds overlap nothing, so nothing is merged again. A run of small
files is copied in time order, a row group at a time. A closed window is written sorted
by series key then time across the whole output (not input after input), so one
series' rows of a day are adjacent and a query for one host reads a few pages of the
day file instead of one in each of its 144 ten-minute slices. The sort runs in
parts over ranges of series spilled to local disk (weir.persist.series_order), so
memory holds at most `sort_budget_rows` rows however large the window; a window of
more than 32 such parts (tens of millions of rows) is copied in time order instead, a
row group at a time, each sorted by series on its own.

Rows older than the database's retention period are left out. The output is published
by one manifest that adds it and removes the inputs; the inputs are deleted once every
query that started before the swap has finished (and at the latest after the longest a
query may run), so a query planned before the swap still finds them. A
crash before the manifest leaves unnamed outputs and a crash after it unnamed inputs,
both removed at start-up.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from weir.catalog import Catalog
from weir.errors import NotFound
from weir.objectstore import ObjectStore
from weir.persist import (
    ROW_GROUP_ROWS,
    ManifestConflict,
    PersistedFile,
    PersistedIndex,
    _window_label,
    parquet_bytes,
    parquet_options,
)
from weir.persist.lww import dedupe, sort_for_storage
from weir.persist.read import TableReader, overlap_groups
from weir.persist.series_order import copy_in_time_order, write_series_sorted

log = logging.getLogger("weir.compactor")

#: a run of small neighbouring files is merged once it has this many files ...
_MIN_RUN_FILES = 4

#: a window's rows are sorted by series in parts of at most this many
SORT_BUDGET_ROWS = 4 * ROW_GROUP_ROWS

_HOUR_NS = 3600 * 10**9
_DAY_NS = 24 * _HOUR_NS


def compaction_windows(gen1_ns: int) -> list[int]:
    """The window sizes closed windows are compacted into, smallest first: the gen1
    duration, an hour and a day (those that are whole multiples of the one before)."""
    windows = [gen1_ns]
    for w in (_HOUR_NS, _DAY_NS):
        if w > windows[-1] and w % windows[-1] == 0:
            windows.append(w)
    return windows


@dataclass(frozen=True)
class Job:
    """Files to write again together."""

    files: list[PersistedFile]
    #: a closed window [start, end) written as few files as it can be; None: files of
    #: about `file_rows` rows
    window: tuple[int, int] | None = None


@dataclass
class CompactionRecord:
    """One job, as `system.compactions` shows it."""

    database: str
    table_name: str
    status: str  # ok | failed | skipped
    input_files: int
    output_files: int
    input_rows: int
    output_rows: int
    started_ns: int
    duration_ms: float
    error: str = ""


class LeaseLost(Exception):
    """The cluster's compactor lease ran out during a job."""


class Compactor:
    def __init__(self, store: ObjectStore, node_id: str, index: PersistedIndex,
                 catalog: Catalog, reader: TableReader, *, file_rows: int,
                 delete_delay_s: float,
                 retention_cutoff: Callable[[str], int | None],
                 oldest_query: Callable[[], float | None] = lambda: None,
                 gen1_ns: int = 600 * 10**9, max_file_rows: int = 50_000_000,
                 clock_ns: Callable[[], int] = time.time_ns,
                 output_prefix: str | None = None,
                 may_publish: Callable[[], bool] = lambda: True,
                 sort_budget_rows: int = SORT_BUDGET_ROWS) -> None:
        self.store = store
        #: whose manifest this compacts
        self.node_id = node_id
        #: where its outputs go: the node's own folder, or in a cluster a folder only the
        #: compactor writes (an ingest node removes unlisted files of its own at start-up,
        #: which would take a compaction's output before it is published)
        self.output_prefix = output_prefix or node_id
        #: asked just before each publish: a cluster's compactor that lost its lease
        #: publishes nothing more (another node may be compacting the same files)
        self.may_publish = may_publish
        self.index = index
        self.catalog = catalog
        self.reader = reader
        self.file_rows = max(1, file_rows)
        self.max_file_rows = max(self.file_rows, max_file_rows)
        #: rows a window is sorted by series in at a time (weir.persist.series_order)
        self.sort_budget_rows = max(1, sort_budget_rows)
        self.use_gen1_duration(gen1_ns)
        self.clock_ns = clock_ns
        self.delete_delay_s = delete_delay_s
        self.retention_cutoff = retention_cutoff
        self.history: deque[CompactionRecord] = deque(maxlen=500)
        #: (when it was unlisted, monotonic; path) of files no manifest names any more
        self._doomed: deque[tuple[float, str]] = deque()
        self.oldest_query = oldest_query

    def use_gen1_duration(self, gen1_ns: int) -> None:
        """Windows follow the gen1 duration (which the catalog fixes at start-up)."""
        self.windows = compaction_windows(gen1_ns)
        #: how long after its end a window may still get writes before it is compacted
        self.window_grace_ns = gen1_ns

    def run_once(self, expire: bool = True) -> int:
        """Compact every table that needs it (and with `expire`, drop whole files past
        the retention period); returns the number of jobs done."""
        self.delete_due()
        jobs = 0
        for db_id, table_id in self.index.table_keys():
            files = self.index.for_table(db_id, table_id)
            if not files:
                continue
            try:  # a deleted table keeps its files until its hard delete; leave them be
                schema = self.catalog.table(files[0].database, files[0].table)
            except NotFound:
                continue
            if schema.id != table_id:
                continue
            cutoff = self.retention_cutoff(files[0].database)
            if cutoff is not None and expire:
                expired = [f for f in files if f.max_time < cutoff]
                if expired:
                    self._expire(expired)
                    files = [f for f in files if f.max_time >= cutoff]
            closed_before = self.clock_ns() - self.window_grace_ns
            for job in plan_jobs(files, self.file_rows, windows=self.windows,
                                 closed_before=closed_before,
                                 max_file_rows=self.max_file_rows):
                self._run_job(job, cutoff)
                jobs += 1
        return jobs

    def delete_due(self, now: float | None = None) -> None:
        """Delete unlisted files that no running query can still be reading: those
        unlisted before the oldest running query started (or past the time limit)."""
        now = time.monotonic() if now is None else now
        oldest = self.oldest_query()
        while self._doomed:
            unlisted, path = self._doomed[0]
            if (oldest is not None and unlisted >= oldest
                    and now < unlisted + self.delete_delay_s):
                break
            self._doomed.popleft()
            self.store.delete(path)

    def doom(self, paths: list[str]) -> None:
        """Delete files no manifest names after the delay (a query planned on an older
        manifest may still read them)."""
        unlisted = time.monotonic()
        self._doomed.extend((unlisted, p) for p in paths)

    def drop_files(self, files: list[PersistedFile]) -> None:
        """Unlist files now (hard delete, retention) and delete them after the delay."""
        try:
            self.index.publish(self.store, self.node_id, remove=files)
        except KeyError:  # listed no more: someone else removed them
            return
        unlisted = time.monotonic()
        self._doomed.extend((unlisted, f.path) for f in files)

    def _expire(self, files: list[PersistedFile]) -> None:
        self.drop_files(files)
        log.info("retention: dropped %d files of %s.%s", len(files), files[0].database,
                 files[0].table)

    def _run_job(self, planned: Job, cutoff: int | None) -> None:
        job = planned.files
        first = job[0]
        started, t0 = time.time_ns(), time.perf_counter()
        rec = CompactionRecord(first.database, first.table, "ok", len(job), 0,
                               sum(f.row_count for f in job), 0, started, 0.0)
        written: list[PersistedFile] = []
        try:
            schema = self.catalog.table(first.database, first.table).arrow_schema()
            if planned.window is None and len(overlap_groups(job)) < len(job):
                written = self._write_outputs(job, schema, cutoff)
            else:  # disjoint files: a window's, or a run of small neighbours
                label = planned.window[0] if planned.window else (
                    first.min_time - first.min_time % self.windows[0])
                written = self._copy_disjoint(job, label, schema, cutoff,
                                              by_series=planned.window is not None)
            if not self.may_publish():
                raise LeaseLost(f"no longer the cluster's compactor; {len(written)} "
                                "outputs dropped")
            self.index.publish(self.store, self.node_id, add=written, remove=job)
        except (KeyError, NotFound, LeaseLost) as e:
            # inputs unlisted meanwhile (hard delete), or the table is gone: drop the output
            rec.status, rec.error = "skipped", f"{type(e).__name__}: {e}"
            for f in written:
                self.store.delete(f.path)
        except ManifestConflict:
            raise
        except Exception as e:
            log.exception("compaction of %s.%s failed", first.database, first.table)
            rec.status, rec.error = "failed", f"{type(e).__name__}: {e}"
            for f in written:
                self.store.delete(f.path)
        else:
            unlisted = time.monotonic()
            self._doomed.extend((unlisted, f.path) for f in job)
            rec.output_files = len(written)
            rec.output_rows = sum(f.row_count for f in written)
        rec.duration_ms = (time.perf_counter() - t0) * 1000
        self.history.append(rec)

    def _write_outputs(self, job: list[PersistedFile], schema: pa.Schema,
                       cutoff: int | None) -> list[PersistedFile]:
        first = job[0]
        lo = min(f.min_time for f in job)
        hi = max(f.max_time for f in job)
        if cutoff is not None:
            lo = max(lo, cutoff)
        rows = sum(f.row_count for f in job)
        merging = len(overlap_groups(job)) < len(job) or any(f.merge for f in job)
        seq = max(f.seq for f in job)
        generation = max(f.generation for f in job) + 1
        # equal time slices of about `file_rows` rows each (rows assumed spread evenly);
        # each slice reads only its rows from every input, so memory stays bounded
        n = max(1, math.ceil(rows / self.file_rows))
        span = hi - lo + 1
        bounds = [lo + span * i // n for i in range(n)] + [hi + 1]
        out: list[PersistedFile] = []
        ordered = sorted(job, key=lambda f: f.seq)
        for start, end in itertools.pairwise(bounds):
            if start >= end:
                continue
            parts = [self.reader.read_file(f, schema, (start, end)) for f in ordered
                     if f.min_time < end and f.max_time >= start]
            if not parts:
                continue
            t = pa.concat_tables(parts)
            if merging:
                t = dedupe(t)
            if t.num_rows == 0:
                continue
            t = sort_for_storage(t)
            data = parquet_bytes(t)
            path = (f"{self.output_prefix}/dbs/{first.db_id}/{first.table_id}/"
                    f"{_window_label(start)}/g{generation}-{uuid.uuid4().hex[:12]}.parquet")
            self.store.put(path, data)
            times = t.column("time").cast(pa.int64())
            out.append(PersistedFile(
                database=first.database, db_id=first.db_id, table=first.table,
                table_id=first.table_id, path=path, size_bytes=len(data),
                row_count=t.num_rows, min_time=pc.min(times).as_py(),
                max_time=pc.max(times).as_py(), seq=seq, generation=generation,
                merge=False))
        return out


    def _copy_disjoint(self, job: list[PersistedFile], label: int, schema: pa.Schema,
                       cutoff: int | None, *, by_series: bool) -> list[PersistedFile]:
        """Files that overlap nothing (a closed window's, or a run of small neighbours)
        written again in as few files as `max_file_rows` allows: `by_series`, sorted by
        series across each output (a closed window's files stay for good); else a row
        group at a time in time order (a run of small files is soon part of its window's
        compaction, and sorting it would cost that window's rows read again per pass).
        Outputs split only between inputs (in time order), so they do not overlap.
        `label`: the window the paths name."""
        job = sorted(job, key=lambda f: f.min_time)
        first = job[0]
        rows = sum(f.row_count for f in job)
        target = math.ceil(rows / math.ceil(rows / self.max_file_rows))
        parts: list[list[PersistedFile]] = [[]]
        for f in job:
            if sum(p.row_count for p in parts[-1]) >= target:
                parts.append([])
            parts[-1].append(f)
        generation = max(f.generation for f in job) + 1
        seq = max(f.seq for f in job)
        out: list[PersistedFile] = []
        for inputs in parts:
            path = (f"{self.output_prefix}/dbs/{first.db_id}/{first.table_id}/"
                    f"{_window_label(label)}/g{generation}-{uuid.uuid4().hex[:12]}.parquet")
            stats = _CopyStats()
            size = self.store.put_streamed(
                path, functools.partial(self._rewrite, inputs, schema, cutoff,
                                        stats=stats, by_series=by_series))
            if stats.rows == 0:  # every row past the retention period
                self.store.delete(path)
                continue
            out.append(PersistedFile(
                database=first.database, db_id=first.db_id, table=first.table,
                table_id=first.table_id, path=path, size_bytes=size, row_count=stats.rows,
                min_time=stats.min_time, max_time=stats.max_time, seq=seq,
                generation=generation, merge=False))
        return out

    def _rewrite(self, inputs: list[PersistedFile], schema: pa.Schema, cutoff: int | None,
                 local: str, *, stats: _CopyStats, by_series: bool) -> None:
        def keep(t: pa.Table) -> pa.Table:
            if cutoff is None:
                return t
            times = t.column("time").cast(pa.int64())
            oldest = pc.min(times).as_py()
            if oldest is None or oldest >= cutoff:  # (most row groups: nothing to cut)
                return t
            return t.filter(pc.greater_equal(times, cutoff))

        fs = self.store.arrow_filesystem()
        with contextlib.ExitStack() as opened, \
                pq.ParquetWriter(local, schema, **parquet_options(schema)) as writer:
            files = [pq.ParquetFile(opened.enter_context(fs.open_input_file(f.path)))
                     for f in inputs]

            def write(t: pa.Table) -> None:
                writer.write_table(t, row_group_size=ROW_GROUP_ROWS)
                stats.add(t.column("time").cast(pa.int64()))

            if not by_series:
                copy_in_time_order(files, schema, write, keep)
            elif not write_series_sorted(files, schema, write, keep=keep,
                                         budget_rows=self.sort_budget_rows):
                log.debug("%s.%s: %d rows copied in time order (too many to sort by "
                          "series)", inputs[0].database, inputs[0].table, stats.rows)


@dataclass
class _CopyStats:
    rows: int = 0
    min_time: int = 0
    max_time: int = 0

    def add(self, times: pa.ChunkedArray) -> None:
        lo, hi = pc.min(times).as_py(), pc.max(times).as_py()
        self.min_time = lo if self.rows == 0 else min(self.min_time, lo)
        self.max_time = hi if self.rows == 0 else max(self.max_time, hi)
        self.rows += len(times)


def plan_jobs(files: list[PersistedFile], file_rows: int, *,
              windows: Sequence[int] = (), closed_before: int | None = None,
              max_file_rows: int | None = None) -> list[Job]:
    """The jobs a table's files need: overlapping groups; closed windows (of the sizes in
    `windows`, ending at or before `closed_before`) whose files can be fewer; runs of
    small neighbours, each within one window of the second size (an hour)."""
    jobs: list[Job] = []
    single: list[PersistedFile] = []
    for group in overlap_groups(files):
        if len(group) > 1:
            jobs.append(Job(group))
        else:
            single.append(group[0])
    if closed_before is not None:
        cap = max_file_rows or file_rows
        for size in sorted(windows, reverse=True):
            by_window: dict[int, list[PersistedFile]] = defaultdict(list)
            for f in single:
                start = f.min_time - f.min_time % size
                if f.max_time < start + size and start + size <= closed_before:
                    by_window[start].append(f)
            taken: set[str] = set()
            for start, members in sorted(by_window.items()):
                rows = sum(f.row_count for f in members)
                # worth writing again only if it at least halves the files
                if len(members) >= 2 and 2 * math.ceil(rows / cap) <= len(members):
                    jobs.append(Job(sorted(members, key=lambda f: f.min_time),
                                    (start, start + size)))
                    taken.update(f.path for f in members)
            single = [f for f in single if f.path not in taken]
    free = {f.path for f in single}
    # runs may cross gen1 windows (which close one file each otherwise) but not hours
    jobs.extend(Job(run) for run in _small_runs(files, free, file_rows,
                                                windows[1:2] or windows[:1]))
    return jobs


def _small_runs(files: list[PersistedFile], free: set[str], file_rows: int,
                window: Sequence[int]) -> list[list[PersistedFile]]:
    """Runs of neighbouring small files among those in `free` worth merging (none
    crossing another file or a window of size `window[0]`, so the output overlaps
    nothing and can later join that window's compaction)."""
    runs: list[list[PersistedFile]] = []
    run: list[PersistedFile] = []

    def close_run() -> None:
        rows = sum(f.row_count for f in run)
        if len(run) >= _MIN_RUN_FILES or (len(run) >= 2 and rows >= file_rows // 2):
            runs.append(list(run))
        run.clear()

    def window_of(f: PersistedFile) -> int | None:
        return f.min_time - f.min_time % window[0] if window else None

    for f in sorted(files, key=lambda f: f.min_time):
        if f.path not in free or f.row_count >= file_rows // 2:
            close_run()
            continue
        if run and (sum(r.row_count for r in run) + f.row_count > file_rows
                    or window_of(run[0]) != window_of(f)):
            close_run()
        run.append(f)
    close_run()
    return runs
