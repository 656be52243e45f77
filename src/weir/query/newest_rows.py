"""A query that wants each group's newest row reads only the newest data.

`SELECT DISTINCT ON (hostname) * FROM cpu ORDER BY hostname, time DESC` (TSBS's
`lastpoint`) is planned by DataFusion as an Aggregate grouped by `hostname` of
`first_value(x) ORDER BY [hostname, time DESC]` per column: it reads and orders every row
of the table to keep one per host. Each group's answer is its row of greatest time, so no
row older than the oldest of those newest times is in the answer: `min over groups of
max(time)` is a lower bound on `time` that leaves the result as it is. A first aggregate
(two columns, no ordering, over the same input plan, so over exactly the rows the query
sees) finds it; the table's files and buffered batches wholly before it are then left out
as the time-bounds pass leaves out those before a `WHERE time >= ...`. Hosts that report
every 10 s put it 10 s before the newest row: the query reads the buffer's newest batch
instead of a day of Parquet.

The shape recognised (anything else is left alone):

* an Aggregate over a user table's scan, with only Filters (any predicate) and a
  SubqueryAlias between them;
* grouped by plain columns (or by nothing: one group);
* each aggregate `first_value(x) ORDER BY [<group columns>, time DESC, ...]`,
  `last_value(x) ORDER BY [<group columns>, time ASC, ...]` or `max(time)`, none of them
  DISTINCT or FILTERed (their canonical names must be exactly that);
* and the table scanned nowhere else in the statement, nor any subquery in it (the bound
  applies to the table, not to one of its scans), nor `random()` or `uuid()` (the first
  aggregate would see other rows).

Rows tied at a group's newest time are all at or after the bound, so whichever of them
DataFusion picks is still there to pick.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from datafusion import Expr, LogicalPlan, SessionContext, col
from datafusion import functions as f
from datafusion.expr import Aggregate, AggregateFunction, Column, Filter, SubqueryAlias, TableScan

from weir.query.time_floor import timestamp_ns, user_table_name

__all__ = ["NewestPerGroup", "newest_floors", "newest_per_group"]

#: functions whose every call gives another value
_VOLATILE = re.compile(r"\b(random|uuid)\(", re.IGNORECASE)


@dataclass(frozen=True)
class NewestPerGroup:
    """An Aggregate that keeps each group's newest row of `table`, known by `signature`
    (its group and aggregate expressions as DataFusion names them) in a plan of the same
    statement over the real tables."""

    table: str
    signature: str
    #: the group columns' names when the Aggregate groups every row of the table (no
    #: filter): its groups' newest times can then be read from the table's files and
    #: batches directly (query.newest_times); None otherwise
    columns: tuple[str, ...] | None = None


def newest_per_group(plan: LogicalPlan, user_schema: str) -> list[NewestPerGroup]:
    """The Aggregates of `plan` (planned over plain scans of the tables: empty stand-ins)
    that keep each group's newest row, one per table at most (the shape is in the module's
    docstring); [] when the plan has a subquery."""
    scans: dict[str, int] = {}
    found: list[NewestPerGroup] = []

    def visit(node: LogicalPlan) -> None:
        v = node.to_variant()
        if isinstance(v, TableScan):
            name = user_table_name(v.table_name(), user_schema)
            if name is not None:
                scans[name] = scans.get(name, 0) + 1
            return
        if isinstance(v, Aggregate):
            match = _newest_rows_aggregate(node, v, user_schema)
            if match is not None:
                found.append(match)
        for child in node.inputs():
            visit(child)

    visit(plan)
    found = [m for m in found if scans.get(m.table) == 1]
    if not found:
        return found
    # a subquery's plan is not among the inputs, and a random filter picks other rows in
    # the first aggregate than in the query: the plan's text shows either
    text = plan.display_indent()
    if _VOLATILE.search(text) or any(line.lstrip().startswith("Subquery:")
                                     for line in text.split("\n")):
        return []
    return found


def newest_floors(ctx: SessionContext, plan: LogicalPlan,
                  found: list[NewestPerGroup]) -> dict[str, int]:
    """Per table of `found`, the oldest of its groups' newest times (ns), read in `ctx` by
    an aggregate over the rows that `found`'s Aggregate groups in `plan` (the statement
    planned in `ctx` over the real tables: a table there is a view whose plan DataFusion
    inlines, so its Aggregate is known by its signature). A table whose Aggregate is not
    there exactly once, or that has no rows, gets none."""
    wanted = {f.signature: f.table for f in found}
    seen: dict[str, list[tuple[LogicalPlan, Aggregate]]] = {}

    def visit(node: LogicalPlan) -> None:
        v = node.to_variant()
        if isinstance(v, Aggregate):
            signature = _signature(v)
            if signature in wanted:
                seen.setdefault(signature, []).append((node, v))
        for child in node.inputs():
            visit(child)

    visit(plan)
    floors: dict[str, int] = {}
    for signature, nodes in seen.items():
        if len(nodes) == 1:
            floor = _oldest_newest_time(ctx, *nodes[0])
            if floor is not None:
                floors[wanted[signature]] = floor
    return floors


def _oldest_newest_time(ctx: SessionContext, node: LogicalPlan, agg: Aggregate) -> int | None:
    (rows,) = node.inputs()
    per_group = ctx.create_dataframe_from_logical_plan(rows).aggregate(
        [Expr(e) for e in agg.group_by_exprs()], [f.max(col("time")).alias("newest")])
    batches = per_group.aggregate([], [f.min(col("newest")).alias("floor")]).collect()
    return timestamp_ns(batches[0].column(0)[0]) if batches and batches[0].num_rows else None


def _variant(e: Expr) -> object:
    """`e.to_variant()`, or None for the kinds the bindings cannot convert (a scalar
    function call: `date_bin(...)`)."""
    try:
        return e.to_variant()
    except (ValueError, NotImplementedError):
        return None


def _signature(agg: Aggregate) -> str:
    return "\n".join([*(Expr(e).canonical_name() for e in agg.group_by_exprs()), "--",
                      *(Expr(e).canonical_name() for e in agg.aggregate_exprs())])


def _newest_rows_aggregate(node: LogicalPlan, agg: Aggregate,
                           user_schema: str) -> NewestPerGroup | None:
    (below,) = node.inputs()
    scan, qualifier, filtered = _scan_under(below)
    if scan is None:
        return None
    table = user_table_name(scan.table_name(), user_schema)
    if table is None:
        return None
    qualifier = qualifier or scan.table_name()
    groups = [Expr(e) for e in agg.group_by_exprs()]
    if not all(isinstance(_variant(g), Column) for g in groups):
        return None
    group_names = [g.canonical_name() for g in groups]
    time_name = f"{qualifier}.time"
    if not all(_keeps_newest(Expr(e), group_names, time_name) for e in agg.aggregate_exprs()):
        return None
    whole = not filtered and not scan.filters()
    columns = tuple(_column_name(g) for g in groups) if whole else None
    return NewestPerGroup(table, _signature(agg), columns)


def _column_name(e: Expr) -> str:
    v = _variant(e)
    assert isinstance(v, Column)  # (checked by the caller)
    name: str = v.name()
    return name


def _scan_under(node: LogicalPlan) -> tuple[TableScan | None, str | None, bool]:
    """The TableScan under Filters and at most one SubqueryAlias, that alias, and whether
    a Filter was on the way."""
    alias: str | None = None
    filtered = False
    while True:
        v = node.to_variant()
        if isinstance(v, TableScan):
            return v, alias, filtered
        if isinstance(v, SubqueryAlias):
            if alias is not None:
                return None, None, filtered
            alias = v.alias()
        elif isinstance(v, Filter):
            filtered = True
        else:
            return None, None, filtered
        (node,) = node.inputs()


def _keeps_newest(e: Expr, group_names: list[str], time_name: str) -> bool:
    """Whether aggregate `e`'s value is taken from its group's newest row (or is that
    row's time)."""
    v = _variant(e)
    if not isinstance(v, AggregateFunction) or v.is_distinct():
        return False
    kind, args, name = v.aggregate_type(), v.args(), e.canonical_name()
    if len(args) != 1:
        return False
    arg = Expr(args[0]) if not isinstance(args[0], Expr) else args[0]
    if kind == "max":
        return name == f"max({time_name})" and arg.canonical_name() == time_name
    direction = {"first_value": "DESC", "last_value": "ASC"}.get(kind)
    if direction is None:
        return False
    prefix = f"{kind}({arg.canonical_name()}) ORDER BY ["
    if not (name.startswith(prefix) and name.endswith("]")):
        return False
    rest = name[len(prefix):-1]
    # the group columns (constant within a group) in any order and direction, then time
    keys = [f"{g} {d} NULLS {n}" for g in group_names for d in ("ASC", "DESC")
            for n in ("FIRST", "LAST")]
    newest = [f"{time_name} {direction} NULLS {n}" for n in ("FIRST", "LAST")]
    while True:
        if any(rest == t or rest.startswith(t + ", ") for t in newest):
            return True
        key = next((k for k in keys if rest.startswith(k + ", ")), None)
        if key is None:
            return False
        rest = rest[len(key) + 2:]
