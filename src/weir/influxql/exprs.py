"""Translating InfluxQL expressions to DataFusion SQL, and the WHERE clause's time range."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from weir.influxql import ast
from weir.influxql.errors import InfluxQLError, UnsupportedStatement
from weir.influxql.timeutil import parse_timestamp

NUMERIC = ("float", "integer", "uinteger")

MATH_FUNCS = {
    "abs": "abs", "ceil": "ceil", "floor": "floor", "round": "round", "sqrt": "sqrt",
    "ln": "ln", "log2": "log2", "log10": "log10", "exp": "exp", "pow": "power",
    "sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin", "acos": "acos",
    "atan": "atan", "atan2": "atan2", "log": "log",
}

MIN_TIME = -(2**63) + 2
MAX_TIME = 2**63 - 2


def qident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qstr(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_literal(v: object) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        r = repr(v)
        if r in ("inf", "-inf", "nan"):
            return f"CAST('{r}' AS DOUBLE)"
        return r if ("." in r or "e" in r) else r + ".0"
    return qstr(str(v))


@dataclass
class TableInfo:
    """What the planner needs of one measurement: its tags and typed fields."""

    name: str
    tags: set[str] = field(default_factory=set)
    fields: dict[str, str] = field(default_factory=dict)  # name -> float|integer|...

    def kind(self, ref: ast.VarRef) -> str:
        """tag | field | time | unknown (for this table)."""
        if ref.name == "time" and ref.cast is None:
            return "time"
        if ref.cast == "tag":
            return "tag" if ref.name in self.tags else "unknown"
        if ref.cast is not None:
            return "field" if ref.name in self.fields else "unknown"
        if ref.name in self.tags:
            return "tag"
        if ref.name in self.fields:
            return "field"
        return "unknown"


# ---- time range ------------------------------------------------------------------------


@dataclass
class TimeRange:
    lo: int | None = None  # inclusive ns
    hi: int | None = None  # inclusive ns

    def restrict(self, lo: int | None = None, hi: int | None = None) -> None:
        if lo is not None:
            self.lo = lo if self.lo is None else max(self.lo, lo)
        if hi is not None:
            self.hi = hi if self.hi is None else min(self.hi, hi)

    def sql(self) -> list[str]:
        out = []
        if self.lo is not None:
            out.append(f'"time" >= to_timestamp_nanos({max(self.lo, MIN_TIME)})')
        if self.hi is not None:
            out.append(f'"time" <= to_timestamp_nanos({min(self.hi, MAX_TIME)})')
        return out

    @property
    def empty(self) -> bool:
        return self.lo is not None and self.hi is not None and self.lo > self.hi


def _refs_time(e: ast.Expr) -> bool:
    if isinstance(e, ast.VarRef):
        return e.name == "time" and e.cast is None
    if isinstance(e, ast.BinOp):
        return _refs_time(e.left) or _refs_time(e.right)
    if isinstance(e, ast.Paren):
        return _refs_time(e.expr)
    if isinstance(e, ast.Call):
        return any(_refs_time(a) for a in e.args)
    return False


def time_value(e: ast.Expr, now_ns: int) -> int:
    """Evaluate the non-`time` side of a time comparison to ns since the epoch."""
    if isinstance(e, ast.Paren):
        return time_value(e.expr, now_ns)
    if isinstance(e, ast.Now):
        return now_ns
    if isinstance(e, ast.DurationLit):
        return e.ns
    if isinstance(e, ast.Literal):
        v = e.value
        if isinstance(v, bool) or v is None:
            raise InfluxQLError(f"invalid operation: time and {v!r} cannot be compared")
        if isinstance(v, int):
            return v
        if isinstance(v, float):
            return int(v)
        if not isinstance(v, str):  # a bound parameter may be any JSON value
            raise InfluxQLError(f"invalid time value: {v!r}; expected RFC3339 like "
                                "'2024-01-01T00:00:00Z' or an integer")
        ts = parse_timestamp(v)
        if ts is None:
            raise InfluxQLError(f"invalid time value: {v!r}; expected RFC3339 like "
                                "'2024-01-01T00:00:00Z'")
        return ts
    if isinstance(e, ast.BinOp) and e.op in ("+", "-"):
        a, b = time_value(e.left, now_ns), time_value(e.right, now_ns)
        return a + b if e.op == "+" else a - b
    if isinstance(e, ast.Call):
        raise InfluxQLError(f"invalid time expression: function {e.name}() is not allowed here")
    raise InfluxQLError("invalid time comparison: expected a timestamp, now() or a duration")


def split_where(where: ast.Expr | None, now_ns: int) -> tuple[list[ast.Expr], TimeRange]:
    """Top-level AND conjuncts without the time conditions, and the time range they set."""
    rng = TimeRange()
    rest: list[ast.Expr] = []

    def visit(e: ast.Expr) -> None:
        if isinstance(e, ast.Paren):
            visit(e.expr)
            return
        if isinstance(e, ast.BinOp) and e.op == "AND":
            visit(e.left)
            visit(e.right)
            return
        if isinstance(e, ast.BinOp) and e.op in ("=", "<", "<=", ">", ">=", "!="):
            lt, rt = _is_time(e.left), _is_time(e.right)
            if lt or rt:
                op = e.op
                other = e.right if lt else e.left
                if rt and not lt:
                    op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
                v = time_value(other, now_ns)
                if op == "=":
                    rng.restrict(v, v)
                elif op == ">":
                    rng.restrict(lo=v + 1)
                elif op == ">=":
                    rng.restrict(lo=v)
                elif op == "<":
                    rng.restrict(hi=v - 1)
                elif op == "<=":
                    rng.restrict(hi=v)
                else:
                    raise UnsupportedStatement("a time != condition")
                return
        if _refs_time(e):
            raise InfluxQLError("invalid time condition: time can only be compared with "
                                "=, <, <=, >, >= and combined with AND")
        rest.append(e)

    if where is not None:
        visit(where)
    return rest, rng


def _is_time(e: ast.Expr) -> bool:
    while isinstance(e, ast.Paren):
        e = e.expr
    return isinstance(e, ast.VarRef) and e.name == "time" and e.cast is None


# ---- conditions ------------------------------------------------------------------------


def condition_sql(e: ast.Expr, t: TableInfo) -> str:
    """A WHERE condition (time already removed) over table `t`, InfluxQL semantics:
    a missing tag equals '', comparisons with missing fields are false."""
    if isinstance(e, ast.Paren):
        return "(" + condition_sql(e.expr, t) + ")"
    if isinstance(e, ast.BinOp):
        if e.op in ("AND", "OR"):
            return f"({condition_sql(e.left, t)} {e.op} {condition_sql(e.right, t)})"
        if e.op in ("=~", "!~"):
            if not isinstance(e.right, ast.RegexLit):
                raise InfluxQLError(f"expected a regular expression after {e.op}")
            lhs = e.left
            while isinstance(lhs, ast.Paren):
                lhs = lhs.expr
            if not isinstance(lhs, ast.VarRef):
                raise InfluxQLError(f"expected a tag or field before {e.op}")
            kind = t.kind(lhs)
            op = "~" if e.op == "=~" else "!~"
            pat = qstr(e.right.pattern)
            if kind == "tag":
                return f"(COALESCE(CAST({qident(lhs.name)} AS VARCHAR), '') {op} {pat})"
            if kind == "field" and t.fields[lhs.name] == "string":
                return f"({qident(lhs.name)} {op} {pat})"
            if kind == "unknown":
                return f"('' {op} {pat})" if lhs.cast in (None, "tag") else "FALSE"
            return "FALSE"
        if e.op in ("=", "!=", "<", "<=", ">", ">="):
            return _comparison(e, t)
        # arithmetic used as a condition: true when non-zero
        return f"(({value_sql(e, t)}) <> 0)"
    if isinstance(e, ast.Literal) and isinstance(e.value, bool):
        return "TRUE" if e.value else "FALSE"
    if isinstance(e, ast.VarRef):
        kind = t.kind(e)
        if kind == "field" and t.fields[e.name] == "boolean":
            return f"COALESCE({qident(e.name)}, FALSE)"
        raise InfluxQLError(f"invalid condition: {e.name} is not a boolean expression")
    raise InfluxQLError("invalid condition in WHERE clause")


def _tag_side(e: ast.Expr, t: TableInfo) -> str | None:
    """The SQL text of a tag reference (missing tag = ''), or None if not a tag."""
    while isinstance(e, ast.Paren):
        e = e.expr
    if isinstance(e, ast.VarRef):
        kind = t.kind(e)
        if kind == "tag":
            return f"COALESCE(CAST({qident(e.name)} AS VARCHAR), '')"
        if kind == "unknown" and e.cast in (None, "tag"):
            return "''"
    return None


def _unknown_ref(e: ast.Expr, t: TableInfo) -> bool:
    while isinstance(e, ast.Paren):
        e = e.expr
    return isinstance(e, ast.VarRef) and t.kind(e) == "unknown"


def _stringish(e: ast.Expr, t: TableInfo) -> bool:
    """A tag, a name that may be a missing tag, or a string literal."""
    while isinstance(e, ast.Paren):
        e = e.expr
    return _tag_side(e, t) is not None or (isinstance(e, ast.Literal)
                                           and isinstance(e.value, str))


def _comparison(e: ast.BinOp, t: TableInfo) -> str:
    op = "<>" if e.op == "!=" else e.op
    if (_unknown_ref(e.left, t) or _unknown_ref(e.right, t)) and not (
            _stringish(e.left, t) and _stringish(e.right, t)):
        # beside a field or a number, an unknown name is a missing field, not a missing
        # tag (''): the comparison is false, as `v > nosuch` is in InfluxDB 1.x
        return "FALSE"
    lt, rt = _tag_side(e.left, t), _tag_side(e.right, t)
    if lt is not None or rt is not None:
        left = lt if lt is not None else _tag_other(e.left, t)
        right = rt if rt is not None else _tag_other(e.right, t)
        return f"({left} {op} {right})"
    left, right = value_sql(e.left, t), value_sql(e.right, t)
    return f"COALESCE(({left} {op} {right}), FALSE)"


def _tag_other(e: ast.Expr, t: TableInfo) -> str:
    while isinstance(e, ast.Paren):
        e = e.expr
    if isinstance(e, ast.Literal):
        return qstr("" if e.value is None else str(e.value) if not isinstance(e.value, bool)
                    else str(e.value).lower())
    return f"CAST({value_sql(e, t)} AS VARCHAR)"


def value_sql(e: ast.Expr, t: TableInfo,
              call_sql: Callable[[ast.Call], str] | None = None) -> str:
    """A value expression over table `t`. `call_sql` renders function calls (aggregates)."""
    if isinstance(e, ast.Paren):
        return "(" + value_sql(e.expr, t, call_sql) + ")"
    if isinstance(e, ast.VarRef):
        kind = t.kind(e)
        if kind in ("tag", "field"):
            col = qident(e.name)
            if e.cast in ("integer", "float", "unsigned") and kind == "field" and \
                    t.fields[e.name] in NUMERIC:
                to = {"integer": "BIGINT", "float": "DOUBLE", "unsigned": "BIGINT UNSIGNED"}
                return f"CAST({col} AS {to[e.cast]})"
            return col
        if kind == "time":
            return '"time"'
        return "NULL"
    if isinstance(e, ast.Literal):
        return sql_literal(e.value)
    if isinstance(e, ast.DurationLit):
        return str(e.ns)
    if isinstance(e, ast.Now):
        raise InfluxQLError("now() can only be compared with time")
    if isinstance(e, ast.RegexLit):
        raise InfluxQLError("a regular expression can only follow =~ or !~")
    if isinstance(e, ast.BinOp):
        if e.op in ("+", "-", "*", "/", "%"):
            left = value_sql(e.left, t, call_sql)
            right = value_sql(e.right, t, call_sql)
            if e.op == "/":
                return f"(CAST({left} AS DOUBLE) / {right})"
            return f"({left} {e.op} {right})"
        raise InfluxQLError(f"operator {e.op} is not allowed in a field expression")
    if isinstance(e, ast.Call):
        if e.name in MATH_FUNCS:
            args = [value_sql(a, t, call_sql) for a in e.args]
            if e.name == "log":
                if len(args) != 2:
                    raise InfluxQLError("invalid number of arguments for log, expected 2")
                return f"log(CAST({args[1]} AS DOUBLE), CAST({args[0]} AS DOUBLE))"
            if e.name in ("round", "floor", "ceil", "abs"):
                return f"{MATH_FUNCS[e.name]}({', '.join(args)})"
            return f"{MATH_FUNCS[e.name]}({', '.join('CAST(' + a + ' AS DOUBLE)' for a in args)})"
        if call_sql is None:
            raise InfluxQLError(f"function {e.name}() is not allowed here")
        return call_sql(e)
    if isinstance(e, ast.Wildcard):
        raise InfluxQLError("a wildcard is not allowed here")
    raise InfluxQLError("unsupported expression")


def field_refs(e: ast.Expr, out: list[ast.VarRef] | None = None) -> list[ast.VarRef]:
    """Every VarRef in `e` (in order)."""
    if out is None:
        out = []
    if isinstance(e, ast.VarRef):
        out.append(e)
    elif isinstance(e, ast.BinOp):
        field_refs(e.left, out)
        field_refs(e.right, out)
    elif isinstance(e, ast.Paren):
        field_refs(e.expr, out)
    elif isinstance(e, ast.Call):
        for a in e.args:
            field_refs(a, out)
    return out
