"""Tunables of the processing engine that `ServeConfig` does not (yet) carry."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


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

    @classmethod
    def from_config(cls, config: Any) -> EngineOptions:
        """Defaults, overridden by any matching attribute the config has
        (`plugin_memory_limit`, `plugin_call_timeout`, ...)."""
        opts = cls()
        limit = getattr(config, "plugin_memory_limit", None)
        opts.memory_limit = limit if limit is not None else default_memory_limit()
        opts.call_timeout = getattr(config, "plugin_call_timeout", None)
        for name in ("retry_attempts", "retry_base_delay", "retry_max_delay",
                     "log_capacity", "worker_start_timeout", "max_async_calls"):
            value = getattr(config, f"plugin_{name}", None)
            if value is not None:
                setattr(opts, name, value)
        return opts
