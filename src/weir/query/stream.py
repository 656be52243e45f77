"""A planned query's result, read a record batch at a time under the query's time limit."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal, NoReturn

import pyarrow as pa

from weir.errors import QueryError, QueryTimeout
from weir.query.errors import Interrupted, SqlQueryError, reraise_interpreter_exit, sql_error
from weir.query.information_schema import legacy_column
from weir.query.time_limit import timeout_error, with_time_limit

__all__ = ["QueryStream"]


class QueryStream:
    """A planned query's result: `schema`, then its record batches as they are computed.

    Iterate it once (or call `read_all`). Execution errors raise `SqlQueryError`; past the
    engine's time limit the next batch raises `QueryTimeout` (a batch still being
    computed is interrupted as in `QueryEngine.execute`).
    """

    def __init__(self, schema: pa.Schema, stream: Any, deadline: float | None,
                 legacy_types: bool = False, limit: float | None = None) -> None:
        self.schema = schema
        self._stream: Any = stream
        self._deadline = deadline
        self._legacy = legacy_types
        self._limit = limit
        #: called once when the stream is closed (read to its end, failed or dropped)
        self.on_close: Callable[[], None] | None = None
        #: the engine's own `on_close` (its session goes back to the pool)
        self.on_end: Callable[[], None] | None = None
        #: given an execution error, the error that explains it better, if any (the
        #: storage side's: its object store does not answer)
        self.explain_failure: Callable[[SqlQueryError], BaseException | None] | None = None
        #: rows read so far
        self.rows = 0
        self._ended: Literal["success", "fail"] | None = None
        #: batches computed before they were asked for (`_prefetch`), next to be read
        self._ready: collections.deque[pa.RecordBatch] = collections.deque()
        #: DataFusion's stream has ended: every batch left is in `_ready`
        self._exhausted = False
        #: what went wrong computing ahead, for the read after the `_ready` batches
        self._deferred: BaseException | None = None

    @property
    def computed(self) -> bool:
        """Every batch of the result is in memory, and no error is: reading it runs no
        query work, so it may be read on any thread (the event loop's)."""
        return self._exhausted

    @property
    def computed_rows(self) -> int:
        """The rows of the batches in memory not yet read."""
        return sum(b.num_rows for b in self._ready)

    @property
    def computed_bytes(self) -> int:
        """The size of the batches in memory not yet read."""
        return sum(b.nbytes for b in self._ready)

    @property
    def outcome(self) -> Literal["success", "fail", "cancel"]:
        """How reading ended: read to its end, failed (an error, the time limit), or
        stopped by its reader (so far)."""
        return self._ended or "cancel"

    def _fail(self) -> None:
        self._ended = self._ended or "fail"
        self.close()

    def _prefetch(self, max_rows: int) -> None:
        """Compute batches ahead of the reader, in the planning thread, until the end or
        `max_rows` rows, within what is left of the time limit. An error (the time limit
        included) is kept for the read that reaches it."""
        if self._deadline is None:
            self._read_ahead(max_rows)
            return
        left = self._deadline - time.monotonic()
        if left <= 0:
            return  # (the first read reports the time limit)
        try:
            with_time_limit(lambda: self._read_ahead(max_rows), left, reported=self._limit)
        except QueryTimeout as e:
            self._deferred = e

    def _read_ahead(self, max_rows: int) -> None:
        rows = 0
        try:
            while rows < max_rows:
                batch = self._compute()
                if batch is None:
                    self._exhausted = True
                    self._stream = None  # (DataFusion's stream is done: let it go now)
                    return
                self._ready.append(batch)
                rows += batch.num_rows
        except Interrupted:
            raise
        except BaseException as e:  # noqa: BLE001 - pyo3 panics derive from BaseException
            reraise_interpreter_exit(e)
            self._deferred = e

    def _next(self) -> pa.RecordBatch | None:
        try:
            batch: pa.RecordBatch | None = self._ready.popleft()
        except IndexError:  # (not `if self._ready`: `close` may empty it meanwhile)
            deferred, self._deferred = self._deferred, None
            if deferred is not None:
                self._raise_failure(deferred)
            if self._stream is None and not self._exhausted:
                return None  # closed
            try:
                batch = None if self._exhausted else self._compute()
            except Interrupted:
                self._fail()
                raise
            except BaseException as e:  # noqa: BLE001 - pyo3 panics derive from BaseException
                reraise_interpreter_exit(e)
                self._raise_failure(e)
        if batch is None:
            self._ended = self._ended or "success"
            self.close()
            return None
        self.rows += batch.num_rows
        return batch

    def _compute(self) -> pa.RecordBatch | None:
        """DataFusion's next batch, converted; None at its end. Errors raise as they
        come from DataFusion (see `_raise_failure`)."""
        batch = next(self._stream, None)
        if batch is None:
            return None
        out = batch.to_pyarrow()
        if self._legacy:
            out = pa.RecordBatch.from_pylist(
                legacy_column(pa.Table.from_batches([out]), "data_type").to_pylist(),
                schema=out.schema)
        return out

    def _raise_failure(self, e: BaseException) -> NoReturn:
        """Close the stream as failed and raise `e` as the query's error."""
        self._fail()
        if isinstance(e, QueryError):  # (the time limit, met while computing ahead)
            raise e
        err = sql_error(str(e), "execution")
        better = self.explain_failure(err) if self.explain_failure is not None else None
        if better is not None:
            raise better from err
        raise err from None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        while True:
            if self._deadline is None or self._ready or self._exhausted:
                # (a batch already computed: no query work, no time limit, any thread)
                batch = self._next()
            else:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    self._fail()
                    raise timeout_error(self._limit)
                batch = with_time_limit(self._next, left, on_timeout=self._fail,
                                        reported=self._limit)
            if batch is None:
                return
            yield batch

    def read_all(self) -> pa.Table:
        batches = list(self)
        if not batches:
            return self.schema.empty_table()
        try:
            return pa.Table.from_batches(batches, schema=self.schema)
        except (pa.ArrowInvalid, ValueError):
            return pa.Table.from_batches(batches)

    def close(self) -> None:
        """Stop the query (DataFusion cancels its work when the stream is dropped)."""
        self._stream = None
        self._ready.clear()
        self._exhausted = False
        self._deferred = None
        ended, self.on_end = self.on_end, None
        if ended is not None:
            ended()
        done, self.on_close = self.on_close, None
        if done is not None:
            done()
