"""Line protocol -> per-table columns.

The hot path is a line without backslashes or quotes: it splits on spaces and commas
with str methods, and looks its series key (measurement + tag set, as written) up in a
cache, so a repeated series costs one dict lookup. Anything else goes through a
character scanner that knows every escaping rule. Each line is checked whole before
any of its values reach the columns, so a bad line never leaves half a row behind.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pyarrow as pa


class FieldType(Enum):
    FLOAT = "float"
    INTEGER = "integer"
    UINTEGER = "uinteger"
    STRING = "string"
    BOOLEAN = "boolean"


_ARROW = {
    FieldType.FLOAT: pa.float64(),
    FieldType.INTEGER: pa.int64(),
    FieldType.UINTEGER: pa.uint64(),
    FieldType.STRING: pa.string(),
    FieldType.BOOLEAN: pa.bool_(),
}
_TAG_TYPE = pa.dictionary(pa.int32(), pa.string())
_KIND = b"weir:kind"

_TRUE = frozenset(("t", "T", "true", "True", "TRUE"))
_FALSE = frozenset(("f", "F", "false", "False", "FALSE"))
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_U64_MAX = 2**64 - 1
_INF = math.inf

PRECISION_NS = {
    "ns": 1, "n": 1, "nanosecond": 1,
    "us": 1_000, "u": 1_000, "microsecond": 1_000, "µs": 1_000,
    "ms": 1_000_000, "millisecond": 1_000_000,
    "s": 1_000_000_000, "second": 1_000_000_000,
}


@dataclass
class LineError:
    line_number: int
    message: str
    original_line: str


class LineSyntaxError(Exception):
    pass


Column = list[Any] | pa.Array


@dataclass
class TableColumns:
    """One table's rows of a batch, column by column.

    Columns are Python lists (line-by-line parser) or Arrow arrays (batch fast path);
    both have one entry per row, None where a row lacks the column.
    """

    name: str
    line_numbers: Column = field(default_factory=list)
    tags: dict[str, Column] = field(default_factory=dict)
    fields: dict[str, tuple[FieldType, Column]] = field(default_factory=dict)
    times: Column = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.times)

    def line_number(self, row: int) -> int:
        v = self.line_numbers[row]
        return v if isinstance(v, int) else v.as_py()

    def drop_rows(self, rows: set[int]) -> TableColumns:
        keep = [i for i in range(self.rows) if i not in rows]
        idx = pa.array(keep, pa.int64())

        def pick(values: Column) -> Column:
            if isinstance(values, list):
                return [values[i] for i in keep]
            return values.take(idx)

        return TableColumns(
            name=self.name,
            line_numbers=pick(self.line_numbers),
            tags={k: pick(v) for k, v in self.tags.items()},
            fields={k: (t, pick(v)) for k, (t, v) in self.fields.items()},
            times=pick(self.times),
        )

    def to_arrow(self) -> pa.RecordBatch:
        arrays = []
        schema_fields = []
        for k, v in self.tags.items():
            arr = pa.array(v, pa.string()) if isinstance(v, list) else v
            if not pa.types.is_dictionary(arr.type):
                arr = arr.dictionary_encode()
            arrays.append(arr.cast(_TAG_TYPE))
            schema_fields.append(pa.field(k, _TAG_TYPE, metadata={_KIND: b"tag"}))
        for k, (t, v) in self.fields.items():
            arrays.append(pa.array(v, _ARROW[t]) if isinstance(v, list) else v.cast(_ARROW[t]))
            schema_fields.append(pa.field(k, _ARROW[t], metadata={_KIND: b"field"}))
        times = pa.array(self.times, pa.int64()) if isinstance(self.times, list) else self.times
        arrays.append(times.cast(pa.int64()).cast(pa.timestamp("ns")))
        schema_fields.append(pa.field("time", pa.timestamp("ns"), metadata={_KIND: b"time"}))
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(schema_fields))


@dataclass
class ParsedWrite:
    tables: dict[str, TableColumns] = field(default_factory=dict)
    errors: list[LineError] = field(default_factory=list)
    lines: int = 0


# ---- values ------------------------------------------------------------------------


def _field_value(key: str, raw: str) -> tuple[FieldType, Any]:
    """An unquoted field value: integer, unsigned, boolean or float."""
    if not raw:
        raise LineSyntaxError(f"missing value for field '{key}'")
    last = raw[-1]
    if last == "i" and len(raw) > 1:
        body = raw[:-1]
        if body.lstrip("-").isdigit() and body.isascii():
            v = int(body)
            if not _I64_MIN <= v <= _I64_MAX:
                raise LineSyntaxError(f"integer value out of range for field '{key}': {raw}")
            return FieldType.INTEGER, v
        raise LineSyntaxError(f"invalid integer value for field '{key}': '{raw}'")
    if last == "u" and len(raw) > 1:
        body = raw[:-1]
        if body.isdigit() and body.isascii():
            v = int(body)
            if v > _U64_MAX:
                raise LineSyntaxError(f"unsigned value out of range for field '{key}': {raw}")
            return FieldType.UINTEGER, v
        raise LineSyntaxError(f"invalid unsigned integer value for field '{key}': '{raw}'")
    if raw in _TRUE:
        return FieldType.BOOLEAN, True
    if raw in _FALSE:
        return FieldType.BOOLEAN, False
    try:
        v = float(raw)
    except ValueError:
        raise LineSyntaxError(f"invalid field value for '{key}': '{raw}'") from None
    if v != v or v == _INF or v == -_INF or "_" in raw or not raw.isascii():
        raise LineSyntaxError(f"invalid float value for field '{key}': '{raw}'")
    return FieldType.FLOAT, v


def _timestamp(raw: str, factor: int, auto: bool) -> int:
    body = raw[1:] if raw[:1] == "-" else raw
    if not body or not body.isdigit() or not body.isascii():
        raise LineSyntaxError(f"invalid timestamp '{raw}': expected an integer")
    ts = int(raw)
    if auto:
        a = abs(ts)
        if a < 5 * 10**9:
            factor = 1_000_000_000
        elif a < 5 * 10**12:
            factor = 1_000_000
        elif a < 5 * 10**15:
            factor = 1_000
        else:
            factor = 1
    ns = ts * factor
    if not _I64_MIN <= ns <= _I64_MAX:
        raise LineSyntaxError(f"timestamp '{raw}' is out of range")
    return ns


# ---- the careful scanner ---------------------------------------------------------------


def _read_name(line: str, pos: int, stops: str, escapable: str | None = None
               ) -> tuple[str, int]:
    """Read an identifier up to an unescaped stop char; `\\x` for x in `escapable`
    (default: the stops) or a backslash is x; any other backslash is literal."""
    escapable = stops if escapable is None else escapable
    out: list[str] = []
    n = len(line)
    start = pos
    while pos < n:
        c = line[pos]
        if c == "\\" and pos + 1 < n and (line[pos + 1] in escapable or line[pos + 1] == "\\"):
            out.append(line[start:pos])
            out.append(line[pos + 1])
            pos += 2
            start = pos
            continue
        if c in stops:
            break
        pos += 1
    out.append(line[start:pos])
    return "".join(out), pos


def _read_string(line: str, pos: int, key: str) -> tuple[str, int]:
    """A quoted string field starting at the opening quote; `\\"` and `\\\\` unescape."""
    out: list[str] = []
    pos += 1
    n = len(line)
    start = pos
    while pos < n:
        c = line[pos]
        if c == "\\" and pos + 1 < n and line[pos + 1] in '"\\':
            out.append(line[start:pos])
            out.append(line[pos + 1])
            pos += 2
            start = pos
            continue
        if c == '"':
            out.append(line[start:pos])
            return "".join(out), pos + 1
        pos += 1
    raise LineSyntaxError(f"unterminated string value for field '{key}'")


def _scan(line: str) -> tuple[str, list[tuple[str, str]], list[tuple[str, FieldType, Any]], str | None]:
    n = len(line)
    measurement, pos = _read_name(line, 0, ", ")
    if not measurement:
        raise LineSyntaxError("missing measurement name")
    tags: list[tuple[str, str]] = []
    while pos < n and line[pos] == ",":
        key, pos = _read_name(line, pos + 1, ",= ")
        if pos >= n or line[pos] != "=":
            raise LineSyntaxError(f"missing '=' after tag key '{key}'")
        if not key:
            raise LineSyntaxError("empty tag key")
        value, pos = _read_name(line, pos + 1, ", ", ",= ")
        if not value:
            raise LineSyntaxError(f"missing value for tag '{key}'")
        tags.append((key, value))
    if pos >= n or line[pos] != " ":
        raise LineSyntaxError("missing fields")
    while pos < n and line[pos] == " ":
        pos += 1
    if pos >= n:
        raise LineSyntaxError("missing fields")
    fields: list[tuple[str, FieldType, Any]] = []
    while True:
        key, pos = _read_name(line, pos, ",= ")
        if not key:
            raise LineSyntaxError("empty field key")
        if pos >= n or line[pos] != "=":
            raise LineSyntaxError(f"missing '=' after field key '{key}'")
        pos += 1
        if pos < n and line[pos] == '"':
            value, pos = _read_string(line, pos, key)
            fields.append((key, FieldType.STRING, value))
        else:
            end = pos
            while end < n and line[end] not in ", ":
                end += 1
            ftype, v = _field_value(key, line[pos:end])
            fields.append((key, ftype, v))
            pos = end
        if pos < n and line[pos] == ",":
            pos += 1
            continue
        break
    ts = None
    if pos < n:
        if line[pos] != " ":
            raise LineSyntaxError(f"unexpected character {line[pos]!r} after field values")
        rest = line[pos:].strip()
        if rest:
            if " " in rest:
                raise LineSyntaxError(f"unexpected text after timestamp: '{rest}'")
            ts = rest
    return measurement, tags, fields, ts


# ---- the batch ------------------------------------------------------------------------


SchemaLookup = Callable[[str], Mapping[str, tuple[str, str]] | None]


class _Parser:
    def __init__(self, precision: str, default_time_ns: int,
                 schema: SchemaLookup | None = None) -> None:
        self.schema = schema
        self.known: dict[str, Mapping[str, tuple[str, str]]] = {}
        if precision == "auto":
            self.factor, self.auto = 1, True
        else:
            try:
                self.factor = PRECISION_NS[precision]
            except KeyError:
                raise ValueError(f"invalid precision {precision!r}") from None
            self.auto = False
        self.default_time = default_time_ns
        self.out = ParsedWrite()
        self.series_cache: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}

    def series(self, key: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Fast-path series key (no escapes): `measurement,k=v,k2=v2`."""
        hit = self.series_cache.get(key)
        if hit is not None:
            return hit
        parts = key.split(",")
        measurement = parts[0]
        if not measurement:
            raise LineSyntaxError("missing measurement name")
        tags = []
        for item in parts[1:]:
            k, eq, v = item.partition("=")
            if not eq:
                raise LineSyntaxError(f"missing '=' after tag key '{k}'")
            if not k:
                raise LineSyntaxError("empty tag key")
            if not v:
                raise LineSyntaxError(f"missing value for tag '{k}'")
            if "=" in v:
                raise LineSyntaxError(f"invalid tag value for '{k}': '{v}' (unescaped '=')")
            tags.append((k, v))
        hit = (measurement, tuple(tags))
        if len(self.series_cache) < 100_000:
            self.series_cache[key] = hit
        return hit

    def parse_line(self, line: str) -> tuple[str, tuple[tuple[str, str], ...] | list[tuple[str, str]],
                                              list[tuple[str, FieldType, Any]], int]:
        if "\\" not in line and '"' not in line:
            parts = line.split(" ")
            if 2 <= len(parts) <= 3 and all(parts):
                measurement, tags = self.series(parts[0])
                fields = []
                for item in parts[1].split(","):
                    k, eq, raw = item.partition("=")
                    if not eq:
                        raise LineSyntaxError(f"missing '=' after field key '{k}'")
                    if not k:
                        raise LineSyntaxError("empty field key")
                    ftype, v = _field_value(k, raw)
                    fields.append((k, ftype, v))
                ts = parts[2] if len(parts) == 3 else None
            else:
                measurement, tags, fields, ts = _scan(line)
        else:
            measurement, tags, fields, ts = _scan(line)
        t = self.default_time if ts is None else _timestamp(ts, self.factor, self.auto)
        return measurement, tags, fields, t

    def add(self, line_number: int, line: str) -> None:
        measurement, tags, fields, t = self.parse_line(line)
        table = self.out.tables.get(measurement)
        if table is None:
            table = TableColumns(measurement)
        known = self.known.get(measurement)
        if known is None:
            known = (self.schema(measurement) if self.schema else None) or {}
            self.known[measurement] = known
        # Check the whole line before it touches the columns: against the stored schema
        # first (as if each earlier line had already been written), then the batch.
        seen: set[str] = set()
        for k, _v in tags:
            kk = known.get(k)
            if kk is not None and kk[0] != "tag":
                raise LineSyntaxError(f"invalid column type for column '{k}', expected "
                                      f"{kk[0]}, got tag")
            if k == "time":
                raise LineSyntaxError("tag key 'time' is reserved")
            if k in seen:
                raise LineSyntaxError(f"invalid line protocol - multiple instances of '{k}' tag found")
            if k in table.fields:
                raise LineSyntaxError(f"column '{k}' is a field in table '{measurement}', "
                                      "cannot use it as a tag")
            seen.add(k)
        fseen: set[str] = set()
        for k, ftype, _v in fields:
            kk = known.get(k)
            if kk is not None and (kk[0] != "field" or kk[1] != ftype.value):
                raise LineSyntaxError(
                    f"invalid field value in line protocol for field '{k}' on line: "
                    f"expected type {kk[1] if kk[0] == 'field' else kk[0]}, "
                    f"but got {ftype.value}")
            if k == "time":
                raise LineSyntaxError("field key 'time' is reserved")
            if k in fseen:
                raise LineSyntaxError(
                    f"invalid line protocol - multiple instances of '{k}' field found")
            if k in seen or k in table.tags:
                raise LineSyntaxError(f"column '{k}' is a tag in table '{measurement}', "
                                      "cannot use it as a field")
            existing = table.fields.get(k)
            if existing is not None and existing[0] is not ftype:
                raise LineSyntaxError(
                    f"invalid field type for '{k}': expected {existing[0].value}, "
                    f"got {ftype.value}")
            fseen.add(k)
        if measurement not in self.out.tables:
            self.out.tables[measurement] = table
        n = len(table.times)
        tcols = table.tags
        for k, v in tags:
            col = tcols.get(k)
            if col is None:
                col = tcols[k] = [None] * n
            col.append(v)
        fcols = table.fields
        for k, ftype, v in fields:
            entry = fcols.get(k)
            if entry is None:
                entry = fcols[k] = (ftype, [None] * n)
            entry[1].append(v)
        table.times.append(t)
        table.line_numbers.append(line_number)
        n += 1
        if len(tags) != len(tcols):
            for col in tcols.values():
                if len(col) < n:
                    col.append(None)
        if len(fields) != len(fcols):
            for _t, col in fcols.values():
                if len(col) < n:
                    col.append(None)


def _lines(body: bytes | str) -> list[tuple[str | None, str]]:
    """(text or None if undecodable, display text) per physical line."""
    if isinstance(body, str):
        return [(ln, ln) for ln in body.split("\n")]
    try:
        return [(ln, ln) for ln in body.decode("utf-8").split("\n")]
    except UnicodeDecodeError:
        out: list[tuple[str | None, str]] = []
        for raw in body.split(b"\n"):
            try:
                s = raw.decode("utf-8")
                out.append((s, s))
            except UnicodeDecodeError:
                out.append((None, raw.decode("utf-8", "replace")))
        return out


# Below this size the line-by-line parser is as fast and the batch path's fixed costs
# dominate.
FAST_PATH_MIN_BYTES = 4096


def _utf8_or_none(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def parse(body: bytes | str, *, precision: str = "auto", default_time_ns: int,
          stop_on_first_error: bool = False, schema: SchemaLookup | None = None
          ) -> ParsedWrite:
    """Parse a line protocol body into per-table columns plus per-line errors.

    `schema(table)` may give the stored columns as {name: (kind, type)}; a line that
    conflicts with them is an error of that line, as is one that conflicts with an
    earlier line of the same batch.
    """
    p = _Parser(precision, default_time_ns, schema)
    if len(body) >= FAST_PATH_MIN_BYTES:
        text = body if isinstance(body, str) else _utf8_or_none(body)
        if text is not None and "\\" not in text and '"' not in text:
            from weir.lineprotocol.columnar import parse_batch

            fast = parse_batch(text, factor=p.factor, auto=p.auto,
                               default_time_ns=default_time_ns, schema=schema)
            if fast is not None:
                return fast
    out = p.out
    for i, (text, shown) in enumerate(_lines(body), 1):
        if text is None:
            out.lines += 1
            out.errors.append(LineError(i, "invalid UTF-8 in line", shown))
            if stop_on_first_error:
                break
            continue
        line = text.rstrip("\r\n\t ")
        if not line:
            continue
        stripped = line.lstrip(" \t")
        if not stripped or stripped[0] == "#":
            continue
        out.lines += 1
        try:
            p.add(i, stripped)
        except LineSyntaxError as e:
            out.errors.append(LineError(i, str(e), text.rstrip("\r")))
            if stop_on_first_error:
                break
    return out
