"""Arrow Flight queries on the HTTP port, as InfluxDB 3 serves them.

The reference answers gRPC (HTTP/2 with prior knowledge) and HTTP/1.1 on one port. Weir
does the same without an HTTP/2 stack of its own: each new connection on the HTTP port
is sniffed — the first bytes of a gRPC client are the HTTP/2 connection preface — and

* HTTP/2 connections are spliced, byte for byte, to pyarrow's Flight (gRPC) server,
  which listens only on a private Unix socket;
* everything else is handed to uvicorn's own HTTP protocol, untouched from then on.

The Flight service implements `DoGet` with the reference's JSON ticket
`{"database", "sql_query", "query_type": "sql"|"influxql", "params"}` (`database`
aliases: `namespace_name`, `bucket`, `bucket-name`) or its protobuf `ReadInfo`, and
FlightSQL (`service.py`, `sql.py`), authenticated by the `authorization: Bearer <token>`
metadata, streaming results as Arrow record batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weir.server.flight.service import WeirFlightServer
    from weir.server.state import ServerState

log = logging.getLogger("weir.server.flight")

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


# ---- sharing the HTTP port -----------------------------------------------------------------


class _Pipe(asyncio.Protocol):
    """One direction's receiving end of a spliced connection: bytes in here go out there."""

    def __init__(self, link: _Link, side: str) -> None:
        self.link = link
        self.side = side

    def data_received(self, data: bytes) -> None:
        other = self.link.other(self.side)
        if other is not None and not other.is_closing():
            other.write(data)

    def eof_received(self) -> bool:
        other = self.link.other(self.side)
        if other is not None and other.can_write_eof() and not other.is_closing():
            other.write_eof()
            return True
        self.link.close()
        return False

    def pause_writing(self) -> None:
        other = self.link.other(self.side)
        if other is not None:
            other.pause_reading()

    def resume_writing(self) -> None:
        other = self.link.other(self.side)
        if other is not None:
            other.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.close()


class _Link:
    """A client connection spliced to the Flight server's Unix socket."""

    def __init__(self, client: asyncio.Transport, registry: set[_Link]) -> None:
        self.client = client
        self.upstream: asyncio.Transport | None = None
        self.registry = registry
        registry.add(self)

    def other(self, side: str) -> asyncio.Transport | None:
        return self.upstream if side == "client" else self.client

    def close(self) -> None:
        self.registry.discard(self)
        for t in (self.client, self.upstream):
            if t is not None and not t.is_closing():
                t.close()


def _remove_stale_dirs() -> None:
    """Socket folders left by Weir processes that were killed (named after their pid)."""
    tmp = tempfile.gettempdir()
    try:
        names = os.listdir(tmp)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if len(parts) < 4 or parts[:2] != ["weir", "flight"] or not parts[2].isdigit():
            continue
        pid = int(parts[2])
        try:
            os.kill(pid, 0)
            continue  # still running (or not ours to judge)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)


class FlightService:
    """Runs the Flight server on a private Unix socket and builds the sniffing protocol
    that uvicorn uses for every connection on the HTTP port."""

    def __init__(self, state: ServerState, loop: asyncio.AbstractEventLoop) -> None:
        self.state = state
        self.loop = loop
        self.dir: str | None = None
        self.path = ""
        self.server: WeirFlightServer | None = None  # started by the first gRPC connection
        self.links: set[_Link] = set()
        self._starting: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _start_server(self) -> None:
        from weir.server.flight.service import WeirFlightServer

        _remove_stale_dirs()
        self.dir = tempfile.mkdtemp(prefix=f"weir-flight-{os.getpid()}-")
        os.chmod(self.dir, 0o700)
        self.path = os.path.join(self.dir, "flight.sock")
        # listening starts in the constructor; serve() would only block, and would take
        # over SIGINT/SIGTERM from uvicorn (the server's clean shutdown), so it is not used
        self.server = WeirFlightServer(f"grpc+unix://{self.path}", self.state, self.loop)
        log.info("Arrow Flight (gRPC) queries are served on the HTTP port")

    async def _ensure_server(self) -> None:
        if self.server is not None:
            return
        if self._starting is None:
            self._starting = self.loop.create_task(asyncio.to_thread(self._start_server))
        await asyncio.shield(self._starting)

    def protocol_class(self) -> type[asyncio.Protocol]:
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        service = self

        class SniffingProtocol(asyncio.Protocol):
            """Hands the connection to uvicorn (HTTP/1.1) or to Flight (HTTP/2 preface)."""

            def __init__(self, config: Any, server_state: Any, app_state: Any,
                         _loop: Any = None) -> None:
                self._kw = {"config": config, "server_state": server_state,
                            "app_state": app_state, "_loop": _loop}
                self.transport: asyncio.Transport | None = None
                self.buf = b""

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport  # type: ignore[assignment]

            def data_received(self, data: bytes) -> None:
                self.buf += data
                n = min(len(self.buf), len(H2_PREFACE))
                if self.buf[:n] == H2_PREFACE[:n]:
                    if len(self.buf) >= len(H2_PREFACE):
                        assert self.transport is not None  # (set by connection_made)
                        service._splice(self.transport, self.buf)
                    return
                proto = AutoHTTPProtocol(**self._kw)
                assert self.transport is not None
                self.transport.set_protocol(proto)
                proto.connection_made(self.transport)
                proto.data_received(self.buf)

            def eof_received(self) -> bool:
                return False

            def connection_lost(self, exc: Exception | None) -> None:
                self.transport = None

        return SniffingProtocol

    def _splice(self, client: asyncio.Transport, first: bytes) -> None:
        client.pause_reading()
        link = _Link(client, self.links)
        client.set_protocol(_Pipe(link, "client"))

        async def connect() -> None:
            try:
                await self._ensure_server()
                upstream, _ = await self.loop.create_unix_connection(
                    lambda: _Pipe(link, "upstream"), self.path)
            # a failed start or connect closes this link, logged; the server goes on
            except Exception as e:  # noqa: BLE001 - logged, the link closed
                log.warning("cannot reach the Flight server: %s", e)
                link.close()
                return
            link.upstream = upstream
            if client.is_closing():
                link.close()
                return
            upstream.write(first)
            client.resume_reading()

        task = self.loop.create_task(connect())
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for link in list(self.links):
            link.close()
        if self._starting is not None:
            with contextlib.suppress(Exception):  # a failed start was logged by connect()
                await self._starting
        if self.server is not None:
            await asyncio.to_thread(self.server.shutdown)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
