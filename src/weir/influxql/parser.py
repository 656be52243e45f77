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
from weir.influxql.errors import InfluxQLSyntaxError, UnsupportedStatement
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
        raise InfluxQLSyntaxError(f"unterminated regular expression at char {start + 1}")

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
                f"unterminated {'identifier' if c == chr(34) else 'string'} at char {start + 1}")
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
                raise InfluxQLSyntaxError(f"invalid bind parameter at char {start + 1}")
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
        raise InfluxQLSyntaxError(f"found {c!r}, expected a statement at char {start + 1}")


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
        return InfluxQLSyntaxError(
            f"error parsing query: found {self.tok.show()}, expected {expected} "
            f"at line 1, char {self.tok.pos + 1}")

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

    def integer(self, what: str) -> int:
        if self.tok.kind == "int":
            return self.advance().int_value
        raise self.error(what)

    # ---- statements ---------------------------------------------------------------------

    def statements(self) -> list[ast.Statement]:
        out: list[ast.Statement] = []
        while True:
            while self.accept_op(";"):
                pass
            if self.tok.kind == "eof":
                break
            try:
                out.append(self.statement())
            except UnsupportedStatement as e:
                out.append(ast.Unsupported(e))
                self._skip_statement()
                continue
            if self.tok.kind != "eof" and not self.is_op(";"):
                raise self.error("EOF or ;")
        if not out:
            raise InfluxQLSyntaxError("error parsing query: empty query")
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
        if kw in ("CREATE", "DROP", "DELETE", "ALTER", "GRANT", "REVOKE", "KILL", "SET",
                  "EXPLAIN", "INSERT", "UPDATE"):
            words = [kw]
            nxt = self.peek()
            if nxt.kind == "ident" and kw != "DELETE":
                words.append(nxt.str_value.upper())
            raise UnsupportedStatement(" ".join(words))
        raise self.error("SELECT, SHOW")

    def show(self) -> ast.Statement:
        kw = self.tok.kw()
        if kw == "DATABASES":
            self.advance()
            return ast.ShowDatabases()
        if kw == "RETENTION":
            self.advance()
            self.expect_kw("POLICIES")
            db = None
            if self.accept_kw("ON"):
                db = self.ident("database name")
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
            raise self.error("KEYS, VALUES")
        if kw == "FIELD":
            self.advance()
            self.expect_kw("KEYS")
            return self.show_field_keys()
        if self.tok.kind == "ident":
            raise UnsupportedStatement(f"SHOW {self.tok.str_value.upper()}")
        raise self.error("DATABASES, MEASUREMENTS, TAG KEYS, TAG VALUES, FIELD KEYS, "
                         "RETENTION POLICIES")

    def _lookahead_words(self, words: tuple[str, ...]) -> bool:
        lx = Lexer(self.text)
        lx.pos = self.tok.pos
        for w in words:
            t = lx.next()
            if t.kw() != w:
                return False
        return True

    def _on_clause(self) -> tuple[str | None, str | None]:
        if not self.accept_kw("ON"):
            return None, None
        db = self.ident("database name")
        rp = None
        if self.accept_op("."):
            rp = self.ident("retention policy name")
        return db, rp

    def _limit_offset(self, stmt: ast.ShowMeasurements | ast.ShowTagKeys | ast.ShowTagValues
                      | ast.ShowFieldKeys) -> None:
        while True:
            if self.accept_kw("LIMIT"):
                stmt.limit = self.integer("LIMIT value")
            elif self.accept_kw("OFFSET"):
                stmt.offset = self.integer("OFFSET value")
            else:
                return

    def show_measurements(self) -> ast.ShowMeasurements:
        st = ast.ShowMeasurements()
        st.database, st.rp = self._on_clause()
        if self.accept_kw("WITH"):
            self.expect_kw("MEASUREMENT")
            if self.accept_op("=~"):
                r = self.regex()
                if r is None:
                    raise self.error("regex")
                st.name_regex = r
            elif self.accept_op("="):
                st.name_eq = self.ident("measurement name")
            else:
                raise self.error("= or =~")
        if self.accept_kw("WHERE"):
            st.where = self.expr()
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
        if self.accept_kw("WHERE"):
            st.where = self.expr()
        self._limit_offset(st)
        return st

    def show_tag_values(self) -> ast.ShowTagValues:
        st = ast.ShowTagValues()
        st.database, st.rp = self._on_clause()
        st.sources = self._from_sources()
        self.expect_kw("WITH")
        self.expect_kw("KEY")
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
                raise self.error("=, !=, =~, !~ or IN")
            if st.key_op in ("=~", "!~"):
                r = self.regex()
                if r is None:
                    raise self.error("regex")
                st.key_values = [r]
            else:
                st.key_values = [self.ident("tag key")]
        if self.accept_kw("WHERE"):
            st.where = self.expr()
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
        if self.accept_kw("WHERE"):
            st.where = self.expr()
        if self.accept_kw("GROUP"):
            self.expect_kw("BY")
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
                st.limit = self.integer("LIMIT value")
            elif self.accept_kw("OFFSET"):
                st.offset = self.integer("OFFSET value")
            elif self.accept_kw("SLIMIT"):
                st.slimit = self.integer("SLIMIT value")
            elif self.accept_kw("SOFFSET"):
                st.soffset = self.integer("SOFFSET value")
            else:
                break
        if self.accept_kw("TZ"):
            self.expect_op("(")
            if self.tok.kind != "string":
                raise self.error("time zone string")
            st.tz = self.advance().str_value
            self.expect_op(")")
        return st

    def select_field(self) -> ast.Field:
        e = self.expr()
        alias = None
        if self.accept_kw("AS"):
            alias = self.ident("alias")
        return ast.Field(e, alias)

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
            parts.append(self.ident("measurement name"))
            if not self.accept_op("."):
                break
            if len(parts) >= 3:
                raise self.error("measurement name")
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
            raise self.error("measurement name")
        return ast.Measurement(name=name, regex=regex, database=db, rp=rp)

    def group_by(self) -> ast.GroupBy:
        gb = ast.GroupBy()
        while True:
            if self.tok.kw() == "TIME" and self.peek().kind == "op" and self.peek().value == "(":
                self.advance()
                self.advance()
                iv = self.expr()
                if not isinstance(iv, ast.DurationLit) or iv.ns <= 0:
                    raise InfluxQLSyntaxError("time dimension must have a positive duration "
                                              "argument")
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
                        raise InfluxQLSyntaxError("time dimension offset must be a duration")
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
        raise self.error("null, none, previous, linear or a number")

    def order_by(self, st: ast.Select) -> None:
        name = self.ident("time")
        if name.lower() != "time":
            raise InfluxQLSyntaxError("only ORDER BY time supported at this time")
        if self.accept_kw("DESC"):
            st.order_desc = True
        else:
            self.accept_kw("ASC")
        if self.accept_op(","):
            raise InfluxQLSyntaxError("only ORDER BY time supported at this time")

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
                        raise InfluxQLSyntaxError("now() takes no arguments")
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
                    raise InfluxQLSyntaxError(f"invalid type cast ::{cast}")
            return ast.VarRef(name, cast)
        raise self.error("identifier, string, number, bool")

    def _bind(self, name: str) -> object:
        if name not in self.params:
            raise InfluxQLSyntaxError(f"missing parameter: {name}")
        v = self.params[name]
        if isinstance(v, dict):  # {"string": "x"} style typed values
            return next(iter(v.values()), None)
        return v


def parse(text: str, params: Mapping[str, object] | None = None) -> list[ast.Statement]:
    """All statements of `text`. Raises InfluxQLSyntaxError or UnsupportedStatement."""
    return Parser(text, params).statements()
