"""The database: storage's facade, the one implementation of the protocols of weir.ports
that the services and the processing engine use (docs/ARCHITECTURE.md).

It wires the parts along the data flow:
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
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.fs as pafs

from weir.buffer import Buffer, Generation, TableBuffer
from weir.cache import (
    Caches,
    DistinctCache,
    LastCache,
    distinct_cache_refill_sql,
    last_cache_refill_sql,
)
from weir.catalog import (
    INTERNAL_DB,
    Catalog,
    Column,
    DistinctCacheDefinition,
    HardDelete,
    LastCacheDefinition,
    Limits,
    TableSchema,
)
from weir.catalog.validator import raise_refused_lines, validate_write
from weir.cluster.lease import CompactorLease
from weir.cluster.membership import read_nodes
from weir.config import ServeConfig
from weir.errors import (
    DatabaseMissingForQuery,
    NodeModeRefused,
    ObjectStoreUnavailable,
    QueryError,
    QueryFailed,
    WriteError,
    WriteUnavailable,
)
from weir.lineprotocol import LineError
from weir.metrics import ServerMetrics
from weir.nodes import ClusterNode
from weir.objectstore import ObjectStore, open_store
from weir.objectstore.metered import MeteredStore
from weir.persist import PersistedFile, PersistedIndex, PersistEvent, write_snapshot
from weir.persist.compactor import Compactor
from weir.persist.read import TableReader
from weir.persist.status import SnapshotRecord
from weir.ports import (
    DatabaseDeletedListener,
    FlushedWal,
    QueryParams,
    Storage,
    WriteResult,
    trigger_state_key,
)
from weir.query import DatabaseSnapshot, ParquetFileRef, QueryEngine, TableSnapshot
from weir.query.engine import QueryDescription, QueryStream
from weir.system_tables import (
    CacheTables,
    LifeCycleTables,
    StorageTables,
    SystemTable,
    SystemTableProvider,
    SystemTables,
)
from weir.wal import TriggerKey, Wal, WalFile, WalOp

log = logging.getLogger("weir.database")
_MAX_NS = 2**63 - 1
#: how long /ready waits for the object store to answer
STORE_CHECK_TIMEOUT_S = 5.0


class Database:
    def __init__(self, config: ServeConfig, store: ObjectStore | None = None,
                 limits: Limits | None = None, metrics: ServerMetrics | None = None) -> None:
        self.config = config
        #: what storage counts (writes, queries, object-store operations): /metrics
        self.metrics = metrics or ServerMetrics.create()
        self.store: ObjectStore = MeteredStore(
            store or open_store(config.object_store, str(config.data_dir)),
            self.metrics.object_store)
        self.node_id = config.node_id
        # (a cluster shares one catalog, under its id)
        self.catalog = Catalog(self.store, self.node_id, limits, prefix=config.cluster_id)
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
        self._delete_listeners: list[DatabaseDeletedListener] = []
        #: the last-value and distinct-value caches' contents (their definitions are
        #: the catalog's)
        self.caches = Caches()
        self.system_tables = SystemTables([StorageTables(self), LifeCycleTables(self),
                                           CacheTables(self)])
        self._files_since_snapshot = 0
        self._snapshot_task: asyncio.Task[PersistEvent | None] | None = None
        self._retry_gen: Generation | None = None
        #: the WAL triggers' checkpoints as of the generation being retried
        self._retry_checkpoints: dict[TriggerKey, int] = {}
        #: WAL triggers' durable checkpoints: the last WAL file each has fully processed,
        #: as recorded in the WAL with its write-backs (and copied into each manifest)
        self.trigger_checkpoints: dict[TriggerKey, int] = {}
        #: WAL triggers' progress in memory (files with nothing for them included):
        #: snapshots keep the WAL files after it for them (`_wal_kept_from`)
        self._wal_readers: dict[TriggerKey, int] = {}
        self._lagging: set[TriggerKey] = set()
        self._retry_handle: asyncio.TimerHandle | None = None
        self._snapshot_attempt = 0
        #: every snapshot attempt, newest last (system.snapshots)
        self.snapshot_history: deque[SnapshotRecord] = deque(maxlen=500)
        self.reader = TableReader(self.store)
        #: the Arrow filesystem queries read Parquet files through: one for the store's
        #: life (the store's views are stateless or read the store live), because making
        #: one per query cost tens of microseconds of a trivial query's budget
        self._query_fs: pafs.FileSystem | None = None
        #: each table's Arrow schema, made once per version of its columns
        self._schemas = _ArrowSchemas()
        self.compactor = self._make_compactor(self.node_id, self.index, self.node_id,
                                              lambda: True, self._oldest_query)
        #: this node's part in a cluster (`--cluster-id`); None for a single node
        self.cluster: ClusterNode | None = None
        self._lease: CompactorLease | None = None
        if config.cluster_id is not None:
            self.index.shared = True
            if "compact" in config.modes:
                self._lease = CompactorLease(self.store, config.cluster_id, self.node_id,
                                             ttl_s=config.compactor_lease_duration)
            self.cluster = ClusterNode(config, self.store, self.catalog, lambda: self.index,
                                       self._ingest_nodes, self._lease,
                                       self._make_cluster_compactor)
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
        #: WAL files replayed so far by `start` (it grows while the WAL is replayed)
        self.replayed_files = 0
        self._closing = False  # `stop` was called: a replay still running stops too

    def _make_compactor(self, node_id: str, index: PersistedIndex, output_prefix: str,
                        may_publish: Callable[[], bool],
                        oldest_query: Callable[[], float | None]) -> Compactor:
        """The compactor of `node_id`'s manifest, its outputs under `output_prefix`."""
        return Compactor(
            self.store, node_id, index, self.catalog, self.reader,
            file_rows=self.config.compaction_file_rows,
            max_file_rows=self.config.compaction_max_file_rows,
            # inputs outlive the longest query that may have been planned on them
            delete_delay_s=self.config.query_timeout + 5,
            retention_cutoff=self.retention_cutoff, oldest_query=oldest_query,
            output_prefix=output_prefix, may_publish=may_publish)

    def _make_cluster_compactor(self, node_id: str, index: PersistedIndex, output_prefix: str,
                                may_publish: Callable[[], bool],
                                oldest_query: Callable[[], float | None]) -> Compactor:
        """A compactor of the cluster's compactor (made once it runs, after start-up): it
        records into this node's compaction history and uses its gen1 windows."""
        compactor = self._make_compactor(node_id, index, output_prefix, may_publish,
                                         oldest_query)
        compactor.history = self.compactor.history
        compactor.use_gen1_duration(self.compactor.window_grace_ns)
        return compactor

    def _ingest_nodes(self) -> list[str]:
        """The cluster's nodes that write data: ingest nodes, and process nodes (their
        plugins' writes), this one included (their records say; a node that stopped still
        counts: its files are in the bucket)."""
        assert self.config.cluster_id is not None
        return sorted(r.node_id for r in read_nodes(self.store, self.config.cluster_id)
                      if "ingest" in r.modes or "process" in r.modes)

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
        self.compactor.use_gen1_duration(
            round(self.catalog.gen1_duration_s or self.config.gen1_duration) * 10**9)
        self.index = await asyncio.to_thread(PersistedIndex.load, self.store, self.node_id)
        self.index.shared = self.cluster is not None
        self.compactor.index = self.index
        self.trigger_checkpoints = dict(self.index.trigger_checkpoints)
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
        # (off the event loop: the HTTP server answers /ready meanwhile)
        replayed = await asyncio.to_thread(self._replay_wal)
        # WAL files already covered by a snapshot but not yet deleted (crash in between).
        await asyncio.to_thread(self._delete_snapshotted_wal, self.index.last_wal_seq)
        log.info("replayed %d WAL files (last seq %d); %d parquet files persisted",
                 replayed, self.wal.last_seq, len(self.index.all()))
        await self._start_caches()
        self.wal.start()
        if self.cluster is not None:
            # the first look at the other nodes before the first query is answered
            await asyncio.to_thread(self.cluster.poll)
            self.cluster.start()
        self._maintenance_task = asyncio.create_task(self._maintain(), name="maintenance")
        self._maintenance_task.add_done_callback(_report_maintenance_end)

    def _replay_wal(self) -> int:
        """Apply the WAL files after the manifest's to the buffer; how many there were."""
        for wal in self.wal.replay(self.index.last_wal_seq):
            if self._closing:  # stopped while starting: the process is ending
                break
            # Rows of databases and tables deleted since they were written stay deleted,
            # also when one of the same name was made again since.
            wal.ops = [op for op in wal.ops
                       if not self.catalog.deleted_before(op.db, op.table, wal.seq)]
            self._ensure_schema_from_wal(wal)
            self.buffer.apply(wal)
            self._note_checkpoints(wal)
            self.replayed_files += 1
            self._files_since_snapshot += 1
        return self.replayed_files

    async def store_problem(self) -> str | None:
        """Why the object store does not answer (None: it does): it is asked for the
        catalog's size, which every started server has stored."""
        limit = STORE_CHECK_TIMEOUT_S
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._store_problem_now), limit)
        except TimeoutError:
            return f"the object store did not answer within {limit:g}s"

    def _store_problem_now(self) -> str | None:
        """`store_problem`, asked from the calling thread, without its time limit."""
        try:
            self.store.size(self.catalog.path)
        except FileNotFoundError:
            return "the object store no longer holds the catalog"
        except Exception as e:  # noqa: BLE001 - whatever it is, the store is not usable
            return f"the object store failed: {type(e).__name__}: {e}"
        return None

    async def stop(self) -> None:
        """Flush what is pending to the WAL; wait for a running snapshot."""
        self._closing = True
        if self._maintenance_task is not None:
            self._maintenance_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance_task
        if self._retry_handle is not None:
            self._retry_handle.cancel()
        if self.cluster is not None:
            await self.cluster.stop()
        if self._lease is not None:
            await asyncio.to_thread(self._lease.release)
        await self.wal.stop()
        if self._snapshot_task is not None:
            await self._snapshot_task

    def _delete_snapshotted_wal(self, seq: int) -> None:
        """WAL files up to `seq` are in Parquet; keep the newest
        `--snapshotted-wal-files-to-keep` of them, and every file an enabled WAL trigger
        has yet to process; delete the rest."""
        upto = seq - max(0, self.config.snapshotted_wal_files_to_keep)
        kept_from = self._wal_kept_from()
        if kept_from is not None:
            upto = min(upto, kept_from - 1)
        self.wal.delete_upto(upto)

    def _wal_kept_from(self) -> int | None:
        """The oldest WAL file an enabled WAL trigger still needs (None: none). A trigger
        more than `--trigger-max-wal-lag` files behind holds nothing: it is lagging, and
        skips what is deleted (the engine logs how much)."""
        kept: int | None = None
        limit = self.config.trigger_max_wal_lag
        for t in self.catalog.triggers():
            key = (t.database, t.trigger_name)
            if t.disabled or not _is_wal_trigger(t.trigger_specification):
                continue
            done = max(self.trigger_checkpoints.get(key, -1), self._wal_readers.get(key, -1))
            if done < 0:
                continue  # a new trigger: it starts at the newest WAL file
            if self.wal.last_seq - done > limit:
                if key not in self._lagging:
                    self._lagging.add(key)
                    log.warning("WAL trigger %s of database %s is %d WAL files behind (more "
                                "than --trigger-max-wal-lag %d): the WAL is no longer kept "
                                "for it, and it will skip what snapshots delete",
                                t.trigger_name, t.database, self.wal.last_seq - done, limit)
                continue
            self._lagging.discard(key)
            kept = done + 1 if kept is None else min(kept, done + 1)
        return kept

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
        self.system_tables.register(provider)

    # ---- writes ----------------------------------------------------------------------

    async def write_lp(
        self,
        database: str,
        body: bytes | str,
        *,
        precision: str = "auto",
        accept_partial: bool = True,
        no_sync: bool = False,
        from_plugin: bool = False,
    ) -> WriteResult:
        """Validate `body` against the catalog and make its rows durable in the WAL (unless
        `no_sync`). Refused lines raise `LineProtocolError` (nothing stored) or, with
        `accept_partial`, `PartialWrite` after every other line was stored. In a cluster,
        clients write to ingest nodes; a plugin writes where it runs (a process node
        keeps a WAL of its own, which query nodes follow too)."""
        if not (from_plugin and "process" in self.config.modes):
            self._check_mode("ingest", "writes")
        result = await validate_write(self.catalog, database, body, precision=precision,
                                      accept_partial=accept_partial)
        await self._append([WalOp(database, table, batch) for table, batch in result.tables],
                           wait=not no_sync)
        self.metrics.writes.record(database, result.rows, len(result.errors),
                                   _accepted_bytes(body, result.errors))
        raise_refused_lines(result)
        return WriteResult(result.rows, [table for table, _ in result.tables])

    async def _append(self, ops: list[WalOp], *, wait: bool = True,
                      checkpoints: Mapping[TriggerKey, int] | None = None) -> None:
        """Rows (once the buffer has room for them) and WAL triggers' checkpoints into the
        next WAL file; with `wait`, return once it is durable."""
        if ops:
            await self._wait_for_buffer_room()
        if ops or checkpoints:
            await self.wal.append(ops, wait=wait, checkpoints=checkpoints)

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
                raise WriteUnavailable(
                    f"the in-memory buffer is full ({self.buffer.nbytes} bytes, limit "
                    f"{limit} from --buffer-mem-limit) and snapshots have not freed it; "
                    "retry the write later")
            await asyncio.sleep(0.05)

    # ---- flush, snapshot ---------------------------------------------------------

    async def _on_flushed(self, wal: WalFile) -> None:
        self.buffer.apply(wal)
        self.caches.push([(op.db, op.table, op.batch) for op in wal.ops])
        self._note_checkpoints(wal)
        self._files_since_snapshot += 1
        if self._wal_listeners:
            flushed = _flushed(wal)
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
        retrying = self._retry_gen is not None
        gen = self._retry_gen or self.buffer.freeze()
        # the checkpoints recorded in the WAL files this generation holds (every file
        # applied so far: freezing and applying both run on this loop, in order)
        checkpoints = self._retry_checkpoints if retrying else dict(self.trigger_checkpoints)
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
            await asyncio.to_thread(self._publish_snapshot, event, gen, checkpoints)
        except Exception as e:
            delay = min(60.0, 2.0 ** (self._snapshot_attempt - 1))
            log.exception("snapshot failed (attempt %d); the data stays in the WAL and the "
                          "snapshot is retried in %gs", self._snapshot_attempt, delay)
            record.status, record.error = "failed", f"{type(e).__name__}: {e}"
            record.duration_ms = (time.perf_counter() - t0) * 1000
            self.snapshot_history.append(record)
            self._retry_gen, self._retry_checkpoints = gen, checkpoints
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
                self.index.publish(self.store, self.node_id, wal_seq=self.wal.last_seq,
                                   checkpoints=self.trigger_checkpoints)

    def _publish_snapshot(self, event: PersistEvent, gen: Generation,
                          checkpoints: dict[TriggerKey, int]) -> None:
        # One locked step: queries see the rows in the buffer or in the files, never both.
        with self.buffer.lock:
            self.index.publish(self.store, self.node_id, add=event.files, wal_seq=event.seq,
                               checkpoints=checkpoints)
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
        if self.cluster is not None:
            compaction = self.cluster.compaction
            return compaction.run_once(expire=expire) if compaction is not None else 0
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

    # ---- queries ---------------------------------------------------------------------

    def snapshot_for_query(self, database: str) -> DatabaseSnapshot:
        """A consistent view of `database` for one query: each table's Parquet files to
        scan, and its rows in memory merged by last-write-wins where copies of a point
        may sit in more than one place (see persist.read). What each table reads is
        fixed here, in one locked step; reading it (files, merges) waits until the query
        names the table. Call it off the event loop."""
        dbschema = self.catalog.db(database)
        system = self.system_tables(database)
        cutoff = self.retention_cutoff(database)
        views: dict[str, _TableView] = {}
        table_ids: dict[str, int] = {}
        with self.buffer.lock:
            for name, ts in list(dbschema.tables.items()):
                # (the columns as of now: the catalog replaces the dict on a change)
                views[name] = (ts.columns, self.index.for_table(dbschema.id, ts.id),
                               [tb.frozen() for tb in self.buffer.tables(database, name)])
                table_ids[name] = ts.id
        if self.cluster is not None:  # and every other ingest node's, in query mode
            for name, (columns, files, buffered) in views.items():
                more_files, more_rows = self.cluster.view(database, dbschema.id, name,
                                                          table_ids[name])
                views[name] = (columns, files + more_files, buffered + more_rows)
        tables = _TableReads(views, self.reader, cutoff, self._schemas)
        return DatabaseSnapshot(name=database, tables=tables,
                                filesystem=self._query_filesystem(), system_tables=system,
                                table_functions=self.caches.table_functions(
                                    database, dict(dbschema.tables)),
                                most_files=max((len(v[1]) for v in views.values()), default=0),
                                most_buffered_rows=max((sum(tb.rows for tb in v[2])
                                                        for v in views.values()), default=0))

    def _query_filesystem(self) -> pafs.FileSystem:
        """The store as an Arrow filesystem, for the query engine's Parquet reads."""
        fs = self._query_fs
        if fs is None:
            fs = self._query_fs = self.store.arrow_filesystem()
        return fs

    async def query(self, database: str, sql: str, params: QueryParams | None = None
                    ) -> pa.Table:
        self._check_query_mode(database)
        if not self.catalog.db_exists(database):
            raise DatabaseMissingForQuery(database)
        timer = self.metrics.queries.start()

        def run() -> pa.Table:
            finished = self._query_started()
            try:
                table = self.query_engine.execute(self.snapshot_for_query(database), sql,
                                                  dict(params) if params else None,
                                                  on_planned=timer.planned)
            except BaseException:
                timer.finished("fail")
                raise
            finally:
                finished()
            timer.finished("success", table.num_rows)
            return table

        # (the query engine enforces --query-timeout itself, interrupting the query)
        try:
            return await asyncio.to_thread(run)
        except QueryFailed as e:
            await self._raise_if_store_down(e)
            raise

    async def query_stream(self, database: str, sql: str, params: QueryParams | None = None
                           ) -> QueryStream:
        """`query`, with the rows read batch by batch as DataFusion computes them. The
        files the query may read are kept until the stream is closed (read to its end,
        failed, or `close()`d by a reader that stops early)."""
        self._check_query_mode(database)
        if not self.catalog.db_exists(database):
            raise DatabaseMissingForQuery(database)
        timer = self.metrics.queries.start()
        release = self._query_started()

        def plan() -> QueryStream:
            # (a small result is computed here too: `timer.planned` marks the plan's end)
            return self.query_engine.execute_stream(self.snapshot_for_query(database), sql,
                                                    dict(params) if params else None,
                                                    on_planned=timer.planned)

        try:
            stream = await asyncio.to_thread(plan)
        except BaseException as e:
            release()
            timer.finished("fail")
            if isinstance(e, QueryFailed):
                await self._raise_if_store_down(e)
            raise

        def closed() -> None:
            release()
            timer.finished(stream.outcome, stream.rows)

        stream.on_close = closed
        stream.explain_failure = self._store_failure
        return stream

    async def describe_query(self, database: str, sql: str,
                             params: QueryParams | None = None) -> QueryDescription:
        """What `sql` would return, planned over the tables' schemas alone: no rows are
        read, no files opened (see `QueryEngine.describe`)."""
        self._check_query_mode(database)
        if not self.catalog.db_exists(database):
            raise DatabaseMissingForQuery(database)
        with self.buffer.lock:
            tables = dict(self.catalog.db(database).tables)
        snapshot = DatabaseSnapshot(
            name=database,
            tables=_SchemaOnlyTables(tables, self.buffer.lock, self._schemas),
            filesystem=self._query_filesystem(),
            system_tables={name: SystemTable(st.schema, st.schema.empty_table)
                           for name, st in self.system_tables(database).items()},
            # (a cache's rows are in memory: the schema of what it would return)
            table_functions=self.caches.table_functions(database, tables))
        return await asyncio.to_thread(self.query_engine.describe, snapshot, sql,
                                       dict(params) if params is not None else None)

    def _store_failure(self, failure: QueryError) -> ObjectStoreUnavailable | None:
        """`_raise_if_store_down` for a stream's reader thread."""
        if not isinstance(failure, QueryFailed):
            return None
        return _unreadable_files(self._store_problem_now())

    async def _raise_if_store_down(self, failure: QueryFailed) -> None:
        """A query that failed while the object store does not answer failed for that
        reason (its files could not be read): ObjectStoreUnavailable, which clients see as
        503, worth retrying, rather than as an internal error."""
        error = _unreadable_files(await self.store_problem())
        if error is not None:
            raise error from failure

    def _check_mode(self, mode: str, what: str) -> None:
        """A cluster node refuses what its modes leave to other nodes."""
        if self.cluster is not None and mode not in self.config.modes:
            raise NodeModeRefused(
                f"node {self.node_id!r} runs in mode {','.join(sorted(self.config.modes))}: "
                f"{what} go to a node in {mode} mode (system.nodes lists them)")

    def _check_query_mode(self, database: str) -> None:
        # every node answers for its own system tables (system.nodes tells where to go)
        if database != INTERNAL_DB:
            self._check_mode("query", "queries")

    def _query_started(self) -> Callable[[], None]:
        """Record a running query (files it may read are deleted only after it ends);
        returns the call that records its end (once; later calls do nothing)."""
        token = object()
        with self._queries_lock:
            self._queries[token] = time.monotonic()

        def finished() -> None:
            with self._queries_lock:
                self._queries.pop(token, None)

        return finished

    # ---- WAL triggers: checkpoints, catch-up reads, WAL retention ----------------------

    def _note_checkpoints(self, wal: WalFile) -> None:
        for key, seq in wal.checkpoints.items():
            self.trigger_checkpoints[key] = max(seq, self.trigger_checkpoints.get(key, 0))

    @property
    def last_wal_seq(self) -> int:
        return self.wal.last_seq

    def trigger_checkpoint(self, key: TriggerKey) -> int | None:
        """The last WAL file trigger `key` has durably processed; None if it never has."""
        return self.trigger_checkpoints.get(key)

    def first_wal_seq(self) -> int | None:
        """The oldest WAL file still stored (older ones are in Parquet and gone)."""
        return self.wal.first_seq()

    async def read_flushed(self, seq: int) -> FlushedWal | None:
        """WAL file `seq` as its WAL listeners saw it; None if it is gone."""
        wal = await asyncio.to_thread(self.wal.read, seq)
        return None if wal is None else _flushed(wal)

    def note_trigger_progress(self, key: TriggerKey, seq: int) -> None:
        """Trigger `key` has processed every WAL file up to `seq` (not yet durably, if its
        last files held nothing for it): snapshots may delete them."""
        self._wal_readers[key] = max(seq, self._wal_readers.get(key, 0))

    def forget_trigger_progress(self, key: TriggerKey) -> None:
        self._wal_readers.pop(key, None)

    def trigger_lagging(self, key: TriggerKey) -> bool:
        return key in self._lagging

    async def commit_trigger_writes(self, key: TriggerKey, seq: int,
                                    writes: Mapping[str, str]) -> dict[str, WriteError]:
        """A WAL trigger's call for WAL files up to `seq` is done: store its buffered
        writes (database -> line protocol, ns) and its checkpoint in ONE WAL file, so a
        crash keeps both or neither. A database whose lines are refused is reported in
        the result (the others and the checkpoint are still stored)."""
        refused: dict[str, WriteError] = {}
        ops: list[WalOp] = []
        stored: list[tuple[str, int, int]] = []
        for db, body in writes.items():
            try:
                result = await validate_write(self.catalog, db, body, precision="ns",
                                              accept_partial=False)
            except WriteError as e:
                refused[db] = e
                continue
            ops.extend(WalOp(db, table, batch) for table, batch in result.tables)
            stored.append((db, result.rows, _accepted_bytes(body, [])))
        await self._append(ops, checkpoints={key: seq})
        for db, rows, nbytes in stored:
            self.metrics.writes.record(db, rows, 0, nbytes)
        self.note_trigger_progress(key, seq)
        return refused

    # ---- management ------------------------------------------------------------------

    def add_database_deleted_listener(self, cb: DatabaseDeletedListener) -> None:
        self._delete_listeners.append(cb)

    async def delete_database(self, name: str, hard_delete_at_ns: int | None = None) -> None:
        """Soft-delete `name` (its data goes for good at `hard_delete_at_ns`, None: never);
        then tell the listeners (the processing engine stops its triggers)."""
        await asyncio.to_thread(self.catalog.delete_database, name, hard_delete_at_ns,
                                self.wal.last_seq)
        self.buffer.drop(name)
        self.caches.drop_database(name)
        for cb in self._delete_listeners:
            try:
                await cb(name)
            except Exception:
                log.exception("database-deleted listener failed")

    async def delete_table(self, db: str, table: str,
                           hard_delete_at_ns: int | None = None) -> None:
        await asyncio.to_thread(self.catalog.delete_table, db, table, hard_delete_at_ns,
                                self.wal.last_seq)
        self.buffer.drop(db, table)
        self.caches.drop_table(db, table)

    # ---- last-value and distinct-value caches (weir.ports.CacheStore) -----------------

    async def create_last_cache(self, db: str, table: str, *, name: str | None,
                                key_columns: Sequence[str] | None,
                                value_columns: Sequence[str] | None, count: int, ttl_s: int
                                ) -> LastCacheDefinition:
        """Record the cache in the catalog, then fill it from stored data (it takes every
        flushed write from the moment it is recorded; what it is filled with merges in)."""
        definition = await asyncio.to_thread(
            self.catalog.create_last_cache, db, table, name=name, key_columns=key_columns,
            value_columns=value_columns, count=count, ttl_s=ttl_s)
        await self._fill_last_cache(db, self.caches.add_last_cache(db, definition))
        return definition

    async def delete_last_cache(self, db: str, table: str, name: str) -> None:
        await asyncio.to_thread(self.catalog.delete_last_cache, db, table, name)
        self.caches.remove_last_cache(db, table, name)

    async def create_distinct_cache(self, db: str, table: str, columns: Sequence[str], *,
                                    name: str | None, max_cardinality: int, max_age_s: int
                                    ) -> DistinctCacheDefinition:
        definition = await asyncio.to_thread(
            self.catalog.create_distinct_cache, db, table, columns, name=name,
            max_cardinality=max_cardinality, max_age_s=max_age_s)
        await self._fill_distinct_cache(db, self.caches.add_distinct_cache(db, definition))
        return definition

    async def delete_distinct_cache(self, db: str, table: str, name: str) -> None:
        await asyncio.to_thread(self.catalog.delete_distinct_cache, db, table, name)
        self.caches.remove_distinct_cache(db, table, name)

    def cached_tag_values(self, database: str, table: str, tag: str,
                          equal: Mapping[str, str], since_ns: int | None,
                          until_ns: int | None) -> list[str] | None:
        """`tag`'s values from a distinct-value cache (weir.ports.TagValueCache), when one
        answers exactly: it holds `tag` and every `equal` column, never left a combination
        out, and knows every row the question covers, those at or after `since_ns` and the
        retention cutoff, because that bound is within its max_age, or because the table
        holds no row older than its max_age. A cache knows when a combination was last
        seen, not first: `until_ns` must be past the table's newest row."""
        now = time.time_ns()
        bounds = [b for b in (since_ns, self.retention_cutoff(database)) if b is not None]
        lo = max(bounds) if bounds else None
        caches = [c for c in self.caches.distinct_caches(database, table)
                  if tag in c.definition.columns and c.complete and c.definition.max_age_s > 0
                  and all(col in c.definition.columns for col in equal)]
        if not caches:
            return None
        oldest, newest = self._time_range(database, table)
        if until_ns is not None and newest > until_ns:
            return None
        for cache in caches:
            known_after = now - cache.definition.max_age_s * 1_000_000_000
            if (lo is None or lo <= known_after) and oldest <= known_after:
                continue
            return cache.values(tag, equal, lo, now)
        return None

    def _time_range(self, database: str, table: str) -> tuple[int, int]:
        """The times of `table`'s oldest and newest stored rows (buffer or Parquet);
        (int64 max, int64 min) when it has none."""
        dbschema = self.catalog.db(database)
        ts = dbschema.tables.get(table)
        if ts is None:
            return _MAX_NS, -_MAX_NS
        with self.buffer.lock:
            files = self.index.for_table(dbschema.id, ts.id)
            buffered = self.buffer.tables(database, table)
            lows = [f.min_time for f in files] + [b.min_time for b in buffered]
            highs = [f.max_time for f in files] + [b.max_time for b in buffered]
        return min(lows, default=_MAX_NS), max(highs, default=-_MAX_NS)

    async def _start_caches(self) -> None:
        """Every cache the catalog defines, filled from stored data (the buffer, with the
        WAL replayed, and the Parquet files): unlike Core's, Weir's caches come back
        after a restart."""
        started, filled = time.perf_counter(), 0
        for db in self.catalog.databases():
            for ts in list(self.catalog.db(db).tables.values()):
                for lc in ts.last_caches.values():
                    await self._fill_last_cache(db, self.caches.add_last_cache(db, lc))
                    filled += 1
                for dc in ts.distinct_caches.values():
                    await self._fill_distinct_cache(db, self.caches.add_distinct_cache(db, dc))
                    filled += 1
        if filled:
            log.info("filled %d last/distinct value caches from stored data in %.2fs", filled,
                     time.perf_counter() - started)

    async def _fill_last_cache(self, db: str, cache: LastCache) -> None:
        sql = last_cache_refill_sql(cache.definition, time.time_ns())
        await self._fill_cache(db, cache, sql, lambda rows: rows.drop_columns(["__weir_rn"]))

    async def _fill_distinct_cache(self, db: str, cache: DistinctCache) -> None:
        sql = distinct_cache_refill_sql(cache.definition, time.time_ns())
        await self._fill_cache(db, cache, sql, lambda rows: rows)

    async def _fill_cache(self, db: str, cache: LastCache | DistinctCache, sql: str | None,
                          prepare: Callable[[pa.Table], pa.Table]) -> None:
        """Load the stored rows `sql` reads into `cache` (in a worker thread). If they
        cannot be read, the cache still fills from new writes: that is logged, not
        raised (the cache exists in the catalog by now)."""
        if sql is None:
            return

        def run() -> None:
            finished = self._query_started()
            try:
                rows = self.query_engine.execute(self.snapshot_for_query(db), sql)
            finally:
                finished()
            cache.load(prepare(rows), time.time_ns())

        name = cache.definition.name
        try:
            await asyncio.to_thread(run)
            return
        except QueryError as e:
            log.warning("cache %s in %s: could not read stored data to fill it (it fills "
                        "from new writes): %s", name, db, e)
        except Exception:
            log.exception("cache %s in %s: filling it from stored data failed (it fills "
                          "from new writes)", name, db)
        if isinstance(cache, DistinctCache):
            cache.complete = False  # SHOW TAG VALUES must ask the data

    # ---- the processing engine's per-trigger records (weir.ports.TriggerStateStore) ----

    async def load_trigger_state(self, database: str, trigger_name: str) -> bytes | None:
        with contextlib.suppress(FileNotFoundError):
            return await asyncio.to_thread(
                self.store.get, trigger_state_key(self.node_id, database, trigger_name))
        return None

    async def save_trigger_state(self, database: str, trigger_name: str, state: bytes
                                 ) -> None:
        await asyncio.to_thread(
            self.store.put, trigger_state_key(self.node_id, database, trigger_name), state)

    async def delete_trigger_state(self, database: str, trigger_name: str) -> None:
        await asyncio.to_thread(
            self.store.delete, trigger_state_key(self.node_id, database, trigger_name))


def _report_maintenance_end(task: asyncio.Task[None]) -> None:
    """Compaction, retention and hard deletes stop for good if their loop ends: say so
    (nothing awaits the task until shutdown, so its exception would go unseen)."""
    if task.cancelled() or (error := task.exception()) is None:
        return  # (stopped, or never looping: --compaction-interval 0)
    log.critical("the maintenance loop (compaction, retention, hard deletes) ended: %s: %s",
                 type(error).__name__, error, exc_info=error)


def _unreadable_files(store_problem: str | None) -> ObjectStoreUnavailable | None:
    return None if store_problem is None else ObjectStoreUnavailable(
        f"{store_problem}; the query could not read its Parquet files")


def _accepted_bytes(body: bytes | str, refused: list[LineError]) -> int:
    """Bytes of a write's accepted lines, line endings not counted (as the reference
    counts `influxdb3_write_bytes`)."""
    raw = body.encode() if isinstance(body, str) else body
    n = len(raw) - raw.count(b"\n")
    n -= sum(len(e.original_line.encode()) for e in refused)
    return max(0, n)


#: what one table reads in a query: its columns, its files, its buffered rows (frozen)
_TableView = tuple[dict[str, Column], list[PersistedFile], list[TableBuffer]]


class _ArrowSchemas:
    """Tables' Arrow schemas by their catalog columns, made once per version of them.

    Making one (a field per column, sorted) was the largest part of naming a table in a
    query. The catalog never changes a table's columns dict in place (a new column
    replaces the dict, copy-on-write), so the dict's identity is the version: an entry
    keeps its dict, whose id therefore cannot be reused by another while the entry
    lives. Safe from any thread: a race at worst makes the same schema twice."""

    #: more entries than this (tables × their schema changes) and all are dropped
    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._made: dict[int, tuple[dict[str, Column], pa.Schema]] = {}

    def of(self, columns: dict[str, Column]) -> pa.Schema:
        entry = self._made.get(id(columns))
        if entry is not None and entry[0] is columns:
            return entry[1]
        schema = TableSchema(id=0, name="", columns=columns).arrow_schema()
        if len(self._made) >= self.MAX_ENTRIES:
            self._made = {}
        self._made[id(columns)] = (columns, schema)
        return schema


class _TableReads(Mapping[str, TableSnapshot]):
    """A database's tables for one query, each read planned (files listed, rows merged
    where points may repeat) only when the query names it: a query of one table does not
    pay for merging every other table's buffer."""

    def __init__(self, views: dict[str, _TableView], reader: TableReader,
                 cutoff: int | None, schemas: _ArrowSchemas) -> None:
        self._views = views
        self._reader = reader
        self._cutoff = cutoff
        self._schemas = schemas
        self._made: dict[str, TableSnapshot] = {}

    def __getitem__(self, name: str) -> TableSnapshot:
        made = self._made.get(name)
        if made is None:
            columns, files, buffered = self._views[name]
            cutoff = self._cutoff
            if cutoff is not None:
                files = [f for f in files if f.max_time >= cutoff]
            schema = self._schemas.of(columns)
            read = self._reader.plan(files, buffered, schema)
            made = self._made[name] = TableSnapshot(
                name=name, schema=schema, batches=read.rows,
                files=[ParquetFileRef(f.path, f.min_time, f.max_time, f.row_count,
                                      f.size_bytes) for f in read.files],
                min_time=cutoff)
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)


class _SchemaOnlyTables(Mapping[str, TableSnapshot]):
    """A database's tables as `describe_query` plans them: schemas alone (no rows, no
    files), each made only when the planner asks for it, so describing one table's query
    does not build every table's schema (FlightSQL's GetTables describes each table)."""

    def __init__(self, tables: dict[str, TableSchema], lock: threading.RLock,
                 schemas: _ArrowSchemas) -> None:
        self._tables = tables
        self._lock = lock  # (held, as snapshot_for_query does, while the columns are read)
        self._schemas = schemas
        self._made: dict[str, TableSnapshot] = {}

    def __getitem__(self, name: str) -> TableSnapshot:
        made = self._made.get(name)
        if made is None:
            with self._lock:
                columns = self._tables[name].columns
            made = self._made[name] = TableSnapshot(name=name,
                                                    schema=self._schemas.of(columns))
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)


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


def _implements_storage(db: Database) -> Storage:
    """(For the type checker: Database implements every storage port.)"""
    return db


def _flushed(wal: WalFile) -> FlushedWal:
    flushed = FlushedWal(seq=wal.seq, written_ns=wal.written_ns)
    for op in wal.ops:
        flushed.writes.setdefault(op.db, []).append((op.table, op.batch))
    return flushed


def _is_wal_trigger(spec: str) -> bool:
    return spec.startswith("table:") or spec == "all_tables"
