"""The worker's end of the pipes: sending frames and waiting for the server's replies.

Plugin calls run in their own threads; each request a plugin makes (a query, an
immediate write, a global-cache operation) blocks only its thread until the main
thread, which reads every incoming frame, hands it the matching reply.
"""

from __future__ import annotations

import itertools
import threading
from typing import IO, Any

from weir.engine.worker.protocol import encode_frame


class ChannelClosed(Exception):
    """The server went away while a request was waiting."""


class _Waiter:
    __slots__ = ("event", "header", "payload")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.header: dict[str, Any] | None = None
        self.payload = b""


class ServerChannel:
    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._write_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Waiter] = {}
        self._waiting_lock = threading.Lock()
        self._closed = False

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        frame = encode_frame(header, payload)
        with self._write_lock:
            self._out.write(frame)
            self._out.flush()

    def request(self, header: dict[str, Any], payload: bytes = b"") -> tuple[dict[str, Any], bytes]:
        """Send a request and block until the server replies to it."""
        rid = next(self._ids)
        waiter = _Waiter()
        with self._waiting_lock:
            if self._closed:
                raise ChannelClosed("the server connection is closed")
            self._waiting[rid] = waiter
        try:
            self.send({**header, "rid": rid}, payload)
            waiter.event.wait()
        finally:
            with self._waiting_lock:
                self._waiting.pop(rid, None)
        if waiter.header is None:
            raise ChannelClosed("the server connection closed before it replied")
        return waiter.header, waiter.payload

    def deliver(self, header: dict[str, Any], payload: bytes) -> None:
        """Called by the reading thread for each `reply` frame."""
        with self._waiting_lock:
            waiter = self._waiting.get(header.get("rid", -1))
        if waiter is not None:
            waiter.header = header
            waiter.payload = payload
            waiter.event.set()

    def close(self) -> None:
        with self._waiting_lock:
            self._closed = True
            waiters = list(self._waiting.values())
        for w in waiters:
            w.event.set()
