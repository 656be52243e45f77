"""WAL triggers (`table:<t>`, `all_tables`): each flushed WAL file once, in order, from
the trigger's checkpoint on; several files merged into one call when it lags; a call's
buffered writes and its checkpoint stored together (see `WalTriggerRunner`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from weir.engine.services import describe_write_error
from weir.engine.triggers import (
    TriggerRunner,
    Writes,
)
from weir.engine.worker.protocol import table_to_ipc
from weir.errors import WeirError
from weir.ports import FlushedWal

log = logging.getLogger("weir.engine")

#: queue lengths at which a lagging trigger is warned about in its log
_BACKLOG_WARNINGS = (1_000, 10_000, 100_000)
#: WAL files a WAL trigger remembers ahead of its cursor (past them it reads the WAL)
_KNOWN_FILES = 100_000
#: WAL files one pass of `WalTriggerRunner._gather` looks at (files without rows for the
#: trigger are cheap, but a restart may have many to go through)
_GATHER_VISITS = 4_096
#: files with data a WAL trigger passes without a call before its checkpoint is stored
#: anyway (so a restart re-reads few files it had nothing in)
_DURABLE_EVERY = 16
#: a call's Arrow payload is built in a helper thread past this many rows
_THREAD_ROWS = 50_000


def wal_call(items: Sequence[tuple[str, pa.RecordBatch]]) -> tuple[dict[str, Any], bytes]:
    """A WAL call's header and payload: one Arrow IPC stream per table, the batches of a
    table (several WAL files merged into one call) concatenated, columns added since the
    first one filled with nulls. Arrow all the way: no per-row work here."""
    by_table: dict[str, list[pa.RecordBatch]] = {}
    for table, batch in items:
        by_table.setdefault(table, []).append(batch)
    segments: list[tuple[str, bytes]] = []
    for table, batches in by_table.items():
        if len(batches) == 1:
            segments.append((table, table_to_ipc(batches[0])))
            continue
        try:
            merged = pa.concat_tables([pa.Table.from_batches([b]) for b in batches],
                                      promote_options="default")
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # (the catalog keeps a column's type, so this is not expected): one stream
            # per batch, which the worker joins into the table's one list of rows
            segments.extend((table, table_to_ipc(b)) for b in batches)
            continue
        segments.append((table, table_to_ipc(merged)))
    header = {"kind": "wal", "tables": [{"name": n, "size": len(b)} for n, b in segments]}
    return header, b"".join(b for _, b in segments)


@dataclass
class _WalFile:
    """A flushed WAL file as one WAL trigger sees it."""

    seq: int
    written_ns: int
    rows: int  # rows for this trigger
    #: its rows for this trigger, or None when not kept in memory (read back when due)
    items: list[tuple[str, pa.RecordBatch]] | None
    data: bool  # the file holds writes (of any database), not only checkpoints


@dataclass
class _WalCall:
    """WAL files `first`..`last` handled as one: one plugin call (or none, when they hold
    nothing for the trigger)."""

    first: int
    last: int
    items: list[tuple[str, pa.RecordBatch]]
    rows: int
    oldest_ns: int | None  # when its oldest file (not gone) was written
    gone: int  # files deleted before the trigger read them
    data_files: int
    done: bool = False


class WalTriggerRunner(TriggerRunner):
    """`table:<t>` / `all_tables`: every flushed WAL file once, in order, from the
    trigger's checkpoint on.

    The WAL is the queue. The runner keeps a cursor (`_next`, the next WAL file to read)
    and a checkpoint (`_done`: every file up to it is handled). The WAL listener tells it
    of each flush (`enqueue`) and keeps the trigger's rows in memory, up to a bound;
    files it was not told of (after a restart, an enable, or past that bound) are read
    back from the WAL (`read_flushed`). A file that is gone (snapshots deleted it while
    the trigger lagged more than `--trigger-max-wal-lag` files) is counted, and logged
    once per range. Files with nothing for the trigger get no call.

    When files are waiting, up to `options.wal_merge_files` of them (or
    `options.wal_merge_rows` rows) go to the plugin as ONE call, one batch per table. A
    call's buffered writes are stored with the checkpoint of the last file it covered in
    one WAL file (`WriteService.commit_trigger_call`): after a crash neither or both are
    there, so a plugin using buffered writes sees each batch's effect once. `retry` keeps
    the checkpoint before a failing call until it succeeds or the bound is reached;
    `log` skips it (the checkpoint moves past it); `disable` keeps it there, so enabling
    the trigger again delivers the failed batch first. With `run_async` calls overlap
    and the checkpoint moves over the contiguous prefix of finished calls, so a crash
    can deliver a finished call again: at least once.
    """

    def __init__(self, *args: Any, fresh: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: a trigger just created: it starts at the newest WAL file, whatever an older
        #: trigger of the same name left behind
        self.fresh = fresh
        self.wal_log = self.host.wal_log
        opts = self.host.options
        self._merge_files = max(1, opts.wal_merge_files)
        self._merge_rows = max(1, opts.wal_merge_rows)
        self._memory_files = max(1, opts.wal_memory_files)
        self._memory_rows = max(1, opts.wal_memory_rows)
        self._next = 0  # the next WAL file to read
        self._done = 0  # every WAL file up to this one is handled (the checkpoint)
        self._durable = 0  # the checkpoint last stored in the WAL
        self._passed = 0  # files with data handled without a call since `_durable`
        self._files: dict[int, _WalFile] = {}  # told of by the listener, not yet read
        self._known_rows = 0
        self._kept_files = 0  # of `_files`, those whose rows are held in memory
        self._kept_rows = 0
        self._open: deque[_WalCall] = deque()  # read, not yet finished, in WAL order
        self._wakeup = asyncio.Event()
        self._warned = 0
        self.skipped_files = 0  # WAL files gone before the trigger read them

    @property
    def checkpoint(self) -> int:
        """The last WAL file this trigger has handled, with every one before it."""
        return self._done

    async def start(self) -> None:
        """Read the checkpoint (a new trigger stores one at the newest WAL file first),
        start the worker, then deliver from the checkpoint on."""
        last = self.wal_log.last_wal_seq
        checkpoint = None if self.fresh else self.wal_log.trigger_checkpoint(self.key)
        if checkpoint is None:
            await self.host.writes.commit_trigger_call(self.key, last, {})
            checkpoint = last
        elif checkpoint < last:
            n = last - checkpoint
            self.log("INFO", f"resuming after WAL file {checkpoint}: {n} WAL "
                             f"file{'s' if n != 1 else ''} to catch up")
        self._done = self._durable = checkpoint
        self._next = checkpoint + 1
        self.wal_log.note_trigger_progress(self.key, checkpoint)
        await super().start()

    def poke(self) -> None:
        """Look at the WAL again (files may have been flushed before the listener knew
        this runner)."""
        self._wakeup.set()

    def _wake(self) -> None:
        self._wakeup.set()

    # ---- what the WAL listener says -----------------------------------------------------

    def enqueue(self, flushed: FlushedWal) -> None:
        """WAL file `flushed` is durable: note its rows for this trigger (kept in memory
        up to a bound; beyond it they are read back from the WAL when due)."""
        if self._stopping or flushed.seq < self._next or len(self._files) >= _KNOWN_FILES:
            return
        table = self.spec.table
        items = [(t, b) for t, b in flushed.writes.get(self.db, ())
                 if (table is None or t == table) and b.num_rows]
        rows = sum(b.num_rows for _, b in items)
        keep = not rows or (self._kept_files < self._memory_files
                            and self._kept_rows + rows <= self._memory_rows)
        if keep and rows:
            self._kept_files += 1
            self._kept_rows += rows
        self._drop(flushed.seq)
        self._files[flushed.seq] = _WalFile(flushed.seq, flushed.written_ns, rows,
                                            items if keep else None, bool(flushed.writes))
        self._known_rows += rows
        self._wakeup.set()
        lag = flushed.seq - self._done
        if self._warned < len(_BACKLOG_WARNINGS) and lag >= _BACKLOG_WARNINGS[self._warned]:
            self._warned += 1
            self.log("WARN", f"{lag} WAL files are waiting for this trigger; its plugin is "
                             "slower than the writes")

    def _drop(self, seq: int) -> _WalFile | None:
        f = self._files.pop(seq, None)
        if f is not None:
            self._known_rows -= f.rows
            if f.items is not None and f.rows:
                self._kept_files -= 1
                self._kept_rows -= f.rows
        return f

    # ---- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            if self._next > self.wal_log.last_wal_seq:
                self._wakeup.clear()
                if self._next > self.wal_log.last_wal_seq:
                    if self._warned and not self._open:
                        self._warned = 0
                    await self._wakeup.wait()
                continue
            first = self._next
            try:
                call = await self._gather()
            # reading the WAL failed (the object store): read those files again in a while
            except Exception as e:  # noqa: BLE001 - logged; the trigger goes on
                self._next = first
                self.log("ERROR", f"cannot read WAL files from {first} on: {e}; trying again")
                if await self._sleep(1.0):
                    return
                continue
            if call is None:  # stopping
                return
            self._open.append(call)
            if not call.rows:
                await self._finish(call, None)
            elif self.defn.run_async:
                await self._spawn(self._deliver(call))
            else:
                await self._deliver(call)

    async def _gather(self) -> _WalCall | None:
        """The next call: the WAL files from `_next` on, while they are flushed and
        within the merge bounds. None if the trigger stops meanwhile."""
        last = self.wal_log.last_wal_seq
        first = seq = self._next
        items: list[tuple[str, pa.RecordBatch]] = []
        rows = files = gone = data_files = visited = 0
        oldest: int | None = None
        gone_from: int | None = None
        stored_from: int | None = None  # the oldest stored WAL file, once one was missing
        looked = False
        while (seq <= last and files < self._merge_files and rows < self._merge_rows
               and visited < _GATHER_VISITS):
            if self._stopping:
                return None
            visited += 1
            f = self._drop(seq)
            if f is None or f.items is None:
                flushed = None
                if not looked or (stored_from is not None and seq >= stored_from):
                    flushed = await self.wal_log.read_flushed(seq)
                    self._drop(seq)  # told of it while reading: the read is as good
                if flushed is None:
                    if not looked:
                        looked, stored_from = True, self.wal_log.first_wal_seq()
                    gone += 1
                    gone_from = seq if gone_from is None else gone_from
                    seq += 1
                    self._next = seq
                    continue
                f = self._wal_file(flushed)
            if gone_from is not None:
                self._skipped(gone_from, seq - 1)
                gone_from = None
            if f.rows:
                assert f.items is not None
                items.extend(f.items)
                rows += f.rows
                files += 1
            oldest = f.written_ns if oldest is None else oldest
            data_files += f.data
            seq += 1
            self._next = seq
        if gone_from is not None:
            self._skipped(gone_from, seq - 1)
        return _WalCall(first, seq - 1, items, rows, oldest, gone, data_files)

    def _wal_file(self, flushed: FlushedWal) -> _WalFile:
        table = self.spec.table
        items = [(t, b) for t, b in flushed.writes.get(self.db, ())
                 if (table is None or t == table) and b.num_rows]
        return _WalFile(flushed.seq, flushed.written_ns, sum(b.num_rows for _, b in items),
                        items, bool(flushed.writes))

    def _skipped(self, first: int, last: int) -> None:
        n = last - first + 1
        self.skipped_files += n
        where = f"WAL file {first}" if n == 1 else f"WAL files {first} to {last}"
        self.log("ERROR", f"skipped {n} WAL file{'s' if n != 1 else ''} ({where}): deleted "
                          "before this trigger processed them (it was more than "
                          "--trigger-max-wal-lag files behind, or disabled)")

    async def _deliver(self, call: _WalCall) -> None:
        """One call under `error_behavior`; the checkpoint moves past it when it
        succeeded or was given up on, not when the trigger is disabled or stops."""
        if call.rows > _THREAD_ROWS:
            header, payload = await asyncio.to_thread(wal_call, call.items)
        else:
            header, payload = wal_call(call.items)
        call.items = []  # (the batches are in the payload now)

        async def commit(writes: Writes) -> None:
            await self._finish(call, writes)

        handled = await self.run_with_policy(header, payload, "starting execution of wal "
                                                               "plugin.", commit)
        if handled == "skipped":
            try:
                await self._finish(call, {})
            except WeirError as e:  # the WAL refuses: the skip is not durable, only noted
                log.warning("trigger %s: cannot store its checkpoint: %s", self.name, e)
                await self._finish(call, None)

    async def _finish(self, call: _WalCall, writes: Writes | None) -> None:
        """`call` is handled. `writes` (a call that ran, or was given up on: {}) are
        stored with the checkpoint in one WAL file; None (no call was needed) only notes
        the progress, made durable now and then (and when files were skipped)."""
        upto = self._done
        for c in self._open:  # the checkpoint once `call` is done: the finished prefix
            if not (c is call or c.done):
                break
            upto = c.last
        if writes is not None:
            body = {db: "\n".join(lines) for db, lines in writes.items() if lines}
            refused = await self.host.writes.commit_trigger_call(self.key, upto, body)
            if upto > self._durable:
                self._durable, self._passed = upto, 0
            for db, e in refused.items():
                self.log("ERROR", f"error running {self.context}: error writing back lines to "
                                  f"{db}: {describe_write_error(e)}")
        else:
            self._passed += call.data_files
        call.done = True
        while self._open and self._open[0].done:
            self._done = self._open.popleft().last
        self.wal_log.note_trigger_progress(self.key, self._done)
        if writes is None and (call.gone or self._passed >= _DURABLE_EVERY):
            await self._store_progress()

    async def _store_progress(self) -> None:
        """Store the checkpoint if it moved since last stored (no writes with it)."""
        upto = self._done
        if upto <= self._durable:
            return
        try:
            await self.host.writes.commit_trigger_call(self.key, upto, {})
        except WeirError as e:
            log.warning("trigger %s: cannot store its checkpoint: %s", self.name, e)
            return
        if upto > self._durable:
            self._durable, self._passed = upto, 0

    async def stop(self, reason: str = "the trigger was stopped", timeout: float | None = None
                   ) -> None:
        """Stop (see `TriggerRunner.stop`), then store how far the trigger got."""
        await super().stop(reason, timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._store_progress(), 5.0)

    # ---- what the triggers table and /metrics show ---------------------------------------

    def lag(self) -> WalLag:
        """How far behind the WAL the trigger is."""
        last = self.wal_log.last_wal_seq
        files = max(0, last - self._done)
        rows = self._known_rows + sum(c.rows for c in self._open if not c.done)
        oldest = [c.oldest_ns for c in self._open if not c.done and c.oldest_ns is not None]
        if self._files:
            oldest.append(next(iter(self._files.values())).written_ns)
        seconds: float | None = None
        if not files:
            seconds = 0.0
        elif oldest:
            seconds = max(0.0, (time.time_ns() - min(oldest)) / 1e9)
        return WalLag(checkpoint=self._done, durable=self._durable, files=files, rows=rows,
                      seconds=seconds, lagging=self.wal_log.trigger_lagging(self.key),
                      skipped_files=self.skipped_files)


@dataclass(frozen=True)
class WalLag:
    """A running WAL trigger's position: its checkpoint (in memory, and as stored),
    WAL files and rows waiting (rows of files it was told of or has read), the age in
    seconds of the oldest waiting file with rows (None: not known yet), whether storage
    marked it lagging (past --trigger-max-wal-lag), files it skipped."""

    checkpoint: int
    durable: int
    files: int
    rows: int
    seconds: float | None
    lagging: bool
    skipped_files: int
