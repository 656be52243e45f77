"""Query results sent as they are computed, not built whole first.

A result is encoded batch by batch (`weir.query.encode_batches`). The first
`_BUFFERED_BYTES` of output are gathered before the response starts: a result that fits
(most queries) is sent as one ordinary response, so an error anywhere in it still gets its
proper status and body. A larger result starts streaming then (chunked transfer), holding
at most one encoded batch at a time; an error after that point can no longer change the
status, so the connection is cut without the final chunk, and the client sees a truncated
transfer rather than a short result that looks complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Generator

from starlette.responses import Response, StreamingResponse

from weir.errors import QueryError
from weir.ports import BatchStream
from weir.query import content_type, encode_batches
from weir.query.engine import QueryStream

log = logging.getLogger("weir.server")

#: output gathered before deciding between one response and a stream
_BUFFERED_BYTES = 4 * 1024 * 1024
#: output sent per step once streaming (one hop to a worker thread each)
_STREAMED_BYTES = 1024 * 1024
#: a result already computed (`QueryStream.computed`) of at most this many rows and
#: bytes is encoded on the event loop: a hop to a worker thread costs more than that
_INLINE_ROWS = 32
_INLINE_BYTES = 64 * 1024


class ResultCutShort(Exception):
    """A streamed result failed after its first bytes were sent (the connection is cut)."""


async def result_response(stream: BatchStream, fmt: str) -> Response:
    """The response for `stream` in format `fmt`; errors before streaming starts raise as
    they would for a whole result, and the stream is closed however the response ends."""
    chunks = encode_batches(stream, fmt, schema=stream.schema)
    try:
        if _small_and_computed(stream):
            head, ended = _gather(chunks, _BUFFERED_BYTES)
        else:
            # (one hop to a worker thread for all of it: most results end within it)
            head, ended = await asyncio.to_thread(_gather, chunks, _BUFFERED_BYTES)
    except BaseException:
        _close(chunks, stream)
        raise
    if ended:
        return Response(b"".join(head), media_type=content_type(fmt))
    return StreamingResponse(_rest(head, chunks, stream), media_type=content_type(fmt))


def _small_and_computed(stream: BatchStream) -> bool:
    return (isinstance(stream, QueryStream) and stream.computed
            and stream.computed_rows <= _INLINE_ROWS
            and stream.computed_bytes <= _INLINE_BYTES)


def _gather(chunks: Generator[bytes, None, None], limit: int) -> tuple[list[bytes], bool]:
    """Encoded chunks up to about `limit` bytes, and whether that was all of them."""
    head: list[bytes] = []
    size = 0
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size >= limit:
            return head, False
    return head, True


async def _rest(head: list[bytes], chunks: Generator[bytes, None, None],
                stream: BatchStream) -> AsyncIterator[bytes]:
    try:
        for sent in head:
            yield sent
        head.clear()
        ended = False
        while not ended:
            try:
                part, ended = await asyncio.to_thread(_gather, chunks, _STREAMED_BYTES)
            except QueryError as e:
                log.warning("query failed after its result started streaming; the "
                            "response is cut short: %s", e)
                raise ResultCutShort(str(e)) from None
            if part:
                yield b"".join(part)
    finally:
        # (also when the client went away: the query stops and its files are released)
        _close(chunks, stream)


def _close(chunks: Generator[bytes, None, None], stream: BatchStream) -> None:
    stream.close()
    # (ValueError: a worker thread is still inside it, the request having been cancelled;
    # it ends at its next batch, the stream being closed)
    with contextlib.suppress(ValueError):
        chunks.close()
