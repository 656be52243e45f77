"""Soak benchmark: Weir under sustained ingest of current data for minutes, with
snapshots, compaction and retention running and queries every few seconds; then kill -9
and a timed restart.

    .venv/bin/python bench/soak.py                          # 10 min at the maximum rate
    .venv/bin/python bench/soak.py --duration 30m           # the README figure
    .venv/bin/python bench/soak.py --duration 2m --rate 50000 --burst-rate 120000

One Weir server on 127.0.0.1 with a temporary data dir (file object store). `--writers`
processes each hold one keep-alive connection and POST TSBS `cpu` lines stamped with the
current time. Every second the script samples lines/s acknowledged, server RSS (process
tree), WAL and Parquet files on disk and query latency, into a CSV under bench/results/.
At the end it SIGKILLs the server, restarts it on the same data and times /health and the
moment `count(*)` equals the lines acknowledged. It draws one PNG and prints a summary
next to the short-burst rate of bench/ingest.py. See bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import math
import multiprocessing as mp
import os
import queue
import random
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    FIELDS,
    HOST,
    MEASUREMENT,
    REPO,
    TAG_KEYS,
    CpuDataset,
    HttpClient,
    Server,
    ServerError,
    aligned_end_ns,
    default_weir_bin,
    host_tags,
    install_cleanup,
    machine_info,
    machine_line,
    percentile,
    rfc3339,
    table,
    tree_cpu,
    tree_rss,
    warn,
    weir_revision,
    weir_server,
    write_json,
)

DB = "bench"
NODE_ID = "bench"  # benchlib.weir_server's --node-id: files live under <data-dir>/bench/
WRITE_PATH = f"/api/v3/write_lp?db={DB}"
# field-value sets per host, cycled: building every line's values in Python would cost
# the writers as much CPU as the server gets; the price is that values repeat after
# VARIANTS points per host, so Parquet compresses better than real data would
VARIANTS = 64
LATENCY_WINDOW_S = 60.0  # query p50/p99 in the CSV are over the queries of the last minute
BURST_GOAL = 0.80  # sustained rate / short-burst rate
RSS_FLAT = 0.20  # "flat": the RSS trend grows by at most 20% after the first snapshot
FILES_BOUND = 1.5  # "bounded": files at the end <= 1.5x the most seen in the first half
RESTART_GOAL_S = 10.0  # "ready in seconds"
RATE_GOAL = 0.95  # at a fixed --rate: the server keeps up with what is offered
BENCH_EXTRA_HINT = "run `.venv/bin/pip install -e '.[bench]'`"

# --------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in '90', '90s', '10m', '1h30m', '500ms', '2d'."""
    s = text.strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?", s)
    if not s or "".join(n + u for n, u in parts) != s:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (use e.g. 90s, 10m, 1h30m)")
    return sum(float(n) * _UNITS[u or "s"] for n, u in parts)


def parse_rate(text: str) -> int:
    """0 for 'max', else lines per second."""
    if text.strip().lower() == "max":
        return 0
    try:
        v = int(float(text.replace("_", "").replace(",", "")))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--rate must be 'max' or lines per second, not {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"--rate must be positive, not {text!r}")
    return v


def fmt_clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"


# --------------------------------------------------------------------------------------
# Writer processes
# --------------------------------------------------------------------------------------


def host_bodies(hosts: list[int], seed: int, salt: int) -> list[list[bytes]]:
    """VARIANTS lists of `cpu,<10 tags> <10 fields>` (no timestamp), one entry per host,
    each variant with other values; idle high and the rest small, like a real host."""
    prefixes = []
    for h in hosts:
        tags = host_tags(h, seed)
        prefixes.append(MEASUREMENT + "," + ",".join(f"{k}={tags[k]}" for k in TAG_KEYS) + " ")
    names = [f + "=" for f in FIELDS]
    out = []
    for v in range(VARIANTS):
        r = random.Random((seed << 40) ^ (salt << 20) ^ v).random
        rows = []
        for p in prefixes:
            vals = [100.0 * r() * r() for _ in FIELDS]
            vals[2] = 100.0 - vals[0] * 0.5 - vals[1] * 0.5
            rows.append((p + ",".join(k + repr(x) for k, x in zip(names, vals, strict=True)))
                        .encode())
        out.append(rows)
    return out


def _writer(idx: int, nwriters: int, hosts: int, seed: int, batch: int, port: int,
            lines_per_s: float, timeout: float, stop: Any, go: Any, res_q: Any) -> None:
    """POST batches of current-time lines for hosts idx, idx+n, ... until `stop` is set.

    Every step stamps all of this writer's hosts with one timestamp, strictly increasing
    per writer; writers own disjoint hosts, so no two lines are the same point (a repeat
    would be merged by last-write-wins and spoil the row count). Each answer goes to
    `res_q` as ("b", writer, t_end, seconds, lines, kind, error)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    mine = list(range(idx, hosts, nwriters))
    if not mine:
        res_q.put(("ready", idx, ""))
        res_q.put(("exit", idx, ""))
        return
    bodies = host_bodies(mine, seed, idx)
    nh = len(mine)
    # building the bodies takes a few seconds on a busy machine: not part of the soak
    res_q.put(("ready", idx, ""))
    go.wait()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    last_ts = pos = step = 0
    sep = b""
    rows: list[bytes] = []
    next_t = time.monotonic()
    try:
        while not stop.value:
            if lines_per_s:
                now = time.monotonic()
                next_t = max(next_t, now - 1.0)  # a stall is not paid back with a burst
                if next_t > now:
                    time.sleep(next_t - now)
                    if stop.value:
                        break
            parts, n = [], 0
            while n < batch:
                if pos == 0:
                    last_ts = max(time.time_ns(), last_ts + 1)
                    sep = b" %d\n" % last_ts
                    rows = bodies[step % VARIANTS]
                    step += 1
                take = min(batch - n, nh - pos)
                parts.append(sep.join(rows[pos:pos + take]) + sep)
                pos = (pos + take) % nh
                n += take
            body = b"".join(parts)
            t = time.monotonic()
            err = ""
            try:
                conn.request("POST", WRITE_PATH, body=body, headers=headers)
                resp = conn.getresponse()
                answer = resp.read()
                if 200 <= resp.status < 300:
                    kind = "ok"
                else:
                    # 503/429: the server sheds load, as a bounded server should
                    kind = "busy" if resp.status in (429, 503) else "error"
                    err = f"HTTP {resp.status}: {answer[:300]!r}"
                if resp.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as e:
                # the server may or may not have taken this batch
                kind, err = "unsure", f"{type(e).__name__}: {e}"
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
            t1 = time.monotonic()
            res_q.put(("b", idx, t1, t1 - t, n, kind, err))
            if lines_per_s:
                next_t += n / lines_per_s
            if kind != "ok":
                time.sleep(0.2 if kind == "busy" else 1.0)
    finally:
        conn.close()
        res_q.put(("exit", idx, ""))


# --------------------------------------------------------------------------------------
# Server side: queries, disk, counts
# --------------------------------------------------------------------------------------


def query_json(c: HttpClient, q: str, timeout: float | None = None) -> list[dict]:
    status, body = c.get("/api/v3/query_sql", {"db": DB, "q": q, "format": "json"},
                         timeout=timeout)
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    return json.loads(body) if body.strip() else []


def count_rows(c: HttpClient, where: str, timeout: float | None = None) -> int:
    rows = query_json(c, f"SELECT count(*) AS n FROM {MEASUREMENT} WHERE {where}", timeout)
    return int(rows[0]["n"]) if rows else 0


def disk_stats(node_dir: Path) -> tuple[int, int, int, int]:
    """(WAL files, WAL bytes, Parquet files, Parquet bytes) under <data-dir>/<node>/.
    Files come and go while we look (snapshots, compaction): a vanished one is skipped."""
    wal_n = wal_b = pq_n = pq_b = 0
    try:
        with os.scandir(node_dir / "wal") as it:
            for e in it:
                try:
                    if e.is_file():
                        wal_n += 1
                        wal_b += e.stat().st_size
                except OSError:
                    pass
    except OSError:
        pass
    for root, _dirs, files in os.walk(node_dir):
        for f in files:
            if f.endswith(".parquet"):
                try:
                    pq_b += os.stat(os.path.join(root, f)).st_size
                    pq_n += 1
                except OSError:
                    pass
    return wal_n, wal_b, pq_n, pq_b


@dataclass
class QueryLoop:
    """A thread that runs the soak's two queries every `interval` seconds over one
    keep-alive connection and keeps (t_end, kind, seconds, ok, detail) per query."""

    port: int
    interval: float
    hosts: int
    timeout: float
    results: list[tuple[float, str, float, bool, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop_ev: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    # files the server lists (system.parquet_files), after each round: compaction
    # inputs leave this list at once but stay on disk until no query can still read them
    listed: int | None = None
    listed_error: str = ""

    QUERIES = (
        ("avg_1m_1host",
         "SELECT hostname, avg(usage_user) AS usage_user, count(*) AS n FROM cpu "
         "WHERE hostname = '{host}' AND time >= now() - INTERVAL '1 minute' GROUP BY hostname"),
        ("count_5m", "SELECT count(*) AS n FROM cpu WHERE time >= now() - INTERVAL '5 minutes'"),
    )

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="soak-queries", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_ev.set()
        if self.thread is not None:
            self.thread.join(self.timeout + 5)

    def _run(self) -> None:
        c = HttpClient(self.port, self.timeout)
        n = 0
        next_t = time.monotonic() + self.interval
        while not self.stop_ev.wait(max(0.0, next_t - time.monotonic())):
            # a slow query delays the next round instead of piling rounds up
            next_t = max(next_t + self.interval, time.monotonic())
            host = f"host_{(n * 7) % self.hosts}"
            n += 1
            for kind, q in self.QUERIES:
                s = time.monotonic()
                try:
                    rows = query_json(c, q.format(host=host))
                    ok, detail = True, json.dumps(rows[0] if rows else {})
                except (OSError, http.client.HTTPException, RuntimeError, ValueError) as e:
                    ok, detail = False, f"{type(e).__name__}: {e}"[:300]
                e_t = time.monotonic()
                with self.lock:
                    self.results.append((e_t, kind, e_t - s, ok, detail))
            try:
                rows = query_json(c, "SELECT count(*) AS n FROM system.parquet_files")
                self.listed = int(rows[0]["n"]) if rows else 0
            except (OSError, http.client.HTTPException, RuntimeError, ValueError,
                    KeyError) as e:
                self.listed, self.listed_error = None, f"{type(e).__name__}: {e}"[:200]
        c.close()

    def snapshot(self) -> list[tuple[float, str, float, bool, str]]:
        with self.lock:
            return list(self.results)


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------

CSV_COLUMNS = ("t_s", "lines_per_s", "lines_acked_total", "write_batches", "write_p50_ms",
               "write_p99_ms", "busy_batches", "error_batches", "rss_mib",
               "server_cpu_cores", "wal_files", "wal_mib", "parquet_files", "parquet_mib",
               "parquet_files_listed",
               "query_p50_ms_60s", "query_p99_ms_60s", "queries_60s", "query_errors_total",
               "load1")


@dataclass
class Tally:
    acked: int = 0
    batches: int = 0
    busy: int = 0
    errors: int = 0
    unsure_lines: int = 0
    first_error: dict[str, str] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)


def serve_flags(weir_bin: str) -> str:
    try:
        out = subprocess.run([weir_bin, "serve", "--help"], capture_output=True, text=True,
                             timeout=60)
        return out.stdout + out.stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        warn(f"cannot run `{weir_bin} serve --help`: {e}")
        return ""


def build_server(args: argparse.Namespace, notes: list[str]) -> Server:
    extra = ["--wal-snapshot-size", str(args.wal_snapshot_size)]
    listed = serve_flags(args.weir_bin)
    for flag, value in (("--compaction-interval", args.compaction_interval),
                        ("--compaction-file-rows", args.compaction_file_rows)):
        if value is None:
            continue
        if flag in listed:
            extra += [flag, str(value)]
        else:
            notes.append(f"{flag} {value} not passed: `influxdb3 serve --help` does not list it")
    if "--compaction-interval" not in listed:
        notes.append("this server has no --compaction-interval: no compactor to soak")
    server = weir_server(args.weir_bin, args.wal_flush_interval,
                         extra + shlex.split(args.weir_args))
    server.data_root = args.data_root
    return server


def create_database(args: argparse.Namespace, server: Server, notes: list[str]) -> bool:
    """`influxdb3 create database bench --retention-period X`, as a user would; without
    the retention period if the server refuses it (then the run goes on, noted)."""
    base = [args.weir_bin, "create", "database", DB, "--host", f"http://{HOST}:{server.port}"]
    out = subprocess.run([*base, "--retention-period", args.retention_period],
                         capture_output=True, text=True, timeout=60)
    if out.returncode == 0:
        return True
    msg = (out.stderr or out.stdout).strip().splitlines()
    notes.append(f"create database --retention-period {args.retention_period} failed "
                 f"({msg[-1] if msg else f'exit {out.returncode}'}); created without it")
    out = subprocess.run(base, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise ServerError(f"`{' '.join(base)}` failed: {(out.stderr or out.stdout).strip()}")
    return False


def write_old_rows(args: argparse.Namespace, c: HttpClient, retention_ns: int) -> dict:
    """Rows an hour older than the retention period, to see retention at work: they
    should be refused or become invisible, and leave storage through the compactor."""
    n = min(args.old_lines, args.hosts)
    if n <= 0:
        return {"lines": 0}
    ts = time.time_ns() - retention_ns - 3600 * 1_000_000_000
    sep = b" %d\n" % ts
    body = sep.join(host_bodies(list(range(n)), args.seed, 999)[0]) + sep
    try:
        status, answer = c.post(WRITE_PATH, body)
    except (OSError, http.client.HTTPException) as e:
        return {"lines": n, "time_ns": ts, "status": None, "answer": f"{e}"}
    return {"lines": n, "time_ns": ts, "status": status, "answer": answer[:300].decode(
        errors="replace")}


def burst_reference(args: argparse.Namespace) -> dict:
    """bench/ingest.py's own code path (same data, clients and server flags as its
    default run), on this machine, now: the rate a short burst reaches."""
    import ingest  # bench/ingest.py; imported late: it is only needed for the burst

    ds = CpuDataset(lines=args.burst_lines, hosts=args.hosts, end_ns=aligned_end_ns(),
                    seed=args.seed)
    server = weir_server(args.weir_bin, args.wal_flush_interval, shlex.split(args.weir_args))
    server.data_root = args.data_root
    ns = argparse.Namespace(start_timeout=args.start_timeout, timeout=args.timeout,
                            max_seconds=600.0, py_spy=None)
    warn(f"[burst] reference: bench/ingest.py code path, {ds.lines:,} lines, {args.hosts} "
         f"hosts, batches of {args.batch}, {args.writers} client(s)")
    with ingest.LoadGenerators(ds, args.batch, args.writers) as gens:
        r = ingest.run_target("weir", "burst", server, gens, ds, ns, spy=False)
    if "error" in r:
        raise ServerError(f"the reference burst failed: {r['error']} "
                          f"(pass --burst-rate to skip it)")
    return r


class Soak:
    """One soak run: server, writers, query thread, per-second samples, restart."""

    def __init__(self, args: argparse.Namespace, stamp: str) -> None:
        self.args = args
        self.notes: list[str] = []
        self.tally = Tally()
        self.samples: list[dict] = []
        self.first_snapshot_t: float | None = None
        self.csv_path = Path(args.out_dir) / f"soak-{stamp}.csv"
        self.queries_path = Path(args.out_dir) / f"soak-{stamp}-queries.csv"
        self.result: dict[str, Any] = {}
        self.writers: list[mp.Process] = []
        self.queries: QueryLoop | None = None
        self.life: dict[str, list[dict]] = {}
        self._early_exits: list[int] = []

    # -- start ---------------------------------------------------------------------

    def start(self) -> None:
        a = self.args
        self.server = build_server(a, self.notes)
        warn(f"[soak] starting Weir: {' '.join(self.server.argv_fn(Path('TMP'), 0)[1:])}")
        self.server.start(a.start_timeout)
        self.node_dir = self.server.tmp / "data" / NODE_ID
        self.client = HttpClient(self.server.port, a.timeout)
        self.retention_set = create_database(a, self.server, self.notes)
        self.retention_ns = int(parse_duration(a.retention_period) * 1e9)
        self.t0_ns = time.time_ns()  # every soak line is stamped at or after this
        self.old = write_old_rows(a, self.client, self.retention_ns)
        if self.old.get("lines"):
            self.old["visible_at_start"] = self._count_old()

        ctx = mp.get_context("fork")
        self.stop_flag = ctx.Value("i", 0)
        go = ctx.Event()
        self.res_q = ctx.Queue()
        per_writer = a.rate / a.writers if a.rate else 0.0
        batch = a.batch
        if per_writer:
            batch = max(1, min(batch, int(per_writer / 2)))  # >= 2 requests/s per writer
            if batch != a.batch:
                self.notes.append(f"batch lowered to {batch} lines so that each writer "
                                  f"sends at least 2 requests per second at --rate {a.rate}")
        self.batch = batch
        self.writers = [ctx.Process(target=_writer, name=f"soak-writer-{i}", daemon=True,
                                    args=(i, a.writers, a.hosts, a.seed, batch,
                                          self.server.port, per_writer, a.timeout,
                                          self.stop_flag, go, self.res_q))
                        for i in range(a.writers)]
        for p in self.writers:
            p.start()
        ready, deadline = 0, time.monotonic() + 300
        while ready < len(self.writers):
            try:
                msg = self.res_q.get(timeout=0.5)
            except queue.Empty:
                if time.monotonic() > deadline or any(not p.is_alive() for p in self.writers):
                    raise ServerError("the writer processes did not get ready") from None
                continue
            ready += msg[0] == "ready"
            if msg[0] == "exit":  # a writer without hosts: its exit is counted later
                self._early_exits.append(msg[1])
        self.t_start = time.monotonic()
        self.cpu_start = tree_cpu(self.server.pid)
        go.set()
        self.queries = QueryLoop(self.server.port, a.query_interval, a.hosts, a.timeout)
        self.queries.start()

    # -- the soak ------------------------------------------------------------------

    def _drain(self, until: float, bin_: dict) -> None:
        """Take writer answers off the queue until `until` (monotonic)."""
        t = self.tally
        while True:
            left = until - time.monotonic()
            try:
                msg = self.res_q.get(timeout=max(0.0, min(left, 0.2))) if left > 0 else \
                    self.res_q.get_nowait()
            except queue.Empty:
                if time.monotonic() >= until:
                    return
                continue
            if msg[0] == "exit":
                bin_.setdefault("exited", []).append(msg[1])
                continue
            _, _idx, _t_end, secs, lines, kind, err = msg
            t.batches += 1
            if kind == "ok":
                t.acked += lines
                t.latencies.append(secs)
                bin_["lines"] = bin_.get("lines", 0) + lines
                bin_.setdefault("lat", []).append(secs)
            elif kind == "busy":
                t.busy += 1
                bin_["busy"] = bin_.get("busy", 0) + 1
            else:
                t.errors += 1
                bin_["errors"] = bin_.get("errors", 0) + 1
                if kind == "unsure":
                    t.unsure_lines += lines
            if err and kind not in t.first_error:
                t.first_error[kind] = err

    def _sample(self, t_rel: float, dt: float, bin_: dict, cpu_prev: float) -> tuple[dict,
                                                                                      float]:
        pid = self.server.pid
        rss = tree_rss(pid)
        cpu = tree_cpu(pid)
        wal_n, wal_b, pq_n, pq_b = disk_stats(self.node_dir)
        if pq_n and self.first_snapshot_t is None:
            self.first_snapshot_t = t_rel
        now = time.monotonic()
        qs = [q for q in self.queries.snapshot() if q[0] >= now - LATENCY_WINDOW_S and q[3]]
        qlat = sorted(q[2] for q in qs)
        lat = sorted(bin_.get("lat", []))
        row = {
            "t_s": round(t_rel, 3),
            "lines_per_s": bin_.get("lines", 0) / dt if dt > 0 else 0.0,
            "lines_acked_total": self.tally.acked,
            "write_batches": len(lat),
            "write_p50_ms": percentile(lat, 50) * 1000 if lat else None,
            "write_p99_ms": percentile(lat, 99) * 1000 if lat else None,
            "busy_batches": bin_.get("busy", 0),
            "error_batches": bin_.get("errors", 0),
            "rss_mib": rss / 2**20,
            "server_cpu_cores": (cpu - cpu_prev) / dt if dt > 0 and cpu_prev else None,
            "wal_files": wal_n,
            "wal_mib": wal_b / 2**20,
            "parquet_files": pq_n,
            "parquet_mib": pq_b / 2**20,
            "parquet_files_listed": self.queries.listed,
            "query_p50_ms_60s": percentile(qlat, 50) * 1000 if qlat else None,
            "query_p99_ms_60s": percentile(qlat, 99) * 1000 if qlat else None,
            "queries_60s": len(qlat),
            "query_errors_total": sum(1 for q in self.queries.snapshot() if not q[3]),
            # other work on the machine takes CPU from the server: read lines/s with this
            "load1": os.getloadavg()[0],
        }
        return row, cpu

    def run(self) -> None:
        a = self.args
        end = self.t_start + a.duration
        with open(self.csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            w.writeheader()
            last = self.t_start
            next_sample = self.t_start + a.sample_interval
            next_progress = self.t_start + a.progress_every
            cpu_prev = tree_cpu(self.server.pid)
            while True:
                bin_: dict = {}
                self._drain(min(next_sample, end), bin_)
                now = time.monotonic()
                row, cpu_prev = self._sample(now - self.t_start, now - last, bin_, cpu_prev)
                last = now
                next_sample += a.sample_interval
                self.samples.append(row)
                w.writerow({k: _csv_value(v) for k, v in row.items()})
                f.flush()
                if not self.server.alive():
                    self.notes.append(f"the server exited with code "
                                      f"{self.server.proc.returncode} at "
                                      f"{fmt_clock(now - self.t_start)}")
                    warn(f"[soak] the server died:\n{self.server.log_tail()}")
                    break
                dead = [p.name for p in self.writers if not p.is_alive()]
                if dead:
                    self.notes.append(f"writer process(es) died: {', '.join(dead)}")
                    break
                if now >= next_progress:
                    next_progress += a.progress_every
                    self._progress(now - self.t_start)
                if now >= end:
                    break
        self._stop_load()

    def _progress(self, t_rel: float) -> None:
        recent = self.samples[-10:]
        rate10 = sum(r["lines_per_s"] for r in recent) / max(len(recent), 1)
        r = self.samples[-1]
        q50, q99 = r["query_p50_ms_60s"], r["query_p99_ms_60s"]
        qs = f"{q50:.0f}/{q99:.0f} ms" if q50 is not None else "-"
        snap = (f"first snapshot {fmt_clock(self.first_snapshot_t)}"
                if self.first_snapshot_t is not None else "no snapshot yet")
        warn(f"[soak] {fmt_clock(t_rel)}/{fmt_clock(self.args.duration)}  "
             f"{rate10:>9,.0f} lines/s (10s), {self.tally.acked / t_rel:,.0f} avg  "
             f"RSS {r['rss_mib']:,.0f} MiB  WAL {r['wal_files']} files "
             f"{r['wal_mib']:.0f} MiB  Parquet {r['parquet_files']} files "
             f"{r['parquet_mib']:.0f} MiB  query p50/p99 {qs}  "
             f"busy {self.tally.busy} err {self.tally.errors}  {snap}")

    def _stop_load(self) -> None:
        """Stop the writers and wait for their last answers, so that `acked` is exact."""
        self.stop_flag.value = 1
        self.t_stop = time.monotonic()
        self.cpu_stop = tree_cpu(self.server.pid) if self.server.alive() else None
        bin_: dict = {"exited": list(self._early_exits)}
        deadline = time.monotonic() + self.args.timeout + 10
        while len(bin_.get("exited", [])) < len(self.writers) and time.monotonic() < deadline:
            self._drain(time.monotonic() + 0.5, bin_)
            if all(not p.is_alive() for p in self.writers):
                self._drain(time.monotonic() + 0.5, bin_)
                break
        self.t_last_ack = time.monotonic()
        for p in self.writers:
            p.join(5)
            if p.is_alive():
                p.kill()
        if self.queries:
            self.queries.stop()

    # -- kill -9 and restart -----------------------------------------------------------

    def _count_new(self, timeout: float | None = None) -> int:
        return count_rows(self.client, f"time >= '{rfc3339(self.t0_ns)}'", timeout)

    def _count_old(self) -> int | None:
        try:
            return count_rows(self.client, f"time < '{rfc3339(self.t0_ns - self.retention_ns)}'")
        except (OSError, http.client.HTTPException, RuntimeError, ValueError) as e:
            self.notes.append(f"counting rows older than the retention period failed: {e}")
            return None

    def _life_cycle(self) -> dict[str, list[dict]]:
        """The server's own record of its snapshots and compactions (`system.snapshots`,
        `system.compactions`; the server keeps the last 500 of each), with `t_s` relative
        to the start of the writers. A server without them gives an empty list (noted)."""
        out: dict[str, list[dict]] = {}
        offset_ns = self.t0_ns  # wall clock at about t_start
        for name, cols in (("snapshots", "status, duration_ms, files, rows, error"),
                           ("compactions", "status, duration_ms, input_files, output_files, "
                                           "input_rows, output_rows, error")):
            try:
                rows = query_json(self.client, f"SELECT CAST(started_at AS BIGINT) AS t_ns, "
                                               f"{cols} FROM system.{name} ORDER BY t_ns")
            except (OSError, http.client.HTTPException, RuntimeError, ValueError) as e:
                self.notes.append(f"system.{name} could not be read: {str(e)[:200]}")
                rows = []
            for r in rows:
                r["t_s"] = (int(r.pop("t_ns")) - offset_ns) / 1e9
            out[name] = rows
        return out

    def crash_and_restart(self) -> None:
        a, res = self.args, self.result
        res["acked"] = self.tally.acked
        if not self.server.alive():
            res["restart_error"] = "the server was not running at the end of the soak"
            return
        self.client.close()  # idle since the start: the server may have closed it
        try:
            res["rows_before_kill"] = self._count_new(a.timeout)
        except (OSError, http.client.HTTPException, RuntimeError, ValueError) as e:
            res["rows_before_kill_error"] = str(e)
        if self.old.get("lines"):
            self.old["visible_before_kill"] = self._count_old()
        self.life = self._life_cycle()
        wal_n, wal_b, pq_n, pq_b = disk_stats(self.node_dir)
        res["at_kill"] = {"rss_mib": tree_rss(self.server.pid) / 2**20, "wal_files": wal_n,
                          "wal_mib": wal_b / 2**20, "parquet_files": pq_n,
                          "parquet_mib": pq_b / 2**20}
        warn(f"[restart] kill -9 with {wal_n} WAL files ({wal_b / 2**20:.1f} MiB) on disk; "
             f"{self.tally.acked:,} lines acknowledged")
        self.server.kill()
        self.client.close()
        t_launch = time.monotonic()
        try:
            res["health_s"] = self.server.restart(a.restart_timeout)
        except ServerError as e:
            res["restart_error"] = str(e).splitlines()[0]
            warn(f"[restart] FAILED: {e}")
            return
        warn(f"[restart] /health answered after {res['health_s']:.2f}s; waiting for "
             f"count(*) = {self.tally.acked:,}...")
        last: int | str | None = None
        while time.monotonic() - t_launch < a.restart_timeout:
            try:
                last = self._count_new(a.timeout)
                if last == self.tally.acked:
                    res["all_rows_s"] = time.monotonic() - t_launch
                    break
                if last > self.tally.acked:
                    break  # more rows than acknowledged will not shrink by waiting
            except (OSError, http.client.HTTPException, RuntimeError, ValueError) as e:
                last = f"{type(e).__name__}: {e}"[:200]
            time.sleep(0.2)
        res["rows_after_restart"] = last
        if "all_rows_s" in res:
            warn(f"[restart] every acknowledged row readable after {res['all_rows_s']:.2f}s")
        else:
            warn(f"[restart] count(*) = {last} after restart, expected {self.tally.acked:,}")
        if self.old.get("lines"):
            self.old["visible_after_restart"] = self._count_old()

    def finish(self) -> None:
        """Stop the server (cleanly: it was restarted) and keep or delete its data."""
        if self.args.keep_data:
            self.server.stop(remove=False)
            self.notes.append(f"data dir kept: {self.server.tmp}")
        else:
            self.server.stop()


def _csv_value(v: object) -> object:
    if v is None:
        return ""
    if isinstance(v, float):
        return round(v, 3)
    return v


# --------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line y = a + b*x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return my, 0.0
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - b * mx, b


def summarize(soak: Soak, burst: dict) -> dict:
    s, res = soak.samples, soak.result
    t = soak.tally
    wall = soak.t_stop - soak.t_start
    out: dict[str, Any] = {"wall_s": wall, "acked": t.acked, "batches": t.batches,
                           "busy": t.busy, "errors": t.errors, "unsure_lines": t.unsure_lines,
                           "first_error": t.first_error}
    out["lines_per_s"] = t.acked / wall if wall > 0 else 0.0
    lat = sorted(t.latencies)
    out["write_p50_ms"] = percentile(lat, 50) * 1000 if lat else None
    out["write_p99_ms"] = percentile(lat, 99) * 1000 if lat else None
    out["burst_lines_per_s"] = burst.get("lines_per_s")
    # lines per CPU-second of the server tree: much less disturbed than lines/s by other
    # work on the machine, so the fairer soak-vs-burst comparison on a shared VM
    cpu = soak.cpu_stop - soak.cpu_start if soak.cpu_stop is not None else None
    out["server_cpu_s"] = cpu
    out["lines_per_cpu_s"] = t.acked / cpu if cpu else None
    out["burst_lines_per_cpu_s"] = burst.get("lines_per_cpu_s")
    if out["lines_per_cpu_s"] and out["burst_lines_per_cpu_s"]:
        out["cpu_efficiency_pct"] = 100 * out["lines_per_cpu_s"] / out["burst_lines_per_cpu_s"]
    if out["burst_lines_per_s"]:
        out["sustained_pct"] = 100 * out["lines_per_s"] / out["burst_lines_per_s"]
    if soak.args.rate:
        out["rate_pct"] = 100 * out["lines_per_s"] / soak.args.rate
    # worst minute: the lowest one-minute mean, a stall that the average hides
    rates = [r["lines_per_s"] for r in s]
    n = max(1, round(60 / soak.args.sample_interval))
    if len(rates) >= n:
        acc = sum(rates[:n])
        worst = acc
        for i in range(n, len(rates)):
            acc += rates[i] - rates[i - n]
            worst = min(worst, acc)
        out["worst_minute_lines_per_s"] = worst / n
    out["first_snapshot_s"] = soak.first_snapshot_t
    if s:
        out["rss_peak_mib"] = max(r["rss_mib"] for r in s)
        out["rss_end_mib"] = s[-1]["rss_mib"]
        out["wal_max_mib"] = max(r["wal_mib"] for r in s)
        out["wal_max_files"] = max(r["wal_files"] for r in s)
        out["parquet_max_files"] = max(r["parquet_files"] for r in s)
        out["parquet_end_files"] = s[-1]["parquet_files"]
        out["parquet_end_mib"] = s[-1]["parquet_mib"]
        listed = [r["parquet_files_listed"] for r in s if r["parquet_files_listed"] is not None]
        out["parquet_listed_max"] = max(listed) if listed else None
        out["parquet_listed_end"] = listed[-1] if listed else None
        half = [r["parquet_files_listed"] for r in s if r["t_s"] <= wall / 2
                and r["parquet_files_listed"] is not None]
        out["parquet_listed_max_first_half"] = max(half) if half else 0
        half = [r["parquet_files"] for r in s if r["t_s"] <= wall / 2]
        out["parquet_max_files_first_half"] = max(half) if half else 0
        out["load1_avg"] = sum(r["load1"] for r in s) / len(s)
    if soak.first_snapshot_t is not None and s:
        after = [r for r in s if r["t_s"] >= soak.first_snapshot_t]
        out["rss_first_snapshot_mib"] = after[0]["rss_mib"]
        if len(after) >= 10:
            xs = [r["t_s"] for r in after]
            a0, b = _fit(xs, [r["rss_mib"] for r in after])
            start, stop = a0 + b * xs[0], a0 + b * xs[-1]
            out["rss_trend_mib_per_min"] = b * 60
            out["rss_trend_growth_pct"] = 100 * (stop - start) / start if start > 0 else None
        # the buffer, caches and the first compactions fill memory during the first
        # minutes; after that, flat means the middle third's median holds at the end
        third = (s[-1]["t_s"] - soak.first_snapshot_t) / 3
        mid = sorted(r["rss_mib"] for r in after
                     if third <= r["t_s"] - soak.first_snapshot_t < 2 * third)
        last = sorted(r["rss_mib"] for r in after
                      if r["t_s"] - soak.first_snapshot_t >= 2 * third)
        if mid and last:
            out["rss_mid_third_mib"] = mid[len(mid) // 2]
            out["rss_last_third_mib"] = last[len(last) // 2]
        span = s[-1]["t_s"] - soak.first_snapshot_t
        if span > 0:
            out["lines_per_s_after_first_snapshot"] = \
                (s[-1]["lines_acked_total"] - after[0]["lines_acked_total"]) / span
    qs = soak.queries.snapshot() if soak.queries else []
    out["queries"] = {}
    for kind, _ in QueryLoop.QUERIES:
        ok = sorted(q[2] for q in qs if q[1] == kind and q[3])
        bad = [q for q in qs if q[1] == kind and not q[3]]
        out["queries"][kind] = {"ok": len(ok), "failed": len(bad),
                                "p50_ms": percentile(ok, 50) * 1000 if ok else None,
                                "p99_ms": percentile(ok, 99) * 1000 if ok else None,
                                "max_ms": ok[-1] * 1000 if ok else None,
                                "first_error": bad[0][4] if bad else ""}
    for name in ("snapshots", "compactions"):
        recs = soak.life.get(name, [])
        ok = sorted(float(r["duration_ms"]) for r in recs if r.get("status") == "ok")
        failed = [r for r in recs if r.get("status") == "failed"]
        out[name] = {"ok": len(ok), "failed": len(failed),
                     "other": len(recs) - len(ok) - len(failed),
                     "p50_ms": percentile(ok, 50) if ok else None,
                     "max_ms": ok[-1] if ok else None,
                     "first_error": failed[0].get("error", "") if failed else ""}
        if name == "compactions":
            out[name]["input_files"] = sum(int(r.get("input_files") or 0) for r in recs
                                           if r.get("status") == "ok")
            out[name]["output_files"] = sum(int(r.get("output_files") or 0) for r in recs
                                            if r.get("status") == "ok")
    out.update(res)
    out["old_rows"] = soak.old
    return out


def _f(v: object, spec: str = ",.0f", suffix: str = "") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, int | float):
        return format(v, spec) + suffix
    return str(v)


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "NOT met")


def print_summary(soak: Soak, sm: dict, burst: dict, png: Path | None) -> None:
    a = soak.args
    burst_src = ("--burst-rate" if a.burst_rate else
                 f"bench/ingest.py code path, {a.burst_lines:,} lines, measured just before")
    pct = sm.get("sustained_pct")
    growth = sm.get("rss_trend_growth_pct")
    pq_end, pq_half = sm.get("parquet_end_files"), sm.get("parquet_max_files_first_half")
    # no file by half time (a short run): nothing to judge the growth against
    bounded = None if pq_end is None or not pq_half else pq_end <= FILES_BOUND * pq_half
    ls_end, ls_half = sm.get("parquet_listed_end"), sm.get("parquet_listed_max_first_half")
    ls_bounded = None if ls_end is None or not ls_half else ls_end <= FILES_BOUND * ls_half
    health, all_rows = sm.get("health_s"), sm.get("all_rows_s")
    rows_after = sm.get("rows_after_restart")
    old = sm.get("old_rows", {})
    rows = [
        ["lines acknowledged", _f(sm["acked"]), ""],
        *([["sustained / requested rate", _f(sm.get("rate_pct"), ".0f", "%"),
            f"{a.rate:,} lines/s: keeps up (>= {RATE_GOAL:.0%}): "
            f"{_verdict(sm['rate_pct'] >= 100 * RATE_GOAL)}"]] if a.rate else []),
        ["sustained lines/s (whole run)", _f(sm["lines_per_s"]),
         f"burst {_f(sm.get('burst_lines_per_s'))} ({burst_src})"],
        ["sustained / burst", _f(pct, ".0f", "%"),
         f">= {BURST_GOAL:.0%}: {_verdict(None if pct is None else pct >= 100 * BURST_GOAL)}"
         if not a.rate else "(the goal applies to --rate max)"],
        ["lines/s after the first snapshot", _f(sm.get("lines_per_s_after_first_snapshot")),
         ""],
        ["worst 1-minute lines/s", _f(sm.get("worst_minute_lines_per_s")), ""],
        ["write latency p50 / p99 (ms)",
         f"{_f(sm.get('write_p50_ms'), '.0f')} / {_f(sm.get('write_p99_ms'), '.0f')}", ""],
        ["busy (503/429) / failed requests", f"{sm['busy']} / {sm['errors']}", "0 / 0"],
        ["first snapshot at (m:s)",
         fmt_clock(sm["first_snapshot_s"]) if sm.get("first_snapshot_s") is not None
         else "never", ""],
        ["RSS after first snapshot (MiB)", _f(sm.get("rss_first_snapshot_mib")), ""],
        ["RSS at end / peak (MiB)",
         f"{_f(sm.get('rss_end_mib'))} / {_f(sm.get('rss_peak_mib'))}", ""],
        ["RSS trend after 1st snapshot", _f(growth, "+.0f", "%") +
         f" ({_f(sm.get('rss_trend_mib_per_min'), '+.1f')} MiB/min)",
         f"flat (<= +{RSS_FLAT:.0%}): "
         f"{_verdict(None if growth is None else growth <= 100 * RSS_FLAT)}"],
        ["RSS median, middle third / last third (MiB)",
         f"{_f(sm.get('rss_mid_third_mib'))} / {_f(sm.get('rss_last_third_mib'))}",
         f"flat after warm-up (<= +{RSS_FLAT:.0%}): " + _verdict(
             None if not sm.get("rss_mid_third_mib") else
             sm["rss_last_third_mib"] <= (1 + RSS_FLAT) * sm["rss_mid_third_mib"])],
        ["lines per server CPU-second", _f(sm.get("lines_per_cpu_s")),
         f"burst {_f(sm.get('burst_lines_per_cpu_s'))}"
         + (f" (soak = {sm['cpu_efficiency_pct']:.0f}% of it)"
            if sm.get("cpu_efficiency_pct") else "")],
        ["server CPU (cores, avg)",
         _f(sm["server_cpu_s"] / sm["wall_s"] if sm.get("server_cpu_s") else None, ".2f"),
         f"machine load average {_f(sm.get('load1_avg'), '.1f')} on "
         f"{machine_info()['nproc']} cores"],
        ["WAL max (files / MiB)",
         f"{_f(sm.get('wal_max_files'))} / {_f(sm.get('wal_max_mib'), '.1f')}", "bounded"],
        ["Parquet files max / at end",
         f"{_f(sm.get('parquet_max_files'))} / {_f(pq_end)}",
         f"bounded (end <= {FILES_BOUND}x first half's max {_f(pq_half)}): "
         f"{_verdict(bounded)}"],
        ["Parquet files listed max / at end",
         f"{_f(sm.get('parquet_listed_max'))} / {_f(sm.get('parquet_listed_end'))}",
         f"bounded (end <= {FILES_BOUND}x first half's max {_f(ls_half)}): "
         f"{_verdict(ls_bounded)}"],
        ["Parquet MiB at end", _f(sm.get("parquet_end_mib"), ".1f"), ""],
    ]
    snaps, comps = sm.get("snapshots", {}), sm.get("compactions", {})
    if soak.life:
        rows += [
            ["snapshots ok / failed", f"{snaps.get('ok', 0)} / {snaps.get('failed', 0)}",
             f"duration p50 {_f(snaps.get('p50_ms'), '.0f')} ms, max "
             f"{_f(snaps.get('max_ms'), '.0f')} ms (system.snapshots)"],
            ["compactions ok / failed", f"{comps.get('ok', 0)} / {comps.get('failed', 0)}",
             f"{_f(comps.get('input_files'))} files -> {_f(comps.get('output_files'))}, "
             f"max {_f(comps.get('max_ms'), '.0f')} ms (system.compactions)"],
        ]
    for kind, q in sm["queries"].items():
        rows.append([f"query {kind} p50 / p99 (ms)",
                     f"{_f(q['p50_ms'], '.0f')} / {_f(q['p99_ms'], '.0f')}",
                     f"{q['ok']} ok, {q['failed']} failed"])
    rows += [
        ["rows before kill -9", _f(sm.get("rows_before_kill")), _f(sm["acked"])],
        ["restart: /health after (s)", _f(health, ".2f"),
         f"<= {RESTART_GOAL_S:.0f}s: {_verdict(None if health is None else health <= RESTART_GOAL_S)}"],
        ["restart: all rows readable after (s)", _f(all_rows, ".2f"),
         f"<= {RESTART_GOAL_S:.0f}s: "
         f"{_verdict(None if health is None else all_rows is not None and all_rows <= RESTART_GOAL_S)}"],
        ["rows after restart", _f(rows_after),
         f"= {_f(sm['acked'])}: {_verdict(None if rows_after is None else rows_after == sm['acked'])}"],
    ]
    if old.get("lines"):
        st = old.get("status")
        rows.append([f"rows older than retention ({a.retention_period})",
                     f"{_f(old.get('visible_before_kill'))} / "
                     f"{_f(old.get('visible_after_restart'))}",
                     f"0 (written: {old['lines']}, HTTP {st}; visible right after: "
                     f"{_f(old.get('visible_at_start'))})"])
    print()
    print(f"soak: {fmt_clock(sm['wall_s'])} of TSBS cpu, {a.hosts} hosts, {a.writers} "
          f"writer(s), batches of {soak.batch}, rate {a.rate or 'max'}; Weir "
          f"--wal-flush-interval {a.wal_flush_interval} --wal-snapshot-size "
          f"{a.wal_snapshot_size}, retention {a.retention_period}"
          + (" (set)" if soak.retention_set else " (NOT set)"))
    print(table(["", "soak", "reference / goal"], rows))
    for k, v in sm.get("first_error", {}).items():
        print(f"  first {k} write: {v}")
    for kind, q in sm["queries"].items():
        if q["first_error"]:
            print(f"  first failed {kind} query: {q['first_error']}")
    if soak.queries and soak.queries.listed_error:
        print(f"  system.parquet_files: {soak.queries.listed_error}")
    for name in ("snapshots", "compactions"):
        if sm.get(name, {}).get("first_error"):
            print(f"  first failed {name[:-1]}: {sm[name]['first_error'][:300]}")
    for k in ("restart_error", "rows_before_kill_error"):
        if sm.get(k):
            print(f"  {k.replace('_', ' ')}: {sm[k]}")
    if sm["unsure_lines"]:
        print(f"  {sm['unsure_lines']:,} lines were in requests whose answer was lost; "
              f"the server may hold them")
    for n in soak.notes:
        print(f"  note: {n}")
    print(machine_line(machine_info()))
    print(f"Weir {weir_revision()}")
    print(f"samples: {soak.csv_path}")
    print(f"queries: {soak.queries_path}")
    if png:
        print(f"chart:   {png}")


# --------------------------------------------------------------------------------------
# Chart
# --------------------------------------------------------------------------------------


def load_matplotlib() -> Any:
    """pyplot on the Agg backend, or a clear exit before any minute is spent."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit(f"bench/soak.py draws its chart with matplotlib, which is not "
                         f"installed in {sys.prefix}: {BENCH_EXTRA_HINT} (or pass --no-png)"
                         ) from None
    return plt


def _rolling(ys: list[float], n: int) -> list[float]:
    out, acc = [], 0.0
    for i, y in enumerate(ys):
        acc += y
        if i >= n:
            acc -= ys[i - n]
        out.append(acc / min(i + 1, n))
    return out


def draw(soak: Soak, sm: dict, path: Path) -> None:
    plt = load_matplotlib()
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter
    s = soak.samples
    x = [r["t_s"] / 60 for r in s]
    fig, ax = plt.subplots(5, 1, figsize=(11, 14), sharex=True)
    a = soak.args
    restart = (f"restart after kill -9: /health {_f(sm.get('health_s'), '.1f')} s, "
               f"all rows {_f(sm.get('all_rows_s'), '.1f')} s")
    fig.suptitle(f"Weir soak: {a.hosts} hosts, {a.writers} writers, rate {a.rate or 'max'}, "
                 f"--wal-snapshot-size {a.wal_snapshot_size}, retention {a.retention_period}"
                 f"\n{_f(sm['lines_per_s'])} lines/s sustained"
                 + (f" = {sm['sustained_pct']:.0f}% of burst" if sm.get("sustained_pct") else "")
                 + f"; {restart}", fontsize=11)

    rate = [r["lines_per_s"] / 1000 for r in s]
    ax[0].plot(x, rate, lw=0.5, color="tab:blue", alpha=0.35, label="per second")
    ax[0].plot(x, _rolling(rate, 10), lw=1.5, color="tab:blue", label="10 s mean")
    if sm.get("burst_lines_per_s"):
        b = sm["burst_lines_per_s"] / 1000
        ax[0].axhline(b, color="tab:green", ls="--", lw=1, label="short burst (ingest.py)")
        ax[0].axhline(BURST_GOAL * b, color="tab:red", ls=":", lw=1,
                      label=f"{BURST_GOAL:.0%} of burst (goal)")
    ax[0].set_ylabel("k lines/s acked")
    ax[0].set_ylim(bottom=0)
    ax[0].legend(loc="lower right", fontsize=8)

    ax[1].plot(x, [r["rss_mib"] for r in s], color="tab:purple")
    ax[1].set_ylabel("server RSS (MiB)\nprocess tree")
    ax[1].set_ylim(bottom=0)

    ax[2].plot(x, [r["wal_mib"] for r in s], color="tab:orange", label="MiB")
    ax[2].set_ylabel("WAL (MiB)")
    ax[2].set_ylim(bottom=0)
    t2 = ax[2].twinx()
    t2.plot(x, [r["wal_files"] for r in s], color="tab:brown", lw=0.8, ls="--")
    t2.set_ylabel("WAL files (dashed)", color="tab:brown")
    t2.set_ylim(bottom=0)

    ax[3].plot(x, [r["parquet_files"] for r in s], color="tab:green", drawstyle="steps-post",
               label="files on disk")
    listed = [(xi, r["parquet_files_listed"]) for xi, r in zip(x, s, strict=True)
              if r["parquet_files_listed"] is not None]
    if listed:
        ax[3].plot(*zip(*listed, strict=True), color="tab:cyan", drawstyle="steps-post",
                   label="files listed (system.parquet_files)")
    ax[3].set_ylabel("Parquet files")
    ax[3].set_ylim(bottom=0)
    t3 = ax[3].twinx()
    t3.plot(x, [r["parquet_mib"] for r in s], color="tab:olive", lw=0.8, alpha=0.7)
    t3.set_ylabel("Parquet MiB", color="tab:olive")
    t3.set_ylim(bottom=0)
    # the server's own record: when each snapshot and compaction started
    for name, marker, color in (("snapshots", "|", "black"), ("compactions", "^", "tab:red")):
        recs = soak.life.get(name, [])
        for status, alpha in (("ok", 0.8), ("failed", 1.0)):
            ts = [r["t_s"] / 60 for r in recs if r.get("status") == status]
            if ts:
                ax[3].scatter(ts, [0] * len(ts), marker="x" if status == "failed" else marker,
                              color="red" if status == "failed" else color, alpha=alpha,
                              s=120 if marker == "|" else 50, clip_on=False, zorder=3,
                              label=f"{name[:-1]} {status}")
    ax[3].legend(loc="upper left", fontsize=8)

    qs = soak.queries.snapshot() if soak.queries else []
    colors = {"avg_1m_1host": "tab:blue", "count_5m": "tab:red"}
    for kind, _ in QueryLoop.QUERIES:
        pts = [((q[0] - soak.t_start) / 60, q[2] * 1000) for q in qs if q[1] == kind and q[3]]
        if pts:
            ax[4].scatter(*zip(*pts, strict=True), s=6, color=colors.get(kind), label=kind)
        bad = [(q[0] - soak.t_start) / 60 for q in qs if q[1] == kind and not q[3]]
        if bad:
            ax[4].scatter(bad, [1] * len(bad), marker="x", color=colors.get(kind),
                          label=f"{kind} failed")
    ax[4].set_yscale("log")
    ax[4].yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax[4].yaxis.set_major_formatter(ScalarFormatter())
    ax[4].yaxis.set_minor_formatter(NullFormatter())
    ax[4].set_ylabel("query latency (ms)")
    ax[4].legend(loc="upper left", fontsize=8)
    ax[4].set_xlabel("minutes since the writers started")
    for axis in ax:
        axis.grid(True, alpha=0.3)
        if soak.first_snapshot_t is not None:
            axis.axvline(soak.first_snapshot_t / 60, color="grey", ls="--", lw=0.8)
    ax[1].text(soak.first_snapshot_t / 60 if soak.first_snapshot_t is not None else 0, 0,
               " first snapshot" if soak.first_snapshot_t is not None else " no snapshot",
               fontsize=8, color="grey", va="bottom")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_queries_csv(soak: Soak) -> None:
    qs = soak.queries.snapshot() if soak.queries else []
    with open(soak.queries_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "query", "latency_ms", "ok", "result_or_error"])
        for t_end, kind, secs, ok, detail in qs:
            w.writerow([round(t_end - soak.t_start, 3), kind, round(secs * 1000, 3),
                        int(ok), detail])


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="bench/soak.py", formatter_class=_Help,
        description=__doc__.split("\n\n")[0],
        epilog="examples:\n"
               "  .venv/bin/python bench/soak.py                     # 10 min, max rate\n"
               "  .venv/bin/python bench/soak.py --duration 30m      # the README figure\n"
               "  nice .venv/bin/python bench/soak.py --duration 2m --rate 50000 "
               "--burst-rate 120000\n\n"
               "Output: bench/results/soak-<time>.csv (one row per second), "
               "-queries.csv, .json, .png.\nNeeds matplotlib: "
               ".venv/bin/pip install -e '.[bench]'")
    ap.add_argument("--duration", type=parse_duration, default="10m",
                    help="how long the writers run (e.g. 90s, 10m, 1h)")
    ap.add_argument("--rate", type=parse_rate, default="max",
                    help="'max', or lines per second over all writers")
    ap.add_argument("--hosts", type=int, default=1000, help="distinct hosts (series)")
    ap.add_argument("--writers", type=int, default=2,
                    help="concurrent writer processes, one keep-alive connection each")
    ap.add_argument("--batch", type=int, default=5000, help="lines per write request")
    ap.add_argument("--wal-flush-interval", default="1s", help="passed to `serve`")
    ap.add_argument("--wal-snapshot-size", type=int, default=60,
                    help="WAL files between snapshots, passed to `serve`")
    ap.add_argument("--retention-period", default="auto",
                    help="the database's retention period; auto = whole hours, at least 1h "
                         "and twice the run plus 10 min, so no row of the run ages out")
    ap.add_argument("--compaction-interval", default=None,
                    help="passed to `serve` if it lists the flag (None: the server's default)")
    ap.add_argument("--compaction-file-rows", default=None,
                    help="passed to `serve` if it lists the flag (None: the server's default)")
    ap.add_argument("--old-lines", type=int, default=100,
                    help="rows written an hour older than the retention period at the start, "
                         "to see retention at work (0: none)")
    ap.add_argument("--query-interval", type=parse_duration, default="5s",
                    help="seconds between query rounds")
    ap.add_argument("--sample-interval", type=parse_duration, default="1s",
                    help="seconds between samples (CSV rows)")
    ap.add_argument("--progress-every", type=parse_duration, default="10s",
                    help="seconds between progress lines on stderr")
    ap.add_argument("--burst-rate", type=float, default=None,
                    help="the short-burst lines/s to compare with; unset: measure it first "
                         "with bench/ingest.py's code (a fresh server, --burst-lines lines)")
    ap.add_argument("--burst-lines", type=int, default=500_000,
                    help="lines of the reference burst")
    ap.add_argument("--weir-bin", default=default_weir_bin(), help="Weir's influxdb3 executable")
    ap.add_argument("--weir-args", default="", help="extra `serve` flags")
    ap.add_argument("--data-root", metavar="DIR",
                    help="where the server's temp data dir goes (None: the system temp dir)")
    ap.add_argument("--keep-data", action="store_true", help="keep the data dir afterwards")
    ap.add_argument("--out-dir", default=str(REPO / "bench" / "results"),
                    help="where the CSV, JSON and PNG go")
    ap.add_argument("--no-png", action="store_true", help="skip the chart (no matplotlib)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    ap.add_argument("--start-timeout", type=float, default=60.0,
                    help="seconds for the server to answer /health at start")
    ap.add_argument("--restart-timeout", type=float, default=600.0,
                    help="seconds allowed for the restart after kill -9 to show every row")
    ap.add_argument("--seed", type=int, default=1, help="seed of the generated values")
    args = ap.parse_args(argv)
    if min(args.hosts, args.writers, args.batch, args.wal_snapshot_size) < 1:
        ap.error("--hosts, --writers, --batch and --wal-snapshot-size must be positive")
    if args.duration <= 0 or args.sample_interval <= 0 or args.query_interval <= 0:
        ap.error("--duration, --sample-interval and --query-interval must be positive")
    if args.retention_period == "auto":
        args.retention_period = f"{max(1, math.ceil(2 * (args.duration + 600) / 3600))}h"
    else:
        try:
            ret = parse_duration(args.retention_period)
        except argparse.ArgumentTypeError as e:
            ap.error(f"--retention-period: {e}")
        if ret < args.duration + 300:
            warn(f"note: --retention-period {args.retention_period} is shorter than the run "
                 f"plus 5 min: rows of the run age out, and the row count after the restart "
                 f"will be lower than the lines acknowledged")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.no_png:
        load_matplotlib()  # fail now, not after the soak
    if not Path(args.weir_bin).exists():
        raise SystemExit(f"Weir not found at {args.weir_bin}: run `bash scripts/setup.sh` "
                         f"or pass --weir-bin")
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    install_cleanup()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    warn(machine_line(machine_info()))
    burst = {"lines_per_s": args.burst_rate} if args.burst_rate else burst_reference(args)
    if not args.burst_rate:
        warn(f"[burst] {burst['lines_per_s']:,.0f} lines/s")
    soak = Soak(args, stamp)
    interrupted = False
    try:
        soak.start()
        warn(f"[soak] {args.writers} writers, {args.hosts} hosts, rate "
             f"{args.rate or 'max'}, for {fmt_clock(args.duration)}; samples -> "
             f"{soak.csv_path}")
        try:
            soak.run()
        except KeyboardInterrupt:
            interrupted = True
            soak.notes.append("interrupted: no kill -9 / restart measured")
            soak._stop_load()
        if not interrupted:
            soak.crash_and_restart()
    finally:
        if soak.writers:
            soak.stop_flag.value = 1
        if hasattr(soak, "server"):
            soak.finish()
    if not soak.samples:
        warn("no samples were taken")
        return 1
    write_queries_csv(soak)
    sm = summarize(soak, burst)
    json_path = Path(args.out_dir) / f"soak-{stamp}.json"
    params = dict(vars(args))
    write_json(str(json_path), {"benchmark": "soak", "machine": machine_info(),
                                "weir": weir_revision(), "params": params,
                                "batch": soak.batch, "summary": sm, "notes": soak.notes,
                                "life_cycle": soak.life,
                                "burst": {k: v for k, v in burst.items()
                                          if isinstance(v, int | float | str)}})
    png = None
    if not args.no_png:
        png = Path(args.out_dir) / f"soak-{stamp}.png"
        draw(soak, sm, png)
    print_summary(soak, sm, burst, png)
    ok = (not interrupted and sm.get("rows_after_restart") == sm["acked"]
          and not sm.get("restart_error"))
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        warn("interrupted; server stopped")
        sys.exit(130)
    except ServerError as e:
        warn(f"soak failed: {e}")
        sys.exit(1)
