"""The catalog: every database, table, column and trigger, persisted as one JSON object.

Each change bumps `sequence` and is written with an atomic put before the change is
used, so a write that relies on a new column is never acknowledged before the catalog
that knows the column is durable.
"""

from __future__ import annotations

import calendar
import datetime
import json
import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from weir.catalog.caches import (
    DEFAULT_LAST_CACHE_TTL_S,
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_CARDINALITY,
    DistinctCacheDefinition,
    DistinctCacheJson,
    LastCacheDefinition,
    LastCacheJson,
    new_distinct_cache,
    new_last_cache,
)
from weir.catalog.schema import (
    FIELD,
    TAG,
    TIME,
    Column,
    DatabaseSchema,
    TableSchema,
    TriggerDefinition,
    TriggerJson,
    soft_deleted_name,
)
from weir.config import (
    DEFAULT_NUM_COLUMNS_PER_TABLE_LIMIT,
    DEFAULT_NUM_DATABASE_LIMIT,
    DEFAULT_NUM_TABLE_LIMIT,
    ServeConfig,
)
from weir.errors import (
    AlreadyExists,
    CatalogError,
    DatabaseNotFound,
    LimitExceeded,
    NotFound,
    TableNotFound,
    TriggerRunning,
)
from weir.objectstore import ObjectStore

INTERNAL_DB = "_internal"
#: `_internal` keeps 7 days, as the reference's does (SHOW RETENTION POLICIES: 168h0m0s)
INTERNAL_DB_RETENTION_NS = 7 * 24 * 3600 * 1_000_000_000


# The catalog file, `<node>/catalog.json`. Keys marked NotRequired may be missing from a
# file an older Weir wrote; this one always writes them (except a live table's `deleted`).

class TableJson(TypedDict):
    id: int
    name: str
    columns: list[list[str]]  # [name, kind, type] per column
    deleted: NotRequired[bool]
    hard_delete_time_ns: NotRequired[int | None]
    deleted_name: NotRequired[str | None]
    deleted_wal_seq: NotRequired[int | None]
    # a table's caches and its next cache ids; written only once it has had a cache
    last_caches: NotRequired[list[LastCacheJson]]
    distinct_caches: NotRequired[list[DistinctCacheJson]]
    next_cache_ids: NotRequired[list[int]]  # [last, distinct]


class DatabaseJson(TypedDict):
    id: int
    name: str
    retention_period_ns: NotRequired[int | None]
    deleted: NotRequired[bool]
    hard_delete_time_ns: NotRequired[int | None]
    deleted_name: NotRequired[str | None]
    deleted_wal_seq: NotRequired[int | None]
    tables: list[TableJson]
    deleted_tables: NotRequired[list[TableJson]]
    triggers: NotRequired[list[TriggerJson]]


class CatalogJson(TypedDict):
    format: int
    uuid: str
    sequence: int
    node_id: str
    gen1_duration_s: NotRequired[float | None]
    next_id: int
    databases: list[DatabaseJson]
    deleted_databases: NotRequired[list[DatabaseJson]]
    #: other parts' state, JSON they define and read themselves (weir.auth: tokens)
    extra: NotRequired[dict[str, Any]]


@dataclass
class Limits:
    """How many databases (`_internal` not counted), tables (all databases together) and
    columns per table (tags and fields; `time` is not counted, as in the reference's v3
    catalog) the catalog takes; the `serve` options
    --num-database-limit, --num-table-limit and --num-total-columns-per-table-limit."""

    databases: int = DEFAULT_NUM_DATABASE_LIMIT
    tables: int = DEFAULT_NUM_TABLE_LIMIT
    columns_per_table: int = DEFAULT_NUM_COLUMNS_PER_TABLE_LIMIT

    @classmethod
    def from_config(cls, config: ServeConfig) -> Limits:
        return cls(databases=config.num_database_limit, tables=config.num_table_limit,
                   columns_per_table=config.num_total_columns_per_table_limit)

    def database_error(self) -> LimitExceeded:
        return LimitExceeded(
            f"Adding a new database would exceed limit of {self.databases} databases")

    def table_error(self, current: int) -> LimitExceeded:
        return LimitExceeded(
            "Update to schema would exceed number of tables limit: attempted to create "
            f"table but already have {current} table(s) (limit: {self.tables})")

    def column_error(self) -> LimitExceeded:
        return LimitExceeded("Update to schema would exceed number of columns per table "
                             f"limit of {self.columns_per_table} columns")


@dataclass(frozen=True)
class HardDelete:
    """A soft-deleted database (`table_id` None) or table whose hard-deletion time has
    come: the storage side removes its data, then calls `Catalog.complete_hard_delete`."""

    db_id: int
    db_name: str
    table_id: int | None
    table_name: str | None
    deletion_time_ns: int


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))")


def parse_rfc3339_ns(text: str) -> int:
    """An RFC 3339 timestamp (`2025-12-31T23:59:59Z`, up to nanoseconds, any offset) as
    nanoseconds since the epoch, in integers (a float cannot hold times near now)."""
    m = _RFC3339.fullmatch(text.strip())
    if not m:
        raise ValueError(f"invalid timestamp {text!r}: expected RFC 3339, e.g. "
                         "2025-12-31T23:59:59Z")
    y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
    try:
        # datetime only to check the date exists (30 February does not); a leap second
        # (:60) is allowed as RFC 3339 allows it.
        datetime.datetime(y, mo, d, h, mi, min(sec, 59))
    except ValueError as e:
        raise ValueError(f"invalid timestamp {text!r}: {e}") from None
    if sec > 60:
        raise ValueError(f"invalid timestamp {text!r}: second must be in 0..60")
    secs = calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0))
    if m.group(9):
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        secs -= offset if m.group(9) == "+" else -offset
    frac = (m.group(7) or "").ljust(9, "0")
    return secs * 1_000_000_000 + int(frac or 0)


def resolve_hard_delete_time(value: str | None, now_ns: int,
                             default_duration_s: float) -> int | None:
    """`hard_delete_at` (never, now, default or RFC 3339) as the time the deleted thing
    goes for good: None for never, `now_ns` for now or a past time, now plus
    --hard-delete-default-duration for default (also when no value is given, as the
    reference's clients send nothing for a plain delete)."""
    v = (value or "default").strip()
    low = v.lower()
    if low == "never":
        return None
    if low == "now":
        return now_ns
    if low == "default":
        return now_ns + round(default_duration_s * 1_000_000_000)
    try:
        at = parse_rfc3339_ns(v)
    except ValueError:
        raise ValueError(f"Cannot parse the timestamp: {_rfc3339_failure(v)}") from None
    return max(at, now_ns)


def _rfc3339_failure(text: str) -> str:
    """Why `text` is no RFC 3339 time, in the words of the parser the reference uses
    (chrono's ParseError), for its `Cannot parse the timestamp: ...` answer."""
    invalid, short = "input contains invalid characters", "premature end of input"
    i = 0

    def take(spec: str) -> str | None:
        nonlocal i
        for c in spec:
            if i >= len(text):
                return short
            ch = text[i]
            ok = ("0" <= ch <= "9") if c == "d" else (ch in "Tt " if c == "T" else ch == c)
            if not ok:
                return invalid
            i += 1
        return None

    if (err := take("dddd-dd-ddTdd:dd:dd")) is not None:
        return err
    if i < len(text) and text[i] == ".":
        i += 1
        if (err := take("d")) is not None:
            return err
        while i < len(text) and "0" <= text[i] <= "9":
            i += 1
    if i >= len(text):
        return short
    if text[i] in "Zz":
        i += 1
    elif text[i] in "+-":
        i += 1
        if (err := take("dd:dd")) is not None:
            return err
    else:
        return invalid
    if i < len(text):
        return "trailing input"
    return "input is out of range"  # the shape is right: a field is (month 13, 30 Feb)


class Catalog:
    def __init__(self, store: ObjectStore, node_id: str, limits: Limits | None = None) -> None:
        self.store = store
        self.node_id = node_id
        self.path = f"{node_id}/catalog.json"
        self.limits = limits or Limits()
        self._lock = threading.RLock()
        self.uuid = str(uuid.uuid4())
        self.sequence = 0
        self.gen1_duration_s: float | None = None
        self._dbs: dict[str, DatabaseSchema] = {}
        self._deleted: list[DatabaseSchema] = []
        self._next_id = 1
        #: other parts' persisted state, JSON they define and read (weir.auth: tokens)
        self.extra: dict[str, Any] = {}

    # ---- persistence -------------------------------------------------------------

    def load(self) -> None:
        """Read the catalog from the store, or create it with the `_internal` database."""
        try:
            raw: CatalogJson = json.loads(self.store.get(self.path))
        except FileNotFoundError:
            with self._lock:
                self._create_db_locked(INTERNAL_DB, count_limit=False,
                                       retention_period_ns=INTERNAL_DB_RETENTION_NS)
                self._persist_locked()
            return
        with self._lock:
            self.uuid = raw["uuid"]
            self.sequence = raw["sequence"]
            self.gen1_duration_s = raw.get("gen1_duration_s")
            self._next_id = raw["next_id"]
            self.extra = raw.get("extra", {})
            self._dbs = {d["name"]: _db_from_json(d) for d in raw["databases"]}
            self._deleted = [_db_from_json(d) for d in raw.get("deleted_databases", [])]

    def _persist_locked(self) -> None:
        self.sequence += 1
        doc: CatalogJson = {
            "format": 1,
            "uuid": self.uuid,
            "sequence": self.sequence,
            "node_id": self.node_id,
            "gen1_duration_s": self.gen1_duration_s,
            "next_id": self._next_id,
            "databases": [_db_to_json(d) for d in self._dbs.values()],
            "deleted_databases": [_db_to_json(d) for d in self._deleted],
            "extra": self.extra,
        }
        self.store.put(self.path, json.dumps(doc, separators=(",", ":")).encode())

    def persist(self) -> None:
        with self._lock:
            self._persist_locked()

    def _new_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    # ---- databases ---------------------------------------------------------------

    def databases(self, include_internal: bool = True) -> list[str]:
        with self._lock:
            return [n for n in self._dbs if include_internal or n != INTERNAL_DB]

    def deleted_databases(self) -> list[str]:
        """The soft-deleted databases by the names listings show: `<name>-<deletion
        time>`, as the reference renames them."""
        with self._lock:
            return [d.deleted_name or d.name for d in self._deleted]

    def db_exists(self, name: str) -> bool:
        with self._lock:
            return name in self._dbs

    def db(self, name: str) -> DatabaseSchema:
        with self._lock:
            try:
                return self._dbs[name]
            except KeyError:
                raise DatabaseNotFound(name) from None

    def deleted_before(self, db: str, table: str, wal_seq: int) -> bool:
        """Whether rows of `db`.`table` in WAL file `wal_seq` belong to a database or table
        deleted since, so that replaying the WAL leaves them out: the name is deleted and
        not in use, or it is in use again but the file is from before the deletion."""
        with self._lock:
            live = self._dbs.get(db)
            for d in self._deleted:
                if d.name == db and (live is None or (d.deleted_wal_seq is not None
                                                      and wal_seq <= d.deleted_wal_seq)):
                    return True
            if live is None:
                return False
            return any(t.name == table and (table not in live.tables or (
                t.deleted_wal_seq is not None and wal_seq <= t.deleted_wal_seq))
                for t in live.deleted_tables)

    def was_deleted(self, name: str) -> bool:
        with self._lock:
            return any(d.name == name for d in self._deleted) and name not in self._dbs

    def _create_db_locked(self, name: str, count_limit: bool = True,
                          retention_period_ns: int | None = None) -> DatabaseSchema:
        if count_limit:
            # A lowered limit keeps the databases that exist; only new ones are refused.
            user_dbs = [n for n in self._dbs if n != INTERNAL_DB]
            if len(user_dbs) >= self.limits.databases:
                raise self.limits.database_error()
        d = DatabaseSchema(id=self._new_id(), name=name, retention_period_ns=retention_period_ns)
        self._dbs[name] = d
        return d

    def create_database(self, name: str, retention_period_ns: int | None = None) -> None:
        with self._lock:
            if name in self._dbs:
                raise AlreadyExists(name)
            self._create_db_locked(name, retention_period_ns=retention_period_ns)
            self._persist_locked()

    def update_database(self, name: str, retention_period_ns: int | None) -> None:
        """Set (or, with None, clear) a database's retention period."""
        if retention_period_ns is not None and retention_period_ns <= 0:
            raise CatalogError("retention period must be greater than zero")
        with self._lock:
            if name == INTERNAL_DB:
                raise CatalogError("cannot modify the _internal database")
            self.db(name).retention_period_ns = retention_period_ns
            self._persist_locked()

    def retention_cutoff_ns(self, db_name: str, now_ns: int) -> int | None:
        """The oldest time (ns) still inside `db_name`'s retention period at `now_ns`: rows
        with an earlier time are expired. None when the database keeps data forever (or
        does not exist, which leaves nothing to hide)."""
        with self._lock:
            d = self._dbs.get(db_name)
            if d is None or d.retention_period_ns is None:
                return None
            return now_ns - d.retention_period_ns

    def ensure_database(self, name: str, count_limit: bool = True
                        ) -> tuple[DatabaseSchema, bool]:
        """The database, created (not yet persisted) if missing; True if it was created."""
        with self._lock:
            d = self._dbs.get(name)
            if d is not None:
                return d, False
            return self._create_db_locked(name, count_limit=count_limit), True

    def discard_empty_database(self, name: str) -> bool:
        """Forget a database that `ensure_database` just created (not yet persisted) and
        that received nothing; False if it has tables or triggers by now."""
        with self._lock:
            d = self._dbs.get(name)
            if d is None or d.tables or d.triggers:
                return False
            del self._dbs[name]
            return True

    def delete_database(self, name: str, hard_delete_at_ns: int | None = None,
                        wal_seq: int | None = None) -> DatabaseSchema:
        """Soft delete: the database disappears from use; its triggers are disabled. Its
        schema is kept until `hard_delete_at_ns` (None: never) has passed and the storage
        side has removed its data (`due_hard_deletes`, `complete_hard_delete`). `wal_seq`:
        the newest WAL file now (see `deleted_before`)."""
        with self._lock:
            if name == INTERNAL_DB:
                raise CatalogError("cannot delete the _internal database")
            d = self.db(name)
            d.deleted = True
            d.hard_delete_time_ns = hard_delete_at_ns
            d.deleted_wal_seq = wal_seq
            d.deleted_name = soft_deleted_name(
                name, time.time_ns(), d.id,
                [*self._dbs, *(x.deleted_name or x.name for x in self._deleted)])
            for t in d.triggers.values():
                t.disabled = True
            del self._dbs[name]
            self._deleted.append(d)
            self._persist_locked()
            return d

    def set_hard_delete_time(self, db_id: int, table_id: int | None,
                             at_ns: int | None) -> None:
        """Change when a soft-deleted database (`table_id` None) or table goes for good."""
        with self._lock:
            if table_id is None:
                for d in self._deleted:
                    if d.id == db_id:
                        d.hard_delete_time_ns = at_ns
                        self._persist_locked()
                        return
                raise NotFound(f"deleted database with id {db_id}")
            for d in [*self._dbs.values(), *self._deleted]:
                if d.id == db_id:
                    for t in d.deleted_tables:
                        if t.id == table_id:
                            t.hard_delete_time_ns = at_ns
                            self._persist_locked()
                            return
            raise NotFound(f"deleted table with id {table_id} in database {db_id}")

    def deleted_database_schemas(self) -> list[DatabaseSchema]:
        """The soft-deleted databases not yet hard-deleted (for system tables)."""
        with self._lock:
            return list(self._deleted)

    def due_hard_deletes(self, now_ns: int) -> list[HardDelete]:
        """Soft-deleted databases and tables whose hard-deletion time is at or before
        `now_ns`, oldest first. A due database covers its tables; a table deleted on its
        own inside a database that is not (yet) due is listed by itself."""
        out: list[HardDelete] = []
        with self._lock:
            for d in self._deleted:
                if d.hard_delete_time_ns is not None and d.hard_delete_time_ns <= now_ns:
                    out.append(HardDelete(d.id, d.name, None, None, d.hard_delete_time_ns))
                    continue
                out.extend(_due_tables(d, now_ns))
            for d in self._dbs.values():
                out.extend(_due_tables(d, now_ns))
        out.sort(key=lambda h: (h.deletion_time_ns, h.db_id, h.table_id or 0))
        return out

    def complete_hard_delete(self, item: HardDelete) -> None:
        """Forget a hard-deleted database or table for good (persisted before returning).
        Call it only once its data is gone, including from WAL files a restart would
        replay: afterwards the name is free and a replayed write would create it anew.
        Doing it twice is harmless."""
        with self._lock:
            if item.table_id is None:
                kept = [d for d in self._deleted if d.id != item.db_id]
                if len(kept) == len(self._deleted):
                    return
                self._deleted = kept
            else:
                for d in [*self._dbs.values(), *self._deleted]:
                    if d.id == item.db_id:
                        kept_t = [t for t in d.deleted_tables if t.id != item.table_id]
                        if len(kept_t) == len(d.deleted_tables):
                            return
                        d.deleted_tables = kept_t
                        break
                else:
                    return
            self._persist_locked()

    # ---- tables ------------------------------------------------------------------

    def table(self, db: str, table: str) -> TableSchema:
        with self._lock:
            t = self.db(db).tables.get(table)
            if t is None:
                raise TableNotFound(db, table)
            return t

    def table_count(self) -> int:
        """Tables of all live databases: what --num-table-limit counts."""
        with self._lock:
            return sum(len(d.tables) for d in self._dbs.values())

    def create_table(self, db: str, table: str, tags: list[str],
                     fields: list[tuple[str, str]], create_database: bool = False) -> None:
        """Create a table; with `create_database`, its database too if missing. Every limit
        is checked before anything changes, so a refused request leaves nothing behind."""
        with self._lock:
            if len(set(tags) | {name for name, _ in fields} - {"time"}) > \
                    self.limits.columns_per_table:
                raise self.limits.column_error()
            new_db = create_database and db not in self._dbs
            if new_db:
                if sum(1 for n in self._dbs if n != INTERNAL_DB) >= self.limits.databases:
                    raise self.limits.database_error()
                d = DatabaseSchema(id=-1, name=db)
            else:
                d = self.db(db)
            if table in d.tables:
                raise AlreadyExists(f"{db}.{table}")
            if (n := self.table_count()) >= self.limits.tables:
                raise self.limits.table_error(n)
            cols: dict[str, Column] = {}
            for tname in tags:
                if tname in cols or tname == "time":
                    raise CatalogError(f"duplicate or reserved column name: {tname}")
                cols[tname] = Column(tname, TAG, "tag")
            for fname, ftype in fields:
                if fname in cols or fname == "time":
                    raise CatalogError(f"duplicate or reserved column name: {fname}")
                cols[fname] = Column(fname, FIELD, ftype)
            cols["time"] = Column("time", TIME, "time")
            if new_db:
                d = self._create_db_locked(db, count_limit=False)
            d.tables[table] = TableSchema(id=self._new_id(), name=table, columns=cols)
            self._persist_locked()

    def delete_table(self, db: str, table: str, hard_delete_at_ns: int | None = None,
                     wal_seq: int | None = None) -> TableSchema:
        """Soft delete: the table disappears from use; its schema is kept (in
        `deleted_tables`) until `hard_delete_at_ns` (None: never) has passed and the
        storage side has removed its data."""
        with self._lock:
            d = self.db(db)
            t = d.tables.get(table)
            if t is None:
                raise TableNotFound(db, table)
            del d.tables[table]
            t.deleted = True
            t.hard_delete_time_ns = hard_delete_at_ns
            t.deleted_wal_seq = wal_seq
            t.deleted_name = soft_deleted_name(
                table, time.time_ns(), t.id,
                [*d.tables, *(x.deleted_name or x.name for x in d.deleted_tables)])
            d.deleted_tables.append(t)
            self._persist_locked()
            return t

    def add_columns(self, db: str, table: str, new: list[Column]) -> TableSchema:
        """Create the table if needed and add `new` columns (not persisted; call persist())."""
        with self._lock:
            d = self.db(db)
            t = d.tables.get(table)
            if t is None and (n := self.table_count()) >= self.limits.tables:
                raise self.limits.table_error(n)
            known = t.columns if t is not None else {"time": Column("time", TIME, "time")}
            # checked before the table is created, so a refused write leaves no empty
            # table; `time` is not counted
            if len(known.keys() - {"time"}) + len({c.name for c in new} - known.keys()) > \
                    self.limits.columns_per_table:
                raise self.limits.column_error()
            if t is None:
                t = TableSchema(id=self._new_id(), name=table, columns=known)
                d.tables[table] = t
            # Copy-on-write so readers iterating the old dict are never disturbed.
            cols = dict(t.columns)
            for c in new:
                cols.setdefault(c.name, c)
            t.columns = cols
            return t

    # ---- last-value and distinct-value caches ---------------------------------------

    def create_last_cache(self, db: str, table: str, *, name: str | None = None,
                          key_columns: Sequence[str] | None = None,
                          value_columns: Sequence[str] | None = None, count: int = 1,
                          ttl_s: int = DEFAULT_LAST_CACHE_TTL_S) -> LastCacheDefinition:
        """Record a new last-value cache (checked as `caches.new_last_cache` says) and
        persist the catalog; DatabaseNotFound / TableNotFound if there is no such table."""
        with self._lock:
            t = self._cache_table(db, table)
            cache = new_last_cache(table, t.columns, t.last_caches, t.next_last_cache_id,
                                   name=name, key_columns=key_columns,
                                   value_columns=value_columns, count=count, ttl_s=ttl_s)
            t.last_caches = {**t.last_caches, cache.name: cache}
            t.next_last_cache_id += 1
            self._persist_locked()
            return cache

    def delete_last_cache(self, db: str, table: str, name: str) -> LastCacheDefinition:
        with self._lock:
            t = self._cache_table(db, table)
            cache = t.last_caches.get(name)
            if cache is None:
                raise NotFound(name)
            t.last_caches = {k: v for k, v in t.last_caches.items() if k != name}
            self._persist_locked()
            return cache

    def create_distinct_cache(self, db: str, table: str, columns: Sequence[str], *,
                              name: str | None = None,
                              max_cardinality: int = DEFAULT_MAX_CARDINALITY,
                              max_age_s: int = DEFAULT_MAX_AGE_S) -> DistinctCacheDefinition:
        """Record a new distinct-value cache (checked as `caches.new_distinct_cache`
        says) and persist the catalog."""
        with self._lock:
            t = self._cache_table(db, table)
            cache = new_distinct_cache(table, t.columns, t.distinct_caches,
                                       t.next_distinct_cache_id, name=name,
                                       cache_columns=columns, max_cardinality=max_cardinality,
                                       max_age_s=max_age_s)
            t.distinct_caches = {**t.distinct_caches, cache.name: cache}
            t.next_distinct_cache_id += 1
            self._persist_locked()
            return cache

    def delete_distinct_cache(self, db: str, table: str, name: str) -> DistinctCacheDefinition:
        with self._lock:
            t = self._cache_table(db, table)
            cache = t.distinct_caches.get(name)
            if cache is None:
                raise NotFound(name)
            t.distinct_caches = {k: v for k, v in t.distinct_caches.items() if k != name}
            self._persist_locked()
            return cache

    def _cache_table(self, db: str, table: str) -> TableSchema:
        t = self.db(db).tables.get(table)
        if t is None:
            raise TableNotFound(db, table)
        return t

    # ---- triggers ----------------------------------------------------------------

    def create_trigger(self, defn: TriggerDefinition) -> None:
        with self._lock:
            if defn.database == INTERNAL_DB:
                raise CatalogError("cannot modify the _internal database")
            d = self.db(defn.database)
            if defn.trigger_name in d.triggers:
                raise AlreadyExists(defn.trigger_name)
            d.triggers[defn.trigger_name] = defn
            self._persist_locked()

    def get_trigger(self, db: str, name: str) -> TriggerDefinition:
        with self._lock:
            t = self.db(db).triggers.get(name)
            if t is None:
                raise NotFound(name)
            return t

    def set_trigger_disabled(self, db: str, name: str, disabled: bool) -> bool:
        with self._lock:
            t = self.get_trigger(db, name)
            if t.disabled == disabled:
                return False
            t.disabled = disabled
            self._persist_locked()
            return True

    def delete_trigger(self, db: str, name: str, force: bool = False) -> TriggerDefinition:
        with self._lock:
            t = self.get_trigger(db, name)
            if not t.disabled and not force:
                raise TriggerRunning(name)
            del self.db(db).triggers[name]
            self._persist_locked()
            return t

    def triggers(self, db: str | None = None) -> list[TriggerDefinition]:
        with self._lock:
            dbs = [self.db(db)] if db is not None else list(self._dbs.values())
            return [t for d in dbs for t in d.triggers.values()]

    # ---- snapshot state for queries --------------------------------------------------

    def table_schemas(self, db: str) -> dict[str, TableSchema]:
        with self._lock:
            return dict(self.db(db).tables)

    def now_ms(self) -> int:
        return int(time.time() * 1000)


def _due_tables(d: DatabaseSchema, now_ns: int) -> list[HardDelete]:
    return [HardDelete(d.id, d.name, t.id, t.name, t.hard_delete_time_ns)
            for t in d.deleted_tables
            if t.hard_delete_time_ns is not None and t.hard_delete_time_ns <= now_ns]


def _table_to_json(t: TableSchema) -> TableJson:
    out: TableJson = {
        "id": t.id,
        "name": t.name,
        "columns": [[c.name, c.kind, c.type] for c in t.columns.values()],
    }
    if t.deleted:
        out["deleted"] = True
        out["hard_delete_time_ns"] = t.hard_delete_time_ns
        out["deleted_name"] = t.deleted_name
        out["deleted_wal_seq"] = t.deleted_wal_seq
    if t.next_last_cache_id or t.next_distinct_cache_id:
        out["last_caches"] = [c.to_json() for c in t.last_caches.values()]
        out["distinct_caches"] = [c.to_json() for c in t.distinct_caches.values()]
        out["next_cache_ids"] = [t.next_last_cache_id, t.next_distinct_cache_id]
    return out


def _table_from_json(t: TableJson) -> TableSchema:
    name = t["name"]
    next_ids = t.get("next_cache_ids", [0, 0])
    return TableSchema(id=t["id"], name=name,
                       columns={c[0]: Column(*c) for c in t["columns"]},
                       deleted=t.get("deleted", False),
                       hard_delete_time_ns=t.get("hard_delete_time_ns"),
                       deleted_name=t.get("deleted_name"),
                       deleted_wal_seq=t.get("deleted_wal_seq"),
                       last_caches={c["name"]: LastCacheDefinition.from_json(name, c)
                                    for c in t.get("last_caches", [])},
                       distinct_caches={c["name"]: DistinctCacheDefinition.from_json(name, c)
                                        for c in t.get("distinct_caches", [])},
                       next_last_cache_id=next_ids[0], next_distinct_cache_id=next_ids[1])


def _db_to_json(d: DatabaseSchema) -> DatabaseJson:
    return {
        "id": d.id,
        "name": d.name,
        "retention_period_ns": d.retention_period_ns,
        "deleted": d.deleted,
        "hard_delete_time_ns": d.hard_delete_time_ns,
        "deleted_name": d.deleted_name,
        "deleted_wal_seq": d.deleted_wal_seq,
        "tables": [_table_to_json(t) for t in d.tables.values()],
        "deleted_tables": [_table_to_json(t) for t in d.deleted_tables],
        "triggers": [t.to_json() for t in d.triggers.values()],
    }


def _db_from_json(raw: DatabaseJson) -> DatabaseSchema:
    d = DatabaseSchema(
        id=raw["id"],
        name=raw["name"],
        retention_period_ns=raw.get("retention_period_ns"),
        deleted=raw.get("deleted", False),
        hard_delete_time_ns=raw.get("hard_delete_time_ns"),
        deleted_name=raw.get("deleted_name"),
        deleted_wal_seq=raw.get("deleted_wal_seq"),
        deleted_tables=[_table_from_json(t) for t in raw.get("deleted_tables", [])],
    )
    for t in raw["tables"]:
        d.tables[t["name"]] = _table_from_json(t)
    for trig in raw.get("triggers", []):
        d.triggers[trig["trigger_name"]] = TriggerDefinition.from_json(trig)
    return d
