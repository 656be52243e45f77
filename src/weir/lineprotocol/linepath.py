"""The line path: a body read line by line into columns, with a reason for each bad
line.

A line without backslashes is split with str methods (and a small regex for quoted
strings) and its series key (measurement and tag set, as written) looked up in a cache,
so a repeated series costs one dict lookup; and when a series repeats the field keys and
types of its last line those go straight into the columns. Any other line goes through
the careful scanner (scanner.py). Each line is checked whole, against the stored schema and the lines
before it, before any value reaches the columns, so a bad line leaves nothing behind.

With `lazy` floats (large bodies), float values are kept as text and each column is
converted at the end in one Arrow cast; if one turns out not to be a number the body is
read again with every value converted and checked as its line is read, so the errors
are exactly those of the eager reading.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weir.lineprotocol.batch import (
    ARROW_TYPES,
    FieldType,
    FieldValue,
    LineError,
    ParsedWrite,
    SchemaLookup,
    TableColumns,
    tag_columns,
)
from weir.lineprotocol.scanner import (
    FLOAT_END,
    MAX_STRING_BYTES,
    LineSyntaxError,
    field_value,
    scan_line,
    timestamp_ns,
)

# Series key text -> (measurement, ((tag, value), ...), {tag: value}), shared by all
# parses (writers repeat the same series request after request) and by the batch path.
# The dict is shorter than the tuple when a tag key repeats.
SeriesEntry = tuple[str, tuple[tuple[str, str], ...], dict[str, str]]
SERIES_CACHE: dict[str, SeriesEntry] = {}
_SERIES_CACHE_MAX = 50_000  # about 2 KB each at most for ten-tag series


def parse_lines(body: bytes | str, factor: int, auto: bool, default_time_ns: int,
                stop_on_first_error: bool, schema: SchemaLookup | None, lazy: bool
                ) -> ParsedWrite:
    """Read `body` line by line (see the module docstring for `lazy`)."""
    if lazy:
        try:
            return _read_lines(body, _Batch(factor, auto, default_time_ns, schema, lazy=True),
                               stop_on_first_error)
        except _BadFloat:
            pass
    return _read_lines(body, _Batch(factor, auto, default_time_ns, schema, lazy=False),
                       stop_on_first_error)


def _body_lines(body: bytes | str) -> list[str] | list[str | bytes]:
    """The body's physical lines as text; a line that is not UTF-8 stays bytes."""
    if isinstance(body, str):
        return body.split("\n")
    try:
        return body.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        out: list[str | bytes] = []
        for raw in body.split(b"\n"):
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(raw)
        return out


def _read_lines(body: bytes | str, batch: _Batch, stop_on_first_error: bool) -> ParsedWrite:
    errors: list[LineError] = []
    lines = 0
    add = batch.add
    for number, text in enumerate(_body_lines(body), 1):
        if isinstance(text, bytes):
            lines += 1
            shown = text.decode("utf-8", "replace").rstrip("\r")
            errors.append(LineError(number, "invalid UTF-8 in line", shown))
            if stop_on_first_error:
                break
            continue
        line = text.rstrip(" \t\r").lstrip(" \t")
        if not line or line[0] == "#":
            continue
        lines += 1
        try:
            add(number, line)
        except LineSyntaxError as e:
            errors.append(LineError(number, str(e), text.rstrip("\r")))
            if stop_on_first_error:
                break
    return ParsedWrite(tables=batch.finish(), errors=errors, lines=lines)


class _BadFloat(Exception):
    """A float column's text holds something that is not a line protocol float."""


_FLOAT = FieldType.FLOAT


def _float_column(texts: list[str | None]) -> pa.Array:
    """Float texts -> float64. Arrow reads exactly the line protocol grammar, plus a
    leading '+' and overflow to infinity, which are refused here."""
    text = pa.array(texts, pa.string())
    try:
        values = pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _BadFloat from None
    if pc.any(pc.starts_with(text, "+")).as_py() or not pc.all(pc.is_finite(values)).as_py():
        raise _BadFloat
    return values


def series_entry(key: str) -> SeriesEntry | None:
    """A series key without escapes (measurement,tag=value,...), parsed and cached; None
    when it is not well formed (the scanner then says why)."""
    entry = SERIES_CACHE.get(key)
    if entry is not None:
        return entry
    parts = key.split(",")
    measurement = parts[0]
    if not measurement:
        return None
    tags = []
    for item in parts[1:]:
        k, eq, v = item.partition("=")
        if not k or not eq or not v:
            return None
        tags.append((k, v))
    entry = (measurement, tuple(tags), dict(tags))
    if len(SERIES_CACHE) >= _SERIES_CACHE_MAX:
        SERIES_CACHE.clear()
    SERIES_CACHE[key] = entry
    return entry


_Layout = tuple[list[str], list[FieldType], list[list[FieldValue | None]], int, bool]

# One field of a line without backslashes: key=value or key="text" (anything else, the
# scanner reads).
_SIMPLE_FIELD = re.compile(r'([^,= "]+)=(?:"([^"]*)"|([^,= "]+))')


class _Table:
    """A table's rows while the line path fills it: field columns as Python lists, tags
    as one series index per row (tag columns are built per series at the end)."""

    __slots__ = ("fields", "good_series", "known", "layouts", "line_numbers", "name",
                 "row_series", "rows", "series_index", "series_tags", "tag_names", "times")

    def __init__(self, name: str, known: Mapping[str, tuple[str, str]]) -> None:
        self.name = name
        self.known = known
        self.rows = 0
        self.line_numbers: list[int] = []
        self.times: list[int] = []
        self.row_series: list[int] = []
        self.series_tags: list[Mapping[str, str]] = []
        self.series_index: dict[Hashable, int] = {}
        self.tag_names: dict[str, None] = {}
        self.fields: dict[str, tuple[FieldType, list[FieldValue | None]]] = {}
        # series keys of good lines: their tags pass the checks again for the batch
        # (their tag keys are tag columns now, which no field can take)
        self.good_series: set[str] = set()
        # series key -> the field keys and types of its last good line, with their
        # column lists, the series index and whether all are floats: a line that repeats
        # them passes the same checks again, so it goes straight into the columns
        self.layouts: dict[str, _Layout] = {}

    def check_tags(self, tags: Sequence[tuple[str, str]]) -> None:
        seen: set[str] = set()
        for k, _v in tags:
            if k == "time":
                raise LineSyntaxError("tag key 'time' is reserved")
            if k in seen:
                raise LineSyntaxError(
                    f"invalid line protocol - multiple instances of '{k}' tag found")
            seen.add(k)
            if k in self.fields:
                raise LineSyntaxError(
                    f"column '{k}' is a field in table '{self.name}', cannot use it as a tag")
            known = self.known.get(k)
            if known is not None and known[0] != "tag":
                raise LineSyntaxError(
                    f"column '{k}' is a {known[0]} in table '{self.name}', "
                    "cannot use it as a tag")

    def check_fields(self, fields: list[tuple[str, FieldType, FieldValue]],
                     line_tags: Mapping[str, str]) -> None:
        seen: set[str] = set()
        table_fields = self.fields
        for k, ftype, _v in fields:
            if k in seen:
                raise LineSyntaxError(
                    f"invalid line protocol - multiple instances of '{k}' field found")
            seen.add(k)
            col = table_fields.get(k)
            if col is not None:
                if col[0] is not ftype:
                    raise LineSyntaxError(f"invalid field type for '{k}': expected "
                                          f"{col[0].value}, got {ftype.value}")
                continue
            if k == "time":
                raise LineSyntaxError("field key 'time' is reserved")
            if k in line_tags or k in self.tag_names:
                raise LineSyntaxError(
                    f"column '{k}' is a tag in table '{self.name}', cannot use it as a field")
            known = self.known.get(k)
            if known is not None:
                if known[0] != "field":
                    raise LineSyntaxError(
                        f"column '{k}' is a {known[0]} in table '{self.name}', "
                        "cannot use it as a field")
                if known[1] != ftype.value:
                    raise LineSyntaxError(f"invalid field type for '{k}': expected "
                                          f"{known[1]}, got {ftype.value}")

    def append(self, line_number: int, series_key: Hashable, tags: Mapping[str, str],
               fields: list[tuple[str, FieldType, FieldValue]], time_ns: int) -> None:
        series = self.series_index.get(series_key)
        if series is None:
            series = self.series_index[series_key] = len(self.series_tags)
            self.series_tags.append(tags)
            for k in tags:
                self.tag_names.setdefault(k)
        self.row_series.append(series)
        n = self.rows
        fcols = self.fields
        for k, ftype, v in fields:
            entry = fcols.get(k)
            if entry is None:
                entry = fcols[k] = (ftype, [None] * n)
            entry[1].append(v)
        self.times.append(time_ns)
        self.line_numbers.append(line_number)
        n += 1
        self.rows = n
        if len(fields) != len(fcols):
            for _t, col in fcols.values():
                if len(col) < n:
                    col.append(None)

    def append_known(self, line_number: int, layout: _Layout, values: Sequence[FieldValue],
                     time_ns: int) -> None:
        columns, series = layout[2], layout[3]
        for col, v in zip(columns, values, strict=True):
            col.append(v)
        self.row_series.append(series)
        self.times.append(time_ns)
        self.line_numbers.append(line_number)
        n = self.rows = self.rows + 1
        if len(columns) != len(self.fields):
            for _t, col in self.fields.values():
                if len(col) < n:
                    col.append(None)

    def to_columns(self, lazy: bool) -> TableColumns:
        """Arrow columns; with `lazy`, float columns hold text, converted here (raises
        _BadFloat if one is not a line protocol float)."""
        tags = tag_columns(self.series_tags, np.array(self.row_series, np.int64))
        # (a lazy float column holds each value's text: field_value_lazy, _add_plain)
        fields = {k: (t, _float_column(cast("list[str | None]", v)) if lazy and t is _FLOAT
                      else pa.array(v, ARROW_TYPES[t]))
                  for k, (t, v) in self.fields.items()}
        return TableColumns.from_arrays(self.name, pa.array(self.line_numbers, pa.int64()),
                                        tags, fields, pa.array(self.times, pa.int64()))


class _Batch:
    """The line path's state: the tables so far, in order of first appearance."""

    def __init__(self, factor: int, auto: bool, default_time_ns: int,
                 schema: SchemaLookup | None, lazy: bool) -> None:
        self.factor = factor
        self.auto = auto
        self.default_time_ns = default_time_ns
        self.schema = schema
        self.lazy = lazy  # floats stay text until finish()
        self.tables: dict[str, _Table] = {}

    def table(self, name: str) -> _Table:
        table = self.tables.get(name)
        if table is None:
            known = (self.schema(name) if self.schema is not None else None) or {}
            table = self.tables[name] = _Table(name, known)
        return table

    def add(self, line_number: int, line: str) -> None:
        """Parse one trimmed, non-comment line into the columns, or raise
        LineSyntaxError and leave them as they were."""
        if not self.lazy:
            return self._add(line_number, line, False)
        try:
            return self._add(line_number, line, True)
        except LineSyntaxError:
            # Unchecked float text may be the first thing wrong with the line: the line
            # as a whole says which (the columns are as they were).
            return self._add(line_number, line, False)

    def _add(self, line_number: int, line: str, lazy: bool) -> None:
        if "\\" not in line:
            if '"' not in line:
                parts = line.split(" ")
                if (2 <= len(parts) <= 3 and parts[1] and parts[-1]
                        and self._add_plain(line_number, parts, lazy)):
                    return
            elif self._add_quoted(line_number, line, lazy):
                return
        measurement, tags, fields, raw_ts = scan_line(line, lazy)
        time_ns = (self.default_time_ns if raw_ts is None else
                   timestamp_ns(raw_ts, self.factor, self.auto))
        table = self.table(measurement)
        table.check_tags(tags)
        tag_map = dict(tags)
        table.check_fields(fields, tag_map)
        table.append(line_number, tuple(tags), tag_map, fields, time_ns)

    def _add_plain(self, line_number: int, parts: list[str], lazy: bool) -> bool:
        """A line without backslashes or quotes, split at its one or two spaces. False
        when the scanner should say what is wrong with it."""
        series_key = parts[0]
        series = series_entry(series_key)
        if series is None:
            return False
        items = [item.partition("=") for item in parts[1].split(",")]
        keys = [item[0] for item in items]
        table = self.table(series[0])
        layout = table.layouts.get(series_key)
        if lazy and layout is not None and layout[4] and layout[0] == keys:
            # the common case: the series' usual float fields again; their text is
            # checked with the whole column in finish()
            time_ns = (self.default_time_ns if len(parts) == 2 else
                       timestamp_ns(parts[2], self.factor, self.auto))
            table.append_known(line_number, layout, [item[2] for item in items], time_ns)
            return True
        types: list[FieldType] = []
        values: list[FieldValue] = []
        for k, eq, raw in items:
            if not k or not eq or not raw:  # the scanner words what is missing
                return False
            if lazy and raw[-1:] in FLOAT_END and raw:
                types.append(_FLOAT)
                values.append(raw)
            else:
                ftype, v = field_value(k, raw)
                types.append(ftype)
                values.append(v)
        time_ns = (self.default_time_ns if len(parts) == 2 else
                   timestamp_ns(parts[2], self.factor, self.auto))
        self._commit(line_number, table, series_key, series, keys, types, values, time_ns)
        return True

    def _add_quoted(self, line_number: int, line: str, lazy: bool) -> bool:
        """A line with quoted string fields but no backslashes: the series key ends at
        the first space (quotes are only special in field values). False when the line
        takes anything this does not (the scanner then reads it)."""
        sp = line.find(" ")
        if sp < 0:
            return False
        series_key = line[:sp]
        series = series_entry(series_key)
        if series is None:
            return False
        n = len(line)
        pos = sp + 1
        while pos < n and line[pos] == " ":
            pos += 1
        found = []
        while True:
            m = _SIMPLE_FIELD.match(line, pos)
            if m is None:
                return False
            found.append(m.groups())
            pos = m.end()
            if pos < n and line[pos] == ",":
                pos += 1
                continue
            break
        raw_ts = None
        if pos < n:
            if line[pos] != " ":
                return False
            raw_ts = line[pos:].lstrip(" ")
            if " " in raw_ts:
                return False
        # The line has the shape this reads; now its values, in order, as the scanner.
        keys: list[str] = []
        types: list[FieldType] = []
        values: list[FieldValue] = []
        for k, text, raw in found:
            if text is None and not raw:
                return False  # a missing value: the scanner words it
            keys.append(k)
            if text is not None:
                if len(text) > MAX_STRING_BYTES // 4:
                    return False  # the scanner checks the size limit
                types.append(FieldType.STRING)
                values.append(text)
            elif lazy and raw[-1] in FLOAT_END:
                types.append(_FLOAT)
                values.append(raw)
            else:
                ftype, v = field_value(k, raw)
                types.append(ftype)
                values.append(v)
        time_ns = (self.default_time_ns if raw_ts is None else
                   timestamp_ns(raw_ts, self.factor, self.auto))
        self._commit(line_number, self.table(series[0]), series_key, series, keys, types,
                     values, time_ns)
        return True

    def _commit(self, line_number: int, table: _Table, series_key: str, series: SeriesEntry,
                keys: list[str], types: list[FieldType], values: list[FieldValue], time_ns: int
                ) -> None:
        """Check a parsed plain line against the table (unless its series and field
        layout passed before) and append it."""
        layout = table.layouts.get(series_key)
        if layout is not None and layout[0] == keys and layout[1] == types:
            table.append_known(line_number, layout, values, time_ns)
            return
        _measurement, tags, tag_map = series
        known_series = series_key in table.good_series
        if not known_series:
            table.check_tags(tags)
        fields = list(zip(keys, types, values, strict=True))
        table.check_fields(fields, tag_map)
        table.append(line_number, series_key, tag_map, fields, time_ns)
        if not known_series:
            # only now: while no row has them, a later line may make its tag keys
            # fields, and then the tags no longer pass
            table.good_series.add(series_key)
        table.layouts[series_key] = (keys, types, [table.fields[k][1] for k in keys],
                                     table.series_index[series_key],
                                     all(t is _FLOAT for t in types))

    def finish(self) -> dict[str, TableColumns]:
        """The tables with rows, in order of their first good line."""
        tables = sorted((t for t in self.tables.values() if t.rows),
                        key=lambda t: t.line_numbers[0])
        return {t.name: t.to_columns(self.lazy) for t in tables}
