"""The database: the one face that the server and the processing engine use.

It wires the parts along the data flow of DESIGN.md:
line protocol -> validate against the catalog -> WAL (durable) -> buffer (queryable)
-> snapshot to Parquet; queries run DataFusion over buffer ∪ Parquet ∪ system tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from weir import lineprotocol
from weir.buffer import Buffer, Generation
from weir.catalog import INTERNAL_DB, Catalog, Column, HardDelete, Limits, validate_db_name
from weir.config import ServeConfig
from weir.errors import (
    DatabaseMissingForQuery,
    DatabaseNotFound,
    InvalidName,
    LimitExceeded,
    QueryError,
    WriteError,
)
from weir.objectstore import ObjectStore, open_store
from weir.persist import PersistedIndex, PersistEvent, write_snapshot
from weir.persist.compactor import Compactor
from weir.persist.read import TableReader
from weir.persist.status import SnapshotRecord, compactions_table, snapshots_table
from weir.query import DatabaseSnapshot, ParquetFileRef, QueryEngine, TableSnapshot
from weir.system_tables import storage_system_tables
from weir.wal import Wal, WalFile, WalOp

log = logging.getLogger("weir.database")

SystemTableProvider = Callable[[str], dict[str, Callable[[], pa.Table]]]

_PRECISION_NS = {
    "auto": 1, "ns": 1, "n": 1, "nanosecond": 1,
    "us": 1_000, "u": 1_000, "microsecond": 1_000,
    "ms": 1_000_000, "millisecond": 1_000_000,
    "s": 1_000_000_000, "second": 1_000_000_000,
}

_FIELD_TYPE_NAMES = {"FLOAT": "float", "INTEGER": "integer", "UINTEGER": "uinteger",
                     "STRING": "string", "BOOLEAN": "boolean"}


@dataclass
class FlushedWal:
    """One durable WAL file's rows, handed to WAL listeners (the processing engine)."""

    seq: int
    writes: dict[str, list[tuple[str, pa.RecordBatch]]] = field(default_factory=dict)


@dataclass
class WriteResult:
    lines_written: int
    tables: list[str]


def precision_factor(precision: str) -> int:
    try:
        return _PRECISION_NS[precision]
    except KeyError:
        raise WriteError(
            f"invalid precision {precision!r}: expected one of auto, ns, us, ms, s "
            "(or nanosecond, microsecond, millisecond, second)"
        ) from None


def _line_error_json(e: Any) -> dict[str, Any]:
    raw = e.original_line.encode()[:20].decode("utf-8", "ignore")
    return {"error_message": e.message, "line_number": e.line_number, "original_line": raw}


class Database:
    def __init__(self, config: ServeConfig, store: ObjectStore | None = None,
                 limits: Limits | None = None) -> None:
        self.config = config
        self.store = store or open_store(config.object_store, str(config.data_dir))
        self.node_id = config.node_id
        self.catalog = Catalog(self.store, self.node_id, limits)
        self.buffer = Buffer()
        self.index = PersistedIndex()
        self.query_engine = QueryEngine(timeout=config.query_timeout,
                                        memory_limit=config.exec_mem_pool_bytes)
        self.wal = Wal(
            self.store,
            self.node_id,
            on_flushed=self._on_flushed,
            flush_interval=config.wal_flush_interval,
            max_buffer_ops=config.wal_max_write_buffer_size,
        )
        self._wal_listeners: list[Callable[[FlushedWal], Awaitable[None]]] = []
        self._persist_listeners: list[Callable[[PersistEvent], Awaitable[None]]] = []
        self._system_providers: list[SystemTableProvider] = [
            storage_system_tables(self), self._life_cycle_tables]
        self._files_since_snapshot = 0
        self._snapshot_task: asyncio.Task[PersistEvent | None] | None = None
        self._retry_gen: Generation | None = None
        self._retry_handle: asyncio.TimerHandle | None = None
        self._snapshot_attempt = 0
        #: every snapshot attempt, newest last (system.snapshots)
        self.snapshot_history: deque[SnapshotRecord] = deque(maxlen=500)
        self.reader = TableReader(self.store)
        self.compactor = Compactor(
            self.store, self.node_id, self.index, self.catalog, self.reader,
            file_rows=config.compaction_file_rows,
            # inputs outlive the longest query that may have been planned on them
            delete_delay_s=config.query_timeout + 5,
            retention_cutoff=self.retention_cutoff, oldest_query=self._oldest_query)
        self._maintenance_task: asyncio.Task[None] | None = None
        #: due hard deletes -> the WAL sequence a snapshot must cover before the catalog
        #: may forget them
        self._hard_deletes: dict[HardDelete, int] = {}
        self._force_snapshot = False
        self._last_retention_check = float("-inf")
        #: running queries -> when they started (monotonic): files they may read are
        #: deleted only after they finish
        self._queries: dict[object, float] = {}
        self._queries_lock = threading.Lock()
        self.started_ns = time.time_ns()

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Load the catalog and the manifest, replay the WAL, start flushing."""
        await asyncio.to_thread(self.catalog.load)
        if self.catalog.gen1_duration_s is None:
            self.catalog.gen1_duration_s = self.config.gen1_duration
            await asyncio.to_thread(self.catalog.persist)
        elif self.catalog.gen1_duration_s != self.config.gen1_duration:
            log.warning("gen1 duration is fixed at %ss by the catalog; ignoring %ss",
                        self.catalog.gen1_duration_s, self.config.gen1_duration)
        self.index = await asyncio.to_thread(PersistedIndex.load, self.store, self.node_id)
        self.compactor.index = self.index
        leftovers = await asyncio.to_thread(self.index.remove_leftovers, self.store,
                                            self.node_id)
        if leftovers:
            log.info("removed %d parquet files no manifest names (an interrupted snapshot "
                     "or compaction)", leftovers)
        # Rows replayed or written from now on may overwrite points in these files.
        for f in self.index.all():
            key = (f.database, f.table)
            self.buffer.persisted_before[key] = max(
                self.buffer.persisted_before.get(key, f.max_time), f.max_time)
        replayed = 0
        for wal in self.wal.replay(self.index.last_wal_seq):
            # Rows of databases deleted since they were written stay deleted.
            wal.ops = [op for op in wal.ops if self.catalog.db_exists(op.db)
                       or not self.catalog.was_deleted(op.db)]
            self._ensure_schema_from_wal(wal)
            self.buffer.apply(wal)
            replayed += 1
            self._files_since_snapshot += 1
        # WAL files already covered by a snapshot but not yet deleted (crash in between).
        await asyncio.to_thread(self._delete_snapshotted_wal, self.index.last_wal_seq)
        log.info("replayed %d WAL files (last seq %d); %d parquet files persisted",
                 replayed, self.wal.last_seq, len(self.index.all()))
        self.wal.start()
        self._maintenance_task = asyncio.create_task(self._maintain(), name="maintenance")

    async def stop(self) -> None:
        """Flush what is pending to the WAL; wait for a running snapshot."""
        if self._maintenance_task is not None:
            self._maintenance_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance_task
        if self._retry_handle is not None:
            self._retry_handle.cancel()
        await self.wal.stop()
        if self._snapshot_task is not None:
            await self._snapshot_task

    def _delete_snapshotted_wal(self, seq: int) -> None:
        """WAL files up to `seq` are in Parquet; keep the newest
        `--snapshotted-wal-files-to-keep` of them, delete the rest."""
        self.wal.delete_upto(seq - max(0, self.config.snapshotted_wal_files_to_keep))

    def _ensure_schema_from_wal(self, wal: WalFile) -> None:
        """A WAL file always follows its catalog, but be safe: learn missing columns."""
        changed = False
        for op in wal.ops:
            d, created = self.catalog.ensure_database(op.db, count_limit=False)
            changed |= created
            known = d.tables.get(op.table)
            new = []
            for f in op.batch.schema:
                if known is None or f.name not in known.columns:
                    kind = (f.metadata or {}).get(b"weir:kind", b"field").decode()
                    new.append(Column(f.name, kind, _type_of(kind, f.type)))
            if new:
                self.catalog.add_columns(op.db, op.table, new)
                changed = True
        if changed:
            self.catalog.persist()

    # ---- listeners -------------------------------------------------------------------

    def add_wal_listener(self, cb: Callable[[FlushedWal], Awaitable[None]]) -> None:
        self._wal_listeners.append(cb)

    def add_persist_listener(self, cb: Callable[[PersistEvent], Awaitable[None]]) -> None:
        self._persist_listeners.append(cb)

    def add_system_tables(self, provider: SystemTableProvider) -> None:
        self._system_providers.append(provider)

    # ---- writes ----------------------------------------------------------------------

    async def write_lp(
        self,
        database: str,
        body: bytes | str,
        *,
        precision: str = "auto",
        accept_partial: bool = True,
        no_sync: bool = False,
    ) -> WriteResult:
        try:
            validate_db_name(database)
        except InvalidName as e:
            raise WriteError(str(e)) from None
        if database == INTERNAL_DB:
            raise WriteError("cannot write to the _internal database")
        if not self.catalog.db_exists(database) and self.catalog.was_deleted(database):
            raise WriteError(
                f"cannot write to soft-deleted database '{database}' - it is marked for deletion"
            )
        factor = precision_factor(precision)
        now = time.time_ns() // factor * factor
        parse = lambda: lineprotocol.parse(  # noqa: E731
            body, precision=precision, default_time_ns=now,
            stop_on_first_error=not accept_partial, schema=self._schema_lookup(database),
        )
        parsed = parse() if len(body) < 65536 else await asyncio.to_thread(parse)
        errors = list(parsed.errors)
        if not errors and parsed.lines == 0:
            raise WriteError("incoming write was empty")
        if errors and not accept_partial:
            raise self._parse_failure(errors[0])
        ops, errors = self._validate(database, parsed, errors, body)
        if errors and not accept_partial:
            raise self._parse_failure(min(errors, key=lambda e: e.line_number))
        if ops:
            await self._wait_for_buffer_room()
            await self.wal.append(ops, wait=not no_sync)
        if errors:
            errors.sort(key=lambda e: e.line_number)
            status = 422 if any(
                e.message.startswith(("Update to schema would exceed number of",
                                      "Adding a new database would exceed limit of"))
                for e in errors
            ) else 400
            raise WriteError(
                "partial write of line protocol occurred",
                status=status,
                body={"error": "partial write of line protocol occurred",
                      "data": [_line_error_json(e) for e in errors]},
                lines=errors,
            )
        return WriteResult(sum(op.batch.num_rows for op in ops), [op.table for op in ops])

    async def _wait_for_buffer_room(self) -> None:
        """Past `--buffer-mem-limit` a write waits for a snapshot to free the buffer, then
        gives up with 503: memory stays bounded, and nothing is lost or half-taken."""
        limit = self.config.buffer_mem_limit
        if self.buffer.nbytes < limit:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        while self.buffer.nbytes >= limit:
            self._maybe_snapshot()
            if loop.time() >= deadline:
                raise WriteError(
                    f"the in-memory buffer is full ({self.buffer.nbytes} bytes, limit "
                    f"{limit} from --buffer-mem-limit) and snapshots have not freed it; "
                    "retry the write later", status=503)
            await asyncio.sleep(0.05)

    def _schema_lookup(self, database: str) -> Callable[[str], dict[str, tuple[str, str]] | None]:
        def lookup(table: str) -> dict[str, tuple[str, str]] | None:
            try:
                cols = self.catalog.db(database).tables[table].columns
            except (KeyError, DatabaseNotFound):
                return None
            return {c.name: (c.kind, c.type) for c in cols.values()}

        return lookup

    def _parse_failure(self, e: Any) -> WriteError:
        return WriteError(
            "line protocol parsing error",
            status=422 if e.message.startswith(("Update to schema would exceed number of",
                                                "Adding a new database would exceed limit of"))
            else 400,
            body={"error": "line protocol parsing error", "data": _line_error_json(e)},
            lines=[e],
        )

    def _validate(self, database: str, parsed: Any, errors: list[Any], body: bytes | str
                  ) -> tuple[list[WalOp], list[Any]]:
        """Check each table's columns against the catalog; drop rows that conflict."""
        if not parsed.tables:
            return [], errors
        body_lines: list[str] = []

        def line_at(n: int) -> str:  # split the body once, and only if a row is rejected
            if not body_lines:
                text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
                body_lines.extend(text.split("\n"))
            return body_lines[n - 1].rstrip("\r") if 0 < n <= len(body_lines) else ""

        try:
            dbschema, created = self.catalog.ensure_database(database)
        except LimitExceeded as e:
            for tc in parsed.tables.values():
                errors.extend(_row_errors(tc, range(tc.rows), str(e), line_at))
            return [], errors
        changed = created
        ops: list[WalOp] = []

        bad_lines = {e.line_number for e in errors}
        for name, tc in parsed.tables.items():
            known = dbschema.tables.get(name)
            cols = known.columns if known else {}
            bad: dict[int, str] = {}
            new: list[Column] = []
            for tag, values in tc.tags.items():
                c = cols.get(tag)
                if c is None:
                    new.append(Column(tag, "tag", "tag"))
                elif c.kind != "tag":
                    _mark(bad, values, f"invalid column type for column '{tag}', expected "
                          f"{c.kind} ({c.type}), got tag")
            for fname, (ftype, values) in tc.fields.items():
                tname = _FIELD_TYPE_NAMES[ftype.name]
                c = cols.get(fname)
                if c is None:
                    new.append(Column(fname, "field", tname))
                elif c.kind != "field":
                    _mark(bad, values, f"invalid column type for column '{fname}', expected "
                          f"{c.kind}, got field")
                elif c.type != tname:
                    _mark(bad, values, f"invalid field value in line protocol for field "
                          f"'{fname}': expected type {c.type}, but got {tname}")
            if bad:
                for row, msg in sorted(bad.items()):
                    ln = tc.line_number(row)
                    if ln not in bad_lines:
                        errors.append(lineprotocol.LineError(ln, msg, line_at(ln)))
                        bad_lines.add(ln)
                tc = tc.drop_rows(set(bad))
                if not tc.rows:
                    continue
                # Columns that only the dropped rows used must not enter the catalog.
                present = set(tc.tags) | set(tc.fields)
                new = [c for c in new if c.name in present]
            if new or known is None:
                try:
                    self.catalog.add_columns(database, name, new)
                    changed = True
                except LimitExceeded as e:
                    errors.extend(_row_errors(tc, range(tc.rows), str(e), line_at))
                    continue
            ops.append(WalOp(database, name, tc.to_arrow()))
        if created and not ops:
            # every line was refused: a write that stores nothing creates nothing either
            changed = not self.catalog.discard_empty_database(database)
        if changed:
            self.catalog.persist()
        return ops, errors

    # ---- flush, snapshot ---------------------------------------------------------

    async def _on_flushed(self, wal: WalFile) -> None:
        self.buffer.apply(wal)
        self._files_since_snapshot += 1
        if self._wal_listeners:
            flushed = FlushedWal(seq=wal.seq)
            for op in wal.ops:
                flushed.writes.setdefault(op.db, []).append((op.table, op.batch))
            for cb in self._wal_listeners:
                try:
                    await cb(flushed)
                except Exception:
                    log.exception("WAL listener failed")
        self._maybe_snapshot()

    def _maybe_snapshot(self) -> None:
        if self._snapshot_task is not None and not self._snapshot_task.done():
            return
        if self._retry_gen is not None:
            return  # a failed snapshot is retried by its own timer, with backoff
        if (self._files_since_snapshot >= self.config.wal_snapshot_size
                or self.buffer.nbytes >= self.config.force_snapshot_bytes
                or self._force_snapshot):
            self._force_snapshot = False
            self._snapshot_task = asyncio.create_task(self.snapshot(), name="snapshot")

    def _retry_snapshot(self) -> None:
        self._retry_handle = None
        if self._snapshot_task is None or self._snapshot_task.done():
            self._snapshot_task = asyncio.create_task(self.snapshot(), name="snapshot")

    async def snapshot(self) -> PersistEvent | None:
        """Persist the buffer to Parquet now. Returns what was persisted.

        A failure keeps the data in the buffer and the WAL, is logged and recorded in
        `system.snapshots`, and is retried after 1 s, 2 s, 4 s ... up to a minute."""
        gen = self._retry_gen or self.buffer.freeze()
        if gen is None:
            await asyncio.to_thread(self._cover_empty_wal)
            return None
        self._files_since_snapshot = 0
        self._snapshot_attempt += 1
        gen1_ns = round(self.catalog.gen1_duration_s or self.config.gen1_duration) * 10**9
        started, t0 = time.time_ns(), time.perf_counter()
        rows = sum(tb.rows for tb in gen.tables.values())
        record = SnapshotRecord(gen.max_seq, "ok", self._snapshot_attempt, started, 0.0, 0,
                                rows)
        try:
            event = await asyncio.to_thread(
                write_snapshot, gen, store=self.store, catalog=self.catalog,
                node_id=self.node_id, gen1_ns=gen1_ns,
            )
            await asyncio.to_thread(self._publish_snapshot, event, gen)
        except Exception as e:
            delay = min(60.0, 2.0 ** (self._snapshot_attempt - 1))
            log.exception("snapshot failed (attempt %d); the data stays in the WAL and the "
                          "snapshot is retried in %gs", self._snapshot_attempt, delay)
            record.status, record.error = "failed", f"{type(e).__name__}: {e}"
            record.duration_ms = (time.perf_counter() - t0) * 1000
            self.snapshot_history.append(record)
            self._retry_gen = gen
            self._retry_handle = asyncio.get_running_loop().call_later(
                delay, self._retry_snapshot)
            return None
        self._retry_gen = None
        self._snapshot_attempt = 0
        record.files = len(event.files)
        record.duration_ms = (time.perf_counter() - t0) * 1000
        self.snapshot_history.append(record)
        await asyncio.to_thread(self._delete_snapshotted_wal, event.seq)
        for cb in self._persist_listeners:
            try:
                await cb(event)
            except Exception:
                log.exception("persist listener failed")
        self._maybe_snapshot()  # writes may have piled up while this one ran
        return event

    def _cover_empty_wal(self) -> None:
        """With nothing buffered, WAL files after the manifest's sequence hold no live
        rows (only rows of deleted tables): record them as covered so they are not
        replayed."""
        with self.buffer.lock:
            if (self.buffer.persisting is None and not self.buffer.active.tables
                    and self.wal.last_seq > self.index.last_wal_seq):
                self.index.publish(self.store, self.node_id, wal_seq=self.wal.last_seq)

    def _publish_snapshot(self, event: PersistEvent, gen: Generation) -> None:
        # One locked step: queries see the rows in the buffer or in the files, never both.
        with self.buffer.lock:
            self.index.publish(self.store, self.node_id, add=event.files, wal_seq=event.seq)
            self.buffer.release(gen)

    # ---- maintenance: compaction, retention, hard deletes ------------------------------

    def _oldest_query(self) -> float | None:
        with self._queries_lock:
            return min(self._queries.values(), default=None)

    def retention_cutoff(self, database: str) -> int | None:
        """The oldest time a query of `database` may see now, or None (keep everything)."""
        return self.catalog.retention_cutoff_ns(database, time.time_ns())

    async def _maintain(self) -> None:
        interval = self.config.compaction_interval
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.compact)
                self._maybe_snapshot()
            except Exception:
                log.exception("compaction failed; retrying in %gs", interval)

    def compact(self) -> int:
        """Hard deletes that are due, then one compaction pass (which also removes
        expired files every `--retention-check-interval`). Returns jobs run."""
        self._hard_delete_due()
        now = time.monotonic()
        expire = now - self._last_retention_check >= self.config.retention_check_interval
        if expire:
            self._last_retention_check = now
        return self.compactor.run_once(expire=expire)

    def _hard_delete_due(self) -> None:
        """Remove the files of deletions whose time has come. The catalog forgets the
        schema only once a snapshot covers every WAL file written before: until then a
        restart would replay rows of the deleted name."""
        for item in self.catalog.due_hard_deletes(time.time_ns()):
            files = [f for f in self.index.all() if f.db_id == item.db_id
                     and (item.table_id is None or f.table_id == item.table_id)]
            if files:
                self.compactor.drop_files(files)
                log.info("hard delete of %s%s: removed %d parquet files", item.db_name,
                         f".{item.table_name}" if item.table_name else "", len(files))
            wal_seq = self._hard_deletes.setdefault(item, self.wal.last_seq)
            if self.index.last_wal_seq < wal_seq:
                if self._retry_gen is None:
                    self._force_snapshot = True
                continue
            # the deleted schema stays listed (system.databases, deleted=true) for
            # --delete-grace-period after its data is gone, then the catalog forgets it
            grace_ns = round(self.config.delete_grace_period * 1e9)
            if time.time_ns() >= item.deletion_time_ns + grace_ns:
                self.catalog.complete_hard_delete(item)
                del self._hard_deletes[item]

    def _life_cycle_tables(self, database: str) -> dict[str, Callable[[], pa.Table]]:
        return {"snapshots": lambda: snapshots_table(list(self.snapshot_history)),
                "compactions": lambda: compactions_table(
                    [r for r in self.compactor.history if r.database == database])}

    # ---- queries ---------------------------------------------------------------------

    def snapshot_for_query(self, database: str) -> DatabaseSnapshot:
        """A consistent view of `database` for one query: each table's Parquet files to
        scan, and its rows in memory merged by last-write-wins where copies of a point
        may sit in more than one place (see persist.read). Reads files: call it off the
        event loop."""
        dbschema = self.catalog.db(database)
        system: dict[str, Callable[[], pa.Table]] = {}
        for provider in self._system_providers:
            system.update(provider(database))
        cutoff = self.retention_cutoff(database)
        views = {}
        with self.buffer.lock:
            for name, ts in list(dbschema.tables.items()):
                views[name] = (ts.arrow_schema(), self.index.for_table(dbschema.id, ts.id),
                               self.buffer.tables(database, name))
        tables = {}
        for name, (schema, files, buffered) in views.items():
            if cutoff is not None:
                files = [f for f in files if f.max_time >= cutoff]
            read = self.reader.plan(files, buffered, schema)
            tables[name] = TableSnapshot(
                name=name,
                schema=schema,
                batches=read.rows,
                files=[ParquetFileRef(f.path, f.min_time, f.max_time, f.row_count,
                                      f.size_bytes) for f in read.files],
                min_time=cutoff,
            )
        return DatabaseSnapshot(name=database, tables=tables,
                                filesystem=self.store.arrow_filesystem(), system_tables=system)

    async def query(self, database: str, sql: str, params: dict[str, Any] | None = None
                    ) -> pa.Table:
        if not self.catalog.db_exists(database):
            raise DatabaseMissingForQuery(database)

        def run() -> pa.Table:
            token = object()
            with self._queries_lock:
                self._queries[token] = time.monotonic()
            try:
                return self.query_engine.execute(self.snapshot_for_query(database), sql,
                                                 params)
            finally:
                with self._queries_lock:
                    del self._queries[token]

        try:
            return await asyncio.wait_for(asyncio.to_thread(run),
                                          timeout=self.config.query_timeout)
        except TimeoutError:
            raise QueryError(
                f"query exceeded the time limit of {self.config.query_timeout}s", status=408
            ) from None

    # ---- management ------------------------------------------------------------------

    def delete_database(self, name: str) -> None:
        self.catalog.delete_database(name)
        self.buffer.drop(name)

    def delete_table(self, db: str, table: str) -> None:
        self.catalog.delete_table(db, table)
        self.buffer.drop(db, table)


def _type_of(kind: str, t: pa.DataType) -> str:
    if kind == "tag":
        return "tag"
    if kind == "time":
        return "time"
    for name, at in (("float", pa.float64()), ("integer", pa.int64()),
                     ("uinteger", pa.uint64()), ("boolean", pa.bool_())):
        if t == at:
            return name
    return "string"


def _mark(bad: dict[int, str], values: Any, msg: str) -> None:
    for i, v in enumerate(values if isinstance(values, list) else values.to_pylist()):
        if v is not None and i not in bad:
            bad[i] = msg


def _row_errors(tc: Any, rows: Any, msg: str, line_at: Callable[[int], str]) -> list[Any]:
    return [lineprotocol.LineError(n, msg, line_at(n)) for n in map(tc.line_number, rows)]
