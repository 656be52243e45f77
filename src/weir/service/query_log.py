"""The server's query log: the last queries of every front end, running or done, as
`system.queries` shows them (the reference keeps the last 1000, --query-log-size)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

#: how many queries the log keeps (the reference's --query-log-size default)
QUERY_LOG_SIZE = 1000


@dataclass
class QueryLogEntry:
    query_type: str  # sql | influxql | flightsql
    query_text: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    issue_time_ns: int = field(default_factory=time.time_ns)
    phase: str = "received"  # then success | fail | cancel
    success: bool = False
    running: bool = True
    cancelled: bool = False
    end2end_duration_ns: int | None = None
    _started: float = field(default_factory=time.monotonic, repr=False)

    def finish(self, phase: str) -> None:
        self.end2end_duration_ns = round((time.monotonic() - self._started) * 1e9)
        self.phase = phase
        self.success = phase == "success"
        self.cancelled = phase == "cancel"
        self.running = False


class QueryLog:
    def __init__(self, size: int = QUERY_LOG_SIZE) -> None:
        self._entries: deque[QueryLogEntry] = deque(maxlen=size)
        self._lock = threading.Lock()

    def entries(self) -> list[QueryLogEntry]:
        """Oldest first."""
        with self._lock:
            return list(self._entries)

    @contextmanager
    def record(self, query_type: str, query_text: str) -> Iterator[QueryLogEntry]:
        """Log a query for the duration of the block: a success if it returns, a failure
        if it raises (cancelled if the caller went away)."""
        entry = QueryLogEntry(query_type, query_text)
        with self._lock:
            self._entries.append(entry)
        try:
            yield entry
        except asyncio.CancelledError:
            entry.finish("cancel")
            raise
        except BaseException:
            entry.finish("fail")
            raise
        entry.finish("success")
