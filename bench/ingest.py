"""Ingest benchmark: Weir vs InfluxDB 1.x vs VictoriaMetrics on the TSBS `cpu` data set.

    .venv/bin/python bench/ingest.py [--lines 1000000] [--hosts 100] [--batch 5000]
        [--clients 2] [--targets weir,weir-v1,influxdb,victoriametrics] [--json OUT]

Each target gets a fresh server on 127.0.0.1 with a temporary data dir. `--clients`
load-generating processes pre-build their share of the batches before the clock starts,
then POST them over keep-alive HTTP connections. Reported per target: lines/s, field
values/s, wall time, per-batch latency, peak server RSS (process tree, sampled every
100 ms), server CPU time, and the row count read back afterwards. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import queue
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    FIELDS,
    HOST,
    CpuDataset,
    HttpClient,
    Progress,
    Sampler,
    Server,
    ServerError,
    aligned_end_ns,
    binary_version,
    cpu_times,
    default_weir_bin,
    influxdb_server,
    install_cleanup,
    iter_targets,
    machine_info,
    machine_line,
    missing_binary,
    percentile,
    start_py_spy,
    stop_py_spy,
    table,
    tree_cpu,
    victoriametrics_server,
    warn,
    weir_revision,
    weir_server,
    write_json,
)

TARGETS = {
    "weir": "Weir (v3 write_lp)",
    "weir-v1": "Weir (v1 /write)",
    "influxdb": "InfluxDB 1.x",
    "victoriametrics": "VictoriaMetrics",
}
WRITE_PATH = {
    "weir": "/api/v3/write_lp?db=bench",
    "weir-v1": "/write?db=bench&precision=ns",
    "influxdb": "/write?db=bench&precision=ns",
    "victoriametrics": "/write?db=bench&precision=ns",
}
GOALS = (("influxdb", 1.0), ("victoriametrics", 0.5))  # Weir / X on lines/s

# --------------------------------------------------------------------------------------
# Load-generating processes
# --------------------------------------------------------------------------------------


def _worker(idx: int, nclients: int, ds: CpuDataset, batch: int, cmd_q: mp.Queue,
            res_q: mp.Queue, sent: mp.Value, abort: mp.Value, barrier: mp.Barrier) -> None:
    """Build batches idx, idx+n, idx+2n, ... then, per command, send them all."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    t = time.perf_counter()
    prefixes = ds.prefixes()
    batches = [ds.batch(i, batch, prefixes) for i in range(idx, ds.n_batches(batch), nclients)]
    lines = [b.count(b"\n") for b in batches]
    res_q.put(("ready", idx, len(batches), sum(map(len, batches)), time.perf_counter() - t))
    while True:
        cmd = cmd_q.get()
        if cmd is None:
            return
        port, path, timeout = cmd
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        try:
            conn.connect()
        except OSError as e:
            res_q.put(("failed", idx, f"connect: {e}"))
            with contextlib.suppress(Exception):  # best effort: the parent sees the failure
                barrier.abort()
            continue
        try:
            barrier.wait(timeout=120)
        except Exception as e:  # noqa: BLE001 - the parent waits for one message from each client
            res_q.put(("failed", idx, f"start barrier: {type(e).__name__}"))
            conn.close()
            continue
        t0 = time.perf_counter()
        lat: list[float] = []
        ok_lines = errors = consecutive = 0
        first_error = ""
        for b, n in zip(batches, lines, strict=True):
            if abort.value:
                break
            s = time.perf_counter()
            try:
                conn.request("POST", path, body=b,
                             headers={"Content-Type": "text/plain; charset=utf-8"})
                resp = conn.getresponse()
                body = resp.read()
                if 200 <= resp.status < 300:
                    ok_lines += n
                    consecutive = 0
                else:
                    errors += 1
                    consecutive += 1
                    first_error = first_error or f"HTTP {resp.status}: {body[:300]!r}"
            except (OSError, http.client.HTTPException) as e:
                errors += 1
                consecutive += 1
                first_error = first_error or f"{type(e).__name__}: {e}"
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
            lat.append(time.perf_counter() - s)
            with sent.get_lock():
                sent.value += 1
            if consecutive >= 5:  # the server is gone or refusing everything: stop
                first_error += " (gave up after 5 consecutive failures)"
                break
        t1 = time.perf_counter()
        conn.close()
        res_q.put(("done", idx, t0, t1, ok_lines, errors, first_error, lat))


@dataclass
class LoadGenerators:
    ds: CpuDataset
    batch: int
    nclients: int

    def __enter__(self) -> LoadGenerators:
        ctx = mp.get_context("fork")
        self.res_q = ctx.Queue()
        self.cmd_qs = [ctx.Queue() for _ in range(self.nclients)]
        self.sent = ctx.Value("l", 0)
        self.abort = ctx.Value("i", 0)
        self.barrier = ctx.Barrier(self.nclients + 1)
        self.procs = [ctx.Process(target=_worker, daemon=True, name=f"bench-client-{i}",
                                  args=(i, self.nclients, self.ds, self.batch, self.cmd_qs[i],
                                        self.res_q, self.sent, self.abort, self.barrier))
                      for i in range(self.nclients)]
        for p in self.procs:
            p.start()
        n = self.ds.n_batches(self.batch)
        warn(f"generating {n} batches of {self.batch} lines ({self.ds.lines} lines, "
             f"{self.ds.hosts} hosts) in {self.nclients} client process(es)...")
        self.total_bytes = 0
        gen = 0.0
        for _ in self.procs:
            msg = self._get(600, "batch generation")
            self.total_bytes += msg[3]
            gen = max(gen, msg[4])
        warn(f"generated {self.total_bytes / 2**20:.1f} MiB of line protocol "
             f"({self.total_bytes / self.ds.lines:.0f} B/line) in {gen:.1f}s")
        return self

    def _get(self, timeout: float, what: str) -> tuple:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self.res_q.get(timeout=0.5)
            except queue.Empty:
                if any(not p.is_alive() for p in self.procs):
                    raise RuntimeError(f"a client process died during {what}") from None
        raise RuntimeError(f"timed out during {what}")

    def __exit__(self, *exc: object) -> None:
        self.abort.value = 1
        for q in self.cmd_qs:
            with contextlib.suppress(Exception):  # best effort: stragglers are killed below
                q.put(None)
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()

    def run(self, label: str, server: Server, path: str, timeout: float,
            max_seconds: float) -> dict:
        """Send every batch to `server` at `path`; sample its memory while that runs."""
        self.sent.value = 0
        self.abort.value = 0
        n_batches = self.ds.n_batches(self.batch)
        sampler = Sampler(server.pid)
        sampler.sample(0)
        rss_before = sampler.peak
        cpu0 = tree_cpu(server.pid)
        steal0, total0 = cpu_times()
        for q in self.cmd_qs:
            q.put((server.port, path, timeout))
        try:
            self.barrier.wait(timeout=120)
        except threading.BrokenBarrierError:  # a client aborted it, or it timed out
            self.barrier.reset()
            msgs = []
            while True:
                try:
                    msgs.append(self.res_q.get(timeout=1))
                except queue.Empty:
                    break
            raise RuntimeError(f"{label}: clients could not start: {msgs}") from None
        t_start = time.monotonic()
        progress = Progress(label, n_batches)
        done: list[tuple] = []
        note = ""
        while len(done) < self.nclients:
            try:
                msg = self.res_q.get(timeout=0.1)
                if msg[0] == "done":
                    done.append(msg)
                elif msg[0] == "failed":
                    raise RuntimeError(f"{label}: client {msg[1]} failed: {msg[2]}")
            except queue.Empty:
                pass
            sampler.sample()
            progress.update(self.sent.value, f"RSS {sampler.peak / 2**20:.0f} MiB")
            if not server.alive() and not self.abort.value:
                self.abort.value = 1
                note = f"server exited with code {server.proc.returncode} during ingest"
            if time.monotonic() - t_start > max_seconds and not self.abort.value:
                self.abort.value = 1
                note = f"stopped after --max-seconds {max_seconds:.0f}"
            if any(not p.is_alive() for p in self.procs):
                raise RuntimeError(f"{label}: a client process died")
        sampler.sample(0)
        cpu = tree_cpu(server.pid) - cpu0 if server.alive() else float("nan")
        steal1, total1 = cpu_times()
        steal_pct = 100 * (steal1 - steal0) / (total1 - total0) if total1 > total0 else None
        progress.finish()
        t0 = min(m[2] for m in done)
        t1 = max(m[3] for m in done)
        wall = t1 - t0
        ok_lines = sum(m[4] for m in done)
        errors = sum(m[5] for m in done)
        first_error = next((m[6] for m in done if m[6]), "")
        lat = sorted(x for m in done for x in m[7])
        return {
            "wall_s": wall,
            "lines_sent": self.ds.lines,
            "lines_ok": ok_lines,
            "batches": len(lat),
            "errors": errors,
            "first_error": first_error,
            "note": note,
            "lines_per_s": ok_lines / wall if wall > 0 else 0.0,
            "field_values_per_s": ok_lines * len(FIELDS) / wall if wall > 0 else 0.0,
            "mib_per_s": self.total_bytes / 2**20 / wall if wall > 0 and not errors else None,
            "batch_p50_ms": percentile(lat, 50) * 1000,
            "batch_p99_ms": percentile(lat, 99) * 1000,
            "rss_before_mib": rss_before / 2**20,
            "peak_rss_mib": sampler.peak / 2**20,
            "rss_samples": sampler.samples,
            "server_cpu_s": cpu,
            "lines_per_cpu_s": ok_lines / cpu if cpu and cpu == cpu else None,
            "cpu_steal_pct": steal_pct,
        }


# --------------------------------------------------------------------------------------
# Row counts
# --------------------------------------------------------------------------------------


def count_rows(target: str, server: Server, ds: CpuDataset,
               timeout: float) -> tuple[int | None, float | None, str]:
    """(rows found, sum of usage_user, how it was counted); None when it could not be
    read. The sum is a cheap check that the values were parsed the same everywhere."""
    c = HttpClient(server.port, timeout)
    try:
        if target.startswith("weir"):
            q = "SELECT count(*) AS n, sum(usage_user) AS s FROM cpu"
            status, body = c.get("/api/v3/query_sql", {"db": "bench", "q": q, "format": "json"})
            if status != 200:
                return None, None, f"{q}: HTTP {status}: {body[:200]!r}"
            row = json.loads(body)[0]
            return int(row["n"]), float(row["s"]), q
        if target == "influxdb":
            q = "SELECT count(usage_user), sum(usage_user) FROM cpu"
            status, body = c.get("/query", {"db": "bench", "q": q})
            if status != 200:
                return None, None, f"{q}: HTTP {status}: {body[:200]!r}"
            series = json.loads(body)["results"][0].get("series")
            if not series:
                return 0, None, q
            return int(series[0]["values"][0][1]), float(series[0]["values"][0][2]), q
        if target == "victoriametrics":
            c.get("/internal/force_flush")
            span = (ds.steps + 6) * ds.interval_s
            sel = f'cpu_usage_user{{db="bench"}}[{span}s]'
            q = f"sum(count_over_time({sel})), sum(sum_over_time({sel}))"
            at = str(ds.end_ns // 1_000_000_000 + 30)
            n = 0
            for _ in range(20):  # newly flushed parts become searchable within seconds
                status, body = c.get("/api/v1/query", {"query": f"sum(count_over_time({sel}))",
                                                       "time": at})
                if status != 200:
                    return None, None, f"{q}: HTTP {status}: {body[:200]!r}"
                res = json.loads(body)["data"]["result"]
                n = int(float(res[0]["value"][1])) if res else 0
                if n >= ds.lines:
                    break
                time.sleep(0.5)
            status, body = c.get("/api/v1/query", {"query": f"sum(sum_over_time({sel}))",
                                                   "time": at})
            res = json.loads(body)["data"]["result"] if status == 200 else []
            return n, (float(res[0]["value"][1]) if res else None), q
    except (OSError, http.client.HTTPException, ValueError, KeyError, IndexError,
            TypeError) as e:
        return None, None, f"{type(e).__name__}: {e}"
    finally:
        c.close()
    return None, None, "not counted"


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def make_server(target: str, args: argparse.Namespace, quiet: bool = False) -> Server | None:
    if target.startswith("weir"):
        if not Path(args.weir_bin).exists() and not shutil.which(args.weir_bin):
            if not quiet:
                warn(f"Weir: {args.weir_bin} not found (run `bash scripts/setup.sh`); skipping")
            return None
        return weir_server(args.weir_bin, args.wal_flush_interval, shlex.split(args.weir_args))
    if target == "influxdb":
        return (None if missing_binary(args.influxd, "InfluxDB 1.x", quiet)
                else influxdb_server(args.influxd))
    if target == "victoriametrics":
        return (None if missing_binary(args.victoria_metrics, "VictoriaMetrics", quiet)
                else victoriametrics_server(args.victoria_metrics))
    return None


def versions(args: argparse.Namespace, targets: list[str]) -> dict[str, str]:
    out = {}
    if "influxdb" in targets and os.path.exists(args.influxd):
        out["influxdb"] = binary_version([args.influxd, "version"])
    if "victoriametrics" in targets and os.path.exists(args.victoria_metrics):
        out["victoriametrics"] = binary_version(["dpkg-query", "-W", "-f=${Version}",
                                                 "victoria-metrics"])
    if any(t.startswith("weir") for t in targets):
        out["weir"] = " ".join(x for x in (
            binary_version([sys.executable, "-c",
                            "import weir; print(getattr(weir, '__version__', '?'))"]),
            weir_revision()) if x)
    return out


def fmt(v: object, spec: str = ",.0f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v != v:
        return "-"
    return format(v, spec) if isinstance(v, int | float) else str(v)


def print_report(results: dict[str, dict], ds: CpuDataset, info: dict, params: dict,
                 vers: dict) -> dict[str, dict]:
    cols = list(results)
    header = ["", *(TARGETS[t] for t in cols)]
    R = [results[t] for t in cols]
    rows = [
        ["lines written", *(fmt(r.get("lines_ok")) for r in R)],
        ["wall time (s)", *(fmt(r.get("wall_s"), ".2f") for r in R)],
        ["lines/s", *(fmt(r.get("lines_per_s")) for r in R)],
        *([["lines/s min..max", *(f"{fmt(r.get('lines_per_s_min'))}..{fmt(r.get('lines_per_s_max'))}"
                                   if "lines_per_s_min" in r else "-" for r in R)]]
          if params["repeat"] > 1 else []),
        ["field values/s", *(fmt(r.get("field_values_per_s")) for r in R)],
        ["MiB/s of line protocol", *(fmt(r.get("mib_per_s"), ".1f") for r in R)],
        ["batch latency p50 (ms)", *(fmt(r.get("batch_p50_ms"), ".1f") for r in R)],
        ["batch latency p99 (ms)", *(fmt(r.get("batch_p99_ms"), ".1f") for r in R)],
        ["peak server RSS (MiB)", *(fmt(r.get("peak_rss_mib")) for r in R)],
        ["server CPU (s)", *(fmt(r.get("server_cpu_s"), ".1f") for r in R)],
        ["lines per server CPU-second", *(fmt(r.get("lines_per_cpu_s")) for r in R)],
        ["machine CPU steal (%)", *(fmt(r.get("cpu_steal_pct"), ".1f") for r in R)],
        ["data dir after stop (MiB)", *(fmt(r.get("disk_mib"), ".1f") for r in R)],
        ["rows read back", *(fmt(r.get("rows")) for r in R)],
        ["sum(usage_user) read back", *(fmt(r.get("sum_usage_user"), ",.2f") for r in R)],
        ["failed batches", *(fmt(r.get("errors")) for r in R)],
    ]
    print()
    print(f"ingest: {ds.lines:,} lines of TSBS cpu ({ds.hosts} hosts x {ds.steps} points, "
          f"{len(FIELDS)} fields, 10 tags), batches of {params['batch']}, "
          f"{params['clients']} client process(es), Weir --wal-flush-interval "
          f"{params['wal_flush_interval']}"
          + (f"; median of {params['repeat']} runs per target" if params["repeat"] > 1 else "")
          + f"; data dirs under {params['data_root'] or tempfile.gettempdir()}")
    print(table(header, rows))
    for t, r in results.items():
        for k in ("error", "first_error", "note", "count_note"):
            if r.get(k):
                print(f"  {TARGETS[t]}: {k.replace('_', ' ')}: {r[k]}")
    print()
    ratios: dict[str, dict] = {}
    weir = results.get("weir", {}).get("lines_per_s")
    for other, goal in GOALS:
        ref = results.get(other, {}).get("lines_per_s")
        if weir and ref:
            ratio = weir / ref
            ratios[other] = {"ratio": ratio, "goal": goal, "met": ratio >= goal}
            print(f"Weir/{TARGETS[other]:<16} {ratio:5.2f}x  (goal >= {goal:.1f}x: "
                  f"{'met' if ratio >= goal else 'NOT met'})")
        else:
            print(f"Weir/{TARGETS[other]:<16}   n/a  (goal >= {goal:.1f}x)")
    v1 = results.get("weir-v1", {}).get("lines_per_s")
    if weir and v1:
        print(f"Weir v1 /write vs v3 write_lp: {v1 / weir:.2f}x")
    print(machine_line(info))
    if vers:
        print("versions: " + ", ".join(f"{k} {v}" for k, v in vers.items() if v))
    return ratios


def run_target(target: str, label: str, server: Server, gens: LoadGenerators,
               ds: CpuDataset, args: argparse.Namespace, spy: bool) -> dict:
    """One fresh server, one full ingest, the row count, a clean stop."""
    profiler = None
    try:
        warn(f"[{label}] starting server...")
        server.start(args.start_timeout)
        if target == "influxdb":
            c = HttpClient(server.port, args.timeout)
            status, body = c.post("/query", b"q=CREATE+DATABASE+bench",
                                  content_type="application/x-www-form-urlencoded")
            c.close()
            if status != 200:
                raise ServerError(f"CREATE DATABASE failed: HTTP {status} {body[:200]!r}")
        if spy and args.py_spy and target.startswith("weir"):
            profiler = start_py_spy(server, args.py_spy, target)
        r = gens.run(label, server, WRITE_PATH[target], args.timeout, args.max_seconds)
        stop_py_spy(profiler)
        profiler = None
        warn(f"[{label}] {r['lines_ok']:,} lines in {r['wall_s']:.2f}s = "
             f"{r['lines_per_s']:,.0f} lines/s; counting rows...")
        rows, total, how = count_rows(target, server, ds, args.timeout)
        r["rows"], r["sum_usage_user"], r["count_query"] = rows, total, how
        if rows is None:
            r["count_note"] = f"row count failed: {how}"
        elif rows != r["lines_ok"]:
            r["count_note"] = f"expected {r['lines_ok']:,} rows, found {rows:,} ({how})"
        if not server.alive():
            r["note"] = (r.get("note") or "server died") + "\n--- log tail ---\n" + \
                server.log_tail()
        t = time.monotonic()
        server.stop(remove=False)  # a clean shutdown, then measure what is on disk
        r["shutdown_s"] = time.monotonic() - t
        r["disk_mib"] = server.disk_bytes() / 2**20
        warn(f"[{label}] rows read back: {rows if rows is not None else how}")
        return r
    except (ServerError, RuntimeError) as e:
        warn(f"[{label}] FAILED: {e}")
        return {"error": str(e).splitlines()[0]}
    finally:
        stop_py_spy(profiler)
        server.stop()


def combine(rs: list[dict]) -> dict:
    """The run with the median lines/s (lower median), plus the spread over all runs."""
    ok = sorted((r for r in rs if "error" not in r), key=lambda r: r["lines_per_s"])
    if not ok:
        return dict(rs[0])
    out = dict(ok[(len(ok) - 1) // 2])
    out["runs"] = len(rs)
    out["failed_runs"] = len(rs) - len(ok)
    out["lines_per_s_all"] = [r["lines_per_s"] for r in ok]
    out["lines_per_s_min"] = ok[0]["lines_per_s"]
    out["lines_per_s_max"] = ok[-1]["lines_per_s"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000, help="rows to write")
    ap.add_argument("--hosts", type=int, default=100, help="distinct hosts")
    ap.add_argument("--batch", type=int, default=5000, help="lines per HTTP request")
    ap.add_argument("--clients", type=int, default=2, help="concurrent client processes")
    ap.add_argument("--targets", default="weir,weir-v1,influxdb,victoriametrics",
                    help=f"comma list of {', '.join(TARGETS)}")
    ap.add_argument("--wal-flush-interval", default="1s", help="passed to Weir")
    ap.add_argument("--weir-bin", default=default_weir_bin(), help="Weir's influxdb3 executable")
    ap.add_argument("--weir-args", default="", help="extra `serve` flags for Weir")
    ap.add_argument("--influxd", default="/usr/bin/influxd")
    ap.add_argument("--victoria-metrics", default="/usr/bin/victoria-metrics")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP request")
    ap.add_argument("--start-timeout", type=float, default=60.0,
                    help="seconds for a server to answer its health check")
    ap.add_argument("--max-seconds", type=float, default=1800.0,
                    help="stop sending to a target after this long")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per target (targets interleaved); the median run is reported")
    ap.add_argument("--data-root", metavar="DIR",
                    help="put the servers' temp data dirs under DIR, e.g. /dev/shm to take "
                         "the disk out; unset (None) means the system temp dir")
    ap.add_argument("--seed", type=int, default=1, help="seed of the generated values")
    ap.add_argument("--py-spy", metavar="DIR", help="record py-spy profiles of Weir into DIR")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = ap.parse_args()
    if min(args.lines, args.hosts, args.batch, args.clients, args.repeat) < 1:
        ap.error("--lines, --hosts, --batch, --clients and --repeat must be positive")
    targets = list(iter_targets(args.targets, TARGETS))
    install_cleanup()

    info = machine_info()
    ds = CpuDataset(lines=args.lines, hosts=args.hosts, end_ns=aligned_end_ns(), seed=args.seed)
    params = {k: getattr(args, k) for k in ("lines", "hosts", "batch", "clients",
                                            "wal_flush_interval", "repeat", "seed", "data_root")}
    params["targets"] = targets
    runs: dict[str, list[dict]] = {}
    warn(machine_line(info))
    with LoadGenerators(ds, args.batch, args.clients) as gens:
        for rnd in range(args.repeat):
            for target in targets:
                label = TARGETS[target] + (f" run {rnd + 1}/{args.repeat}" if args.repeat > 1
                                           else "")
                server = make_server(target, args, quiet=rnd > 0)
                if server is None:
                    continue
                server.data_root = args.data_root
                runs.setdefault(target, []).append(run_target(target, label, server, gens, ds,
                                                              args, spy=rnd == 0))
    results = {t: combine(rs) for t, rs in runs.items()}
    vers = versions(args, targets)
    ratios = print_report(results, ds, info, params, vers) if results else {}
    if args.json:
        write_json(args.json, {"benchmark": "ingest", "machine": info, "params": params,
                               "versions": vers, "results": results, "ratios": ratios,
                               "dataset": {"lines": ds.lines, "hosts": ds.hosts,
                                           "steps": ds.steps, "start_ns": ds.start_ns,
                                           "end_ns": ds.end_ns}})
    return 0 if results and all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        warn("interrupted; servers stopped")
        sys.exit(130)
