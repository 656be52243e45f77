"""SlowRequestWatch: a request still waiting past the threshold is named in the log once
while it waits and again when it ends; quick requests and a watch set to 0 say nothing."""

from __future__ import annotations

import logging
import time

import pytest

from weir.objectstore.slow import SlowRequestWatch


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "weir.objectstore"]


def test_a_request_past_the_threshold_is_named_while_it_waits_and_when_it_answers(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "weir.objectstore")
    watch = SlowRequestWatch("s3://b at http://127.0.0.1:1", warn_after_s=0.2)
    with watch.request("put", "node/wal/00000000001.wal"):
        deadline = time.monotonic() + 5
        while not _messages(caplog) and time.monotonic() < deadline:
            time.sleep(0.02)
        waiting = _messages(caplog)
    assert len(waiting) == 1, waiting
    assert waiting[0].startswith("put of 'node/wal/00000000001.wal' on s3://b at "
                                 "http://127.0.0.1:1 has waited 0.")
    assert "--object-store-retry-timeout" in waiting[0]
    done = _messages(caplog)[1:]
    assert len(done) == 1 and " answered after 0." in done[0], done
    assert watch.slow_requests == 1


def test_a_failing_slow_request_says_it_failed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "weir.objectstore")
    watch = SlowRequestWatch("s3://b", warn_after_s=0.1)
    with pytest.raises(OSError), watch.request("get", "k"):
        time.sleep(0.4)
        raise OSError("connection reset")
    msgs = _messages(caplog)
    assert len(msgs) == 2 and "get of 'k' on s3://b failed after" in msgs[1], msgs


def test_quick_requests_and_a_watch_turned_off_say_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "weir.objectstore")
    quick = SlowRequestWatch("s3://b", warn_after_s=0.3)
    for _ in range(100):
        with quick.request("head", "k"):
            pass
    off = SlowRequestWatch("s3://b", warn_after_s=0)
    with off.request("get", "k"):
        time.sleep(0.2)
    time.sleep(0.4)  # past the threshold: nothing is left waiting to be named
    assert _messages(caplog) == []
    assert quick.slow_requests == 0 and off.slow_requests == 0
