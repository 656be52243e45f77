"""Query time limits: one watchdog thread interrupts each query thread past its limit."""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from weir.errors import QueryTimeout
from weir.query.errors import Interrupted

__all__ = ["timeout_error", "with_time_limit"]

_T = TypeVar("_T")


def timeout_error(limit: float | None) -> QueryTimeout:
    if limit is None:
        return QueryTimeout("query exceeded its time limit")
    return QueryTimeout(f"query exceeded the time limit of {limit:g}s")


def with_time_limit(work: Callable[[], _T], limit: float,
                     on_timeout: Callable[[], None] | None = None,
                     reported: float | None = None) -> _T:
    """`work()` in this thread; past `limit` seconds, interrupt it and raise 408.

    The interruption is an exception raised in this thread by the one watchdog thread
    (`_WATCHDOG`): DataFusion's bindings run a little Python every second while they wait
    for a result, which delivers it, and the query's future (and with it the DataFusion
    stream) is dropped, cancelling the work. The work runs here rather than in a thread
    of its own because starting and joining a thread per query cost more than the rest of
    a small query (about a millisecond, twice for a streamed one). The catch: work that
    never runs Python again cannot be abandoned, it is waited for.
    """
    watch = _WATCHDOG.watch(threading.get_ident(), time.monotonic() + limit)
    interrupted = completed = False
    result: _T | None = None
    try:
        try:
            result = work()
            completed = True
        except Interrupted:
            interrupted = True
        finally:
            sent = _WATCHDOG.finish(watch)
        if sent and not interrupted:
            # the interruption was sent just as the work ended and is still pending:
            # take it here, not somewhere in the caller's code (clearing it instead, with
            # PyThreadState_SetAsyncExc(id, NULL), made the thread hang under coverage)
            while True:
                time.sleep(0.001)
    except Interrupted:
        interrupted = not completed
    if interrupted:
        if on_timeout is not None:
            on_timeout()
        raise timeout_error(reported if reported is not None else limit)
    return result  # type: ignore[return-value]  # (completed: work() returned it)


@dataclass(eq=False)
class _Watch:
    """One running time limit: the thread to interrupt, and whether that happened."""

    thread: int
    running: bool = True
    sent: bool = False


class _Watchdog:
    """Interrupts the queries past their time limits, from one thread for all of them.

    Watches wait in a heap by deadline; a finished one stays there until its deadline
    comes or the heap is mostly finished watches (then it is rebuilt), so finishing costs
    one lock and no search. The thread sleeps until the earliest deadline and is woken
    only by a watch due before that. The thread starts with the first watch.

    Only C-level locks here (`threading.Lock`, not `Condition`, whose `__enter__` is
    Python): an interruption that arrives between a Python-level acquire and the start of
    its `with` block would leave the lock held for good.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: released to wake the thread early (a new watch due before its planned wake-up)
        self._wake = threading.Lock()
        self._wake.acquire()
        self._wake_at = float("inf")
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = 0
        self._kept = 0  # the heap's size when last rebuilt
        self._thread: threading.Thread | None = None

    def watch(self, thread: int, deadline: float) -> _Watch:
        w = _Watch(thread)
        with self._lock:
            if len(self._heap) > 2 * self._kept + 64:
                self._heap = [e for e in self._heap if e[2].running]
                heapq.heapify(self._heap)
                self._kept = len(self._heap)
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, w))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="weir-query-limits",
                                                daemon=True)
                self._thread.start()
            wake = deadline < self._wake_at
            if wake:
                self._wake_at = deadline
        if wake:
            with contextlib.suppress(RuntimeError):  # (woken already, not yet awake)
                self._wake.release()
        return w

    def finish(self, w: _Watch) -> bool:
        """The watched work ended: no interruption from now on. True if one was sent."""
        with self._lock:
            w.running = False
            return w.sent

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                heap = self._heap
                while heap and (heap[0][0] <= now or not heap[0][2].running):
                    w = heapq.heappop(heap)[2]
                    if w.running:
                        w.sent = True
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(w.thread), ctypes.py_object(Interrupted))
                self._kept = min(self._kept, len(heap))
                self._wake_at = heap[0][0] if heap else float("inf")
                sleep = min(self._wake_at - now, 3600.0)
            self._wake.acquire(timeout=sleep)


_WATCHDOG = _Watchdog()
