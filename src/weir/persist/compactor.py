"""The compactor: keeps each table's Parquet files few, large, disjoint and merged.

A job takes files that belong together and writes them again as files of about
`file_rows` rows, sorted by series key and time, split at time boundaries so the new
files do not overlap each other. Two kinds of job:

* files whose time ranges overlap (late or overwriting writes, or a gen1 window written
  by several snapshots): always all of them together, so no file outside the job
  overlaps it and the output may take the newest input's `seq`; points are merged by
  last-write-wins, oldest file first;
* runs of small neighbouring files, once there are enough of them to be worth it.

Rows older than the database's retention period are left out. The output is published
by one manifest that adds it and removes the inputs; the inputs are deleted once every
query that started before the swap has finished (and at the latest after the longest a
query may run), so a query planned before the swap still finds them. A
crash before the manifest leaves unnamed outputs and a crash after it unnamed inputs,
both removed at start-up.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from weir.catalog import Catalog
from weir.errors import NotFound
from weir.objectstore import ObjectStore
from weir.persist import (
    ManifestConflict,
    PersistedFile,
    PersistedIndex,
    _window_label,
    parquet_bytes,
)
from weir.persist.lww import dedupe, sort_for_storage
from weir.persist.read import TableReader, overlap_groups

log = logging.getLogger("weir.compactor")

#: a run of small neighbouring files is merged once it has this many files ...
_MIN_RUN_FILES = 4


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


class Compactor:
    def __init__(self, store: ObjectStore, node_id: str, index: PersistedIndex,
                 catalog: Catalog, reader: TableReader, *, file_rows: int,
                 delete_delay_s: float,
                 retention_cutoff: Callable[[str], int | None],
                 oldest_query: Callable[[], float | None] = lambda: None) -> None:
        self.store = store
        self.node_id = node_id
        self.index = index
        self.catalog = catalog
        self.reader = reader
        self.file_rows = max(1, file_rows)
        self.delete_delay_s = delete_delay_s
        self.retention_cutoff = retention_cutoff
        self.history: deque[CompactionRecord] = deque(maxlen=500)
        #: (when it was unlisted, monotonic; path) of files no manifest names any more
        self._doomed: deque[tuple[float, str]] = deque()
        self.oldest_query = oldest_query

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
            for job in plan_jobs(files, self.file_rows):
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

    def _run_job(self, job: list[PersistedFile], cutoff: int | None) -> None:
        first = job[0]
        started, t0 = time.time_ns(), time.perf_counter()
        rec = CompactionRecord(first.database, first.table, "ok", len(job), 0,
                               sum(f.row_count for f in job), 0, started, 0.0)
        written: list[PersistedFile] = []
        try:
            schema = self.catalog.table(first.database, first.table).arrow_schema()
            written = self._write_outputs(job, schema, cutoff)
            self.index.publish(self.store, self.node_id, add=written, remove=job)
        except (KeyError, NotFound) as e:
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
            path = (f"{self.node_id}/dbs/{first.db_id}/{first.table_id}/"
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


def plan_jobs(files: list[PersistedFile], file_rows: int) -> list[list[PersistedFile]]:
    """The jobs a table's files need: overlapping groups, and runs of small neighbours."""
    jobs: list[list[PersistedFile]] = []
    run: list[PersistedFile] = []

    def close_run() -> None:
        rows = sum(f.row_count for f in run)
        if len(run) >= _MIN_RUN_FILES or (len(run) >= 2 and rows >= file_rows // 2):
            jobs.append(list(run))
        run.clear()

    for group in overlap_groups(files):
        if len(group) > 1:
            close_run()
            jobs.append(group)
            continue
        f = group[0]
        if f.row_count >= file_rows // 2:
            close_run()
            continue
        if run and sum(r.row_count for r in run) + f.row_count > file_rows:
            close_run()
        run.append(f)
    close_run()
    return jobs
