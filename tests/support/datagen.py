"""Production-shaped test data: deterministic line protocol plus the rows it must produce.

Bugs hide in toy data (timestamps of a few nanoseconds, one series, floats only), so the
default here is what a real agent writes: nanosecond timestamps near now, thousands of
series (hosts x regions), every field type, names that need escaping, integers beyond
float64's 2^53, and optionally rows exactly at and 1 ns before gen1 window boundaries.

    data = generate(seed=1, hosts=100, regions=20)   # 2,000 cpu series, near now
    server.write("db", data.lp())
    assert count == len(data.table_rows("cpu"))

Everything is derived from `seed` and `now_ns`, so a failing run can be reproduced by
passing the same two values (tests print them in their assertion messages via `describe`).
The expected rows are worked out here, independently of Weir's parser and formatter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

GEN1_NS = 600 * 10**9  # the server's default --gen1-duration (10m)

# field types as the catalog (and SHOW FIELD KEYS / system.influxdb_schema) names them
FLOAT, INTEGER, UINTEGER, STRING, BOOLEAN = "float", "integer", "uinteger", "string", "boolean"

# the plain table: no escapes anywhere, so big bodies take the parser's batch path
CPU = "cpu"
# the escaped table: a space and a comma in the measurement, tag keys/values and field
# keys with spaces, commas and equals signs, strings with quotes and backslashes
ESCAPED = "disk io,x"


@dataclass(frozen=True)
class TableSpec:
    name: str
    tag_keys: tuple[str, ...]
    field_types: dict[str, str]


TABLES: dict[str, TableSpec] = {
    CPU: TableSpec(CPU, ("host", "region"), {
        "usage": FLOAT, "cores": INTEGER, "uptime": UINTEGER, "state": STRING,
        "healthy": BOOLEAN}),
    ESCAPED: TableSpec(ESCAPED, ("host name", "mount,point"), {
        "used bytes": INTEGER, "ratio=pct": FLOAT, "free,u": UINTEGER, "note": STRING,
        "ro flag": BOOLEAN}),
}


@dataclass
class Row:
    """One point as a query returns it: tag values, field values (absent = null), time."""

    table: str
    tags: dict[str, str]
    fields: dict[str, Any]
    time: int

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...], int]:
        return (self.table, tuple(sorted(self.tags.items())), self.time)

    def get(self, name: str) -> Any:
        if name == "time":
            return self.time
        return self.tags[name] if name in self.tags else self.fields.get(name)


@dataclass
class Dataset:
    """Line protocol (in write order) and the rows a database must hold after it."""

    seed: int
    now_ns: int
    gen1_ns: int
    lines: list[tuple[str, str]]  # (table, line) in write order
    rows: list[Row]  # one per point, last write applied, sorted by (table, time, tags)
    boundaries: list[int] = field(default_factory=list)  # window starts with edge rows
    tables: dict[str, TableSpec] = field(default_factory=dict)
    overwrites_from: int | None = None  # index in `lines` of the first overwrite line

    def base_lp(self) -> str:
        """The lines before the first overwrite: every point once."""
        end = len(self.lines) if self.overwrites_from is None else self.overwrites_from
        return "\n".join(line for _t, line in self.lines[:end]) + "\n"

    def overwrites_lp(self) -> str:
        """The overwrite lines alone (later writes of existing points)."""
        start = len(self.lines) if self.overwrites_from is None else self.overwrites_from
        return "\n".join(line for _t, line in self.lines[start:]) + "\n"

    def describe(self) -> str:
        return f"datagen(seed={self.seed}, now_ns={self.now_ns}, {len(self.rows)} rows)"

    def lp(self, tables: Iterable[str] | None = None) -> str:
        """The line protocol body (ns precision), optionally only some tables."""
        keep = None if tables is None else set(tables)
        return "\n".join(line for t, line in self.lines if keep is None or t in keep) + "\n"

    def chunks(self, n: int, tables: Iterable[str] | None = None) -> list[str]:
        """The body cut into `n` consecutive parts (for several write requests)."""
        keep = None if tables is None else set(tables)
        lines = [line for t, line in self.lines if keep is None or t in keep]
        size = -(-len(lines) // n)
        return ["\n".join(lines[i:i + size]) + "\n" for i in range(0, len(lines), size)]

    def table_rows(self, table: str) -> list[Row]:
        return [r for r in self.rows if r.table == table]

    def series(self, table: str) -> set[tuple[tuple[str, str], ...]]:
        return {tuple(sorted(r.tags.items())) for r in self.table_rows(table)}

    def windows(self, table: str) -> dict[int, list[Row]]:
        """The table's rows by gen1 window start (integer floor division)."""
        out: dict[int, list[Row]] = {}
        for r in self.table_rows(table):
            out.setdefault(r.time - r.time % self.gen1_ns, []).append(r)
        return dict(sorted(out.items()))

    def columns(self, table: str) -> list[str]:
        """The table's column names: tags, fields (each as the spec lists them), time.
        Which order `SELECT *` uses is the server's business, not asserted here."""
        spec = self.tables[table]
        return [*spec.tag_keys, *spec.field_types, "time"]

    def json_rows(self, table: str, columns: Sequence[str] | None = None) -> list[dict]:
        """The table's rows as `/api/v3/query_sql` JSON returns them (nulls omitted, time
        as ISO text), in (time, tags) order."""
        cols = list(columns) if columns is not None else self.columns(table)
        out = []
        for r in sorted(self.table_rows(table), key=lambda r: (r.time, sorted(r.tags.items()))):
            d = {}
            for c in cols:
                v = r.get(c)
                if v is not None:
                    d[c] = iso_ns(v) if c == "time" else v
            out.append(d)
        return out


def generate(
    *,
    seed: int = 0,
    now_ns: int | None = None,
    hosts: int = 100,
    regions: int = 20,
    points_per_series: int = 3,
    span_ns: int = 25 * 60 * 10**9,
    escaped_series: int = 50,
    boundary_rows: bool = False,
    overwrites: int = 0,
    gen1_ns: int = GEN1_NS,
    tables: Sequence[str] = (CPU, ESCAPED),
    big_numbers: bool = True,
) -> Dataset:
    """A seeded data set ending just before `now_ns` (default: now) and spanning `span_ns`.

    `cpu` gets hosts x regions series, `points_per_series` points each, at random
    nanosecond times inside the span (so several gen1 windows by default); a few series
    have no region tag and some rows leave fields out (nulls). `disk io,x` gets
    `escaped_series` series with escapes in every name. With `boundary_rows`, each
    table also gets points exactly at a gen1 window boundary inside the span and 1 ns
    before it. Points are unique per (table, tags, time); `overwrites` appends that many
    later lines that rewrite existing points (some fields only), and `rows` shows the
    merged result: the later write replaces the fields it names and keeps the others.
    """
    rng = random.Random(seed)
    now = time.time_ns() if now_ns is None else now_ns
    end = now - 10**9  # keep every point strictly in the past of the write
    start = end - span_ns
    points: dict[tuple, Row] = {}
    lines: list[tuple[str, str]] = []
    specs = {t: TABLES[t] for t in tables}

    def add(row: Row) -> None:
        points[row.key] = row
        lines.append((row.table, to_line(row, specs[row.table])))

    def fresh_time(table: str, tags: dict[str, str], lo: int, hi: int) -> int:
        while True:
            t = rng.randrange(lo, hi)
            if (table, tuple(sorted(tags.items())), t) not in points:
                return t

    series: list[tuple[str, dict[str, str]]] = []
    if CPU in specs:
        for h in range(hosts):
            for r in range(regions):
                tags = {"host": f"host-{h:05d}"}
                if (h + r) % 97 != 5:  # a few series without a region: a missing tag
                    tags["region"] = f"region-{r:03d}"
                series.append((CPU, tags))
    if ESCAPED in specs:
        series.extend((ESCAPED, {"host name": f"h {i % 7}", "mount,point": rf"/var,log=x{i}"})
                      for i in range(escaped_series))

    for table, tags in series:
        spec = specs[table]
        step = span_ns // points_per_series
        for k in range(points_per_series):
            t = fresh_time(table, tags, start + k * step, start + (k + 1) * step)
            add(Row(table, dict(tags), _values(rng, spec, big_numbers), t))

    boundaries: list[int] = []
    if boundary_rows:
        b = end - end % gen1_ns
        if b - 1 < start:  # the span must hold a boundary and the ns before it
            raise ValueError(f"span_ns={span_ns} holds no gen1 boundary before {end}")
        boundaries.append(b)
        for table, tags in series[:: max(1, len(series) // 8)]:
            for t in (b - 1, b):
                if (table, tuple(sorted(tags.items())), t) not in points:
                    add(Row(table, dict(tags), _values(rng, specs[table], big_numbers), t))

    overwrites_from = len(lines) if overwrites else None
    if overwrites:
        keys = list(points)
        for _ in range(overwrites):
            old = points[rng.choice(keys)]
            spec = specs[old.table]
            names = rng.sample(sorted(spec.field_types), k=rng.randint(1, 2))
            named = {n: _one(rng, spec, n) for n in names}
            points[old.key] = Row(old.table, dict(old.tags), {**old.fields, **named}, old.time)
            lines.append((old.table, to_line(Row(old.table, old.tags, named, old.time), spec)))

    rows = sorted(points.values(), key=lambda r: (r.table, r.time, sorted(r.tags.items())))
    return Dataset(seed=seed, now_ns=now, gen1_ns=gen1_ns, lines=lines, rows=rows,
                   boundaries=boundaries, tables=specs, overwrites_from=overwrites_from)


# ---- values --------------------------------------------------------------------------------

_STATES = ["ok", 'say "hi"', r"back\slash", "a,b=c d", "ünï ✓", "", r"trailing\\"]


def _one(rng: random.Random, spec: TableSpec, name: str) -> Any:
    kind = spec.field_types[name]
    if kind == FLOAT:
        return rng.choice([round(rng.uniform(-1e3, 1e3), 6), rng.uniform(0, 1), 1e21, -0.0,
                           float(rng.randrange(10**6))])
    if kind == INTEGER:
        return rng.choice([rng.randrange(-(10**6), 10**6), 2**53 + rng.randrange(1, 10**6),
                           -(2**62) - rng.randrange(10**6), 2**63 - 1, -(2**63)])
    if kind == UINTEGER:
        return rng.choice([rng.randrange(10**6), 2**63 + rng.randrange(10**6), 2**64 - 1, 0])
    if kind == STRING:
        return rng.choice(_STATES) + f"-{rng.randrange(1000)}"
    return rng.random() < 0.5


def _values(rng: random.Random, spec: TableSpec, big: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = sorted(spec.field_types)
    for i, name in enumerate(names):
        # every row has the first field; the others are sometimes left out (nulls)
        if i and rng.random() < 0.15:
            continue
        v = _one(rng, spec, name)
        if not big and isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**53:
            v = v % 10**6
        out[name] = v
    return out


# ---- line protocol, written here independently of weir.lineprotocol ------------------------


def escape_measurement(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", r"\,").replace(" ", r"\ ")


def escape_key(s: str) -> str:
    """Tag keys, tag values and field keys: backslash, comma, equals and space."""
    return (s.replace("\\", "\\\\").replace(",", r"\,").replace("=", r"\=")
            .replace(" ", r"\ "))


_TRUE = ("t", "T", "true", "True", "TRUE")
_FALSE = ("f", "F", "false", "False", "FALSE")


def _field_text(kind: str, v: Any, spelling: int = 0) -> str:
    if kind == FLOAT:
        return repr(float(v))
    if kind == INTEGER:
        return f"{v}i"
    if kind == UINTEGER:
        return f"{v}u"
    if kind == STRING:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    # every spelling line protocol allows, picked by the caller reproducibly
    return (_TRUE if v else _FALSE)[spelling % 5]


def to_line(row: Row, spec: TableSpec) -> str:
    tags = "".join(f",{escape_key(k)}={escape_key(v)}" for k, v in row.tags.items())
    fields = ",".join(f"{escape_key(k)}={_field_text(spec.field_types[k], v, row.time)}"
                      for k, v in row.fields.items())
    return f"{escape_measurement(row.table)}{tags} {fields} {row.time}"


# ---- expected text ---------------------------------------------------------------------------


def iso_ns(ns: int) -> str:
    """A timestamp as arrow's display writes it: no zone, 0/3/6/9 fraction digits."""
    secs, frac = divmod(ns, 10**9)
    base = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=secs)).strftime(
        "%Y-%m-%dT%H:%M:%S")
    if frac == 0:
        return base
    if frac % 10**6 == 0:
        return f"{base}.{frac // 10**6:03d}"
    if frac % 10**3 == 0:
        return f"{base}.{frac // 10**3:06d}"
    return f"{base}.{frac:09d}"


def rfc3339_ns(ns: int) -> str:
    """A timestamp as the v1 `/query` JSON writes it: RFC3339 with `Z`, the fraction in
    0/3/6/9 digits (as the reference prints `...:01Z`, `...:01.500Z`)."""
    return iso_ns(ns) + "Z"


def sql_quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


__all__ = [
    "BOOLEAN", "CPU", "ESCAPED", "FLOAT", "GEN1_NS", "INTEGER", "STRING", "TABLES",
    "UINTEGER", "Dataset", "Row", "TableSpec", "escape_key", "escape_measurement",
    "generate", "iso_ns", "rfc3339_ns", "sql_quote_ident", "to_line",
]
