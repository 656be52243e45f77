"""The storage side's `system.*` tables (surface.md §4): built on demand from the
catalog and the persisted-file index when a query names them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa

from weir.catalog import INTERNAL_DB, TableSchema

if TYPE_CHECKING:
    from weir.database import Database

_SCHEMA_TYPES = {"tag": "tag", "time": "time", "float": "float", "integer": "integer",
                 "uinteger": "uinteger", "string": "string", "boolean": "boolean"}


def storage_system_tables(db: Database) -> Callable[[str], dict[str, Callable[[], pa.Table]]]:
    def provider(database: str) -> dict[str, Callable[[], pa.Table]]:
        tables: dict[str, Callable[[], pa.Table]] = {
            "parquet_files": lambda: _parquet_files(db, database),
            "influxdb_schema": lambda: _influxdb_schema(db, database),
        }
        if database == INTERNAL_DB:
            tables["databases"] = lambda: _databases(db)
            tables["tables"] = lambda: _tables(db)
        return tables

    return provider


def _parquet_files(db: Database, database: str) -> pa.Table:
    d = db.catalog.db(database)
    names = {t.id: t.name for t in d.tables.values()}
    rows = [f for f in db.index.all() if f.db_id == d.id and f.table_id in names]
    return pa.table(
        {
            "table_name": pa.array([names[f.table_id] for f in rows], pa.string()),
            "path": pa.array([f.path for f in rows], pa.string()),
            "size_bytes": pa.array([f.size_bytes for f in rows], pa.uint64()),
            "row_count": pa.array([f.row_count for f in rows], pa.uint64()),
            "min_time": pa.array([f.min_time for f in rows], pa.int64()),
            "max_time": pa.array([f.max_time for f in rows], pa.int64()),
        }
    )


def _influxdb_schema(db: Database, database: str) -> pa.Table:
    m, k, t = [], [], []
    for tname, ts in sorted(db.catalog.db(database).tables.items()):
        for c in sorted(ts.columns.values(), key=lambda c: c.name):
            m.append(tname)
            k.append(c.name)
            t.append(_SCHEMA_TYPES[c.type])
    return pa.table({"measurement": pa.array(m, pa.string()), "key": pa.array(k, pa.string()),
                     "data_type": pa.array(t, pa.string())})


_HARD_DELETION_TIME = pa.timestamp("s", tz="UTC")


def _seconds(ns: int | None) -> int | None:
    return None if ns is None else ns // 1_000_000_000


def _databases(db: Database) -> pa.Table:
    """Live databases, then soft-deleted ones (with when they go for good)."""
    rows: list[tuple[str, int | None, bool, int | None]] = []
    for name in db.catalog.databases():
        d = db.catalog.db(name)
        rows.append((name, d.retention_period_ns, False, None))
    for d in db.catalog.deleted_database_schemas():
        rows.append((d.name, d.retention_period_ns, True, _seconds(d.hard_delete_time_ns)))
    return pa.table({
        "database_name": pa.array([r[0] for r in rows], pa.string()),
        "retention_period_ns": pa.array([r[1] for r in rows], pa.uint64()),
        "deleted": pa.array([r[2] for r in rows], pa.bool_()),
        "hard_deletion_time": pa.array([r[3] for r in rows], _HARD_DELETION_TIME),
    })


def _tables(db: Database) -> pa.Table:
    """Every table: live ones, soft-deleted ones (alone, or with their database)."""
    rows: list[tuple[str, TableSchema, bool, int | None]] = []
    for name in db.catalog.databases():
        d = db.catalog.db(name)
        rows.extend((name, t, False, None) for t in d.tables.values())
        rows.extend((name, t, True, t.hard_delete_time_ns) for t in d.deleted_tables)
    for d in db.catalog.deleted_database_schemas():
        rows.extend((d.name, t, True, d.hard_delete_time_ns) for t in d.tables.values())
        rows.extend((d.name, t, True, t.hard_delete_time_ns) for t in d.deleted_tables)
    zeros = [0] * len(rows)  # Weir has no last/distinct value caches yet
    return pa.table({
        "database_name": pa.array([r[0] for r in rows], pa.string()),
        "table_name": pa.array([r[1].name for r in rows], pa.string()),
        "column_count": pa.array([len(r[1].columns) for r in rows], pa.uint64()),
        "series_key_columns": pa.array([",".join(r[1].tag_names()) for r in rows],
                                       pa.string()),
        "last_cache_count": pa.array(zeros, pa.uint64()),
        "distinct_cache_count": pa.array(zeros, pa.uint64()),
        "deleted": pa.array([r[2] for r in rows], pa.bool_()),
        "hard_deletion_time": pa.array([_seconds(r[3]) for r in rows], _HARD_DELETION_TIME),
    })
