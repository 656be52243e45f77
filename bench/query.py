"""Query benchmark: Weir (SQL) vs InfluxDB 1.x (equivalent InfluxQL) on TSBS `cpu` data.

    .venv/bin/python bench/query.py [--hosts 100] [--minutes 60] [--iterations 50]
        [--targets weir,influxdb] [--json OUT]

Loads hosts x minutes of cpu data at 10 s (the generator of bench/ingest.py) into a fresh
server per target, then times each query `--iterations` times over one keep-alive
connection (after `--warmup` untimed runs) and reports p50/p95/p99 latency in ms,
client-side, including HTTP and reading the whole response. See bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    CpuDataset,
    HttpClient,
    Progress,
    Server,
    ServerError,
    aligned_end_ns,
    default_weir_bin,
    influxdb_server,
    install_cleanup,
    iter_targets,
    machine_info,
    machine_line,
    missing_binary,
    percentile,
    rfc3339,
    start_py_spy,
    stop_py_spy,
    table,
    tree_rss,
    warn,
    weir_revision,
    weir_server,
    write_json,
)

TARGETS = {"weir": "Weir (SQL)", "influxdb": "InfluxDB 1.x (InfluxQL)"}
SHORT = {"weir": "Weir", "influxdb": "InfluxDB"}
WRITE_PATH = {"weir": "/api/v3/write_lp?db=bench", "influxdb": "/write?db=bench&precision=ns"}
MIN_NS = 60 * 1_000_000_000


@dataclass
class Query:
    name: str
    description: str
    expected_rows: Callable[[CpuDataset], int]
    sql: Callable[[CpuDataset, str], str]
    influxql: Callable[[CpuDataset, str], str]
    sql_fallback: Callable[[CpuDataset, str], str] | None = None


def _t(ns: int) -> str:
    return f"'{rfc3339(ns)}'"


def _hour(ds: CpuDataset) -> str:
    """The last 60 whole minutes that the data reaches into."""
    end = (ds.end_ns + ds.interval_s * 1_000_000_000) // MIN_NS * MIN_NS
    return f"time >= {_t(end - 60 * MIN_NS)} AND time < {_t(end)}"


QUERIES = [
    Query(
        "point lookup",
        "one host, one field, the last minute of data",
        lambda ds: 6 * 10 // ds.interval_s if ds.interval_s <= 60 else 1,
        lambda ds, h: (f"SELECT time, usage_user FROM cpu WHERE hostname = '{h}' "
                       f"AND time > {_t(ds.end_ns - MIN_NS)} AND time <= {_t(ds.end_ns)} "
                       f"ORDER BY time"),
        lambda ds, h: (f"SELECT usage_user FROM cpu WHERE hostname = '{h}' "
                       f"AND time > {_t(ds.end_ns - MIN_NS)} AND time <= {_t(ds.end_ns)}"),
    ),
    Query(
        "last value per host",
        "usage_user at the newest timestamp of every host (whole table)",
        lambda ds: ds.hosts,
        lambda ds, h: ("SELECT hostname, last_value(usage_user ORDER BY time) AS usage_user "
                       "FROM cpu GROUP BY hostname"),
        lambda ds, h: "SELECT last(usage_user) FROM cpu GROUP BY hostname",
        lambda ds, h: ("SELECT DISTINCT ON (hostname) hostname, usage_user FROM cpu "
                       "ORDER BY hostname, time DESC"),
    ),
    Query(
        "1-min avg, 1 host, 1 h",
        "avg(usage_user) per minute over the last hour for one host",
        lambda ds: min(60, -(-ds.steps * ds.interval_s // 60)),
        lambda ds, h: (f"SELECT date_bin(INTERVAL '1 minute', time) AS minute, "
                       f"avg(usage_user) AS usage_user FROM cpu WHERE hostname = '{h}' "
                       f"AND {_hour(ds)} GROUP BY 1 ORDER BY 1"),
        lambda ds, h: (f"SELECT mean(usage_user) FROM cpu WHERE hostname = '{h}' "
                       f"AND {_hour(ds)} GROUP BY time(1m) fill(none)"),
    ),
]


class Target:
    def __init__(self, name: str, server: Server, timeout: float) -> None:
        self.name = name
        self.server = server
        self.client = HttpClient(server.port, timeout)

    def run(self, q: str) -> tuple[int, bytes]:
        if self.name == "weir":
            return self.client.get("/api/v3/query_sql", {"db": "bench", "q": q, "format": "json"})
        return self.client.get("/query", {"db": "bench", "q": q, "epoch": "ns"})

    def rows(self, body: bytes) -> int:
        doc = json.loads(body)
        if self.name == "weir":
            return len(doc)
        res = doc["results"][0]
        if "error" in res:
            raise ValueError(res["error"])
        return sum(len(s["values"]) for s in res.get("series", []))


def load(target: Target, ds: CpuDataset, batch: int, label: str) -> float:
    prefixes = ds.prefixes()
    n = ds.n_batches(batch)
    warn(f"[{label}] generating {ds.lines:,} lines...")
    batches = [ds.batch(i, batch, prefixes) for i in range(n)]
    progress = Progress(f"{label} load", n)
    t0 = time.perf_counter()
    for i, b in enumerate(batches):
        status, body = target.client.post(WRITE_PATH[target.name], b)
        if not 200 <= status < 300:
            raise RuntimeError(f"write failed: HTTP {status}: {body[:300]!r}")
        progress.update(i + 1)
    wall = time.perf_counter() - t0
    progress.finish(f"loaded {ds.lines:,} lines in {wall:.2f}s")
    return wall


def bench_target(target: Target, ds: CpuDataset, args: argparse.Namespace,
                 label: str) -> dict:
    out: dict = {"load_s": load(target, ds, args.batch, label), "queries": {}}
    hosts = [f"host_{(i * 7) % ds.hosts}" for i in range(args.iterations + args.warmup)]
    for q in QUERIES:
        make = q.sql if target.name == "weir" else q.influxql
        text = make(ds, hosts[0])
        status, body = target.run(text)
        if status != 200 and target.name == "weir" and q.sql_fallback:
            warn(f"[{label}] {q.name}: HTTP {status} {body[:200]!r}; trying the fallback form")
            make = q.sql_fallback
            text = make(ds, hosts[0])
            status, body = target.run(text)
        r: dict = {"query": text}
        out["queries"][q.name] = r
        try:
            if status != 200:
                raise ValueError(f"HTTP {status}: {body[:300]!r}")
            r["rows"] = target.rows(body)
        except (ValueError, KeyError, IndexError) as e:
            r["error"] = str(e)
            warn(f"[{label}] {q.name}: FAILED: {e}")
            continue
        exp = q.expected_rows(ds)
        if r["rows"] != exp:
            r["note"] = f"returned {r['rows']} rows, expected {exp}"
            warn(f"[{label}] {q.name}: {r['note']}")
        lat: list[float] = []
        progress = Progress(f"{label} {q.name}", args.iterations, "runs", step=50)
        failures = 0
        for i, h in enumerate(hosts):
            qtext = make(ds, h)
            t0 = time.perf_counter()
            try:
                status, body = target.run(qtext)
            except (OSError, http.client.HTTPException) as e:
                status, body = 0, str(e).encode()
            dt = time.perf_counter() - t0
            if status != 200:
                failures += 1
                r.setdefault("error", f"HTTP {status}: {body[:300]!r}")
                if failures >= 3:
                    break
                continue
            if i >= args.warmup:
                lat.append(dt)
                progress.update(len(lat))
        progress.finish()
        lat.sort()
        r.update({"n": len(lat), "p50_ms": percentile(lat, 50) * 1000,
                  "p95_ms": percentile(lat, 95) * 1000, "p99_ms": percentile(lat, 99) * 1000,
                  "min_ms": lat[0] * 1000 if lat else None,
                  "max_ms": lat[-1] * 1000 if lat else None})
    out["rss_mib"] = tree_rss(target.server.pid) / 2**20
    return out


def fmt_ms(v: object) -> str:
    return "-" if v is None or v != v else f"{v:.2f}"


def print_report(results: dict, ds: CpuDataset, args: argparse.Namespace, info: dict) -> None:
    print()
    print(f"query: {ds.lines:,} rows of TSBS cpu ({ds.hosts} hosts x {ds.steps} points at "
          f"{ds.interval_s}s = {ds.steps * ds.interval_s / 60:.0f} min), {args.iterations} "
          f"timed runs per query after {args.warmup} warm-up, latency in ms (client side)")
    cols = [t for t in results if "error" not in results[t]]
    header = ["query", *(f"{SHORT[t]} {p}" for t in cols for p in ("p50", "p95", "p99")),
              *(["Weir/Influx p50"] if {"weir", "influxdb"} <= set(cols) else [])]
    rows = []
    for q in QUERIES:
        row = [q.name]
        for t in cols:
            r = results[t]["queries"].get(q.name, {})
            row += [fmt_ms(r.get("p50_ms")), fmt_ms(r.get("p95_ms")), fmt_ms(r.get("p99_ms"))]
        if len(header) > len(row):
            w = results["weir"]["queries"].get(q.name, {}).get("p50_ms")
            i = results["influxdb"]["queries"].get(q.name, {}).get("p50_ms")
            row.append(f"{w / i:.2f}x" if w and i else "-")
        rows.append(row)
    rows.append(["(load time, s)", *(x for t in cols for x in
                                      (f"{results[t]['load_s']:.2f}", "", ""))])
    if len(header) > len(rows[-1]):
        rows[-1].append("")
    print(table(header, rows))
    for t, res in results.items():
        if "error" in res:
            print(f"  {TARGETS[t]}: {res['error']}")
            continue
        for qn, r in res["queries"].items():
            for k in ("error", "note"):
                if r.get(k):
                    print(f"  {TARGETS[t]} / {qn}: {r[k]}")
    print("queries:")
    for q in QUERIES:
        print(f"  {q.name}: {q.description}")
        for t in cols:
            print(f"    {t}: {results[t]['queries'].get(q.name, {}).get('query', '')}")
    print(machine_line(info))
    if "weir" in results:
        print(f"weir revision: {weir_revision() or '?'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--hosts", type=int, default=100, help="distinct hosts")
    ap.add_argument("--minutes", type=int, default=60, help="span of data at 10 s per host")
    ap.add_argument("--iterations", type=int, default=50, help="timed runs per query")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs per query first")
    ap.add_argument("--batch", type=int, default=5000, help="lines per write while loading")
    ap.add_argument("--targets", default="weir,influxdb", help=f"comma list of {', '.join(TARGETS)}")
    ap.add_argument("--wal-flush-interval", default="1s", help="passed to Weir")
    ap.add_argument("--weir-bin", default=default_weir_bin(), help="Weir's influxdb3 executable")
    ap.add_argument("--weir-args", default="", help="extra `serve` flags for Weir")
    ap.add_argument("--influxd", default="/usr/bin/influxd")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    ap.add_argument("--start-timeout", type=float, default=60.0)
    ap.add_argument("--data-root", metavar="DIR",
                    help="put the servers' temp data dirs under DIR, e.g. /dev/shm to take "
                         "the disk out; unset (None) means the system temp dir")
    ap.add_argument("--seed", type=int, default=1, help="seed of the generated values")
    ap.add_argument("--py-spy", metavar="DIR",
                    help="record a py-spy profile of Weir (load + queries) into DIR")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = ap.parse_args()
    if args.hosts < 1 or args.minutes < 1 or args.iterations < 1 or args.warmup < 0:
        ap.error("--hosts, --minutes and --iterations must be positive")
    targets = list(iter_targets(args.targets, TARGETS))
    install_cleanup()
    info = machine_info()
    warn(machine_line(info))
    ds = CpuDataset(lines=args.hosts * args.minutes * 6, hosts=args.hosts,
                    end_ns=aligned_end_ns(), seed=args.seed)
    results: dict[str, dict] = {}
    for t in targets:
        label = TARGETS[t]
        if t == "weir":
            if not Path(args.weir_bin).exists() and not shutil.which(args.weir_bin):
                warn(f"Weir: {args.weir_bin} not found (run `bash scripts/setup.sh`); skipping")
                continue
            server = weir_server(args.weir_bin, args.wal_flush_interval,
                                 shlex.split(args.weir_args))
        else:
            if missing_binary(args.influxd, "InfluxDB 1.x"):
                continue
            server = influxdb_server(args.influxd)
        server.data_root = args.data_root
        target = None
        profiler = None
        try:
            warn(f"[{label}] starting server...")
            server.start(args.start_timeout)
            target = Target(t, server, args.timeout)
            if t == "influxdb":
                status, body = target.client.post(
                    "/query", b"q=CREATE+DATABASE+bench",
                    content_type="application/x-www-form-urlencoded")
                if status != 200:
                    raise ServerError(f"CREATE DATABASE failed: HTTP {status} {body[:200]!r}")
            if args.py_spy and t == "weir":
                profiler = start_py_spy(server, args.py_spy, "weir-query")
            results[t] = bench_target(target, ds, args, label)
            stop_py_spy(profiler)
            profiler = None
        except (ServerError, RuntimeError, OSError, http.client.HTTPException) as e:
            warn(f"[{label}] FAILED: {e}")
            if server.alive() is False and server.log_path:
                warn(server.log_tail())
            results[t] = {"error": str(e).splitlines()[0] if str(e) else type(e).__name__}
        finally:
            stop_py_spy(profiler)
            if target is not None:
                target.client.close()
            server.stop()
    if results:
        print_report(results, ds, args, info)
    if args.json:
        write_json(args.json, {"benchmark": "query", "machine": info, "params": vars(args),
                               "weir_revision": weir_revision(),
                               "dataset": {"lines": ds.lines, "hosts": ds.hosts,
                                           "steps": ds.steps, "start_ns": ds.start_ns,
                                           "end_ns": ds.end_ns},
                               "results": results})
    ok = results and all("error" not in r and all("error" not in q for q in r["queries"].values())
                         for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        warn("interrupted; servers stopped")
        sys.exit(130)
