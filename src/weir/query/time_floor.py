"""The earliest time a query can read from each table, found in its optimised plan.

Dashboards ask for the last minutes of tables whose Parquet files span days; each file a
query's plan names is opened (its footer read, its scan planned) even when its statistics
then prune every row. A first planning pass over empty stand-ins of the tables finds,
per table, the lower bound its filters put on `time` (`time >= now() - interval '5
minutes'`, `time > '2026-12-03T00:00:00Z'`, `BETWEEN`), and files wholly older are left
out of the real plan.

Bounds come only from conjuncts (`AND`) of a filter directly on a table's scan or
pushed into it, so a file left out can hold no row the query wants. A lower bound is
safe even from `now()`: `now()` in the real plan is later than in the first pass, which
makes its lower bound later still, never earlier. An upper bound (`time < '...'`) is
safe only when the statement's times are the same in both passes, so `time_ceilings`
is asked only for statements that name no clock function (`has_clock`); a TSBS-style
window of literal times then leaves out the files after it as well as those before.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pyarrow as pa
from datafusion import Expr, LogicalPlan
from datafusion.expr import BinaryExpr, Column, Filter, Literal, TableScan

__all__ = ["has_clock", "time_ceilings", "time_floors", "timestamp_ns", "user_table_name"]

#: `time <op> literal` ops that bound time from below (and their mirror images)
_LOWER = {">=", ">"}
_MIRRORED = {"<=", "<"}
_TIME = re.compile(r"\btime\b", re.IGNORECASE)
#: SQL functions whose value is the time of planning (DataFusion folds them to literals)
_CLOCK = re.compile(r"\b(now|current_timestamp|current_date|current_time|today|"
                    r"localtimestamp|localtime)\b", re.IGNORECASE)


def may_bound_time(sql: str) -> bool:
    """Whether `sql` names a `time` column at all (a word match): a statement that does
    not cannot bound it, and the planning pass that finds bounds is not worth its cost."""
    return _TIME.search(sql) is not None


def has_clock(sql: str) -> bool:
    """Whether `sql` may name a clock function (a word match: a column or string of that
    name counts too, which only costs the ceiling)."""
    return _CLOCK.search(sql) is not None


def time_floors(plan: LogicalPlan, user_schema: str) -> dict[str, int]:
    """Table name -> the earliest time (ns) any scan of it in `plan` can keep; a table
    scanned anywhere without such a bound is not in the result."""
    return _bounds(plan, user_schema, _lower_bound, max, min)


def time_ceilings(plan: LogicalPlan, user_schema: str) -> dict[str, int]:
    """Table name -> the latest time (ns, inclusive) any scan of it in `plan` can keep;
    a table scanned anywhere without such a bound is not in the result. Only for a plan
    whose times are literals of the statement (not `has_clock`)."""
    return _bounds(plan, user_schema, _upper_bound, min, max)


def _bounds(plan: LogicalPlan, user_schema: str, bound: Callable[[Expr], int | None],
            tighter: Callable[[int, int], int], looser: Callable[[int, int], int]
            ) -> dict[str, int]:
    """Per table, `bound` of each scan's filters (the `tighter` of a scan's bounds), the
    `looser` over its scans; a table with an unbounded scan is left out."""
    found: dict[str, int] = {}
    unbounded: set[str] = set()

    def visit(node: LogicalPlan, b: int | None) -> None:
        v = node.to_variant()
        if isinstance(v, TableScan):
            name = user_table_name(v.table_name(), user_schema)
            if name is None:
                return
            # filters a provider took into its scan (a pyarrow dataset's) count as well
            for pushed in v.filters():
                more = bound(pushed)
                if more is not None:
                    b = more if b is None else tighter(b, more)
            if b is None:
                unbounded.add(name)
            else:
                found[name] = looser(found.get(name, b), b)
            return
        inputs = node.inputs()
        if isinstance(v, Filter) and len(inputs) == 1 \
                and isinstance(inputs[0].to_variant(), TableScan):
            visit(inputs[0], bound(v.predicate()))
            return
        for child in inputs:
            visit(child, None)

    visit(plan, None)
    return {name: b for name, b in found.items() if name not in unbounded}


def user_table_name(scanned: str, user_schema: str) -> str | None:
    """`cpu`, `iox.cpu` or `public.iox.cpu` -> `cpu`; a system or information_schema
    table -> None."""
    parts = scanned.split(".")
    if len(parts) == 1:
        return parts[0]
    if parts[-2] == user_schema:
        return parts[-1]
    return None


def _lower_bound(predicate: Expr) -> int | None:
    """The latest lower bound on `time` among the predicate's top-level conjuncts."""
    return _tightest(predicate, _time_at_least, max)


def _upper_bound(predicate: Expr) -> int | None:
    """The earliest upper bound (inclusive) on `time` among the predicate's top-level
    conjuncts."""
    return _tightest(predicate, _time_at_most, min)


def _tightest(predicate: Expr, bound_of: Callable[[Expr], int | None],
              pick: Callable[[int, int], int]) -> int | None:
    best: int | None = None
    for conjunct in _conjuncts(predicate):
        b = bound_of(conjunct)
        if b is not None:
            best = b if best is None else pick(best, b)
    return best


def _time_at_most(e: Expr) -> int | None:
    """t for `time <= t` or `t >= time`, t - 1 for `time < t` or `t > time`; else None."""
    v = e.to_variant()
    if not isinstance(v, BinaryExpr):
        return None
    op, left, right = v.op(), v.left(), v.right()
    if op in _MIRRORED and _is_time(left):
        t, strict = _timestamp(right), op == "<"
    elif op in _LOWER and _is_time(right):
        t, strict = _timestamp(left), op == ">"
    else:
        return None
    return None if t is None else t - 1 if strict else t


def _conjuncts(e: Expr) -> list[Expr]:
    v = e.to_variant()
    if isinstance(v, BinaryExpr) and v.op().upper() == "AND":
        return [*_conjuncts(v.left()), *_conjuncts(v.right())]
    return [e]


def _time_at_least(e: Expr) -> int | None:
    """t for `time >= t`, `time > t`, `t <= time` or `t < time`; else None."""
    v = e.to_variant()
    if not isinstance(v, BinaryExpr):
        return None
    op, left, right = v.op(), v.left(), v.right()
    if op in _LOWER and _is_time(left):
        return _timestamp(right)
    if op in _MIRRORED and _is_time(right):
        return _timestamp(left)
    return None


def _is_time(e: Expr) -> bool:
    v = e.to_variant()
    return isinstance(v, Column) and v.name() == "time"


def _timestamp(e: Expr) -> int | None:
    if not isinstance(e.to_variant(), Literal):
        return None
    return timestamp_ns(e.python_value())


def timestamp_ns(value: object) -> int | None:
    """A timestamp scalar of any unit as ns since the epoch; None for null or another
    kind of value."""
    if not isinstance(value, pa.TimestampScalar) or not value.is_valid:
        return None
    scalar: pa.TimestampScalar = value
    if scalar.type.unit != "ns":
        scalar = scalar.cast(pa.timestamp("ns", scalar.type.tz))
    ns = scalar.value
    return ns if isinstance(ns, int) else None
