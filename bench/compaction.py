"""Compaction of a closed day: written sorted by series (the compactor's way since issue
#12) against copied in time order (its way before), side by side.

    .venv/bin/python bench/compaction.py [--hosts 1000] [--modes sorted,copy]

One TSBS `cpu` day, two days ago (`--hosts` hosts, one row each every 10 s: 8,640 rows per
host), is written into a real `weir.database.Database` on the file object store, an hour
at a time, each hour snapshotted (144 ten-minute gen1 files). Then, for each mode, a fresh
process opens a copy of that data dir and compacts until nothing is left to do (ten-minute
windows, then hours, then the day), and reports the compaction's wall and CPU seconds,
its peak RSS over the process's RSS before it, the files left, and the p50 of a one-host
query over 12 hours of the day (`single-groupby-5-1-12`) on the result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import benchlib

DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
DB = "bench"


def _config(data_dir: Path):  # type: ignore[no-untyped-def]
    from weir.config import ServeConfig

    plugins = data_dir.parent / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    return ServeConfig(data_dir=data_dir, object_store="file", plugin_dir=plugins,
                       compaction_interval=0, wal_snapshot_size=10**7,
                       wal_flush_interval=0.01)


def _day_start() -> int:
    return (time.time_ns() // DAY_NS - 2) * DAY_NS


async def _load(data_dir: Path, hosts: int) -> dict[str, float]:
    from weir.database import Database

    day = _day_start()
    ds = benchlib.CpuDataset(lines=hosts * 8640, hosts=hosts, end_ns=day + DAY_NS - 10**10)
    prefixes = ds.prefixes()
    db = Database(_config(data_dir))
    await db.start()
    started = time.perf_counter()
    progress = benchlib.Progress("load", 24, unit="hours")
    try:
        per_hour = hosts * 360
        for hour in range(24):
            for i in range(hour * per_hour, (hour + 1) * per_hour, 5000):
                end = min(i + 5000, (hour + 1) * per_hour)
                await db.write_lp(DB, ds.chunk(i, end, prefixes).decode())
            await db.snapshot()
            progress.update(hour + 1)
        files = len(db.index.all())
    finally:
        await db.stop()
    return {"rows": ds.lines, "files": files, "seconds": time.perf_counter() - started}


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _compact(data_dir: Path, mode: str, hosts: int) -> dict[str, object]:
    """Run in a process of its own (its peak RSS is the compaction's)."""
    import weir.persist.compactor as compactor
    from weir.database import Database
    from weir.persist.series_order import copy_in_time_order

    if mode == "copy":  # the compactor before issue #12's series order
        def copy(inputs, schema, write, *, keep, budget_rows):  # type: ignore[no-untyped-def]
            copy_in_time_order(inputs, schema, write, keep)
            return False

        compactor.write_series_sorted = copy  # type: ignore[assignment]
    db = Database(_config(data_dir))
    await db.start()
    try:
        rss_before = _rss_mib()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        jobs = 0
        while (n := await asyncio.to_thread(db.compact)) > 0:
            jobs += n
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        history = list(db.compactor.history)
        day = _day_start()
        rng = random.Random(1)
        fields = ", ".join(f"max({f})" for f in benchlib.FIELDS[:5])
        latencies = []
        for _ in range(25):
            host = f"host_{rng.randrange(hosts)}"
            start = day + rng.randrange(0, 12 * 60) * 60 * 10**9
            sql = (f"SELECT date_bin(INTERVAL '1 minute', time) AS minute, {fields} FROM cpu "
                   f"WHERE hostname = '{host}' AND time >= to_timestamp_nanos({start}) "
                   f"AND time < to_timestamp_nanos({start + 12 * HOUR_NS}) "
                   "GROUP BY minute ORDER BY minute")
            t0 = time.perf_counter()
            rows = (await db.query(DB, sql)).num_rows
            latencies.append((time.perf_counter() - t0) * 1000)
            assert rows == 720, rows
        return {"mode": mode, "jobs": jobs, "wall_s": wall, "cpu_s": cpu,
                "rss_before_mib": rss_before, "rss_peak_mib": peak,
                "files": len(db.index.all()),
                "day_job_s": max((r.duration_ms for r in history), default=0) / 1000,
                "failed": sum(r.status != "ok" for r in history),
                "query_p50_ms": statistics.median(latencies[5:])}
    finally:
        await db.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--modes", default="sorted,copy", help="comma list of sorted, copy")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    ap.add_argument("--compact-only", nargs=2, metavar=("DIR", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.compact_only:
        print(json.dumps(asyncio.run(_compact(Path(args.compact_only[0]),
                                              args.compact_only[1], args.hosts))))
        return
    root = Path(tempfile.mkdtemp(prefix="weir-bench-compaction-"))
    try:
        loaded = asyncio.run(_load(root / "loaded" / "data", args.hosts))
        print(f"loaded {loaded['rows']:,} rows of one day in {loaded['seconds']:.0f} s: "
              f"{loaded['files']} Parquet files", flush=True)
        results = []
        for mode in args.modes.split(","):
            work = root / mode
            shutil.copytree(root / "loaded", work)
            print(f"compacting ({mode}) ...", flush=True)
            out = subprocess.run([sys.executable, __file__, "--hosts", str(args.hosts),
                                  "--compact-only", str(work / "data"), mode],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"compaction ({mode}) failed:\n{out.stderr}")
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            shutil.rmtree(work)
        print(benchlib.machine_line(benchlib.machine_info()))
        print(f"weir revision {benchlib.weir_revision()}, {args.hosts} hosts x 24 h at 10 s")
        print(benchlib.table(
            ["mode", "jobs", "failed", "wall s", "CPU s", "day job s", "RSS before → peak MiB",
             "files", "1 host, 12 h: p50 ms"],
            [[r["mode"], str(r["jobs"]), str(r["failed"]), f"{r['wall_s']:.1f}",
              f"{r['cpu_s']:.1f}", f"{r['day_job_s']:.1f}",
              f"{r['rss_before_mib']:.0f} → {r['rss_peak_mib']:.0f}", str(r["files"]),
              f"{r['query_p50_ms']:.1f}"] for r in results]))
        if args.json:
            benchlib.write_json(args.json, {"hosts": args.hosts, "loaded": loaded,
                                            "results": results})
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
