"""Last-value and distinct-value cache definitions: what the catalog keeps of each cache
(the caches' contents live in storage, weir.cache), and the checks the reference's catalog
makes before it records one (influxdb3_catalog `CreateLastCacheOp`, `CreateDistinctCacheOp`).

A cache belongs to one table and is named uniquely within it; its columns are kept by name
(a Weir column is never renamed or dropped). Ids count up per table and kind, from 0, and
are never reused, as in the reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NotRequired, TypedDict

from weir.catalog.columns import FIELD, TAG, Column
from weir.errors import AlreadyExists, CatalogError, InvalidCacheColumnType, InvalidConfiguration

#: the reference's defaults: one value per key for 4 hours; 100,000 combinations for a day
DEFAULT_LAST_CACHE_COUNT = 1
DEFAULT_LAST_CACHE_TTL_S = 4 * 60 * 60
DEFAULT_MAX_CARDINALITY = 100_000
DEFAULT_MAX_AGE_S = 24 * 60 * 60

#: column types a last cache may key on, a distinct cache may hold
LAST_CACHE_KEY_TYPES = frozenset({"tag", "string", "integer", "uinteger", "boolean"})
DISTINCT_CACHE_TYPES = frozenset({"tag", "string"})


class LastCacheJson(TypedDict):
    id: int
    name: str
    key_columns: list[str]
    value_columns: list[str] | None
    count: int
    ttl: int


class DistinctCacheJson(TypedDict):
    id: int
    name: str
    columns: list[str]
    max_cardinality: int
    max_age: int
    #: absent in files of older Weirs (none had caches); kept for forward changes
    source: NotRequired[str]


@dataclass(frozen=True)
class LastCacheDefinition:
    """A last-N-value cache: for each distinct combination of `key_columns`, the newest
    `count` rows' `value_columns` (None: every non-key column, new ones included), each
    kept for `ttl_s` seconds after it entered the cache."""

    id: int
    table: str
    name: str
    key_columns: tuple[str, ...]
    value_columns: tuple[str, ...] | None
    count: int
    ttl_s: int

    def to_json(self) -> LastCacheJson:
        return {"id": self.id, "name": self.name, "key_columns": list(self.key_columns),
                "value_columns": None if self.value_columns is None
                else list(self.value_columns),
                "count": self.count, "ttl": self.ttl_s}

    @classmethod
    def from_json(cls, table: str, raw: LastCacheJson) -> LastCacheDefinition:
        values = raw["value_columns"]
        return cls(raw["id"], table, raw["name"], tuple(raw["key_columns"]),
                   None if values is None else tuple(values), raw["count"], raw["ttl"])


@dataclass(frozen=True)
class DistinctCacheDefinition:
    """A distinct-value cache: the distinct combinations of `columns` (a hierarchy, first
    column at the top) seen within `max_age_s` seconds of now (by the rows' own time), at
    most `max_cardinality` of them (the least recently seen go first)."""

    id: int
    table: str
    name: str
    columns: tuple[str, ...]
    max_cardinality: int
    max_age_s: int

    def to_json(self) -> DistinctCacheJson:
        return {"id": self.id, "name": self.name, "columns": list(self.columns),
                "max_cardinality": self.max_cardinality, "max_age": self.max_age_s}

    @classmethod
    def from_json(cls, table: str, raw: DistinctCacheJson) -> DistinctCacheDefinition:
        return cls(raw["id"], table, raw["name"], tuple(raw["columns"]),
                   raw["max_cardinality"], raw["max_age"])


def new_last_cache(table: str, columns: Mapping[str, Column], existing: Mapping[str, object],
                   next_id: int, *, name: str | None, key_columns: Sequence[str] | None,
                   value_columns: Sequence[str] | None, count: int, ttl_s: int
                   ) -> LastCacheDefinition:
    """A checked definition, as the reference's catalog checks it: key columns exist and
    are tags, strings, integers or booleans (default: the table's tags, its series key);
    value columns exist; the name (default `<table>_<keys>_last_cache`) is new."""
    if count < 1:
        raise CatalogError("last cache size must be greater than 0")
    if ttl_s < 0:
        raise InvalidConfiguration("the last cache ttl cannot be negative")
    if key_columns is None:
        keys = tuple(c.name for c in columns.values() if c.kind == TAG)
    else:
        for k in key_columns:
            col = columns.get(k)
            if col is None:
                raise InvalidConfiguration(f"invalid key column provided: {k}")
            if col.type not in LAST_CACHE_KEY_TYPES:
                raise InvalidCacheColumnType(
                    "only uint64, int64, bool, tag, and string columns are supported in the "
                    "last cache")
        keys = tuple(dict.fromkeys(key_columns))
    values = None
    if value_columns is not None:
        for v in value_columns:
            if v not in columns:
                raise InvalidConfiguration(f"invalid value column provided: {v}")
        values = tuple(dict.fromkeys(value_columns))
    name = name if name is not None else f"{table}_{'_'.join(keys)}_last_cache"
    if name in existing:
        raise AlreadyExists(name)
    return LastCacheDefinition(next_id, table, name, keys, values, count, ttl_s)


def new_distinct_cache(table: str, columns: Mapping[str, Column],
                       existing: Mapping[str, object], next_id: int, *, name: str | None,
                       cache_columns: Sequence[str], max_cardinality: int, max_age_s: int
                       ) -> DistinctCacheDefinition:
    """A checked definition: at least one column, each a tag or a string field; the name
    (default `<table>_<columns>_distinct_cache`) is new."""
    if not cache_columns:
        raise InvalidConfiguration("no columns provided when creating distinct cache")
    for c in cache_columns:
        col = columns.get(c)
        if col is None:
            raise InvalidConfiguration(f"invalid column provided: {c}")
        if col.type not in DISTINCT_CACHE_TYPES:
            raise InvalidCacheColumnType(
                "only tag and string columns are supported in the distinct cache")
    if max_cardinality < 1:
        raise InvalidConfiguration("max_cardinality must be greater than 0")
    if max_age_s < 0:
        raise InvalidConfiguration("max_age cannot be negative")
    name = name if name is not None else f"{table}_{'_'.join(cache_columns)}_distinct_cache"
    if name in existing:
        raise AlreadyExists(name)
    return DistinctCacheDefinition(next_id, table, name, tuple(dict.fromkeys(cache_columns)),
                                   max_cardinality, max_age_s)


def column_identifier(columns: Mapping[str, Column], name: str) -> object:
    """The reference's JSON for a column (`influxdb3_id::ColumnIdentifier`): `"timestamp"`,
    `{"tag": n}` or `{"field": [0, n]}`, n counting that kind's columns in table order."""
    col = columns[name]
    if col.kind not in (TAG, FIELD):
        return "timestamp"
    n = [c.name for c in columns.values() if c.kind == col.kind].index(name)
    return {"tag": n} if col.kind == TAG else {"field": [0, n]}


def column_ordinal(columns: Mapping[str, Column], name: str) -> int:
    """A column's position in its table (its id in `system.last_caches` and
    `system.distinct_caches`)."""
    return list(columns).index(name)
