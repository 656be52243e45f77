"""Shared pieces of the Weir benchmarks: the TSBS-style `cpu` data set, the servers under
test (Weir, InfluxDB 1.x, VictoriaMetrics) started on loopback with throw-away data dirs,
a keep-alive HTTP client with timeouts, /proc sampling of server memory and CPU, and
output helpers.

Used by `bench/ingest.py`, `bench/query.py` and `bench/soak.py`; not a public API.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only, always
INSTALL_HINT = "apt-get install influxdb victoria-metrics"

# --------------------------------------------------------------------------------------
# The data set
# --------------------------------------------------------------------------------------

MEASUREMENT = "cpu"
TAG_KEYS = ("hostname", "region", "datacenter", "rack", "os", "arch", "team", "service",
            "service_version", "service_environment")
FIELDS = ("usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
          "usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice")
_REGIONS = {
    "us-east-1": ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"),
    "us-west-1": ("us-west-1a", "us-west-1b"),
    "us-west-2": ("us-west-2a", "us-west-2b", "us-west-2c"),
    "eu-west-1": ("eu-west-1a", "eu-west-1b", "eu-west-1c"),
    "eu-central-1": ("eu-central-1a", "eu-central-1b"),
    "ap-southeast-1": ("ap-southeast-1a", "ap-southeast-1b"),
    "ap-southeast-2": ("ap-southeast-2a", "ap-southeast-2b"),
    "ap-northeast-1": ("ap-northeast-1a", "ap-northeast-1c"),
    "sa-east-1": ("sa-east-1a", "sa-east-1b", "sa-east-1c"),
}
_OS = ("Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10")
_ARCH = ("x64", "x86")
_TEAM = ("SF", "NYC", "LON", "CHI")
_ENV = ("production", "staging", "test")


def host_tags(i: int, seed: int = 1) -> dict[str, str]:
    """The ten tags of host number i, fixed for a given seed (TSBS's value lists)."""
    rnd = random.Random(seed * 7919 + i)
    region = rnd.choice(sorted(_REGIONS))
    return {
        "hostname": f"host_{i}",
        "region": region,
        "datacenter": rnd.choice(_REGIONS[region]),
        "rack": str(rnd.randrange(100)),
        "os": rnd.choice(_OS),
        "arch": rnd.choice(_ARCH),
        "team": rnd.choice(_TEAM),
        "service": str(rnd.randrange(20)),
        "service_version": str(rnd.randrange(2)),
        "service_environment": rnd.choice(_ENV),
    }


@dataclass(frozen=True)
class CpuDataset:
    """`lines` rows of the TSBS `cpu` measurement: `hosts` hosts, one row per host every
    `interval_s` seconds, time-major (all hosts at t0, then all at t0+10s, ...), ns
    timestamps ending at `end_ns`. Batch i is a pure function of (seed, i), so any process
    can build any batch without the others."""

    lines: int
    hosts: int
    end_ns: int
    interval_s: int = 10
    seed: int = 1

    @property
    def steps(self) -> int:
        return -(-self.lines // self.hosts)

    @property
    def start_ns(self) -> int:
        return self.end_ns - (self.steps - 1) * self.interval_s * 1_000_000_000

    @property
    def field_values(self) -> int:
        return self.lines * len(FIELDS)

    def n_batches(self, batch: int) -> int:
        return -(-self.lines // batch)

    def prefixes(self) -> list[str]:
        out = []
        for h in range(self.hosts):
            tags = host_tags(h, self.seed)
            out.append(MEASUREMENT + "," + ",".join(f"{k}={tags[k]}" for k in TAG_KEYS) + " ")
        return out

    def batch(self, i: int, size: int, prefixes: list[str] | None = None) -> bytes:
        """Lines [i*size, (i+1)*size) as line protocol."""
        return self.chunk(i * size, (i + 1) * size, prefixes, key=i)

    def chunk(self, first: int, stop: int, prefixes: list[str] | None = None,
              key: int | None = None) -> bytes:
        """Lines [first, stop) as line protocol; their values are a pure function of
        (seed, key), key defaulting to `first`."""
        prefixes = prefixes or self.prefixes()
        rnd = random.Random((self.seed << 32) ^ (first if key is None else key))
        r = rnd.random
        step_ns = self.interval_s * 1_000_000_000
        hosts = self.hosts
        start = self.start_ns
        names = [f + "=" for f in FIELDS]
        out = []
        for n in range(first, min(stop, self.lines)):
            step, h = divmod(n, hosts)
            # idle is high, the rest small, like a real host; full doubles like TSBS
            vals = [100.0 * r() * r() for _ in range(10)]
            vals[2] = 100.0 - vals[0] * 0.5 - vals[1] * 0.5
            out.append(prefixes[h] + ",".join(k + repr(v) for k, v in zip(names, vals, strict=True))
                       + " " + str(start + step * step_ns) + "\n")
        return "".join(out).encode()


def aligned_end_ns(lag_s: int = 120) -> int:
    """A recent timestamp 10 s before a whole minute, so that N minutes of data at 10 s
    cover N whole minutes (VictoriaMetrics drops samples outside its retention and ignores
    the newest 30 s in queries, so the data ends in the recent past)."""
    t = int(time.time()) - lag_s
    return (t - t % 60 - 10) * 1_000_000_000


def rfc3339(ns: int) -> str:
    s, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
    return f"{base}.{frac:09d}Z" if frac else base + "Z"


# --------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------


class HttpClient:
    """One keep-alive connection to 127.0.0.1:port; every call has a timeout."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        return self.conn

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None,
                timeout: float | None = None) -> tuple[int, bytes]:
        """Send one request and read the whole answer. A failed connection is dropped so
        the next call opens a fresh one; the error propagates (OSError/HTTPException)."""
        conn = self._connection()
        if timeout is not None:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
        except BaseException:
            self.close()
            raise
        finally:
            if timeout is not None:
                conn.timeout = self.timeout
                if conn.sock is not None:
                    conn.sock.settimeout(self.timeout)
        if resp.will_close:
            self.close()
        return resp.status, data

    def get(self, path: str, params: dict[str, str] | None = None,
            timeout: float | None = None) -> tuple[int, bytes]:
        return self.request("GET", path + ("?" + urlencode(params) if params else ""),
                            timeout=timeout)

    def post(self, path: str, body: bytes, params: dict[str, str] | None = None,
             content_type: str = "text/plain; charset=utf-8",
             timeout: float | None = None) -> tuple[int, bytes]:
        return self.request("POST", path + ("?" + urlencode(params) if params else ""),
                            body=body, headers={"Content-Type": content_type},
                            timeout=timeout)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------
# /proc sampling
# --------------------------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """pid and every live process below it."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def tree_rss(pid: int) -> int:
    """Resident bytes of pid and its descendants (summed RSS, as /proc reports it)."""
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total


def tree_cpu(pid: int) -> float:
    """CPU seconds (user+system) used so far by pid and its live descendants, plus the
    children they already reaped."""
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in rest[11:15])  # utime stime cutime cstime
        except (OSError, IndexError, ValueError):
            pass
    return total / _TICK


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat (idle and iowait are
    not busy)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    v += [0] * (8 - len(v))
    return sum(v) - v[3] - v[4], sum(v)


def cpu_times() -> tuple[int, int]:
    """(steal, total) jiffies of the whole machine, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (vals[7] if len(vals) > 7 else 0), sum(vals[:8])


@dataclass
class Sampler:
    """Peak memory of a process tree, sampled by calling `sample()` (every ~100 ms)."""

    pid: int
    peak: int = 0
    samples: int = 0
    last_t: float = 0.0

    def sample(self, min_interval: float = 0.1) -> None:
        now = time.monotonic()
        if now - self.last_t < min_interval:
            return
        self.last_t = now
        self.peak = max(self.peak, tree_rss(self.pid))
        self.samples += 1


# --------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------

_LIVE: list[Server] = []


class ServerError(RuntimeError):
    pass


@dataclass
class Server:
    """A database server process on 127.0.0.1 with its own temporary directory."""

    name: str
    label: str
    argv_fn: Callable[[Path, int], list[str]]
    health_path: str
    health_ok: tuple[int, ...] = (200, 204)
    prepare_fn: Callable[[Path, int], None] | None = None
    port: int = 0
    tmp: Path | None = None
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    extra: dict = field(default_factory=dict)
    data_root: str | None = None  # where the temp dir goes (None: the system's temp dir)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0, poll: float = 0.1) -> Server:
        """Start and wait until the health route answers, asking every `poll` seconds."""
        self.tmp = Path(tempfile.mkdtemp(prefix=f"weir-bench-{self.name}-", dir=self.data_root))
        self.port = free_port()
        if self.prepare_fn:
            self.prepare_fn(self.tmp, self.port)
        argv = self.argv_fn(self.tmp, self.port)
        self.log_path = self.tmp / "server.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps it
        _LIVE.append(self)
        try:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.tmp,
                                         start_new_session=True)
        except OSError as e:
            log.close()
            self.stop()
            raise ServerError(f"{self.label}: cannot run {argv[0]}: {e}") from None
        log.close()
        self.extra["argv"] = argv
        client = HttpClient(self.port, timeout=2.0)
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise ServerError(f"{self.label} exited with code {self.proc.returncode} "
                                  f"during start-up.\ncommand: {' '.join(argv)}\n"
                                  f"--- log tail ---\n{tail}")
            try:
                status, body = client.get(self.health_path)
                if status in self.health_ok:
                    client.close()
                    return self
                last = f"HTTP {status}: {body[:200]!r}"
            except (OSError, http.client.HTTPException) as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(poll)
        tail = self.log_tail()
        self.stop()
        raise ServerError(f"{self.label} did not answer {self.health_path} on {HOST}:{self.port} "
                          f"within {timeout:.0f}s (last: {last}).\ncommand: {' '.join(argv)}\n"
                          f"--- log tail ---\n{tail}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path else []
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:]) or "(empty log)"

    def disk_bytes(self) -> int:
        total = 0
        if self.tmp:
            for root, _dirs, files in os.walk(self.tmp):
                for f in files:
                    if root == str(self.tmp) and f == "server.log":
                        continue
                    with contextlib.suppress(OSError):
                        total += os.lstat(os.path.join(root, f)).st_size
        return total

    def stop(self, grace: float = 30.0, remove: bool = True) -> None:
        """SIGTERM the process group, SIGKILL after `grace` s, remove the temp dir
        (unless `remove` is false: then a later stop() removes it)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        if self.proc is not None:
            # whatever is left of the group, the leader included
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        if not remove:
            return
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        if self in _LIVE:
            _LIVE.remove(self)

    def kill(self) -> None:
        """SIGKILL the whole process group at once, as a crash would: nothing is flushed.
        The temp dir stays, so `restart()` can start again on the same data."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(30)

    def restart(self, timeout: float = 60.0) -> float:
        """Run the same command again on the same data dir and port (after `kill()` or
        `stop(remove=False)`); return the seconds from launch until the health check
        answers. Raises ServerError (with the log tail) if it exits or never answers."""
        argv = self.extra.get("argv")
        if not argv or self.tmp is None or self.log_path is None:
            raise ServerError(f"{self.label}: restart() before a start() with a kept data dir")
        if self.alive():
            raise ServerError(f"{self.label}: restart() while the server is still running")
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        log.write(b"\n--- restart ---\n")
        log.flush()
        t0 = time.monotonic()
        try:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.tmp,
                                         start_new_session=True)
        except OSError as e:
            raise ServerError(f"{self.label}: cannot run {argv[0]}: {e}") from None
        finally:
            log.close()
        if self not in _LIVE:
            _LIVE.append(self)
        client = HttpClient(self.port, timeout=2.0)
        last = "no answer"
        try:
            while time.monotonic() - t0 < timeout:
                if self.proc.poll() is not None:
                    raise ServerError(f"{self.label} exited with code {self.proc.returncode} "
                                      f"during restart.\ncommand: {' '.join(argv)}\n"
                                      f"--- log tail ---\n{self.log_tail()}")
                try:
                    status, body = client.get(self.health_path)
                    if status in self.health_ok:
                        return time.monotonic() - t0
                    last = f"HTTP {status}: {body[:200]!r}"
                except (OSError, http.client.HTTPException) as e:
                    last = f"{type(e).__name__}: {e}"
                time.sleep(0.05)
        finally:
            client.close()
        raise ServerError(f"{self.label} did not answer {self.health_path} within "
                          f"{timeout:.0f}s of a restart (last: {last}).\n"
                          f"--- log tail ---\n{self.log_tail()}")


def stop_all() -> None:
    for s in list(_LIVE):  # noqa: PERF101 - a copy: stop() removes s from _LIVE
        s.stop(grace=10.0)


def _on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    """Stop every server at exit, including on SIGTERM/SIGHUP (SIGINT raises
    KeyboardInterrupt, which also unwinds through the callers' finally blocks)."""
    atexit.register(stop_all)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    # even when started in the background, where the shell ignores SIGINT for us
    signal.signal(signal.SIGINT, signal.default_int_handler)


def default_weir_bin() -> str:
    venv = REPO / ".venv" / "bin" / "influxdb3"
    if venv.exists():
        return str(venv)
    return shutil.which("influxdb3") or str(venv)


def weir_server(weir_bin: str, wal_flush_interval: str = "1s",
                extra_args: list[str] | None = None) -> Server:
    def argv(tmp: Path, port: int) -> list[str]:
        return [weir_bin, "serve", "--node-id", "bench", "--object-store", "file",
                "--data-dir", str(tmp / "data"), "--http-bind", f"{HOST}:{port}",
                "--without-auth", "--wal-flush-interval", wal_flush_interval,
                *(extra_args or [])]

    return Server("weir", "Weir", argv, "/health", (200,))


_INFLUXD_CONF = """\
reporting-disabled = true
bind-address = "{host}:{rpc_port}"

[meta]
  dir = "{tmp}/meta"

[data]
  dir = "{tmp}/data"
  wal-dir = "{tmp}/wal"
  query-log-enabled = false

[coordinator]
  log-queries-after = "0s"

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{host}:{port}"
  auth-enabled = false
  log-enabled = false
  write-tracing = false
  pprof-enabled = false

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
"""


def influxdb_server(binary: str = "/usr/bin/influxd") -> Server:
    def prepare(tmp: Path, port: int) -> None:
        (tmp / "influxdb.conf").write_text(_INFLUXD_CONF.format(
            host=HOST, port=port, rpc_port=free_port(), tmp=tmp))

    def argv(tmp: Path, port: int) -> list[str]:
        return [binary, "-config", str(tmp / "influxdb.conf")]

    return Server("influxdb", "InfluxDB 1.x", argv, "/ping", (204, 200), prepare)


def victoriametrics_server(binary: str = "/usr/bin/victoria-metrics") -> Server:
    def argv(tmp: Path, port: int) -> list[str]:
        return [binary, "-storageDataPath", str(tmp / "data"), "-httpListenAddr",
                f"{HOST}:{port}", "-retentionPeriod", "100y", "-loggerLevel", "WARN"]

    return Server("victoriametrics", "VictoriaMetrics", argv, "/health", (200,))


def binary_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (out.stdout + out.stderr).strip().splitlines()
        return text[0] if text else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def weir_revision() -> str:
    """`git describe`-like id of the Weir tree measured (read-only git calls), with
    `+dirty` when src/ has uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return head + ("+dirty" if dirty else "") if head else ""


def missing_binary(path: str, label: str, quiet: bool = False) -> bool:
    """True (after saying how to install it) when `path` is not an executable."""
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return False
    if not quiet:
        warn(f"{label}: {path} not found; skipping this column. Install with: {INSTALL_HINT}")
    return True


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def warn(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Progress:
    """`[label] 42% (84/200 batches) 3.1s` on stderr: rewritten in place on a terminal,
    one line per 10% otherwise."""

    def __init__(self, label: str, total: int, unit: str = "batches", step: int = 10) -> None:
        self.label, self.total, self.unit, self.step = label, max(total, 1), unit, step
        self.tty = sys.stderr.isatty()
        self.t0 = time.monotonic()
        self.last_pct = -1
        self.last_step = -step

    def update(self, done: int, extra: str = "") -> None:
        pct = 100 * done // self.total
        if pct == self.last_pct:
            return
        self.last_pct = pct
        msg = (f"[{self.label}] {pct:3d}% ({done}/{self.total} {self.unit}) "
               f"{time.monotonic() - self.t0:6.1f}s {extra}")
        if self.tty:
            sys.stderr.write("\r" + msg.ljust(78))
            sys.stderr.flush()
        elif pct >= self.last_step + self.step or done >= self.total:
            self.last_step = pct - pct % self.step
            warn(msg)

    def finish(self, msg: str = "") -> None:
        if self.tty:
            sys.stderr.write("\n")
        if msg:
            warn(f"[{self.label}] {msg}")


def machine_info() -> dict[str, str | int]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": model or platform.processor(),
            "memory": mem, "python": platform.python_version(),
            "kernel": platform.release()}


def machine_line(info: dict) -> str:
    return (f"machine: nproc={info['nproc']}, cpu={info['cpu']}, mem={info['memory']}, "
            f"Python {info['python']}, Linux {info['kernel']}")


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for j, r in enumerate([header, *rows]):
        out.append("  ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i])
                             for i, c in enumerate(r)))
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def percentile(sorted_vals: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_vals:
        return float("nan")
    k = (len(sorted_vals) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def write_json(path: str, obj: object) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, default=str) + "\n")
    warn(f"wrote {path}")


def iter_targets(spec: str, known: dict[str, str]) -> Iterator[str]:
    for t in (x.strip() for x in spec.split(",")):
        if not t:
            continue
        if t not in known:
            raise SystemExit(f"unknown target {t!r}; choose from {', '.join(known)}")
        yield t


# --------------------------------------------------------------------------------------
# Profiling
# --------------------------------------------------------------------------------------


def start_py_spy(server: Server, out_dir: str, label: str,
                 native: bool = False) -> subprocess.Popen | None:
    """py-spy on the server tree, folded stacks (flamegraph.pl / speedscope read them);
    `native` adds C/C++/Rust frames (DataFusion, Arrow), slower to sample."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.path.exists(exe):
        warn("py-spy not found (pip install py-spy); not profiling")
        return None
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    out = Path(out_dir) / f"{label}.folded"
    warn(f"profiling the server with py-spy into {out}")
    p = subprocess.Popen([exe, "record", "--pid", str(server.pid), "--subprocesses",
                          "--threads", "--rate", "100", "--format", "raw",
                          *(["--native"] if native else []), "-o", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p.out = out  # type: ignore[attr-defined]
    time.sleep(1.0)  # let it attach before the clock starts
    return p


def stop_py_spy(p: subprocess.Popen | None) -> str | None:
    """Stop py-spy; print and return the summary of what it recorded (None if nothing)."""
    if p is None:
        return None
    p.send_signal(signal.SIGINT)  # py-spy writes its output and exits
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
    out = getattr(p, "out", None)
    if out and Path(out).exists():
        summary = summarize_folded(Path(out))
        warn(summary)
        return summary
    return None


def summarize_folded(path: Path, top: int = 15) -> str:
    """Top frames by self and by inclusive samples, line numbers folded together.
    py-spy leaves out idle threads; leaves that still look like waits (select, lock
    acquire, sleep) are counted apart."""
    self_n: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = idle = 0
    strip = re.compile(r":\d+\)$")
    # (a thread-pool worker whose leaf is _worker itself waits in its queue's get())
    idle_re = re.compile(r"^(?:[\w<>.]*\.)?(select|poll|epoll_wait|wait|acquire|sleep|"
                         r"accept|recv_into|_wait_for_tstate_lock)\s\(|"
                         r"^_worker \(concurrent/futures/thread\.py\)")
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        k = int(n)
        frames = [strip.sub(")", f) for f in stack.split(";")]
        total += k
        leaf = frames[-1]
        if idle_re.match(leaf):
            idle += k
            continue
        self_n[leaf] = self_n.get(leaf, 0) + k
        for f in set(frames):
            incl[f] = incl.get(f, 0) + k
    busy = max(total - idle, 1)
    out = [f"py-spy {path.name}: {total} samples, {idle} idle-looking, {busy} busy; "
           f"top self (share of busy samples):"]
    for f, k in sorted(self_n.items(), key=lambda x: -x[1])[:top]:
        out.append(f"  {100 * k / busy:5.1f}%  {f}")
    out.append("top inclusive:")
    for f, k in sorted(incl.items(), key=lambda x: -x[1])[:top + 10]:
        if f.startswith(("process ", "thread ")) or "(" not in f:
            continue
        out.append(f"  {100 * k / busy:5.1f}%  {f}")
    return "\n".join(out)


def folded_to_svg(folded: Path, svg: Path, title: str = "", width: int = 1800) -> Path:
    """A flame graph (root at the bottom, one box per frame, width = share of samples,
    hover for the name and count) of py-spy's folded stacks, as a standalone SVG."""
    tree: dict = {"n": 0, "kids": {}}
    for line in folded.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit() or not stack:
            continue
        node = tree
        node["n"] += int(n)
        for frame in stack.split(";"):
            node = node["kids"].setdefault(frame, {"n": 0, "kids": {}})
            node["n"] += int(n)
    total = max(tree["n"], 1)
    row_h, boxes, depth_max = 16, [], 0

    def walk(node: dict, x: float, depth: int) -> None:
        nonlocal depth_max
        for name, kid in sorted(node["kids"].items()):
            w = width * kid["n"] / total
            if w >= 0.5:
                boxes.append((x, depth, w, name, kid["n"]))
                depth_max = max(depth_max, depth)
                walk(kid, x, depth + 1)
            x += w

    walk(tree, 0.0, 0)
    height = (depth_max + 3) * row_h

    def esc(t: str) -> str:
        return t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="monospace" font-size="11">',
           f'<text x="4" y="13">{esc(title)} ({total} samples; hover a box)</text>']
    for x, depth, w, name, n in boxes:
        y = height - (depth + 1) * row_h
        hue = 20 + (hash(name.split(" ")[0]) % 40)
        label = esc(name[: int(w / 7)]) if w > 21 else ""
        out.append(f'<g><title>{esc(name)}: {n} samples ({100 * n / total:.1f}%)</title>'
                   f'<rect x="{x:.1f}" y="{y}" width="{max(w - 0.5, 0.5):.1f}" '
                   f'height="{row_h - 1}" fill="hsl({hue},85%,60%)"/>'
                   f'<text x="{x + 2:.1f}" y="{y + 12}">{label}</text></g>')
    out.append("</svg>")
    svg.write_text("\n".join(out) + "\n")
    return svg
