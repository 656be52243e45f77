"""A hand-written tokenizer and recursive-descent parser for the InfluxQL that dashboards send.

`parse(text, params)` returns the statements of a query (split on `;`). Statements Weir
does not run (writes, administration, `SHOW SERIES`, ...) raise `UnsupportedStatement`
naming the statement; malformed text raises `InfluxQLSyntaxError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from weir.influxql import ast
from weir.influxql.errors import (
    BindParameterError,
    InfluxQLNotImplemented,
    InfluxQLSyntaxError,
    UnsupportedStatement,
)
from weir.influxql.timeutil import DURATION_UNITS

_IDENT_START = re.compile(r"[A-Za-z_\u0080-\uffff]")
_IDENT = re.compile(r"[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*")
# digits are ASCII only, as InfluxQL's lexer has them (`²` or `٣` is no number)
_NUMBER = re.compile(r"([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?")
_DURATION = re.compile(r"([0-9]+)(ns|ms|us|u|µ|s|m|h|d|w)")
_DIGITS = frozenset("0123456789")
_BIND = re.compile(r"\$([A-Za-z0-9_]+)")

_OPERATORS = ["=~", "!~", "!=", "<>", "<=", ">=", "::", "=", "<", ">", "+", "-", "*", "/",
              "%", "(", ")", ",", ".", ";", "&", "|", "^"]


@dataclass
class Tok:
    kind: str  # ident | qident | string | int | float | duration | op | bind | eof
    value: str | int | float | None  # str for ident .. op, bind and regex; None for eof
    pos: int
    text: str = ""

    @property
    def str_value(self) -> str:
        """The value of a textual token (ident, qident, string, op, bind, regex)."""
        assert isinstance(self.value, str), self.kind
        return self.value

    @property
    def int_value(self) -> int:
        """The value of an int token, or a duration's nanoseconds."""
        assert isinstance(self.value, int), self.kind
        return self.value

    @property
    def number(self) -> int | float:
        """The value of an int or float token."""
        assert isinstance(self.value, int | float), self.kind
        return self.value

    def kw(self) -> str | None:
        return self.str_value.upper() if self.kind == "ident" else None

    def show(self) -> str:
        if self.kind == "eof":
            return "EOF"
        return self.text or str(self.value)


class Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip(self) -> None:
        t = self.text
        while self.pos < len(t):
            c = t[self.pos]
            if c.isspace():
                self.pos += 1
            elif t.startswith("--", self.pos):
                nl = t.find("\n", self.pos)
                self.pos = len(t) if nl < 0 else nl + 1
            elif t.startswith("/*", self.pos):
                end = t.find("*/", self.pos + 2)
                self.pos = len(t) if end < 0 else end + 2
            else:
                return

    def regex(self) -> Tok | None:
        """A `/.../` literal at the current position (only where the grammar allows one)."""
        self._skip()
        if self.pos >= len(self.text) or self.text[self.pos] != "/":
            return None
        start = self.pos
        i = self.pos + 1
        out = []
        while i < len(self.text):
            c = self.text[i]
            if c == "\\" and i + 1 < len(self.text) and self.text[i + 1] == "/":
                out.append("/")
                i += 2
                continue
            if c == "\\" and i + 1 < len(self.text):
                out.append(self.text[i:i + 2])
                i += 2
                continue
            if c == "/":
                self.pos = i + 1
                return Tok("regex", "".join(out), start, self.text[start:i + 1])
            out.append(c)
            i += 1
        raise InfluxQLSyntaxError("invalid regular expression, missing closing /", start)

    def next(self) -> Tok:
        self._skip()
        t = self.text
        if self.pos >= len(t):
            return Tok("eof", None, self.pos)
        start = self.pos
        c = t[start]
        if c == '"' or c == "'":
            i = start + 1
            out = []
            while i < len(t):
                ch = t[i]
                if ch == "\\" and i + 1 < len(t):
                    nxt = t[i + 1]
                    out.append({"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}.get(
                        nxt, "\\" + nxt))
                    i += 2
                    continue
                if ch == c:
                    self.pos = i + 1
                    kind = "qident" if c == '"' else "string"
                    return Tok(kind, "".join(out), start, t[start:i + 1])
                out.append(ch)
                i += 1
            raise InfluxQLSyntaxError(
                f"unterminated {'identifier' if c == chr(34) else 'string'}", start)
        if c in _DIGITS or (c == "." and start + 1 < len(t) and t[start + 1] in _DIGITS):
            # durations: 10s, 1h30m (numbers immediately followed by units)
            total = 0
            pos = start
            while True:
                m = _DURATION.match(t, pos)
                if not m:
                    break
                total += int(m.group(1)) * DURATION_UNITS[m.group(2)]
                pos = m.end()
            if pos > start and not (pos < len(t) and (t[pos].isalnum() or t[pos] in "_.")):
                self.pos = pos
                return Tok("duration", total, start, t[start:pos])
            m = _NUMBER.match(t, start)
            assert m is not None
            self.pos = m.end()
            s = m.group(0)
            if "." in s or "e" in s or "E" in s:
                return Tok("float", float(s), start, s)
            return Tok("int", int(s), start, s)
        if c == "$":
            m = _BIND.match(t, start)
            if not m:
                raise InfluxQLSyntaxError("invalid bind parameter", start)
            self.pos = m.end()
            return Tok("bind", m.group(1), start, m.group(0))
        if _IDENT_START.match(c):
            m = _IDENT.match(t, start)
            assert m is not None
            self.pos = m.end()
            return Tok("ident", m.group(0), start, m.group(0))
        for op in _OPERATORS:
            if t.startswith(op, start):
                self.pos = start + len(op)
                return Tok("op", op, start, op)
        raise InfluxQLSyntaxError("invalid InfluxQL statement", start,
                                  f"Parsing Error: unexpected character {c!r}")


_RESERVED = {"ALL", "ALTER", "AND", "AS", "ASC", "BEGIN", "BY", "CREATE", "DELETE", "DESC",
             "DROP", "DURATION", "END", "EVERY", "EXPLAIN", "FIELD", "FOR", "FROM", "GRANT",
             "GROUP", "GROUPS", "IN", "INF", "INSERT", "INTO", "KEY", "KEYS", "KILL", "LIMIT",
             "NAME", "NOT", "OFFSET", "ON", "OR", "ORDER", "PASSWORD", "POLICY", "PRIVILEGES",
             "QUERIES", "QUERY", "READ", "REPLICATION", "RESAMPLE", "RETENTION", "REVOKE",
             "SELECT", "SERIES", "SET", "SHOW", "SLIMIT", "SOFFSET", "TAG", "TO", "USER",
             "USERS", "VALUES", "WHERE", "WITH", "WRITE", "FILL", "TZ"}

_UNSUPPORTED_SHOW = [
    ("SERIES", "CARDINALITY"), ("SERIES",), ("SHARDS",), ("SHARD", "GROUPS"), ("USERS",),
    ("GRANTS",), ("CONTINUOUS", "QUERIES"), ("QUERIES",), ("STATS",), ("DIAGNOSTICS",),
    ("SUBSCRIPTIONS",), ("MEASUREMENT", "CARDINALITY"), ("MEASUREMENT", "EXACT"),
    ("TAG", "KEY", "CARDINALITY"), ("TAG", "VALUES", "CARDINALITY"),
    ("FIELD", "KEY", "CARDINALITY"), ("TAG", "KEY", "EXACT"), ("FIELD", "KEY", "EXACT"),
]


class Parser:
    def __init__(self, text: str, params: Mapping[str, object] | None = None) -> None:
        self.lexer = Lexer(text)
        self.text = text
        self.params = params or {}
        #: where the statement being parsed starts (the position of generic errors)
        self.stmt_start = 0
        #: the bind parameters the statement being parsed uses
        self._used_params: set[str] = set()
        self.tok = self.lexer.next()
        self._peeked: Tok | None = None

    # ---- token helpers ------------------------------------------------------------------

    def advance(self) -> Tok:
        cur = self.tok
        if self._peeked is not None:
            self.tok, self._peeked = self._peeked, None
        else:
            self.tok = self.lexer.next()
        return cur

    def peek(self) -> Tok:
        if self._peeked is None:
            self._peeked = self.lexer.next()
        return self._peeked

    def error(self, expected: str) -> InfluxQLSyntaxError:
        """A statement the grammar cannot take, as the reference reports it (`invalid
        InfluxQL statement` at the statement's start), with what Weir found as details."""
        return InfluxQLSyntaxError(
            "invalid InfluxQL statement", self.stmt_start,
            f"Parsing Error: found {self.tok.show()}, expected {expected} at pos "
            f"{self.tok.pos}")

    def fail(self, message: str) -> InfluxQLSyntaxError:
        """An error the reference's grammar names (`invalid LIMIT clause, ...`), at the
        current token."""
        return InfluxQLSyntaxError(message, self.tok.pos)

    def is_kw(self, *words: str) -> bool:
        return self.tok.kw() in words

    def accept_kw(self, word: str) -> bool:
        if self.tok.kw() == word:
            self.advance()
            return True
        return False

    def expect_kw(self, word: str) -> None:
        if not self.accept_kw(word):
            raise self.error(word)

    def is_op(self, op: str) -> bool:
        return self.tok.kind == "op" and self.tok.value == op

    def accept_op(self, op: str) -> bool:
        if self.is_op(op):
            self.advance()
            return True
        return False

    def expect_op(self, op: str) -> None:
        if not self.accept_op(op):
            raise self.error(op)

    def regex(self) -> str | None:
        """Read a regex literal if the current token starts one (the lexer re-reads text)."""
        if self.tok.kind == "op" and self.tok.value == "/":
            self._peeked = None
            self.lexer.pos = self.tok.pos
            r = self.lexer.regex()
            assert r is not None
            self.tok = self.lexer.next()
            return r.str_value
        return None

    def ident(self, what: str = "identifier") -> str:
        if self.tok.kind in ("ident", "qident"):
            return self.advance().str_value
        if self.tok.kind == "bind":
            v = self._bind(self.advance().str_value)
            if isinstance(v, str):
                return v
        raise self.error(what)

    def integer(self, clause: str) -> int:
        if self.tok.kind == "int":
            return self.advance().int_value
        raise self.fail(f"invalid {clause} clause, expected unsigned integer")

    # ---- statements ---------------------------------------------------------------------

    def statements(self) -> list[ast.Statement]:
        out: list[ast.Statement] = []
        while True:
            while self.accept_op(";"):
                pass
            if self.tok.kind == "eof":
                break
            self.stmt_start = self.tok.pos
            self._used_params = set()
            try:
                out.append(self.statement())
            except (UnsupportedStatement, InfluxQLNotImplemented) as e:
                out.append(ast.Unsupported(e))
                self._skip_statement()
                continue
            if self.tok.kind != "eof" and not self.is_op(";"):
                # the reference parses what follows as the next statement
                self.stmt_start = self.tok.pos
                raise self.error("EOF or ;")
            unused = [n for n in self.params if n not in self._used_params]
            if unused:
                raise BindParameterError(f"Bind parameter '${unused[0]}' was provided but "
                                         "not found in the InfluxQL statement")
        return out

    def _skip_statement(self) -> None:
        """Move past the rest of an unsupported statement (to `;` or the end)."""
        if self._peeked is not None:
            self.lexer.pos = self._peeked.pos
            self._peeked = None
        prev: Tok | None = None
        while self.tok.kind != "eof" and not self.is_op(";"):
            if self.is_op("/") and prev is not None and (
                    (prev.kind == "op" and prev.value in ("=~", "!~", ",")) or
                    prev.kw() in ("FROM", "BY", "WITH")):
                try:
                    self.regex()
                    prev = None
                    continue
                except InfluxQLSyntaxError:
                    pass
            prev = self.tok
            try:
                self.tok = self.lexer.next()
            except InfluxQLSyntaxError:
                nxt = self.text.find(";", self.lexer.pos)
                self.lexer.pos = len(self.text) if nxt < 0 else nxt
                self.tok = self.lexer.next()

    def statement(self) -> ast.Statement:
        kw = self.tok.kw()
        if kw == "SELECT":
            self.advance()
            return self.select()
        if kw == "SHOW":
            self.advance()
            return self.show()
        # what the reference parses but does not run (HTTP 405)
        nxt = self.peek()
        if kw == "CREATE":
            if nxt.kw() != "DATABASE":
                self.advance()
                raise self.fail("Invalid CREATE statement, expected DATABASE following "
                                "CREATE")
            raise InfluxQLNotImplemented("CREATE DATABASE")
        if kw == "DROP":
            if nxt.kw() != "MEASUREMENT":
                self.advance()
                raise self.fail("invalid DROP statement, expected MEASUREMENT")
            raise InfluxQLNotImplemented("DROP MEASUREMENT")
        if kw == "DELETE":
            raise InfluxQLNotImplemented("DELETE")
        if kw == "EXPLAIN":
            raise UnsupportedStatement("EXPLAIN")
        raise self.error("SELECT, SHOW")

    def show(self) -> ast.Statement:
        kw = self.tok.kw()
        if self.tok.kind == "eof" and self.tok.pos == self.stmt_start + len("SHOW"):
            raise self.error("DATABASES, MEASUREMENTS, TAG KEYS, TAG VALUES, FIELD KEYS, "
                             "RETENTION POLICIES")
        if kw == "DATABASES":
            self.advance()
            return ast.ShowDatabases()
        if kw == "RETENTION":
            self.advance()
            if not self.accept_kw("POLICIES"):
                raise self.fail("invalid SHOW RETENTION POLICIES statement, expected "
                                "POLICIES")
            db = None
            if self.accept_kw("ON"):
                db = self._on_ident()
            return ast.ShowRetentionPolicies(db)
        for words in _UNSUPPORTED_SHOW:
            if self._lookahead_words(words):
                raise UnsupportedStatement("SHOW " + " ".join(words))
        if kw == "MEASUREMENTS":
            self.advance()
            return self.show_measurements()
        if kw == "TAG":
            self.advance()
            if self.accept_kw("KEYS"):
                return self.show_tag_keys()
            if self.accept_kw("VALUES"):
                return self.show_tag_values()
            raise self.fail("invalid SHOW TAG statement, expected KEYS or VALUES")
        if kw == "FIELD":
            self.advance()
            if not self.accept_kw("KEYS"):
                raise self.fail("invalid SHOW FIELD KEYS statement, expected KEYS")
            return self.show_field_keys()
        raise self.fail("invalid SHOW statement, expected DATABASES, FIELD KEYS, "
                        "MEASUREMENTS, TAG KEYS, TAG VALUES, or RETENTION POLICIES "
                        "following SHOW")

    def _lookahead_words(self, words: tuple[str, ...]) -> bool:
        lx = Lexer(self.text)
        lx.pos = self.tok.pos
        for w in words:
            t = lx.next()
            if t.kw() != w:
                return False
        return True

    def _on_ident(self) -> str:
        if self.tok.kind in ("ident", "qident") and self.tok.kw() not in _RESERVED:
            return self.advance().str_value
        raise self.fail("invalid ON clause, expected identifier")

    def _on_clause(self) -> tuple[str | None, str | None]:
        if not self.accept_kw("ON"):
            return None, None
        db = self._on_ident()
        rp = None
        if self.accept_op("."):
            rp = self._on_ident()
        return db, rp

    def _limit_offset(self, stmt: ast.ShowMeasurements | ast.ShowTagKeys | ast.ShowTagValues
                      | ast.ShowFieldKeys) -> None:
        while True:
            if self.accept_kw("LIMIT"):
                stmt.limit = self.integer("LIMIT")
            elif self.accept_kw("OFFSET"):
                stmt.offset = self.integer("OFFSET")
            else:
                return

    def show_measurements(self) -> ast.ShowMeasurements:
        st = ast.ShowMeasurements()
        st.database, st.rp = self._on_clause()
        if self.accept_kw("WITH"):
            if not self.accept_kw("MEASUREMENT"):
                raise self.fail("invalid WITH clause, expected MEASUREMENT")
            if self.accept_op("=~"):
                r = self.regex()
                if r is None:
                    raise self.error("regex")
                st.name_regex = r
            elif self.accept_op("="):
                st.name_eq = self.ident("measurement name")
            else:
                raise self.error("= or =~")
        st.where = self._where()
        self._limit_offset(st)
        return st

    def _from_sources(self) -> list[ast.Measurement]:
        if self.accept_kw("FROM"):
            return self.sources()
        return []

    def show_tag_keys(self) -> ast.ShowTagKeys:
        st = ast.ShowTagKeys()
        st.database, st.rp = self._on_clause()
        st.sources = self._from_sources()
        st.where = self._where()
        self._limit_offset(st)
        return st

    def show_tag_values(self) -> ast.ShowTagValues:
        st = ast.ShowTagValues()
        st.database, st.rp = self._on_clause()
        st.sources = self._from_sources()
        if not self.accept_kw("WITH"):
            raise self.fail("invalid SHOW TAG VALUES statement, expected WITH KEY clause")
        if not self.accept_kw("KEY"):
            raise self.fail("invalid WITH KEY clause, expected KEY")
        if self.accept_kw("IN"):
            self.expect_op("(")
            st.key_op = "in"
            st.key_values = [self.ident("tag key")]
            while self.accept_op(","):
                st.key_values.append(self.ident("tag key"))
            self.expect_op(")")
        else:
            for op in ("=~", "!~", "!=", "<>", "="):
                if self.accept_op(op):
                    st.key_op = "!=" if op == "<>" else op
                    break
            else:
                raise self.fail("invalid WITH KEY clause, expected condition")
            if st.key_op in ("=~", "!~"):
                r = self.regex()
                if r is None:
                    raise self.fail("invalid WITH KEY clause, expected regular expression "
                                    f"following {'=~' if st.key_op == '=~' else '=!'}")
                st.key_values = [r]
            elif self.tok.kind in ("ident", "qident", "bind"):
                st.key_values = [self.ident("tag key")]
            else:
                raise self.fail("invalid WITH KEY clause, expected identifier following "
                                f"{'=' if st.key_op == '=' else '!='}")
        st.where = self._where()
        self._limit_offset(st)
        return st

    def show_field_keys(self) -> ast.ShowFieldKeys:
        st = ast.ShowFieldKeys()
        st.database, st.rp = self._on_clause()
        st.sources = self._from_sources()
        self._limit_offset(st)
        return st

    # ---- SELECT -------------------------------------------------------------------------

    def select(self) -> ast.Select:
        fields = [self.select_field()]
        while self.accept_op(","):
            fields.append(self.select_field())
        if self.is_kw("INTO"):
            raise UnsupportedStatement("SELECT INTO")
        self.expect_kw("FROM")
        sources = self.sources()
        st = ast.Select(fields=fields, sources=sources)
        st.where = self._where()
        if self.accept_kw("GROUP"):
            if not self.accept_kw("BY"):
                raise self.fail("invalid GROUP BY clause, expected BY")
            st.group_by = self.group_by()
        if self.accept_kw("FILL"):
            self.expect_op("(")
            self.fill(st)
            self.expect_op(")")
        if self.accept_kw("ORDER"):
            self.expect_kw("BY")
            self.order_by(st)
        while True:
            if self.accept_kw("LIMIT"):
                st.limit = self.integer("LIMIT")
            elif self.accept_kw("OFFSET"):
                st.offset = self.integer("OFFSET")
            elif self.accept_kw("SLIMIT"):
                st.slimit = self.integer("SLIMIT")
            elif self.accept_kw("SOFFSET"):
                st.soffset = self.integer("SOFFSET")
            else:
                break
        if self.accept_kw("TZ"):
            self.expect_op("(")
            if self.tok.kind != "string":
                raise self.fail("invalid TZ clause, expected string")
            st.tz = self.advance().str_value
            self.expect_op(")")
        return st

    def select_field(self) -> ast.Field:
        e = self.expr()
        alias = None
        if self.accept_kw("AS"):
            if self.tok.kind not in ("ident", "qident", "bind") or \
                    self.tok.kw() in _RESERVED:
                raise self.fail("invalid field alias, expected identifier")
            alias = self.ident("alias")
        return ast.Field(e, alias)

    def _where(self) -> ast.Expr | None:
        if not self.accept_kw("WHERE"):
            return None
        if self.tok.kind == "eof" or self.is_op(";"):
            raise self.fail("invalid conditional expression")
        return self.expr()

    def sources(self) -> list[ast.Measurement]:
        out = [self.source()]
        while self.accept_op(","):
            out.append(self.source())
        return out

    def source(self) -> ast.Measurement:
        if self.is_op("("):
            raise UnsupportedStatement("SELECT with a subquery")
        r = self.regex()
        if r is not None:
            return ast.Measurement(regex=r)
        # up to three dot-separated parts: db.rp.name, db..name, rp.name, name
        parts: list[str | None] = []
        while True:
            if self.is_op("."):
                parts.append(None)
                self.advance()
                continue
            r = self.regex()
            if r is not None:
                parts.append(None)
                return self._measurement(parts[:-1], None, r)
            if self.tok.kind not in ("ident", "qident", "bind") or \
                    self.tok.kw() in _RESERVED:
                raise self.fail("expected measurement name")
            parts.append(self.ident("measurement name"))
            if not self.accept_op("."):
                break
            if len(parts) >= 3:
                raise self.fail("expected measurement name")
        return self._measurement(parts[:-1], parts[-1], None)

    def _measurement(self, prefix: list[str | None], name: str | None,
                     regex: str | None) -> ast.Measurement:
        prefix = list(prefix)
        db = rp = None
        if len(prefix) == 2:
            db, rp = prefix
        elif len(prefix) == 1:
            rp = prefix[0]
        elif len(prefix) > 2:
            raise self.fail("expected measurement name")
        return ast.Measurement(name=name, regex=regex, database=db, rp=rp)

    def group_by(self) -> ast.GroupBy:
        gb = ast.GroupBy()
        while True:
            if self.tok.kw() == "TIME" and self.peek().kind == "op" and self.peek().value == "(":
                self.advance()
                self.advance()
                iv = self.expr()
                if not isinstance(iv, ast.DurationLit) or iv.ns <= 0:
                    raise self.fail("invalid TIME call, expected a duration for the "
                                    "interval")
                gb.time_interval = iv.ns
                if self.accept_op(","):
                    off = self.expr()
                    if isinstance(off, ast.DurationLit):
                        gb.time_offset = off.ns
                    elif isinstance(off, ast.Literal) and isinstance(off.value, int):
                        gb.time_offset = off.value
                    elif isinstance(off, ast.Call) and off.name == "now":
                        raise UnsupportedStatement("GROUP BY time() with a now() offset")
                    else:
                        raise self.fail("time dimension offset must be a duration")
                self.expect_op(")")
            elif self.accept_op("*"):
                gb.tag_wildcard = True
            else:
                r = self.regex()
                if r is not None:
                    gb.tag_regexes.append(r)
                else:
                    name = self.ident("GROUP BY dimension")
                    if self.accept_op("::"):
                        self.ident("type")
                    gb.tags.append(name)
            if not self.accept_op(","):
                break
        return gb

    def fill(self, st: ast.Select) -> None:
        kw = self.tok.kw()
        if kw in ("NULL", "NONE", "PREVIOUS", "LINEAR"):
            self.advance()
            st.fill = kw.lower()
            return
        neg = self.accept_op("-")
        if self.tok.kind in ("int", "float"):
            v = self.advance().number
            st.fill = "value"
            st.fill_value = -v if neg else v
            return
        raise self.fail("invalid FILL option, expected NULL, NONE, PREVIOUS, LINEAR, or a "
                        "number")

    def order_by(self, st: ast.Select) -> None:
        if self.tok.kw() in ("ASC", "DESC"):  # `ORDER BY DESC` is `ORDER BY time DESC`
            st.order_desc = self.advance().kw() == "DESC"
            return
        if self.tok.kw() != "TIME":
            raise self.fail("invalid ORDER BY, expected ASC, DESC or TIME")
        self.advance()
        if self.accept_kw("DESC"):
            st.order_desc = True
        else:
            self.accept_kw("ASC")
        if self.accept_op(","):
            raise self.fail("invalid ORDER BY, expected ASC, DESC or TIME")

    # ---- expressions --------------------------------------------------------------------

    def expr(self) -> ast.Expr:
        return self._or()

    def _or(self) -> ast.Expr:
        e = self._and()
        while self.accept_kw("OR"):
            e = ast.BinOp("OR", e, self._and())
        return e

    def _and(self) -> ast.Expr:
        e = self._cmp()
        while self.accept_kw("AND"):
            e = ast.BinOp("AND", e, self._cmp())
        return e

    def _cmp(self) -> ast.Expr:
        e = self._add()
        for op in ("=~", "!~"):
            if self.accept_op(op):
                r = self.regex()
                if r is not None:
                    return ast.BinOp(op, e, ast.RegexLit(r))
                if self.tok.kind == "bind":
                    v = self._bind(self.advance().str_value)
                    return ast.BinOp(op, e, ast.RegexLit(str(v)))
                raise self.error("regex")
        for op in ("!=", "<>", "<=", ">=", "=", "<", ">"):
            if self.accept_op(op):
                right = self._add()
                return ast.BinOp("!=" if op == "<>" else op, e, right)
        return e

    def _add(self) -> ast.Expr:
        e = self._mul()
        while self.tok.kind == "op" and self.tok.value in ("+", "-", "|", "^"):
            op = self.advance().str_value
            if op in ("|", "^"):
                raise UnsupportedStatement(f"bitwise operator {op}")
            e = ast.BinOp(op, e, self._mul())
        return e

    def _mul(self) -> ast.Expr:
        e = self._unary()
        while self.tok.kind == "op" and self.tok.value in ("*", "/", "%", "&"):
            op = self.advance().str_value
            if op == "&":
                raise UnsupportedStatement("bitwise operator &")
            e = ast.BinOp(op, e, self._unary())
        return e

    def _unary(self) -> ast.Expr:
        if self.is_op("-") or self.is_op("+"):
            neg = self.advance().value == "-"
            inner = self._unary()
            if not neg:
                return inner
            if isinstance(inner, ast.Literal) and isinstance(inner.value, int | float) and \
                    not isinstance(inner.value, bool):
                return ast.Literal(-inner.value)
            if isinstance(inner, ast.DurationLit):
                return ast.DurationLit(-inner.ns)
            return ast.BinOp("*", ast.Literal(-1), inner)
        return self._primary()

    def _primary(self) -> ast.Expr:
        t = self.tok
        if t.kind == "op" and t.value == "(":
            self.advance()
            e = self.expr()
            self.expect_op(")")
            return ast.Paren(e)
        if t.kind == "op" and t.value == "*":
            self.advance()
            kind = None
            if self.accept_op("::"):
                kind = self.ident("field or tag").lower()
            return ast.Wildcard(kind)
        if t.kind == "op" and t.value == "/":
            r = self.regex()
            assert r is not None
            return ast.RegexLit(r)
        if t.kind == "int" or t.kind == "float":
            self.advance()
            return ast.Literal(t.value)
        if t.kind == "duration":
            self.advance()
            return ast.DurationLit(t.int_value)
        if t.kind == "string":
            self.advance()
            return ast.Literal(t.value)
        if t.kind == "bind":
            self.advance()
            v = self._bind(t.str_value)
            return ast.Literal(v)
        if t.kind == "ident":
            kw = t.kw()
            if kw == "TRUE" or kw == "FALSE":
                self.advance()
                return ast.Literal(kw == "TRUE")
            nxt = self.peek()
            if nxt.kind == "op" and nxt.value == "(":
                name = self.advance().str_value.lower()
                self.advance()
                args: list[ast.Expr] = []
                if not self.is_op(")"):
                    args.append(self.expr())
                    while self.accept_op(","):
                        args.append(self.expr())
                self.expect_op(")")
                if name == "now":
                    if args:
                        raise self.fail("now() takes no arguments")
                    return ast.Now()
                return ast.Call(name, tuple(args))
        if t.kind == "ident" and t.kw() in _RESERVED:
            raise self.error("identifier, string, number, bool")
        if t.kind in ("ident", "qident"):
            name = self.advance().str_value
            cast = None
            if self.accept_op("::"):
                cast = self.ident("type").lower()
                if cast not in ("tag", "field", "integer", "float", "string", "boolean",
                                "unsigned"):
                    raise self.fail("invalid data type for tag or field reference, "
                                    "expected float, integer, unsigned, string, boolean, "
                                    "field, tag")
            return ast.VarRef(name, cast)
        raise self.error("identifier, string, number, bool")

    def _bind(self, name: str) -> object:
        if name not in self.params:
            raise BindParameterError(f"Bind parameter '${name}' was referenced in the "
                                     "InfluxQL statement but its value is undefined.")
        self._used_params.add(name)
        v = self.params[name]
        if isinstance(v, dict):  # {"string": "x"} style typed values
            v = next(iter(v.values()), None)
        if v is None or isinstance(v, list | dict):
            kind = "NULL" if v is None else type(v).__name__
            raise BindParameterError(f"Parameter type '{kind}' is not supported by InfluxQL")
        return v


def parse(text: str, params: Mapping[str, object] | None = None) -> list[ast.Statement]:
    """All statements of `text`. Raises InfluxQLSyntaxError or UnsupportedStatement."""
    return Parser(text, params).statements()
