"""Collect host metrics on a schedule, using only the standard library.

Trigger: `every:10s` (or any `every:` / `cron:` schedule). Writes one row per call to
`system_metrics` (argument `measurement` overrides the name), tagged with the host
name (argument `hostname` overrides it):

* `load1`, `load5`, `load15` - load averages (os.getloadavg)
* `cpu_count` - logical CPUs
* `mem_total_bytes`, `mem_available_bytes`, `mem_used_percent` - from /proc/meminfo
  when the system has it
* `disk_total_bytes`, `disk_used_bytes`, `disk_used_percent` - for the `path`
  argument (default: the plugin directory, else `/`)

The row's time is the scheduled call time, so rows line up with the schedule.
"""

# ruff: noqa: F821 - LineBuilder is a builtin inside the processing engine

import os
import shutil
import socket
from datetime import UTC


def _meminfo():
    """(total, available) bytes from /proc/meminfo, or None where it does not exist."""
    try:
        with open("/proc/meminfo") as f:
            values = {}
            for line in f:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    values[name] = int(parts[0]) * 1024  # kB
    except OSError:
        return None
    total = values.get("MemTotal")
    available = values.get("MemAvailable", values.get("MemFree"))
    if total is None or available is None:
        return None
    return total, available


def process_scheduled_call(influxdb3_local, call_time, args=None):
    args = args or {}
    line = LineBuilder(args.get("measurement", "system_metrics"))
    line.tag("host", args.get("hostname") or socket.gethostname())
    try:
        load1, load5, load15 = os.getloadavg()
        line.float64_field("load1", load1).float64_field("load5", load5)
        line.float64_field("load15", load15)
    except OSError:
        influxdb3_local.warn("load averages are not available on this system")
    line.int64_field("cpu_count", os.cpu_count() or 0)
    mem = _meminfo()
    if mem is not None:
        total, available = mem
        line.int64_field("mem_total_bytes", total)
        line.int64_field("mem_available_bytes", available)
        line.float64_field("mem_used_percent", round(100.0 * (total - available) / total, 2))
    path = args.get("path") or os.environ.get("PLUGIN_DIR") or "/"
    try:
        disk = shutil.disk_usage(path)
        line.int64_field("disk_total_bytes", disk.total)
        line.int64_field("disk_used_bytes", disk.used)
        line.float64_field("disk_used_percent", round(100.0 * disk.used / disk.total, 2))
    except OSError as e:
        influxdb3_local.warn(f"cannot read disk usage of {path}: {e}")
    # call_time is naive UTC (the engine runs plugins with TZ=UTC)
    line.time_ns(int(call_time.replace(tzinfo=UTC).timestamp()) * 1_000_000_000)
    influxdb3_local.write(line)
