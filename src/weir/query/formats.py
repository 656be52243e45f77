"""Query results as bytes, in the reference's exact shapes (surface.md §1.3).

* json: one compact array of row objects; keys whose value is null are left out; timestamps
  `1970-01-01T00:00:00.000000123` (no `Z`, 0/3/6/9 fractional digits as needed); floats
  written like arrow-json (lexical: `1.0`, `0.00001`, `1.0e10`, `1.5e-7`; NaN/inf as
  `null`); empty result `[]`.
* jsonl: one such object a line, each ending in `\\n`; empty result = empty body.
* csv: a header line, then rows (arrow-csv: nulls empty, quotes only where needed, floats
  like arrow's display: `1.0`, `1e16`); empty result = empty body.
* pretty: arrow's ASCII table (`+---+` borders), no trailing newline.
* parquet: a Parquet file; empty result = empty body.

Cells are rendered column by column with pyarrow.compute; only values pyarrow cannot render
the reference's way (very large or very small floats, exotic types) go through Python.
"""

from __future__ import annotations

import io
import json
import math
import unicodedata
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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
#: the exact Accept values the reference maps (influxdb3_types QueryFormat::try_from_headers);
#: `application/jsonl` is Weir's addition
_ACCEPT = {
    "application/vnd.apache.parquet": "parquet",
    "text/csv": "csv",
    "text/plain": "pretty",
    "application/json": "json",
    "*/*": "json",
    "application/jsonl": "jsonl",
}
#: rows per rendered chunk: keeps every intermediate string array far below 2 GiB
_CHUNK_ROWS = 65_536


def normalize(fmt: str) -> str:
    """The canonical name of a `format` value; ValueError (serde's wording) if unknown."""
    f = _ALIASES.get(fmt, fmt)
    if f not in FORMATS:
        raise ValueError(f"unknown variant `{fmt}`, expected one of `parquet`, `csv`, "
                         "`pretty`, `json`, `json_lines`, `jsonl`")
    return f


def content_type(fmt: str) -> str:
    return _CONTENT_TYPES[normalize(fmt)]


def choose_format(format_param: str | None, accept_header: str | None) -> str:
    """The output format of a query request, as the reference picks it.

    The Accept header is checked first, even when `format` is given (an unusable Accept
    fails the request either way): an exact `application/vnd.apache.parquet`, `text/csv`,
    `text/plain`, `application/json` or `*/*`, or no header; else anything containing
    `text/html` or `*/*` means json; anything else raises ValueError
    `invalid mime type (<header>)`. Then an explicit `format` wins.
    """
    if accept_header is None:
        from_header = "json"
    else:
        from_header = _ACCEPT.get(accept_header, "")
        if not from_header:
            if "text/html" in accept_header or "*/*" in accept_header:
                from_header = "json"
            else:
                raise ValueError(f"invalid mime type ({accept_header})")
    if format_param is not None:
        return normalize(format_param)
    return from_header


# ---- scalar helpers ----------------------------------------------------------------------


def format_timestamp_ns(ns: int) -> str:
    """`1970-01-01T00:00:00.000000123`: no zone, 0/3/6/9 fractional digits as needed."""
    secs, frac = divmod(ns, 1_000_000_000)
    return _naive_text(datetime(1970, 1, 1) + timedelta(seconds=secs)) + _fraction(frac, 9)


def _naive_text(d: datetime) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"


def _fraction(value: int, digits: int) -> str:
    """chrono's `%.f`: the sub-second part with 0, 3, 6 or 9 digits (value has `digits`)."""
    ns = value * 10 ** (9 - digits)
    if ns == 0:
        return ""
    if ns % 1_000_000 == 0:
        return f".{ns // 1_000_000:03d}"
    if ns % 1_000 == 0:
        return f".{ns // 1_000:06d}"
    return f".{ns:09d}"


def _shortest(x: float, single: bool = False) -> tuple[str, int]:
    """(significant digits, decimal exponent of the first digit) of |x|, shortest round-trip."""
    text = str(np.float32(abs(x))) if single else repr(abs(x))
    _sign, digits, exp = Decimal(text).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0")
    assert isinstance(exp, int)
    exp += len(digits) - len(ds)
    if not ds:
        return "0", 0
    return ds, exp + len(ds) - 1


def _float_text(x: float, *, json_style: bool, single: bool = False) -> str:
    """A float the way arrow-rs writes it: arrow-json uses lexical (plain for exponents -5..9,
    else `1.0e10`), arrow's display uses ryu (plain for -5..15, else `1e16`)."""
    if math.isnan(x):
        return "null" if json_style else "NaN"
    if math.isinf(x):
        return "null" if json_style else ("inf" if x > 0 else "-inf")
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    if x == 0:
        return sign + "0.0"
    ds, e = _shortest(x, single)
    if -5 <= e <= (9 if json_style else 15):
        if e >= 0:
            whole = ds[: e + 1].ljust(e + 1, "0")
            frac = ds[e + 1:] or "0"
        else:
            whole, frac = "0", "0" * (-e - 1) + ds
        return f"{sign}{whole}.{frac}"
    if len(ds) == 1:
        return f"{sign}{ds}{'.0' if json_style else ''}e{e}"
    return f"{sign}{ds[0]}.{ds[1:]}e{e}"


def _duration_text(ns: int) -> str:
    """chrono's ISO 8601 duration display, e.g. `PT3600S`, `P1DT0.5S`."""
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    secs, nanos = divmod(ns, 1_000_000_000)
    days, secs = divmod(secs, 86_400)
    out = f"{sign}P"
    if days:
        out += f"{days}D"
    if secs or nanos or not days:
        out += f"T{secs}{_fraction(nanos, 9)}S"
    return out


def _unit_ns(t: pa.DataType) -> int:
    return {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[t.unit]


def _py_display(v: Any, t: pa.DataType) -> str:
    """Arrow's display of one non-null value of a type pyarrow cannot render for us."""
    if pa.types.is_timestamp(t):
        return _timestamp_text(int(v), t)
    if pa.types.is_duration(t):
        return _duration_text(int(v) * _unit_ns(t))
    if pa.types.is_time(t):
        ns = int(v) * _unit_ns(t)
        secs, frac = divmod(ns, 1_000_000_000)
        h, rem = divmod(secs, 3600)
        return f"{h:02d}:{rem // 60:02d}:{rem % 60:02d}{_fraction(frac, 9)}"
    if pa.types.is_interval(t):
        months, days, nanos = v
        parts = []
        if months:
            parts.append(f"{months} mons")
        if days:
            parts.append(f"{days} days")
        if nanos:
            secs, frac = divmod(abs(nanos), 1_000_000_000)
            parts.append(f"{'-' if nanos < 0 else ''}{secs}.{frac:09d} secs")
        return " ".join(parts) or "0 secs"
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _float_text(v, json_style=False)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return "[" + ", ".join("" if x is None else _py_display(x, t.value_type) for x in v) + "]"
    if pa.types.is_struct(t):
        return "{" + ", ".join(
            f"{t.field(i).name}: {'' if v[t.field(i).name] is None else _py_display(v[t.field(i).name], t.field(i).type)}"
            for i in range(t.num_fields)) + "}"
    if pa.types.is_map(t):
        return "{" + ", ".join(
            f"{_py_display(k, t.key_type)}: {'' if x is None else _py_display(x, t.item_type)}"
            for k, x in v) + "}"
    return str(v)


def _timestamp_text(raw: int, t: pa.DataType) -> str:
    unit = _unit_ns(t)
    digits = {1_000_000_000: 0, 1_000_000: 3, 1_000: 6, 1: 9}[unit]
    per_sec = 1_000_000_000 // unit
    secs, frac = divmod(raw, per_sec)
    moment = datetime(1970, 1, 1) + timedelta(seconds=secs)
    frac_text = _fraction(frac, digits) if digits else ""
    if t.tz is None:
        return _naive_text(moment) + frac_text
    local = moment.replace(tzinfo=UTC).astimezone(_zone(t.tz))
    off = local.utcoffset() or timedelta(0)
    if off == timedelta(0):
        zone = "Z"
    else:
        mins = int(off.total_seconds()) // 60
        zone = f"{'-' if mins < 0 else '+'}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"
    return _naive_text(local.replace(tzinfo=None)) + frac_text + zone


def _zone(name: str) -> Any:
    from datetime import timezone
    from zoneinfo import ZoneInfo

    if name[:1] in "+-":
        sign = -1 if name[0] == "-" else 1
        h, _, m = name[1:].partition(":")
        return timezone(sign * timedelta(hours=int(h), minutes=int(m or 0)))
    return ZoneInfo(name)


# ---- column rendering --------------------------------------------------------------------
#
# Every renderer takes one column and returns a string array of the same length; null cells
# stay null so the row assembly can leave them out (json) or write them empty (csv, pretty).


def _as_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def _fallback(arr: pa.Array, mask: np.ndarray, render: Any) -> pa.Array:
    """`arr` rendered by `render` in Python where `mask` is set (nulls stay null)."""
    idx = np.flatnonzero(mask)
    values = arr.take(pa.array(idx, pa.int64())).to_pylist()
    return pa.array([None if v is None else render(v) for v in values], pa.string())


def _all(arr: pa.Array, render: Any) -> pa.Array:
    return _fallback(arr, np.ones(len(arr), bool), render)


def _float_strings(arr: pa.Array, *, json_style: bool) -> pa.Array:
    """Shortest round-trip digits; pyarrow's cast agrees with arrow-rs for exponents -5..9
    once integral values get their `.0`; the rest (and NaN/inf) are written in Python."""
    if pa.types.is_float16(arr.type):
        arr = arr.cast(pa.float32())
    single = pa.types.is_float32(arr.type)
    text = pc.cast(arr, pa.string())
    vals = arr.fill_null(0.5).to_numpy(zero_copy_only=False).astype(np.float64)
    mag = np.abs(vals)
    with np.errstate(invalid="ignore"):
        odd = ~np.isfinite(vals) | (mag >= 1e10) | ((mag < 1e-5) & (vals != 0))
        whole = ~odd & (np.floor(vals) == vals)
    if whole.any():
        text = pc.if_else(pa.array(whole), pc.binary_join_element_wise(text, ".0", ""), text)
    if odd.any():
        fixed = _fallback(arr, odd, lambda v: _float_text(v, json_style=json_style,
                                                           single=single))
        text = pc.replace_with_mask(text, pa.array(odd), fixed)
    return text


def _timestamp_strings(arr: pa.Array) -> pa.Array:
    t = arr.type
    if t.tz is not None:
        return _fallback(arr.cast(pa.int64()), np.ones(len(arr), bool),
                         lambda v: _timestamp_text(v, t))
    raw = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    text = pc.cast(arr, pa.string())  # "YYYY-MM-DD HH:MM:SS[.fraction]"
    lo, hi = (int(raw.min()), int(raw.max())) if len(raw) else (0, 0)
    per_sec = 1_000_000_000 // _unit_ns(t)
    if -62_167_219_200 * per_sec <= lo and hi < 253_402_300_800 * per_sec:
        text = pc.binary_replace_slice(text, 10, 11, "T")  # years 0000-9999: fixed layout
    else:
        text = pc.replace_substring(text, " ", "T", max_replacements=1)
    if t.unit == "s":
        return text
    # characters to cut so the fraction has 0/3/6/9 digits, e.g. ".123000000" -> ".123"
    cuts = {"ns": [(1_000, 3), (1_000_000, 6), (1_000_000_000, 10)],
            "us": [(1_000, 3), (1_000_000, 7)],
            "ms": [(1_000, 4)]}[t.unit]
    cut = np.zeros(len(raw), np.int8)
    for modulus, n in cuts:
        cut[np.mod(raw, modulus) == 0] = n
    kinds = np.unique(cut)
    if len(kinds) == 1:
        return text if kinds[0] == 0 else pc.utf8_slice_codeunits(text, 0, -int(kinds[0]))
    out = text
    for n in kinds:
        if n:
            out = pc.if_else(pa.array(cut == n), pc.utf8_slice_codeunits(text, 0, -int(n)), out)
    return out


def _render(col: pa.Array | pa.ChunkedArray, fn: Any) -> pa.Array:
    """`fn` applied to a column; a dictionary column's values are rendered once, then taken."""
    arr = _as_array(col)
    if pa.types.is_dictionary(arr.type):
        if len(arr.dictionary) <= max(len(arr), 16):
            return pc.take(_render(arr.dictionary, fn), arr.indices)
        return _render(arr.dictionary_decode(), fn)
    return fn(arr)


def _display_plain(arr: pa.Array) -> pa.Array:
    """Arrow's display of each cell of a non-dictionary array (arrow's CSV and pretty)."""
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_string(t):
        return arr
    if (pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_boolean(t)
            or pa.types.is_integer(t) or pa.types.is_decimal(t)):
        return pc.cast(arr, pa.string())
    if pa.types.is_floating(t):
        return _float_strings(arr, json_style=False)
    if pa.types.is_timestamp(t):
        return _timestamp_strings(arr)
    if pa.types.is_date(t):
        return pc.cast(arr.cast(pa.date32()), pa.string())
    if pa.types.is_duration(t) or pa.types.is_time(t):
        return _all(arr.cast(pa.int64()), lambda v: _py_display(v, t))
    return _all(arr, lambda v: _py_display(v, t))


def _display_strings(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    return _render(col, _display_plain)


_JSON_SPECIAL = "[\\\\\"\\x00-\\x1f]"


def _json_strings(arr: pa.Array, head: str, tail: str) -> pa.Array:
    """`head` + a JSON string literal (serde_json's escaping) + `tail` per cell; nulls stay
    null."""
    arr = arr.cast(pa.string())
    special = pc.match_substring_regex(arr, _JSON_SPECIAL).fill_null(False)
    if not pc.any(special).as_py():
        return pc.binary_join_element_wise(head + '"', arr, '"' + tail, "")
    esc = pc.replace_substring(pc.replace_substring(arr, "\\", "\\\\"), '"', '\\"')
    out = pc.binary_join_element_wise(head + '"', esc, '"' + tail, "")
    ctrl = pc.match_substring_regex(arr, "[\\x00-\\x1f]").fill_null(False)
    if pc.any(ctrl).as_py():
        slow = _fallback(arr, ctrl.to_numpy(zero_copy_only=False),
                         lambda v: head + json.dumps(v, ensure_ascii=False) + tail)
        out = pc.replace_with_mask(out, ctrl, slow)
    return out


def _json_py(v: Any, t: pa.DataType) -> Any:
    """A Python value JSON can hold, as arrow-json would write it (nested types only)."""
    if v is None:
        return None
    if pa.types.is_dictionary(t):
        return _json_py(v, t.value_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return [_json_py(x, t.value_type) for x in v]
    if pa.types.is_struct(t):
        return {t.field(i).name: _json_py(v[t.field(i).name], t.field(i).type)
                for i in range(t.num_fields) if v[t.field(i).name] is not None}
    if pa.types.is_map(t):
        return {str(k): _json_py(x, t.item_type) for k, x in v}
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(v, bool | int | str):
        return v
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, Decimal):
        return float(v)
    return _py_display(v, t)


def _json_plain(arr: pa.Array, head: str, tail: str) -> pa.Array:
    """`head` + each cell as arrow-json writes it (NaN/inf as `null`) + `tail`; null cells
    stay null."""
    t = arr.type

    def wrap(text: pa.Array) -> pa.Array:
        if not head and not tail:
            return text
        return pc.binary_join_element_wise(head, text, tail, "")

    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        return wrap(pc.cast(arr, pa.string()))
    if pa.types.is_floating(t):
        return wrap(_float_strings(arr, json_style=True))
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return _json_strings(arr, head, tail)
    if (pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t)
            or pa.types.is_duration(t) or pa.types.is_interval(t)):
        return pc.binary_join_element_wise(head + '"', _display_plain(arr), '"' + tail, "")
    if (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)
            or pa.types.is_fixed_size_binary(t)):
        return _all(arr, lambda v: f'{head}"{v.hex()}"{tail}')
    return _all(arr, lambda v: head + json.dumps(_json_py(v, t), ensure_ascii=False,
                                                 separators=(",", ":")) + tail)


def _json_bodies(batch: pa.RecordBatch | pa.Table) -> pa.Array:
    """Each row's object without its braces (`"a":1,"b":"x"`), null cells left out."""
    names = batch.schema.names
    texts = _json_texts([_as_array(col) for col in batch.columns])
    pieces: list[pa.Array | str] = []
    for name, col, text in zip(names, batch.columns, texts, strict=True):
        head = json.dumps(name, ensure_ascii=False) + ":"
        if text is None:  # (a type written with its head and comma: nested, binary, ...)
            pieces.append(_render(col, lambda a, h=head: _json_plain(a, h, ",")))
        elif text.null_count:  # a null cell leaves out its name and comma too
            pieces.append(pc.binary_join_element_wise(head, text, ",", ""))
        else:
            pieces += [head, text, ","]
    if not pieces:  # (every column gives at least one array)
        return pa.array([""] * batch.num_rows, pa.string())
    # every present cell ends in a comma; the row's last one is cut off. (Not
    # null_handling="skip": pyarrow drops rows whose cells are all null with it.)
    body = pc.binary_join_element_wise(*pieces, "", null_handling="replace",
                                       null_replacement="")
    return pc.utf8_slice_codeunits(body, 0, -1)


def _json_texts(arrays: list[pa.Array]) -> list[pa.Array | None]:
    """Each column's cells as JSON text (`_json_plain` without head or tail; None for a type
    that is written with them)."""
    return _rendered_by_type(
        arrays, lambda a: _json_plain(a, "", ""),
        lambda t: not pa.types.is_dictionary(t) and _json_text_type(t))


def _rendered_by_type(arrays: list[pa.Array], render: Callable[[pa.Array], pa.Array],
                      alone: Callable[[pa.DataType], bool]) -> list[pa.Array | None]:
    """`render` of each array: arrays of one float or string type are rendered as one and
    sliced apart, others one by one where `alone(type)`, None elsewhere. Each pyarrow call
    costs ~20 us whatever its length, which made a 100-row, 21-column answer cost ~1.7 ms
    to write as JSON."""
    texts: list[pa.Array | None] = [None] * len(arrays)
    groups: dict[pa.DataType, list[int]] = {}
    for i, arr in enumerate(arrays):
        t = arr.type
        if pa.types.is_floating(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
            groups.setdefault(t, []).append(i)
        elif alone(t):
            texts[i] = render(arr)
    for members in groups.values():
        whole = pa.concat_arrays([arrays[i] for i in members]) if len(members) > 1 \
            else arrays[members[0]]
        text = render(whole)
        at = 0
        for i in members:
            texts[i] = text.slice(at, len(arrays[i]))
            at += len(arrays[i])
    return texts


def _json_text_type(t: pa.DataType) -> bool:
    """Whether `_json_plain` writes a cell of `t` without its head and tail (the rest are
    rendered whole, through `_render`)."""
    return bool(pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_decimal(t)
                or pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t)
                or pa.types.is_duration(t) or pa.types.is_interval(t))


def _csv_quote(arr: pa.Array) -> pa.Array:
    need = pc.match_substring_regex(arr, '[,"\\r\\n]').fill_null(False)
    if not pc.any(need).as_py():
        return arr
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(arr, '"', '""'), '"', "")
    return pc.if_else(need, quoted, arr)


def _csv_header(names: list[str]) -> str:
    cells = _csv_quote(pa.array(names, pa.string())).to_pylist()
    if len(cells) == 1 and cells[0] == "":
        cells = ['""']
    return ",".join(cells) + "\n"


def _csv_rows(batch: pa.RecordBatch | pa.Table) -> pa.Array:
    def cell(a: pa.Array) -> pa.Array:
        return _csv_quote(_display_plain(a))

    arrays = [_as_array(col) for col in batch.columns]
    texts = _rendered_by_type(arrays, cell, lambda t: not pa.types.is_dictionary(t))
    cells = [_render(arr, cell) if text is None else text
             for arr, text in zip(arrays, texts, strict=True)]
    if len(cells) == 1:
        # a record that is one empty field is written `""` so it is not a blank line
        only = cells[0].fill_null("")
        return pc.if_else(pc.equal(only, ""), '""', only)
    return pc.binary_join_element_wise(*cells, ",", null_handling="replace",
                                       null_replacement="")


#: a batch of at most this many rows is written to JSON cell by cell in Python: each
#: vectorised step costs tens of microseconds whatever the rows, which made a one-row
#: answer cost more to write than to compute
_SMALL_ROWS = 32


def _json_rows(batch: pa.RecordBatch | pa.Table) -> pa.Array | list[str]:
    """`_json_bodies`, or for a small batch of the common types the same text made cell
    by cell (`_json_cell`)."""
    if batch.num_rows <= _SMALL_ROWS:
        small = _json_small(batch)
        if small is not None:
            return small
    return _json_bodies(batch)


def _json_small(batch: pa.RecordBatch | pa.Table) -> list[str] | None:
    """Each row's object without its braces, as `_json_bodies` writes it; None where a
    column's type is not one `_json_cell` writes."""
    columns = []
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        t = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
        if not _json_cell_type(t):
            return None
        columns.append((json.dumps(name, ensure_ascii=False) + ":", t, col.to_pylist()
                        if not pa.types.is_timestamp(t) else col.cast(pa.int64()).to_pylist()))
    try:
        return [",".join(head + _json_cell(values[i], t) for head, t, values in columns
                         if values[i] is not None)
                for i in range(batch.num_rows)]
    except (OverflowError, ValueError):  # (a time outside datetime's years 1-9999)
        return None


def _json_cell_type(t: pa.DataType) -> bool:
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)
            or pa.types.is_boolean(t) or pa.types.is_float64(t)
            or (pa.types.is_timestamp(t) and t.tz is None))


def _json_cell(v: Any, t: pa.DataType) -> str:
    """One non-null cell of a `_json_cell_type` type, as `_json_plain` writes it."""
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _float_text(v, json_style=True)
    if pa.types.is_timestamp(t):
        return '"' + _timestamp_text(v, t) + '"'
    return str(v)


def _joined(rows: pa.Array | list[str], sep: str, head: str = "", tail: str = "") -> bytes:
    """`head` + all of `rows` joined by `sep` + `tail`, as UTF-8 bytes."""
    if isinstance(rows, list):
        return (head + sep.join(rows) + tail).encode()
    offsets = pa.array([0, len(rows)], pa.int32())
    whole = pc.binary_join(pa.ListArray.from_arrays(offsets, rows), sep)
    body: bytes = whole[0].as_buffer().to_pybytes()
    return head.encode() + body + tail.encode()


# ---- pretty -------------------------------------------------------------------------------


def _width(text: str) -> int:
    """Terminal columns `text` takes (what comfy-table measures with unicode-width)."""
    if text.isascii() and text.isprintable():
        return len(text)
    w = 0
    for ch in text:
        if ch < " " or ch == "\x7f" or unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def pretty(table: pa.Table) -> str:
    """Arrow's `pretty_format_batches`: a `+---+` bordered table, no trailing newline.

    A table without columns prints `++` twice; one without rows prints its header.
    """
    names = table.schema.names
    if not names:
        return "++\n++"
    cols = [_display_strings(c).fill_null("") if table.num_rows else pa.array([], pa.string())
            for c in table.columns]
    simple = all(n.isascii() and "\n" not in n for n in names) and all(
        pc.all(pc.string_is_ascii(c)).as_py() is not False
        and not pc.any(pc.match_substring_regex(c, "[\\x00-\\x1f\\x7f]")).as_py()
        for c in cols)
    if simple:
        widths = [max(len(n), pc.max(pc.utf8_length(c)).as_py() or 0)
                  for n, c in zip(names, cols, strict=True)]
        sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
        header = "| " + " | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)) + " |"
        out = [sep, header, sep]
        if table.num_rows:
            padded = [pc.utf8_rpad(c, w) for c, w in zip(cols, widths, strict=True)]
            joined = pc.binary_join_element_wise(*padded, " | ")
            out.append(_joined(joined, " |\n| ", "| ", " |").decode())
        out.append(sep)
        return "\n".join(out)
    rows = [[v.split("\n") for v in row] for row in zip(*(c.to_pylist() for c in cols), strict=True)]
    header_cells = [n.split("\n") for n in names]
    widths = [max(_width(line) for line in cell) for cell in header_cells]
    for row in rows:
        for j, cell in enumerate(row):
            widths[j] = max(widths[j], max(_width(line) for line in cell))
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def lines(cells: list[list[str]]) -> list[str]:
        height = max(len(c) for c in cells)
        return ["| " + " | ".join(_pad(c[i] if i < len(c) else "", w)
                                  for c, w in zip(cells, widths, strict=True)) + " |"
                for i in range(height)]

    out = [sep, *lines(header_cells), sep]
    for row in rows:
        out.extend(lines(row))
    out.append(sep)
    return "\n".join(out)


# ---- parquet ------------------------------------------------------------------------------


class _Sink(io.RawIOBase):
    """A write-only file that hands out what was written so far (for streaming)."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._chunks.append(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


# ---- encoding -----------------------------------------------------------------------------


def _chunks(batches: Iterable[pa.RecordBatch | pa.Table]) -> Iterator[pa.RecordBatch]:
    for b in batches:
        parts = b.to_batches(max_chunksize=_CHUNK_ROWS) if isinstance(b, pa.Table) else [b]
        for part in parts:
            for start in range(0, part.num_rows, _CHUNK_ROWS):
                yield part.slice(start, _CHUNK_ROWS)


def encode(table: pa.Table, fmt: str) -> bytes:
    """The whole of `table` in format `fmt` (see the module docstring)."""
    return b"".join(encode_batches([table], fmt, schema=table.schema))


def encode_batches(batches: Iterable[pa.RecordBatch | pa.Table], fmt: str,
                   schema: pa.Schema | None = None) -> Generator[bytes, None, None]:
    """Encode a result batch by batch, for streaming; json stays one valid array.

    `schema` is only needed for `pretty` when there may be no batches at all (an empty
    table still shows its header). pretty needs every row before it can write the first
    (column widths), so it yields once at the end.
    """
    fmt = normalize(fmt)
    if fmt == "pretty":
        parts = [b if isinstance(b, pa.Table) else pa.Table.from_batches([b]) for b in batches]
        if parts:
            whole = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        else:
            whole = (schema or pa.schema([])).empty_table()
        yield pretty(whole).encode()
        return
    if fmt == "parquet":
        sink = _Sink()
        writer: pq.ParquetWriter | None = None
        for batch in _chunks(batches):
            if batch.num_rows == 0:
                continue
            if writer is None:
                writer = pq.ParquetWriter(sink, batch.schema)
            writer.write_batch(batch)
            data = sink.drain()
            if data:
                yield data
        if writer is not None:
            writer.close()
            yield sink.drain()
        return
    started = False
    for batch in _chunks(batches):
        if batch.num_rows == 0:
            continue
        if fmt == "json":
            yield _joined(_json_rows(batch), "},{", "[{" if not started else ",{", "}")
        elif fmt == "jsonl":
            yield _joined(_json_rows(batch), "}\n{", "{", "}\n")
        else:
            head = "" if started else _csv_header(batch.schema.names)
            yield _joined(_csv_rows(batch), "\n", head, "\n")
        started = True
    if fmt == "json":
        yield b"]" if started else b"[]"


# ---- rows for plugins ---------------------------------------------------------------------


def _plugin_values(col: pa.Array | pa.ChunkedArray) -> list[Any]:
    """One column as the Python values `influxdb3_local.query` returns (surface.md §2.3)."""
    arr = _as_array(col)
    while pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    t = arr.type
    if pa.types.is_timestamp(t):
        # any unit, any zone: int nanoseconds since the epoch (UTC)
        ints = arr.cast(pa.int64())
        return _pylist(ints if t.unit == "ns" else pc.multiply_checked(ints, _unit_ns(t)))
    if pa.types.is_duration(t):
        ints = arr.cast(pa.int64())
        return _pylist(ints if t.unit == "ns" else pc.multiply_checked(ints, _unit_ns(t)))
    if pa.types.is_string_view(t) or pa.types.is_large_string(t):
        return _pylist(arr.cast(pa.string()))
    if pa.types.is_date(t):
        return _pylist(pc.cast(arr.cast(pa.date32()), pa.string()))
    if pa.types.is_time(t):
        return [None if v is None else _py_display(v, t)
                for v in arr.cast(pa.int64()).to_pylist()]
    if pa.types.is_decimal(t):
        return _pylist(arr.cast(pa.float64()))
    if pa.types.is_interval(t):
        return [None if v is None else
                {"months": v[0], "days": v[1], "nanoseconds": v[2]}
                for v in arr.to_pylist()]
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) \
            or pa.types.is_struct(t) or pa.types.is_map(t):
        return [_plugin_py(v, t) for v in arr.to_pylist()]
    return _pylist(arr)


def _pylist(arr: pa.Array) -> list[Any]:
    values: list[Any] = arr.to_pylist()
    return values


def _plugin_py(v: Any, t: pa.DataType) -> Any:
    if v is None:
        return None
    if pa.types.is_dictionary(t):
        return _plugin_py(v, t.value_type)
    if pa.types.is_timestamp(t):
        return _plugin_values(pa.array([v], t))[0]
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return [_plugin_py(x, t.value_type) for x in v]
    if pa.types.is_struct(t):
        return {t.field(i).name: _plugin_py(v[t.field(i).name], t.field(i).type)
                for i in range(t.num_fields)}
    if pa.types.is_map(t):
        return {k: _plugin_py(x, t.item_type) for k, x in v}
    if isinstance(v, Decimal):
        return float(v)
    return v


def table_to_pylist(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """Rows for plugins (surface.md §2.3): a dict per row with every column, NULL -> None.

    Int*/UInt* -> int, Float* -> float, Utf8/LargeUtf8/Utf8View -> str, Boolean -> bool,
    dictionary -> its value (tags -> str), any Timestamp (any unit or zone) -> int
    nanoseconds since the epoch. Weir converts what the reference refuses: Duration -> int
    nanoseconds, Date -> ISO `YYYY-MM-DD` str, Time -> `HH:MM:SS[.fff]` str, Decimal ->
    float, Binary -> bytes, Interval -> {"months", "days", "nanoseconds"}, List -> list,
    Struct/Map -> dict (elements converted the same way).
    """
    if table.num_rows == 0:
        return []
    names = table.schema.names
    columns = [_plugin_values(c) for c in table.columns]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
