"""Shared pieces of the storage acceptance tests: a last-write-wins model of InfluxDB's
point semantics, line-protocol rendering for it, polling helpers and probes for the
serve flags and system tables that the storage work adds.

A point is (table, tag set, timestamp). A later acknowledged write replaces the fields it
names and keeps the others; tags that a line leaves out are null, so `m,h=x` and
`m,h=x,r=y` are different series.
"""

from __future__ import annotations

import functools
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from conftest import WeirServer, free_port, weir_cmd

T = TypeVar("T")

FieldValue = float | int | bool | str
SeriesKey = tuple[str, tuple[tuple[str, str], ...], int]


# --- polling ---------------------------------------------------------------------------

def wait_for(fn: Callable[[], T], timeout: float = 30.0, interval: float = 0.05,
             what: str = "condition") -> T:
    """Poll `fn` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T = fn()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; "
                                 f"last value: {last!r}")
        time.sleep(interval)
        last = fn()
    return last


# --- probes for what the storage work adds -------------------------------------------

@functools.cache
def _serve_help() -> str:
    p = subprocess.run([*weir_cmd(), "serve", "--help"], capture_output=True, text=True,
                       timeout=120)
    return p.stdout


def serve_supports(flag: str) -> bool:
    """Whether `influxdb3 serve` (Weir's own options, not the ignored reference ones)
    knows `flag`."""
    return flag in _serve_help().split()


def require_flags(*flags: str) -> None:
    missing = [f for f in flags if not serve_supports(f)]
    if missing:
        pytest.skip(f"influxdb3 serve has no {', '.join(missing)} yet (issue 10 storage work)")


def has_system_table(server: WeirServer, db: str, name: str) -> bool:
    return server.query(db, f"SELECT * FROM system.{name} LIMIT 1").status_code == 200


def require_system_table(server: WeirServer, db: str, name: str) -> None:
    if not has_system_table(server, db, name):
        pytest.skip(f"system.{name} does not exist yet (issue 10 storage work)")


# --- server life cycle -------------------------------------------------------------------

def kill9_and_start(server: WeirServer) -> WeirServer:
    """SIGKILL the server and start it again on the same data dir (a new port, since the
    old one may linger in TIME_WAIT)."""
    server.stop(signal.SIGKILL)
    server.port = free_port()
    return server.start(timeout=60)


def write_ok(server: WeirServer, db: str, lp: str) -> None:
    r = server.write(db, lp)
    assert r.status_code == 204, f"write refused ({r.status_code}): {r.text[:500]}"


# --- Parquet files: what the manifests list and what lies on disk -----------------------

def parquet_files(server: WeirServer, db: str, table: str | None = None) -> list[dict]:
    r = server.query(db, "SELECT * FROM system.parquet_files")
    if r.status_code != 200:
        return []
    return [f for f in r.json() if table is None or f["table_name"] == table]


def stored_parquet(server: WeirServer) -> set[str]:
    """Parquet files the server's object store holds, as object-store paths: those under
    its data dir, or on S3 those in its bucket (the flags it was started with say which)."""
    return stored_objects(server, ".parquet")


def stored_objects(server: WeirServer, suffix: str, prefix: str = "") -> set[str]:
    """Keys under `prefix` ending in `suffix` in the server's object store (its data dir,
    or its S3 bucket)."""
    return {k for k in server.stored_objects(prefix) if k.endswith(suffix)}


def wait_persisted(server: WeirServer, db: str, table: str, time_ns: int,
                   timeout: float = 60.0) -> None:
    """Wait until a Parquet file of `table` holds a row at or after `time_ns`.

    Snapshots persist the buffer up to a WAL sequence, so a marker row written after the
    rows of interest being in Parquet means they are too (compaction keeps max_time)."""
    wait_for(lambda: any(f["max_time"] >= time_ns for f in parquet_files(server, db, table)),
             timeout=timeout, what=f"a snapshot of {db}.{table} reaching time {time_ns}")


def snapshot_now(server: WeirServer, db: str, table: str = "filler") -> None:
    """Write marker rows to `table`, one WAL file each, until a snapshot has persisted one
    of them (and so everything written before it). Marker by marker, so that the next
    few writes stay in the buffer: fewer than the snapshot size were written since."""
    first = 0

    def persisted() -> bool:
        return any(f["max_time"] >= first for f in parquet_files(server, db, table))

    for _ in range(4):
        t = time.time_ns()
        first = first or t
        write_ok(server, db, f"{table},kind=marker n=1i {t}")
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            if persisted():
                return
            time.sleep(0.05)
    # four WAL files were written: a snapshot is due; a loaded machine may just be slow
    wait_for(persisted, timeout=60, what=f"a snapshot of {db}.{table}")


# --- time --------------------------------------------------------------------------------

def parse_time(text: str) -> int:
    """The JSON output's RFC 3339 time (trailing zeros trimmed) as integer nanoseconds."""
    text = text.rstrip("Z")
    whole, _, frac = text.partition(".")
    secs = datetime.fromisoformat(whole).replace(tzinfo=UTC)
    return int(secs.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


def near_now(k_seconds: float = 0) -> int:
    return time.time_ns() - int(k_seconds * 1_000_000_000)


# --- line protocol -----------------------------------------------------------------------

def _escape_key(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _field_text(v: FieldValue) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Unsigned):
        return f"{int(v)}u"
    if isinstance(v, int):
        return f"{v}i"
    if isinstance(v, float):
        return repr(v)
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Unsigned(int):
    """An int field written with the `u` suffix (uint64)."""


def lp_line(table: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue],
            t: int) -> str:
    head = table.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")
    tag_text = "".join(f",{_escape_key(k)}={_escape_key(v)}" for k, v in tags.items())
    field_text = ",".join(f"{_escape_key(k)}={_field_text(v)}" for k, v in fields.items())
    return f"{head}{tag_text} {field_text} {t}"


# --- the model ---------------------------------------------------------------------------

class LwwModel:
    """InfluxDB's last-write-wins: one row per (table, tag set, time), fields merged in
    write order."""

    def __init__(self) -> None:
        self.points: dict[SeriesKey, dict[str, FieldValue]] = {}

    def write(self, table: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue],
              t: int) -> str:
        """Apply one line; return its line protocol."""
        key = (table, tuple(sorted(tags.items())), t)
        self.points.setdefault(key, {}).update(fields)
        return lp_line(table, tags, fields, t)

    def tables(self) -> set[str]:
        return {k[0] for k in self.points}

    def rows(self, table: str) -> list[dict[str, Any]]:
        out = []
        for (tb, tags, t), fields in self.points.items():
            if tb == table:
                out.append({**dict(tags), **{k: _plain(v) for k, v in fields.items()},
                            "time": t})
        return canonical(out)


def _plain(v: FieldValue) -> FieldValue:
    return int(v) if isinstance(v, Unsigned) else v


def canonical(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows in one order whatever order they came in, so duplicates show up side by side."""
    return sorted((dict(r) for r in rows), key=lambda r: json.dumps(
        sorted(r.items()), default=str))


def server_rows(server: WeirServer, db: str, table: str, columns: str = "*") -> list[dict]:
    """Every row of `table` with `time` as integer nanoseconds, canonically ordered."""
    rows = server.rows(db, f'SELECT {columns} FROM "{table}" ORDER BY time')
    for r in rows:
        r["time"] = parse_time(r["time"])
    return canonical(rows)


def diff_rows(got: list[dict], want: list[dict], limit: int = 8) -> str:
    """A readable difference between two canonical row lists."""
    gk = [json.dumps(sorted(r.items()), default=str) for r in got]
    wk = [json.dumps(sorted(r.items()), default=str) for r in want]
    extra = [k for k in gk if gk.count(k) > wk.count(k)]
    missing = [k for k in wk if wk.count(k) > gk.count(k)]
    return (f"{len(got)} rows, expected {len(want)}; "
            f"{len(extra)} unexpected or doubled, e.g. {extra[:limit]}; "
            f"{len(missing)} missing or stale, e.g. {missing[:limit]}")


def assert_matches_model(server: WeirServer, db: str, model: LwwModel,
                         context: str = "") -> None:
    for table in sorted(model.tables()):
        got = server_rows(server, db, table)
        want = model.rows(table)
        assert got == want, f"{context}: table {table}: {diff_rows(got, want)}"
