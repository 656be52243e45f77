"""Query output formats byte for byte as the reference writes them (surface.md §1.3:
arrow-json, arrow-csv, arrow's pretty printer, Parquet), format selection, and the rows
plugins receive (surface.md §2.3). Through a real server: tests/e2e/test_query_formats_http.py."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weir.query import (
    choose_format,
    content_type,
    encode,
    encode_batches,
    format_timestamp_ns,
    table_to_pylist,
)
from weir.query.formats import _float_text

TAG = pa.dictionary(pa.int32(), pa.string())
NS = pa.timestamp("ns")


def cpu() -> pa.Table:
    """`cpu,host=a val=1i 123` as the reference's write_and_query test queries it."""
    return pa.table({"host": pa.array(["a"]).cast(TAG), "time": pa.array([123], NS),
                     "val": pa.array([1], pa.int64())})


# ---- the reference's own examples ----------------------------------------------------------


def test_reference_write_and_query_outputs():
    t = cpu()
    assert encode(t, "json") == b'[{"host":"a","time":"1970-01-01T00:00:00.000000123","val":1}]'
    assert encode(t, "jsonl") == \
        b'{"host":"a","time":"1970-01-01T00:00:00.000000123","val":1}\n'
    assert encode(t, "json_lines") == encode(t, "jsonl")
    assert encode(t, "csv") == b"host,time,val\na,1970-01-01T00:00:00.000000123,1\n"
    assert encode(t, "pretty").decode().split("\n") == [
        "+------+-------------------------------+-----+",
        "| host | time                          | val |",
        "+------+-------------------------------+-----+",
        "| a    | 1970-01-01T00:00:00.000000123 | 1   |",
        "+------+-------------------------------+-----+",
    ]
    back = pq.read_table(pa.BufferReader(encode(t, "parquet")))
    assert back.column_names == ["host", "time", "val"]
    assert back.to_pylist() == t.to_pylist()
    assert back.schema.field("time").type == NS


def test_nulls_floats_and_timestamps():
    t = pa.table({"host": pa.array(["a", None]).dictionary_encode(),
                  "time": pa.array([123, 1_000_000], pa.int64()).cast(NS),
                  "val": pa.array([1.0, None])})
    assert encode(t, "json") == (b'[{"host":"a","time":"1970-01-01T00:00:00.000000123",'
                                 b'"val":1.0},{"time":"1970-01-01T00:00:00.001"}]')
    assert encode(t, "jsonl") == (b'{"host":"a","time":"1970-01-01T00:00:00.000000123",'
                                  b'"val":1.0}\n{"time":"1970-01-01T00:00:00.001"}\n')
    assert encode(t, "csv") == (b"host,time,val\na,1970-01-01T00:00:00.000000123,1.0\n"
                                b",1970-01-01T00:00:00.001,\n")
    assert encode(t, "pretty") == (
        b"+------+-------------------------------+-----+\n"
        b"| host | time                          | val |\n"
        b"+------+-------------------------------+-----+\n"
        b"| a    | 1970-01-01T00:00:00.000000123 | 1.0 |\n"
        b"|      | 1970-01-01T00:00:00.001       |     |\n"
        b"+------+-------------------------------+-----+")


def test_empty_results():
    empty = cpu().slice(0, 0)
    assert encode(empty, "json") == b"[]"
    assert encode(empty, "jsonl") == b""
    assert encode(empty, "csv") == b""
    assert encode(empty, "parquet") == b""
    assert encode(empty, "pretty") == (b"+------+------+-----+\n"
                                       b"| host | time | val |\n"
                                       b"+------+------+-----+\n"
                                       b"+------+------+-----+")
    assert encode(pa.table({}), "pretty") == b"++\n++"
    assert b"".join(encode_batches([], "json")) == b"[]"


def test_a_row_of_nulls_is_an_empty_object():
    t = pa.table({"a": pa.array([None, 1], pa.int64()), "b": pa.array([None, "x"])})
    assert encode(t, "json") == b'[{},{"a":1,"b":"x"}]'
    assert encode(t, "csv") == b'a,b\n,\n1,x\n'


# ---- value rendering -----------------------------------------------------------------------


@pytest.mark.parametrize("ns,text", [
    (0, "1970-01-01T00:00:00"),
    (123, "1970-01-01T00:00:00.000000123"),
    (1_000, "1970-01-01T00:00:00.000001"),
    (1_000_000, "1970-01-01T00:00:00.001"),
    (1_500_000_000, "1970-01-01T00:00:01.500"),
    (120_000, "1970-01-01T00:00:00.000120"),
    (-1, "1969-12-31T23:59:59.999999999"),
    (3_000_000_000_000_000_000, "2065-01-24T05:20:00"),
    (3_000_000_000_000_000_001, "2065-01-24T05:20:00.000000001"),
])
def test_timestamp_text(ns, text):
    assert format_timestamp_ns(ns) == text
    t = pa.table({"time": pa.array([ns], NS)})
    assert encode(t, "json") == f'[{{"time":"{text}"}}]'.encode()
    assert encode(t, "csv") == f"time\n{text}\n".encode()


def test_timestamps_of_every_unit_and_zone():
    t = pa.table({
        "s": pa.array([1, 0], pa.timestamp("s")),
        "ms": pa.array([1_500, 2_000], pa.timestamp("ms")),
        "us": pa.array([1_000_001, 1_001_000], pa.timestamp("us")),
        "utc": pa.array([1_500, 0], pa.timestamp("ms", "UTC")),
        "paris": pa.array([0, 1], pa.timestamp("s", "Europe/Paris")),
    })
    assert json.loads(encode(t, "json")) == [
        {"s": "1970-01-01T00:00:01", "ms": "1970-01-01T00:00:01.500",
         "us": "1970-01-01T00:00:01.000001", "utc": "1970-01-01T00:00:01.500Z",
         "paris": "1970-01-01T01:00:00+01:00"},
        {"s": "1970-01-01T00:00:00", "ms": "1970-01-01T00:00:02",
         "us": "1970-01-01T00:00:01.001", "utc": "1970-01-01T00:00:00Z",
         "paris": "1970-01-01T01:00:01+01:00"},
    ]


@pytest.mark.parametrize("value,json_text,display_text", [
    (0.0, "0.0", "0.0"),
    (-0.0, "-0.0", "-0.0"),
    (1.0, "1.0", "1.0"),
    (3.0, "3.0", "3.0"),
    (-2.5, "-2.5", "-2.5"),
    (0.1, "0.1", "0.1"),
    (0.30000000000000004, "0.30000000000000004", "0.30000000000000004"),
    (1e9, "1000000000.0", "1000000000.0"),
    (1e10, "1.0e10", "10000000000.0"),
    (1.5e12, "1.5e12", "1500000000000.0"),
    (1e15, "1.0e15", "1000000000000000.0"),
    (1e16, "1.0e16", "1e16"),
    (1.2345e20, "1.2345e20", "1.2345e20"),
    (1e-5, "0.00001", "0.00001"),
    (2.5e-5, "0.000025", "0.000025"),
    (1e-6, "1.0e-6", "1e-6"),
    (1.5e-7, "1.5e-7", "1.5e-7"),
    (5e-324, "5.0e-324", "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e308", "1.7976931348623157e308"),
    (float("nan"), "null", "NaN"),
    (float("inf"), "null", "inf"),
    (float("-inf"), "null", "-inf"),
])
def test_floats_as_arrow_json_and_arrow_display(value, json_text, display_text):
    assert _float_text(value, json_style=True) == json_text
    assert _float_text(value, json_style=False) == display_text
    t = pa.table({"f": pa.array([value, 2.0])})  # a second, ordinary value in the column
    assert encode(t, "json") == f'[{{"f":{json_text}}},{{"f":2.0}}]'.encode()
    assert encode(t, "csv") == f"f\n{display_text}\n2.0\n".encode()


def test_float32_keeps_its_own_shortest_digits():
    t = pa.table({"f": pa.array([0.1, 1e-7, 3.0], pa.float32())})
    assert encode(t, "json") == b'[{"f":0.1},{"f":1.0e-7},{"f":3.0}]'


def test_integers_booleans_and_unsigned():
    t = pa.table({"i": pa.array([-5, 2**63 - 1]), "u": pa.array([2**64 - 1, 0], pa.uint64()),
                  "b": [True, False]})
    assert encode(t, "json") == (b'[{"i":-5,"u":18446744073709551615,"b":true},'
                                 b'{"i":9223372036854775807,"u":0,"b":false}]')
    assert encode(t, "csv") == (b"i,u,b\n-5,18446744073709551615,true\n"
                                b"9223372036854775807,0,false\n")


def test_string_escaping():
    values = ['say "hi"', "back\\slash", "new\nline", "tab\there", "bell\x07", "\x1f",
              "ünïcødé ✓ 中文", "a,b", "del\x7f", "\r"]
    t = pa.table({"s": values})
    assert json.loads(encode(t, "json")) == [{"s": v} for v in values]
    body = encode(t, "json").decode()
    assert r'"say \"hi\""' in body and r'"back\\slash"' in body and r'"new\nline"' in body
    assert r'"bell\u0007"' in body and r'"\u001f"' in body and "ünïcødé ✓ 中文" in body
    assert '"del\x7f"' in body and r'"\r"' in body
    assert encode(pa.table({"s": values[:1] + values[7:8]}), "csv") == \
        b's\n"say ""hi"""\n"a,b"\n'


def test_csv_quotes_only_where_needed_and_one_empty_field():
    t = pa.table({"a,b": ["x"], "c": ["multi\nline"]})
    assert encode(t, "csv") == b'"a,b",c\nx,"multi\nline"\n'
    assert encode(pa.table({"s": ["", None, "v"]}), "csv") == b's\n""\n""\nv\n'


def test_dictionary_columns_render_their_values():
    idx = pa.array([2, 0, None, 2], pa.int32())
    t = pa.table({"tag": pa.DictionaryArray.from_arrays(idx, pa.array(["a", 'q"', "zz"]))})
    assert encode(t, "json") == b'[{"tag":"zz"},{"tag":"a"},{},{"tag":"zz"}]'
    # a record that is one empty field is written `""` (csv-core), not as a blank line
    assert encode(t, "csv") == b'tag\nzz\na\n""\nzz\n'
    assert table_to_pylist(t) == [{"tag": "zz"}, {"tag": "a"}, {"tag": None}, {"tag": "zz"}]


def test_other_types_do_not_crash():
    t = pa.table({
        "d": pa.array([dt.date(2024, 1, 2)], pa.date32()),
        "dur": pa.array([3_600_000_000_000], pa.duration("ns")),
        "dec": pa.array([Decimal("12.50")], pa.decimal128(10, 2)),
        "lst": pa.array([[1, 2]], pa.list_(pa.int64())),
        "st": pa.array([{"a": 1, "b": "x"}], pa.struct([("a", pa.int64()), ("b", pa.string())])),
        "bin": pa.array([b"\x01\xff"]),
        "view": pa.array(["v"], pa.string_view()),
        "large": pa.array(["l"], pa.large_string()),
        "tm": pa.array([3_600_000_001], pa.time64("us")),
        "nul": pa.nulls(1),
    })
    assert json.loads(encode(t, "json")) == [{
        "d": "2024-01-02", "dur": "PT3600S", "dec": 12.5, "lst": [1, 2],
        "st": {"a": 1, "b": "x"}, "bin": "01ff", "view": "v", "large": "l",
        "tm": "01:00:00.000001"}]
    assert encode(t, "csv").split(b"\n")[1] == \
        b'2024-01-02,PT3600S,12.50,"[1, 2]","{a: 1, b: x}",01ff,v,l,01:00:00.000001,'
    assert encode(t, "pretty").count(b"\n") == 4
    assert pq.read_table(pa.BufferReader(encode(t, "parquet"))).num_rows == 1


def test_pretty_multiline_and_wide_characters():
    t = pa.table({"name": ["a\nbc", "中文"], "n": [1, None]})
    assert encode(t, "pretty").decode().split("\n") == [
        "+------+---+",
        "| name | n |",
        "+------+---+",
        "| a    | 1 |",
        "| bc   |   |",
        "| 中文 |   |",
        "+------+---+",
    ]


# ---- streaming -----------------------------------------------------------------------------


def test_streaming_batches_make_one_valid_document():
    t = cpu()
    later = pa.table({"host": pa.array(["b"]).cast(TAG), "time": pa.array([0], NS),
                      "val": pa.array([2], pa.int64())})
    batches = [t.slice(0, 0).to_batches() or [], t.to_batches(), later.to_batches()]
    flat = [b for group in batches for b in group]
    assert b"".join(encode_batches(flat, "json")) == (
        b'[{"host":"a","time":"1970-01-01T00:00:00.000000123","val":1},'
        b'{"host":"b","time":"1970-01-01T00:00:00","val":2}]')
    assert b"".join(encode_batches(flat, "csv")) == (
        b"host,time,val\na,1970-01-01T00:00:00.000000123,1\nb,1970-01-01T00:00:00,2\n")
    assert b"".join(encode_batches(flat, "jsonl")).count(b"\n") == 2
    both = pa.concat_tables([t, later])
    assert b"".join(encode_batches(flat, "pretty")) == encode(both, "pretty")
    parquet = b"".join(encode_batches(flat, "parquet"))
    assert pq.read_table(pa.BufferReader(parquet)).to_pylist() == both.to_pylist()
    assert b"".join(encode_batches([], "pretty", schema=t.schema)) == \
        encode(t.slice(0, 0), "pretty")


def test_big_batches_are_chunked():
    n = 150_000
    t = pa.table({"i": pa.array(range(n), pa.int64())})
    rows = json.loads(encode(t, "json"))
    assert len(rows) == n and rows[-1] == {"i": n - 1}
    assert encode(t, "csv").count(b"\n") == n + 1


# ---- format selection ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt,accept,expected", [
    (None, None, "json"),
    (None, "application/json", "json"),
    (None, "*/*", "json"),
    (None, "text/csv", "csv"),
    (None, "text/plain", "pretty"),
    (None, "application/vnd.apache.parquet", "parquet"),
    (None, "application/jsonl", "jsonl"),
    (None, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "json"),
    (None, "application/json, text/plain, */*", "json"),
    ("csv", "application/json", "csv"),
    ("jsonl", None, "jsonl"),
    ("json_lines", "*/*", "jsonl"),
    ("pretty", None, "pretty"),
    ("parquet", "text/csv", "parquet"),
])
def test_choose_format(fmt, accept, expected):
    assert choose_format(fmt, accept) == expected


@pytest.mark.parametrize("fmt,accept,message", [
    (None, "application/xml", "invalid mime type (application/xml)"),
    (None, "text/csv; charset=utf-8", "invalid mime type (text/csv; charset=utf-8)"),
    (None, "", "invalid mime type ()"),
    ("json", "application/xml", "invalid mime type (application/xml)"),
    ("xml", None, "unknown variant `xml`"),
    ("JSON", None, "unknown variant `JSON`"),
])
def test_choose_format_errors(fmt, accept, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        choose_format(fmt, accept)


def test_content_types():
    assert content_type("json") == "application/json"
    assert content_type("jsonl") == content_type("json_lines") == "application/jsonl"
    assert content_type("csv") == "text/csv"
    assert content_type("pretty") == "text/plain; charset=utf-8"
    assert content_type("parquet") == "application/vnd.apache.parquet"


# ---- rows for plugins ----------------------------------------------------------------------


def test_table_to_pylist_types():
    t = pa.table({
        "i": pa.array([1, None], pa.int64()), "u": pa.array([2**64 - 1, 0], pa.uint64()),
        "f": [1.5, None], "s": ["x", None], "b": [True, None],
        "tag": pa.array(["a", None]).cast(TAG),
        "ns": pa.array([123, None], NS),
        "ms": pa.array([5, 6], pa.timestamp("ms")),
        "utc": pa.array([7, 8], pa.timestamp("s", "UTC")),
        "view": pa.array(["v", None], pa.string_view()),
        "large": pa.array(["l", "m"], pa.large_string()),
        "dur": pa.array([1, 2], pa.duration("us")),
        "d": pa.array([dt.date(2024, 1, 2), None], pa.date32()),
        "dec": pa.array([Decimal("1.25"), None], pa.decimal128(5, 2)),
        "i32": pa.array([3, 4], pa.int32()),
    })
    assert table_to_pylist(t) == [
        {"i": 1, "u": 2**64 - 1, "f": 1.5, "s": "x", "b": True, "tag": "a", "ns": 123,
         "ms": 5_000_000, "utc": 7_000_000_000, "view": "v", "large": "l", "dur": 1_000,
         "d": "2024-01-02", "dec": 1.25, "i32": 3},
        {"i": None, "u": 0, "f": None, "s": None, "b": None, "tag": None, "ns": None,
         "ms": 6_000_000, "utc": 8_000_000_000, "view": None, "large": "m", "dur": 2_000,
         "d": None, "dec": None, "i32": 4},
    ]
    assert table_to_pylist(t.slice(0, 0)) == []
    row = table_to_pylist(t)[0]
    assert list(row) == t.column_names


# ---- properties ----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=40))
def test_json_floats_round_trip(values):
    out = json.loads(encode(pa.table({"f": pa.array(values, pa.float64())}), "json"))
    for v, row in zip(values, out, strict=True):
        if math.isnan(v) or math.isinf(v):
            assert row == {"f": None}
        else:
            assert row["f"] == v and isinstance(row["f"], float)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text()), min_size=1, max_size=30))
def test_json_and_jsonl_strings_round_trip(values):
    t = pa.table({"s": pa.array(values, pa.string())})
    expected = [{} if v is None else {"s": v} for v in values]
    assert json.loads(encode(t, "json")) == expected
    lines = encode(t, "jsonl").decode().split("\n")
    assert lines[-1] == "" and [json.loads(x) for x in lines[:-1]] == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=-(2**62), max_value=2**62), min_size=1, max_size=30))
def test_timestamps_match_the_scalar_formatter(values):
    t = pa.table({"time": pa.array(values, NS)})
    assert json.loads(encode(t, "json")) == [{"time": format_timestamp_ns(v)} for v in values]


# ---- values beyond float64's 2^53 ----------------------------------------------------------


def test_big_integers_and_near_now_times_in_every_format():
    # one past 2^53 is where a trip through float64 shows (it would print ...992); pyarrow
    # 26 refuses such a cast outright, so a stray cast would raise instead of rounding
    now = 1_796_251_566_865_447_609  # nanoseconds, odd: float64 cannot hold it
    t = pa.table({
        "u": pa.array([2**64 - 1, 2**53 + 1], pa.uint64()),
        "i": pa.array([-(2**63), 2**53 + 1], pa.int64()),
        "time": pa.array([now, now + 1], NS),
        "utc": pa.array([now, now + 1], pa.timestamp("ns", "UTC")),
    })
    text = [format_timestamp_ns(now), format_timestamp_ns(now + 1)]
    assert text == ["2026-12-02T22:46:06.865447609", "2026-12-02T22:46:06.865447610"]
    assert json.loads(encode(t, "json")) == [
        {"u": 2**64 - 1, "i": -(2**63), "time": text[0], "utc": text[0] + "Z"},
        {"u": 2**53 + 1, "i": 2**53 + 1, "time": text[1], "utc": text[1] + "Z"}]
    assert encode(t, "jsonl").split(b"\n")[1] == (
        b'{"u":9007199254740993,"i":9007199254740993,'
        b'"time":"2026-12-02T22:46:06.865447610","utc":"2026-12-02T22:46:06.865447610Z"}')
    assert encode(t, "csv") == (
        b"u,i,time,utc\n"
        b"18446744073709551615,-9223372036854775808,2026-12-02T22:46:06.865447609,"
        b"2026-12-02T22:46:06.865447609Z\n"
        b"9007199254740993,9007199254740993,2026-12-02T22:46:06.865447610,"
        b"2026-12-02T22:46:06.865447610Z\n")
    pretty = encode(t, "pretty").decode().split("\n")
    assert pretty[3] == ("| 18446744073709551615 | -9223372036854775808 | "
                         "2026-12-02T22:46:06.865447609 | 2026-12-02T22:46:06.865447609Z |")
    assert pretty[4] == ("| 9007199254740993     | 9007199254740993     | "
                         "2026-12-02T22:46:06.865447610 | 2026-12-02T22:46:06.865447610Z |")
    assert pq.read_table(pa.BufferReader(encode(t, "parquet"))).to_pylist() == t.to_pylist()
    assert table_to_pylist(t) == [
        {"u": 2**64 - 1, "i": -(2**63), "time": now, "utc": now},
        {"u": 2**53 + 1, "i": 2**53 + 1, "time": now + 1, "utc": now + 1}]
    # other units of a near-now time become exact nanoseconds for plugins
    us = pa.table({"t": pa.array([now // 1000], pa.timestamp("us")),
                   "d": pa.array([now], pa.duration("ns"))})
    assert table_to_pylist(us) == [{"t": now // 1000 * 1000, "d": now}]
