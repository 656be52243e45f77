"""The catalog: every database, table, column and trigger, kept as a log of versions.

Each change is written as the next numbered version (a whole JSON document, see
weir.catalog.log) before the change is used, so a write that relies on a new column is
never acknowledged before the catalog that knows the column is durable. Several nodes
may share one log: the only coordination is the store's put-if-absent.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from weir.catalog.caches import (
    DEFAULT_LAST_CACHE_TTL_S,
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_CARDINALITY,
    DistinctCacheDefinition,
    LastCacheDefinition,
    new_distinct_cache,
    new_last_cache,
)
from weir.catalog.columns import FIELD, TAG, TIME, Column
from weir.catalog.document import CatalogJson, db_from_json, db_to_json, encode
from weir.catalog.hard_delete import HardDelete
from weir.catalog.log import CatalogConflict, CatalogLog, ColumnTypeConflict, parent_tag
from weir.catalog.schema import (
    DatabaseSchema,
    TableSchema,
    TriggerDefinition,
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

log = logging.getLogger(__name__)

INTERNAL_DB = "_internal"
#: `_internal` keeps 7 days, as the reference's does (SHOW RETENTION POLICIES: 168h0m0s)
INTERNAL_DB_RETENTION_NS = 7 * 24 * 3600 * 1_000_000_000


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


#: how often a change is applied again on a newer catalog before CatalogConflict
_COMMIT_TRIES = 30
#: the document's keys that say which version it is; the others are the catalog
_HEADER_KEYS = frozenset({"format", "version", "sequence", "node_id", "parent"})
_FORMAT = 2

_T = TypeVar("_T")


@dataclass
class _Pending:
    """A change `ensure_database` or `add_columns` made in memory that its caller has
    not committed yet (it calls `persist()`): replayed whenever the catalog is rebuilt
    from a stored version, until it is committed."""

    thread: int
    apply: Callable[[], object]
    database: str
    creates_database: bool


def _state_of(doc: CatalogJson) -> dict[str, object]:
    return {k: v for k, v in doc.items() if k not in _HEADER_KEYS}


class Catalog:
    """The catalog, kept as a log of numbered versions under `<prefix>/catalog/`
    (weir.catalog.log): `prefix` is the cluster id in a cluster, the node id otherwise.

    Every change is a function re-runnable on a fresh catalog (`_commit`, `commit`): it
    is applied in memory and the result written as the next version with put-if-absent.
    If another node wrote that version first, the newest version is read and the same
    change applied again on top of it (a change that no longer fits raises, e.g.
    AlreadyExists, and writes nothing). If the write fails, memory is put back to the
    last committed version. `refresh` reads the versions other nodes wrote."""

    def __init__(self, store: ObjectStore, node_id: str, limits: Limits | None = None, *,
                 prefix: str | None = None) -> None:
        self.store = store
        self.node_id = node_id
        self.prefix = prefix or node_id
        self.limits = limits or Limits()
        self._log = CatalogLog(store, self.prefix)
        self._lock = threading.RLock()
        self.uuid = str(uuid.uuid4())
        self.gen1_duration_s: float | None = None
        self._dbs: dict[str, DatabaseSchema] = {}
        self._deleted: list[DatabaseSchema] = []
        self._next_id = 1
        #: other parts' persisted state, JSON they define and read (weir.auth: tokens)
        self.extra: dict[str, Any] = {}
        self._version = 0
        #: the last version's document as stored, what a failed change is undone to
        self._committed = b""
        self._committed_state: dict[str, object] = {}
        self._pending: list[_Pending] = []
        #: threads whose pending changes no longer applied on a newer catalog: their
        #: next persist() raises this instead of writing
        self._failed: dict[int, CatalogError] = {}
        self._in_commit = False
        #: a commit took in other nodes' versions that no listener has heard of yet
        self._unannounced = False
        self._listeners: list[Callable[[], None]] = []

    # ---- versions ------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The version of the catalog in memory (0 before `load`)."""
        return self._version

    @property
    def sequence(self) -> int:
        """The catalog's version (the name older callers use)."""
        return self._version

    @property
    def path(self) -> str:
        """The store key of the version in memory (for a started catalog, an object
        that exists unless newer versions pushed it out)."""
        return self._log.key(max(self._version, 1))

    @property
    def _legacy_path(self) -> str:
        """Where a single node's catalog lived before the log (format 1)."""
        return f"{self.node_id}/catalog.json"

    def load(self) -> None:
        """Read the newest version; or write version 1, from a single node's older
        `<node_id>/catalog.json` (format 1, left in place) if there is one, else a new
        catalog with the `_internal` database. Of nodes starting together on an empty
        bucket, one writes version 1 and the others read it."""
        with self._lock:
            for _ in range(_COMMIT_TRIES):
                found = self._read_newest()
                if found is not None:
                    self._adopt_locked(*found)
                    self._rebuild_locked(None, keep_mine=True)
                    return
                data = self._first_version_locked()
                if self._log.try_write(1, data):
                    self._adopt_locked(1, data)
                    return
            raise CatalogConflict(f"catalog under {self._log.folder}: lost the race for "
                                  f"its first version {_COMMIT_TRIES} times")

    def _first_version_locked(self) -> bytes:
        try:
            old = self.store.get(self._legacy_path)
        except FileNotFoundError:
            self._install_locked({"format": _FORMAT, "uuid": str(uuid.uuid4()),
                                  "sequence": 0, "node_id": self.node_id, "next_id": 1,
                                  "databases": []})
            self._create_db_locked(INTERNAL_DB, count_limit=False,
                                   retention_period_ns=INTERNAL_DB_RETENTION_NS)
        else:
            log.info("catalog: %s (format 1) becomes version 1 of %s", self._legacy_path,
                     self._log.folder)
            self._install_locked(json.loads(old))
        return encode(self._document_locked(1))

    def _read_newest(self) -> tuple[int, bytes] | None:
        """The newest version and its document (a LIST and a GET); None if none."""
        for _ in range(_COMMIT_TRIES):
            newest = self._log.newest()
            if newest is None:
                return None
            try:
                return newest, self._log.read(newest)
            except FileNotFoundError:
                continue  # deleted between the LIST and the GET: a newer one is there
        raise CatalogConflict(f"catalog under {self._log.folder}: its newest version kept "
                              "disappearing while being read")

    def refresh(self) -> bool:
        """Take in the versions other nodes wrote since ours (one LIST when there are
        none; the store is asked without holding the lock, so readers do not wait).
        True, and the change listeners called, when the catalog changed."""
        newest = self._log.newest()
        data = None
        if newest is not None and newest > self._version:
            try:
                data = self._log.read(newest)
            except FileNotFoundError:
                data = None  # pushed out by a newer one already: the next refresh
        with self._lock:
            changed = self._unannounced
            self._unannounced = False
            if data is not None and newest is not None and newest > self._version:
                self._adopt_locked(newest, data)
                self._rebuild_locked(None, keep_mine=True)
                changed = True
        if changed:
            for listener in list(self._listeners):
                listener()
        return changed

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` (in the refreshing thread, without the catalog's lock) each
        time `refresh` finds that other nodes changed the catalog."""
        with self._lock:
            self._listeners.append(listener)

    def commit(self, change: Callable[[], _T]) -> _T:
        """Apply `change` to this catalog and write the result as the next version.

        `change` may be run more than once: again on the newest catalog each time
        another node wrote the next version first, so it must read what it needs from
        the catalog when it runs (e.g. `extra`), not from before. What it raises is
        raised with nothing written and the catalog as it was."""
        return self._commit(change)

    def persist(self) -> None:
        """Commit what callers changed in memory themselves: `ensure_database` and
        `add_columns` (replayed on the newest catalog if another node wrote first), the
        `extra` entries changed in place (set again there), and `gen1_duration_s` (set
        there only if no node has set it yet: it is fixed once set). Raises the error of
        this thread's pending changes if they no longer applied to a newer catalog
        (ColumnTypeConflict, LimitExceeded). Prefer `commit` for new code."""
        with self._lock:
            failed = self._failed.pop(threading.get_ident(), None)
            if failed is not None:
                raise failed
            before = self._committed_state.get("extra")
            before_extra = before if isinstance(before, dict) else {}
            changed = {k: copy.deepcopy(v) for k, v in self.extra.items()
                       if k not in before_extra or before_extra[k] != v}
            removed = [k for k in before_extra if k not in self.extra]
            gen1 = self.gen1_duration_s

            def change() -> None:
                for k in removed:
                    self.extra.pop(k, None)
                self.extra.update(copy.deepcopy(changed))
                if self.gen1_duration_s is None:
                    self.gen1_duration_s = gen1

            self._commit(change)

    def _commit(self, change: Callable[[], _T]) -> _T:
        me = threading.get_ident()
        with self._lock:
            if self._in_commit:  # a change made inside another one is part of it
                return change()
            self._in_commit = True
            try:
                for attempt in range(_COMMIT_TRIES):
                    try:
                        if attempt:
                            # another node wrote the next version first: start again on
                            # the newest, with the changes still pending, after a random
                            # pause that grows with each loss, so nodes that keep colliding
                            # (a busy machine, many nodes) spread out rather than repeat
                            time.sleep(random.uniform(0, min(0.25, 0.002 * 2 ** attempt)))
                            self._reload_locked(me)
                        result = change()
                        if self._write_locked():
                            return result
                    except BaseException:
                        self._rebuild_locked(me, keep_mine=False)
                        raise
                self._rebuild_locked(me, keep_mine=False)
                raise CatalogConflict(
                    f"catalog under {self._log.folder}: lost the race for the next version "
                    f"{_COMMIT_TRIES} times in a row")
            finally:
                self._in_commit = False

    def _write_locked(self) -> bool:
        """Write memory as the next version (nothing if it equals the last one). False
        if another node has that version."""
        version = self._version + 1
        doc = self._document_locked(version)
        state = _state_of(doc)
        if state == self._committed_state:
            self._pending.clear()  # what they did is in the stored version already
            return True
        data = encode(doc)
        if not self._log.try_write(version, data) or not self._log.settle(version, data):
            return False
        self._version, self._committed, self._committed_state = version, data, state
        self._pending.clear()
        return True

    def _reload_locked(self, me: int) -> None:
        found = self._read_newest()
        if found is None:
            raise CatalogError(f"catalog under {self._log.folder} is gone from the store")
        self._adopt_locked(*found)
        self._unannounced = True
        error = self._rebuild_locked(me, keep_mine=True)
        if error is not None:
            raise error

    def _adopt_locked(self, version: int, data: bytes) -> None:
        """Take stored version `version` as the last committed one (memory is rebuilt
        from it by `_rebuild_locked`)."""
        doc: CatalogJson = json.loads(data)
        if doc.get("format", 1) > _FORMAT:
            raise CatalogError(f"catalog {self._log.key(version)} has format "
                               f"{doc['format']}, newer than this Weir reads ({_FORMAT})")
        self._version, self._committed, self._committed_state = version, data, _state_of(doc)

    def _rebuild_locked(self, me: int | None, *, keep_mine: bool) -> CatalogError | None:
        """Memory := the last committed version plus the pending changes (without
        thread `me`'s unless `keep_mine`). A pending change that no longer applies is
        dropped with its thread's others; that thread's next persist() raises its error,
        or, for `me`, it is returned."""
        if not keep_mine:
            self._pending = [p for p in self._pending if p.thread != me]
        mine: CatalogError | None = None
        while True:
            self._install_locked(json.loads(self._committed) if self._committed else
                                 {"format": _FORMAT, "uuid": self.uuid, "sequence": 0,
                                  "node_id": self.node_id, "next_id": 1, "databases": []})
            for p in self._pending:
                try:
                    p.apply()
                except CatalogError as e:
                    self._pending = [q for q in self._pending if q.thread != p.thread]
                    if p.thread == me:
                        mine = e
                    else:
                        self._failed[p.thread] = e
                    break
            else:
                return mine

    def _install_locked(self, raw: CatalogJson) -> None:
        self.uuid = raw["uuid"]
        self.gen1_duration_s = raw.get("gen1_duration_s")
        self._next_id = raw["next_id"]
        self.extra = raw.get("extra", {})
        self._dbs = {d["name"]: db_from_json(d) for d in raw["databases"]}
        self._deleted = [db_from_json(d) for d in raw.get("deleted_databases", [])]

    def _document_locked(self, version: int) -> CatalogJson:
        return {
            "format": _FORMAT,
            "version": version,
            "sequence": version,
            "node_id": self.node_id,  # the node that wrote this version
            "parent": parent_tag(self._committed) if self._committed else None,
            "uuid": self.uuid,
            "gen1_duration_s": self.gen1_duration_s,
            "next_id": self._next_id,
            "databases": [db_to_json(d) for d in self._dbs.values()],
            "deleted_databases": [db_to_json(d) for d in self._deleted],
            # a copy: the committed state compared against later must not change with it
            "extra": copy.deepcopy(self.extra),
        }

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
        def change() -> None:
            if name in self._dbs:
                raise AlreadyExists(name)
            self._create_db_locked(name, retention_period_ns=retention_period_ns)

        self._commit(change)

    def update_database(self, name: str, retention_period_ns: int | None) -> None:
        """Set (or, with None, clear) a database's retention period."""
        if retention_period_ns is not None and retention_period_ns <= 0:
            raise CatalogError("retention period must be greater than zero")
        if name == INTERNAL_DB:
            raise CatalogError("cannot modify the _internal database")

        def change() -> None:
            self.db(name).retention_period_ns = retention_period_ns

        self._commit(change)

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
        """The database, created (not yet committed: call persist()) if missing; True if
        it was created. If another node creates it first, persist() uses theirs."""
        with self._lock:
            d = self._dbs.get(name)
            if d is not None:
                return d, False
            d = self._create_db_locked(name, count_limit=count_limit)

            def again() -> None:
                if name not in self._dbs:
                    self._create_db_locked(name, count_limit=count_limit)

            self._pending.append(_Pending(threading.get_ident(), again, name, True))
            return d, True

    def discard_empty_database(self, name: str) -> bool:
        """Forget a database that this thread's `ensure_database` just created (not yet
        committed) and that received nothing; False if it has tables or triggers by
        now, or was committed meanwhile (an empty database then stays)."""
        me = threading.get_ident()
        with self._lock:
            d = self._dbs.get(name)
            if d is None or d.tables or d.triggers:
                return False
            mine = [i for i, p in enumerate(self._pending)
                    if p.thread == me and p.database == name and p.creates_database]
            if not mine:
                return False
            del self._pending[mine[-1]]
            del self._dbs[name]
            return True

    def delete_database(self, name: str, hard_delete_at_ns: int | None = None,
                        wal_seq: int | None = None) -> DatabaseSchema:
        """Soft delete: the database disappears from use; its triggers are disabled. Its
        schema is kept until `hard_delete_at_ns` (None: never) has passed and the storage
        side has removed its data (`due_hard_deletes`, `complete_hard_delete`). `wal_seq`:
        the newest WAL file now (see `deleted_before`)."""
        if name == INTERNAL_DB:
            raise CatalogError("cannot delete the _internal database")

        def change() -> DatabaseSchema:
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
            return d

        return self._commit(change)

    def set_hard_delete_time(self, db_id: int, table_id: int | None,
                             at_ns: int | None) -> None:
        """Change when a soft-deleted database (`table_id` None) or table goes for good."""
        def change() -> None:
            if table_id is None:
                for d in self._deleted:
                    if d.id == db_id:
                        d.hard_delete_time_ns = at_ns
                        return
                raise NotFound(f"deleted database with id {db_id}")
            for d in [*self._dbs.values(), *self._deleted]:
                if d.id == db_id:
                    for t in d.deleted_tables:
                        if t.id == table_id:
                            t.hard_delete_time_ns = at_ns
                            return
            raise NotFound(f"deleted table with id {table_id} in database {db_id}")

        self._commit(change)

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
        """Forget a hard-deleted database or table for good (committed before returning).
        Call it only once its data is gone, including from WAL files a restart would
        replay: afterwards the name is free and a replayed write would create it anew.
        Doing it twice (or on two nodes) is harmless."""
        def change() -> None:
            if item.table_id is None:
                self._deleted = [d for d in self._deleted if d.id != item.db_id]
                return
            for d in [*self._dbs.values(), *self._deleted]:
                if d.id == item.db_id:
                    d.deleted_tables = [t for t in d.deleted_tables if t.id != item.table_id]

        self._commit(change)

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
        """Create a table; with `create_database`, its database too if missing (or made
        by another node meanwhile). Every limit is checked before anything changes, so a
        refused request leaves nothing behind."""
        if len(set(tags) | {name for name, _ in fields} - {"time"}) > \
                self.limits.columns_per_table:
            raise self.limits.column_error()
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

        def change() -> None:
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
            if new_db:
                d = self._create_db_locked(db, count_limit=False)
            d.tables[table] = TableSchema(id=self._new_id(), name=table, columns=dict(cols))

        self._commit(change)

    def delete_table(self, db: str, table: str, hard_delete_at_ns: int | None = None,
                     wal_seq: int | None = None) -> TableSchema:
        """Soft delete: the table disappears from use; its schema is kept (in
        `deleted_tables`) until `hard_delete_at_ns` (None: never) has passed and the
        storage side has removed its data."""
        def change() -> TableSchema:
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
            return t

        return self._commit(change)

    def add_columns(self, db: str, table: str, new: list[Column]) -> TableSchema:
        """Create the table if needed and add `new` columns (not committed: call
        persist()). A column the table has already is fine with the same kind and type
        and ColumnTypeConflict with another; persist() replays this on a newer catalog
        if another node wrote first, with the same rules."""
        new = list(new)
        with self._lock:
            t = self._add_columns_locked(db, table, new)

            def again() -> None:
                self._add_columns_locked(db, table, new)

            self._pending.append(_Pending(threading.get_ident(), again, db, False))
            return t

    def _add_columns_locked(self, db: str, table: str, new: list[Column]) -> TableSchema:
        d = self.db(db)
        t = d.tables.get(table)
        if t is None and (n := self.table_count()) >= self.limits.tables:
            raise self.limits.table_error(n)
        known = t.columns if t is not None else {"time": Column("time", TIME, "time")}
        for c in new:
            old = known.get(c.name)
            if old is not None and (old.kind, old.type) != (c.kind, c.type):
                raise ColumnTypeConflict(db, table, c.name, _kind_text(old), _kind_text(c))
        # checked before the table is created, so a refused write leaves no empty
        # table; `time` is not counted
        if len(known.keys() - {"time"}) + len({c.name for c in new} - known.keys()) > \
                self.limits.columns_per_table:
            raise self.limits.column_error()
        if t is None:
            t = TableSchema(id=self._new_id(), name=table, columns=dict(known))
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
        commit the catalog; DatabaseNotFound / TableNotFound if there is no such table."""
        def change() -> LastCacheDefinition:
            t = self._cache_table(db, table)
            cache = new_last_cache(table, t.columns, t.last_caches, t.next_last_cache_id,
                                   name=name, key_columns=key_columns,
                                   value_columns=value_columns, count=count, ttl_s=ttl_s)
            t.last_caches = {**t.last_caches, cache.name: cache}
            t.next_last_cache_id += 1
            return cache

        return self._commit(change)

    def delete_last_cache(self, db: str, table: str, name: str) -> LastCacheDefinition:
        def change() -> LastCacheDefinition:
            t = self._cache_table(db, table)
            cache = t.last_caches.get(name)
            if cache is None:
                raise NotFound(name)
            t.last_caches = {k: v for k, v in t.last_caches.items() if k != name}
            return cache

        return self._commit(change)

    def create_distinct_cache(self, db: str, table: str, columns: Sequence[str], *,
                              name: str | None = None,
                              max_cardinality: int = DEFAULT_MAX_CARDINALITY,
                              max_age_s: int = DEFAULT_MAX_AGE_S) -> DistinctCacheDefinition:
        """Record a new distinct-value cache (checked as `caches.new_distinct_cache`
        says) and commit the catalog."""
        def change() -> DistinctCacheDefinition:
            t = self._cache_table(db, table)
            cache = new_distinct_cache(table, t.columns, t.distinct_caches,
                                       t.next_distinct_cache_id, name=name,
                                       cache_columns=columns, max_cardinality=max_cardinality,
                                       max_age_s=max_age_s)
            t.distinct_caches = {**t.distinct_caches, cache.name: cache}
            t.next_distinct_cache_id += 1
            return cache

        return self._commit(change)

    def delete_distinct_cache(self, db: str, table: str, name: str) -> DistinctCacheDefinition:
        def change() -> DistinctCacheDefinition:
            t = self._cache_table(db, table)
            cache = t.distinct_caches.get(name)
            if cache is None:
                raise NotFound(name)
            t.distinct_caches = {k: v for k, v in t.distinct_caches.items() if k != name}
            return cache

        return self._commit(change)

    def _cache_table(self, db: str, table: str) -> TableSchema:
        t = self.db(db).tables.get(table)
        if t is None:
            raise TableNotFound(db, table)
        return t

    # ---- triggers ----------------------------------------------------------------

    def create_trigger(self, defn: TriggerDefinition) -> None:
        if defn.database == INTERNAL_DB:
            raise CatalogError("cannot modify the _internal database")

        def change() -> None:
            d = self.db(defn.database)
            if defn.trigger_name in d.triggers:
                raise AlreadyExists(defn.trigger_name)
            d.triggers[defn.trigger_name] = defn

        self._commit(change)

    def get_trigger(self, db: str, name: str) -> TriggerDefinition:
        with self._lock:
            t = self.db(db).triggers.get(name)
            if t is None:
                raise NotFound(name)
            return t

    def set_trigger_disabled(self, db: str, name: str, disabled: bool) -> bool:
        def change() -> bool:
            t = self.get_trigger(db, name)
            if t.disabled == disabled:
                return False
            t.disabled = disabled
            return True

        return self._commit(change)

    def delete_trigger(self, db: str, name: str, force: bool = False) -> TriggerDefinition:
        def change() -> TriggerDefinition:
            t = self.get_trigger(db, name)
            if not t.disabled and not force:
                raise TriggerRunning(name)
            del self.db(db).triggers[name]
            return t

        return self._commit(change)

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



def _kind_text(c: Column) -> str:
    return "a tag" if c.kind == TAG else f"a {c.kind} of type {c.type}"


def _due_tables(d: DatabaseSchema, now_ns: int) -> list[HardDelete]:
    return [HardDelete(d.id, d.name, t.id, t.name, t.hard_delete_time_ns)
            for t in d.deleted_tables
            if t.hard_delete_time_ns is not None and t.hard_delete_time_ns <= now_ns]
