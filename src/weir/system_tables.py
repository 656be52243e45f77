"""The storage side's `system.*` tables (surface.md §4): built on demand from the
catalog and the persisted-file index when a query names them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa

from weir.catalog import INTERNAL_DB

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


def _databases(db: Database) -> pa.Table:
    names, retention, deleted = [], [], []
    for name in db.catalog.databases():
        d = db.catalog.db(name)
        names.append(name)
        retention.append(d.retention_period_ns)
        deleted.append(False)
    for name in db.catalog.deleted_databases():
        names.append(name)
        retention.append(None)
        deleted.append(True)
    return pa.table({
        "database_name": pa.array(names, pa.string()),
        "retention_period_ns": pa.array(retention, pa.uint64()),
        "deleted": pa.array(deleted, pa.bool_()),
    })


def _tables(db: Database) -> pa.Table:
    dbn, tn, cc, keys = [], [], [], []
    for name in db.catalog.databases():
        for t in db.catalog.db(name).tables.values():
            dbn.append(name)
            tn.append(t.name)
            cc.append(len(t.columns))
            keys.append(",".join(t.tag_names()))
    return pa.table({
        "database_name": pa.array(dbn, pa.string()),
        "table_name": pa.array(tn, pa.string()),
        "column_count": pa.array(cc, pa.uint64()),
        "series_key_columns": pa.array(keys, pa.string()),
        "deleted": pa.array([False] * len(tn), pa.bool_()),
    })
