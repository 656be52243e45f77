"""Requests to a cloud store that are taking long, said in the log while they wait.

obstore retries a failed request (a 5xx, a dropped connection, a timeout) by itself, with
growing pauses, for up to `--object-store-retry-timeout` (3 minutes by default), and says
nothing meanwhile. A snapshot, a compaction or a write waiting on such a request would look
hung. A `SlowRequestWatch` names each request that has waited `warn_after_s` (the
operation, the key, the store, how long), once, and says again when it ends, so an
operator (or a failing test) sees which request held things up and for how long.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger("weir.objectstore")


@dataclass
class _Waiting:
    op: str
    path: str
    started: float
    warned: bool = False


class SlowRequestWatch:
    """Watches the requests in flight to one store from one daemon thread, started with
    the first request (a request costs a dict insert and delete, not a timer)."""

    def __init__(self, url: str, warn_after_s: float) -> None:
        self.url = url
        self.warn_after_s = warn_after_s
        self._waiting: dict[int, _Waiting] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        #: requests warned about so far
        self.slow_requests = 0

    @contextmanager
    def request(self, op: str, path: str) -> Iterator[None]:
        if self.warn_after_s <= 0:  # watching is off
            yield
            return
        key = next(self._ids)
        waiting = _Waiting(op, path, time.monotonic())
        with self._lock:
            self._waiting[key] = waiting
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, daemon=True,
                                                name="object-store-watch")
                self._thread.start()
        ok = False
        try:
            yield
            ok = True
        finally:
            with self._lock:
                del self._waiting[key]
                warned = waiting.warned
            if warned:
                log.warning("%s of %r on %s %s after %.1f s", op, path, self.url,
                            "answered" if ok else "failed", time.monotonic() - waiting.started)

    def _watch(self) -> None:
        # checks four times per threshold, so a warning comes at most a quarter late
        interval = min(1.0, self.warn_after_s / 4)
        while True:
            time.sleep(interval)
            now = time.monotonic()
            with self._lock:
                due = [w for w in self._waiting.values()
                       if not w.warned and now - w.started >= self.warn_after_s]
                for w in due:
                    w.warned = True
                self.slow_requests += len(due)
            for w in due:
                log.warning("%s of %r on %s has waited %.1f s: the store is slow or failing "
                            "(a failed request is retried for up to "
                            "--object-store-retry-timeout)", w.op, w.path, self.url,
                            now - w.started)
