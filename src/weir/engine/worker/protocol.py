"""The frames exchanged between the server and a worker over the worker's pipes.

A frame is ``>II`` (header length, payload length), a UTF-8 JSON header, then an
optional binary payload. Tables cross as Arrow IPC streams in the payload; several
tables go as consecutive streams whose byte sizes the header lists (`segments`).

Server -> worker: ``init``, ``call``, ``reply`` (to a worker request), ``shutdown``.
Worker -> server: ``ready``, ``result`` (of a call), ``log``, and requests that get a
``reply``: ``query``, ``write``, ``gcache``.

This module is imported on both sides; it needs only the standard library, and
pyarrow for the Arrow helpers.
"""

from __future__ import annotations

import json
import struct
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

PREFIX = struct.Struct(">II")
MAX_HEADER = 64 * 1024 * 1024
MAX_PAYLOAD = 4 * 1024 * 1024 * 1024


class ProtocolError(Exception):
    """A frame that cannot be read: the other side is broken or gone."""


def encode_frame(header: dict[str, Any], payload: bytes | memoryview = b"") -> bytes:
    head = json.dumps(header, separators=(",", ":"), default=str).encode()
    return PREFIX.pack(len(head), len(payload)) + head + bytes(payload)


def decode_prefix(prefix: bytes) -> tuple[int, int]:
    hlen, plen = PREFIX.unpack(prefix)
    if hlen > MAX_HEADER or plen > MAX_PAYLOAD:
        raise ProtocolError(f"frame too large (header {hlen} bytes, payload {plen} bytes)")
    return hlen, plen


def read_frame(stream: IO[bytes]) -> tuple[dict[str, Any], bytes] | None:
    """Read one frame from a blocking stream; None at a clean end of stream."""
    prefix = _read_exact(stream, PREFIX.size, allow_eof=True)
    if prefix is None:
        return None
    hlen, plen = decode_prefix(prefix)
    head = _read_exact(stream, hlen)
    payload = _read_exact(stream, plen) if plen else b""
    assert head is not None and payload is not None
    return json.loads(head), payload


def _read_exact(stream: IO[bytes], n: int, allow_eof: bool = False) -> bytes | None:
    chunks = []
    got = 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            if allow_eof and got == 0:
                return None
            raise ProtocolError("stream ended inside a frame")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


# ---- Arrow IPC helpers ---------------------------------------------------------------


# pyarrow is imported when first needed, not with this module: the worker reads and writes
# frames (channel.py) before anything needs Arrow, and a worker whose memory limit is too
# small then fails on a small import with MemoryError, which says why, instead of on
# pyarrow's shared library with "failed to map segment".


def table_to_ipc(table: pa.Table | pa.RecordBatch) -> bytes:
    """A pyarrow Table or RecordBatch as one IPC stream."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        if isinstance(table, pa.RecordBatch):
            writer.write_batch(table)
        else:
            writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def ipc_to_table(data: bytes | memoryview) -> pa.Table:
    import pyarrow as pa

    with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
        return reader.read_all()


def split_segments(payload: bytes, sizes: list[int]) -> list[memoryview]:
    view = memoryview(payload)
    out = []
    pos = 0
    for n in sizes:
        out.append(view[pos:pos + n])
        pos += n
    if pos != len(payload):
        raise ProtocolError(f"payload has {len(payload)} bytes, segments add up to {pos}")
    return out
