"""The maintenance loop (compaction, retention, hard deletes) runs as a task nothing awaits
until shutdown: if it ends with an exception, compaction stops for good, so that is logged
at once (CRITICAL), not found out when the files pile up."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from weir.database import _report_maintenance_end


class _Escaped(BaseException):
    """Not an Exception: what the loop's own `except Exception` lets through."""


async def _run(body: object) -> None:
    async def loop() -> None:
        if isinstance(body, BaseException):
            raise body
        await asyncio.sleep(3600)

    task = asyncio.create_task(loop(), name="maintenance")
    task.add_done_callback(_report_maintenance_end)
    await asyncio.sleep(0.01)
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, _Escaped):
        await task
    await asyncio.sleep(0)  # (done callbacks run on the next turn of the loop)


def test_an_exception_ending_the_loop_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.CRITICAL, logger="weir.database"):
        asyncio.run(_run(_Escaped("stray interruption")))
    assert [r.levelname for r in caplog.records] == ["CRITICAL"]
    assert "maintenance loop (compaction, retention, hard deletes) ended: _Escaped: " \
           "stray interruption" in caplog.text


def test_a_stop_is_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="weir.database"):
        asyncio.run(_run(None))
    assert not caplog.records
