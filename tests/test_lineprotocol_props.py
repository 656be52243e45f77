"""Property tests: random valid tables round-trip through format_line and parse; random
input never makes the parser raise."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weir.lineprotocol import FieldType, format_line, parse

# Names: anything printable but newlines, not starting with '#' (a comment) and not
# `time`; line protocol cannot carry empty names, leading spaces are trimmed.
name = st.text(
    alphabet=st.characters(blacklist_categories=["Cc", "Cs"], blacklist_characters="\n\r"),
    min_size=1, max_size=12,
).filter(lambda s: s != "time" and not s.startswith("#") and s.strip() == s and s.strip())

value = st.one_of(
    st.tuples(st.just(FieldType.FLOAT),
              st.floats(allow_nan=False, allow_infinity=False, width=64)),
    st.tuples(st.just(FieldType.INTEGER), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just(FieldType.UINTEGER), st.integers(0, 2**64 - 1)),
    st.tuples(st.just(FieldType.BOOLEAN), st.booleans()),
    st.tuples(st.just(FieldType.STRING),
              st.text(alphabet=st.characters(blacklist_categories=["Cs"],
                                             blacklist_characters="\n\r"), max_size=20)),
)


@st.composite
def lines(draw):  # type: ignore[no-untyped-def]
    measurement = draw(name)
    tag_keys = draw(st.lists(name, max_size=3, unique=True))
    tags = {k: draw(name) for k in tag_keys}
    field_keys = draw(st.lists(name.filter(lambda k: k not in tags), min_size=1, max_size=4,
                               unique=True))
    fields = {k: draw(value) for k in field_keys}
    ts = draw(st.one_of(st.none(), st.integers(-(2**62), 2**62)))
    return measurement, tags, fields, ts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines())
def test_round_trip(line):
    measurement, tags, fields, ts = line
    text = format_line(measurement, tags, fields, ts)
    r = parse(text, default_time_ns=7, precision="ns")
    assert not r.errors, (text, r.errors)
    t = r.tables[measurement]
    assert t.rows == 1
    assert {k: v[0] for k, v in t.tags.items()} == tags
    for k, (ftype, v) in fields.items():
        got_type, got = t.fields[k]
        assert got_type is ftype
        if ftype is FieldType.FLOAT:
            assert math.isclose(got[0], v, rel_tol=0, abs_tol=0) or got[0] == v
        else:
            assert got[0] == v
    assert t.times == [7 if ts is None else ts]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data):
    r = parse(data, default_time_ns=0)
    for e in r.errors:
        assert e.line_number >= 1 and e.message


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["m", "m,t=a", "v=1", "v=1i", " ", ",", "=", "\\", '"', "1",
                                 "\n", "#", "t", "x=\"s\""]), max_size=30))
def test_random_token_soup_never_raises(tokens):
    body = "".join(tokens)
    for b in (body, body * 200):  # the second is large enough for the batch fast path
        r = parse(b, default_time_ns=0)
        assert r.lines >= len({e.line_number for e in r.errors})
