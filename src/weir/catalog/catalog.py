"""The catalog: every database, table, column and trigger, persisted as one JSON object.

Each change bumps `sequence` and is written with an atomic put before the change is
used, so a write that relies on a new column is never acknowledged before the catalog
that knows the column is durable.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from weir.catalog.schema import (
    FIELD,
    TAG,
    TIME,
    Column,
    DatabaseSchema,
    TableSchema,
    TriggerDefinition,
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


@dataclass
class Limits:
    """Core's limits (influxdb3 serve.rs CORE_NUM_*)."""

    databases: int = 5
    tables: int = 2000
    columns_per_table: int = 500


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
        self.extra: dict[str, Any] = {}  # other parts' persisted state (tokens)

    # ---- persistence -------------------------------------------------------------

    def load(self) -> None:
        """Read the catalog from the store, or create it with the `_internal` database."""
        try:
            raw = json.loads(self.store.get(self.path))
        except FileNotFoundError:
            with self._lock:
                self._create_db_locked(INTERNAL_DB, count_limit=False)
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
        doc = {
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
        with self._lock:
            return [d.name for d in self._deleted]

    def db_exists(self, name: str) -> bool:
        with self._lock:
            return name in self._dbs

    def db(self, name: str) -> DatabaseSchema:
        with self._lock:
            try:
                return self._dbs[name]
            except KeyError:
                raise DatabaseNotFound(name) from None

    def was_deleted(self, name: str) -> bool:
        with self._lock:
            return any(d.name == name for d in self._deleted) and name not in self._dbs

    def _create_db_locked(self, name: str, count_limit: bool = True,
                          retention_period_ns: int | None = None) -> DatabaseSchema:
        if count_limit:
            user_dbs = [n for n in self._dbs if n != INTERNAL_DB]
            if len(user_dbs) >= self.limits.databases:
                raise LimitExceeded(
                    f"Adding a new database would exceed limit of {self.limits.databases} databases"
                )
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
        with self._lock:
            self.db(name).retention_period_ns = retention_period_ns
            self._persist_locked()

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

    def delete_database(self, name: str) -> DatabaseSchema:
        """Soft delete: the database disappears from use; its triggers are disabled."""
        with self._lock:
            if name == INTERNAL_DB:
                raise CatalogError("cannot delete the _internal database")
            d = self.db(name)
            d.deleted = True
            for t in d.triggers.values():
                t.disabled = True
            del self._dbs[name]
            self._deleted.append(d)
            self._persist_locked()
            return d

    # ---- tables ------------------------------------------------------------------

    def table(self, db: str, table: str) -> TableSchema:
        with self._lock:
            t = self.db(db).tables.get(table)
            if t is None:
                raise TableNotFound(db, table)
            return t

    def create_table(self, db: str, table: str, tags: list[str],
                     fields: list[tuple[str, str]]) -> None:
        with self._lock:
            d = self.db(db)
            if table in d.tables:
                raise AlreadyExists(f"{db}.{table}")
            if len(d.tables) >= self.limits.tables:
                raise LimitExceeded(
                    f"Update to schema would exceed number of tables limit of {self.limits.tables}"
                )
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
            d.tables[table] = TableSchema(id=self._new_id(), name=table, columns=cols)
            self._persist_locked()

    def delete_table(self, db: str, table: str) -> None:
        with self._lock:
            d = self.db(db)
            if table not in d.tables:
                raise TableNotFound(db, table)
            del d.tables[table]
            self._persist_locked()

    def add_columns(self, db: str, table: str, new: list[Column]) -> TableSchema:
        """Create the table if needed and add `new` columns (not persisted; call persist())."""
        with self._lock:
            d = self.db(db)
            t = d.tables.get(table)
            if t is None and len(d.tables) >= self.limits.tables:
                raise LimitExceeded(
                    "Update to schema would exceed number of tables limit of "
                    f"{self.limits.tables}"
                )
            known = t.columns if t is not None else {"time": Column("time", TIME, "time")}
            # checked before the table is created, so a refused write leaves no empty table
            if len(known) + len({c.name for c in new} - known.keys()) > \
                    self.limits.columns_per_table:
                raise LimitExceeded(
                    "Update to schema would exceed number of columns per table limit of "
                    f"{self.limits.columns_per_table} columns"
                )
            if t is None:
                t = TableSchema(id=self._new_id(), name=table, columns=known)
                d.tables[table] = t
            # Copy-on-write so readers iterating the old dict are never disturbed.
            cols = dict(t.columns)
            for c in new:
                cols.setdefault(c.name, c)
            t.columns = cols
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


def _db_to_json(d: DatabaseSchema) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "retention_period_ns": d.retention_period_ns,
        "deleted": d.deleted,
        "tables": [
            {
                "id": t.id,
                "name": t.name,
                "columns": [[c.name, c.kind, c.type] for c in t.columns.values()],
            }
            for t in d.tables.values()
        ],
        "triggers": [t.to_json() for t in d.triggers.values()],
    }


def _db_from_json(raw: dict[str, Any]) -> DatabaseSchema:
    d = DatabaseSchema(
        id=raw["id"],
        name=raw["name"],
        retention_period_ns=raw.get("retention_period_ns"),
        deleted=raw.get("deleted", False),
    )
    for t in raw["tables"]:
        d.tables[t["name"]] = TableSchema(
            id=t["id"], name=t["name"], columns={c[0]: Column(*c) for c in t["columns"]}
        )
    for trig in raw.get("triggers", []):
        d.triggers[trig["trigger_name"]] = TriggerDefinition.from_json(trig)
    return d
