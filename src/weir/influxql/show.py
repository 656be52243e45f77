"""SHOW DATABASES / RETENTION POLICIES / MEASUREMENTS / TAG KEYS / TAG VALUES / FIELD KEYS.

Shapes follow InfluxDB 3 (IOx): a leading `iox::measurement` column whose value names
the v1 series (`databases`, `measurements`, `retention_policies`, or the measurement).
Unlike the reference, SHOW TAG VALUES and tag-key/measurement filters look at all the
data unless the WHERE clause restricts time (the reference silently looks back only 24h).
SHOW TAG VALUES takes its answer from a distinct-value cache when one holds exactly it (a
WHERE of `tag = 'value'` conditions on the cache's columns and a time range storage says
the cache covers; weir.ports.TagValueCache), else from the data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from weir.influxql import ast
from weir.influxql.errors import InfluxQLError
from weir.influxql.exprs import TableInfo, condition_sql, qident, split_where
from weir.influxql.result import MEASUREMENT, TAG_TYPE, InfluxQLResult
from weir.influxql.select import RunSql
from weir.influxql.timeutil import format_v1_duration

#: a distinct-value cache's answer for one measurement (weir.ports.TagValueCache bound to
#: the database): (table, tag, tag = value conditions, since, until) -> the tag's values, or
#: None when no cache holds exactly them
CachedTagValues = Callable[[str, str, Mapping[str, str], int | None, int | None],
                           list[str] | None]

_FIELD_TYPE_NAMES = {"float": "float", "integer": "integer", "uinteger": "unsigned",
                     "string": "string", "boolean": "boolean"}


def _dict(values: list[str]) -> pa.Array:
    return pa.array(values, pa.string()).dictionary_encode().cast(TAG_TYPE)


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise InfluxQLError(f"invalid regular expression /{pattern}/: {e}") from None


def _page(items: list[Any], limit: int | None, offset: int | None) -> list[Any]:
    lo = offset or 0
    return items[lo:lo + limit] if limit is not None else items[lo:]


def show_databases(names: list[str]) -> InfluxQLResult:
    """The v1 API's: the `databases` series, in the order they were created."""
    return InfluxQLResult(pa.table({
        MEASUREMENT: _dict(["databases"] * len(names)),
        "name": pa.array(names, pa.string()),
    }))


def show_databases_v3(live: list[str], deleted: list[str]) -> InfluxQLResult:
    """`/api/v3/query_influxql`'s: `iox::database` and `deleted`, the soft-deleted ones
    (by their `<name>-<deletion time>`) after the live ones, each sorted by name."""
    names = sorted(live) + sorted(deleted)
    return InfluxQLResult(pa.table({
        "iox::database": pa.array(names, pa.string()),
        "deleted": pa.array([False] * len(live) + [True] * len(deleted), pa.bool_()),
    }))


def show_retention_policies_v1(db: str, retention_ns: int | None) -> InfluxQLResult:
    """The v1 API's: one policy per database, named after it, the default."""
    return InfluxQLResult(pa.table({
        MEASUREMENT: _dict(["retention_policies"]),
        "name": pa.array([db], pa.string()),
        "duration": pa.array([format_v1_duration(retention_ns)], pa.string()),
        "default": pa.array([True], pa.bool_()),
    }))


def show_retention_policies_v3(dbs: list[tuple[str, int | None]]) -> InfluxQLResult:
    """`/api/v3/query_influxql`'s: `iox::database`, `name` (the policy: `autogen`, or the
    `rp` of a `db/rp` database) and `duration`, sorted by database."""
    rows = []
    for name, retention_ns in sorted(dbs):
        db, _, rp = name.partition("/")
        rows.append((db, rp or "autogen", format_v1_duration(retention_ns)))
    return InfluxQLResult(pa.table({
        "iox::database": pa.array([r[0] for r in rows], pa.string()),
        "name": pa.array([r[1] for r in rows], pa.string()),
        "duration": pa.array([r[2] for r in rows], pa.string()),
    }))


def show_retention_policies(dbs: list[tuple[str, int | None]]) -> InfluxQLResult:
    """The InfluxQL planner's (Flight): one `autogen`-style row per database (`db/rp`
    names give the rp)."""
    rows = []
    for name, retention_ns in sorted(dbs):
        rp = name.split("/", 1)[1] if "/" in name else "autogen"
        rows.append((rp, format_v1_duration(retention_ns)))
    return InfluxQLResult(pa.table({
        MEASUREMENT: _dict(["retention_policies"] * len(rows)),
        "name": pa.array([r[0] for r in rows], pa.string()),
        "duration": pa.array([r[1] for r in rows], pa.string()),
        "shardGroupDuration": pa.array(["168h0m0s"] * len(rows), pa.string()),
        "replicaN": pa.array([1] * len(rows), pa.int64()),
        "default": pa.array([True] * len(rows), pa.bool_()),
    }))


def select_tables(tables: dict[str, TableInfo], sources: list[ast.Measurement]
                  ) -> list[TableInfo]:
    """The measurements a FROM clause names (all of them when there is none), sorted."""
    if not sources:
        return [tables[n] for n in sorted(tables)]
    picked: dict[str, TableInfo] = {}
    for m in sources:
        if m.regex is not None:
            rx = _regex(m.regex)
            picked.update({n: t for n, t in tables.items() if rx.search(n)})
        elif m.name in tables:
            picked[m.name] = tables[m.name]
    return [picked[n] for n in sorted(picked)]


async def _has_rows(t: TableInfo, where: ast.Expr | None, run_sql: RunSql, now_ns: int
                    ) -> bool:
    conds, rng = split_where(where, now_ns)
    if rng.empty:
        return False
    parts = rng.sql() + [condition_sql(c, t) for c in conds]
    w = (" WHERE " + " AND ".join(parts)) if parts else ""
    r = await run_sql(f"SELECT 1 AS x FROM {qident(t.name)}{w} LIMIT 1")
    rows: int = r.num_rows
    return rows > 0


async def show_measurements(st: ast.ShowMeasurements, tables: dict[str, TableInfo],
                            run_sql: RunSql, now_ns: int) -> InfluxQLResult:
    names = sorted(tables)
    if st.name_eq is not None:
        names = [n for n in names if n == st.name_eq]
    if st.name_regex is not None:
        rx = _regex(st.name_regex)
        names = [n for n in names if rx.search(n)]
    if st.where is not None:
        names = [n for n in names if await _has_rows(tables[n], st.where, run_sql, now_ns)]
    names = _page(names, st.limit, st.offset)
    return InfluxQLResult(pa.table({
        MEASUREMENT: _dict(["measurements"] * len(names)),
        "name": _dict(names),
    }))


async def show_tag_keys(st: ast.ShowTagKeys, tables: dict[str, TableInfo], run_sql: RunSql,
                        now_ns: int) -> InfluxQLResult:
    ms: list[str] = []
    keys: list[str] = []
    for t in select_tables(tables, st.sources):
        tags = sorted(t.tags)
        if st.where is not None and tags:
            conds, rng = split_where(st.where, now_ns)
            if rng.empty:
                continue
            parts = rng.sql() + [condition_sql(c, t) for c in conds]
            w = (" WHERE " + " AND ".join(parts)) if parts else ""
            counts = ", ".join(f"count({qident(k)}) AS __k{i}" for i, k in enumerate(tags))
            r = (await run_sql(f"SELECT {counts} FROM {qident(t.name)}{w}")).to_pylist()
            row = r[0] if r else {}
            tags = [k for i, k in enumerate(tags) if (row.get(f"__k{i}") or 0) > 0]
        for k in _page(tags, st.limit, st.offset):
            ms.append(t.name)
            keys.append(k)
    return InfluxQLResult(pa.table({MEASUREMENT: _dict(ms), "tagKey": _dict(keys)}))


def _match_keys(st: ast.ShowTagValues, tags: list[str]) -> list[str]:
    op, vals = st.key_op, st.key_values
    if op == "=":
        return [k for k in tags if k == vals[0]]
    if op == "!=":
        return [k for k in tags if k != vals[0]]
    if op == "in":
        return [k for k in tags if k in vals]
    rx = _regex(vals[0])
    if op == "=~":
        return [k for k in tags if rx.search(k)]
    return [k for k in tags if not rx.search(k)]


def _tag_equalities(conds: list[ast.Expr], t: TableInfo) -> dict[str, str] | None:
    """`tag = 'value'` conditions (ANDed) as {tag: value}; None if there is anything else."""
    equal: dict[str, str] = {}
    for c in conds:
        while isinstance(c, ast.Paren):
            c = c.expr
        if not isinstance(c, ast.BinOp) or c.op != "=":
            return None
        ref, lit = (c.left, c.right) if isinstance(c.left, ast.VarRef) else (c.right, c.left)
        if not isinstance(ref, ast.VarRef) or not isinstance(lit, ast.Literal) \
                or not isinstance(lit.value, str) or t.kind(ref) != "tag" \
                or equal.get(ref.name, lit.value) != lit.value:
            return None
        equal[ref.name] = lit.value
    return equal


async def show_tag_values(st: ast.ShowTagValues, tables: dict[str, TableInfo],
                          run_sql: RunSql, now_ns: int,
                          cached: CachedTagValues | None = None) -> InfluxQLResult:
    ms: list[str] = []
    ks: list[str] = []
    vs: list[str] = []
    for t in select_tables(tables, st.sources):
        keys = _match_keys(st, sorted(t.tags))
        if not keys:
            continue
        conds, rng = split_where(st.where, now_ns)
        if rng.empty:
            continue
        base = rng.sql() + [condition_sql(c, t) for c in conds]
        equal = _tag_equalities(conds, t) if cached is not None else None
        for k in keys:
            values = None
            if cached is not None and equal is not None:
                values = cached(t.name, k, equal, rng.lo, rng.hi)
            if values is None:
                parts = [*base, f"{qident(k)} IS NOT NULL"]
                sql = (f"SELECT DISTINCT CAST({qident(k)} AS VARCHAR) AS v FROM "
                       f"{qident(t.name)} WHERE {' AND '.join(parts)} ORDER BY v")
                values = (await run_sql(sql)).column("v").to_pylist()
            for v in _page(values, st.limit, st.offset):
                ms.append(t.name)
                ks.append(k)
                vs.append(v)
    return InfluxQLResult(pa.table({
        MEASUREMENT: _dict(ms), "key": _dict(ks), "value": pa.array(vs, pa.string())}))


def show_field_keys(st: ast.ShowFieldKeys, tables: dict[str, TableInfo]) -> InfluxQLResult:
    ms: list[str] = []
    keys: list[str] = []
    types: list[str] = []
    for t in select_tables(tables, st.sources):
        for name in _page(sorted(t.fields), st.limit, st.offset):
            ms.append(t.name)
            keys.append(name)
            types.append(_FIELD_TYPE_NAMES.get(t.fields[name], t.fields[name]))
    return InfluxQLResult(pa.table({
        MEASUREMENT: _dict(ms),
        "fieldKey": pa.array(keys, pa.string()),
        "fieldType": pa.array(types, pa.string()),
    }))
