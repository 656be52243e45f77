"""Last-value and distinct-value caches: create and delete (the `influxdb3 create
last_cache` / `distinct_cache` commands and their HTTP routes).

The catalog checks a definition and storage fills the cache (weir.ports.CacheStore); this
service holds what the API adds: its defaults, the ranges of its numbers, and the answer to
a creation, the reference's catalog batch (`CreatedCache.to_json`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from weir.catalog import (
    DEFAULT_LAST_CACHE_COUNT,
    DEFAULT_LAST_CACHE_TTL_S,
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_CARDINALITY,
    Catalog,
    DistinctCacheDefinition,
    LastCacheDefinition,
    column_identifier,
)
from weir.errors import CatalogError, InvalidConfiguration
from weir.ports import Storage


@dataclass(frozen=True)
class CreatedCache:
    """A cache just created, with what the reference answers about it."""

    definition: LastCacheDefinition | DistinctCacheDefinition
    database: str
    database_id: int
    table_id: int
    #: each cache column's identifier in the reference's JSON (`{"tag": 0}` ...)
    identifiers: dict[str, object]
    #: the catalog's sequence number after the change, and when it was made (ns)
    sequence: int
    time_ns: int

    def to_json(self) -> dict[str, object]:
        """The reference's `201` body: the catalog batch that records the cache (an
        `OrderedCatalogBatch` with one `CreateLastCache`/`CreateDistinctCache` op)."""
        d = self.definition
        ids = self.identifiers
        op: dict[str, object]
        if isinstance(d, LastCacheDefinition):
            op = {"CreateLastCache": {
                "table_id": self.table_id, "table": d.table, "id": d.id, "node_spec": "all",
                "name": d.name, "key_columns": [ids[k] for k in d.key_columns],
                "value_columns": "all_non_key_columns" if d.value_columns is None else
                {"explicit": {"columns": [ids[v] for v in d.value_columns]}},
                "count": d.count, "ttl": d.ttl_s}}
        else:
            op = {"CreateDistinctCache": {
                "table_id": self.table_id, "table_name": d.table, "node_spec": "all",
                "cache_id": d.id, "cache_name": d.name,
                "column_ids": [ids[c] for c in d.columns],
                "max_cardinality": d.max_cardinality, "max_age_seconds": d.max_age_s,
                "source": {"type": "User"}}}
        return {"catalog_batch": {"Database": {
            "time_ns": self.time_ns, "database_id": self.database_id,
            "database_name": self.database, "ops": [op]}},
            "sequence_number": self.sequence}


class CacheService:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def create_last_cache(self, db: str, table: str, *, name: str | None = None,
                                key_columns: Sequence[str] | None = None,
                                value_columns: Sequence[str] | None = None,
                                count: int = DEFAULT_LAST_CACHE_COUNT,
                                ttl_s: int = DEFAULT_LAST_CACHE_TTL_S) -> CreatedCache:
        """A last-value cache on `db`.`table` keyed on `key_columns` (default: the table's
        tags) keeping `count` rows of `value_columns` (default: every other column, new
        ones too) per key for `ttl_s` seconds; filled from stored data before it
        returns."""
        if count < 1:
            raise CatalogError("last cache size must be greater than 0")
        if ttl_s < 0:
            raise InvalidConfiguration("the last cache ttl cannot be negative")
        definition = await self._storage.create_last_cache(
            db, table, name=name, key_columns=key_columns, value_columns=value_columns,
            count=count, ttl_s=ttl_s)
        columns = [*definition.key_columns, *(definition.value_columns or ())]
        return _created(self._storage.catalog, db, definition, columns)

    async def delete_last_cache(self, db: str, table: str, name: str) -> None:
        await self._storage.delete_last_cache(db, table, name)

    async def create_distinct_cache(self, db: str, table: str, columns: Sequence[str], *,
                                    name: str | None = None,
                                    max_cardinality: int = DEFAULT_MAX_CARDINALITY,
                                    max_age_s: int = DEFAULT_MAX_AGE_S) -> CreatedCache:
        """A distinct-value cache of `columns` (tags or string fields, top level first)
        on `db`.`table`, of at most `max_cardinality` combinations seen within
        `max_age_s` seconds; filled from stored data before it returns."""
        if max_cardinality < 1:
            raise InvalidConfiguration("max_cardinality must be greater than 0")
        if max_age_s < 0:
            raise InvalidConfiguration("max_age cannot be negative")
        definition = await self._storage.create_distinct_cache(
            db, table, columns, name=name, max_cardinality=max_cardinality,
            max_age_s=max_age_s)
        return _created(self._storage.catalog, db, definition, definition.columns)

    async def delete_distinct_cache(self, db: str, table: str, name: str) -> None:
        await self._storage.delete_distinct_cache(db, table, name)


def _created(catalog: Catalog, db: str,
             definition: LastCacheDefinition | DistinctCacheDefinition,
             columns: Sequence[str]) -> CreatedCache:
    dbschema = catalog.db(db)
    table = catalog.table(db, definition.table)
    return CreatedCache(definition, db, dbschema.id, table.id,
                        {c: column_identifier(table.columns, c) for c in columns},
                        catalog.sequence, time.time_ns())
