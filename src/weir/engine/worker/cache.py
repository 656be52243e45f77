"""`influxdb3_local.cache` inside the worker.

The trigger's own namespace lives here, in the trigger's long-lived worker, and holds
live objects by reference (never copied or pickled). The global namespace
(`use_global=True`) is kept by the server so that every trigger shares it; its
values travel pickled, so they must be picklable and `get` returns a copy.
"""

from __future__ import annotations

import base64
import math
import pickle
import threading
import time
from collections.abc import Callable
from typing import Any

SWEEP_INTERVAL_S = 10.0
_MISSING = object()


def expiry(ttl: Any, default_ttl: float | None) -> float | None:
    """The monotonic deadline for a TTL in seconds (None = never); rejects bad TTLs."""
    if ttl is None:
        ttl = default_ttl
        if ttl is None:
            return None
    if isinstance(ttl, bool):
        raise ValueError(f"invalid cache ttl {ttl!r}: expected seconds as a number")
    try:
        seconds = float(ttl)
    except (TypeError, ValueError):
        raise ValueError(f"invalid cache ttl {ttl!r}: expected seconds as a number") from None
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"invalid cache ttl {ttl!r}: it must be zero or more seconds")
    if math.isinf(seconds):
        return None
    return time.monotonic() + seconds


def _check_key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"cache keys must be str, not {type(key).__name__}")
    return key


class LocalNamespace:
    """One namespace of live objects with optional expiry; safe across threads."""

    def __init__(self, default_ttl: float | None = None) -> None:
        self.default_ttl = default_ttl
        self._data: dict[str, tuple[Any, float | None]] = {}
        self._lock = threading.Lock()
        self._last_sweep = time.monotonic()

    def put(self, key: str, value: Any, ttl: Any = None) -> None:
        deadline = expiry(ttl, self.default_ttl)
        with self._lock:
            self._data[key] = (value, deadline)

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return default
            value, deadline = hit
            if deadline is not None and deadline <= time.monotonic():
                del self._data[key]
                return default
            return value

    def delete(self, key: str) -> bool:
        with self._lock:
            hit = self._data.pop(key, None)
            if hit is None:
                return False
            return hit[1] is None or hit[1] > time.monotonic()

    def maybe_sweep(self) -> None:
        """Drop expired entries, at most every SWEEP_INTERVAL_S."""
        now = time.monotonic()
        if now - self._last_sweep < SWEEP_INTERVAL_S:
            return
        with self._lock:
            self._last_sweep = now
            for k in [k for k, (_, d) in self._data.items() if d is not None and d <= now]:
                del self._data[k]


#: Sends a `gcache` request to the server and returns its reply header.
GlobalRequest = Callable[[dict[str, Any]], dict[str, Any]]


class PluginCache:
    """The object plugins get as `influxdb3_local.cache`: put / get / delete."""

    __slots__ = ("_default_ttl", "_global_namespace", "_global_request", "_local")

    def __init__(self, local: LocalNamespace, global_request: GlobalRequest,
                 global_namespace: str, default_ttl: float | None = None) -> None:
        self._local = local
        self._global_request = global_request
        self._global_namespace = global_namespace
        self._default_ttl = default_ttl

    def __dir__(self) -> list[str]:
        return ["delete", "get", "put"]

    def put(self, key: str, value: Any, ttl: float | None = None,
            use_global: bool | None = None) -> None:
        """Store `value` under `key`; `ttl` in seconds (None = no expiry)."""
        key = _check_key(key)
        if not use_global:
            self._local.put(key, value, ttl)
            return
        deadline = expiry(ttl, self._default_ttl)  # validates the TTL here
        try:
            blob = pickle.dumps(value)
        except Exception as e:  # noqa: BLE001 - pickling runs the value's own code
            raise TypeError(
                f"values stored with use_global=True are shared through the server and must "
                f"be picklable: {type(e).__name__}: {e}") from None
        ttl_s = None if deadline is None else max(0.0, deadline - time.monotonic())
        self._global_request({"action": "put", "namespace": self._global_namespace,
                              "key": key, "ttl": ttl_s,
                              "value": base64.b64encode(blob).decode()})

    def get(self, key: str, default: Any = None, use_global: bool | None = None) -> Any:
        """The stored value, or `default` when absent or expired."""
        key = _check_key(key)
        if not use_global:
            return self._local.get(key, default)
        reply = self._global_request({"action": "get", "namespace": self._global_namespace,
                                      "key": key})
        if reply.get("value") is None:
            return default
        return pickle.loads(base64.b64decode(reply["value"]))

    def delete(self, key: str, use_global: bool | None = None) -> bool:
        """Remove `key`; True if it was there."""
        key = _check_key(key)
        if not use_global:
            return self._local.delete(key)
        reply = self._global_request({"action": "delete", "namespace": self._global_namespace,
                                      "key": key})
        return bool(reply.get("deleted"))
