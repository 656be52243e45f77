"""The processing engine's log: a ring buffer of the most recent plugin log lines.

Every call's start and end, the plugin's own `info/warn/error` lines and every error
(with its Python traceback) land here and in the server log (logger `weir.engine`).
The buffer is what `system.processing_engine_logs` shows, in every database; like
the reference it keeps the last 10,000 entries and is not persisted.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("weir.engine")

DEFAULT_CAPACITY = 10_000
_PY_LEVELS = {"INFO": logging.INFO, "WARN": logging.WARNING, "ERROR": logging.ERROR}


@dataclass(frozen=True)
class LogEntry:
    event_time_ns: int
    trigger_name: str
    log_level: str  # INFO | WARN | ERROR
    log_text: str


class PluginLogs:
    """Thread-safe ring buffer of LogEntry, newest last."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._entries: collections.deque[LogEntry] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._last_ns = 0

    def add(self, trigger_name: str, level: str, text: str) -> None:
        level = level.upper()
        if level == "WARNING":
            level = "WARN"
        with self._lock:
            now = time.time_ns()
            # strictly increasing times keep entries of one instant in their order
            now = max(now, self._last_ns + 1)
            self._last_ns = now
            self._entries.append(LogEntry(now, trigger_name, level, text))
        log.log(_PY_LEVELS.get(level, logging.INFO), "processing engine [%s]: %s",
                trigger_name, text)

    def info(self, trigger_name: str, text: str) -> None:
        self.add(trigger_name, "INFO", text)

    def warn(self, trigger_name: str, text: str) -> None:
        self.add(trigger_name, "WARN", text)

    def error(self, trigger_name: str, text: str) -> None:
        self.add(trigger_name, "ERROR", text)

    def entries(self, trigger_name: str | None = None) -> list[LogEntry]:
        with self._lock:
            items = list(self._entries)
        if trigger_name is not None:
            items = [e for e in items if e.trigger_name == trigger_name]
        return items
