"""What a server start costs: CPU seconds and wall time from exec to its health route
answering, and its memory then, Weir beside InfluxDB 1.x.

    .venv/bin/python bench/startup.py [--runs 10] [--targets weir,influxdb] [--json out.json]

Each run starts the server on an empty data dir (Weir: `influxdb3 serve` on the file
object store, without auth; InfluxDB: `influxd` with a throw-away config), asks its
health route every 10 ms until it answers, reads the process tree's CPU time and RSS from
/proc, and stops it. The test suite starts ~600 Weir servers, so this is also most of
what a server costs the suite; users see it on every restart.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib


def _measure(make: benchlib.Server, runs: int) -> dict[str, list[float]]:
    cpu, wall, rss = [], [], []
    progress = benchlib.Progress(make.label, runs, unit="starts")
    for i in range(runs):
        t0 = time.monotonic()
        srv = make.start(poll=0.01)
        wall.append(time.monotonic() - t0)
        cpu.append(benchlib.tree_cpu(srv.pid))
        rss.append(benchlib.tree_rss(srv.pid) / 2**20)
        srv.stop()
        progress.update(i + 1)
    progress.finish()
    return {"cpu_s": cpu, "wall_s": wall, "rss_mib": rss}


def _cell(values: list[float], fmt: str) -> str:
    return (f"{statistics.median(values):{fmt}} "
            f"({min(values):{fmt}}–{max(values):{fmt}})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--runs", type=int, default=10, help="starts per server")
    ap.add_argument("--targets", default="weir,influxdb", help="comma list of weir, influxdb")
    ap.add_argument("--weir-bin", default=benchlib.default_weir_bin())
    ap.add_argument("--influxd", default="/usr/bin/influxd")
    ap.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = ap.parse_args()
    benchlib.install_cleanup()
    makers = {"weir": lambda: benchlib.weir_server(args.weir_bin),
              "influxdb": lambda: benchlib.influxdb_server(args.influxd)}
    results: dict[str, dict[str, list[float]]] = {}
    rows = []
    for name in benchlib.iter_targets(args.targets, {"weir": "Weir", "influxdb": "InfluxDB"}):
        if name == "influxdb" and benchlib.missing_binary(args.influxd, "InfluxDB 1.x"):
            continue
        make = makers[name]()
        r = results[name] = _measure(make, args.runs)
        rows.append([make.label, _cell(r["cpu_s"], ".2f"), _cell(r["wall_s"], ".2f"),
                     _cell(r["rss_mib"], ".0f")])
    print()
    print(f"server start, {args.runs} runs each: median (min–max)")
    print(benchlib.table(["server", "CPU s to healthy", "wall s to healthy",
                          "RSS MiB then"], rows))
    print(benchlib.machine_line(benchlib.machine_info()))
    print(f"weir revision: {benchlib.weir_revision()}")
    if args.json:
        benchlib.write_json(args.json, {"runs": args.runs, "results": results,
                                        "machine": benchlib.machine_info(),
                                        "revision": benchlib.weir_revision()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
