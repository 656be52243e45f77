"""Query benchmark: Weir (SQL) vs InfluxDB 1.x (equivalent InfluxQL), TSBS cpu-only queries.

    .venv/bin/python bench/query.py [--datasets 100x24h,1000x3h] [--iterations 50]
        [--targets weir,influxdb] [--queries TYPE,...] [--profile TYPE] [--json OUT]
    .venv/bin/python bench/query.py --hosts 5 --hours 1      # a tiny run, to check it works

For each data set (TSBS `cpu`, one row per host every 10 s) each target gets a fresh
server. All but the last hour is loaded first and, on Weir, persisted to Parquet and
compacted (the bench waits until system.parquet_files shows it); then the last hour is
loaded and stays in Weir's buffer. Each TSBS query type then runs `--warmup` untimed and
`--iterations` timed times over one keep-alive connection, with TSBS's random hosts and
time windows (the same sequence on every target). Reported: p50/p95/p99 latency in ms,
client side, including HTTP and reading the whole response, and Weir's p50 / InfluxDB's.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    FIELDS,
    REPO,
    CpuDataset,
    HttpClient,
    Progress,
    Server,
    ServerError,
    aligned_end_ns,
    binary_version,
    default_weir_bin,
    folded_to_svg,
    influxdb_server,
    install_cleanup,
    iter_targets,
    machine_info,
    machine_jiffies,
    machine_line,
    missing_binary,
    percentile,
    rfc3339,
    start_py_spy,
    stop_py_spy,
    table,
    tree_cpu,
    tree_rss,
    warn,
    weir_revision,
    weir_server,
    write_json,
)

TARGETS = {"weir": "Weir (SQL)", "influxdb": "InfluxDB 1.x (InfluxQL)"}
SHORT = {"weir": "Weir", "influxdb": "InfluxDB"}
WRITE_PATH = {"weir": "/api/v3/write_lp?db=bench", "influxdb": "/write?db=bench&precision=ns"}
S_NS = 1_000_000_000
STEP_NS = 10 * S_NS
HOUR_NS = 3600 * S_NS
DATASETS = {"100x24h": (100, 24), "1000x3h": (1000, 3)}
CACHE_NAME = "bench_lastpoint"
COMPACTION_INTERVAL_S = 2


# --------------------------------------------------------------------------------------
# The query types (TSBS cpu-only, as its InfluxDB and TimescaleDB generators write them)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """One query of a type: its random hosts and time window [start, end) in ns."""

    hosts: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True)
class QueryType:
    name: str
    description: str
    n_hosts: int  # random hosts per query (0: all hosts, no host filter)
    window_s: int  # length of the random time window (0: none)
    sql: Callable[[Instance], str]
    influxql: Callable[[Instance], str] | None
    expected: Callable[[Instance, CpuDataset], int | None]
    sql_fallbacks: tuple[Callable[[Instance], str], ...] = ()
    tsbs: bool = True


def _t(ns: int) -> str:
    return f"'{rfc3339(ns)}'"


def _sql_hosts(q: Instance) -> str:
    return "hostname IN (" + ", ".join(f"'{h}'" for h in q.hosts) + ")"


def _iql_hosts(q: Instance) -> str:
    return "(" + " or ".join(f"hostname = '{h}'" for h in q.hosts) + ")"


def _window(q: Instance) -> str:
    return f"time >= {_t(q.start)} AND time < {_t(q.end)}"


def _buckets(q: Instance, width_s: int) -> int:
    """Time buckets of `width_s` that the data points (every 10 s) in [start, end) fall in."""
    w = width_s * S_NS
    return ((q.end - STEP_NS) // w - q.start // w) + 1


def _single_groupby(metrics: int, hosts: int, hours: int) -> QueryType:
    cols = FIELDS[:metrics]
    return QueryType(
        f"single-groupby-{metrics}-{hosts}-{hours}",
        f"max of {metrics} field(s) per minute, {hosts} random host(s), random {hours} h",
        hosts, hours * 3600,
        lambda q: ("SELECT date_bin(INTERVAL '1 minute', time) AS minute, "
                   + ", ".join(f"max({c}) AS max_{c}" for c in cols)
                   + f" FROM cpu WHERE {_sql_hosts(q)} AND {_window(q)} "
                   "GROUP BY minute ORDER BY minute"),
        lambda q: ("SELECT " + ", ".join(f"max({c})" for c in cols)
                   + f" FROM cpu WHERE {_iql_hosts(q)} AND {_window(q)} GROUP BY time(1m)"),
        lambda q, ds: _buckets(q, 60),
    )


QUERIES = [
    _single_groupby(1, 1, 1),
    _single_groupby(5, 1, 12),
    QueryType(
        "cpu-max-all-8",
        "max of all 10 fields per hour, 8 random hosts, random 8 h",
        8, 8 * 3600,
        lambda q: ("SELECT date_bin(INTERVAL '1 hour', time) AS hour, "
                   + ", ".join(f"max({c}) AS max_{c}" for c in FIELDS)
                   + f" FROM cpu WHERE {_sql_hosts(q)} AND {_window(q)} "
                   "GROUP BY hour ORDER BY hour"),
        lambda q: ("SELECT " + ", ".join(f"max({c})" for c in FIELDS)
                   + f" FROM cpu WHERE {_iql_hosts(q)} AND {_window(q)} GROUP BY time(1h)"),
        lambda q, ds: _buckets(q, 3600),
    ),
    QueryType(
        "double-groupby-1",
        "mean of 1 field per hour and host, all hosts, random 12 h",
        0, 12 * 3600,
        lambda q: ("SELECT date_bin(INTERVAL '1 hour', time) AS hour, hostname, "
                   f"avg(usage_user) AS mean_usage_user FROM cpu WHERE {_window(q)} "
                   "GROUP BY hour, hostname ORDER BY hour, hostname"),
        lambda q: (f"SELECT mean(usage_user) FROM cpu WHERE {_window(q)} "
                   "GROUP BY time(1h), hostname"),
        lambda q, ds: _buckets(q, 3600) * ds.hosts,
    ),
    QueryType(
        "high-cpu-1",
        "all columns of the rows with usage_user > 90, 1 random host, random 12 h",
        1, 12 * 3600,
        lambda q: f"SELECT * FROM cpu WHERE usage_user > 90.0 AND {_sql_hosts(q)} AND {_window(q)}",
        lambda q: (f"SELECT * FROM cpu WHERE usage_user > 90.0 AND {_iql_hosts(q)} "
                   f"AND {_window(q)}"),
        lambda q, ds: None,  # depends on the values; the targets are compared instead
    ),
    QueryType(
        "lastpoint",
        "the newest row (all columns) of every host",
        0, 0,
        lambda q: "SELECT DISTINCT ON (hostname) * FROM cpu ORDER BY hostname, time DESC",
        lambda q: 'SELECT * FROM cpu GROUP BY "hostname" ORDER BY time DESC LIMIT 1',
        lambda q, ds: ds.hosts,
        (lambda q: ("SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY hostname "
                    "ORDER BY time DESC) AS rn FROM cpu) WHERE rn = 1"),),
    ),
    QueryType(
        "lastpoint (last cache)",
        "lastpoint through Weir's last-value cache (key hostname, every other column); "
        "its ratio is to InfluxDB's lastpoint",
        0, 0,
        lambda q: f"SELECT * FROM last_cache('cpu', '{CACHE_NAME}')",
        None,
        lambda q, ds: ds.hosts,
        tsbs=False,
    ),
    QueryType(
        "groupby-orderby-limit",
        "max of 1 field per minute, all hosts, the last 5 minutes before a random end",
        0, 3600,
        lambda q: ("SELECT date_bin(INTERVAL '1 minute', time) AS minute, "
                   f"max(usage_user) AS max_usage_user FROM cpu WHERE time < {_t(q.end)} "
                   "GROUP BY minute ORDER BY minute DESC LIMIT 5"),
        lambda q: (f"SELECT max(usage_user) FROM cpu WHERE time < {_t(q.end)} "
                   "GROUP BY time(1m) ORDER BY time DESC LIMIT 5"),
        lambda q, ds: 5,
    ),
    QueryType(
        "point-lookup",
        "one field of 1 random host over the last minute of data (not TSBS; issue #12's "
        "point lookup)",
        1, 0,
        lambda q: (f"SELECT time, usage_user FROM cpu WHERE {_sql_hosts(q)} "
                   f"AND time > {_t(q.end - 60 * S_NS)} AND time <= {_t(q.end)} ORDER BY time"),
        lambda q: (f"SELECT usage_user FROM cpu WHERE {_iql_hosts(q)} "
                   f"AND time > {_t(q.end - 60 * S_NS)} AND time <= {_t(q.end)}"),
        lambda q, ds: 6,
        tsbs=False,
    ),
]
QUERY_NAMES = {q.name: q for q in QUERIES}
# short names for --queries / --profile: "lastpoint-cache" for the one with a space
ALIASES = {"lastpoint-cache": "lastpoint (last cache)"}


def instances(qt: QueryType, ds: CpuDataset, n: int, seed: int) -> tuple[list[Instance], bool]:
    """`n` random queries of type qt over ds (TSBS: uniformly random window start, random
    distinct hosts), aligned to the 10 s grid of the data. Returns them and whether the
    window had to be cut to the data's span (TSBS would refuse such a query)."""
    rnd = random.Random(f"{seed}/{qt.name}/{ds.hosts}/{ds.steps}")
    lo, hi = ds.start_ns, ds.end_ns + STEP_NS  # the data covers [lo, hi)
    window = qt.window_s * S_NS
    clipped = window > hi - lo
    window = min(window, hi - lo)
    out = []
    for _ in range(n):
        if qt.n_hosts:
            hosts = tuple(f"host_{i}" for i in rnd.sample(range(ds.hosts),
                                                          min(qt.n_hosts, ds.hosts)))
        else:
            hosts = ()
        if window:
            slots = (hi - lo - window) // STEP_NS
            start = lo + rnd.randint(0, slots) * STEP_NS
            out.append(Instance(hosts, start, start + window))
        else:
            out.append(Instance(hosts, lo, ds.end_ns))
    return out, clipped


# --------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------


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

    def sql(self, q: str) -> list[dict]:
        """Weir: the rows of one SQL query (system tables, counts); raises on an error."""
        status, body = self.run(q)
        if status != 200:
            raise RuntimeError(f"{q}: HTTP {status}: {body[:300]!r}")
        return json.loads(body)

    def influxql(self, q: str) -> list[dict]:
        """InfluxDB: the series of one InfluxQL statement; raises on an error."""
        status, body = self.client.get("/query", {"db": "bench", "q": q, "epoch": "ns"})
        if status != 200:
            raise RuntimeError(f"{q}: HTTP {status}: {body[:300]!r}")
        res = json.loads(body)["results"][0]
        if "error" in res:
            raise RuntimeError(f"{q}: {res['error']}")
        return res.get("series", [])

    def count(self) -> int:
        if self.name == "weir":
            return int(self.sql("SELECT count(*) AS n FROM cpu")[0]["n"])
        series = self.influxql("SELECT count(usage_user) FROM cpu")
        return int(series[0]["values"][0][1]) if series else 0


@dataclass
class Loaded:
    """The data set cut into write bodies once, shared by every target: the older part
    (persisted before the queries) and the last `buffer_steps` steps (left in the buffer)."""

    ds: CpuDataset
    old: list[bytes]
    recent: list[bytes]
    old_rows: int


def build(ds: CpuDataset, batch: int, buffer_steps: int) -> Loaded:
    split = (ds.steps - buffer_steps) * ds.hosts
    prefixes = ds.prefixes()
    bounds = [*range(0, split, batch), split, *range(split + batch, ds.lines, batch),
              ds.lines]
    bodies: list[bytes] = []
    progress = Progress(f"{ds.hosts} hosts: generating", len(bounds) - 1, "bodies")
    for i in range(len(bounds) - 1):
        bodies.append(ds.chunk(bounds[i], bounds[i + 1], prefixes))
        progress.update(i + 1)
    progress.finish()
    n_old = -(-split // batch)
    return Loaded(ds, bodies[:n_old], bodies[n_old:], split)


def load(target: Target, bodies: list[bytes], rows: int, label: str) -> float:
    progress = Progress(label, len(bodies))
    t0 = time.perf_counter()
    done_rows = 0
    per = rows / max(len(bodies), 1)
    for i, b in enumerate(bodies):
        status, body = target.client.post(WRITE_PATH[target.name], b)
        if not 200 <= status < 300:
            raise RuntimeError(f"write failed: HTTP {status}: {body[:300]!r}")
        done_rows = round(per * (i + 1))
        el = time.perf_counter() - t0
        rate = done_rows / el if el else 0.0
        eta = (rows - done_rows) / rate if rate else 0.0
        progress.update(i + 1, f"{done_rows:,} rows, {rate:,.0f} rows/s, ETA {eta:.0f}s")
    wall = time.perf_counter() - t0
    progress.finish(f"{rows:,} rows in {wall:.1f}s ({rows / wall if wall else 0:,.0f} rows/s)")
    return wall


# --------------------------------------------------------------------------------------
# Bringing the storage to its state before the queries
# --------------------------------------------------------------------------------------


def weir_files(target: Target) -> list[dict]:
    return target.sql("SELECT path, row_count, size_bytes, min_time, max_time "
                      "FROM system.parquet_files WHERE table_name = 'cpu'")


def weir_persist(target: Target, old_rows: int, max_pads: int, timeout: float,
                 label: str) -> dict:
    """Until every row written so far is in Parquet: one-line writes to another table
    (`bench_pad`), each one WAL file, make the server reach --wal-snapshot-size and
    snapshot its whole buffer. At most `max_pads` (= the snapshot size) are written, so
    that after the last snapshot started fewer WAL files than that are counted."""
    t0 = time.monotonic()
    pads = 0
    persisted = 0
    last_note = 0.0
    while time.monotonic() - t0 < timeout:
        persisted = sum(int(f["row_count"]) for f in weir_files(target))
        if persisted >= old_rows:
            break
        if pads < max_pads:
            line = f"bench_pad v=1i {time.time_ns()}\n".encode()
            status, body = target.client.post(WRITE_PATH["weir"], line)
            if status >= 300:
                raise RuntimeError(f"pad write failed: HTTP {status}: {body[:200]!r}")
            pads += 1
        else:
            time.sleep(0.25)
        if time.monotonic() - last_note >= 5:
            last_note = time.monotonic()
            warn(f"[{label}] waiting for a snapshot: {persisted:,} of {old_rows:,} rows in "
                 f"Parquet, {pads} pad writes, {time.monotonic() - t0:.0f}s")
    else:
        raise RuntimeError(f"after {timeout:.0f}s only {persisted:,} of {old_rows:,} rows "
                           "were in Parquet files")
    warn(f"[{label}] all {old_rows:,} rows in Parquet after {time.monotonic() - t0:.1f}s "
         f"({pads} pad writes)")
    return {"pad_writes": pads, "persist_s": time.monotonic() - t0}


def _overlaps(files: list[dict]) -> int:
    spans = sorted((int(f["min_time"]), int(f["max_time"])) for f in files)
    return sum(1 for a, b in itertools.pairwise(spans) if b[0] <= a[1])


def _compaction_due(files: list[dict], file_rows: int) -> str:
    """What the compactor (weir.persist.compactor) is documented to merge still in
    `files`: files overlapping in time, or a run of small neighbours (under half of
    --compaction-file-rows each, together at most that, all in one clock hour) of 4 files
    or half a file's rows. "" when nothing. (A closed day's hour files are merged too,
    but the bench does not wait for that: on a day not yet over there is none.)"""
    if n := _overlaps(files):
        return f"{n} overlapping file(s)"
    run: list[int] = []
    run_hour = 0  # the clock hour of the run's files (runs do not cross hours)
    due: list[int] = []

    def close() -> None:
        if len(run) >= 4 or (len(run) >= 2 and sum(run) >= file_rows // 2):
            due.append(len(run))
        run.clear()

    for f in sorted(files, key=lambda f: int(f["min_time"])):
        rows = int(f["row_count"])
        if rows >= file_rows // 2:
            close()
            continue
        hour = int(f["min_time"]) // HOUR_NS
        if run and (sum(run) + rows > file_rows or hour != run_hour):
            close()
        run_hour = hour
        run.append(rows)
    close()
    return f"runs of {'+'.join(map(str, due))} small files" if due else ""


def weir_settle(target: Target, timeout: float, label: str, file_rows: int) -> dict:
    """Until compaction is done: nothing left that the compactor merges, and the listed
    files unchanged over 3 compaction intervals (and 6 s)."""
    t0 = time.monotonic()
    prev: frozenset[str] | None = None
    since = time.monotonic()
    last_note = 0.0
    files: list[dict] = []
    while time.monotonic() - t0 < timeout:
        files = weir_files(target)
        paths = frozenset(f["path"] for f in files)
        if paths != prev:
            prev, since = paths, time.monotonic()
        due = _compaction_due(files, file_rows)
        if not due and time.monotonic() - since >= max(6.0, 3 * COMPACTION_INTERVAL_S):
            break
        if time.monotonic() - last_note >= 5:
            last_note = time.monotonic()
            warn(f"[{label}] waiting for compaction: {len(files)} Parquet files"
                 f"{', ' + due + ' to merge' if due else ''}, {time.monotonic() - t0:.0f}s")
        time.sleep(1.0)
    else:
        warn(f"[{label}] compaction had not settled after {timeout:.0f}s; going on")
    snaps = target.sql("SELECT status, count(*) AS n FROM system.snapshots GROUP BY status")
    comps = target.sql("SELECT status, count(*) AS n, sum(input_files) AS inputs, "
                       "sum(output_files) AS outputs FROM system.compactions "
                       "WHERE table_name = 'cpu' GROUP BY status")
    state = {"files": len(files), "rows": sum(int(f["row_count"]) for f in files),
             "bytes": sum(int(f["size_bytes"]) for f in files), "overlapping": _overlaps(files),
             "snapshots": {r["status"]: int(r["n"]) for r in snaps},
             "compactions": {r["status"]: {"jobs": int(r["n"]), "inputs": int(r["inputs"] or 0),
                                           "outputs": int(r["outputs"] or 0)} for r in comps},
             "settle_s": time.monotonic() - t0}
    warn(f"[{label}] storage: {state['files']} Parquet file(s), {state['rows']:,} rows, "
         f"{state['bytes'] / 2**20:.1f} MiB; snapshots {state['snapshots']}, compactions "
         f"{state['compactions']}")
    return state


def influx_settle(target: Target, timeout: float, label: str) -> dict:
    """Until InfluxDB's storage engine has no compaction running and its cache holds no
    snapshot in progress, for 3 s in a row (SHOW STATS: tsm1_engine *Active, tsm1_cache)."""
    t0 = time.monotonic()
    quiet_since: float | None = None
    state: dict = {}
    while time.monotonic() - t0 < timeout:
        active = 0
        cache_bytes = 0
        tsm_files = 0
        for s in target.influxql("SHOW STATS"):
            row = dict(zip(s["columns"], s["values"][0], strict=False))
            if s["name"] == "tsm1_engine":
                active += sum(int(v) for k, v in row.items() if k.endswith("Active"))
            elif s["name"] == "tsm1_cache":
                cache_bytes += int(row.get("memBytes", 0))
            elif s["name"] == "tsm1_filestore":
                tsm_files += int(row.get("numFiles", 0))
        state = {"cache_bytes": cache_bytes, "tsm_files": tsm_files}
        if active == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 3:
                break
        else:
            quiet_since = None
        time.sleep(0.5)
    else:
        warn(f"[{label}] compactions still active after {timeout:.0f}s; going on")
    state["settle_s"] = time.monotonic() - t0
    warn(f"[{label}] storage: {state.get('tsm_files', '?')} TSM file(s), "
         f"{state.get('cache_bytes', 0) / 2**20:.1f} MiB in the cache")
    return state


def create_last_cache(target: Target, label: str) -> str | None:
    """POST /api/v3/configure/last_cache (key hostname, every other column, count 1).
    Returns None when it exists, else why it is not there."""
    body = json.dumps({"db": "bench", "table": "cpu", "name": CACHE_NAME,
                       "key_columns": ["hostname"], "count": 1, "ttl": 7 * 86400}).encode()
    status, resp = target.client.post("/api/v3/configure/last_cache", body,
                                      content_type="application/json")
    if status in (200, 201, 204):
        warn(f"[{label}] last-value cache {CACHE_NAME} created (HTTP {status})")
        return None
    if status in (404, 405):
        msg = "last-value cache: not available in this build"
    else:
        msg = f"last-value cache: creating it failed: HTTP {status}: {resp[:200]!r}"
    warn(f"[{label}] {msg}; skipping lastpoint (last cache)")
    return msg


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------


class CpuWindow:
    """The server's CPU, and the cores used by processes outside this benchmark."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.s0 = tree_cpu(server_pid)
        self.b0 = tree_cpu(os.getpid())
        self.m0 = machine_jiffies()
        self.t0 = time.monotonic()

    def result(self) -> dict:
        s1, b1, m1 = tree_cpu(self.pid), tree_cpu(os.getpid()), machine_jiffies()
        wall = time.monotonic() - self.t0
        busy, total = m1[0] - self.m0[0], m1[1] - self.m0[1]
        ncpu = len(os.sched_getaffinity(0))
        return {"server_cpu_s": s1 - self.s0, "wall_s": wall,
                "other_cores": (max(0.0, ncpu * busy / total - (b1 - self.b0) / wall)
                                if total and wall else None)}


def time_query(target: Target, qt: QueryType, insts: list[Instance], ds: CpuDataset,
               args: argparse.Namespace, label: str, profile: Path | None) -> dict:
    make = qt.sql if target.name == "weir" else qt.influxql
    assert make is not None
    text = make(insts[0])
    status, body = target.run(text)
    if status != 200 and target.name == "weir":
        for fb in qt.sql_fallbacks:
            warn(f"[{label}] {qt.name}: HTTP {status} {body[:200]!r}; trying another form")
            make = fb
            text = make(insts[0])
            status, body = target.run(text)
            if status == 200:
                break
    r: dict = {"query": text}
    try:
        if status != 200:
            raise ValueError(f"HTTP {status}: {body[:300]!r}")
        r["rows"] = target.rows(body)
    except (ValueError, KeyError, IndexError) as e:
        r["error"] = str(e)
        warn(f"[{label}] {qt.name}: FAILED: {e}")
        return r
    exp = qt.expected(insts[0], ds)
    r["expected_rows"] = exp
    if exp is not None and r["rows"] != exp:
        r["note"] = f"returned {r['rows']} rows, expected {exp}"
        warn(f"[{label}] {qt.name}: {r['note']}")
    profiler = None
    if profile is not None:
        profiler = start_py_spy(target.server, str(profile.parent), profile.stem,
                                native=args.profile_native)
    lat: list[float] = []
    progress = Progress(f"{label} {qt.name}", args.iterations, "runs", step=25)
    failures = 0
    cpu = CpuWindow(target.server.pid)
    t_start = time.monotonic()
    try:
        for i, inst in enumerate(insts):
            qtext = make(inst)
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
            if i == args.warmup:
                cpu = CpuWindow(target.server.pid)  # timed runs only
                t_start = time.monotonic()
            if i >= args.warmup:
                lat.append(dt)
                progress.update(len(lat), f"p50 {percentile(sorted(lat), 50) * 1000:.1f} ms")
                if (time.monotonic() - t_start > args.max_seconds
                        and len(lat) >= args.min_iterations):
                    r["cut_short"] = f"{len(lat)} runs: --max-seconds {args.max_seconds:g} reached"
                    break
    finally:
        if profiler is not None:
            r["profile_summary"] = stop_py_spy(profiler)
            folded = Path(profiler.out)  # type: ignore[attr-defined]
            if folded.exists():
                svg = folded_to_svg(folded, folded.with_suffix(".svg"),
                                    f"Weir server, {qt.name}, {label}")
                r["profile"] = {"folded": str(folded), "svg": str(svg)}
    progress.finish()
    lat.sort()
    c = cpu.result()
    r.update({"n": len(lat), "p50_ms": percentile(lat, 50) * 1000,
              "p95_ms": percentile(lat, 95) * 1000, "p99_ms": percentile(lat, 99) * 1000,
              "min_ms": lat[0] * 1000 if lat else None,
              "max_ms": lat[-1] * 1000 if lat else None,
              "server_cpu_ms_per_query": c["server_cpu_s"] * 1000 / len(lat) if lat else None,
              "other_cores": c["other_cores"]})
    return r


# --------------------------------------------------------------------------------------
# One target on one data set
# --------------------------------------------------------------------------------------


def make_server(t: str, args: argparse.Namespace, snapshot_size: int) -> Server | None:
    if t == "weir":
        if not Path(args.weir_bin).exists() and not shutil.which(args.weir_bin):
            warn(f"Weir: {args.weir_bin} not found (run `bash scripts/setup.sh`); skipping")
            return None
        extra = ["--wal-snapshot-size", str(snapshot_size),
                 "--compaction-interval", f"{COMPACTION_INTERVAL_S}s",
                 *shlex.split(args.weir_args)]
        server = weir_server(args.weir_bin, args.wal_flush_interval, extra)
    else:
        if missing_binary(args.influxd, "InfluxDB 1.x"):
            return None
        server = influxdb_server(args.influxd)
    server.data_root = args.data_root
    return server


def bench_target(t: str, data: Loaded, plan: dict[str, list[Instance]],
                 args: argparse.Namespace, dsname: str) -> dict:
    ds = data.ds
    label = f"{SHORT[t]} {dsname}"
    # every write body is one WAL file: no snapshot may start on its own (the pads
    # trigger the one that persists the older data), and the last hour must stay below it
    snapshot_size = len(data.old) + len(data.recent) + 50
    server = make_server(t, args, snapshot_size)
    if server is None:
        return {"skipped": f"{args.weir_bin} not found (bash scripts/setup.sh)" if t == "weir"
                else f"{args.influxd} not found (install: apt-get install -y influxdb)"}
    out: dict = {"queries": {}}
    target = None
    weir_args = shlex.split(args.weir_args)
    file_rows = 1_000_000  # the server's default --compaction-file-rows
    if "--compaction-file-rows" in weir_args[:-1]:
        file_rows = int(weir_args[weir_args.index("--compaction-file-rows") + 1])
    try:
        warn(f"[{label}] starting server...")
        server.start(args.start_timeout)
        out["command"] = " ".join(server.extra.get("argv", []))
        target = Target(t, server, args.timeout)
        if t == "influxdb":
            status, body = target.client.post(
                "/query", b"q=CREATE+DATABASE+bench",
                content_type="application/x-www-form-urlencoded")
            if status != 200:
                raise ServerError(f"CREATE DATABASE failed: HTTP {status} {body[:200]!r}")
        out["load_old_s"] = load(target, data.old, data.old_rows, f"{label} load older data")
        if t == "weir":
            out["persist"] = weir_persist(target, data.old_rows, snapshot_size,
                                          args.settle_timeout, label)
            weir_settle(target, args.settle_timeout, label, file_rows)
            out["last_cache"] = create_last_cache(target, label)
        else:
            influx_settle(target, args.settle_timeout, label)
        out["buffer_minutes"] = (ds.lines - data.old_rows) / ds.hosts / 6
        out["load_recent_s"] = load(target, data.recent, ds.lines - data.old_rows,
                                    f"{label} load last {out['buffer_minutes']:g} min")
        if t == "weir":
            out["storage"] = st = weir_settle(target, args.settle_timeout, label, file_rows)
            out["buffer_rows"] = ds.lines - st["rows"]
            if st["rows"] != data.old_rows:
                out["storage_note"] = (f"{st['rows']:,} rows in Parquet, expected "
                                       f"{data.old_rows:,}: a snapshot ran during the last load")
                warn(f"[{label}] {out['storage_note']}")
        else:
            out["storage"] = influx_settle(target, args.settle_timeout, label)
        n = target.count()
        out["rows"] = n
        if n != ds.lines:
            out["count_note"] = f"count reads {n:,} rows, {ds.lines:,} written"
            warn(f"[{label}] {out['count_note']}")
        for qt in QUERIES:
            if qt.name not in plan:
                continue
            if t == "influxdb" and qt.influxql is None:
                continue
            if qt.name == "lastpoint (last cache)" and out.get("last_cache"):
                out["queries"][qt.name] = {"skipped": out["last_cache"]}
                continue
            profile = None
            if t == "weir" and qt.name in args.profile:
                safe = qt.name.replace(" ", "-").replace("(", "").replace(")", "")
                profile = Path(args.profile_dir) / f"query-{dsname}-{safe}.folded"
            out["queries"][qt.name] = time_query(target, qt, plan[qt.name], ds, args, label,
                                                 profile)
        out["rss_mib"] = tree_rss(server.pid) / 2**20
        out["disk_mib"] = server.disk_bytes() / 2**20
    except (ServerError, RuntimeError, OSError, http.client.HTTPException, ValueError) as e:
        warn(f"[{label}] FAILED: {e}")
        if server.alive() is False and server.log_path:
            warn(server.log_tail())
        out["error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
    finally:
        if target is not None:
            target.client.close()
        server.stop()
    return out


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def fmt_ms(v: object) -> str:
    if not isinstance(v, int | float) or v != v:
        return "-"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def report_dataset(dsname: str, ds: CpuDataset, res: dict, plan_info: dict,
                   args: argparse.Namespace) -> list[str]:
    lines = [f"== {dsname}: {ds.hosts:,} hosts x {ds.steps * 10 / 3600:g} h at 10 s = "
             f"{ds.lines:,} rows (TSBS cpu, 10 tags, 10 fields), {rfc3339(ds.start_ns)} .. "
             f"{rfc3339(ds.end_ns)}"]
    w = res.get("weir", {})
    if w.get("storage"):
        st = w["storage"]
        comp = st["compactions"].get("ok", {})
        lines.append(
            f"   Weir storage while timed: {st['rows']:,} rows in {st['files']} Parquet "
            f"file(s) ({st['bytes'] / 2**20:.1f} MiB; {st['snapshots'].get('ok', 0)} snapshot(s), "
            f"{comp.get('jobs', 0)} compaction job(s) {comp.get('inputs', 0)} -> "
            f"{comp.get('outputs', 0)} files), {w['buffer_rows']:,} rows (the last "
            f"{w['buffer_minutes']:g} min) in the buffer")
    i = res.get("influxdb", {})
    if i.get("storage"):
        lines.append(f"   InfluxDB storage while timed: {i['storage'].get('tsm_files', '?')} TSM "
                     f"file(s), {i['storage'].get('cache_bytes', 0) / 2**20:.1f} MiB in its cache")
    cols = [t for t in res if "queries" in res[t] and "error" not in res[t]]
    header = ["query", *(f"{SHORT[t]} {p}" for t in cols for p in ("p50", "p95", "p99")),
              *(["Weir/Influx p50"] if {"weir", "influxdb"} <= set(cols) else []),
              "rows", "runs"]
    rows = []
    for qt in QUERIES:
        if qt.name not in plan_info:
            continue
        name = qt.name + ("" if qt.tsbs else " *") + (" +" if plan_info[qt.name] else "")
        row = [name]
        for t in cols:
            r = res[t]["queries"].get(qt.name, {})
            row += [fmt_ms(r.get("p50_ms")), fmt_ms(r.get("p95_ms")), fmt_ms(r.get("p99_ms"))]
        if {"weir", "influxdb"} <= set(cols):
            wq = res["weir"]["queries"].get(qt.name, {}).get("p50_ms")
            iname = "lastpoint" if qt.name == "lastpoint (last cache)" else qt.name
            iq = res["influxdb"]["queries"].get(iname, {}).get("p50_ms")
            row.append(f"{wq / iq:.2f}x" if wq and iq else "-")
        got = [res[t]["queries"].get(qt.name, {}).get("rows") for t in cols]
        row.append("/".join(str(g) for g in got if g is not None) or "-")
        runs = [res[t]["queries"].get(qt.name, {}).get("n") for t in cols]
        row.append("/".join(str(n) for n in runs if n is not None) or "-")
        rows.append(row)
    lines.append(table(header, rows))
    lines.append("   latency in ms (client side); * not a TSBS type; + window cut to the data's "
                 f"span ({ds.steps * 10 / 3600:g} h); rows = rows of the first query, per target")
    for t in cols:
        qs = res[t]["queries"]
        others = [r["other_cores"] for r in qs.values() if r.get("other_cores") is not None]
        cpu = {n: r["server_cpu_ms_per_query"] for n, r in qs.items()
               if r.get("server_cpu_ms_per_query") is not None}
        lines.append(f"   {SHORT[t]}: loaded in {res[t]['load_old_s']:.1f} + "
                     f"{res[t]['load_recent_s']:.1f} s; server CPU per query (ms): "
                     + ", ".join(f"{n} {v:.1f}" for n, v in cpu.items()))
        if others:
            lines.append(f"   {SHORT[t]}: cores used by other processes while timed: "
                         f"{min(others):.2f}..{max(others):.2f}"
                         + ("  (NOISY: other work was running)" if max(others) > 0.2 else ""))
    # problems and cross-checks
    for t, r in res.items():
        if "error" in r:
            lines.append(f"   {TARGETS[t]}: FAILED: {r['error']}")
        if "skipped" in r:
            lines.append(f"   {TARGETS[t]}: skipped: {r['skipped']}")
        lines.extend(f"   {TARGETS[t]}: {r[k]}" for k in ("storage_note", "count_note")
                     if r.get(k))
        lines.extend(f"   {TARGETS[t]} / {qn}: {q[k]}" for qn, q in r.get("queries", {}).items()
                     for k in ("error", "note", "skipped", "cut_short") if q.get(k))
    if {"weir", "influxdb"} <= set(cols):
        for qn, wq in res["weir"]["queries"].items():
            iq = res["influxdb"]["queries"].get(qn, {})
            if "rows" in wq and "rows" in iq and wq["rows"] != iq["rows"]:
                lines.append(f"   {qn}: Weir returned {wq['rows']} rows, InfluxDB {iq['rows']}")
    return lines


def report_profile(res: dict) -> list[str]:
    out = []
    for dsname, per in res.items():
        for qn, q in per.get("weir", {}).get("queries", {}).items():
            if q.get("profile"):
                out.append(f"profile of Weir, {dsname} / {qn}: {q['profile']['svg']} "
                           f"(folded stacks: {q['profile']['folded']})")
                if q.get("profile_summary"):
                    out.extend("   " + x for x in q["profile_summary"].splitlines())
    return out


def print_report(results: dict, datasets: dict[str, CpuDataset], plans: dict,
                 args: argparse.Namespace, info: dict) -> None:
    print()
    print(f"query: TSBS cpu-only query types, {args.iterations} timed runs per type after "
          f"{args.warmup} warm-up (at most {args.max_seconds:g} s of timed runs per type), "
          "latency in ms, client side")
    for dsname, res in results.items():
        print()
        print("\n".join(report_dataset(dsname, datasets[dsname], res, plans[dsname], args)))
    print()
    print("queries (the first of each type; hosts and windows vary from run to run):")
    first = next(iter(results.values()), {})
    for qt in QUERIES:
        shown = [(t, first[t]["queries"][qt.name]["query"]) for t in first
                 if qt.name in first[t].get("queries", {})
                 and "query" in first[t]["queries"][qt.name]]
        if not shown:
            continue
        print(f"  {qt.name}: {qt.description}")
        for t, text in shown:
            print(f"    {t}: {text}")
    for line in report_profile(results):
        print(line)
    print(machine_line(info))
    if any("weir" in r for r in results.values()):
        print(f"weir revision: {weir_revision() or '?'}")
    if any("queries" in r.get("influxdb", {}) for r in results.values()):
        print(f"influxdb: {binary_version([args.influxd, 'version']) or '?'}")


# --------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--datasets", default="100x24h,1000x3h",
                    help=f"comma list of {', '.join(DATASETS)}")
    ap.add_argument("--hosts", type=int, help="a custom data set instead: this many hosts ...")
    ap.add_argument("--hours", type=float, help="... over this many hours (with --hosts)")
    ap.add_argument("--buffer-minutes", type=int, default=60,
                    help="the newest minutes of data, left in Weir's buffer (at most half "
                         "the data set)")
    ap.add_argument("--queries", default=",".join(q.name for q in QUERIES),
                    help="comma list of query types (lastpoint-cache for the cache one)")
    ap.add_argument("--iterations", type=int, default=50, help="timed runs per query type")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs per type first")
    ap.add_argument("--max-seconds", type=float, default=90.0,
                    help="stop timing a type after this long (once --min-iterations ran)")
    ap.add_argument("--min-iterations", type=int, default=10)
    ap.add_argument("--batch", type=int, default=5000, help="lines per write while loading")
    ap.add_argument("--targets", default="weir,influxdb", help=f"comma list of {', '.join(TARGETS)}")
    ap.add_argument("--wal-flush-interval", default="1s", help="passed to Weir")
    ap.add_argument("--weir-bin", default=default_weir_bin(), help="Weir's influxdb3 executable")
    ap.add_argument("--weir-args", default="", help="extra `serve` flags for Weir")
    ap.add_argument("--influxd", default="/usr/bin/influxd")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP request")
    ap.add_argument("--start-timeout", type=float, default=60.0)
    ap.add_argument("--settle-timeout", type=float, default=600.0,
                    help="seconds to wait for persisting / compaction before the queries")
    ap.add_argument("--data-root", metavar="DIR",
                    help="put the servers' temp data dirs under DIR (default: system temp)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the values, hosts and windows")
    ap.add_argument("--profile", metavar="TYPE[,TYPE]",
                    help="record py-spy on Weir while each TYPE is timed: folded stacks + SVG")
    ap.add_argument("--profile-dir", default=str(REPO / "bench" / "results"))
    ap.add_argument("--profile-native", action="store_true",
                    help="py-spy --native: also the C++/Rust frames (Arrow, DataFusion)")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = ap.parse_args()
    if args.iterations < 1 or args.warmup < 0 or args.batch < 1 or args.buffer_minutes < 1:
        ap.error("--iterations, --batch and --buffer-minutes must be positive, --warmup "
                 "not negative")
    args.min_iterations = min(args.min_iterations, args.iterations)
    if (args.hosts is None) != (args.hours is None):
        ap.error("--hosts and --hours go together")
    if args.hosts is not None:
        if args.hosts < 1 or args.hours <= 0:
            ap.error("--hosts and --hours must be positive")
        sets = {f"{args.hosts}x{args.hours:g}h": (args.hosts, args.hours)}
    else:
        names = [x.strip() for x in args.datasets.split(",") if x.strip()]
        unknown = [n for n in names if n not in DATASETS]
        if unknown or not names:
            ap.error(f"--datasets: choose from {', '.join(DATASETS)}")
        sets = {n: DATASETS[n] for n in names}
    wanted = []
    for x in (x.strip() for x in args.queries.split(",")):
        if not x:
            continue
        name = ALIASES.get(x, x)
        if name not in QUERY_NAMES:
            short = {v: k for k, v in ALIASES.items()}
            ap.error(f"unknown query type {x!r}; choose from "
                     + ", ".join(short.get(n, n) for n in QUERY_NAMES))
        wanted.append(name)
    args.profile = [ALIASES.get(x.strip(), x.strip())
                    for x in (args.profile or "").split(",") if x.strip()]
    for x in args.profile:
        if x not in wanted:
            ap.error(f"--profile {x!r} is not among the --queries")
    targets = list(iter_targets(args.targets, TARGETS))
    install_cleanup()
    info = machine_info()
    warn(machine_line(info))

    results: dict[str, dict] = {}
    datasets: dict[str, CpuDataset] = {}
    plans: dict[str, dict[str, bool]] = {}
    end_ns = aligned_end_ns()
    for dsname, (hosts, hours) in sets.items():
        steps = max(2, round(hours * 360))
        ds = CpuDataset(lines=hosts * steps, hosts=hosts, end_ns=end_ns, seed=args.seed)
        buffer_steps = min(args.buffer_minutes * 6, steps // 2)
        if buffer_steps < args.buffer_minutes * 6:
            warn(f"{dsname}: only the last {buffer_steps / 6:g} min stay in the buffer "
                 "(at most half the data set)")
        datasets[dsname] = ds
        warn(f"== {dsname}: {ds.lines:,} rows, {ds.lines - (steps - buffer_steps) * hosts:,} "
             "of them in the last part")
        data = build(ds, args.batch, buffer_steps)
        plan: dict[str, list[Instance]] = {}
        clipped: dict[str, bool] = {}
        for name in wanted:
            plan[name], clipped[name] = instances(QUERY_NAMES[name], ds,
                                                  args.warmup + args.iterations, args.seed)
        plans[dsname] = clipped
        results[dsname] = {}
        for t in targets:
            results[dsname][t] = bench_target(t, data, plan, args, dsname)
        del data
    print_report(results, datasets, plans, args, info)
    if args.json:
        write_json(args.json, {
            "benchmark": "query", "machine": info, "params": vars(args),
            "weir_revision": weir_revision(),
            "influxdb_version": binary_version([args.influxd, "version"]),
            "datasets": {n: {"hosts": d.hosts, "steps": d.steps, "lines": d.lines,
                             "start_ns": d.start_ns, "end_ns": d.end_ns,
                             "windows_cut_to_span": [q for q, c in plans[n].items() if c]}
                         for n, d in datasets.items()},
            "results": results})
    ok = all("error" not in r and "skipped" not in r
             and all("error" not in q for q in r.get("queries", {}).values())
             for per in results.values() for r in per.values())
    return 0 if ok and results else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        warn("interrupted; servers stopped")
        sys.exit(130)
    except subprocess.SubprocessError as e:
        warn(f"failed: {e}")
        sys.exit(1)
