"""Last-value and distinct-value caches: their contents, kept current from the WAL.

The catalog holds the definitions (weir.catalog.caches); storage (weir.database) holds one
`Caches`, adds and removes caches as the catalog does, hands it every flushed WAL write,
refills a cache from stored data (the queries `last_cache_refill_sql` and
`distinct_cache_refill_sql` write) when it is created and after a restart, and gives the
query layer the SQL table functions `last_cache('table'[, 'name'])` and
`distinct_cache('table'[, 'name'])` (`Caches.table_functions`), which fail with the
reference's planning errors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

import pyarrow as pa

from weir.cache.distinct_cache import DistinctCache, distinct_cache_schema
from weir.cache.last_cache import ColumnType, LastCache, last_cache_schema
from weir.catalog import DistinctCacheDefinition, LastCacheDefinition
from weir.errors import QueryError

__all__ = ["CacheTable", "Caches", "DistinctCache", "LastCache", "TableFunction",
           "distinct_cache_refill_sql", "distinct_cache_schema", "last_cache_refill_sql",
           "last_cache_schema"]

log = logging.getLogger("weir.cache")

_NS = 1_000_000_000
_MIN_NS = -(2**63) + 1
#: how often expired entries are dropped from memory (the reference's default
#: --last-cache-eviction-interval and --distinct-cache-eviction-interval); reads never see
#: them either way
EVICTION_INTERVAL_S = 10.0

#: a SQL table function: its literal arguments -> its rows; raises QueryError (a planning
#: error, the reference's text) for arguments it cannot use
TableFunction = Callable[[Sequence[object]], pa.Table]

_Key = tuple[str, str]  # (database, table)
_D = TypeVar("_D", LastCacheDefinition, DistinctCacheDefinition)


class CacheTable(Protocol):
    """A table of the catalog, as the cache functions read it (weir.catalog.TableSchema)."""

    @property
    def columns(self) -> Mapping[str, ColumnType]: ...

    @property
    def last_caches(self) -> Mapping[str, LastCacheDefinition]: ...

    @property
    def distinct_caches(self) -> Mapping[str, DistinctCacheDefinition]: ...


class Caches:
    """Every cache of every database, by (database, table, cache name)."""

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[_Key, dict[str, LastCache]] = {}
        self._distinct: dict[_Key, dict[str, DistinctCache]] = {}
        self._evicted_ns = clock()

    # ---- which caches exist ----------------------------------------------------------

    def add_last_cache(self, db: str, definition: LastCacheDefinition) -> LastCache:
        cache = LastCache(definition)
        with self._lock:
            self._last.setdefault((db, definition.table), {})[definition.name] = cache
        return cache

    def add_distinct_cache(self, db: str, definition: DistinctCacheDefinition) -> DistinctCache:
        cache = DistinctCache(definition)
        with self._lock:
            self._distinct.setdefault((db, definition.table), {})[definition.name] = cache
        return cache

    def remove_last_cache(self, db: str, table: str, name: str) -> None:
        with self._lock:
            _remove(self._last, (db, table), name)

    def remove_distinct_cache(self, db: str, table: str, name: str) -> None:
        with self._lock:
            _remove(self._distinct, (db, table), name)

    def drop_table(self, db: str, table: str) -> None:
        with self._lock:
            self._last.pop((db, table), None)
            self._distinct.pop((db, table), None)

    def drop_database(self, db: str) -> None:
        with self._lock:
            for caches in (self._last, self._distinct):
                for key in [k for k in caches if k[0] == db]:
                    del caches[key]

    def last_cache(self, db: str, table: str, name: str) -> LastCache | None:
        with self._lock:
            return self._last.get((db, table), {}).get(name)

    def distinct_cache(self, db: str, table: str, name: str) -> DistinctCache | None:
        with self._lock:
            return self._distinct.get((db, table), {}).get(name)

    def distinct_caches(self, db: str, table: str) -> list[DistinctCache]:
        with self._lock:
            return list(self._distinct.get((db, table), {}).values())

    def __len__(self) -> int:
        with self._lock:
            return sum(len(c) for c in self._last.values()) + \
                sum(len(c) for c in self._distinct.values())

    # ---- writes and eviction ---------------------------------------------------------

    def push(self, writes: Sequence[tuple[str, str, pa.RecordBatch]]) -> None:
        """One flushed WAL file's writes, (database, table, rows) in WAL order."""
        if not self._last and not self._distinct:
            return
        now = self._clock()
        for db, table, batch in writes:
            with self._lock:
                caches: list[LastCache | DistinctCache] = [
                    *self._last.get((db, table), {}).values(),
                    *self._distinct.get((db, table), {}).values()]
            for cache in caches:
                try:
                    cache.push(batch, now)
                except Exception:  # a cache's failure must not stop the WAL flush
                    log.exception("cache %s of %s.%s could not take a write; it may miss "
                                  "rows until it is created again", cache.definition.name,
                                  db, table)
        if now - self._evicted_ns >= EVICTION_INTERVAL_S * _NS:
            self.evict(now)

    def evict(self, now_ns: int | None = None) -> None:
        """Drop expired entries from memory (reads skip them anyway)."""
        now = self._clock() if now_ns is None else now_ns
        self._evicted_ns = now
        with self._lock:
            caches: list[LastCache | DistinctCache] = [
                *(c for t in self._last.values() for c in t.values()),
                *(c for t in self._distinct.values() for c in t.values())]
        for cache in caches:
            cache.evict(now)

    # ---- the SQL table functions -----------------------------------------------------

    def table_functions(self, db: str, tables: Mapping[str, CacheTable]
                        ) -> dict[str, TableFunction]:
        """`last_cache` and `distinct_cache` over database `db`, whose catalog tables (as
        the query's snapshot saw them) are `tables`."""

        def last_cache(args: Sequence[object]) -> pa.Table:
            table, name = _arguments(args)
            t = tables.get(table)
            if t is None:
                raise QueryError("provided table name is invalid")
            definition = _pick(t.last_caches, name)
            if definition is None:
                raise QueryError("could not find cache for the given arguments")
            now = self._clock()
            cache = self.last_cache(db, table, definition.name)
            if cache is None or cache.definition != definition:  # deleted meanwhile
                return last_cache_schema(definition, t.columns).empty_table()
            return cache.read(t.columns, now)

        def distinct_cache(args: Sequence[object]) -> pa.Table:
            table, name = _arguments(args)
            t = tables.get(table)
            if t is None:
                raise QueryError(f"provided table name ({table}) is invalid")
            definition = _pick(t.distinct_caches, name)
            if definition is None:
                raise QueryError("could not find distinct value cache for the given arguments")
            cache = self.distinct_cache(db, table, definition.name)
            if cache is None or cache.definition != definition:
                return distinct_cache_schema(definition).empty_table()
            return cache.read(self._clock())

        return {"last_cache": last_cache, "distinct_cache": distinct_cache}


def _remove(caches: dict[_Key, dict[str, LastCache]] | dict[_Key, dict[str, DistinctCache]],
            key: _Key, name: str) -> None:
    by_name = caches.get(key)
    if by_name is not None:
        by_name.pop(name, None)
        if not by_name:
            del caches[key]


def _arguments(args: Sequence[object]) -> tuple[str, str | None]:
    """The table name and the cache name (None: the table's only cache)."""
    if not args or not isinstance(args[0], str):
        raise QueryError("first argument must be the table name as a string")
    if len(args) > 1 and not isinstance(args[1], str):
        raise QueryError("second argument, if passed, must be the cache name as a string")
    return args[0], args[1] if len(args) > 1 else None  # type: ignore[return-value]


def _pick(defs: Mapping[str, _D], name: str | None) -> _D | None:
    if name is not None:
        return defs.get(name)
    return next(iter(defs.values())) if len(defs) == 1 else None


# ---- refilling from stored data ----------------------------------------------------------


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def last_cache_refill_sql(definition: LastCacheDefinition, now_ns: int) -> str | None:
    """The query whose rows `LastCache.load` takes: per key the newest `count` stored rows
    still within `ttl` of now (a stored row counts as having entered at its own time);
    None when the TTL leaves nothing to read. The rank column `__weir_rn` comes too."""
    if definition.ttl_s <= 0:
        return None
    cutoff = max(now_ns - definition.ttl_s * _NS, _MIN_NS)
    keys = [quote_ident(k) for k in definition.key_columns]
    if definition.value_columns is None:
        cols = "*"
    else:
        wanted = dict.fromkeys([*definition.key_columns, *definition.value_columns, "time"])
        cols = ", ".join(quote_ident(c) for c in wanted)
    where = " AND ".join([f"time > to_timestamp_nanos({cutoff})",
                          *(f"{k} IS NOT NULL" for k in keys)])
    partition = f"PARTITION BY {', '.join(keys)} " if keys else ""
    return (f"SELECT * FROM (SELECT {cols}, row_number() OVER ({partition}ORDER BY time DESC)"
            f" AS __weir_rn FROM {quote_ident(definition.table)} WHERE {where}) "
            f"WHERE __weir_rn <= {definition.count}")


def distinct_cache_refill_sql(definition: DistinctCacheDefinition, now_ns: int) -> str | None:
    """The query whose rows `DistinctCache.load` takes: each stored combination seen within
    `max_age` of now, with the newest time it was seen at."""
    if definition.max_age_s <= 0:
        return None
    cutoff = max(now_ns - definition.max_age_s * _NS, _MIN_NS)
    cols = ", ".join(quote_ident(c) for c in definition.columns)
    return (f"SELECT {cols}, max(time) AS time FROM {quote_ident(definition.table)} "
            f"WHERE time > to_timestamp_nanos({cutoff}) GROUP BY {cols}")
