"""The InfluxQL parser and time helpers, without a server."""

from __future__ import annotations

import pytest

from weir.influxql import ast, parse, statement_database
from weir.influxql import ast as iql_ast
from weir.influxql.errors import (
    BindParameterError,
    InfluxQLError,
    InfluxQLNotImplemented,
    InfluxQLSyntaxError,
    UnsupportedStatement,
)
from weir.influxql.exprs import split_where, time_value
from weir.influxql.timeutil import format_rfc3339, format_v1_duration, parse_timestamp

H = 3_600_000_000_000


def one(q: str, **params: object) -> ast.Statement:
    [st] = parse(q, params or None)
    return st


def test_select_clauses() -> None:
    st = one('SELECT mean("usage") AS m, max(idle) FROM "cpu" WHERE host = \'a\' '
             "AND time > now() - 1h GROUP BY time(10m, 1m), host fill(previous) "
             "ORDER BY time DESC LIMIT 5 OFFSET 2 SLIMIT 3 SOFFSET 1")
    assert isinstance(st, ast.Select)
    assert st.fields[0] == ast.Field(ast.Call("mean", (ast.VarRef("usage"),)), "m")
    assert st.sources == [ast.Measurement(name="cpu")]
    assert st.group_by == ast.GroupBy(time_interval=600 * 10**9, time_offset=60 * 10**9,
                                      tags=["host"])
    assert (st.fill, st.order_desc, st.limit, st.offset, st.slimit, st.soffset) == \
        ("previous", True, 5, 2, 3, 1)


@pytest.mark.parametrize("text,ns", [
    ("1ns", 1), ("5u", 5_000), ("5µ", 5_000), ("7ms", 7_000_000), ("10s", 10**10),
    ("2m", 120 * 10**9), ("1h", H), ("1d", 24 * H), ("1w", 7 * 24 * H), ("1h30m", H * 3 // 2),
])
def test_durations(text: str, ns: int) -> None:
    st = one(f"SELECT mean(v) FROM m GROUP BY time({text})")
    assert isinstance(st, ast.Select) and st.group_by is not None
    assert st.group_by.time_interval == ns


def test_sources() -> None:
    st = one('SELECT v FROM db.rp.m1, "my db"..m2, rp.m3, /^cpu/')
    assert isinstance(st, ast.Select)
    assert st.sources == [
        ast.Measurement(name="m1", database="db", rp="rp"),
        ast.Measurement(name="m2", database="my db"),
        ast.Measurement(name="m3", rp="rp"),
        ast.Measurement(regex="^cpu"),
    ]


def test_regex_escapes_and_precedence() -> None:
    st = one(r"SELECT v FROM m WHERE a =~ /x\/y/ AND b = 1 OR c != 'z'")
    assert isinstance(st, ast.Select)
    w = st.where
    assert isinstance(w, ast.BinOp) and w.op == "OR"
    assert isinstance(w.left, ast.BinOp) and w.left.op == "AND"
    assert w.left.left == ast.BinOp("=~", ast.VarRef("a"), ast.RegexLit("x/y"))
    st2 = one("SELECT v FROM m WHERE c != 'it\\'s'")
    assert isinstance(st2, ast.Select) and st2.where == \
        ast.BinOp("!=", ast.VarRef("c"), ast.Literal("it's"))


def test_arithmetic_and_casts() -> None:
    st = one("SELECT (a + b) * 2 / -c, v::field, h::tag FROM m")
    assert isinstance(st, ast.Select)
    assert st.fields[1].expr == ast.VarRef("v", "field")
    assert st.fields[2].expr == ast.VarRef("h", "tag")
    e = st.fields[0].expr
    assert isinstance(e, ast.BinOp) and e.op == "/"


def test_bind_parameters() -> None:
    st = one("SELECT v FROM m WHERE host = $h AND v > $n", h="a", n=3)
    assert isinstance(st, ast.Select)
    assert st.where == ast.BinOp("AND", ast.BinOp("=", ast.VarRef("host"), ast.Literal("a")),
                                 ast.BinOp(">", ast.VarRef("v"), ast.Literal(3)))

@pytest.mark.parametrize("q,params,message", [
    ("SELECT v FROM m WHERE host = $host", {"not_host": "a"},
     "Error during planning: Bind parameter '$host' was referenced in the InfluxQL "
     "statement but its value is undefined."),
    ("SELECT v FROM m WHERE host = $host", {"host": "a", "extra": 1},
     "Error during planning: Bind parameter '$extra' was provided but not found in the "
     "InfluxQL statement"),
    ("SELECT v FROM m WHERE host = $host", {"host": None},
     "Error during planning: Parameter type 'NULL' is not supported by InfluxQL"),
])
def test_bind_parameter_errors_in_the_references_words(q: str, params: dict[str, object],
                                                        message: str) -> None:
    with pytest.raises(BindParameterError) as e:
        parse(q, params)
    assert str(e.value) == message


def test_show_statements() -> None:
    assert isinstance(one("SHOW DATABASES"), ast.ShowDatabases)
    assert one("SHOW RETENTION POLICIES ON db") == ast.ShowRetentionPolicies("db")
    assert one("show measurements with measurement =~ /c.*/ limit 2") == \
        ast.ShowMeasurements(name_regex="c.*", limit=2)
    assert one("SHOW TAG KEYS ON db FROM cpu") == ast.ShowTagKeys(
        database="db", sources=[ast.Measurement(name="cpu")])
    st = one('SHOW TAG VALUES FROM cpu WITH KEY IN ("host", region) WHERE a = \'b\'')
    assert isinstance(st, ast.ShowTagValues)
    assert (st.key_op, st.key_values) == ("in", ["host", "region"])
    assert one("SHOW TAG VALUES WITH KEY =~ /h/") == ast.ShowTagValues(key_op="=~",
                                                                       key_values=["h"])
    assert one("SHOW FIELD KEYS FROM cpu") == ast.ShowFieldKeys(
        sources=[ast.Measurement(name="cpu")])


def test_several_statements_and_unsupported_ones() -> None:
    sts = parse("SHOW DATABASES; SHOW SERIES FROM cpu WHERE a =~ /;/; SELECT v FROM m;")
    assert isinstance(sts[0], ast.ShowDatabases)
    assert isinstance(sts[1], ast.Unsupported)
    assert "SHOW SERIES" in str(sts[1].error)
    assert isinstance(sts[2], ast.Select)


@pytest.mark.parametrize("q,name", [
    ("SHOW SERIES", "SHOW SERIES"), ("SHOW SERIES CARDINALITY", "SHOW SERIES CARDINALITY"),
    ("SHOW USERS", "SHOW USERS"), ("SHOW CONTINUOUS QUERIES", "SHOW CONTINUOUS QUERIES"),
    ("SHOW TAG KEY CARDINALITY", "SHOW TAG KEY CARDINALITY"), ("SHOW SHARDS", "SHOW SHARDS"),
    ("EXPLAIN SELECT v FROM m", "EXPLAIN"),
    ("SELECT v INTO x FROM m", "SELECT INTO"), ("SELECT v FROM (SELECT v FROM m)", "subquery"),
])
def test_unsupported_statements_are_named(q: str, name: str) -> None:
    [st] = parse(q)
    assert isinstance(st, ast.Unsupported)
    assert isinstance(st.error, UnsupportedStatement)
    assert name in str(st.error)


@pytest.mark.parametrize("q", ["SELEC v FROM m", "SELECT FROM m", "SELECT v FROM",
                               "SELECT v FROM m WHERE", "SELECT v FROM m LIMIT x",
                               "SELECT v FROM m GROUP BY time(0s)", "", "SELECT 'x FROM m",
                               "SELECT v FROM m ORDER BY host"])
def test_syntax_errors(q: str) -> None:
    if not q:
        assert parse(q) == []  # no statement: the API answers that one is needed
        return
    with pytest.raises(InfluxQLSyntaxError) as e:
        parse(q)
    assert str(e.value).startswith("error in InfluxQL statement: parsing error: ")


@pytest.mark.parametrize("q,params,message", [
    # what the reference's own tests send, and what it answers (influxdb_influxql_parser)
    ("show tags", None, "invalid SHOW statement, expected DATABASES, FIELD KEYS, "
     "MEASUREMENTS, TAG KEYS, TAG VALUES, or RETENTION POLICIES following SHOW at pos 5"),
    ("show", None, "invalid InfluxQL statement at pos 0. Parsing Error: found EOF, expected "
     "DATABASES, MEASUREMENTS, TAG KEYS, TAG VALUES, FIELD KEYS, RETENTION POLICIES at pos 4"),
    ("SHOW MEASUREMENTS;BAD SQL", None, "invalid InfluxQL statement at pos 18. Parsing "
     "Error: found BAD, expected SELECT, SHOW at pos 18"),
    ("SELECT v FROM m LIMIT x", None,
     "invalid LIMIT clause, expected unsigned integer at pos 22"),
    ("SELECT v FROM m GROUP time(1m)", None, "invalid GROUP BY clause, expected BY at pos 22"),
    ("SELECT mean(v) FROM m GROUP BY time(1m) fill(x)", None,
     "invalid FILL option, expected NULL, NONE, PREVIOUS, LINEAR, or a number at pos 45"),
    ("SHOW TAG VALUES FROM cpu", None,
     "invalid SHOW TAG VALUES statement, expected WITH KEY clause at pos 24"),
    ("select * from", None, "expected measurement name at pos 13"),
    # `name` is a keyword: unquoted, it is not a column (the reference's server test)
    ("SELECT time, name FROM bar", None, "invalid InfluxQL statement at pos 0"),
])
def test_syntax_errors_in_the_references_words(q: str, params: dict[str, object] | None,
                                               message: str) -> None:
    with pytest.raises(InfluxQLSyntaxError) as e:
        parse(q, params)
    assert str(e.value).startswith("error in InfluxQL statement: parsing error: " + message)


@pytest.mark.parametrize("q,what", [
    ("CREATE DATABASE x", "CREATE DATABASE"), ("DELETE FROM m", "DELETE"),
    ("DROP MEASUREMENT m", "DROP MEASUREMENT"),
])
def test_statements_the_reference_parses_but_does_not_run(q: str, what: str) -> None:
    [st] = parse(q)
    assert isinstance(st, ast.Unsupported)
    assert isinstance(st.error, InfluxQLNotImplemented)
    assert str(st.error) == f"This feature is not implemented: {what}"


@pytest.mark.parametrize("q", ["DROP SERIES FROM m", "GRANT ALL TO u", "KILL QUERY 1",
                               "CREATE USER u"])
def test_statements_the_reference_does_not_parse(q: str) -> None:
    with pytest.raises(InfluxQLSyntaxError):
        parse(q)


def test_time_range_extraction() -> None:
    st = one("SELECT v FROM m WHERE time >= '2024-01-01T00:00:00Z' AND host = 'a' AND "
             "time < '2024-01-01T01:00:00Z' + 30m")
    assert isinstance(st, ast.Select)
    rest, rng = split_where(st.where, now_ns=0)
    t0 = 1704067200 * 10**9
    assert (rng.lo, rng.hi) == (t0, t0 + H + H // 2 - 1)
    assert rest == [ast.BinOp("=", ast.VarRef("host"), ast.Literal("a"))]
    st = one("SELECT v FROM m WHERE now() - 2h < time")
    assert isinstance(st, ast.Select)
    _, rng = split_where(st.where, now_ns=10 * H)
    assert (rng.lo, rng.hi) == (8 * H + 1, None)
    st = one("SELECT v FROM m WHERE time > 1h OR v > 1")
    assert isinstance(st, ast.Select)
    with pytest.raises(InfluxQLError, match="time"):
        split_where(st.where, now_ns=0)


def test_timestamps() -> None:
    assert parse_timestamp("1970-01-01T00:00:01Z") == 10**9
    assert parse_timestamp("1970-01-01T00:00:00.000000001Z") == 1
    assert parse_timestamp("1970-01-01 00:00:01.5") == 1_500_000_000
    assert parse_timestamp("1970-01-01T01:00:00+01:00") == 0
    assert parse_timestamp("1970-01-02") == 24 * H
    assert parse_timestamp("yesterday") is None
    assert format_rfc3339(0) == "1970-01-01T00:00:00Z"
    assert format_rfc3339(1_500_000_000) == "1970-01-01T00:00:01.500Z"
    assert format_rfc3339(1) == "1970-01-01T00:00:00.000000001Z"
    assert format_v1_duration(None) == "0s"
    assert format_v1_duration(7 * 24 * H) == "168h0m0s"


def test_statement_database() -> None:
    st = one("SELECT v FROM db.autogen.m")
    assert statement_database(st, None, strict=True) == "db"
    assert statement_database(one("SELECT v FROM db.weekly.m"), None, True) == "db/weekly"
    assert statement_database(one("SELECT v FROM m"), "p", True) == "p"
    assert statement_database(one("SELECT v FROM db..m"), "db", True) == "db"
    with pytest.raises(InfluxQLError, match="do not match"):
        statement_database(st, "other", strict=True)
    assert statement_database(st, "other", strict=False) == "db"
    assert statement_database(one("SHOW TAG KEYS ON x"), None, True) == "x"


def test_a_bound_parameter_compared_with_time_must_be_a_time() -> None:
    """A JSON list or object bound to `$t` in `time > $t` is the user's error (400), not a
    crash of the planner."""
    for bad in ([1, 2], {"a": 1}, b"x"):
        with pytest.raises(InfluxQLError, match="invalid time value"):
            time_value(iql_ast.Literal(value=bad), 0)
    assert time_value(iql_ast.Literal(value="1970-01-01T00:00:01Z"), 0) == 10**9
