"""The caches' `system.*` tables (surface.md §4), from the catalog's definitions:
`last_caches` and `distinct_caches` in every database, one row per cache, tables in catalog
order and each table's caches in the order they were created.

Column ids are the columns' positions in their table (the reference's ordinal ids);
`value_column_ids`/`value_column_names` are null for a last cache that keeps every
non-key column."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import pyarrow as pa

from weir.system_tables.base import SystemTable

__all__ = ["DISTINCT_CACHES_SCHEMA", "LAST_CACHES_SCHEMA", "CacheTables"]


class LastCacheInfo(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def key_columns(self) -> Sequence[str]: ...

    @property
    def value_columns(self) -> Sequence[str] | None: ...

    @property
    def count(self) -> int: ...

    @property
    def ttl_s(self) -> int: ...


class DistinctCacheInfo(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def columns(self) -> Sequence[str]: ...

    @property
    def max_cardinality(self) -> int: ...

    @property
    def max_age_s(self) -> int: ...


class CachedTableInfo(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def columns(self) -> Mapping[str, object]: ...

    @property
    def last_caches(self) -> Mapping[str, LastCacheInfo]: ...

    @property
    def distinct_caches(self) -> Mapping[str, DistinctCacheInfo]: ...


class CacheDatabaseInfo(Protocol):
    @property
    def tables(self) -> Mapping[str, CachedTableInfo]: ...


class CacheCatalog(Protocol):
    def db(self, name: str) -> CacheDatabaseInfo: ...


class CatalogOwner(Protocol):
    """What the cache tables read: storage's catalog, looked up again for every build."""

    @property
    def catalog(self) -> CacheCatalog: ...


_IDS = pa.list_(pa.field("item", pa.uint16()))
_NAMES = pa.list_(pa.field("item", pa.string()))

LAST_CACHES_SCHEMA = pa.schema([
    pa.field("table", pa.string(), nullable=False), pa.field("name", pa.string(), nullable=False),
    pa.field("key_column_ids", _IDS, nullable=False),
    pa.field("key_column_names", _NAMES, nullable=False),
    pa.field("value_column_ids", _IDS), pa.field("value_column_names", _NAMES),
    pa.field("count", pa.uint64(), nullable=False), pa.field("ttl", pa.uint64(), nullable=False),
])
DISTINCT_CACHES_SCHEMA = pa.schema([
    pa.field("table", pa.string(), nullable=False), pa.field("name", pa.string(), nullable=False),
    pa.field("column_ids", _IDS, nullable=False),
    pa.field("column_names", _NAMES, nullable=False),
    pa.field("max_cardinality", pa.uint64(), nullable=False),
    pa.field("max_age_seconds", pa.uint64(), nullable=False),
])


class CacheTables:
    """The provider of the caches' tables."""

    def __init__(self, owner: CatalogOwner) -> None:
        self._owner = owner

    def __call__(self, database: str, /) -> dict[str, SystemTable]:
        owner = self._owner
        return {
            "last_caches": SystemTable(LAST_CACHES_SCHEMA, lambda: last_caches_table(
                owner.catalog.db(database).tables.values())),
            "distinct_caches": SystemTable(DISTINCT_CACHES_SCHEMA, lambda: distinct_caches_table(
                owner.catalog.db(database).tables.values())),
        }


def _ids(columns: Mapping[str, object], names: Iterable[str]) -> list[int]:
    order = {name: i for i, name in enumerate(columns)}
    return [order[n] for n in names]


def last_caches_table(tables: Iterable[CachedTableInfo]) -> pa.Table:
    rows = [(t, c) for t in tables for c in t.last_caches.values()]
    return pa.table([
        pa.array([t.name for t, _ in rows], pa.string()),
        pa.array([c.name for _, c in rows], pa.string()),
        pa.array([_ids(t.columns, c.key_columns) for t, c in rows], _IDS),
        pa.array([list(c.key_columns) for _, c in rows], _NAMES),
        pa.array([None if c.value_columns is None else _ids(t.columns, c.value_columns)
                  for t, c in rows], _IDS),
        pa.array([None if c.value_columns is None else list(c.value_columns)
                  for _, c in rows], _NAMES),
        pa.array([c.count for _, c in rows], pa.uint64()),
        pa.array([c.ttl_s for _, c in rows], pa.uint64()),
    ], schema=LAST_CACHES_SCHEMA)


def distinct_caches_table(tables: Iterable[CachedTableInfo]) -> pa.Table:
    rows = [(t, c) for t in tables for c in t.distinct_caches.values()]
    return pa.table([
        pa.array([t.name for t, _ in rows], pa.string()),
        pa.array([c.name for _, c in rows], pa.string()),
        pa.array([_ids(t.columns, c.columns) for t, c in rows], _IDS),
        pa.array([list(c.columns) for _, c in rows], _NAMES),
        pa.array([c.max_cardinality for _, c in rows], pa.uint64()),
        pa.array([c.max_age_s for _, c in rows], pa.uint64()),
    ], schema=DISTINCT_CACHES_SCHEMA)
