"""Line protocol parser throughput: `weir.lineprotocol.parse()` + `to_arrow()`.

    .venv/bin/python bench/bench_parser.py                 # 100k TSBS cpu lines
    .venv/bin/python bench/bench_parser.py --lines 200000 --hosts 1000 --batch 5000

Generates TSBS-style `cpu` lines (10 tags, 10 float fields, ns timestamps, time-major)
in memory, then times parsing them as one body and in request-sized batches, both on the
batch path and on the line path (which takes small bodies, bodies with backslash
escapes, and bodies with a bad line). Prints lines/s and field values/s for each, the
best of `--repeat` runs, by wall clock and per CPU second. No servers, no files.
`--string-field` adds a quoted string field to every line.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from weir.lineprotocol import parse
from weir.lineprotocol import parser as _parser_module

TAG_KEYS = ("hostname", "region", "datacenter", "rack", "os", "arch", "team", "service",
            "service_version", "service_environment")
FIELDS = ("usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
          "usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice")
REGIONS = {
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


def series_prefix(host: int, rnd: random.Random) -> str:
    region = rnd.choice(sorted(REGIONS))
    values = (f"host_{host}", region, rnd.choice(REGIONS[region]), str(rnd.randrange(100)),
              rnd.choice(("Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10")),
              rnd.choice(("x64", "x86")), rnd.choice(("SF", "NYC", "LON", "CHI")),
              str(rnd.randrange(20)), str(rnd.randrange(2)),
              rnd.choice(("production", "staging", "test")))
    return "cpu," + ",".join(f"{k}={v}" for k, v in zip(TAG_KEYS, values, strict=True))


def generate(lines: int, hosts: int, full_doubles: bool, string_field: bool = False,
             seed: int = 1) -> list[bytes]:
    """TSBS cpu rows, one per host every 10 s, time-major; one bytes object per line."""
    rnd = random.Random(seed)
    prefixes = [series_prefix(h, rnd) for h in range(hosts)]
    start = 1_700_000_000 * 10**9
    out = []
    for n in range(lines):
        step, h = divmod(n, hosts)
        if full_doubles:
            vals = ",".join(f"{k}={100.0 * rnd.random()!r}" for k in FIELDS)
        else:  # TSBS-like short values: ~250 bytes a line
            vals = ",".join(f"{k}={rnd.randrange(10000) / 100}" for k in FIELDS)
        if string_field:
            vals += f',state="{rnd.choice(("ok", "degraded, slow", "down = 1"))}"'
        out.append(f"{prefixes[h]} {vals} {start + step * 10 * 10**9}\n".encode())
    return out


def best_of(repeat: int, fn: Callable[[], int]) -> tuple[float, float, int]:
    """Best wall-clock and best CPU seconds of `repeat` runs (CPU time is the steadier
    figure on a shared machine), and the rows of the last run."""
    wall = cpu = float("inf")
    rows = 0
    for _ in range(repeat):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        rows = fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, rows


def run(bodies: list[bytes]) -> int:
    rows = 0
    for body in bodies:
        parsed = parse(body, precision="ns", default_time_ns=0)
        assert not parsed.errors, parsed.errors[:3]
        for table in parsed.tables.values():
            rows += table.to_arrow().num_rows
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--batch", type=int, default=5000, help="lines per request-sized body")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--full-doubles", action="store_true",
                    help="full-precision field values (~490 bytes a line) instead of ~360")
    ap.add_argument("--string-field", action="store_true",
                    help="add a quoted string field to every line")
    args = ap.parse_args()

    lines = generate(args.lines, args.hosts, args.full_doubles, args.string_field)
    n_fields = len(FIELDS) + args.string_field
    whole = [b"".join(lines)]
    batches = [b"".join(lines[i:i + args.batch]) for i in range(0, len(lines), args.batch)]
    size = len(whole[0])
    print(f"{args.lines} lines, {args.hosts} hosts, {size / args.lines:.0f} bytes/line, "
          f"{n_fields} fields/line; parse()+to_arrow(), best of {args.repeat}")

    cases = [("one body", whole, False), (f"bodies of {args.batch} lines", batches, False),
             (f"bodies of {args.batch} lines, line by line", batches, True)]
    for label, bodies, line_by_line in cases:
        old = _parser_module.FAST_PATH_MIN_BYTES
        if line_by_line:
            _parser_module.FAST_PATH_MIN_BYTES = 1 << 62
        try:
            wall, cpu, rows = best_of(args.repeat, lambda b=bodies: run(b))
        finally:
            _parser_module.FAST_PATH_MIN_BYTES = old
        assert rows == args.lines, rows
        values = rows * n_fields
        print(f"  {label:<36} {rows / wall:>10,.0f} lines/s {values / wall:>12,.0f} values/s"
              f" {size / wall / 1e6:>6.1f} MB/s   (per CPU second: {rows / cpu:,.0f} lines,"
              f" {values / cpu:,.0f} values)")


if __name__ == "__main__":
    main()
