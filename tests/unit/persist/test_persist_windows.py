"""gen1 windows are computed with integer arithmetic for every valid timestamp."""

from __future__ import annotations

import pyarrow as pa
import pytest

from weir.persist import _window_label, gen1_windows

TEN_MIN = 600 * 10**9
NOW = 1_764_700_000_123_456_789  # late 2025, nanoseconds


@pytest.mark.parametrize("t", [
    -(2**63), -1, 0, 1, NOW, NOW - NOW % TEN_MIN - 1, NOW - NOW % TEN_MIN,
    7_258_118_400 * 10**9,  # 2200-01-01
    2**63 - 1,
])
def test_window_contains_its_row(t: int) -> None:
    (w,) = gen1_windows(pa.array([t], pa.int64()), TEN_MIN).to_pylist()
    assert w <= t < w + TEN_MIN
    assert w % TEN_MIN == 0 or w == -(2**63)  # the first window is clamped to int64
    _window_label(w)  # any valid window start has a label


def test_one_ns_before_a_boundary_stays_in_its_window() -> None:
    boundary = NOW - NOW % TEN_MIN
    ws = gen1_windows(pa.array([boundary - 1, boundary], pa.timestamp("ns")), TEN_MIN)
    assert ws.to_pylist() == [boundary - TEN_MIN, boundary]
