"""The line protocol parser: grammar, escapes, types, precisions and error messages."""

from __future__ import annotations

import pyarrow as pa
import pytest

from weir.lineprotocol import FieldType, format_line, parse
from weir.lineprotocol.columnar import parse_batch


def one(lp: str, **kw):  # type: ignore[no-untyped-def]
    r = parse(lp, default_time_ns=42, **kw)
    assert not r.errors, r.errors
    assert len(r.tables) == 1
    t = next(iter(r.tables.values()))
    return t


def row(t, i: int = 0) -> dict:  # type: ignore[no-untyped-def]
    out = {k: v[i] for k, v in t.tags.items() if v[i] is not None}
    out.update({k: v[i] for k, (_ty, v) in t.fields.items() if v[i] is not None})
    out["time"] = t.times[i]
    return out


@pytest.mark.parametrize("lp,name,expected", [
    ("cpu v=1 5", "cpu", {"v": 1.0, "time": 5}),
    ("cpu,host=a v=1i 5", "cpu", {"host": "a", "v": 1, "time": 5}),
    ("cpu v=-3i 5", "cpu", {"v": -3, "time": 5}),
    ("cpu v=18446744073709551615u 5", "cpu", {"v": 2**64 - 1, "time": 5}),
    ("cpu v=1.5e3 5", "cpu", {"v": 1500.0, "time": 5}),
    ("cpu v=-.5 5", "cpu", {"v": -0.5, "time": 5}),
    ("cpu v=1. 5", "cpu", {"v": 1.0, "time": 5}),
    ('cpu s="hello world" 5', "cpu", {"s": "hello world", "time": 5}),
    ('cpu s="a \\"quoted\\" \\\\ back" 5', "cpu", {"s": 'a "quoted" \\ back', "time": 5}),
    ('cpu s="c:\\dir" 5', "cpu", {"s": "c:\\dir", "time": 5}),
    ('cpu s="with,comma and=eq" 5', "cpu", {"s": "with,comma and=eq", "time": 5}),
    ("my\\ cpu,t\\ k=v\\ 1,a\\,b=c\\=d f\\ x=1 5", "my cpu",
     {"t k": "v 1", "a,b": "c=d", "f x": 1.0, "time": 5}),
    ("cpu\\,x v=1 5", "cpu,x", {"v": 1.0, "time": 5}),
    ("cpu,path=C:\\Program\\ Files v=1 5", "cpu", {"path": "C:\\Program Files", "v": 1.0,
                                                     "time": 5}),
    ("cpu,t=a\\\\b v=1 5", "cpu", {"t": "a\\b", "v": 1.0, "time": 5}),
    ("cpu v=1", "cpu", {"v": 1.0, "time": 42}),
    ("cpu v=1 -5", "cpu", {"v": 1.0, "time": -5}),
    ("  cpu v=1 5  ", "cpu", {"v": 1.0, "time": 5}),
    ("cpu v=1 5\r", "cpu", {"v": 1.0, "time": 5}),
    ("cpu  v=1  5", "cpu", {"v": 1.0, "time": 5}),
    ("cpu,host=é v=1 5", "cpu", {"host": "é", "v": 1.0, "time": 5}),
])
def test_valid_lines(lp, name, expected):
    t = one(lp, precision="ns")
    assert t.name == name
    assert row(t) == expected


@pytest.mark.parametrize("spelling,value", [
    ("t", True), ("T", True), ("true", True), ("True", True), ("TRUE", True),
    ("f", False), ("F", False), ("false", False), ("False", False), ("FALSE", False),
])
def test_boolean_spellings(spelling, value):
    t = one(f"m b={spelling} 1", precision="ns")
    assert t.fields["b"][0] is FieldType.BOOLEAN and t.fields["b"][1] == [value]


@pytest.mark.parametrize("precision,ts,ns", [
    ("ns", "5", 5), ("n", "5", 5), ("nanosecond", "5", 5),
    ("us", "5", 5_000), ("u", "5", 5_000), ("microsecond", "5", 5_000),
    ("ms", "5", 5_000_000), ("millisecond", "5", 5_000_000),
    ("s", "5", 5_000_000_000), ("second", "5", 5_000_000_000),
    ("auto", "1700000000", 1_700_000_000 * 10**9),
    ("auto", "1700000000000", 1_700_000_000 * 10**9),
    ("auto", "1700000000000000", 1_700_000_000 * 10**9),
    ("auto", "1700000000000000000", 1_700_000_000 * 10**9),
])
def test_precisions(precision, ts, ns):
    assert one(f"m v=1 {ts}", precision=precision).times == [ns]


@pytest.mark.parametrize("lp,message", [
    ("m", "missing fields"),
    ("m ", "missing fields"),
    (",t=a v=1", "missing measurement"),
    ("m v=", "missing value for field 'v'"),
    ("m v=abc", "invalid field value for 'v'"),
    ("m v=1.2.3", "invalid field value for 'v'"),
    ("m v=nan", "invalid float value"),
    ("m v=inf", "invalid float value"),
    ("m v=9223372036854775808i", "integer value out of range for field 'v'"),
    ("m v=-1u", "invalid unsigned"),
    ("m v=18446744073709551616u", "unsigned value out of range"),
    ('m s="open', "unterminated string value for field 's'"),
    ("m v=1 12abc", "invalid timestamp '12abc'"),
    ("m v=1 1 2", "unexpected text after timestamp"),
    ("m,t v=1", "missing '=' after tag key 't'"),
    ("m,t= v=1", "missing value for tag 't'"),
    ("m v=1,v=2", "invalid line protocol - multiple instances of 'v' field found"),
    ("m,t=a,t=b v=1", "multiple instances of 't' tag"),
    ("m time=1", "field key 'time' is reserved"),
    ("m,time=x v=1", "tag key 'time' is reserved"),
    ("m,t=x t=1", "is a tag"),
    ("m =1", "empty field key"),
])
def test_errors_name_the_problem_and_line(lp, message):
    r = parse(f"ok v=1 1\n{lp}\nok v=2 2", default_time_ns=0, precision="ns")
    assert len(r.errors) == 1, r.errors
    e = r.errors[0]
    assert e.line_number == 2
    assert message in e.message, e.message
    assert e.original_line == lp
    assert r.tables["ok"].rows == 2


def test_type_conflict_within_batch_fails_the_later_line_only():
    r = parse("m v=1 1\nm v=2i 2\nm v=3 3", default_time_ns=0, precision="ns")
    assert [e.line_number for e in r.errors] == [2]
    assert "expected float, got integer" in r.errors[0].message
    assert r.tables["m"].fields["v"][1] == [1.0, 3.0]


def test_conflict_with_stored_schema():
    schema = {"m": {"v": ("field", "float"), "t": ("tag", "tag")}}
    r = parse("m v=1i 1\nm,t=a v=2 2\nm t=1 3", default_time_ns=0, precision="ns",
              schema=schema.get)
    assert [e.line_number for e in r.errors] == [1, 3]
    assert "expected type float, but got integer" in r.errors[0].message


def test_comments_blank_lines_crlf_and_line_numbers():
    r = parse(b"# header\r\n\r\nm v=1 1\r\n   # indented comment\r\nm v=bad 2\r\n\r\n",
              default_time_ns=0, precision="ns")
    assert r.lines == 2
    assert [e.line_number for e in r.errors] == [5]
    assert r.tables["m"].line_numbers == [3]


def test_invalid_utf8_is_an_error_of_its_line():
    r = parse(b"m v=1 1\nm,t=\xff\xfe v=2 2\nm v=3 3", default_time_ns=0, precision="ns")
    assert [e.line_number for e in r.errors] == [2]
    assert r.tables["m"].rows == 2


def test_stop_on_first_error():
    r = parse("m v=x\nm v=y\nm v=1", default_time_ns=0, stop_on_first_error=True)
    assert [e.line_number for e in r.errors] == [1]


def test_sparse_columns_and_arrow_types():
    t = parse("m,a=1 f=1,s=\"x\" 1\nm,b=2 g=2i,u=3u,ok=true 2", default_time_ns=0,
              precision="ns").tables["m"]
    assert t.tags == {"a": ["1", None], "b": [None, "2"]}
    batch = t.to_arrow()
    assert batch.schema.names == ["a", "b", "f", "s", "g", "u", "ok", "time"]
    assert batch.schema.field("a").type == pa.dictionary(pa.int32(), pa.string())
    assert [batch.schema.field(n).type for n in ["f", "s", "g", "u", "ok", "time"]] == [
        pa.float64(), pa.string(), pa.int64(), pa.uint64(), pa.bool_(), pa.timestamp("ns")]
    assert batch.schema.field("a").metadata == {b"weir:kind": b"tag"}
    assert batch.schema.field("time").metadata == {b"weir:kind": b"time"}
    assert batch.column("g").to_pylist() == [None, 2]
    dropped = t.drop_rows({0})
    assert dropped.rows == 1 and dropped.to_arrow().column("ok").to_pylist() == [True]


@pytest.mark.parametrize("measurement,tags,fields,time_ns,expected", [
    ("cpu", {"host": "a"}, {"v": (FieldType.FLOAT, 1.0)}, 5, "cpu,host=a v=1.0 5"),
    ("my cpu,x", {"t k": "v=1,2"}, {"f": (FieldType.INTEGER, 3)}, None,
     "my\\ cpu\\,x,t\\ k=v\\=1\\,2 f=3i"),
    ("m", {}, {"s": (FieldType.STRING, 'say "hi" \\o/')}, None, 'm s="say \\"hi\\" \\\\o/"'),
    ("m", {}, {"u": (FieldType.UINTEGER, 7), "b": (FieldType.BOOLEAN, False)}, 1,
     "m u=7u,b=false 1"),
])
def test_format_line(measurement, tags, fields, time_ns, expected):
    line = format_line(measurement, tags, fields, time_ns)
    assert line == expected
    t = one(line, precision="ns")
    assert t.name == measurement


TSBS = ("cpu,hostname=host_{h},region=eu-west-1,datacenter=eu-west-1a,rack=12,os=Ubuntu16.04LTS,"
        "arch=x64 usage_user={u},usage_system=2.6,usage_idle=24i,up=true {ts}")


def _plain(batch: pa.RecordBatch) -> list[dict]:
    cols = {n: (c.cast(pa.int64()) if n == "time" else c) for n, c in
            zip(batch.schema.names, batch.columns, strict=True)}
    return pa.table(cols).to_pylist()


def test_batch_fast_path_matches_line_parser():
    body = "\n".join(TSBS.format(h=i % 7, u=i / 3, ts=1_700_000_000_000_000_000 + i)
                     for i in range(500))
    body += "\nmem,host=a free=1u\n# comment\n\nmem,host=b free=2u,extra=1.5 17\n"
    fast = parse_batch(body, factor=1, auto=True, default_time_ns=99, schema=None)
    assert fast is not None
    slow = parse(body.encode()[:1] + body.encode()[1:], default_time_ns=99)  # fast too
    slow_lines = parse("\n".join(body.split("\n")), default_time_ns=99)
    import weir.lineprotocol.parser as p

    old, p.FAST_PATH_MIN_BYTES = p.FAST_PATH_MIN_BYTES, 10**12
    try:
        line_by_line = parse(body, default_time_ns=99)
    finally:
        p.FAST_PATH_MIN_BYTES = old
    for name in ("cpu", "mem"):
        a = fast.tables[name].to_arrow()
        b = line_by_line.tables[name].to_arrow()
        assert a.schema.equals(b.schema, check_metadata=True)
        assert _plain(a) == _plain(b)
        assert list(fast.tables[name].line_numbers.to_pylist()) == \
            line_by_line.tables[name].line_numbers
    assert fast.lines == line_by_line.lines == slow.lines == slow_lines.lines


@pytest.mark.parametrize("bad", [
    "cpu v=1 1\ncpu v=1i 2",          # mixed types
    "cpu v=1,v=2 1",                  # duplicate field
    "cpu,t=a v=1 1\ncpu t=1 2",       # tag and field
    "cpu v=nan 1",                    # not a number
    "cpu v 1",                        # no '='
    "cpu v=1 1 1",                    # four parts
    "cpu,t=a=b v=1",                  # '=' in tag value
])
def test_batch_fast_path_gives_up_on_anything_unusual(bad):
    assert parse_batch(bad, factor=1, auto=False, default_time_ns=0, schema=None) is None
