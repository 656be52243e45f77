"""SQL results over HTTP are sent as they are computed: a result larger than the server could
sensibly hold arrives in chunks while the server's memory stays flat, and small results (and
errors) keep their ordinary, whole responses."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx

MB = 1024 * 1024


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _cpu_share(pid: int, seconds: float) -> float:
    """The share of one core the process used over the next `seconds`."""
    def ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    start = ticks()
    time.sleep(seconds)
    return (ticks() - start) / os.sysconf("SC_CLK_TCK") / seconds


def test_a_large_result_streams_without_being_held_whole(server):
    now = time.time_ns()
    assert server.write("db1", f"cpu,host=a usage=1 {now}").status_code == 204
    n = 5_000_000  # ~90 MB of JSON lines; built whole it would take well over 200 MB
    sql = f"SELECT value, value * 2 AS twice FROM generate_series(1, {n})"
    # warm up, so that the peak below is not the server's first query's one-off cost
    assert server.rows("db1", "SELECT 1 AS one") == [{"one": 1}]
    before = _peak_rss(server.proc.pid)
    rows = 0
    chunks = 0
    last = b""
    with httpx.stream("POST", f"{server.url}/api/v3/query_sql", timeout=120,
                      json={"db": "db1", "q": sql, "format": "jsonl"}) as r:
        assert r.status_code == 200
        assert r.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in r.headers
        assert r.headers["content-type"].startswith("application/jsonl")
        for chunk in r.iter_bytes():
            chunks += 1
            data = last + chunk
            lines = data.split(b"\n")
            last = lines.pop()
            for i in range(0, len(lines), 997):  # (partitions interleave: no row order)
                row = json.loads(lines[i])
                assert row["twice"] == 2 * row["value"] and 1 <= row["value"] <= n
            rows += len(lines)
    assert last == b""
    assert rows == n
    assert chunks > 10
    grown = _peak_rss(server.proc.pid) - before
    assert grown < 80 * MB, f"the server's peak memory grew {grown / MB:.0f} MB"


def test_a_client_that_goes_away_stops_the_query(server):
    now = time.time_ns()
    assert server.write("db1", f"cpu,host=a usage=1 {now}").status_code == 204
    sql = "SELECT value FROM generate_series(1, 200000000)"
    with httpx.stream("POST", f"{server.url}/api/v3/query_sql", timeout=60,
                      json={"db": "db1", "q": sql, "format": "csv"}) as r:
        assert r.status_code == 200
        first = next(r.iter_bytes())
        assert first.startswith(b"value\n1\n2\n")
    # the abandoned query stops computing (its 200 M rows would keep a core busy for
    # minutes), and new queries are answered
    deadline = time.monotonic() + 30
    while (busy := _cpu_share(server.proc.pid, 1.0)) > 0.5:
        assert time.monotonic() < deadline, f"the server still uses {busy:.0%} of a core"
    assert server.rows("db1", "SELECT count(*) AS n FROM cpu") == [{"n": 1}]


def test_small_results_and_errors_are_whole_responses(server):
    now = time.time_ns()
    lp = "\n".join(f"cpu,host=h{i} usage={i} {now - i}" for i in range(100))
    assert server.write("db1", lp).status_code == 204
    r = server.query("db1", "SELECT count(*) AS n FROM cpu")
    assert r.status_code == 200
    assert r.headers["content-length"] == str(len(r.content))
    assert r.json() == [{"n": 100}]
    # an error found while computing (not planning) still gets its status and body
    r = server.query("db1", "SELECT CAST('x' || host AS BIGINT) FROM cpu")
    # (the reference answers execution errors 500, the error's text as the body)
    assert r.status_code == 500, r.text
    assert "Cannot cast string 'xh" in r.text
    r = server.query("db1", "SELECT * FROM cpu", fmt="pretty")
    assert r.status_code == 200 and r.text.startswith("+")
