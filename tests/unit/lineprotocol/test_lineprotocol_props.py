"""Property tests: random tables round-trip through format_line and parse on both paths,
the batch path agrees with the line path whenever it answers, and no input makes the
parser raise."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import weir.lineprotocol.linepath as linepath_module
import weir.lineprotocol.parser as parser_module
from weir.lineprotocol import FieldType, ParsedWrite, format_line, parse
from weir.lineprotocol.columnar import parse_plain_body

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def line_path(body: str | bytes, lazy_floats: bool | None = None, **kw: Any) -> ParsedWrite:
    """parse() on the line path only; `lazy_floats` forces bulk float conversion on or
    off (by default it depends on the body's size)."""
    old = parser_module.FAST_PATH_MIN_BYTES, parser_module.LAZY_FLOATS_MIN_BYTES
    parser_module.FAST_PATH_MIN_BYTES = 1 << 62
    if lazy_floats is not None:
        parser_module.LAZY_FLOATS_MIN_BYTES = 0 if lazy_floats else 1 << 62
    try:
        return parse(body, **kw)
    finally:
        parser_module.FAST_PATH_MIN_BYTES, parser_module.LAZY_FLOATS_MIN_BYTES = old


@contextmanager
def scanner_only() -> Iterator[None]:
    """Every line through the careful scanner (no str.split shortcuts)."""
    batch = linepath_module._Batch
    saved = batch._add_plain, batch._add_quoted
    batch._add_plain = batch._add_quoted = lambda *_a: False  # type: ignore[method-assign]
    try:
        yield
    finally:
        batch._add_plain, batch._add_quoted = saved  # type: ignore[method-assign]


def snapshot(r: ParsedWrite) -> tuple:
    tables = []
    for name, t in r.tables.items():
        batch = t.to_arrow()
        tables.append((name, str(batch.schema), [f.metadata for f in batch.schema],
                       [c.to_pylist() for c in batch.columns], list(t.line_numbers)))
    return tables, [(e.line_number, e.message, e.original_line) for e in r.errors], r.lines


# ---- random tables --------------------------------------------------------------------

# Any text line protocol can carry: no newlines, not `time`; a measurement must not
# start with '#' (a comment) or a tab (trimmed as leading whitespace).
NASTY = st.characters(blacklist_categories=["Cs"], blacklist_characters="\n")
name = st.one_of(
    st.text(alphabet=NASTY, min_size=1, max_size=10),
    st.text(alphabet=st.sampled_from(list(',= \\"#\t\r\'xé😀')), min_size=1, max_size=6),
).filter(lambda s: s != "time")
measurement_name = name.filter(lambda s: s[0] not in "#\t")
# Names the batch path takes: nothing that needs escaping.
PLAIN = st.characters(blacklist_categories=["Cs", "Cc", "Zs"],
                      blacklist_characters='\\",= #')
plain_name = st.text(alphabet=PLAIN, min_size=1, max_size=8).filter(lambda s: s != "time")
PLAIN_STRING = st.characters(blacklist_categories=["Cs"], blacklist_characters='\n\\"')

VALUE_TYPES = list(FieldType)


def values_of(ftype: FieldType, plain: bool = False) -> st.SearchStrategy:
    if ftype is FieldType.FLOAT:
        return st.floats(allow_nan=False, allow_infinity=False)
    if ftype is FieldType.INTEGER:
        return st.integers(-(2**63), 2**63 - 1)
    if ftype is FieldType.UINTEGER:
        return st.integers(0, 2**64 - 1)
    if ftype is FieldType.BOOLEAN:
        return st.booleans()
    return st.text(alphabet=PLAIN_STRING if plain else NASTY, max_size=20)


@st.composite
def batches(draw, names=name, measurements=measurement_name, plain=False):  # type: ignore[no-untyped-def]
    """Rows (measurement, tags, fields, time) that form a valid batch: each field keeps
    one type per table and no name is both a tag and a field in a table."""
    types = VALUE_TYPES
    tables = draw(st.lists(measurements, min_size=1, max_size=3, unique=True))
    schemas = {}
    for m in tables:
        tag_keys = draw(st.lists(names, max_size=3, unique=True))
        field_keys = draw(st.lists(names.filter(lambda k, tk=tag_keys: k not in tk),
                                   min_size=1, max_size=4, unique=True))
        schemas[m] = (tag_keys, {k: draw(st.sampled_from(types)) for k in field_keys})
    rows = []
    for _ in range(draw(st.integers(1, 8))):
        m = draw(st.sampled_from(tables))
        tag_keys, field_types = schemas[m]
        tags = {k: draw(names) for k in draw(st.lists(st.sampled_from(tag_keys), unique=True))
                } if tag_keys else {}
        keys = draw(st.lists(st.sampled_from(list(field_types)), min_size=1, unique=True))
        fields = {k: (field_types[k], draw(values_of(field_types[k], plain))) for k in keys}
        ts = draw(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)))
        rows.append((m, tags, fields, ts))
    return rows


def expected_tables(rows: list, default_time: int) -> dict:
    """What parse should return for these rows, built the obvious (slow) way."""
    out: dict[str, dict] = {}
    for number, (m, tags, fields, ts) in enumerate(rows, 1):
        t = out.setdefault(m, {"tags": {}, "fields": {}, "times": [], "lines": []})
        n = len(t["times"])
        for k, v in tags.items():
            t["tags"].setdefault(k, [None] * n).append(v)
        for k, (ftype, v) in fields.items():
            t["fields"].setdefault(k, (ftype, [None] * n))[1].append(v)
        t["times"].append(default_time if ts is None else ts)
        t["lines"].append(number)
        for col in list(t["tags"].values()) + [c for _t, c in t["fields"].values()]:
            if len(col) == n:
                col.append(None)
    return out


def same_value(ftype: FieldType, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if ftype is FieldType.FLOAT:
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b and type(a) is type(b)


def assert_matches(r: ParsedWrite, rows: list, text: str) -> None:
    assert not r.errors, (text, r.errors)
    want = expected_tables(rows, 7)
    assert list(r.tables) == list(want), text
    for m, w in want.items():
        t = r.tables[m]
        assert t.tags == w["tags"] and list(t.tags) == list(w["tags"]), text
        assert list(t.fields) == list(w["fields"]), text
        for k, (ftype, values) in w["fields"].items():
            got_type, got = t.fields[k]
            assert got_type is ftype, text
            assert all(same_value(ftype, a, b) for a, b in zip(got, values, strict=True)), text
        assert t.times == w["times"] and t.line_numbers == w["lines"], text
        t.to_arrow().validate(full=True)


@SETTINGS
@given(batches())
def test_round_trip_through_format_line(rows):
    text = "\n".join(format_line(*row) for row in rows)
    assert_matches(line_path(text, default_time_ns=7, precision="ns"), rows, text)
    assert_matches(line_path(text.encode(), lazy_floats=True, default_time_ns=7,
                             precision="ns"), rows, text)
    with scanner_only():
        assert_matches(line_path(text, default_time_ns=7, precision="ns"), rows, text)


@SETTINGS
@given(batches(names=plain_name, measurements=plain_name, plain=True))
def test_round_trip_on_the_batch_path(rows):
    text = "\n".join(format_line(*row) for row in rows)
    fast = parse_plain_body(text.encode(), factor=1, auto=False, default_time_ns=7,
                            schema=None)
    assert fast is not None, text
    assert_matches(fast, rows, text)
    assert snapshot(fast) == snapshot(line_path(text, default_time_ns=7, precision="ns"))


# ---- both paths agree on anything ---------------------------------------------------

# Mostly good lines with the odd bad part, so that most bodies are valid (and the batch
# path answers) while every kind of mistake still turns up.
_GOOD_SERIES = ["m", "cpu", "m,t=a", "m,t=b,u=c", "cpu,t=a", "é,ü=ö", "m,u=x,t=b"]
_BAD_SERIES = ["m,t=", "m,time=x", ",t=a", "m,t=a,t=b", "m,v=1", "m,", "m,=a", "m,t",
               'm,t="a"', 'm"x"', 'm,t="a b"']
_KEYS = ["v", "w", "x", "é"]
_BAD_KEYS = ["time", "", "t", "v=w"]
_GOOD_VALUES = {
    "float": ["1", "1.5", "-2", "1e5", "1E-3", ".5", "1.", "-0", "007", "3.25e+2", "-.5"],
    "integer": ["3i", "-3i", "0i", "9223372036854775807i", "-9223372036854775808i"],
    "uinteger": ["5u", "0u", "18446744073709551615u"],
    "boolean": ["t", "F", "true", "FALSE", "True", "f", "T", "false", "TRUE", "False"],
    "string": ['""', '"x"', '"a b"', '"x,y=z w"', '"é 😀"', '" "', '"#"', '"1"', '"\t"'],
}
_BAD_VALUES = ["+1", "1e400", "nan", "inf", "1x", "+3i", "9223372036854775808i", "i", "-5u",
               "18446744073709551616u", "yes", "tRUE", "", "1.2.3", "e5", "1e", "-", ".",
               '"open', '"a"b', 'a"b"', '"', '"a""b"', '"x" y']
_GOOD_TIMES = ["", " 1", " -1", " 0", " 1700000000", " 1700000000000", " 1700000000000000",
               " 1700000000000000000", " 9223372036854775807", " -9223372036854775808",
               " 4999999999", " 5000000000"]
_BAD_TIMES = [" 9223372036854775808", " +1", " 1.5", " x", " 1 2", "  1", " ", " 1,2"]
_ODD_LINES = ["", "# note", "  ", "\r", "\t# x", "m", " m v=1", "#m v=x", '# "odd', '#"']


@st.composite
def plain_bodies(draw):  # type: ignore[no-untyped-def]
    def pick(good, bad, one_in=80):  # type: ignore[no-untyped-def]
        return draw(st.sampled_from(bad if draw(st.integers(1, one_in)) == 1 else good))

    types = {k: draw(st.sampled_from(sorted(_GOOD_VALUES))) for k in _KEYS}
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.integers(1, 30)) == 1:
            lines.append(draw(st.sampled_from(_ODD_LINES)))
            continue
        keys = draw(st.lists(st.sampled_from(_KEYS), min_size=1, max_size=3,
                             unique=draw(st.integers(1, 60)) > 1))
        items = []
        for k in keys:
            k = pick([k], _BAD_KEYS, 150)
            ftype = types.get(k) or "float"
            if draw(st.integers(1, 60)) == 1:
                ftype = draw(st.sampled_from(sorted(_GOOD_VALUES)))
            items.append(f"{k}={pick(_GOOD_VALUES[ftype], _BAD_VALUES, 100)}")
        line = (pick(_GOOD_SERIES, _BAD_SERIES) + " " + ",".join(items)
                + pick(_GOOD_TIMES, _BAD_TIMES))
        if draw(st.integers(1, 10)) == 1:
            line += "\r"
        lines.append(line)
    return "\n".join(lines)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plain_bodies(), st.sampled_from(["auto", "ns", "s", "ms"]), st.booleans())
def test_all_paths_agree(body, precision, stop):
    """The batch path (whenever it answers), the line path with and without bulk float
    conversion, and the scanner alone give the same result."""
    factor, auto = parser_module.precision_factor(precision)
    for text in (body, body + "\n" + body):
        eager = snapshot(line_path(text, lazy_floats=False, precision=precision,
                                   default_time_ns=7, stop_on_first_error=stop))
        if text is body:
            with scanner_only():
                assert snapshot(line_path(text, lazy_floats=False, precision=precision,
                                          default_time_ns=7,
                                          stop_on_first_error=stop)) == eager, text
        assert snapshot(line_path(text, lazy_floats=True, precision=precision,
                                  default_time_ns=7, stop_on_first_error=stop)) == eager, text
        fast = parse_plain_body(text.encode(), factor=factor, auto=auto, default_time_ns=7,
                                schema=None)
        if fast is not None:
            assert snapshot(fast) == eager, text


# ---- nothing raises ---------------------------------------------------------------


def assert_sane(r: ParsedWrite) -> None:
    numbers = [e.line_number for e in r.errors]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert all(n >= 1 and e.message for n, e in zip(numbers, r.errors, strict=True))
    assert r.lines >= len(numbers)
    for t in r.tables.values():
        t.to_arrow().validate(full=True)


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data):
    assert_sane(parse(data, default_time_ns=0))
    assert_sane(parse(data * 50, default_time_ns=0, stop_on_first_error=True))


@SETTINGS
@given(st.text(max_size=200))
def test_random_text_never_raises(text):
    assert_sane(parse(text, default_time_ns=0))


@SETTINGS
@given(st.lists(st.sampled_from(["m", "m,t=a", "v=1", "v=1i", " ", ",", "=", "\\", '"', "1",
                                 "\n", "#", "t", 'x="s"', "\r", "\t", "time", "é", "\udcff"]),
                max_size=40))
def test_random_token_soup_never_raises(tokens):
    body = "".join(tokens)
    for b in (body, body * 200, body.encode("utf-8", "surrogateescape") * 100):
        assert_sane(parse(b, default_time_ns=0))
