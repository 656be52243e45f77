"""LineBuilder: the reference's escaping examples, validation messages, and the fixed
string-field escaping (backslash before quote)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weir.engine.line_builder import (
    InfluxDBError,
    InvalidKeyError,
    InvalidLineError,
    InvalidMeasurementError,
    LineBuilder,
)


def test_reference_escaping_examples() -> None:
    assert (LineBuilder("metrics").tag("host", "server01").tag("region", "us-west")
            .int64_field("cpu", 42).uint64_field("memory_bytes", 8589934592)
            .float64_field("load", 86.5).string_field("status", "online")
            .bool_field("healthy", True).time_ns(1609459200000000000).build()) == (
        'metrics,host=server01,region=us-west cpu=42i,memory_bytes=8589934592u,load=86.5,'
        'status="online",healthy=t 1609459200000000000')
    assert (LineBuilder("system_metrics").tag("server", "app server 1")
            .tag("datacenter", "us west").int64_field("count", 1).build()
            ) == r"system_metrics,server=app\ server\ 1,datacenter=us\ west count=1i"
    assert (LineBuilder("network").tag("servers", "web,app,db").tag("location", "floor1,rack3")
            .int64_field("connections", 256).build()
            ) == r"network,servers=web\,app\,db,location=floor1\,rack3 connections=256i"
    assert (LineBuilder("formulas").tag("equation", "y=mx+b").tag("result", "a=b=c")
            .float64_field("value", 3.14159).build()
            ) == r"formulas,equation=y\=mx+b,result=a\=b\=c value=3.14159"
    assert (LineBuilder("paths").tag("windows_path", "C:\\Program Files\\App")
            .tag("regex", "\\d+\\w+").string_field("description", "Windows\\Unix paths")
            .int64_field("count", 42).build()) == (
        r'paths,windows_path=C:\\Program\ Files\\App,regex=\\d+\\w+ '
        r'description="Windows\\Unix paths",count=42i')
    assert (LineBuilder("messages").tag("type", "notification")
            .string_field("content", 'User said "Hello World"')
            .string_field("json", '{"key": "value"}').int64_field("priority", 1).build()) == (
        r'messages,type=notification content="User said \"Hello World\"",'
        r'json="{\"key\": \"value\"}",priority=1i')
    assert (LineBuilder("complex,measurement").tag("location", "New York, USA")
            .tag("details", "floor=5, room=3").tag("path", "C:\\Users\\Admin\\Documents")
            .string_field("message", 'Error in line: "x = y + z"')
            .string_field("query", 'SELECT * FROM table WHERE id="abc"')
            .float64_field("value", 123.456).time_ns(1609459200000000000).build()) == (
        r'complex\,measurement,location=New\ York\,\ USA,details=floor\=5\,\ room\=3,'
        r'path=C:\\Users\\Admin\\Documents message="Error in line: \"x = y + z\"",'
        r'query="SELECT * FROM table WHERE id=\"abc\"",value=123.456 1609459200000000000')
    assert (LineBuilder("some_table").tag("tag1", "tag1_value").tag("tag2", "tag2_value")
            .int64_field("field1", 1).float64_field("field2", 2.0)
            .string_field("field3", "number three").build()) == (
        'some_table,tag1=tag1_value,tag2=tag2_value field1=1i,field2=2.0,'
        'field3="number three"')
    line = LineBuilder("other_table")
    line.int64_field("other_field", 1)
    line.float64_field("other_field2", 3.14)
    line.time_ns(1302)
    assert line.build() == "other_table other_field=1i,other_field2=3.14 1302"


def test_string_field_escapes_backslash_before_quote() -> None:
    # the documented reference code escaped the quote first, doubling its backslash
    assert LineBuilder("m").string_field("s", 'a\\"b').build() == r'm s="a\\\"b"'
    assert LineBuilder("m").string_field("s", "ends with \\").build() == r'm s="ends with \\"'


def test_setters_keep_first_position_and_chain() -> None:
    lb = LineBuilder("m").tag("a", 1).tag("b", 2).int64_field("x", 1).float64_field("y", 2)
    assert lb.tag("a", 3).int64_field("x", 5) is lb
    assert lb.build() == "m,a=3,b=2 x=5i,y=2.0"


@pytest.mark.parametrize("key,message", [
    ("", "tag key cannot be empty"),
    ("a b", "tag key 'a b' cannot contain spaces"),
    ("a,b", "tag key 'a,b' cannot contain commas"),
    ("a=b", "tag key 'a=b' cannot contain equals signs"),
])
def test_key_validation(key: str, message: str) -> None:
    with pytest.raises(InvalidKeyError, match=message):
        LineBuilder("m").tag(key, "v")
    with pytest.raises(InvalidKeyError, match=message.replace("tag", "field")):
        LineBuilder("m").int64_field(key, 1)


def test_errors() -> None:
    with pytest.raises(InvalidMeasurementError, match="Measurement name cannot contain spaces"):
        LineBuilder("a b")
    with pytest.raises(InvalidLineError, match="At least one field is required: some_table"):
        LineBuilder("some_table").build()
    with pytest.raises(ValueError, match="uint64 field 'u' cannot be negative"):
        LineBuilder("m").uint64_field("u", -1)
    assert issubclass(InvalidLineError, InfluxDBError)
    assert LineBuilder("m").bool_field("b", False).float64_field("f", -3.0).build() == \
        "m b=f,f=-3.0"


def _unescape_string_field(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in '\\"':
            out.append(s[i + 1])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                      blacklist_characters="\n\r")))
def test_string_fields_round_trip(value: str) -> None:
    built = LineBuilder("m").string_field("s", value).build()
    quoted = built[len('m s="'):-1]
    assert _unescape_string_field(quoted) == value
