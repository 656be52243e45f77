"""How the processing engine runs plugins: the worker memory limit and the call time limit
come from `ServeConfig`; the other tunables are not serve flags (yet), so the server runs
with their defaults and tests pass their own."""

from __future__ import annotations

import os
from dataclasses import dataclass

from weir.config import ServeConfig


def default_memory_limit() -> int:
    """Half the machine's memory, at least 2 GiB: the address-space limit per worker."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 1024**3
    return max(2 * 1024**3, total // 2)


@dataclass
class EngineOptions:
    """How the engine runs plugins.

    * `memory_limit`: RLIMIT_AS of each worker in bytes (0 or None: no limit). A plugin
      that allocates past it gets MemoryError (or its worker dies and is replaced).
    * `call_timeout`: seconds one plugin call may take before its worker is killed
      (None: `config.plugin_call_timeout`).
    * `retry_*`: `error_behavior=retry` waits `retry_base_delay * 2**(n-1)` seconds
      (at most `retry_max_delay`) before attempt n+1, and gives up after
      `retry_attempts` attempts.
    * `create_venv`: create the plugin venv at start when it is missing.
    * `wal_merge_files`, `wal_merge_rows`: a WAL trigger with flushed files waiting gets
      up to this many of them (or about this many rows) in one call.
    * `wal_memory_files`, `wal_memory_rows`: flushed rows a WAL trigger keeps in memory
      ahead of its calls; past them it reads the WAL files back when due. The engine
      keeps `wal_memory_files` within --trigger-max-wal-lag (files further behind are not
      kept for a trigger, in memory or on disk).
    """

    memory_limit: int | None = None
    call_timeout: float | None = None
    retry_attempts: int = 10
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    log_capacity: int = 10_000
    worker_start_timeout: float = 30.0
    max_async_calls: int = 64
    create_venv: bool = True
    wal_merge_files: int = 64
    wal_merge_rows: int = 1_000_000
    wal_memory_files: int = 1_024
    wal_memory_rows: int = 2_000_000

    @classmethod
    def from_config(cls, config: ServeConfig) -> EngineOptions:
        """The defaults, with `config`'s `plugin_memory_limit` (None: half the machine's
        memory, at least 2 GiB) and `plugin_call_timeout`."""
        limit = config.plugin_memory_limit
        return cls(memory_limit=limit if limit is not None else default_memory_limit(),
                   call_timeout=config.plugin_call_timeout)
