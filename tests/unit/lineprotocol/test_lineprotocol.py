"""The line protocol parser: grammar, escapes, types, precisions, errors, columns, and
rendering lines back."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

import weir.lineprotocol.parser as parser_module
from weir.lineprotocol import (
    ColumnValues,
    FieldType,
    LineError,
    ParsedWrite,
    escape_key,
    escape_measurement,
    escape_string_field,
    format_line,
    format_value,
    parse,
)
from weir.lineprotocol.columnar import parse_plain_body

# ---- helpers -------------------------------------------------------------------------


def one(lp: str | bytes, **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("precision", "ns")
    r = parse(lp, default_time_ns=42, **kw)
    assert not r.errors, r.errors
    assert len(r.tables) == 1, r.tables
    return next(iter(r.tables.values()))


def row(t, i: int = 0) -> dict:  # type: ignore[no-untyped-def]
    out = {k: v[i] for k, v in t.tags.items() if v[i] is not None}
    out.update({k: v[i] for k, (_ty, v) in t.fields.items() if v[i] is not None})
    out["time"] = t.times[i]
    return out


def error_of(lp: str, **kw) -> LineError:  # type: ignore[no-untyped-def]
    kw.setdefault("precision", "ns")
    r = parse(lp, default_time_ns=0, **kw)
    assert len(r.errors) == 1, r.errors
    return r.errors[0]


def snapshot(r: ParsedWrite) -> tuple:
    """Everything a ParsedWrite says, in plain Python, to compare two parses."""
    tables = []
    for name, t in r.tables.items():
        batch = t.to_arrow()
        cols = {n: (c.cast(pa.int64()) if n == "time" else c)
                for n, c in zip(batch.schema.names, batch.columns, strict=True)}
        tables.append((name, str(batch.schema), batch.schema.metadata,
                       [f.metadata for f in batch.schema], pa.table(cols).to_pylist(),
                       list(t.line_numbers)))
    return tables, [(e.line_number, e.message, e.original_line) for e in r.errors], r.lines


def line_path(body: str | bytes, **kw) -> ParsedWrite:  # type: ignore[no-untyped-def]
    old = parser_module.FAST_PATH_MIN_BYTES
    parser_module.FAST_PATH_MIN_BYTES = 1 << 62
    try:
        return parse(body, **kw)
    finally:
        parser_module.FAST_PATH_MIN_BYTES = old


# ---- the grammar ---------------------------------------------------------------------


@pytest.mark.parametrize("lp,name,expected", [
    ("cpu v=1 5", "cpu", {"v": 1.0, "time": 5}),
    ("cpu,host=a v=1i 5", "cpu", {"host": "a", "v": 1, "time": 5}),
    ("cpu,host=a,region=eu v=1,w=2 5", "cpu", {"host": "a", "region": "eu", "v": 1.0,
                                               "w": 2.0, "time": 5}),
    ('cpu s="hello world" 5', "cpu", {"s": "hello world", "time": 5}),
    ('cpu s="" 5', "cpu", {"s": "", "time": 5}),
    ('cpu s="with,comma and=eq" 5', "cpu", {"s": "with,comma and=eq", "time": 5}),
    ('cpu s="x",v=1 5', "cpu", {"s": "x", "v": 1.0, "time": 5}),
    ('cpu v=1,s="tail"', "cpu", {"s": "tail", "v": 1.0, "time": 42}),
    ("cpu v=1", "cpu", {"v": 1.0, "time": 42}),
    ("cpu v=1 -5", "cpu", {"v": 1.0, "time": -5}),
    ("cpu v=1 0", "cpu", {"v": 1.0, "time": 0}),
    ("  cpu v=1 5  ", "cpu", {"v": 1.0, "time": 5}),
    ("\tcpu v=1 5\t", "cpu", {"v": 1.0, "time": 5}),
    ("cpu v=1 5\r", "cpu", {"v": 1.0, "time": 5}),
    ("cpu  v=1  5", "cpu", {"v": 1.0, "time": 5}),
    ("cpu,host=é v=1 5", "cpu", {"host": "é", "v": 1.0, "time": 5}),
    ("温度,地点=北京 值=1 5", "温度", {"地点": "北京", "值": 1.0, "time": 5}),
    ("cpu,t=a=b v=1 5", "cpu", {"t": "a=b", "v": 1.0, "time": 5}),
    ("cpu,t=\"q\" v=1 5", "cpu", {"t": '"q"', "v": 1.0, "time": 5}),
    ("cpu#x v=1 5", "cpu#x", {"v": 1.0, "time": 5}),
    ("cpu v=1,time_x=2 5", "cpu", {"v": 1.0, "time_x": 2.0, "time": 5}),
])
def test_valid_lines(lp, name, expected):
    t = one(lp)
    assert t.name == name
    assert row(t) == expected


# Each escape rule, as raw line protocol text -> (measurement, tags, field key, value).
@pytest.mark.parametrize("lp,measurement,tags,field,value", [
    # measurement: comma, space and backslash escape; anything else is literal
    (r"a\,b v=1", "a,b", {}, "v", 1.0),
    (r"a\ b v=1", "a b", {}, "v", 1.0),
    (r"a\\b v=1", "a\\b", {}, "v", 1.0),
    (r"a\=b v=1", "a\\=b", {}, "v", 1.0),
    (r"a\xb v=1", "a\\xb", {}, "v", 1.0),
    (r"a=b v=1", "a=b", {}, "v", 1.0),
    (r"a\\\,b v=1", "a\\,b", {}, "v", 1.0),
    # tag keys and values: comma, equals, space and backslash escape
    (r"m,a\,b=c v=1", "m", {"a,b": "c"}, "v", 1.0),
    (r"m,a\=b=c v=1", "m", {"a=b": "c"}, "v", 1.0),
    (r"m,a\ b=c v=1", "m", {"a b": "c"}, "v", 1.0),
    (r"m,a\\b=c v=1", "m", {"a\\b": "c"}, "v", 1.0),
    (r"m,k=a\,b v=1", "m", {"k": "a,b"}, "v", 1.0),
    (r"m,k=a\=b v=1", "m", {"k": "a=b"}, "v", 1.0),
    (r"m,k=a\ b v=1", "m", {"k": "a b"}, "v", 1.0),
    (r"m,k=a\\b v=1", "m", {"k": "a\\b"}, "v", 1.0),
    (r"m,k=a\\ v=1", "m", {"k": "a\\"}, "v", 1.0),
    (r"m,k=C:\Program\ Files v=1", "m", {"k": "C:\\Program Files"}, "v", 1.0),
    (r"m,k=\n v=1", "m", {"k": "\\n"}, "v", 1.0),
    # field keys: the same rules
    (r"m a\,b=1", "m", {}, "a,b", 1.0),
    (r"m a\=b=1", "m", {}, "a=b", 1.0),
    (r"m a\ b=1", "m", {}, "a b", 1.0),
    (r"m a\\b=1", "m", {}, "a\\b", 1.0),
    (r"m a\xb=1", "m", {}, "a\\xb", 1.0),
    # string values: only \" and \\ are escapes
    (r'm s="a\"b"', "m", {}, "s", 'a"b'),
    (r'm s="a\\b"', "m", {}, "s", "a\\b"),
    (r'm s="a\\"', "m", {}, "s", "a\\"),
    (r'm s="a\nb"', "m", {}, "s", "a\\nb"),
    (r'm s="c:\dir\file"', "m", {}, "s", "c:\\dir\\file"),
    (r'm s="\\\""', "m", {}, "s", '\\"'),
    (r'm s="a\,b\ c"', "m", {}, "s", "a\\,b\\ c"),
])
def test_escapes(lp, measurement, tags, field, value):
    t = one(lp)
    assert t.name == measurement
    assert {k: v[0] for k, v in t.tags.items()} == tags
    assert list(t.fields) == [field]
    assert t.fields[field][1][0] == value


@pytest.mark.parametrize("raw,ftype,value", [
    ("1", FieldType.FLOAT, 1.0),
    ("1.5", FieldType.FLOAT, 1.5),
    ("-1.5", FieldType.FLOAT, -1.5),
    ("-1e10", FieldType.FLOAT, -1e10),
    ("1E5", FieldType.FLOAT, 1e5),
    ("1e+5", FieldType.FLOAT, 1e5),
    ("1.5e-3", FieldType.FLOAT, 1.5e-3),
    ("1.", FieldType.FLOAT, 1.0),
    (".5", FieldType.FLOAT, 0.5),
    ("-.5", FieldType.FLOAT, -0.5),
    ("007", FieldType.FLOAT, 7.0),
    ("-0", FieldType.FLOAT, -0.0),
    ("1.7976931348623157e308", FieldType.FLOAT, 1.7976931348623157e308),
    ("12i", FieldType.INTEGER, 12),
    ("-3i", FieldType.INTEGER, -3),
    ("0i", FieldType.INTEGER, 0),
    ("9223372036854775807i", FieldType.INTEGER, 2**63 - 1),
    ("-9223372036854775808i", FieldType.INTEGER, -(2**63)),
    ("12u", FieldType.UINTEGER, 12),
    ("0u", FieldType.UINTEGER, 0),
    ("18446744073709551615u", FieldType.UINTEGER, 2**64 - 1),
    ('"x"', FieldType.STRING, "x"),
    ("t", FieldType.BOOLEAN, True),
    ("T", FieldType.BOOLEAN, True),
    ("true", FieldType.BOOLEAN, True),
    ("True", FieldType.BOOLEAN, True),
    ("TRUE", FieldType.BOOLEAN, True),
    ("f", FieldType.BOOLEAN, False),
    ("F", FieldType.BOOLEAN, False),
    ("false", FieldType.BOOLEAN, False),
    ("False", FieldType.BOOLEAN, False),
    ("FALSE", FieldType.BOOLEAN, False),
])
def test_field_value_spellings(raw, ftype, value):
    t = one(f"m v={raw} 1")
    got_type, got = t.fields["v"]
    assert got_type is ftype
    assert got[0] == value and type(got[0]) is type(value)
    if ftype is FieldType.FLOAT:
        assert math.copysign(1, got[0]) == math.copysign(1, value)


@pytest.mark.parametrize("raw,message", [
    ("1.2.3", "invalid field value for 'v': '1.2.3'"),
    ("abc", "invalid field value for 'v': 'abc'"),
    ("+1", "invalid field value for 'v': '+1'"),
    ("1e", "invalid field value for 'v': '1e'"),
    ("e5", "invalid field value for 'v': 'e5'"),
    (".", "invalid field value for 'v': '.'"),
    ("-", "invalid field value for 'v': '-'"),
    ("1_0", "invalid field value for 'v': '1_0'"),
    ("0x10", "invalid field value for 'v': '0x10'"),
    ("١", "invalid field value for 'v': '١'"),
    ("nan", "invalid field value for 'v': 'nan'"),
    ("inf", "invalid field value for 'v': 'inf'"),
    ("-inf", "invalid field value for 'v': '-inf'"),
    ("1e400", "float value out of range for field 'v': '1e400'"),
    ("1.5i", "invalid field value for 'v': '1.5i'"),
    ("+1i", "invalid field value for 'v': '+1i'"),
    ("i", "invalid field value for 'v': 'i'"),
    ("--1i", "invalid field value for 'v': '--1i'"),
    ("9223372036854775808i", "integer value out of range for field 'v': '9223372036854775808i'"),
    ("-9223372036854775809i", "integer value out of range for field 'v'"),
    ("-1u", "invalid field value for 'v': '-1u'"),
    ("1.5u", "invalid field value for 'v': '1.5u'"),
    ("18446744073709551616u", "unsigned integer value out of range for field 'v'"),
    ("tRUE", "invalid field value for 'v': 'tRUE'"),
    ("yes", "invalid field value for 'v': 'yes'"),
    ("truex", "invalid field value for 'v': 'truex'"),
    ("", "No fields were provided"),
    ('"open', "unterminated string field value for 'v'"),
    ('"a\\"', "unterminated string field value for 'v'"),
    ('"a"b', "unexpected text after string field value for 'v'"),
])
def test_invalid_field_values(raw, message):
    e = error_of(f"m v={raw} 1")
    assert message in e.message, e.message


def test_string_field_size_limit():
    assert one('m s="' + "x" * 65536 + '"').fields["s"][1][0] == "x" * 65536
    e = error_of('m s="' + "é" * 40000 + '"')
    assert "longer than 65536 bytes" in e.message


@pytest.mark.parametrize("precision,ts,ns", [
    ("ns", "5", 5), ("n", "5", 5), ("nanosecond", "5", 5),
    ("us", "5", 5_000), ("u", "5", 5_000), ("microsecond", "5", 5_000),
    ("ms", "5", 5_000_000), ("millisecond", "5", 5_000_000),
    ("s", "5", 5_000_000_000), ("second", "5", 5_000_000_000),
    ("s", "-5", -5_000_000_000),
    ("auto", "1700000000", 1_700_000_000 * 10**9),
    ("auto", "1700000000000", 1_700_000_000 * 10**9),
    ("auto", "1700000000000000", 1_700_000_000 * 10**9),
    ("auto", "1700000000000000000", 1_700_000_000 * 10**9),
    ("auto", "-1700000000", -1_700_000_000 * 10**9),
    ("auto", "0", 0),
    # the guess's boundaries: |ts|/1e9 < 5 => s, < 5000 => ms, < 5e6 => us, else ns
    ("auto", "4999999999", 4_999_999_999 * 10**9),
    ("auto", "5000000000", 5_000_000_000 * 10**6),
    ("auto", "4999999999999", 4_999_999_999_999 * 10**6),
    ("auto", "5000000000000", 5_000_000_000_000 * 10**3),
    ("auto", "4999999999999999", 4_999_999_999_999_999 * 10**3),
    ("auto", "5000000000000000", 5_000_000_000_000_000),
    ("ns", "9223372036854775807", 2**63 - 1),
    ("ns", "-9223372036854775808", -(2**63)),
])
def test_precisions(precision, ts, ns):
    assert one(f"m v=1 {ts}", precision=precision).times == [ns]


def test_missing_timestamp_gets_the_default_in_every_precision():
    for precision in ("auto", "ns", "us", "ms", "s"):
        assert parse("m v=1", precision=precision, default_time_ns=7_000_000_000
                     ).tables["m"].times == [7_000_000_000]


def test_invalid_precision_is_a_value_error():
    with pytest.raises(ValueError, match="invalid precision"):
        parse("m v=1", precision="minutes", default_time_ns=0)


@pytest.mark.parametrize("ts,precision,message", [
    ("abc", "ns", "invalid timestamp 'abc'"),
    ("12abc", "ns", "invalid timestamp '12abc'"),
    ("1.5", "ns", "invalid timestamp '1.5'"),
    ("+5", "ns", "invalid timestamp '+5'"),
    ("--5", "ns", "invalid timestamp '--5'"),
    ("9223372036854775808", "ns", "timestamp out of range '9223372036854775808'"),
    ("10000000000", "s", "timestamp out of range '10000000000'"),
    ("-9223372036854775", "ms", "timestamp out of range"),
])
def test_invalid_timestamps(ts, precision, message):
    assert message in error_of(f"m v=1 {ts}", precision=precision).message


# ---- errors: each names the problem and its line ------------------------------------


@pytest.mark.parametrize("lp,message", [
    ("m", "No fields were provided"),
    ("m,t=a", "No fields were provided"),
    (",t=a v=1", "Invalid measurement was provided"),
    (" ,t=a v=1", "Invalid measurement was provided"),
    ("m,t v=1", "missing '=' after tag key 't'"),
    ("m,t= v=1", "missing value for tag 't'"),
    ("m,=a v=1", "missing tag key at column 3"),
    ("m, v=1", "missing tag key at column 3"),
    ("m,t=a, v=1", "missing tag key at column 7"),
    ("m v", "No fields were provided"),  # the reference's words: no field set
    ("m v=1,w", "missing '=' after field key 'w'"),
    ("m a,b=1", "No fields were provided"),
    ("m =1", "No fields were provided"),
    ("m v=1,", "missing field key at column 7"),
    ("m v=1,,w=2", "missing field key at column 7"),
    ("m v=1, w=2", "missing field key at column 7"),
    ("m v=1 1 2", "unexpected text after timestamp: '2'"),
    ("m v=1 1,2", "invalid timestamp '1,2'"),
    ("m v=1 ,1", "invalid timestamp ',1'"),
    ("m v=1 w=2", "invalid timestamp 'w=2'"),
    ("m v=1,v=2", "invalid line protocol - multiple instances of 'v' field found"),
    ("m v=1,v=2i", "invalid line protocol - multiple instances of 'v' field found"),
    ("m,t=a,t=b v=1", "invalid line protocol - multiple instances of 't' tag found"),
    ("m time=1", "field key 'time' is reserved"),
    ("m,time=x v=1", "tag key 'time' is reserved"),
    ("m,t=x t=1", "column 't' is a tag in table 'm', cannot use it as a field"),
    (r"m\ v=1", "No fields were provided"),
])
def test_errors_name_the_problem_and_line(lp, message):
    body = f"ok v=1 1\n{lp}\nok v=2 2"
    for r in (parse(body, default_time_ns=0, precision="ns"),
              parse(body.encode(), default_time_ns=0, precision="ns")):
        assert len(r.errors) == 1, r.errors
        e = r.errors[0]
        assert e.line_number == 2
        assert message in e.message, e.message
        assert e.original_line == lp
        assert r.tables["ok"].rows == 2
        assert r.lines == 3


def test_original_line_is_the_whole_raw_line():
    r = parse(b"m v=1 1\r\n   m v=x 2  \r\n", default_time_ns=0)
    assert r.errors == [LineError(2, "invalid field value for 'v': 'x'", "   m v=x 2  ")]


def test_errors_are_sorted_and_good_lines_kept():
    r = parse("a v=x\nb v=1\nc v=\nd v=2\ne", default_time_ns=0)
    assert [e.line_number for e in r.errors] == [1, 3, 5]
    assert list(r.tables) == ["b", "d"]
    assert r.lines == 5


def test_type_conflict_within_batch_fails_the_later_line_only():
    r = parse("m v=1 1\nm v=2i 2\nm v=3 3\nm v=\"s\" 4\nm v=t 5",
              default_time_ns=0, precision="ns")
    assert [(e.line_number, e.message) for e in r.errors] == [
        (2, "invalid field type for 'v': expected float, got integer"),
        (4, "invalid field type for 'v': expected float, got string"),
        (5, "invalid field type for 'v': expected float, got boolean"),
    ]
    assert r.tables["m"].fields["v"][1] == [1.0, 3.0]
    assert r.tables["m"].times == [1, 3]


def test_first_type_comes_from_the_first_good_line():
    r = parse("m v=bad 1\nm v=1i 2\nm v=1 3", default_time_ns=0, precision="ns")
    assert [e.line_number for e in r.errors] == [1, 3]
    assert r.tables["m"].fields["v"][0] is FieldType.INTEGER


def test_a_rejected_line_adds_nothing():
    # line 2 fails on its second field: its first field and tags must not appear
    r = parse("m,a=1 v=1 1\nm,b=2 w=1,v=1i 2\nm,a=3 v=3 3", default_time_ns=0,
              precision="ns")
    t = r.tables["m"]
    assert [e.line_number for e in r.errors] == [2]
    assert list(t.tags) == ["a"] and list(t.fields) == ["v"]
    assert t.rows == 2


def test_types_are_per_table():
    r = parse("a v=1 1\nb v=1i 1\nc v=\"x\" 1", default_time_ns=0)
    assert not r.errors
    assert [t.fields["v"][0] for t in r.tables.values()] == [
        FieldType.FLOAT, FieldType.INTEGER, FieldType.STRING]


@pytest.mark.parametrize("body,bad_line,message", [
    ("m,t=a v=1\nm t=1", 2, "column 't' is a tag in table 'm', cannot use it as a field"),
    ("m t=1\nm,t=a v=1", 2, "column 't' is a field in table 'm', cannot use it as a tag"),
    ("m,t=x t=1\nm t=2", None, None),
    ("m,t=a v=1\nother t=1", None, None),
])
def test_tag_and_field_names_do_not_mix_in_a_table(body, bad_line, message):
    r = parse(body, default_time_ns=0)
    if bad_line is None:
        assert len(r.errors) <= 1 and all(e.line_number == 1 for e in r.errors)
    else:
        assert [(e.line_number, e.message) for e in r.errors] == [(bad_line, message)]


def test_conflicts_with_stored_schema():
    stored = {"m": {"v": ("field", "float"), "t": ("tag", "tag"), "time": ("time", "time")}}
    r = parse("m v=1i 1\nm,t=a v=2 2\nm t=1 3\nm,v=x w=1 4\nm v=3 5", default_time_ns=0,
              precision="ns", schema=stored.get)
    assert [(e.line_number, e.message) for e in r.errors] == [
        (1, "invalid field type for 'v': expected float, got integer"),
        (3, "column 't' is a tag in table 'm', cannot use it as a field"),
        (4, "column 'v' is a field in table 'm', cannot use it as a tag"),
    ]
    assert r.tables["m"].times == [2, 5]


def test_comments_blank_lines_crlf_and_line_numbers():
    r = parse(b"# header\r\n\r\nm v=1 1\r\n   # indented comment\r\nm v=bad 2\r\n\t\r\n\n"
              b"m v=2 3", default_time_ns=0, precision="ns")
    assert r.lines == 3
    assert [e.line_number for e in r.errors] == [5]
    assert r.tables["m"].line_numbers == [3, 8]


@pytest.mark.parametrize("body", ["", "\n", "\n\n  \n", "# only a comment", "#a\n#b\n"])
def test_empty_bodies(body):
    r = parse(body, default_time_ns=0)
    assert r.tables == {} and r.errors == [] and r.lines == 0


def test_invalid_utf8_is_an_error_of_its_line():
    r = parse(b"m v=1 1\nm,t=\xff\xfe v=2 2\nm v=3 3", default_time_ns=0, precision="ns")
    assert [(e.line_number, e.message) for e in r.errors] == [(2, "invalid UTF-8 in line")]
    assert r.errors[0].original_line == "m,t=\ufffd\ufffd v=2 2"
    assert r.tables["m"].rows == 2
    assert r.lines == 3


def test_str_and_bytes_bodies_agree():
    body = 'm,t=é v=1,s="x y" 1\nm v=2i 2\n'
    assert snapshot(parse(body, default_time_ns=0)) == snapshot(
        parse(body.encode(), default_time_ns=0))


def test_stop_on_first_error():
    r = parse("m v=1\nm v=x\nm v=y\nm v=1", default_time_ns=0, stop_on_first_error=True)
    assert [e.line_number for e in r.errors] == [2]
    assert r.lines == 2
    r = parse(b"m v=1\n\xff\nm v=y", default_time_ns=0, stop_on_first_error=True)
    assert [e.line_number for e in r.errors] == [2]
    r = parse("m v=1\nm v=1i", default_time_ns=0, stop_on_first_error=True)
    assert [e.line_number for e in r.errors] == [2]


# ---- columns -------------------------------------------------------------------------


def test_sparse_columns_first_seen_order_and_arrow_types():
    t = parse('m,a=1 f=1,s="x" 1\nm,b=2 g=2i,u=3u,ok=true 2\nm,b=3,a=4 f=5 3',
              default_time_ns=0, precision="ns").tables["m"]
    assert t.tags == {"a": ["1", None, "4"], "b": [None, "2", "3"]}
    assert t.fields["f"] == (FieldType.FLOAT, [1.0, None, 5.0])
    assert t.fields["g"] == (FieldType.INTEGER, [None, 2, None])
    assert t.line_numbers == [1, 2, 3]
    batch = t.to_arrow()
    assert batch.schema.names == ["a", "b", "f", "s", "g", "u", "ok", "time"]
    assert batch.schema.field("a").type == pa.dictionary(pa.int32(), pa.string())
    assert [batch.schema.field(n).type for n in ["f", "s", "g", "u", "ok", "time"]] == [
        pa.float64(), pa.string(), pa.int64(), pa.uint64(), pa.bool_(), pa.timestamp("ns")]
    kinds = {f.name: f.metadata for f in batch.schema}
    assert kinds["a"] == {b"weir:kind": b"tag"}
    assert kinds["f"] == kinds["ok"] == {b"weir:kind": b"field"}
    assert kinds["time"] == {b"weir:kind": b"time"}
    assert batch.column("g").to_pylist() == [None, 2, None]
    assert batch.column("a").to_pylist() == ["1", None, "4"]
    assert batch.column("time").cast(pa.int64()).to_pylist() == [1, 2, 3]


def test_lines_without_tags_get_none():
    t = parse("m v=1 1\nm,h=a v=2 2", default_time_ns=0).tables["m"]
    assert t.tags == {"h": [None, "a"]}


def test_drop_rows():
    t = parse("m,h=a v=1,w=1i 1\nm,h=b v=2 2\nm v=3 3", default_time_ns=0,
              precision="ns").tables["m"]
    d = t.drop_rows({0, 2, 99})
    assert d.rows == 1 and d.name == "m"
    assert d.line_numbers == [2] and d.times == [2]
    assert d.tags == {"h": ["b"]} and d.fields["v"] == (FieldType.FLOAT, [2.0])
    assert d.fields["w"] == (FieldType.INTEGER, [None])
    assert d.to_arrow().schema.equals(t.to_arrow().schema, check_metadata=True)
    assert t.rows == 3  # the original is untouched
    assert t.drop_rows(set()).to_arrow().equals(t.to_arrow())
    assert t.drop_rows({0, 1, 2}).to_arrow().num_rows == 0
    assert t.line_number(2) == 3


def test_column_values_behave_like_read_only_lists():
    t = parse("m v=1 1\nm v=2 2", default_time_ns=0, precision="ns").tables["m"]
    col = t.fields["v"][1]
    assert isinstance(col, ColumnValues)
    assert len(col) == 2 and col[1] == 2.0 and col[-1] == 2.0 and col[:1] == [1.0]
    assert list(col) == [1.0, 2.0] and col.to_pylist() == [1.0, 2.0]
    assert col == [1.0, 2.0] and col != [1.0] and col == (1.0, 2.0)
    assert 2.0 in col
    assert col.array.type == pa.float64()


def test_tables_in_order_of_first_appearance():
    r = parse("b v=1\na v=1\nc,time=x v=1\nb v=2\nc v=1", default_time_ns=0)
    assert list(r.tables) == ["b", "a", "c"]


# ---- the batch path agrees with the line path -------------------------------------


TSBS = ("cpu,hostname=host_{h},region=eu-west-1,datacenter=eu-west-1a,rack=12,"
        "os=Ubuntu16.04LTS,arch=x64 usage_user={u},usage_system=2.6,usage_idle=24i,"
        "up=true,n=3u {ts}")


def tsbs_body(lines: int = 500, hosts: int = 7) -> str:
    return "\n".join(TSBS.format(h=i % hosts, u=i / 3, ts=1_700_000_000_000_000_000 + i)
                     for i in range(lines))


@pytest.mark.parametrize("tail", [
    "",
    "\nmem,host=a free=1u\n# comment\n\nmem,host=b free=2u,extra=1.5 17\n",
    "\r\nmem,host=a free=1u,ok=F\r\ncpu,extra=1 usage_user=1 5\r\n",
    "\ndisk,path=/ used=1 1700000000\ndisk,path=/ used=2 1700000000000\n",
    "\nmem v=1,w=2,x=3 1\nmem w=1 2\nmem y=1i 3\nmem,h=a x=1 4\n",
    '\nlog,h=a msg="hello, world = 1 2",n=1i 1\nlog,h=b n=2i,msg="" 2\n# "x\nlog n=3i 3\n',
    '\ncpu,hostname=x usage_user=1,note="é 😀 \t#" 5\n',
])
def test_batch_path_matches_line_path(tail):
    body = tsbs_body() + tail
    fast = parse_plain_body(body.encode(), factor=1, auto=True, default_time_ns=99,
                            schema=None)
    assert fast is not None
    slow = line_path(body, default_time_ns=99)
    assert snapshot(fast) == snapshot(slow)
    assert snapshot(parse(body, default_time_ns=99)) == snapshot(slow)


@pytest.mark.parametrize("bad", [
    "cpu v=1 1\ncpu v=1i 2",          # mixed types
    "cpu v=1,v=2 1",                  # duplicate field
    "cpu,t=a,t=b v=1 1",              # duplicate tag
    "cpu,t=a v=1 1\ncpu t=1 2",       # tag and field
    "cpu,t=a t=1 2",                  # tag and field in one line
    "cpu v=nan 1",                    # not a number
    "cpu v=1e400 1",                  # infinite
    "cpu v=+1 1",                     # sign
    "cpu v=1 +1",                     # sign
    "cpu v 1",                        # no '='
    "cpu v=1 1 1",                    # four parts
    "cpu  v=1 1",                     # two spaces
    " cpu v=1 1",                     # indented
    "cpu v=1 1 ",                     # trailing space
    "cpu v=1 abc",                    # timestamp
    "cpu v=1 99999999999999999999",   # timestamp range
    "cpu v=1,time=1 1",               # reserved
    "cpu,time=1 v=1 1",               # reserved
    ",t=1 v=1",                       # no measurement
    "cpu,t= v=1",                     # empty tag value
    "cpu v=yes",                      # bool spelling
    "cpu v=1i,w=9223372036854775808i",  # range
    "cpu v=1 1\n\xff",                # UTF-8
    'cpu s="open',                    # unterminated string
    'cpu s="a"b',                     # text after a string
    'cpu s=a"b"',                     # quote inside a value
    'cpu,t="a b" v=1',                # quotes in a tag value are text: the line path's
    'cpu s="a""b"',                   # two strings in one value
    'cpu s="x",s="y"',                # duplicate string field
    'cpu v=1\ncpu v="x"',             # float, then string
])
def test_batch_path_gives_up_on_anything_unusual(bad):
    body = bad.encode("utf-8", "surrogateescape") if "\xff" not in bad else (
        bad.replace("\xff", "").encode() + b"\xff")
    assert parse_plain_body(body, factor=1, auto=False, default_time_ns=0,
                            schema=None) is None


def test_batch_path_gives_up_on_stored_schema_conflicts():
    body = tsbs_body(50).encode()
    stored = {"cpu": {"usage_user": ("field", "integer")}}
    assert parse_plain_body(body, factor=1, auto=False, default_time_ns=0,
                            schema=stored.get) is None
    r = parse("\n".join([tsbs_body(50)] * 100), default_time_ns=0, schema=stored.get)
    assert len(r.errors) == 5000 and "expected integer, got float" in r.errors[0].message


def test_large_bodies_with_errors_still_report_each_line():
    body = tsbs_body(2000) + "\ncpu,hostname=x usage_user=oops 1\n" + tsbs_body(10)
    r = parse(body, default_time_ns=0)
    assert [(e.line_number, e.message) for e in r.errors] == [
        (2001, "invalid field value for 'usage_user': 'oops'")]
    assert r.tables["cpu"].rows == 2010


@pytest.mark.parametrize("bad", ["1.2.3", "+1", "1e400", "1.5i", "1..", "١"])
@pytest.mark.parametrize("escape", ["", ",path=C:\\dir"])
def test_large_bodies_with_a_bad_float(bad, escape):
    # with and without an escape (the batch path, or the line path's bulk floats), a
    # bad float is an error of its line only, and does not decide the field's type
    good = tsbs_body(300).replace("usage_user", "u")
    body = (f"cpu,hostname=x{escape} u={bad} 1\ncpu,hostname=y u=2i 2\n" + good)
    r = parse(body, default_time_ns=0)
    assert [e.line_number for e in r.errors] == [1, *range(3, 303)]
    assert "'u'" in r.errors[0].message and bad in r.errors[0].message
    assert r.errors[1].message == "invalid field type for 'u': expected integer, got float"
    assert r.tables["cpu"].fields["u"] == (FieldType.INTEGER, [2])


@pytest.mark.parametrize("bad,message", [
    ("cpu,hostname=x v=0x10i 1", "invalid field value for 'v': '0x10i'"),
    ("cpu,hostname=x v=0X1Fu 1", "invalid field value for 'v': '0X1Fu'"),
    ("cpu,hostname=x v=1 0x10", "invalid timestamp '0x10'"),
    ("cpu,hostname=x v=1 0XFF", "invalid timestamp '0XFF'"),
])
def test_hexadecimal_integers_are_errors_in_large_bodies_too(bad, message):
    # found by fuzzing: Arrow's integer casts read `0x10` as 16, so the batch path took
    # these lines (and a large body of them) as good
    for body in (bad, "\n".join([bad] * 1000), tsbs_body(100) + "\n" + bad):
        assert parse_plain_body(body.encode(), factor=1, auto=False, default_time_ns=0,
                                schema=None) is None
        r = parse(body, default_time_ns=0, precision="ns")
        assert r.errors and all(e.message == message for e in r.errors), r.errors[:2]
        assert [e.line_number for e in r.errors] == [
            n for n, line in enumerate(body.split("\n"), 1) if line == bad]
    assert one("m v=0i,w=00u 0").fields == {"v": (FieldType.INTEGER, [0]),
                                            "w": (FieldType.UINTEGER, [0])}


@pytest.mark.parametrize("body,bad_lines,message", [
    # a line whose fields clash leaves its tag keys free, a field takes one, and the
    # same series again must fail on its tags (found by fuzzing: it was taken, with
    # `v` both a tag and a field of the table)
    ("m,v=x v=1\nm v=1\nm,v=x v=1", [1, 3],
     "column 'v' is a field in table 'm', cannot use it as a tag"),
    ("m v=1\nm,t=a v=1i\nm t=1\nm,t=a v=2", [2, 4], None),
    ("m,t=a v=1,v=2\nm t=1\nm,t=a w=2", [1, 3], None),
])
def test_a_rejected_line_does_not_vouch_for_its_tags(body, bad_lines, message):
    for text in (body, body.replace(" v=", ' s="q",v=')):  # both of the line path's forms
        r = parse(text, default_time_ns=0)
        assert [e.line_number for e in r.errors] == bad_lines, r.errors
        assert "cannot use it as a tag" in r.errors[-1].message
        if message:
            assert r.errors[-1].message == message
        t = r.tables["m"]
        assert set(t.tags).isdisjoint(t.fields)
        assert snapshot(r) == snapshot(line_path(text, default_time_ns=0))


def test_series_cache_does_not_leak_between_measurements():
    body = "a,t=1 v=1\nb,t=1 v=1i\na,t=1 v=2\n"
    r = parse(body * 500, default_time_ns=0)
    assert not r.errors
    assert r.tables["a"].fields["v"][0] is FieldType.FLOAT
    assert r.tables["b"].fields["v"][0] is FieldType.INTEGER


# ---- rendering -----------------------------------------------------------------------


@pytest.mark.parametrize("s,measurement,key,string", [
    ("plain", "plain", "plain", "plain"),
    ("a,b", "a\\,b", "a\\,b", "a,b"),
    ("a b", "a\\ b", "a\\ b", "a b"),
    ("a=b", "a=b", "a\\=b", "a=b"),
    ("a\\b", "a\\\\b", "a\\\\b", "a\\\\b"),
    ('a"b', 'a"b', 'a"b', 'a\\"b'),
    ("é ü", "é\\ ü", "é\\ ü", "é ü"),
])
def test_escape_functions(s, measurement, key, string):
    assert escape_measurement(s) == measurement
    assert escape_key(s) == key
    assert escape_string_field(s) == string


@pytest.mark.parametrize("ftype,value,text", [
    (FieldType.FLOAT, 1.0, "1.0"),
    (FieldType.FLOAT, 1, "1.0"),
    (FieldType.FLOAT, -0.0, "-0.0"),
    (FieldType.FLOAT, 1e16, "1e+16"),
    (FieldType.FLOAT, 1.5e-7, "1.5e-07"),
    (FieldType.FLOAT, 0.1, "0.1"),
    (FieldType.INTEGER, -3, "-3i"),
    (FieldType.UINTEGER, 2**64 - 1, "18446744073709551615u"),
    (FieldType.BOOLEAN, True, "true"),
    (FieldType.BOOLEAN, False, "false"),
    (FieldType.STRING, 'say "hi" \\o/', '"say \\"hi\\" \\\\o/"'),
])
def test_format_value(ftype, value, text):
    assert format_value(ftype, value) == text
    t = one(f"m v={text}")
    assert t.fields["v"] == (ftype, [value])


@pytest.mark.parametrize("measurement,tags,fields,time_ns,expected", [
    ("cpu", {"host": "a"}, {"v": (FieldType.FLOAT, 1.0)}, 5, "cpu,host=a v=1.0 5"),
    ("my cpu,x", {"t k": "v=1,2"}, {"f": (FieldType.INTEGER, 3)}, None,
     "my\\ cpu\\,x,t\\ k=v\\=1\\,2 f=3i"),
    ("m", {}, {"s": (FieldType.STRING, 'say "hi" \\o/')}, None, 'm s="say \\"hi\\" \\\\o/"'),
    ("m", {}, {"u": (FieldType.UINTEGER, 7), "b": (FieldType.BOOLEAN, False)}, -1,
     "m u=7u,b=false -1"),
    ("m", {"a": None, "b": "", "c": "x"}, {"v": (FieldType.FLOAT, None),
                                           "w": (FieldType.FLOAT, 2.5)}, None,
     "m,c=x w=2.5"),
])
def test_format_line(measurement, tags, fields, time_ns, expected):
    line = format_line(measurement, tags, fields, time_ns)
    assert line == expected
    t = one(line)
    assert t.name == measurement


@pytest.mark.parametrize("args,message", [
    (("", {}, {"v": (FieldType.FLOAT, 1.0)}), "empty measurement"),
    (("#m", {}, {"v": (FieldType.FLOAT, 1.0)}), "starting with '#'"),
    (("\tm", {}, {"v": (FieldType.FLOAT, 1.0)}), "starting with"),
    (("m\n", {}, {"v": (FieldType.FLOAT, 1.0)}), "newline"),
    (("m", {"": "x"}, {"v": (FieldType.FLOAT, 1.0)}), "empty tag key"),
    (("m", {"t": "a\nb"}, {"v": (FieldType.FLOAT, 1.0)}), "newline"),
    (("m", {}, {}), "at least one field"),
    (("m", {}, {"v": (FieldType.FLOAT, None)}), "at least one field"),
    (("m", {}, {"v": (FieldType.FLOAT, math.nan)}), "cannot carry the float nan"),
    (("m", {}, {"v": (FieldType.FLOAT, math.inf)}), "cannot carry the float inf"),
    (("m", {}, {"v": (FieldType.STRING, "a\nb")}), "newline"),
])
def test_format_line_refuses_what_line_protocol_cannot_carry(args, message):
    with pytest.raises(ValueError, match=message):
        format_line(*args)
