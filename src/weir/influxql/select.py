"""SELECT: InfluxQL onto DataFusion SQL, one query per measurement, then the InfluxQL-only
steps (GROUP BY time fill, per-series LIMIT/OFFSET, SLIMIT/SOFFSET) in Arrow/Python.

Output columns follow InfluxDB 3 (IOx): `iox::measurement`, `time`, the GROUP BY tags
that the SELECT list does not name, then the SELECT list in order. Rows are sorted by
measurement, GROUP BY tags, then time.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from weir.catalog.columns import ARROW_TYPES
from weir.influxql import ast
from weir.influxql.errors import InfluxQLError, UnsupportedStatement
from weir.influxql.exprs import (
    MATH_FUNCS,
    NUMERIC,
    TableInfo,
    TimeRange,
    condition_sql,
    field_refs,
    qident,
    split_where,
    value_sql,
)
from weir.influxql.result import MEASUREMENT, TAG_TYPE, TIME_TYPE, InfluxQLResult

AGGREGATES = {"mean", "median", "count", "sum", "min", "max", "first", "last", "spread",
              "stddev", "percentile"}
SELECTORS = {"first", "last", "min", "max", "percentile"}
_NUMERIC_ONLY = {"mean", "median", "sum", "spread", "stddev", "percentile", "min", "max"}
#: per-series transformations of a field or of an aggregate (GROUP BY time)
TRANSFORMS = {"derivative", "non_negative_derivative", "difference", "non_negative_difference",
              "cumulative_sum", "moving_average"}
_UNSUPPORTED_FUNCS = {
    "distinct", "mode", "top", "bottom", "sample", "elapsed", "integral", "holt_winters", "holt_winters_with_fit", "chande_momentum_oscillator",
    "exponential_moving_average", "double_exponential_moving_average",
    "triple_exponential_moving_average", "relative_strength_index",
    "triple_exponential_derivative", "kaufmans_efficiency_ratio",
    "kaufmans_adaptive_moving_average", "count_hll", "sum_hll", "merge_hll",
}
#: most buckets one GROUP BY time query may fill in
MAX_FILL_BUCKETS = 1_000_000

RunSql = Callable[[str], Awaitable[pa.Table]]


@dataclass
class OutField:
    name: str
    expr: ast.Expr
    is_count: bool = False  # a bare count(): fill(null) gives 0


@dataclass
class Plan:
    fields: list[OutField]
    group_tags: list[str]
    projected_tags: set[str]
    mode: str  # raw | aggregate | selector
    rng: TimeRange
    conds: list[ast.Expr]
    selector: ast.Call | None = None
    tables: list[TableInfo] = field(default_factory=list)
    #: the Arrow type each output column must have (None: whatever SQL gives)
    types: list[pa.DataType | None] = field(default_factory=list)
    #: per output column: (transform name, parameter) applied per series, or empty
    transforms: list[tuple[str, int]] = field(default_factory=list)
    #: the time column's name: `time`, or the alias of `time` in the SELECT list
    time_name: str = "time"


# ---- planning --------------------------------------------------------------------------


def _union(tables: list[TableInfo]) -> TableInfo:
    u = TableInfo("")
    for t in tables:
        u.tags |= t.tags
        for f, ty in t.fields.items():
            u.fields.setdefault(f, ty)
    return u


def _walk_calls(e: ast.Expr, out: list[ast.Call]) -> None:
    if isinstance(e, ast.Call):
        if e.name in AGGREGATES:
            out.append(e)
            return
        for a in e.args:
            _walk_calls(a, out)
    elif isinstance(e, ast.BinOp):
        _walk_calls(e.left, out)
        _walk_calls(e.right, out)
    elif isinstance(e, ast.Paren):
        _walk_calls(e.expr, out)


def _refs_outside_calls(e: ast.Expr) -> list[ast.VarRef]:
    if isinstance(e, ast.VarRef):
        return [e]
    if isinstance(e, ast.Call):
        if e.name in AGGREGATES:
            return []
        return [r for a in e.args for r in _refs_outside_calls(a)]
    if isinstance(e, ast.BinOp):
        return _refs_outside_calls(e.left) + _refs_outside_calls(e.right)
    if isinstance(e, ast.Paren):
        return _refs_outside_calls(e.expr)
    return []


def _first_name(e: ast.Expr) -> str:
    """InfluxQL's column name for an expression: its first function or field name."""
    if isinstance(e, ast.VarRef):
        return e.name
    if isinstance(e, ast.Call):
        return e.name
    if isinstance(e, ast.BinOp):
        return _first_name(e.left) or _first_name(e.right)
    if isinstance(e, ast.Paren):
        return _first_name(e.expr)
    return ""


def _check_functions(e: ast.Expr) -> None:
    if isinstance(e, ast.Call):
        if e.name in TRANSFORMS:
            raise UnsupportedStatement(f"{e.name}() inside another expression")
        if e.name in _UNSUPPORTED_FUNCS:
            raise UnsupportedStatement(f"the {e.name}() function")
        if e.name not in AGGREGATES and e.name not in MATH_FUNCS:
            raise InfluxQLError(f"undefined function {e.name}()")
        for a in e.args:
            _check_functions(a)
            if e.name in AGGREGATES:
                nested: list[ast.Call] = []
                _walk_calls(a, nested)
                if nested:
                    raise UnsupportedStatement(f"a nested aggregate in {e.name}()")
    elif isinstance(e, ast.BinOp):
        _check_functions(e.left)
        _check_functions(e.right)
    elif isinstance(e, ast.Paren):
        _check_functions(e.expr)


def _expand_fields(stmt: ast.Select, u: TableInfo, group_tags: list[str],
                   group_wildcard: bool) -> list[tuple[str | None, ast.Expr, str]]:
    """(alias, expr, default name) with `*`, `/regex/` and `f(*)` expanded over `u`."""
    out: list[tuple[str | None, ast.Expr, str]] = []
    for f in stmt.fields:
        e = f.expr
        while isinstance(e, ast.Paren) and isinstance(e.expr, ast.Wildcard | ast.RegexLit):
            e = e.expr
        if isinstance(e, ast.Wildcard | ast.RegexLit):
            names: list[tuple[str, str]] = []
            want_fields = not isinstance(e, ast.Wildcard) or e.kind in (None, "field")
            want_tags = not isinstance(e, ast.Wildcard) or e.kind in (None, "tag")
            if want_fields:
                names += [(n, "field") for n in u.fields]
            if want_tags and not group_wildcard:
                names += [(n, "tag") for n in u.tags if n not in group_tags]
            if isinstance(e, ast.RegexLit):
                rx = _regex(e.pattern)
                names = [(n, k) for n, k in names if rx.search(n)]
            for n, k in sorted(names):
                out.append((None, ast.VarRef(n, k), n))
            continue
        if isinstance(e, ast.Call) and e.name in AGGREGATES and e.args and \
                isinstance(e.args[0], ast.Wildcard | ast.RegexLit):
            arg = e.args[0]
            cand = sorted(u.fields.items())
            if isinstance(arg, ast.RegexLit):
                rx = _regex(arg.pattern)
                cand = [(n, ty) for n, ty in cand if rx.search(n)]
            if e.name in _NUMERIC_ONLY:
                cand = [(n, ty) for n, ty in cand if ty in NUMERIC]
            for n, _ty in cand:
                call = ast.Call(e.name, (ast.VarRef(n, "field"), *e.args[1:]))
                out.append((None, call, f"{e.name}_{n}"))
            continue
        out.append((f.alias, f.expr, f.alias or _first_name(f.expr)))
    return out


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise InfluxQLError(f"invalid regular expression /{pattern}/: {e}") from None


def _unique_names(names: list[str], time_name: str = "time") -> list[str]:
    seen: set[str] = {time_name}
    out = []
    for n in names:
        if n not in seen:
            seen.add(n)
            out.append(n)
            continue
        i = 1
        while f"{n}_{i}" in seen:
            i += 1
        seen.add(f"{n}_{i}")
        out.append(f"{n}_{i}")
    return out


def _strip_transforms(stmt: ast.Select) -> tuple[ast.Select, list[tuple[str, int]]]:
    """`derivative(mean(x), 1m)` and friends: the statement on their inner expressions,
    and what to apply to each output column afterwards."""
    if not any(isinstance(f.expr, ast.Call) and f.expr.name in TRANSFORMS for f in stmt.fields):
        return stmt, []
    gb = stmt.group_by
    interval = gb.time_interval if gb is not None else None
    fields: list[ast.Field] = []
    transforms = []
    for f in stmt.fields:
        c = f.expr
        if isinstance(c, ast.VarRef) and c.name == "time" and \
                not any(isinstance(x.expr, ast.VarRef) and x.expr.name == "time"
                        for x in fields):
            fields.append(f)  # the time column, which _plan_select takes out of the list
            continue
        if not (isinstance(c, ast.Call) and c.name in TRANSFORMS):
            raise UnsupportedStatement("mixing transformation functions with other fields")
        if not c.args:
            raise InfluxQLError(f"invalid number of arguments for {c.name}")
        inner = c.args[0]
        is_agg = isinstance(inner, ast.Call) and inner.name in AGGREGATES
        if interval is not None and not is_agg:
            raise InfluxQLError(f"aggregate function required inside the call to {c.name}")
        if interval is None and not isinstance(inner, ast.VarRef):
            raise InfluxQLError(f"{c.name} aggregate requires a GROUP BY interval"
                                if is_agg else f"expected field argument in {c.name}()")
        param = 0
        if c.name in ("derivative", "non_negative_derivative"):
            if len(c.args) > 2:
                raise InfluxQLError(f"invalid number of arguments for {c.name}")
            if len(c.args) == 2:
                unit = c.args[1]
                if not isinstance(unit, ast.DurationLit) or unit.ns <= 0:
                    raise InfluxQLError(f"second argument to {c.name} must be a duration")
                param = unit.ns
            else:
                param = interval or 1_000_000_000
        elif c.name == "moving_average":
            n = c.args[1] if len(c.args) == 2 else None
            if not (isinstance(n, ast.Literal) and isinstance(n.value, int) and n.value > 1):
                raise InfluxQLError("moving_average window must be greater than 1")
            param = n.value
        elif len(c.args) != 1:
            raise InfluxQLError(f"invalid number of arguments for {c.name}")
        fields.append(ast.Field(inner, f.alias or c.name))
        transforms.append((c.name, param))
    inner_stmt = ast.Select(**{**stmt.__dict__, "fields": fields})
    return inner_stmt, transforms


def plan_select(stmt: ast.Select, tables: list[TableInfo], now_ns: int) -> Plan:
    if stmt.tz is not None:
        raise UnsupportedStatement("the TZ() clause")
    stmt, transforms = _strip_transforms(stmt)
    plan = _plan_select(stmt, tables, now_ns)
    plan.transforms = transforms
    for j, (name, _p) in enumerate(transforms):
        if name in ("derivative", "non_negative_derivative", "moving_average"):
            plan.types[j] = pa.float64()
    if transforms and plan.mode == "selector" and stmt.group_by is not None and \
            stmt.group_by.time_interval is not None:
        plan.mode = "aggregate"
    return plan


def _plan_select(stmt: ast.Select, tables: list[TableInfo], now_ns: int) -> Plan:
    for sel_field in stmt.fields:
        _check_functions(sel_field.expr)
    u = _union(tables)
    gb = stmt.group_by or ast.GroupBy()
    group_tags: set[str] = set(gb.tags)
    if gb.tag_wildcard:
        group_tags |= u.tags
    for pat in gb.tag_regexes:
        rx = _regex(pat)
        group_tags |= {t for t in u.tags if rx.search(t)}
    group_list = sorted(group_tags)
    # `GROUP BY *` or `/regex/`: `SELECT *` expands to the fields only (the reference's
    # rewriter leaves every tag out, not only the grouped ones)
    expanded = _expand_fields(stmt, u, group_list, gb.tag_wildcard or bool(gb.tag_regexes))
    time_name = "time"
    for i, (alias, e, _n) in enumerate(expanded):
        # `time` in the SELECT list is the time column, which always comes first (under
        # its alias, if it has one), not a second column `time_1`
        if isinstance(e, ast.VarRef) and e.name == "time":
            time_name = alias or "time"
            del expanded[i]
            break
    if not expanded:
        raise InfluxQLError("at least 1 non-time field must be queried")
    names = _unique_names([n for _a, _e, n in expanded], time_name)
    fields = [OutField(n, e, isinstance(e, ast.Call) and e.name == "count")
              for n, (_a, e, _d) in zip(names, expanded, strict=True)]

    calls: list[ast.Call] = []
    for f in fields:
        _walk_calls(f.expr, calls)
    outside = [r for f in fields for r in _refs_outside_calls(f.expr)]
    for c in calls:
        _check_call(c, u)
    if not calls:
        mode = "raw"
        if gb.time_interval is not None:
            raise InfluxQLError("GROUP BY requires at least one aggregate function")
        if not any(u.kind(r) in ("field", "unknown") for r in outside):
            raise InfluxQLError("statement must have at least one field in select clause")
    elif outside:
        if len(calls) != 1 or calls[0].name not in SELECTORS:
            raise InfluxQLError("mixing aggregate and non-aggregate queries is not supported")
        mode = "selector"
    elif len(calls) == 1 and calls[0].name in SELECTORS and gb.time_interval is None and \
            isinstance(fields[0].expr, ast.Call):
        mode = "selector"
    else:
        mode = "aggregate"

    conds, rng = split_where(stmt.where, now_ns)
    projected = {r.name for r in outside if u.kind(r) == "tag"} & group_tags
    if mode == "aggregate":
        # tags named in SELECT without an aggregate were refused above
        projected = set()
    types = [_output_type(f.expr, u, mode) for f in fields]
    return Plan(fields=fields, group_tags=group_list, projected_tags=projected, mode=mode,
                rng=rng, conds=conds, selector=calls[0] if mode == "selector" else None,
                tables=tables, types=types, time_name=time_name)


def _output_type(e: ast.Expr, u: TableInfo, mode: str) -> pa.DataType | None:
    """The type of a column that is a plain tag/field (or a selector of one), so that
    measurements lacking it (NULL in SQL) line up with those that have it."""
    if isinstance(e, ast.Call) and e.name in ("first", "last", "min", "max", "percentile",
                                              "sum", "spread") and e.args:
        e = e.args[0]
        if isinstance(e, ast.VarRef) and u.kind(e) == "field":
            return ARROW_TYPES.get(u.fields[e.name])
        return None
    if isinstance(e, ast.Call) and e.name == "count":
        return pa.int64()
    if isinstance(e, ast.Call) and e.name in ("mean", "median", "stddev"):
        return pa.float64()
    if isinstance(e, ast.VarRef):
        kind = u.kind(e)
        if kind == "tag":
            return TAG_TYPE
        if kind == "field" and e.cast not in ("integer", "float", "unsigned"):
            return ARROW_TYPES.get(u.fields[e.name])
    return None


def _check_call(c: ast.Call, u: TableInfo) -> None:
    want = 2 if c.name == "percentile" else 1
    if len(c.args) != want:
        raise InfluxQLError(f"invalid number of arguments for {c.name}, expected {want}, "
                            f"got {len(c.args)}")
    arg = c.args[0]
    if isinstance(arg, ast.Call) and arg.name == "distinct":
        raise UnsupportedStatement(f"{c.name}(distinct())")
    if not isinstance(arg, ast.VarRef):
        raise InfluxQLError(f"expected field argument in {c.name}()")
    if c.name == "percentile":
        p = c.args[1]
        if not (isinstance(p, ast.Literal) and isinstance(p.value, int | float)
                and not isinstance(p.value, bool)):
            raise InfluxQLError("expected float argument in percentile()")
    kind = u.kind(arg)
    if kind == "tag":
        raise InfluxQLError(f"cannot use tag {arg.name!r} in {c.name}(): expected a field")
    if kind == "field" and c.name in _NUMERIC_ONLY:
        ty = u.fields[arg.name]
        if ty not in NUMERIC:
            raise InfluxQLError(f"unsupported {c.name} iterator type: {ty} field "
                                f"{arg.name!r}")


# ---- SQL per measurement ---------------------------------------------------------------


def _agg_sql(c: ast.Call, t: TableInfo) -> str:
    arg = c.args[0]
    assert isinstance(arg, ast.VarRef)
    if t.kind(arg) != "field":
        return "CAST(0 AS BIGINT)" if c.name == "count" else "NULL"
    col = qident(arg.name)
    n = c.name
    if n == "mean":
        return f"avg({col})"
    if n == "median":
        return f"median(CAST({col} AS DOUBLE))"
    if n == "count":
        return f"count({col})"
    if n in ("sum", "min", "max"):
        return f"{n}({col})"
    if n == "first":
        return f'first_value({col} ORDER BY "time" ASC) FILTER (WHERE {col} IS NOT NULL)'
    if n == "last":
        return f'last_value({col} ORDER BY "time" ASC) FILTER (WHERE {col} IS NOT NULL)'
    if n == "spread":
        return f"(max({col}) - min({col}))"
    if n == "stddev":
        if t.fields.get(arg.name) in _INTEGER_TYPES:
            return f"stddev({qident(_shifted(arg.name))})"  # see _shift_source
        return f"stddev(CAST({col} AS DOUBLE))"
    if n == "percentile":
        p = c.args[1]
        assert isinstance(p, ast.Literal)
        idx = f"CAST(floor({float(p.value)!r} / 100.0 * count({col}) + 0.5) AS BIGINT)"
        arr = f"(array_agg({col} ORDER BY {col} ASC) FILTER (WHERE {col} IS NOT NULL))"
        return (f"CASE WHEN {idx} < 1 THEN NULL "
                f"ELSE array_element({arr}, greatest({idx}, 1)) END")
    raise InfluxQLError(f"undefined function {n}()")


_INTEGER_TYPES = ("integer", "uinteger")


def _shifted(field_name: str) -> str:
    return f"__shifted:{field_name}"


def _shift_source(plan: Plan, t: TableInfo, tbl: str, where: str, part_exprs: list[str]
                  ) -> tuple[str, str]:
    """(FROM source, WHERE) for an aggregate query: the table itself, or, when stddev()
    reads an integer field, a subquery that adds that field minus its group's minimum as
    a DOUBLE. A DOUBLE holds integers exactly only up to 2^53: casting values near 2^60
    first makes every deviation 0, while the deviation does not change with the shift and
    the shifted values are small (exact in DECIMAL(20, 0), which holds any int64 or
    uint64 difference)."""
    calls: list[ast.Call] = []
    for f in plan.fields:
        _walk_calls(f.expr, calls)
    names: list[str] = []
    for c in calls:
        arg = c.args[0] if c.args else None
        if (c.name == "stddev" and isinstance(arg, ast.VarRef) and t.kind(arg) == "field"
                and t.fields.get(arg.name) in _INTEGER_TYPES and arg.name not in names):
            names.append(arg.name)
    if not names:
        return tbl, where
    over = f"PARTITION BY {', '.join(part_exprs)}" if part_exprs else ""
    cols = ", ".join(
        f"CAST(CAST({qident(n)} AS DECIMAL(20, 0)) - CAST(min({qident(n)}) OVER ({over}) "
        f"AS DECIMAL(20, 0)) AS DOUBLE) AS {qident(_shifted(n))}" for n in names)
    return f"(SELECT *, {cols} FROM {tbl}{where}) AS __shifted", ""


def _bucket_sql(iv: int, off: int) -> str:
    t = f'(CAST("time" AS BIGINT) - {off})'
    return f"({t} - ((({t} % {iv}) + {iv}) % {iv}) + {off})"


def _where_sql(plan: Plan, t: TableInfo, extra: list[str]) -> str:
    parts = plan.rng.sql() + [condition_sql(c, t) for c in plan.conds] + extra
    return (" WHERE " + " AND ".join(parts)) if parts else ""


def _group_cols(plan: Plan, t: TableInfo) -> list[str]:
    out = []
    for i, g in enumerate(plan.group_tags):
        src = qident(g) if g in t.tags else "CAST(NULL AS VARCHAR)"
        out.append(f"{src} AS __g{i}")
    return out


def _field_filter(plan: Plan, t: TableInfo) -> list[str] | None:
    """`(f1 IS NOT NULL OR ...)` over the fields the query reads; None: no field here."""
    names: list[str] = []
    for f in plan.fields:
        for r in field_refs(f.expr):
            if t.kind(r) == "field" and r.name not in names:
                names.append(r.name)
    if not names:
        return None
    return ["(" + " OR ".join(f"{qident(n)} IS NOT NULL" for n in names) + ")"]


def table_sql(plan: Plan, stmt: ast.Select, t: TableInfo, now_ns: int) -> str | None:
    """The SQL for one measurement, or None when it cannot have rows."""
    ff = _field_filter(plan, t)
    if ff is None:
        return None
    gb = stmt.group_by or ast.GroupBy()
    gcols = _group_cols(plan, t)
    gnames = [f"__g{i}" for i in range(len(plan.group_tags))]
    order_tags = ", ".join(f"{g} ASC NULLS LAST" for g in gnames)
    tbl = qident(t.name)
    if plan.mode == "raw":
        vals = [f"{value_sql(f.expr, t)} AS __c{i}" for i, f in enumerate(plan.fields)]
        sel = ", ".join(['CAST("time" AS BIGINT) AS __time', *gcols, *vals])
        direction = "DESC" if stmt.order_desc else "ASC"
        where = _where_sql(plan, t, ff)
        if plan.transforms:  # ordering and limits come after the transformation
            return f"SELECT {sel} FROM {tbl}{where} ORDER BY {order_tags or '__time'}" + \
                (", __time ASC" if order_tags else "")
        if not gnames:
            sql = f'SELECT {sel} FROM {tbl}{where} ORDER BY "time" {direction}'
            if stmt.limit is not None:
                sql += f" LIMIT {stmt.limit}"
            if stmt.offset:
                sql += f" OFFSET {stmt.offset}"
            return sql
        if stmt.limit is None and not stmt.offset:
            return f"SELECT {sel} FROM {tbl}{where} ORDER BY {order_tags}, __time {direction}"
        part = ", ".join(qident(g) if g in t.tags else "NULL" for g in plan.group_tags)
        rn = f'ROW_NUMBER() OVER (PARTITION BY {part} ORDER BY "time" {direction}) AS __rn'
        lo = stmt.offset or 0
        cond = f"__rn > {lo}" + (f" AND __rn <= {lo + stmt.limit}" if stmt.limit is not None
                                 else "")
        return (f"SELECT * FROM (SELECT {sel}, {rn} FROM {tbl}{where}) WHERE {cond} "
                f"ORDER BY {order_tags}, __time {direction}")

    bucket = (_bucket_sql(gb.time_interval, gb.time_offset) if gb.time_interval is not None
              else None)
    if plan.mode == "aggregate":
        vals = [f"{value_sql(f.expr, t, lambda c: _agg_sql(c, t))} AS __c{i}"
                for i, f in enumerate(plan.fields)]
        time_col = f"{bucket} AS __time" if bucket else \
            f"CAST({plan.rng.lo if plan.rng.lo is not None else 0} AS BIGINT) AS __time"
        sel = ", ".join([time_col, *gcols, *vals])
        group_exprs = ([bucket] if bucket else []) + \
            [qident(g) for g in plan.group_tags if g in t.tags]
        source, where = _shift_source(plan, t, tbl, _where_sql(plan, t, ff), group_exprs)
        sql = f"SELECT {sel} FROM {source}{where}"
        if group_exprs:
            sql += " GROUP BY " + ", ".join(group_exprs)
        else:
            sql += " HAVING count(*) > 0"
        order = ", ".join([*(f"{g} ASC NULLS LAST" for g in gnames), "__time ASC"])
        return sql + f" ORDER BY {order}"

    # selector: the row a lone first/last/min/max/percentile picks, with its time and the
    # other columns the SELECT list names
    sel_call = plan.selector
    assert sel_call is not None
    arg = sel_call.args[0]
    assert isinstance(arg, ast.VarRef)
    if t.kind(arg) != "field":
        return None
    col = qident(arg.name)
    vals = [f"{value_sql(f.expr, t, lambda c: col)} AS __c{i}"
            for i, f in enumerate(plan.fields)]
    part_exprs = ([bucket] if bucket else []) + \
        [qident(g) for g in plan.group_tags if g in t.tags]
    part = ("PARTITION BY " + ", ".join(part_exprs) + " ") if part_exprs else ""
    order = {"first": '"time" ASC', "last": '"time" DESC', "min": f'{col} ASC, "time" ASC',
             "max": f'{col} DESC, "time" ASC',
             "percentile": f'{col} ASC, "time" ASC'}[sel_call.name]
    time_col = f"{bucket} AS __time" if bucket else 'CAST("time" AS BIGINT) AS __time'
    inner_cols = [time_col, *gcols, *vals, f"ROW_NUMBER() OVER ({part}ORDER BY {order}) AS __rn"]
    if sel_call.name == "percentile":
        p = sel_call.args[1]
        assert isinstance(p, ast.Literal)
        inner_cols.append(f"COUNT(*) OVER ({part.strip()}) AS __cnt" if part else
                          "COUNT(*) OVER () AS __cnt")
        pick = f"__rn = CAST(floor({float(p.value)!r} / 100.0 * __cnt + 0.5) AS BIGINT)"
    else:
        pick = "__rn = 1"
    inner = (f"SELECT {', '.join(inner_cols)} FROM {tbl}"
             f"{_where_sql(plan, t, [f'{col} IS NOT NULL'])}")
    outer_cols = ", ".join(["__time", *gnames, *(f"__c{i}" for i in range(len(plan.fields)))])
    order_out = ", ".join([*(f"{g} ASC NULLS LAST" for g in gnames), "__time ASC"])
    return f"SELECT {outer_cols} FROM ({inner}) WHERE {pick} ORDER BY {order_out}"


# ---- post-processing ---------------------------------------------------------------------


def _series_bounds(table: pa.Table, gnames: list[str]) -> list[tuple[int, int]]:
    """Contiguous [start, end) row ranges of equal GROUP BY tag values (table is sorted)."""
    n = table.num_rows
    if n == 0:
        return []
    if not gnames:
        return [(0, n)]
    keys = [
        [("" if v is None else v) for v in table.column(g).to_pylist()] for g in gnames
    ]
    bounds = []
    start = 0
    for i in range(1, n):
        if any(k[i] != k[i - 1] for k in keys):
            bounds.append((start, i))
            start = i
    bounds.append((start, n))
    return bounds


def _fill_series(rows: list[list[Any]], ncols: int, stmt: ast.Select, plan: Plan,
                 counts: list[bool], types: list[pa.DataType], now_ns: int,
                 budget: list[int]) -> list[list[Any]]:
    """rows: [time, v0, v1, ...] sorted by time, one per bucket present. Fill the gaps."""
    gb = stmt.group_by
    assert gb is not None and gb.time_interval is not None
    iv, off = gb.time_interval, gb.time_offset

    def bucket(ts: int) -> int:
        return ts - ((ts - off) % iv)

    present = {r[0]: r for r in rows}
    start = bucket(plan.rng.lo) if plan.rng.lo is not None else rows[0][0]
    hi = plan.rng.hi if plan.rng.hi is not None else now_ns - 1
    end = bucket(hi)
    times: set[int] = set(present)
    if end >= start:
        nb = (end - start) // iv + 1
        budget[0] -= nb
        if budget[0] < 0:
            raise InfluxQLError(
                f"GROUP BY time() would fill more than {MAX_FILL_BUCKETS} buckets; narrow "
                "the time range or use a larger interval or fill(none)")
        times.update(range(start, end + 1, iv))
    out: list[list[Any]] = []
    for ts in sorted(times):
        r = present.get(ts)
        out.append(list(r) if r is not None else [ts] + [None] * ncols)
    for j in range(ncols):
        col = j + 1
        if stmt.fill == "null":
            if counts[j]:
                for r in out:
                    if r[0] not in present:
                        r[col] = 0
        elif stmt.fill == "value":
            v = stmt.fill_value
            if pa.types.is_integer(types[j]) and isinstance(v, float):
                v = int(v)
            for r in out:
                if r[col] is None:
                    r[col] = v
        elif stmt.fill == "previous":
            prev = None
            for r in out:
                if r[col] is None:
                    r[col] = prev
                else:
                    prev = r[col]
        elif stmt.fill == "linear":
            known = [(i, r[0], r[col]) for i, r in enumerate(out)
                     if r[col] is not None and not isinstance(r[col], bool | str)]
            for (i1, t1, v1), (i2, t2, v2) in itertools.pairwise(known):
                for i in range(i1 + 1, i2):
                    ts = out[i][0]
                    if isinstance(v1, int) and isinstance(v2, int):
                        # the reference's integer slope (Go's division truncates toward
                        # zero), in exact integers: a float division rounds beyond 2^53
                        dv, dt = v2 - v1, t2 - t1
                        m = (-(-dv // dt) if dv < 0 else dv // dt) if dt else 0
                        out[i][col] = m * (ts - t1) + v1
                    else:
                        out[i][col] = (v2 - v1) / (t2 - t1) * (ts - t1) + v1
    return out


def _transform_series(rows: list[list[Any]], transforms: list[tuple[str, int]]
                      ) -> list[list[Any]]:
    """Apply derivative/difference/cumulative_sum/moving_average to each column of one
    series (rows sorted by time); rows where every result is null are dropped."""
    out = [[r[0]] + [None] * len(transforms) for r in rows]
    for j, (name, param) in enumerate(transforms):
        col = j + 1
        points = [(i, r[0], r[col]) for i, r in enumerate(rows)
                  if r[col] is not None and not isinstance(r[col], bool | str)]
        if name == "cumulative_sum":
            total: Any = 0
            for i, _t, v in points:
                total += v
                out[i][col] = total
            continue
        if name == "moving_average":
            for k in range(param - 1, len(points)):
                window = [v for _i, _t, v in points[k - param + 1:k + 1]]
                out[points[k][0]][col] = sum(window) / param
            continue
        for (_i1, t1, v1), (i2, t2, v2) in itertools.pairwise(points):
            if name in ("difference", "non_negative_difference"):
                d = v2 - v1
            else:
                if t2 == t1:
                    continue
                d = (v2 - v1) * param / (t2 - t1)
            if name.startswith("non_negative") and d < 0:
                continue
            out[i2][col] = d
    return [r for r in out if any(v is not None for v in r[1:])]


def _finish_table(raw: pa.Table, plan: Plan, stmt: ast.Select, measurement: str,
                  now_ns: int, budget: list[int]) -> pa.Table:
    """The measurement's rows in output shape, fill and per-series LIMIT applied."""
    gnames = [f"__g{i}" for i in range(len(plan.group_tags))]
    cnames = [f"__c{i}" for i in range(len(plan.fields))]
    gb = stmt.group_by
    by_time = gb is not None and gb.time_interval is not None
    if plan.mode != "raw" or plan.transforms:
        bounds = _series_bounds(raw, gnames)
        types = [raw.schema.field(c).type for c in cnames]
        counts = [f.is_count for f in plan.fields]
        cols_py = {c: raw.column(c).to_pylist() for c in ["__time", *gnames, *cnames]}
        out_rows: list[list[Any]] = []
        out_tags: list[list[Any]] = []
        for s, e in bounds:
            rows = [[cols_py["__time"][i], *(cols_py[c][i] for c in cnames)]
                    for i in range(s, e)]
            if by_time and stmt.fill != "none" and rows:
                rows = _fill_series(rows, len(cnames), stmt, plan, counts, types, now_ns,
                                    budget)
            if plan.transforms:
                rows = _transform_series(rows, plan.transforms)
            if stmt.order_desc:
                rows.reverse()
            lo = stmt.offset or 0
            rows = rows[lo:lo + stmt.limit] if stmt.limit is not None else rows[lo:]
            tags = [cols_py[g][s] for g in gnames]
            for r in rows:
                out_rows.append(r)
                out_tags.append(tags)
        arrays: dict[str, pa.Array] = {
            "__time": pa.array([r[0] for r in out_rows], pa.int64())}
        for j, g in enumerate(gnames):
            arrays[g] = pa.array([t[j] for t in out_tags], pa.string())
        for j, c in enumerate(cnames):
            want = plan.types[j] if plan.types[j] is not None else types[j]
            arrays[c] = _py_column([r[j + 1] for r in out_rows], want)
        raw = pa.table(arrays) if out_rows else pa.table(
            {k: pa.array([], raw.schema.field(k).type if not k.startswith("__g")
                         else pa.string()) for k in ["__time", *gnames, *cnames]})
    n = raw.num_rows
    cols: list[tuple[str, pa.Array | pa.ChunkedArray]] = [
        (MEASUREMENT, pa.DictionaryArray.from_arrays(pa.array([0] * n, pa.int32()),
                                                     pa.array([measurement]))),
        (plan.time_name, pc.cast(raw.column("__time"), pa.int64()).cast(TIME_TYPE)),
    ]
    projected_names = {f.name for f in plan.fields}
    for i, g in enumerate(plan.group_tags):
        if g in plan.projected_tags and g in projected_names:
            continue
        cols.append((g, _as_tag(raw.column(gnames[i]))))
    for i, f in enumerate(plan.fields):
        col = raw.column(cnames[i])
        want = plan.types[i]
        if want is not None and col.type != want:
            # an integer that becomes a float (mean, a fill value) rounds to the nearest
            # double: a safe cast would refuse values beyond 2^53 and leave the wrong type
            to_float = pa.types.is_integer(col.type) and pa.types.is_floating(want)
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                col = col.cast(want, safe=not to_float)
        cols.append((f.name, _normalize(col)))
    return pa.table(dict(cols))


def _py_column(vals: list[Any], want: pa.DataType | None) -> pa.Array:
    """Computed Python values (exact ints, floats) as one Arrow column of type `want`.

    pyarrow silently truncates floats put in an integer array (a derivative of an integer
    field became 0) and refuses ints beyond 2^53 in a float64 one, so both are done here:
    floats stay floats, integers stay exact in the first 64-bit type that holds them."""
    if want is not None and pa.types.is_null(want):
        want = None
    numbers = [v for v in vals if v is not None]
    # another measurement's column of the same name may hold strings or booleans
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers)
    is_float = numeric and want is not None and pa.types.is_floating(want)
    is_int = numeric and want is not None and pa.types.is_integer(want)
    if is_float or (is_int and any(isinstance(v, float) for v in numbers)):
        return pa.array([None if v is None else float(v) for v in vals], pa.float64())
    if is_int:
        for t in (want, pa.int64(), pa.uint64()):  # a difference of uint64s can be < 0
            try:
                return pa.array(vals, t)
            except (OverflowError, pa.ArrowInvalid):
                continue
        # beyond 64 bits (a cumulative sum): no integer type holds it, the nearest double
        return pa.array([None if v is None else float(v) for v in vals], pa.float64())
    try:
        return pa.array(vals, want)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array(vals)


def _as_tag(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(col.type):
        return col.cast(TAG_TYPE)
    return col.cast(pa.string()).dictionary_encode().cast(TAG_TYPE)


def _normalize(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Plain Arrow types out: no string views, no null type."""
    t = col.type
    if t == pa.string_view() or t == pa.large_string():
        return col.cast(pa.string())
    if pa.types.is_null(t):
        return col.cast(pa.float64())
    return col


def _apply_slimit(table: pa.Table, group_tags: list[str], stmt: ast.Select) -> pa.Table:
    if stmt.slimit is None and not stmt.soffset:
        return table
    keys = [table.column(MEASUREMENT).to_pylist()] + [
        table.column(g).to_pylist() for g in group_tags if g in table.column_names]
    series_idx = []
    cur = -1
    prev = None
    for i in range(table.num_rows):
        k = tuple(col[i] for col in keys)
        if k != prev:
            cur += 1
            prev = k
        series_idx.append(cur)
    lo = stmt.soffset or 0
    hi = lo + stmt.slimit if stmt.slimit is not None else None
    mask = [s >= lo and (hi is None or s < hi) for s in series_idx]
    return table.filter(pa.array(mask, pa.bool_()))


async def run_select(stmt: ast.Select, tables: list[TableInfo], run_sql: RunSql,
                     now_ns: int) -> InfluxQLResult:
    plan = plan_select(stmt, tables, now_ns) if tables else None
    if plan is None:
        cols = [(MEASUREMENT, TAG_TYPE), ("time", TIME_TYPE)]
        return InfluxQLResult(pa.schema(cols).empty_table())
    parts: list[pa.Table] = []
    budget = [MAX_FILL_BUCKETS]
    if not plan.rng.empty:
        for t in sorted(tables, key=lambda t: t.name):
            sql = table_sql(plan, stmt, t, now_ns)
            if sql is None:
                continue
            raw = await run_sql(sql)
            if raw.num_rows == 0:
                continue
            parts.append(_finish_table(raw, plan, stmt, t.name, now_ns, budget))
    if not parts:
        fields = [(MEASUREMENT, TAG_TYPE), (plan.time_name, TIME_TYPE)]
        names = {f.name for f in plan.fields}
        fields += [(g, TAG_TYPE) for g in plan.group_tags
                   if not (g in plan.projected_tags and g in names)]
        fields += [(f.name, pa.float64()) for f in plan.fields]
        table = pa.schema(fields).empty_table()
    elif len(parts) == 1:
        table = parts[0]
    else:
        table = pa.concat_tables(parts, promote_options="permissive")
    table = _apply_slimit(table, plan.group_tags, stmt)
    return InfluxQLResult(table, plan.group_tags, plan.projected_tags)
