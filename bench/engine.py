"""Processing-engine benchmark: how fast Weir hands data to plugins and answers through them.

    .venv/bin/python bench/engine.py [--seconds 15] [--json OUT]

Starts Weir itself (on 127.0.0.1, throw-away data dir, `--plugin-dir TMP/plugins`) with
do-nothing plugins it writes into the plugin dir, and measures:

1. write -> WAL plugin latency: single-line writes, one at a time, each carrying a
   unique id and the client's send time; an `all_tables` plugin appends
   `id sent seen` (seen = `time.time_ns()` on entry to `process_writes`) to a file in
   the plugin dir; latency = seen - ack (ack = the client's clock when the 204 has been
   read). One server run per `--wal-flush-intervals` value (default 1s,10ms).
2. rows/s delivered into `process_writes`: client processes POST 5000-line batches
   back to back for `--seconds`; a counting plugin appends `seen rows` per call.
3. request-trigger round trips/s: `GET /api/v3/engine/ping` (plugin returns
   `{"ok": True}`) from 1 and 4 keep-alive connections for `--seconds` each.

2 and 3 run on the first server (the first flush interval). See bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import queue
import random
import shlex
import shutil
import signal
import sys
import threading
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    HOST,
    CpuDataset,
    HttpClient,
    Progress,
    Sampler,
    Server,
    ServerError,
    aligned_end_ns,
    binary_version,
    default_weir_bin,
    descendants,
    install_cleanup,
    machine_info,
    machine_line,
    percentile,
    table,
    tree_cpu,
    warn,
    weir_revision,
    write_json,
)

# --------------------------------------------------------------------------------------
# The plugins (written into the plugin dir before the server starts)
# --------------------------------------------------------------------------------------

# Each records what it saw by appending to a file: no write back through the WAL (which
# would make the plugin's own output a second WAL event, add write load, and put a query
# between us and the figure), no round trip to the server at all. One open+write+close
# per call costs a few tens of microseconds, after the time stamp is taken.
LATENCY_PLUGIN = '''\
"""bench/engine.py: record when each `lat` row reaches the plugin."""
import time


def process_writes(influxdb3_local, table_batches, args=None):
    seen = time.time_ns()
    out = []
    for tb in table_batches:
        if tb["table_name"] != "lat":
            continue
        for row in tb["rows"]:
            out.append(f"{row['id']} {row['sent']} {seen}\\n")
    if out:
        with open(args["out"], "a") as f:
            f.write("".join(out))
'''

COUNT_PLUGIN = '''\
"""bench/engine.py: count the rows delivered, one line per call."""
import time


def process_writes(influxdb3_local, table_batches, args=None):
    seen = time.time_ns()
    n = 0
    for tb in table_batches:
        n += len(tb["rows"])
    with open(args["out"], "a") as f:
        f.write(f"{seen} {n}\\n")
'''

PING_PLUGIN = '''\
"""bench/engine.py: the smallest request plugin."""


def process_request(influxdb3_local, query_parameters, request_headers, request_body,
                    args=None):
    return {"ok": True}
'''

NOOP_PLUGIN = '''\
"""bench/engine.py: a WAL plugin that does nothing."""


def process_writes(influxdb3_local, table_batches, args=None):
    pass
'''

HOLD_PLUGIN = '''\
"""bench/engine.py: does nothing, but waits while the file args["hold"] exists."""
import os
import time


def process_writes(influxdb3_local, table_batches, args=None):
    while os.path.exists(args["hold"]):
        time.sleep(0.05)
'''

PLUGINS = {"bench_latency.py": LATENCY_PLUGIN, "bench_count.py": COUNT_PLUGIN,
           "bench_ping.py": PING_PLUGIN, "bench_noop.py": NOOP_PLUGIN,
           "bench_hold.py": HOLD_PLUGIN}


# --------------------------------------------------------------------------------------
# Server and set-up
# --------------------------------------------------------------------------------------


def engine_server(weir_bin: str, flush: str, extra: list[str]) -> Server:
    def prepare(tmp: Path, _port: int) -> None:
        plugins = tmp / "plugins"
        plugins.mkdir()
        for name, text in PLUGINS.items():
            (plugins / name).write_text(text)

    def argv(tmp: Path, port: int) -> list[str]:
        return [weir_bin, "serve", "--node-id", "bench", "--object-store", "file",
                "--data-dir", str(tmp / "data"), "--plugin-dir", str(tmp / "plugins"),
                "--http-bind", f"{HOST}:{port}", "--without-auth",
                "--wal-flush-interval", flush, *extra]

    return Server("weir", f"Weir (wal flush {flush})", argv, "/health", (200,), prepare)


def configure(server: Server, db: str, trigger: str, plugin: str, spec: str,
              args: dict[str, str] | None) -> None:
    """Create the database and one trigger over HTTP, the way a user would."""
    c = HttpClient(server.port, 60.0)
    try:
        status, body = c.post("/api/v3/configure/database", json.dumps({"db": db}).encode(),
                              content_type="application/json")
        if status not in (200, 201, 204):
            raise ServerError(f"create database {db}: HTTP {status} {body[:300]!r}")
        req = {"db": db, "plugin_filename": plugin, "trigger_name": trigger,
               "trigger_specification": spec, "trigger_arguments": args,
               "trigger_settings": {"run_async": False, "error_behavior": "log"},
               "disabled": False}
        status, body = c.post("/api/v3/configure/processing_engine_trigger",
                              json.dumps(req).encode(), content_type="application/json")
        if status not in (200, 201, 204):
            raise ServerError(f"create trigger {trigger}: HTTP {status} {body[:300]!r}")
    finally:
        c.close()


def proc_cpu(pid: int) -> float:
    """utime+stime of one process (not its children), seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_split(pid: int) -> tuple[float, float]:
    """(server process, plugin workers) CPU seconds so far."""
    return proc_cpu(pid), sum(proc_cpu(p) for p in descendants(pid) if p != pid)


def machine_jiffies() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies of the whole machine, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0, 0, 0
    v += [0] * (8 - len(v))
    total = sum(v)
    return total - v[3] - v[4], v[7], total  # idle and iowait are not busy


class CpuWindow:
    """Server vs worker CPU, machine load and steal over one phase."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.s0, self.w0 = cpu_split(pid)
        self.b0 = tree_cpu(os.getpid())  # this script, its clients, the server, its workers
        self.m0 = machine_jiffies()
        self.t0 = time.monotonic()

    def result(self) -> dict:
        s1, w1 = cpu_split(self.pid)
        b1 = tree_cpu(os.getpid())
        m1 = machine_jiffies()
        wall = time.monotonic() - self.t0
        busy, steal, total = (b - a for a, b in zip(self.m0, m1, strict=True))
        ncpu = len(os.sched_getaffinity(0))
        return {"server_cpu_s": s1 - self.s0, "worker_cpu_s": w1 - self.w0, "cpu_wall_s": wall,
                "server_cores": (s1 - self.s0) / wall if wall else None,
                "worker_cores": (w1 - self.w0) / wall if wall else None,
                "machine_busy_cores": ncpu * busy / total if total else None,
                # CPU used by processes that are not part of this benchmark (other jobs)
                "other_cores": (max(0.0, ncpu * busy / total - (b1 - self.b0) / wall)
                                if total and wall else None),
                "cpu_steal_pct": 100 * steal / total if total else None}


class Tail:
    """The complete lines appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pos = 0
        self.partial = b""

    def lines(self) -> list[bytes]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return []
        self.pos += len(data)
        data = self.partial + data
        *done, self.partial = data.split(b"\n")
        return [d for d in done if d]


def stats_ms(vals_ns: list[int]) -> dict:
    v = sorted(x / 1e6 for x in vals_ns)
    if not v:
        return {"n": 0}
    return {"n": len(v), "min": v[0], "p50": percentile(v, 50), "p95": percentile(v, 95),
            "p99": percentile(v, 99), "max": v[-1], "mean": sum(v) / len(v)}


# --------------------------------------------------------------------------------------
# 1. write -> WAL plugin latency
# --------------------------------------------------------------------------------------


def latency_phase(server: Server, label: str, seconds: float, gap_ms: float, warmup: int,
                  timeout: float) -> dict:
    out = server.tmp / "plugins" / "lat_seen.txt"
    configure(server, "lat", "bench_latency", "bench_latency.py", "all_tables",
              {"out": str(out)})
    c = HttpClient(server.port, timeout)
    path = "/api/v3/write_lp?db=lat&precision=ns"
    acks: dict[int, tuple[int, int]] = {}  # id -> (sent, ack), timed writes only
    errors, first_error = 0, ""
    rnd = random.Random(7)

    def one(i: int) -> tuple[int, int] | None:
        nonlocal errors, first_error
        sent = time.time_ns()
        try:
            status, body = c.post(path, f"lat,src=bench id={i}i,sent={sent}i\n".encode())
        except (OSError, http.client.HTTPException) as e:
            errors += 1
            first_error = first_error or f"{type(e).__name__}: {e}"
            return None
        ack = time.time_ns()
        if status != 204:
            errors += 1
            first_error = first_error or f"HTTP {status}: {body[:200]!r}"
            return None
        return sent, ack

    for i in range(warmup):  # the first write creates the table; the worker warms up
        one(-1 - i)
        time.sleep(gap_ms / 1000)
    cpu = CpuWindow(server.pid)
    progress = Progress(label + " latency", int(seconds), unit="s")
    t0 = time.monotonic()
    i = 0
    while (el := time.monotonic() - t0) < seconds:
        r = one(i)
        if r is not None:
            acks[i] = r
        i += 1
        progress.update(int(el), f"{len(acks)} writes")
        # jittered gap: writes never overlap and never lock step with a timer
        time.sleep(rnd.uniform(0.5, 1.5) * gap_ms / 1000)
        if errors >= 20:
            break
    progress.update(int(seconds), f"{len(acks)} writes")
    progress.finish()
    c.close()
    # every acknowledged row must show up; wait for the stragglers
    tail = Tail(out)
    seen: dict[int, tuple[int, int]] = {}
    deadline = time.monotonic() + max(10.0, timeout)
    while True:
        for line in tail.lines():
            k, s, t = (int(x) for x in line.split())
            if k >= 0:
                seen[k] = (s, t)
        if all(k in seen for k in acks) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    res = cpu.result()
    lat, send_seen, ack_lat = [], [], []
    for k, (sent, ack) in acks.items():
        ack_lat.append(ack - sent)
        if k in seen:
            lat.append(seen[k][1] - ack)
            send_seen.append(seen[k][1] - sent)
    res.update({
        "writes": len(acks), "seen": len(lat), "missing": len(acks) - len(lat),
        "errors": errors, "first_error": first_error,
        "seen_minus_ack_ms": stats_ms(lat), "ack_ms": stats_ms(ack_lat),
        "seen_minus_send_ms": stats_ms(send_seen),
        "seen_before_ack": sum(1 for x in lat if x < 0),
    })
    s = res["seen_minus_ack_ms"]
    if s.get("n"):
        warn(f"[{label}] seen-ack p50 {s['p50']:.2f} ms, p99 {s['p99']:.2f} ms, "
             f"max {s['max']:.2f} ms over {s['n']} writes; {res['missing']} not seen")
    return res


# --------------------------------------------------------------------------------------
# 2. rows/s into process_writes
# --------------------------------------------------------------------------------------


def _write_client(idx: int, nclients: int, port: int, pool: list[tuple[bytes, int]],
                  seconds: float, timeout: float, barrier: mp.Barrier, res_q: mp.Queue,
                  acked: mp.Value) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    mine = pool[idx::nclients] or pool
    path = "/api/v3/write_lp?db=tput&precision=ns"
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.connect()
        barrier.wait(120)
    except Exception as e:  # noqa: BLE001 - the parent waits for one message from each client
        res_q.put(("failed", idx, f"{type(e).__name__}: {e}"))
        return
    t0 = time.time_ns()
    end = time.perf_counter() + seconds
    rows = batches = errors = consecutive = 0
    first_error = ""
    lat = array("d")
    i = 0
    while time.perf_counter() < end:
        body, n = mine[i % len(mine)]
        i += 1
        s = time.perf_counter()
        try:
            conn.request("POST", path, body=body,
                         headers={"Content-Type": "text/plain; charset=utf-8"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status == 204:
                rows += n
                consecutive = 0
                with acked.get_lock():
                    acked.value += n
            else:
                errors += 1
                consecutive += 1
                first_error = first_error or f"HTTP {resp.status}: {data[:300]!r}"
        except (OSError, http.client.HTTPException) as e:
            errors += 1
            consecutive += 1
            first_error = first_error or f"{type(e).__name__}: {e}"
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        lat.append(time.perf_counter() - s)
        batches += 1
        if consecutive >= 5:
            first_error += " (gave up after 5 consecutive failures)"
            break
    t1 = time.time_ns()
    conn.close()
    res_q.put(("done", idx, t0, t1, rows, batches, errors, first_error, lat.tobytes()))


def run_clients(target, nclients: int, args_fn, seconds: float, server: Server, label: str,
                counter: mp.Value, unit: str) -> tuple[list[tuple], int, Sampler]:
    """Fork `nclients` processes running target(*args_fn(i)), start them together, show
    progress while they run; returns their "done" messages and the start time (ns)."""
    ctx = mp.get_context("fork")
    res_q = ctx.Queue()
    barrier = ctx.Barrier(nclients + 1)
    procs = [ctx.Process(target=target, args=(*args_fn(i), barrier, res_q, counter),
                         daemon=True, name=f"bench-client-{i}") for i in range(nclients)]
    for p in procs:
        p.start()
    done: list[tuple] = []
    sampler = Sampler(server.pid)
    finished = False
    try:
        try:
            barrier.wait(120)
        except threading.BrokenBarrierError:  # a client aborted it, or it timed out
            msgs = []
            while True:
                try:
                    msgs.append(res_q.get(timeout=1))
                except queue.Empty:
                    break
            raise RuntimeError(f"{label}: clients could not start: {msgs}") from None
        t_start = time.time_ns()
        t0 = time.monotonic()
        progress = Progress(label, int(seconds), unit="s")
        while len(done) < nclients:
            try:
                msg = res_q.get(timeout=0.1)
                if msg[0] == "done":
                    done.append(msg)
                else:
                    raise RuntimeError(f"{label}: client {msg[1]} failed: {msg[2]}")
            except queue.Empty:
                pass
            sampler.sample()
            progress.update(min(int(time.monotonic() - t0), int(seconds)),
                            f"{counter.value:,} {unit}, RSS {sampler.peak / 2**20:.0f} MiB")
            if time.monotonic() - t0 > seconds + 300:
                raise RuntimeError(f"{label}: clients did not finish")
            if not server.alive():
                raise RuntimeError(f"{label}: the server exited with code "
                                   f"{server.proc.returncode}\n{server.log_tail()}")
            if len(done) < nclients and any(not p.is_alive() for p in procs) and \
                    res_q.empty():
                time.sleep(0.5)
                if res_q.empty():
                    raise RuntimeError(f"{label}: a client process died")
        progress.update(int(seconds), f"{counter.value:,} {unit}")
        progress.finish()
        finished = True
        return done, t_start, sampler
    finally:
        for p in procs:
            if not finished:  # interrupted or failed: do not wait for their deadline
                p.kill()
            p.join(5)
            if p.is_alive():
                p.kill()


def throughput_phase(server: Server, label: str, pool: list[tuple[bytes, int]], nclients: int,
                     seconds: float, timeout: float, drain_timeout: float) -> dict:
    out = server.tmp / "plugins" / "count_seen.txt"
    configure(server, "tput", "bench_count", "bench_count.py", "all_tables", {"out": str(out)})
    # warm up: the first write creates the table and its columns
    c = HttpClient(server.port, timeout)
    status, body = c.post("/api/v3/write_lp?db=tput&precision=ns", pool[0][0])
    c.close()
    if status != 204:
        raise RuntimeError(f"{label}: warm-up write: HTTP {status} {body[:300]!r}")
    warm_rows = pool[0][1]
    tail = Tail(out)
    calls: list[tuple[int, int]] = []
    deadline = time.monotonic() + 60
    while sum(n for _, n in calls) < warm_rows and time.monotonic() < deadline:
        calls += [tuple(int(x) for x in ln.split()) for ln in tail.lines()]  # type: ignore[misc]
        time.sleep(0.05)
    calls = []

    cpu = CpuWindow(server.pid)
    acked = mp.get_context("fork").Value("q", 0)
    done, t_start, sampler = run_clients(
        _write_client, nclients,
        lambda i: (i, nclients, server.port, pool, seconds, timeout),
        seconds, server, label + " writes", acked, "rows acked")
    t_end = max(m[3] for m in done)
    rows_acked = sum(m[4] for m in done)
    write_cpu = cpu.result()
    # wait until every acknowledged row has reached the plugin
    warn(f"[{label}] {rows_acked:,} rows acknowledged; waiting for the plugin to see them...")
    last_progress = time.monotonic()
    hard = time.monotonic() + drain_timeout
    delivered = 0
    while True:
        new = [tuple(int(x) for x in ln.split()) for ln in tail.lines()]
        if new:
            calls += new  # type: ignore[arg-type]
            delivered = sum(n for _, n in calls)
            last_progress = time.monotonic()
        if delivered >= rows_acked:
            break
        now = time.monotonic()
        if now - last_progress > 30 or now > hard:
            break
        sampler.sample()
        time.sleep(0.05)
    total_cpu = cpu.result()
    last_seen = max((t for t, _ in calls), default=t_start)
    in_window = sum(n for t, n in calls if t <= t_end)
    window_s = (t_end - t_start) / 1e9
    span_s = (last_seen - t_start) / 1e9
    lat = sorted(x for m in done for x in array("d", m[8]))
    res = {
        "clients": nclients, "batch_lines": pool[0][1],
        "write_window_s": window_s, "rows_acked": rows_acked,
        "batches": sum(m[5] for m in done), "errors": sum(m[6] for m in done),
        "first_error": next((m[7] for m in done if m[7]), ""),
        "acked_rows_per_s": rows_acked / window_s if window_s else None,
        "batch_p50_ms": percentile(lat, 50) * 1000, "batch_p99_ms": percentile(lat, 99) * 1000,
        "rows_delivered": delivered, "all_arrived": delivered == rows_acked,
        "delivered_in_window": in_window,
        "delivered_rows_per_s_in_window": in_window / window_s if window_s else None,
        "delivered_rows_per_s": delivered / span_s if span_s > 0 else None,
        "delivery_span_s": span_s,
        "drain_after_writes_s": max(0.0, (last_seen - t_end) / 1e9),
        "plugin_calls": len(calls),
        "rows_per_call": delivered / len(calls) if calls else None,
        "peak_rss_mib": sampler.peak / 2**20,
        "during_writes": write_cpu, "writes_and_drain": total_cpu,
    }
    warn(f"[{label}] {delivered:,} of {rows_acked:,} rows delivered in {len(calls)} calls; "
         f"{res['delivered_rows_per_s'] or 0:,.0f} rows/s")
    return res


# --------------------------------------------------------------------------------------
# 3. request trigger round trips
# --------------------------------------------------------------------------------------


def _ping_client(idx: int, port: int, seconds: float, timeout: float, barrier: mp.Barrier,
                 res_q: mp.Queue, counter: mp.Value) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    path = "/api/v3/engine/ping"
    try:
        conn.connect()
        barrier.wait(120)
    except Exception as e:  # noqa: BLE001 - the parent waits for one message from each client
        res_q.put(("failed", idx, f"{type(e).__name__}: {e}"))
        return
    t0 = time.time_ns()
    end = time.perf_counter() + seconds
    lat = array("d")
    errors = consecutive = pending = 0
    first_error = ""
    while (s := time.perf_counter()) < end:
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status == 200:
                lat.append(time.perf_counter() - s)
                consecutive = 0
            else:
                errors += 1
                consecutive += 1
                first_error = first_error or f"HTTP {resp.status}: {data[:300]!r}"
        except (OSError, http.client.HTTPException) as e:
            errors += 1
            consecutive += 1
            first_error = first_error or f"{type(e).__name__}: {e}"
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        pending += 1
        if pending >= 20:
            with counter.get_lock():
                counter.value += pending
            pending = 0
        if consecutive >= 5:
            first_error += " (gave up after 5 consecutive failures)"
            break
    t1 = time.time_ns()
    conn.close()
    res_q.put(("done", idx, t0, t1, len(lat), 0, errors, first_error, lat.tobytes()))


def request_phase(server: Server, label: str, connections: list[int], seconds: float,
                  timeout: float) -> dict:
    configure(server, "ping", "bench_ping", "bench_ping.py", "request:ping", None)
    c = HttpClient(server.port, timeout)
    status, body = c.get("/api/v3/engine/ping")
    for _ in range(50):  # warm up
        c.get("/api/v3/engine/ping")
    c.close()
    if status != 200 or json.loads(body) != {"ok": True}:
        raise RuntimeError(f"{label}: GET /api/v3/engine/ping: HTTP {status} {body[:300]!r}")
    out: dict[str, dict] = {"first_response": body.decode()}  # type: ignore[dict-item]
    for n in connections:
        cpu = CpuWindow(server.pid)
        counter = mp.get_context("fork").Value("q", 0)
        done, t_start, _ = run_clients(_ping_client, n,
                                       lambda i: (i, server.port, seconds, timeout),
                                       seconds, server, f"{label} ping x{n}", counter,
                                       "requests")
        t_end = max(m[3] for m in done)
        wall = (t_end - t_start) / 1e9
        ok = sum(m[4] for m in done)
        lat = sorted(x for m in done for x in array("d", m[8]))
        r = {"connections": n, "requests": ok, "wall_s": wall,
             "requests_per_s": ok / wall if wall else None,
             "p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000,
             "max_ms": lat[-1] * 1000 if lat else None,
             "errors": sum(m[6] for m in done),
             "first_error": next((m[7] for m in done if m[7]), ""), **cpu.result()}
        warn(f"[{label}] ping x{n}: {r['requests_per_s'] or 0:,.0f} requests/s, "
             f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms")
        out[str(n)] = r
    return out


# --------------------------------------------------------------------------------------
# 4. durable WAL triggers (issue #15): lag under maximum ingest, catch-up after a restart
# --------------------------------------------------------------------------------------


def wal_lag(server: Server, db: str, trigger: str) -> dict:
    """The trigger's lag now: files and seconds from /metrics, rows from the system
    table (each may be None when not reported)."""
    c = HttpClient(server.port, 30.0)
    out: dict = {"files": None, "seconds": None, "rows": None}
    try:
        status, body = c.get("/metrics")
        if status == 200:
            want = f'db="{db}",trigger="{trigger}"'
            for line in body.decode().splitlines():
                for key in ("files", "seconds"):
                    if line.startswith(f"weir_trigger_wal_lag_{key}{{") and want in line:
                        out[key] = float(line.rsplit(" ", 1)[1])
        q = json.dumps({"db": db, "format": "json", "q": (
            "SELECT wal_lag_rows FROM system.processing_engine_triggers "
            f"WHERE trigger_name = '{trigger}'")}).encode()
        status, body = c.post("/api/v3/query_sql", q, content_type="application/json")
        if status == 200 and (got := json.loads(body)):
            out["rows"] = got[0].get("wal_lag_rows")
    finally:
        c.close()
    return out


def lag_phase(server: Server, label: str, pool: list[tuple[bytes, int]], nclients: int,
              seconds: float, timeout: float, drain_timeout: float) -> dict:
    """Maximum ingest into a do-nothing WAL trigger; the trigger's lag sampled each second.
    Delivered rows = rows acknowledged - rows still waiting for the trigger."""
    configure(server, "tput", "bench_noop", "bench_noop.py", "all_tables", None)
    c = HttpClient(server.port, timeout)
    status, body = c.post("/api/v3/write_lp?db=tput&precision=ns", pool[0][0])
    c.close()
    if status != 204:
        raise RuntimeError(f"{label}: warm-up write: HTTP {status} {body[:300]!r}")
    warm = pool[0][1]
    acked = mp.get_context("fork").Value("q", 0)
    samples: list[dict] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            try:
                lag = wal_lag(server, "tput", "bench_noop")
            except (OSError, http.client.HTTPException, ValueError):
                lag = {"files": None, "seconds": None, "rows": None}
            a = acked.value
            lag.update(t=time.monotonic() - t0, acked=a + warm,
                       delivered=None if lag["rows"] is None else a + warm - lag["rows"])
            samples.append(lag)
            stop.wait(1.0)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        done, _t_start, _sampler = run_clients(
            _write_client, nclients, lambda i: (i, nclients, server.port, pool, seconds,
                                                timeout),
            seconds, server, label + " lag writes", acked, "rows acked")
        t_writes = time.monotonic() - t0
        warn(f"[{label}] writes stopped; waiting for the trigger to catch up...")
        deadline = time.monotonic() + drain_timeout
        while time.monotonic() < deadline:
            last = samples[-1] if samples else {}
            if last.get("t", 0) > t_writes and last.get("files") == 0:
                break
            time.sleep(0.2)
    finally:
        stop.set()
        th.join(10)
    rows_acked = sum(m[4] for m in done)
    window = [s for s in samples if s["t"] <= t_writes]
    drained = next((s["t"] - t_writes for s in samples
                    if s["t"] > t_writes and s.get("files") == 0), None)

    def series(key: str) -> list[float]:
        return sorted(s[key] for s in window if s.get(key) is not None)

    last_in = window[-1] if window else {}
    first_in = window[0] if window else {}
    span = (last_in.get("t", 0) - first_in.get("t", 0)) or None
    deliv = (None if span is None or last_in.get("delivered") is None
             or first_in.get("delivered") is None
             else (last_in["delivered"] - first_in["delivered"]) / span)
    res = {"clients": nclients, "rows_acked": rows_acked, "write_window_s": t_writes,
           "acked_rows_per_s": rows_acked / t_writes if t_writes else None,
           "delivered_rows_per_s": deliv, "drain_after_writes_s": drained,
           "samples": samples, "errors": sum(m[6] for m in done),
           "first_error": next((m[7] for m in done if m[7]), "")}
    for key in ("files", "seconds", "rows"):
        v = series(key)
        res[f"lag_{key}_p50"] = percentile(v, 50) if v else None
        res[f"lag_{key}_max"] = v[-1] if v else None
        res[f"lag_{key}_end"] = last_in.get(key)
    warn(f"[{label}] ingest {res['acked_rows_per_s'] or 0:,.0f} rows/s, delivered "
         f"{deliv or 0:,.0f} rows/s; lag max {res['lag_files_max']} files / "
         f"{res['lag_seconds_max']} s; caught up {fmt(drained, '.1f')} s after the writes")
    return res


def catchup_phase(server: Server, label: str, pool: list[tuple[bytes, int]], target: int,
                  timeout: float, drain_timeout: float, start_timeout: float) -> dict:
    """`target` rows pending for a do-nothing WAL trigger (its first call held open by a
    file), the server killed -9, the hold removed, the server restarted: the seconds from
    the launch until the trigger's lag is 0."""
    assert server.tmp is not None
    hold = server.tmp / "plugins" / "hold"
    configure(server, "cu", "bench_hold", "bench_hold.py", "all_tables", {"hold": str(hold)})
    c = HttpClient(server.port, timeout)
    path = "/api/v3/write_lp?db=cu&precision=ns"

    def post(body: bytes) -> None:
        status, text = c.post(path, body)
        if status != 204:
            raise RuntimeError(f"{label}: write: HTTP {status} {text[:300]!r}")

    post(pool[0][0])  # the trigger's first call completes: it has a checkpoint
    deadline = time.monotonic() + 60
    while wal_lag(server, "cu", "bench_hold")["files"] != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{label}: the warm-up write never reached the trigger")
        time.sleep(0.1)
    hold.touch()
    written, i = 0, 1
    progress = Progress(label + " catch-up writes", target, unit="rows")
    t0 = time.monotonic()
    while written < target:
        body, n = pool[i % len(pool)]
        post(body)
        written += n
        i += 1
        progress.update(min(written, target))
    progress.finish(f"{written:,} rows in {time.monotonic() - t0:.1f}s")
    c.close()
    time.sleep(0.5)
    before = wal_lag(server, "cu", "bench_hold")
    warn(f"[{label}] pending before the kill: {before}; kill -9, restart...")
    server.kill()
    hold.unlink()
    t_launch = time.monotonic()
    startup = server.restart(start_timeout)
    samples = []
    progress = Progress(label + " catch-up", int(before.get("files") or 1), unit="files")
    caught = None
    while time.monotonic() - t_launch < drain_timeout:
        lag = wal_lag(server, "cu", "bench_hold")
        lag["t"] = time.monotonic() - t_launch
        samples.append(lag)
        if lag["files"] is not None:
            progress.update(max(0, int((before.get("files") or 0) - lag["files"])),
                            f"lag {lag['files']:.0f} files, {lag['rows']} rows")
        if lag["files"] == 0:
            caught = lag["t"]
            break
        time.sleep(0.2)
    progress.finish("caught up" if caught is not None else "did NOT catch up")
    pending = before.get("rows")
    res = {"rows_written": written, "pending_files": before.get("files"),
           "pending_rows": pending, "pending_seconds": before.get("seconds"),
           "startup_s": startup, "caught_up_s": caught,
           "rows_per_s": pending / (caught - startup) if pending and caught
           and caught > startup else None, "samples": samples}
    warn(f"[{label}] restart answered /health in {startup:.1f}s; lag 0 after "
         f"{fmt(caught, '.1f')}s")
    return res


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def fmt(v: object, spec: str = ",.0f") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return format(v, spec) if isinstance(v, int | float) else str(v)


def print_report(results: dict, params: dict, info: dict, version: str) -> None:
    print()
    lat = results.get("latency", {})
    if lat:
        cols = list(lat)
        print(f"1. acknowledged write -> WAL plugin (all_tables) sees the row, ms; one-line "
              f"writes one at a time, ~{params['latency_gap_ms']:.0f} ms apart, "
              f"{params['seconds']:.0f} s per server")
        rows = [[f"{name} {p}",
                 *(fmt(lat[c].get(key, {}).get(p), ".2f") if "error" not in lat[c] else "-"
                   for c in cols)]
                for key, name in (("seen_minus_ack_ms", "seen - ack"),
                                  ("ack_ms", "send -> 204 ack"),
                                  ("seen_minus_send_ms", "seen - send"))
                for p in ("p50", "p95", "p99", "max")]
        rows.append(["seen - ack min", *(fmt(lat[c].get("seen_minus_ack_ms", {}).get("min"),
                                             ".2f") for c in cols)])
        rows.append(["seen before the ack arrived", *(fmt(lat[c].get("seen_before_ack"))
                                                      for c in cols)])
        rows.append(["writes timed", *(fmt(lat[c].get("writes")) for c in cols)])
        rows.append(["rows not seen", *(fmt(lat[c].get("missing")) for c in cols)])
        rows.append(["failed writes", *(fmt(lat[c].get("errors")) for c in cols)])
        rows.append(["cores used by other processes",
                     *(fmt(lat[c].get("other_cores"), ".2f") for c in cols)])
        print(table(["", *(f"flush {c}" for c in cols)], rows))
        for c in cols:
            for k in ("error", "first_error"):
                if lat[c].get(k):
                    print(f"  flush {c}: {k.replace('_', ' ')}: {lat[c][k]}")
        print()
    t = results.get("throughput")
    if t:
        print(f"2. rows delivered into process_writes (all_tables, counting plugin): "
              f"{t.get('clients', params['clients'])} client(s) POST {params['batch']}-line "
              f"TSBS cpu batches back to back for {params['seconds']:.0f} s, "
              f"flush {params['flush'][0]}")
        if "error" in t:
            print(f"  error: {t['error']}")
        else:
            w, a = t["during_writes"], t["writes_and_drain"]
            rows = [
                ["rows acknowledged (204)", fmt(t["rows_acked"])],
                ["write rows/s (acknowledged)", fmt(t["acked_rows_per_s"])],
                ["batch latency p50 / p99 (ms)",
                 f"{fmt(t['batch_p50_ms'], '.1f')} / {fmt(t['batch_p99_ms'], '.1f')}"],
                ["rows delivered to the plugin", fmt(t["rows_delivered"])],
                ["all rows arrived", "yes" if t["all_arrived"] else "NO"],
                ["delivered rows/s (first write -> last row seen)",
                 fmt(t["delivered_rows_per_s"])],
                ["delivered rows/s within the write window",
                 fmt(t["delivered_rows_per_s_in_window"])],
                ["plugin still catching up after writes stopped (s)",
                 fmt(t["drain_after_writes_s"], ".2f")],
                ["plugin calls / mean rows per call",
                 f"{fmt(t['plugin_calls'])} / {fmt(t['rows_per_call'])}"],
                ["server process cores busy (writes / incl. drain)",
                 f"{fmt(w['server_cores'], '.2f')} / {fmt(a['server_cores'], '.2f')}"],
                ["plugin worker cores busy (writes / incl. drain)",
                 f"{fmt(w['worker_cores'], '.2f')} / {fmt(a['worker_cores'], '.2f')}"],
                ["rows delivered per worker CPU-second",
                 fmt(t["rows_delivered"] / a["worker_cpu_s"] if a["worker_cpu_s"] else None)],
                ["peak server+workers RSS (MiB)", fmt(t["peak_rss_mib"])],
                ["whole machine cores busy (writes / incl. drain)",
                 f"{fmt(w['machine_busy_cores'], '.2f')} / {fmt(a['machine_busy_cores'], '.2f')}"],
                ["cores used by other processes (not this benchmark)",
                 f"{fmt(w['other_cores'], '.2f')} / {fmt(a['other_cores'], '.2f')}"],
                ["machine CPU steal (%)", fmt(a["cpu_steal_pct"], ".1f")],
                ["failed batches", fmt(t["errors"])],
            ]
            print(table(["", "value"], rows))
            if t.get("first_error"):
                print(f"  first error: {t['first_error']}")
        print()
    r = results.get("request")
    if r:
        print(f"3. request trigger round trips: GET /api/v3/engine/ping -> plugin returns "
              f'{{"ok": True}}; keep-alive connections, {params["seconds"]:.0f} s each')
        if "error" in r:
            print(f"  error: {r['error']}")
        else:
            cols = [k for k in r if k.isdigit()]
            rows = [
                ["requests/s", *(fmt(r[c]["requests_per_s"]) for c in cols)],
                ["latency p50 (ms)", *(fmt(r[c]["p50_ms"], ".2f") for c in cols)],
                ["latency p99 (ms)", *(fmt(r[c]["p99_ms"], ".2f") for c in cols)],
                ["latency max (ms)", *(fmt(r[c]["max_ms"], ".2f") for c in cols)],
                ["requests", *(fmt(r[c]["requests"]) for c in cols)],
                ["server process cores busy", *(fmt(r[c]["server_cores"], ".2f") for c in cols)],
                ["plugin worker cores busy", *(fmt(r[c]["worker_cores"], ".2f") for c in cols)],
                ["whole machine cores busy (incl. clients)",
                 *(fmt(r[c]["machine_busy_cores"], ".2f") for c in cols)],
                ["cores used by other processes",
                 *(fmt(r[c]["other_cores"], ".2f") for c in cols)],
                ["requests per CPU-second (server+worker)",
                 *(fmt(r[c]["requests"] / (r[c]["server_cpu_s"] + r[c]["worker_cpu_s"])
                       if r[c]["server_cpu_s"] + r[c]["worker_cpu_s"] > 0 else None)
                   for c in cols)],
                ["failed requests", *(fmt(r[c]["errors"]) for c in cols)],
            ]
            print(table(["", *(f"{c} conn" + ("s" if c != "1" else "") for c in cols)], rows))
            for c in cols:
                if r[c].get("first_error"):
                    print(f"  {c} conn: first error: {r[c]['first_error']}")
        print()
    g = results.get("lag")
    if g:
        print(f"4. WAL trigger lag under maximum ingest: do-nothing all_tables plugin, "
              f"{g.get('clients', params['clients'])} client(s) POST {params['batch']}-line "
              f"batches back to back for {params['seconds']:.0f} s, flush {params['flush'][0]}; "
              "lag from /metrics (files, seconds) and system.processing_engine_triggers "
              "(rows), sampled each second")
        if "error" in g:
            print(f"  error: {g['error']}")
        else:
            print(table(["", "ingest (acknowledged)", "delivered to the trigger"], [
                ["rows/s", fmt(g["acked_rows_per_s"]), fmt(g["delivered_rows_per_s"])]]))
            print(table(["lag", "p50", "max", "when the writes stopped"], [
                [k, fmt(g[f"lag_{k}_p50"], ".1f"), fmt(g[f"lag_{k}_max"], ".1f"),
                 fmt(g[f"lag_{k}_end"], ".1f")] for k in ("files", "seconds", "rows")]))
            print(f"  caught up {fmt(g['drain_after_writes_s'], '.1f')} s after the writes "
                  f"stopped; {fmt(g['rows_acked'])} rows acknowledged, "
                  f"{fmt(g['errors'])} failed batches")
            print("  t (s)  acked rows  delivered rows  lag files  lag s")
            for x in g["samples"][::max(1, len(g["samples"]) // 12)]:
                print(f"  {x['t']:5.1f}  {fmt(x['acked']):>10}  {fmt(x['delivered']):>14}  "
                      f"{fmt(x['files']):>9}  {fmt(x['seconds'], '.1f'):>5}")
        print()
    cu = results.get("catchup")
    if cu:
        print(f"5. catch-up after kill -9 and restart, do-nothing plugin, "
              f"{params['catchup_rows']:,} rows pending (its first call held open while "
              "they were written)")
        if "error" in cu:
            print(f"  error: {cu['error']}")
        else:
            print(table(["", "value"], [
                ["rows pending at the kill", fmt(cu["pending_rows"])],
                ["WAL files pending / oldest (s)",
                 f"{fmt(cu['pending_files'])} / {fmt(cu['pending_seconds'], '.1f')}"],
                ["restart -> /health (s)", fmt(cu["startup_s"], ".1f")],
                ["restart -> lag 0 (s)", fmt(cu["caught_up_s"], ".1f")],
                ["catch-up rows/s (after /health)", fmt(cu["rows_per_s"])],
            ]))
        print()
    print(machine_line(info))
    if version:
        print(f"weir: {version}")


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def build_pool(batches: int, batch: int, seed: int) -> list[tuple[bytes, int]]:
    ds = CpuDataset(lines=batches * batch, hosts=100, end_ns=aligned_end_ns(), seed=seed)
    prefixes = ds.prefixes()
    out = []
    for i in range(ds.n_batches(batch)):
        b = ds.batch(i, batch, prefixes)
        out.append((b, b.count(b"\n")))
    return out


def run_server(flush: str, first: bool, args: argparse.Namespace, phases: set[str],
               pool: list[tuple[bytes, int]] | None, results: dict) -> None:
    server = engine_server(args.weir_bin, flush, shlex.split(args.weir_args))
    key, n = flush, 1
    while key in results["latency"]:  # the same interval given twice
        n += 1
        key = f"{flush} #{n}"
    server.data_root = args.data_root
    label = server.label
    try:
        warn(f"[{label}] starting server...")
        server.start(args.start_timeout)
        if "latency" in phases:
            try:
                results["latency"][key] = latency_phase(server, label, args.seconds,
                                                          args.latency_gap_ms, args.warmup,
                                                          args.timeout)
            except (RuntimeError, ServerError, OSError, http.client.HTTPException,
                    ValueError) as e:
                warn(f"[{label}] latency FAILED: {e}")
                results["latency"][key] = {"error": str(e).splitlines()[0]}
        if first and pool is not None:
            try:
                results["throughput"] = throughput_phase(server, label, pool, args.clients,
                                                         args.seconds, args.timeout,
                                                         args.drain_timeout)
            except (RuntimeError, ServerError, OSError, http.client.HTTPException) as e:
                warn(f"[{label}] throughput FAILED: {e}")
                results["throughput"] = {"error": str(e).splitlines()[0]}
        if first and args.connections:
            try:
                results["request"] = request_phase(server, label, args.connections,
                                                   args.seconds, args.timeout)
            except (RuntimeError, ServerError, OSError, http.client.HTTPException,
                    ValueError) as e:
                warn(f"[{label}] request FAILED: {e}")
                results["request"] = {"error": str(e).splitlines()[0]}
        if not server.alive():
            warn(f"[{label}] the server died:\n{server.log_tail()}")
    except ServerError as e:
        warn(f"[{label}] FAILED: {e}")
        err = {"error": str(e).splitlines()[0]}
        if "latency" in phases:
            results["latency"][key] = err
        if first:
            results.update({k: err for k in ("throughput", "request") if k in phases})
    finally:
        server.stop()


def run_wal_phase(phase: str, flush: str, args: argparse.Namespace,
                  pool: list[tuple[bytes, int]], results: dict) -> None:
    """The lag or the catch-up phase, each on a server of its own."""
    server = engine_server(args.weir_bin, flush, shlex.split(args.weir_args))
    server.data_root = args.data_root
    label = f"{server.label} {phase}"
    try:
        warn(f"[{label}] starting server...")
        server.start(args.start_timeout)
        if phase == "lag":
            results["lag"] = lag_phase(server, label, pool, args.clients, args.seconds,
                                       args.timeout, args.drain_timeout)
        else:
            results["catchup"] = catchup_phase(server, label, pool, args.catchup_rows,
                                               args.timeout, args.drain_timeout,
                                               args.start_timeout)
    except (RuntimeError, ServerError, OSError, http.client.HTTPException, ValueError) as e:
        warn(f"[{label}] FAILED: {e}")
        results[phase] = {"error": str(e).splitlines()[0]}
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0,
                    help="length of each timed phase (latency per server, throughput, "
                         "each ping concurrency)")
    ap.add_argument("--wal-flush-intervals", default="1s,10ms",
                    help="one server run (latency) per value; throughput and request "
                         "phases run on the first")
    ap.add_argument("--latency-gap-ms", type=float, default=20.0,
                    help="mean pause between latency writes (jittered +-50%%)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed latency writes first")
    ap.add_argument("--batch", type=int, default=5000, help="lines per throughput batch")
    ap.add_argument("--clients", type=int, default=2, help="throughput client processes")
    ap.add_argument("--pool", type=int, default=20,
                    help="distinct batches built before the clock starts (then reused)")
    ap.add_argument("--connections", default="1,4",
                    help="concurrent keep-alive connections of the ping phase")
    ap.add_argument("--phases", default="latency,throughput,request",
                    help="which phases to run: latency, throughput, request, lag (WAL "
                         "trigger lag under maximum ingest), catchup (time to catch up "
                         "after a restart with --catchup-rows pending)")
    ap.add_argument("--catchup-rows", type=int, default=1_000_000,
                    help="rows pending for the trigger when the catchup phase restarts")
    ap.add_argument("--weir-bin", default=default_weir_bin(), help="Weir's influxdb3 executable")
    ap.add_argument("--weir-args", default="", help="extra `serve` flags for Weir")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    ap.add_argument("--drain-timeout", type=float, default=180.0,
                    help="longest wait for the plugin to see every acknowledged row")
    ap.add_argument("--start-timeout", type=float, default=60.0,
                    help="seconds for the server to answer /health")
    ap.add_argument("--data-root", metavar="DIR",
                    help="put the server's temp dir (data + plugins) under DIR, e.g. /dev/shm "
                         "to take the disk out; unset means the system temp dir")
    ap.add_argument("--seed", type=int, default=1, help="seed of the generated values")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = ap.parse_args()
    flushes = [x.strip() for x in args.wal_flush_intervals.split(",") if x.strip()]
    phases = {x.strip() for x in args.phases.split(",") if x.strip()}
    if unknown := phases - {"latency", "throughput", "request", "lag", "catchup"}:
        ap.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    args.connections = ([int(x) for x in args.connections.split(",") if x.strip()]
                        if "request" in phases else [])
    if not flushes or args.seconds <= 0 or min(args.batch, args.clients, args.pool) < 1 \
            or any(n < 1 for n in args.connections):
        ap.error("need a flush interval, positive --seconds, --batch, --clients, --pool "
                 "and --connections")
    if not Path(args.weir_bin).exists() and not shutil.which(args.weir_bin):
        ap.error(f"{args.weir_bin} not found (run `bash scripts/setup.sh`)")
    install_cleanup()
    info = machine_info()
    warn(machine_line(info))
    pool = None
    if phases & {"throughput", "lag", "catchup"}:
        t = time.perf_counter()
        pool = build_pool(args.pool, args.batch, args.seed)
        warn(f"built {len(pool)} batches of {args.batch} lines "
             f"({sum(len(b) for b, _ in pool) / 2**20:.0f} MiB) in "
             f"{time.perf_counter() - t:.1f}s")
    results: dict = {"latency": {}}
    t0 = time.monotonic()
    for i, flush in enumerate(flushes):
        if "latency" not in phases and i > 0:
            break  # the other servers only measure latency
        if phases & {"latency", "throughput", "request"}:
            run_server(flush, i == 0, args, phases, pool if "throughput" in phases else None,
                       results)
    for phase in ("lag", "catchup"):
        if phase in phases:
            assert pool is not None
            run_wal_phase(phase, flushes[0], args, pool, results)
    if "latency" not in phases:
        results.pop("latency", None)
    params = {k: getattr(args, k) for k in ("seconds", "latency_gap_ms", "warmup", "batch",
                                            "clients", "pool", "connections", "seed",
                                            "weir_args", "data_root", "catchup_rows")}
    params["flush"] = flushes
    params["total_runtime_s"] = time.monotonic() - t0
    version = " ".join(x for x in (
        binary_version([sys.executable, "-c",
                        "import weir; print(getattr(weir, '__version__', '?'))"]),
        weir_revision()) if x)
    print_report(results, params, info, version)
    if args.json:
        write_json(args.json, {"benchmark": "engine", "machine": info, "params": params,
                               "weir": version, "results": results})
    failed = any("error" in v for v in results.get("latency", {}).values()) or \
        any("error" in (results.get(k) or {}) for k in ("throughput", "request", "lag",
                                                         "catchup"))
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        warn("interrupted; server stopped")
        sys.exit(130)
