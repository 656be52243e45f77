"""Weir's own information_schema: DataFusion's views, read from a session of empty
stand-ins of the same tables, with the Arrow (< 57) type names plugins compare with."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from datafusion import SessionContext
from datafusion.catalog import Schema, Table

from weir.query.source import DatabaseSnapshot
from weir.query.tables import (
    CATALOG,
    INFO_SCHEMA,
    SYSTEM_SCHEMA,
    USER_SCHEMA,
    Scratch,
    batches_of,
    off_planner,
    query_schema,
)

__all__ = ["INFO_VIEWS", "SETTINGS_VIEWS", "InformationSchema", "legacy_column",
           "legacy_type_name", "patch_view", "read_view", "stand_in"]

_UNIT_NAMES = {"s": "Second", "ms": "Millisecond", "µs": "Microsecond", "us": "Microsecond",
               "ns": "Nanosecond"}
_NEW_TYPE = re.compile(r'\b(Timestamp|Time32|Time64|Duration)\((s|ms|µs|us|ns)(?:, "([^"]*)")?\)')
#: the order DataFusion lists its information_schema views in
INFO_VIEWS = ("tables", "views", "columns", "df_settings", "schemata", "routines",
              "parameters")
#: the views that depend only on the session's settings, not on its tables
SETTINGS_VIEWS = frozenset({"df_settings", "routines", "parameters"})


def legacy_type_name(df_type: str) -> str:
    """DataFusion 55's type text in the Arrow (< 57) spelling plugins compare with:
    `Timestamp(ns)` -> `Timestamp(Nanosecond, None)`, `Timestamp(ms, "UTC")` ->
    `Timestamp(Millisecond, Some("UTC"))`, `Time64(µs)` -> `Time64(Microsecond)`,
    `Duration(s)` -> `Duration(Second)`; other types are already spelt the same."""
    def repl(m: re.Match[str]) -> str:
        kind, unit = m.group(1), _UNIT_NAMES[m.group(2)]
        if kind != "Timestamp":
            return f"{kind}({unit})"
        tz = m.group(3)
        return f"Timestamp({unit}, {'None' if tz is None else f'Some({chr(34)}{tz}{chr(34)})'})"

    return _NEW_TYPE.sub(repl, df_type)


def legacy_column(table: pa.Table, name: str) -> pa.Table:
    if name not in table.column_names:
        return table
    i = table.column_names.index(name)
    col = table.column(i)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
            or pa.types.is_string_view(col.type)):
        return table
    values = [None if v is None else legacy_type_name(v) for v in col.to_pylist()]
    return table.set_column(i, table.field(i), pa.array(values, col.type))


class InformationSchema:
    """One query's information_schema views, each made when DataFusion asks for it.

    The views that list tables and columns are read from a second session (DataFusion's
    own views on) holding empty stand-ins with the same schemas: the user tables' query
    schemas and the system tables' declared ones, so nothing is built to list it.
    """

    def __init__(self, new_context: Callable[[bool], SessionContext], scratch: Scratch,
                 settings_view: Callable[[str], Table], snap: DatabaseSnapshot) -> None:
        self._new_context = new_context
        self._scratch = scratch
        self._settings_view = settings_view
        self._snap = snap
        self._listing: SessionContext | None = None

    def view(self, name: str) -> Table:
        if name in SETTINGS_VIEWS:
            return self._settings_view(name)
        listing, scratch = self._listing or self._stand_ins(), self._scratch
        return off_planner(lambda: scratch.memory_table(
            [batches_of(patch_view(name, read_view(listing, name)))]))

    def _stand_ins(self) -> SessionContext:
        ctx = self._listing = self._new_context(True)
        catalog = ctx.catalog(CATALOG)
        iox = catalog.schema(USER_SCHEMA)
        for t in self._snap.tables.values():
            iox.register_table(t.name, stand_in(query_schema(t.schema)))
        system = Schema.memory_schema()
        catalog.register_schema(SYSTEM_SCHEMA, system)
        for name, st in self._snap.system_tables.items():
            system.register_table(name, stand_in(st.schema))
        return ctx


def read_view(ctx: SessionContext, view: str) -> pa.Table:
    return ctx.sql(f"SELECT * FROM {INFO_SCHEMA}.{view}").to_arrow_table()


@functools.lru_cache(maxsize=512)
def stand_in(schema: pa.Schema) -> Table:
    """An empty table of `schema` that information_schema can list and a plan can name
    (never scanned). Made once per schema: the planning pass that finds a query's time
    bounds needs one per table at every query (a quarter of a millisecond each to make),
    and an empty, read-only table can serve every session at once."""
    return Table(ds.InMemoryDataset(schema.empty_table()))


_RANK = {USER_SCHEMA: 0, SYSTEM_SCHEMA: 1}


def _ordered(table: pa.Table, *keys: str) -> pa.Table:
    """Rows by schema (iox, system, then the others by name), then by `keys[1:]`."""
    if table.num_rows == 0:
        return table
    schemas = table.column(keys[0]).to_pylist()
    idx = sorted(range(table.num_rows), key=lambda i: (
        _RANK.get(schemas[i], 2), schemas[i],
        *(table.column(k)[i].as_py() for k in keys[1:])))
    return table.take(pa.array(idx, pa.int64()))


def patch_view(view: str, table: pa.Table) -> pa.Table:
    """DataFusion's view as Weir shows it: the Arrow (< 57) type names, rows in order, and
    in `tables` the information_schema views themselves last, in DataFusion's order."""
    if view == "tables":
        listed = table.filter(pc.not_equal(table.column("table_schema"), INFO_SCHEMA))
        info_rows = pa.Table.from_pylist(
            [{"table_catalog": CATALOG, "table_schema": INFO_SCHEMA, "table_name": v,
              "table_type": "VIEW"} for v in INFO_VIEWS], schema=table.schema)
        return pa.concat_tables([_ordered(listed, "table_schema", "table_name"), info_rows])
    if view == "columns":
        return _ordered(legacy_column(table, "data_type"), "table_schema", "table_name",
                        "ordinal_position")
    if view == "views":
        return _ordered(table, "table_schema", "table_name")
    if view in ("parameters", "routines"):
        return legacy_column(table, "data_type")
    return table
