"""Storage's `system.*` tables (surface.md §4), from the catalog and the persisted-file
index: `parquet_files` and `influxdb_schema` in every database, `databases`, `tables` and
`generation_durations` in `_internal` as well."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import pyarrow as pa

from weir.catalog import INTERNAL_DB
from weir.system_tables.base import SystemTable

__all__ = ["DATABASES_SCHEMA", "GENERATION_DURATIONS_SCHEMA", "INFLUXDB_SCHEMA_SCHEMA",
           "PARQUET_FILES_SCHEMA", "TABLES_SCHEMA", "StorageState", "StorageTables"]


class ColumnInfo(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...  # tag | time | float | integer | uinteger | string | boolean


class TableInfo(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def columns(self) -> Mapping[str, ColumnInfo]: ...

    @property
    def hard_delete_time_ns(self) -> int | None: ...

    @property
    def deleted_name(self) -> str | None: ...

    def tag_names(self) -> list[str]: ...

    @property
    def last_caches(self) -> Mapping[str, object]: ...

    @property
    def distinct_caches(self) -> Mapping[str, object]: ...


class DatabaseInfo(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def tables(self) -> Mapping[str, TableInfo]: ...

    @property
    def deleted_tables(self) -> Sequence[TableInfo]: ...

    @property
    def retention_period_ns(self) -> int | None: ...

    @property
    def hard_delete_time_ns(self) -> int | None: ...

    @property
    def deleted_name(self) -> str | None: ...


class CatalogInfo(Protocol):
    @property
    def gen1_duration_s(self) -> float | None: ...

    def databases(self) -> Iterable[str]: ...

    def db(self, name: str) -> DatabaseInfo: ...

    def deleted_database_schemas(self) -> Iterable[DatabaseInfo]: ...


class ParquetFileInfo(Protocol):
    @property
    def db_id(self) -> int: ...

    @property
    def table_id(self) -> int: ...

    @property
    def path(self) -> str: ...

    @property
    def size_bytes(self) -> int: ...

    @property
    def row_count(self) -> int: ...

    @property
    def min_time(self) -> int: ...

    @property
    def max_time(self) -> int: ...


class FileIndex(Protocol):
    def all(self) -> Iterable[ParquetFileInfo]: ...


class StorageState(Protocol):
    """What the storage tables read, looked up again for every build (storage replaces
    its index when it starts)."""

    @property
    def catalog(self) -> CatalogInfo: ...

    @property
    def index(self) -> FileIndex: ...


_HARD_DELETION_TIME = pa.timestamp("s", tz="UTC")

PARQUET_FILES_SCHEMA = pa.schema([
    ("table_name", pa.string()), ("path", pa.string()), ("size_bytes", pa.uint64()),
    ("row_count", pa.uint64()), ("min_time", pa.int64()), ("max_time", pa.int64()),
])
INFLUXDB_SCHEMA_SCHEMA = pa.schema([
    ("measurement", pa.string()), ("key", pa.string()), ("data_type", pa.string()),
])
DATABASES_SCHEMA = pa.schema([
    ("database_name", pa.string()), ("retention_period_ns", pa.uint64()),
    ("deleted", pa.bool_()), ("hard_deletion_time", _HARD_DELETION_TIME),
])
TABLES_SCHEMA = pa.schema([
    ("database_name", pa.string()), ("table_name", pa.string()),
    ("column_count", pa.uint64()), ("series_key_columns", pa.string()),
    ("last_cache_count", pa.uint64()), ("distinct_cache_count", pa.uint64()),
    ("deleted", pa.bool_()), ("hard_deletion_time", _HARD_DELETION_TIME),
])

GENERATION_DURATIONS_SCHEMA = pa.schema([("level", pa.uint8()),
                                         ("duration_seconds", pa.uint64())])

_SCHEMA_TYPES = {"tag": "tag", "time": "time", "float": "float", "integer": "integer",
                 "uinteger": "uinteger", "string": "string", "boolean": "boolean"}


class StorageTables:
    """The provider of storage's tables."""

    def __init__(self, state: StorageState) -> None:
        self._state = state

    def __call__(self, database: str, /) -> dict[str, SystemTable]:
        state = self._state
        tables = {
            "parquet_files": SystemTable(PARQUET_FILES_SCHEMA,
                                         lambda: parquet_files_table(state, database)),
            "influxdb_schema": SystemTable(INFLUXDB_SCHEMA_SCHEMA,
                                           lambda: influxdb_schema_table(state.catalog,
                                                                         database)),
        }
        if database == INTERNAL_DB:
            tables["databases"] = SystemTable(DATABASES_SCHEMA,
                                              lambda: databases_table(state.catalog))
            tables["tables"] = SystemTable(TABLES_SCHEMA, lambda: tables_table(state.catalog))
            tables["generation_durations"] = SystemTable(
                GENERATION_DURATIONS_SCHEMA, lambda: generation_durations_table(state.catalog))
        return tables


def parquet_files_table(state: StorageState, database: str) -> pa.Table:
    d = state.catalog.db(database)
    names = {t.id: t.name for t in d.tables.values()}
    rows = [f for f in state.index.all() if f.db_id == d.id and f.table_id in names]
    return pa.table([
        pa.array([names[f.table_id] for f in rows], pa.string()),
        pa.array([f.path for f in rows], pa.string()),
        pa.array([f.size_bytes for f in rows], pa.uint64()),
        pa.array([f.row_count for f in rows], pa.uint64()),
        pa.array([f.min_time for f in rows], pa.int64()),
        pa.array([f.max_time for f in rows], pa.int64()),
    ], schema=PARQUET_FILES_SCHEMA)


def influxdb_schema_table(catalog: CatalogInfo, database: str) -> pa.Table:
    m, k, t = [], [], []
    for tname, ts in sorted(catalog.db(database).tables.items()):
        for c in sorted(ts.columns.values(), key=lambda c: c.name):
            m.append(tname)
            k.append(c.name)
            t.append(_SCHEMA_TYPES[c.type])
    return pa.table([pa.array(m, pa.string()), pa.array(k, pa.string()),
                     pa.array(t, pa.string())], schema=INFLUXDB_SCHEMA_SCHEMA)


def _seconds(ns: int | None) -> int | None:
    return None if ns is None else ns // 1_000_000_000


def databases_table(catalog: CatalogInfo) -> pa.Table:
    """Live databases, then soft-deleted ones (with when they go for good)."""
    rows: list[tuple[str, int | None, bool, int | None]] = [
        (name, catalog.db(name).retention_period_ns, False, None)
        for name in catalog.databases()]
    # a soft-deleted database goes by `<name>-<deletion time>`, as in the reference
    rows.extend((d.deleted_name or d.name, d.retention_period_ns, True,
                 _seconds(d.hard_delete_time_ns))
                for d in catalog.deleted_database_schemas())
    return pa.table([
        pa.array([r[0] for r in rows], pa.string()),
        pa.array([r[1] for r in rows], pa.uint64()),
        pa.array([r[2] for r in rows], pa.bool_()),
        pa.array([r[3] for r in rows], _HARD_DELETION_TIME),
    ], schema=DATABASES_SCHEMA)


def tables_table(catalog: CatalogInfo) -> pa.Table:
    """Every table: live ones, soft-deleted ones (alone, or with their database)."""
    rows: list[tuple[str, TableInfo, bool, int | None]] = []
    for name in catalog.databases():
        d = catalog.db(name)
        rows.extend((name, t, False, None) for t in d.tables.values())
        rows.extend((name, t, True, t.hard_delete_time_ns) for t in d.deleted_tables)
    for dd in catalog.deleted_database_schemas():
        dname = dd.deleted_name or dd.name
        rows.extend((dname, t, True, dd.hard_delete_time_ns) for t in dd.tables.values())
        rows.extend((dname, t, True, t.hard_delete_time_ns) for t in dd.deleted_tables)
    return pa.table([
        pa.array([r[0] for r in rows], pa.string()),
        # a soft-deleted table goes by `<name>-<deletion time>`, as in the reference
        pa.array([r[1].deleted_name or r[1].name for r in rows], pa.string()),
        pa.array([len(r[1].columns) for r in rows], pa.uint64()),
        pa.array([", ".join(r[1].tag_names()) for r in rows], pa.string()),
        pa.array([len(r[1].last_caches) for r in rows], pa.uint64()),
        pa.array([len(r[1].distinct_caches) for r in rows], pa.uint64()),
        pa.array([r[2] for r in rows], pa.bool_()),
        pa.array([_seconds(r[3]) for r in rows], _HARD_DELETION_TIME),
    ], schema=TABLES_SCHEMA)


def generation_durations_table(catalog: CatalogInfo) -> pa.Table:
    """Weir's one generation: gen1, its duration as the catalog first recorded it (a
    restart with another --gen1-duration keeps it, as in the reference)."""
    gen1 = catalog.gen1_duration_s
    rows = [] if gen1 is None else [(1, round(gen1))]
    return pa.table([pa.array([r[0] for r in rows], pa.uint8()),
                     pa.array([r[1] for r in rows], pa.uint64())],
                    schema=GENERATION_DURATIONS_SCHEMA)
