"""What must hold for any body given to `weir.lineprotocol.parse()`, checked in one call.

Shared by the atheris harness (fuzz_lineprotocol.py) and the hypothesis properties
(tests/fuzz/test_lineprotocol_fuzz_props.py). `check_body(data)` raises `InvariantError`
(an AssertionError) saying which invariant broke; anything else it raises is the
parser raising. For one body it checks:

* parse() never raises, in every precision, with and without `stop_on_first_error`
  (only per-line errors are reported);
* every line is accounted for: each non-blank, non-comment line (after the trimming
  linepath.py does: trailing spaces, tabs and CRs, leading spaces and tabs; a line
  that is not UTF-8 is always a data line) is exactly one row or exactly one error,
  with its 1-based line number and the line as written; `lines` counts them; errors
  and each table's rows come in line order, tables in order of their first row;
* the columns are well formed: Arrow-valid, one entry per row, tags and fields
  disjoint, no `time` column among them, a field in every row, finite floats;
* `stop_on_first_error` gives the first error of the full parse and exactly the rows
  before it;
* all paths agree: the line path with eager and with bulk (lazy) float conversion,
  the scanner alone (no str.split shortcuts), parse() with the batch path forced on,
  and the batch path itself (parse_plain_body) whenever it answers; bytes and str
  bodies agree. The body twice over (lines of one copy meet the other's) is checked
  for accounting and by the line path's two float modes, and by the batch path where
  it took the single copy;
* precisions agree: a line accepted both in `ns` and in another precision has the
  same tags and fields and its time scaled by that precision (or guessed, for
  `auto`); if every line is good in `ns`, the only errors elsewhere are timestamps
  out of range;
* rows round-trip: the accepted rows rendered with format_line() and parsed again
  (line path and batch path) give the same rows, with no errors.

Which precision besides `ns` gets the path checks, and whether a stored schema is
given, is picked from the body's CRC so that each input is checked the same way
every time (the fuzzer needs that).
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import weir.lineprotocol.linepath as linepath_module
import weir.lineprotocol.parser as parser_module
from weir.lineprotocol import FieldType, ParsedWrite, format_line, parse
from weir.lineprotocol.columnar import parse_plain_body
from weir.lineprotocol.scanner import guess_factor

PRECISIONS = ("ns", "auto", "us", "ms", "s")
DEFAULT_TIME_NS = 1_111_111_111_111_111_111  # what lines without a timestamp get
DOUBLE_MAX_BYTES = 2048  # bodies up to this size are also checked twice over

# A stored schema (given to every other body): table `m` has tag `t`, float `v`,
# string `s`; table `cpu` has integer `v`.
_SCHEMA = {
    "m": {"t": ("tag", ""), "v": ("field", "float"), "s": ("field", "string"),
          "time": ("time", "")},
    "cpu": {"v": ("field", "integer"), "time": ("time", "")},
}


def _schema(table: str) -> dict[str, tuple[str, str]] | None:
    return _SCHEMA.get(table)


# What the checks saw, so that a caller can tell they were not vacuous.
STATS: Counter[str] = Counter()


class InvariantError(AssertionError):
    """An invariant of the parser does not hold for this body."""


def _fail(what: str, body: bytes | str, *details: Any) -> None:
    shown = body if len(body) <= 600 else body[:600] + (b"..." if isinstance(body, bytes)
                                                         else "...")
    lines = [f"weir-fuzz invariant broken: {what}", f"  body: {shown!r}"]
    lines.extend(f"  {d!r}"[:4000] for d in details)
    raise InvariantError("\n".join(lines))


# ---- ways to run the parser --------------------------------------------------------


@contextmanager
def _settings(fast_min: int | None = None, lazy_min: int | None = None) -> Iterator[None]:
    old = parser_module.FAST_PATH_MIN_BYTES, parser_module.LAZY_FLOATS_MIN_BYTES
    if fast_min is not None:
        parser_module.FAST_PATH_MIN_BYTES = fast_min
    if lazy_min is not None:
        parser_module.LAZY_FLOATS_MIN_BYTES = lazy_min
    try:
        yield
    finally:
        parser_module.FAST_PATH_MIN_BYTES, parser_module.LAZY_FLOATS_MIN_BYTES = old


@contextmanager
def _scanner_only() -> Iterator[None]:
    """Every line through the careful scanner (no str.split shortcuts)."""
    batch = linepath_module._Batch
    saved = batch._add_plain, batch._add_quoted
    batch._add_plain = batch._add_quoted = lambda *_a: False  # type: ignore[method-assign]
    try:
        yield
    finally:
        batch._add_plain, batch._add_quoted = saved  # type: ignore[method-assign]


NEVER = 1 << 62


def line_path(body: bytes | str, *, lazy: bool, **kw: Any) -> ParsedWrite:
    """parse() on the line path, with bulk float conversion on or off."""
    with _settings(fast_min=NEVER, lazy_min=0 if lazy else NEVER):
        return parse(body, default_time_ns=DEFAULT_TIME_NS, **kw)


def scanner_path(body: bytes | str, **kw: Any) -> ParsedWrite:
    with _scanner_only():
        return line_path(body, lazy=False, **kw)


def forced_batch_path(body: bytes | str, **kw: Any) -> ParsedWrite:
    """parse() as for a large body: the batch path first (if no backslashes)."""
    with _settings(fast_min=0, lazy_min=0):
        return parse(body, default_time_ns=DEFAULT_TIME_NS, **kw)


def batch_path(body: bytes, precision: str, schema: Callable | None) -> ParsedWrite | None:
    factor, auto = parser_module.precision_factor(precision)
    return parse_plain_body(body, factor=factor, auto=auto, default_time_ns=DEFAULT_TIME_NS,
                            schema=schema)


# ---- plain-Python views of a result ---------------------------------------------------


def _canon(v: Any) -> Any:
    """Values compared exactly: floats by their bits (so -0.0 is not 0.0)."""
    if isinstance(v, float):
        return ("float", v.hex())
    return (type(v).__name__, v)


def snapshot(r: ParsedWrite) -> tuple:
    """Everything a ParsedWrite says, in plain Python, to compare two parses."""
    tables = []
    for name, t in r.tables.items():
        tables.append((
            name, str(t.to_arrow().schema),
            [(k, [_canon(v) for v in col]) for k, col in t.tags.items()],
            [(k, ftype.value, [_canon(v) for v in col]) for k, (ftype, col) in t.fields.items()],
            list(t.times), list(t.line_numbers)))
    return tables, [(e.line_number, e.message, e.original_line) for e in r.errors], r.lines


Row = tuple[int, str, dict[str, str], dict[str, tuple[FieldType, Any]], int]


def rows_of(r: ParsedWrite) -> list[Row]:
    """(line, table, tags, fields, time) of every row, in line order."""
    rows: list[Row] = []
    for name, t in r.tables.items():
        tags = {k: col.to_pylist() for k, col in t.tags.items()}
        fields = {k: (ftype, col.to_pylist()) for k, (ftype, col) in t.fields.items()}
        for i, (line, time) in enumerate(zip(t.line_numbers, t.times, strict=True)):
            rows.append((line, name,
                         {k: v[i] for k, v in tags.items() if v[i] is not None},
                         {k: (ft, v[i]) for k, (ft, v) in fields.items() if v[i] is not None},
                         time))
    rows.sort(key=lambda row: row[0])
    return rows


def _row_key(row: Row) -> tuple:
    """A row without its line number, comparable exactly."""
    _line, table, tags, fields, time = row
    return (table, sorted(tags.items()),
            sorted((k, ft.value, _canon(v)) for k, (ft, v) in fields.items()), time)


def data_lines(body: bytes) -> dict[int, str]:
    """line number -> the line as an error must show it, for every line that must come
    out as a row or an error (the grammar's trimming is linepath.py's)."""
    out = {}
    for number, raw in enumerate(body.split(b"\n"), 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            out[number] = raw.decode("utf-8", "replace").rstrip("\r")
            continue
        line = text.rstrip(" \t\r").lstrip(" \t")
        if line and line[0] != "#":
            out[number] = text.rstrip("\r")
    return out


# ---- the invariants -----------------------------------------------------------------

_I64 = (-(2**63), 2**63 - 1)
_RANGES = {FieldType.INTEGER: _I64, FieldType.UINTEGER: (0, 2**64 - 1)}
_PYTYPES = {FieldType.FLOAT: float, FieldType.INTEGER: int, FieldType.UINTEGER: int,
            FieldType.BOOLEAN: bool, FieldType.STRING: str}


def check_well_formed(body: bytes, r: ParsedWrite, expected: dict[int, str]) -> None:
    """Columns, errors and line numbers are sane, each for itself."""
    numbers = [e.line_number for e in r.errors]
    if numbers != sorted(set(numbers)):
        _fail("errors are not in strictly increasing line order", body, numbers)
    for e in r.errors:
        if e.line_number not in expected:
            _fail("an error names a line that is blank, a comment or not in the body",
                  body, e)
        if e.original_line != expected[e.line_number]:
            _fail("an error does not show its line as written", body, e,
                  expected[e.line_number])
        if not e.message:
            _fail("an error without a message", body, e)
    firsts = []
    for name, t in r.tables.items():
        if not name or name != t.name:
            _fail("a table with a bad name", body, name, t.name)
        n = t.rows
        if n == 0:
            _fail("an empty table", body, name)
        t.to_arrow().validate(full=True)
        lines = list(t.line_numbers)
        if lines != sorted(set(lines)):
            _fail("a table's rows are not in line order", body, name, lines)
        firsts.append(lines[0])
        if "time" in t.tags or "time" in t.fields or not t.tags.keys().isdisjoint(t.fields):
            _fail("a tag and a field share a name, or one is called time", body, name,
                  list(t.tags), list(t.fields))
        cols = [*t.tags.values(), *(c for _ft, c in t.fields.values())]
        if any(len(c) != n for c in cols) or len(t.line_numbers) != n:
            _fail("columns of different lengths", body, name)
        for k, col in t.tags.items():
            if any(v == "" for v in col):
                _fail("an empty tag value", body, name, k)
        present = [False] * n
        for k, (ftype, col) in t.fields.items():
            for i, v in enumerate(col):
                if v is None:
                    continue
                present[i] = True
                if type(v) is not _PYTYPES[ftype]:
                    _fail("a field value of the wrong Python type", body, name, k, ftype, v)
                if ftype is FieldType.FLOAT and not math.isfinite(v):
                    _fail("a float field that is not finite", body, name, k, v)
                lo_hi = _RANGES.get(ftype)
                if lo_hi and not lo_hi[0] <= v <= lo_hi[1]:
                    _fail("an integer out of range", body, name, k, v)
        if not all(present):
            _fail("a row without fields", body, name)
        if any(not _I64[0] <= ts <= _I64[1] for ts in t.times):
            _fail("a timestamp out of range", body, name)
    if firsts != sorted(firsts):
        _fail("tables are not in order of their first row", body, firsts)


def check_accounted(body: bytes, r: ParsedWrite, expected: dict[int, str]) -> None:
    """Every line that is not blank or a comment is exactly one row or one error."""
    errors = {e.line_number for e in r.errors}
    rows = [n for t in r.tables.values() for n in t.line_numbers]
    if len(rows) != len(set(rows)):
        _fail("a line gave more than one row", body, sorted(rows))
    if errors & set(rows):
        _fail("a line is both a row and an error", body, sorted(errors & set(rows)))
    got = errors | set(rows)
    if got != expected.keys():
        lost = sorted(expected.keys() - got)
        extra = sorted(got - expected.keys())
        _fail("lines lost or invented", body, f"lost {lost}", f"invented {extra}")
    if r.lines != len(expected):
        _fail("`lines` does not count the data lines", body, r.lines, len(expected))


def check_stop(body: bytes, full: ParsedWrite, stop: ParsedWrite,
               expected: dict[int, str]) -> None:
    """stop_on_first_error: the first error of the full parse, and the rows before it."""
    if not full.errors:
        if snapshot(stop) != snapshot(full):
            _fail("stop_on_first_error differs on a body without errors", body)
        return
    first = full.errors[0]
    got = [(e.line_number, e.message, e.original_line) for e in stop.errors]
    if got != [(first.line_number, first.message, first.original_line)]:
        _fail("stop_on_first_error does not give exactly the first error", body, got, first)
    before = [row for row in rows_of(full) if row[0] < first.line_number]
    if [(row[0], _row_key(row)) for row in rows_of(stop)] != [
            (row[0], _row_key(row)) for row in before]:
        _fail("stop_on_first_error does not keep exactly the rows before the error", body)
    if stop.lines != sum(1 for n in expected if n <= first.line_number):
        _fail("stop_on_first_error counts the wrong number of lines", body, stop.lines)


def check_precisions(body: bytes, ns: ParsedWrite, other: ParsedWrite, precision: str
                     ) -> None:
    """Lines accepted in both `ns` and `precision` agree, the time scaled."""
    factor, auto = parser_module.precision_factor(precision)
    ns_rows = {row[0]: row for row in rows_of(ns)}
    for row in rows_of(other):
        base = ns_rows.get(row[0])
        if base is None:
            continue
        line, table, tags, fields, time = row
        if (table, sorted(tags.items())) != (base[1], sorted(base[2].items())) or sorted(
                (k, ft.value, _canon(v)) for k, (ft, v) in fields.items()) != sorted(
                (k, ft.value, _canon(v)) for k, (ft, v) in base[3].items()):
            _fail(f"precision {precision} reads line {line} differently from ns", body,
                  row, base)
        raw = base[4]
        scaled = raw * (guess_factor(raw) if auto else factor)
        if time != scaled and not (time == raw == DEFAULT_TIME_NS):
            _fail(f"precision {precision} does not scale line {line}'s time", body, raw, time)
    if not ns.errors:
        odd = [e for e in other.errors if not e.message.startswith("timestamp out of range")]
        if odd:
            _fail(f"precision {precision} rejects a line that is good in ns for another "
                  "reason than its timestamp's range", body, odd)


def check_paths_agree(body: bytes, precision: str, schema: Callable | None, *,
                      eager: ParsedWrite | None = None, thorough: bool = True,
                      batch: bool = True) -> tuple[ParsedWrite, bool]:
    """The line path with eager and with bulk float conversion and the batch path (if
    `batch` and it answers) give the same answer; `thorough` adds the scanner alone,
    the body as str on the line path, and parse() on the str body with the batch path
    forced on (the dispatch a large body takes). Returns the eager line path's answer
    and whether the batch path answered."""
    kw = {"precision": precision, "schema": schema}
    if eager is None:
        eager = line_path(body, lazy=False, **kw)
    want = snapshot(eager)
    got = snapshot(line_path(body, lazy=True, **kw))
    if got != want:
        _fail(f"the line path with bulk float conversion disagrees ({precision})", body,
              got, want)
    answered = False
    if batch and b"\\" not in body:
        fast = batch_path(body, precision, schema)
        if fast is not None:
            answered = True
            STATS["batch path answered"] += 1
            if snapshot(fast) != want:
                _fail(f"the batch path disagrees with the line path ({precision})", body,
                      snapshot(fast), want)
    if not thorough:
        return eager, answered
    got = snapshot(scanner_path(body, **kw))
    if got != want:
        _fail(f"the scanner alone disagrees with the line path ({precision})", body,
              got, want)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        # lone surrogates: the same lines fail, though shown with other replacements
        text = body.decode("utf-8", "surrogateescape")
        for label, r in (("line path", line_path(text, lazy=False, **kw)),
                         ("forced batch path", forced_batch_path(text, **kw))):
            tables, errors, lines = snapshot(r)
            if (tables, [e[:2] for e in errors], lines) != (
                    want[0], [e[:2] for e in want[1]], want[2]):
                _fail(f"a str body with lone surrogates disagrees with its bytes on the "
                      f"{label} ({precision})", body, snapshot(r), want)
        return eager, answered
    for label, r in (("line path", line_path(text, lazy=False, **kw)),
                     ("forced batch path", forced_batch_path(text, **kw))):
        if snapshot(r) != want:
            _fail(f"the body as str on the {label} disagrees with the body as bytes "
                  f"({precision})", body, snapshot(r), want)
    return eager, answered


def check_round_trip(body: bytes, r: ParsedWrite) -> None:
    """Accepted rows, rendered with format_line() and parsed again, come back the same."""
    rows = rows_of(r)
    if not rows:
        return
    try:
        text = "\n".join(format_line(table, tags, fields, time)
                         for _line, table, tags, fields, time in rows)
    except ValueError as e:
        _fail("format_line() refuses a row that parse() accepted", body, str(e), rows)
    again = line_path(text, lazy=False, precision="ns")
    if again.errors:
        _fail("a row rendered with format_line() does not parse", body, text, again.errors)
    if [_row_key(row) for row in rows_of(again)] != [_row_key(row) for row in rows]:
        _fail("rows change when rendered with format_line() and parsed again", body, text,
              rows_of(again), rows)
    STATS["round trips"] += 1


def check_body(data: bytes) -> None:
    """All of the above for one body (see the module docstring)."""
    STATS["inputs"] += 1
    expected = data_lines(data)
    crc = zlib.crc32(data)
    schema = _schema if crc & 1 else None
    other = PRECISIONS[1 + (crc >> 1) % (len(PRECISIONS) - 1)]

    # The default path, every precision, never raises and accounts for every line.
    results = {}
    for precision in PRECISIONS:
        r = parse(data, precision=precision, default_time_ns=DEFAULT_TIME_NS, schema=schema)
        check_well_formed(data, r, expected)
        check_accounted(data, r, expected)
        results[precision] = r
        if precision in ("ns", other):
            stop = parse(data, precision=precision, default_time_ns=DEFAULT_TIME_NS,
                         schema=schema, stop_on_first_error=True)
            check_well_formed(data, stop, expected)
            check_stop(data, r, stop, expected)
    ns = results["ns"]
    STATS["inputs with rows"] += bool(ns.tables)
    STATS["inputs with errors"] += bool(ns.errors)
    STATS["rows"] += sum(t.rows for t in ns.tables.values())
    for precision in PRECISIONS[1:]:
        check_precisions(data, ns, results[precision], precision)

    # All paths agree, in ns and one other precision, and on the body twice over.
    eager, answered = check_paths_agree(data, "ns", schema)
    if snapshot(eager) != snapshot(ns):
        _fail("parse() disagrees with its line path", data)
    check_paths_agree(data, other, schema, thorough=False)
    if len(data) <= DOUBLE_MAX_BYTES:
        twice = data + b"\n" + data
        r = line_path(twice, lazy=False, precision="ns", schema=schema)
        expected_twice = data_lines(twice)
        check_well_formed(twice, r, expected_twice)
        check_accounted(twice, r, expected_twice)
        # the batch path only where it took one copy: it almost always gives up on both
        # copies where it gave up on one, and it is most of the cost of a check
        check_paths_agree(twice, "ns", schema, eager=r, thorough=False, batch=answered)

    check_round_trip(data, ns)
