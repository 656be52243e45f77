"""Benchmark of the data replicator plugin (plugins/data_replicator): lines/s replicated
from one Weir server to another over the v3 write API, on loopback.

Three scenarios, each with fresh servers (source with the plugin, remote without):

* live        - a data-write trigger (`all_tables`) is running; N lines of the TSBS `cpu`
                data set are written to the source in batches; measured from the first
                write until the remote holds all N rows.
* backlog     - the same trigger while the remote is down: every flush is queued (gzip
                JSONL queue file); then the remote comes up and one small write starts
                a run; measured from then until the remote holds all N rows (reading
                the queue + sending it).
* scheduled   - N lines are written first; then a scheduled trigger (`every:1s`,
                `window=2h`) replicates them in its first run; measured from the
                trigger's creation (includes waiting for the first tick, < 1 s) until
                the remote holds all N rows; the run's own duration is shown too.

Every scenario checks that the remote ends with exactly N rows (none lost, none twice).

    .venv/bin/python bench/replicator.py
    .venv/bin/python bench/replicator.py --lines 200000 --scenarios live,backlog --json r.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
from benchlib import HOST, CpuDataset, HttpClient, Server

PLUGIN = benchlib.REPO / "plugins" / "data_replicator" / "data_replicator.py"
SCENARIOS = ("live", "backlog", "scheduled")


def source_server(weir_bin: str, flush: str) -> Server:
    def prepare(tmp: Path, port: int) -> None:
        (tmp / "plugins").mkdir()
        shutil.copy(PLUGIN, tmp / "plugins" / "data_replicator.py")

    def argv(tmp: Path, port: int) -> list[str]:
        return [weir_bin, "serve", "--node-id", "source", "--object-store", "file",
                "--data-dir", str(tmp / "data"), "--http-bind", f"{HOST}:{port}",
                "--without-auth", "--wal-flush-interval", flush,
                "--plugin-dir", str(tmp / "plugins")]

    return Server("weir-source", "Weir (source)", argv, "/health", (200,), prepare_fn=prepare)


def start_on_port(server: Server, port: int) -> Server:
    """Start `server` on a given port (benchlib picks a free one otherwise)."""
    original = benchlib.free_port
    benchlib.free_port = lambda: port
    try:
        return server.start()
    finally:
        benchlib.free_port = original


class Client(HttpClient):
    """HttpClient that retries a request once on a fresh connection when the server had
    closed the idle keep-alive one."""

    def request(self, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        try:
            return super().request(*args, **kwargs)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            return super().request(*args, **kwargs)


def check(status: int, body: bytes, what: str) -> None:
    if status >= 300:
        raise RuntimeError(f"{what}: HTTP {status}: {body[:300]!r}")


def sql(client: HttpClient, db: str, q: str) -> list[dict]:
    status, body = client.post("/api/v3/query_sql", json.dumps(
        {"db": db, "q": q, "format": "json"}).encode(), content_type="application/json")
    if status != 200:
        return []
    return json.loads(body)


def remote_count(client: HttpClient, db: str, table: str = "cpu") -> int:
    got = sql(client, db, f"SELECT count(*) AS n FROM {table}")
    return got[0]["n"] if got else 0


def create_trigger(client: HttpClient, db: str, name: str, spec: str,
                   args: dict[str, str]) -> None:
    status, body = client.post("/api/v3/configure/database", json.dumps({"db": db}).encode(),
                               content_type="application/json")
    if status not in (200, 204, 409):
        check(status, body, "create database")
    status, body = client.post("/api/v3/configure/processing_engine_trigger", json.dumps({
        "db": db, "trigger_name": name, "plugin_filename": "data_replicator.py",
        "trigger_specification": spec, "trigger_arguments": args, "disabled": False,
    }).encode(), content_type="application/json")
    check(status, body, "create trigger")


def plugin_logs(client: HttpClient, trigger: str) -> list[str]:
    rows = sql(client, "_internal", "SELECT log_text FROM system.processing_engine_logs "
               f"WHERE trigger_name = '{trigger}' ORDER BY event_time")
    return [r["log_text"] for r in rows]


def wait(cond, timeout: float, what: str, interval: float = 0.05) -> float:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return time.monotonic()
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def write_all(client: HttpClient, ds: CpuDataset, db: str, batch: int) -> None:
    prefixes = ds.prefixes()
    for i in range(ds.n_batches(batch)):
        status, body = client.post("/api/v3/write_lp", ds.batch(i, batch, prefixes),
                                   params={"db": db, "precision": "nanosecond"}, timeout=120)
        check(status, body, "write")


def run_scenario(name: str, opts: argparse.Namespace) -> dict:
    source = source_server(opts.weir_bin, opts.wal_flush_interval)
    remote = benchlib.weir_server(opts.weir_bin, opts.wal_flush_interval)
    try:
        source.start()
        remote_port = benchlib.free_port()
        while remote_port == source.port:
            remote_port = benchlib.free_port()
        src = Client(source.port, timeout=opts.timeout)
        end = (time.time_ns() // 10**9 - 5) * 10**9
        ds = CpuDataset(opts.lines, opts.hosts, end, interval_s=1 if name == "scheduled" else 10)
        args = {"host": HOST, "port_override": str(remote_port), "token": "bench",
                "database": "replica", "max_retries": "0"}
        result: dict = {"scenario": name, "lines": opts.lines}
        if name == "scheduled":
            start_on_port(remote, remote_port)
            write_all(src, ds, "bench", opts.batch)
            t0 = time.monotonic()
            create_trigger(src, "bench", "repl", "every:1s",
                           {**args, "source_measurement": "cpu", "window": "2h"})
        elif name == "live":
            start_on_port(remote, remote_port)
            create_trigger(src, "bench", "repl", "all_tables", {**args, "tables": "cpu"})
            t0 = time.monotonic()
            write_all(src, ds, "bench", opts.batch)
            result["source_ingest_s"] = round(time.monotonic() - t0, 3)
        else:  # backlog
            create_trigger(src, "bench", "repl", "all_tables", {**args, "tables": "cpu"})
            write_all(src, ds, "bench", opts.batch)

            def queued() -> int:
                return sum(int(m.group(1)) for line in plugin_logs(src, "repl")
                           if (m := re.search(r"Queued (\d+) lines", line)))

            wait(lambda: queued() >= opts.lines, opts.max_seconds, "the backlog to be queued",
                 interval=0.5)
            queue = source.tmp / "plugins" / "edr_queue_writes.jsonl.gz"  # type: ignore[operator]
            result["queue_file_bytes"] = queue.stat().st_size
            start_on_port(remote, remote_port)
            t0 = time.monotonic()
            status, body = src.post("/api/v3/write_lp", b"poke v=1",
                                    params={"db": "bench"})
            check(status, body, "poke")
        rem = Client(remote.port, timeout=opts.timeout)
        t1 = wait(lambda: remote_count(rem, "replica") >= opts.lines, opts.max_seconds,
                  f"{opts.lines} rows on the remote", interval=0.1)
        seconds = t1 - t0
        time.sleep(1.0)  # later runs must not send anything twice
        got = remote_count(rem, "replica")
        runs = [line for line in plugin_logs(src, "repl") if "Finished execution in" in line]
        result.update(seconds=round(seconds, 3), lines_per_s=round(opts.lines / seconds),
                      remote_rows=got, exact=got == opts.lines, plugin_runs=len(runs))
        if name == "scheduled":
            busiest = [line for line in plugin_logs(src, "repl")
                       if f"Queued {opts.lines} lines" in line]
            task = busiest[0].split("]")[0] if busiest else None
            for line in runs:
                if task and line.startswith(task):
                    result["run_took"] = line.split("Finished execution in ")[1]
        src.close()
        rem.close()
        return result
    finally:
        source.stop()
        remote.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=100_000)
    p.add_argument("--hosts", type=int, default=100)
    p.add_argument("--batch", type=int, default=5000, help="lines per write to the source")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--wal-flush-interval", default="1s")
    p.add_argument("--weir-bin", default=benchlib.default_weir_bin())
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--max-seconds", type=float, default=600.0)
    p.add_argument("--json", metavar="OUT")
    opts = p.parse_args()
    benchlib.install_cleanup()
    results = []
    ok = True
    for name in benchlib.iter_targets(opts.scenarios, {s: s for s in SCENARIOS}):
        benchlib.warn(f"scenario {name}: {opts.lines} lines ...")
        try:
            results.append(run_scenario(name, opts))
        except (RuntimeError, OSError) as e:
            ok = False
            benchlib.warn(f"scenario {name} failed: {e}")
    rows = [[r["scenario"], f"{r['lines']:,}", f"{r['seconds']:.2f}", f"{r['lines_per_s']:,}",
             "yes" if r["exact"] else f"NO ({r['remote_rows']})", str(r["plugin_runs"]),
             r.get("run_took", "")] for r in results]
    print(benchlib.table(["scenario", "lines", "seconds", "lines/s", "exact", "runs",
                          "scheduled run took"], rows))
    for r in results:
        if "source_ingest_s" in r:
            print(f"live: the source took {r['source_ingest_s']:.2f}s to ingest the writes")
        if "queue_file_bytes" in r:
            print(f"backlog: queue file {r['queue_file_bytes'] / 2**20:.1f} MiB for "
                  f"{r['lines']:,} lines")
    print(f"data: TSBS cpu, {opts.hosts} hosts, 10 tags + 10 float fields per line; "
          f"source --wal-flush-interval {opts.wal_flush_interval}")
    print(benchlib.machine_line(benchlib.machine_info()))
    if opts.json:
        benchlib.write_json(opts.json, {"results": results, "machine": benchlib.machine_info()})
    return 0 if ok and all(r["exact"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
