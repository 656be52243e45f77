"""The fixed cost of a query: what a trivial query costs in process and over HTTP.

    .venv/bin/python bench/query_overhead.py [--runs 300] [--repeat 3] [--json out.json]

Four measures, each `--runs` timed queries after a warm-up, the whole set `--repeat`
times (the median of the repeats' p50s and p95s is printed, with every repeat's):

* in process, `SELECT 1`, a point lookup (one host's newest row) and a 60-row answer (a
  dashboard panel's size: past the 32 rows encoded cell by cell) on a table of 1,000
  rows, all in the buffer: a real `weir.database.Database` (file object store, default
  query time limit) queried the way the HTTP route does, `await db.query_stream(...)` and
  the stream read; plus the query engine alone on a snapshot (`engine.execute`), which
  leaves out the event loop's thread hop;
* the same three over HTTP (and `GET /health`, the HTTP stack with no query): `POST /api/v3/query_sql` with `format: json` on one keep-alive
  connection to a real `influxdb3 serve` subprocess; the server's CPU time per query (from
  /proc) is printed beside the latency.

Issue #12's target: at most 1 ms in process and 2 ms over HTTP. The machine may be busy:
say what else ran when you quote the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import benchlib

ROWS = 1000
POINT = "SELECT * FROM cpu WHERE host = 'host_7' ORDER BY time DESC LIMIT 1"
#: a dashboard panel's size of answer: past the 32 rows that are encoded cell by cell
PANEL = "SELECT host, avg(usage_user) AS a FROM cpu GROUP BY host ORDER BY host LIMIT 60"
QUERIES = {"SELECT 1": "SELECT 1", "point lookup": POINT, "60-row answer": PANEL}


def _lines(now_ns: int) -> str:
    """1,000 rows: 100 hosts × 10 points, 10 s apart, ending now."""
    return "\n".join(
        f"cpu,host=host_{h},region=r{h % 7} usage_user={h + t * 0.5},usage_system={t}i "
        f"{now_ns - (9 - t) * 10_000_000_000}"
        for t in range(10) for h in range(ROWS // 10))


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def _stats(samples_ms: list[float]) -> dict[str, float]:
    s = sorted(samples_ms)
    return {"p50": benchlib.percentile(s, 50), "p95": benchlib.percentile(s, 95),
            "mean": statistics.fmean(s)}


# ---- in process -------------------------------------------------------------------------


async def _time_async(fn: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    for _ in range(max(10, runs // 10)):
        await fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _time_sync(fn: Callable[[], object], runs: int) -> list[float]:
    for _ in range(max(10, runs // 10)):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


async def in_process(runs: int) -> dict[str, list[float]]:
    from weir.config import ServeConfig
    from weir.database import Database

    with tempfile.TemporaryDirectory(prefix="weir-bench-overhead-") as tmp:
        cfg = ServeConfig(data_dir=Path(tmp) / "data", object_store="file",
                          node_id="bench", wal_flush_interval=0.01)
        db = Database(cfg)
        await db.start()
        try:
            await db.write_lp("bench", _lines(time.time_ns()))
            got = (await db.query("bench", "SELECT count(*) AS n FROM cpu")).to_pylist()
            assert got == [{"n": ROWS}], got
            out: dict[str, list[float]] = {}
            for label, sql in QUERIES.items():
                async def run(sql: str = sql) -> None:
                    stream = await db.query_stream("bench", sql)
                    stream.read_all()

                out[f"in process, Database.query_stream: {label}"] = \
                    await _time_async(run, runs)
            for label, sql in QUERIES.items():
                def engine_only(sql: str = sql) -> None:
                    db.query_engine.execute(db.snapshot_for_query("bench"), sql)

                out[f"in process, engine alone: {label}"] = \
                    await asyncio.to_thread(_time_sync, engine_only, runs)
            return out
        finally:
            await db.stop()


# ---- over HTTP --------------------------------------------------------------------------


def over_http(runs: int, weir_bin: str, profile: str | None) -> dict[str, list[float]]:
    import httpx

    server = benchlib.weir_server(weir_bin).start()
    spy = None
    try:
        url = f"http://{benchlib.HOST}:{server.port}"
        with httpx.Client(base_url=url, timeout=30.0) as client:
            r = client.post("/api/v3/write_lp", params={"db": "bench"},
                            content=_lines(time.time_ns()))
            assert r.status_code == 204, r.text
            out: dict[str, list[float]] = {}
            if profile:
                spy = benchlib.start_py_spy(server, profile, "query-overhead")
            requests: dict[str, Callable[[], httpx.Response]] = {
                # the HTTP stack alone, no query: the floor under the two below
                "GET /health": lambda: client.get("/health")}
            for label, sql in QUERIES.items():
                body = json.dumps({"db": "bench", "q": sql, "format": "json"}).encode()
                requests[label] = lambda body=body: client.post(  # type: ignore[misc]
                    "/api/v3/query_sql", content=body,
                    headers={"Content-Type": "application/json"})
            for label, request in requests.items():
                def once(request: Callable[[], httpx.Response] = request) -> None:
                    r = request()
                    if r.status_code != 200:
                        raise RuntimeError(f"HTTP {r.status_code}: {r.text}")

                once()
                cpu0 = benchlib.tree_cpu(server.pid)
                samples = _time_sync(once, runs)
                cpu = benchlib.tree_cpu(server.pid) - cpu0
                # (the warm-up's CPU is in there too: spread over every query it ran)
                per_query = cpu * 1e3 / (runs + max(10, runs // 10))
                out[f"over HTTP: {label}"] = samples
                out[f"over HTTP, server CPU ms/query: {label}"] = [per_query]
            return out
    finally:
        if spy is not None:
            print("py-spy:", benchlib.stop_py_spy(spy))
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=300, help="timed queries per measure")
    ap.add_argument("--repeat", type=int, default=3, help="times the whole set is run")
    ap.add_argument("--weir-bin", default=benchlib.default_weir_bin())
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-in-process", action="store_true")
    ap.add_argument("--profile", metavar="DIR",
                    help="record the HTTP server with py-spy into DIR (last repeat)")
    ap.add_argument("--json", metavar="PATH", help="write every sample here")
    args = ap.parse_args()
    benchlib.install_cleanup()

    repeats: list[dict[str, list[float]]] = []
    for i in range(args.repeat):
        res: dict[str, list[float]] = {}
        if not args.skip_in_process:
            res.update(asyncio.run(in_process(args.runs)))
        if not args.skip_http:
            last = i == args.repeat - 1
            res.update(over_http(args.runs, args.weir_bin, args.profile if last else None))
        repeats.append(res)
        print(f"repeat {i + 1}/{args.repeat} done, load average "
              f"{_loadavg().split()[0]}", file=sys.stderr)

    print(benchlib.machine_line(benchlib.machine_info()))
    print(f"revision {benchlib.weir_revision()}, {args.runs} runs × {args.repeat} repeats, "
          f"load average now {_loadavg()}")
    rows = []
    for key in repeats[0]:
        if "CPU" in key:
            per = [r[key][0] for r in repeats]
            rows.append([key, f"{statistics.median(per):.2f}", "",
                         " ".join(f"{v:.2f}" for v in per)])
            continue
        stats = [_stats(r[key]) for r in repeats]
        rows.append([key, f"{statistics.median(s['p50'] for s in stats):.2f}",
                     f"{statistics.median(s['p95'] for s in stats):.2f}",
                     " ".join(f"{s['p50']:.2f}/{s['p95']:.2f}" for s in stats)])
    print(benchlib.table(["measure", "p50 ms", "p95 ms", "each repeat p50/p95"], rows))
    if args.json:
        benchlib.write_json(args.json, {"runs": args.runs, "repeats": repeats})


if __name__ == "__main__":
    main()
