"""Query results as bytes, in the reference's exact shapes (surface.md §1.3).

json: one compact array, null keys left out, timestamps `1970-01-01T00:00:00.000000123`
(no `Z`, 0/3/6/9 fractional digits), floats keep a decimal point; jsonl: one object a
line; csv: a header then rows, empty result = empty body; pretty: an ASCII table with no
trailing newline; parquet: a Parquet file, empty result = empty body.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = ("json", "jsonl", "csv", "pretty", "parquet")
_ALIASES = {"json_lines": "jsonl"}
_CONTENT_TYPES = {
    "json": "application/json",
    "jsonl": "application/jsonl",
    "csv": "text/csv",
    "pretty": "text/plain; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


def normalize(fmt: str) -> str:
    f = _ALIASES.get(fmt, fmt)
    if f not in FORMATS:
        raise ValueError(f"invalid format {fmt!r}: expected json, jsonl, csv, pretty or parquet")
    return f


def content_type(fmt: str) -> str:
    return _CONTENT_TYPES[normalize(fmt)]


def choose_format(format_param: str | None, accept: str | None) -> str:
    """An explicit `format` wins; else the Accept header, as the reference reads it."""
    if format_param:
        return normalize(format_param)
    if accept is None or accept == "" or "*/*" in accept or "text/html" in accept:
        return "json"
    first = accept.split(",")[0].split(";")[0].strip()
    by_mime = {"application/vnd.apache.parquet": "parquet", "text/csv": "csv",
               "text/plain": "pretty", "application/json": "json",
               "application/jsonl": "jsonl"}
    if first in by_mime:
        return by_mime[first]
    raise ValueError(f"invalid mime type ({accept})")


# ---- value rendering ---------------------------------------------------------------------


def format_timestamp_ns(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac == 0:
        return base
    if frac % 1_000_000 == 0:
        return f"{base}.{frac // 1_000_000:03d}"
    if frac % 1_000 == 0:
        return f"{base}.{frac // 1_000:06d}"
    return f"{base}.{frac:09d}"


def _to_ns(t: pa.DataType) -> int:
    return {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[t.unit]


def _columns(table: pa.Table) -> list[tuple[str, list[Any], str]]:
    """(name, python values, kind) per column; timestamps as ns ints, kind 'ts'."""
    out = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type
        if pa.types.is_dictionary(t):
            col = col.cast(t.value_type)
            t = t.value_type
        if pa.types.is_timestamp(t):
            mult = _to_ns(t)
            vals = [None if v is None else v * mult
                    for v in col.cast(pa.int64()).to_pylist()]
            out.append((name, vals, "ts"))
        elif pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_duration(t) or \
                pa.types.is_interval(t) or pa.types.is_decimal(t):
            out.append((name, [None if v is None else str(v) for v in col.to_pylist()], "str"))
        elif pa.types.is_floating(t):
            out.append((name, col.to_pylist(), "float"))
        elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
            out.append((name, [None if v is None else v.decode("utf-8", "replace")
                               for v in col.to_pylist()], "str"))
        else:
            out.append((name, col.to_pylist(), "other"))
    return out


def _json_value(v: Any, kind: str) -> Any:
    if kind == "ts":
        return format_timestamp_ns(v)
    if kind == "float" and (math.isnan(v) or math.isinf(v)):
        return None
    return v


def _json_rows(table: pa.Table) -> Iterator[str]:
    cols = _columns(table)
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                             default=str).encode
    for i in range(table.num_rows):
        row = {}
        for name, vals, kind in cols:
            v = vals[i]
            if v is not None:
                row[name] = _json_value(v, kind)
        yield dumps(row)


def _text_value(v: Any, kind: str) -> str:
    if v is None:
        return ""
    if kind == "ts":
        return format_timestamp_ns(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if kind == "float":
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, list | dict):
        return json.dumps(v, default=str)
    return str(v)


def encode(table: pa.Table, fmt: str) -> bytes:
    return b"".join(encode_batches([table], fmt, table.schema))


def encode_batches(tables: Iterable[pa.Table | pa.RecordBatch], fmt: str,
                   schema: pa.Schema | None = None) -> Iterator[bytes]:
    """Stream a result batch by batch; json stays one valid array."""
    fmt = normalize(fmt)
    if fmt in ("pretty", "parquet"):
        parts = [t if isinstance(t, pa.Table) else pa.Table.from_batches([t]) for t in tables]
        whole = pa.concat_tables(parts) if parts else pa.table({})
        if schema is not None and not parts:
            whole = schema.empty_table()
        yield _pretty(whole) if fmt == "pretty" else _parquet(whole)
        return
    first = True
    header_done = False
    if fmt == "json":
        yield b"["
    for t in tables:
        table = t if isinstance(t, pa.Table) else pa.Table.from_batches([t])
        if fmt == "json":
            for row in _json_rows(table):
                yield (row if first else "," + row).encode()
                first = False
        elif fmt == "jsonl":
            rows = list(_json_rows(table))
            if rows:
                yield ("\n".join(rows) + "\n").encode()
        else:
            if table.num_rows == 0:
                continue
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            cols = _columns(table)
            if not header_done:
                w.writerow(table.column_names)
                header_done = True
            for i in range(table.num_rows):
                w.writerow([_text_value(vals[i], kind) for _n, vals, kind in cols])
            yield buf.getvalue().encode()
    if fmt == "json":
        yield b"]"


def _parquet(table: pa.Table) -> bytes:
    if table.num_rows == 0:
        return b""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _pretty(table: pa.Table) -> bytes:
    cols = _columns(table)
    headers = table.column_names
    cells = [[_text_value(vals[i], kind) for _n, vals, kind in cols]
             for i in range(table.num_rows)]
    widths = [len(h) for h in headers]
    for row in cells:
        for j, c in enumerate(row):
            widths[j] = max(widths[j], len(c))
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [sep, "|" + "|".join(f" {h:<{w}} " for h, w in zip(headers, widths, strict=True))
             + "|", sep]
    for row in cells:
        lines.append("|" + "|".join(f" {c:<{w}} " for c, w in zip(row, widths, strict=True))
                     + "|")
    lines.append(sep)
    if not headers:
        return b"++\n++"
    return "\n".join(lines).encode()


def table_to_pylist(table: pa.Table) -> list[dict[str, Any]]:
    """Rows for plugins (surface.md §2.3): every column, timestamps as int ns, tags as str."""
    cols = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type
        if pa.types.is_dictionary(t):
            col = col.cast(t.value_type)
            t = t.value_type
        if pa.types.is_timestamp(t):
            mult = _to_ns(t)
            vals = [None if v is None else v * mult for v in col.cast(pa.int64()).to_pylist()]
        elif pa.types.is_duration(t):
            mult = _to_ns(t)
            vals = [None if v is None else v * mult for v in col.cast(pa.int64()).to_pylist()]
        elif pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_interval(t):
            vals = [None if v is None else str(v) for v in col.to_pylist()]
        elif pa.types.is_decimal(t):
            vals = [None if v is None else float(v) for v in col.to_pylist()]
        else:
            vals = col.to_pylist()
        cols.append((name, vals))
    return [{name: vals[i] for name, vals in cols} for i in range(table.num_rows)]
