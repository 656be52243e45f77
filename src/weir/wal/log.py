"""The write-ahead log: group commit of writes into durable WAL files.

Writers append ops and (unless `no_sync`) wait. One flusher task takes everything
pending, writes it as the next WAL file (fsync, put-if-absent), hands the file to
`on_flushed` (which makes it queryable and tells listeners), then wakes the writers.
The next file starts as soon as the previous one is durable, so a write waits for
at most one fsync in progress plus its own, never for a timer tick; under load many
writes share one file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping

import pyarrow as pa

from weir.errors import ObjectStoreUnavailable, WalFailure, WriteUnavailable
from weir.objectstore import ObjectStore
from weir.wal.format import (
    TriggerKey,
    WalCorrupt,
    WalFile,
    WalOp,
    decode,
    encode,
    seq_from_path,
    wal_path,
)

log = logging.getLogger("weir.wal")


def merge_ops(ops: list[WalOp]) -> list[WalOp]:
    """One op per (db, table), rows in arrival order; schemas unified (missing -> null)."""
    groups: dict[tuple[str, str], list[pa.RecordBatch]] = {}
    for op in ops:
        groups.setdefault((op.db, op.table), []).append(op.batch)
    merged = []
    for (db, table), batches in groups.items():
        if len(batches) == 1:
            merged.append(WalOp(db, table, batches[0]))
            continue
        t = pa.concat_tables(
            [pa.Table.from_batches([b]) for b in batches], promote_options="default"
        ).combine_chunks()
        merged.append(WalOp(db, table, t.to_batches()[0] if t.num_rows else batches[0]))
    return merged


class Wal:
    def __init__(
        self,
        store: ObjectStore,
        node_id: str,
        *,
        on_flushed: Callable[[WalFile], Awaitable[None]],
        flush_interval: float = 1.0,
        max_buffer_ops: int = 100_000,
    ) -> None:
        self.store = store
        self.node_id = node_id
        self.on_flushed = on_flushed
        self.flush_interval = flush_interval
        self.max_buffer_ops = max_buffer_ops
        self.last_seq = 0
        self._pending: list[WalOp] = []
        self._pending_checkpoints: dict[TriggerKey, int] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._failed: str | None = None
        #: a WAL file whose put failed without an answer (the store went away): it may
        #: have been stored all the same, and is looked for before the next file
        self._unsure_seq: int | None = None

    # ---- start-up ------------------------------------------------------------------

    def wal_files(self) -> list[tuple[int, str]]:
        out = []
        for p in self.store.list(f"{self.node_id}/wal/"):
            seq = seq_from_path(p)
            if seq is not None:
                out.append((seq, p))
        out.sort()
        return out

    def replay(self, after_seq: int, fail_on_error: bool = False) -> Iterator[WalFile]:
        """Yield WAL files with seq > after_seq in order; sets last_seq to the newest seen."""
        for seq, path in self.wal_files():
            self.last_seq = max(self.last_seq, seq)
            if seq <= after_seq:
                continue
            try:
                yield decode(self.store.get(path))
            except (WalCorrupt, FileNotFoundError) as e:
                if fail_on_error:
                    raise
                log.error("skipping WAL file %s during replay: %s", path, e)
        self.last_seq = max(self.last_seq, after_seq)

    def read(self, seq: int) -> WalFile | None:
        """WAL file `seq` as stored, or None if it is gone (deleted after a snapshot) or
        unreadable (logged). For readers that trail the flusher (WAL triggers)."""
        path = wal_path(self.node_id, seq)
        try:
            return decode(self.store.get(path))
        except FileNotFoundError:
            return None
        except WalCorrupt as e:
            log.error("cannot read WAL file %s: %s", path, e)
            return None

    def first_seq(self) -> int | None:
        """The oldest WAL file still stored."""
        files = self.wal_files()
        return files[0][0] if files else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._flusher(), name="wal-flusher")

    async def stop(self) -> None:
        """Flush whatever is pending, then stop the flusher."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    # ---- writing ---------------------------------------------------------------------

    async def append(self, ops: list[WalOp], wait: bool = True,
                     checkpoints: Mapping[TriggerKey, int] | None = None) -> None:
        """Queue `ops` for the next flush; with `wait`, return once they are durable.
        `checkpoints` (WAL triggers' progress) go into the same WAL file as `ops`."""
        if self._failed:
            raise WalFailure(self._failed)
        if self._stopping:
            raise WriteUnavailable("server is shutting down")
        if len(self._pending) + len(ops) > self.max_buffer_ops:
            raise WriteUnavailable(f"wal buffer full with {len(self._pending)} ops")
        self._pending.extend(ops)
        if checkpoints:
            for key, seq in checkpoints.items():
                self._pending_checkpoints[key] = max(seq, self._pending_checkpoints.get(key, 0))
        fut: asyncio.Future[None] | None = None
        if wait:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
        self._wake.set()
        if fut is not None:
            await fut

    async def _flusher(self) -> None:
        while True:
            if not self._pending and not self._pending_checkpoints:
                if self._stopping:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.flush_interval)
                continue
            ops, waiters, checkpoints = self._pending, self._waiters, self._pending_checkpoints
            self._pending, self._waiters, self._pending_checkpoints = [], [], {}
            try:
                await self._flush(ops, checkpoints)
            except Exception as e:  # the write never became durable: tell every waiter
                log.exception("WAL flush failed")
                err: WalFailure | WriteUnavailable = WalFailure(
                    f"failed to persist the write-ahead log: {e}")
                if isinstance(e, ObjectStoreUnavailable):
                    # nothing acknowledged; the client may retry once the store is back
                    err = WriteUnavailable(f"the write-ahead log could not be stored: {e}")
                for w in waiters:
                    if not w.done():
                        w.set_exception(err)
                continue
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    async def _flush(self, ops: list[WalOp], checkpoints: dict[TriggerKey, int]) -> None:
        if self._unsure_seq == self.last_seq + 1:
            await self._settle_unsure(self._unsure_seq)
        seq = self.last_seq + 1
        wal = WalFile(seq=seq, ops=merge_ops(ops), written_ns=time.time_ns(),
                      checkpoints=checkpoints)
        data = await asyncio.to_thread(encode, wal)
        try:
            ok = await asyncio.to_thread(self.store.put_if_absent, wal_path(self.node_id, seq),
                                         data)
        except ObjectStoreUnavailable:
            self._unsure_seq = seq
            raise
        if not ok:
            self._failed = (
                "another process has written to the WAL ahead of this one: "
                f"{wal_path(self.node_id, seq)} exists (is another server using node id "
                f"{self.node_id!r}?)"
            )
            raise RuntimeError(self._failed)
        self.last_seq = seq
        await self.on_flushed(wal)

    async def _settle_unsure(self, seq: int) -> None:
        """A put of WAL file `seq` failed without an answer. If the store has it after
        all, its rows were durable though their writers were told otherwise: take it as
        flushed (queryable now, as after a restart) and go on after it. Otherwise reuse
        the number. (A failure here leaves it unsure for the next flush.)"""
        try:
            data = await asyncio.to_thread(self.store.get, wal_path(self.node_id, seq))
        except FileNotFoundError:
            self._unsure_seq = None
            return
        wal = decode(data)
        log.warning("WAL file %d was stored although its put failed; its writes are kept",
                    seq)
        self._unsure_seq = None
        self.last_seq = seq
        await self.on_flushed(wal)

    def delete_upto(self, seq: int) -> int:
        n = 0
        for s, path in self.wal_files():
            if s <= seq:
                self.store.delete(path)
                n += 1
        return n
