"""The catalog's stored form: one version of the catalog as a JSON document, and the
conversions between it and the in-memory schemas (weir.catalog.schema)."""

from __future__ import annotations

import json
from typing import Any, NotRequired, TypedDict

from weir.catalog.caches import (
    DistinctCacheDefinition,
    DistinctCacheJson,
    LastCacheDefinition,
    LastCacheJson,
)
from weir.catalog.columns import Column
from weir.catalog.schema import DatabaseSchema, TableSchema, TriggerDefinition, TriggerJson


# A catalog version, `<prefix>/catalog/<version:020d>.json` (format 2), or a single node's
# catalog before the log, `<node>/catalog.json` (format 1, no `version`). Keys marked
# NotRequired may be missing from a file an older Weir wrote; this one always writes them
# (except a live table's `deleted`).
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
    version: NotRequired[int]
    uuid: str
    sequence: int
    node_id: str  # (format 2: the node that wrote this version)
    parent: NotRequired[str | None]  # (format 2: log.parent_tag of the version before)
    gen1_duration_s: NotRequired[float | None]
    next_id: int
    databases: list[DatabaseJson]
    deleted_databases: NotRequired[list[DatabaseJson]]
    #: other parts' state, JSON they define and read themselves (weir.auth: tokens)
    extra: NotRequired[dict[str, Any]]


def encode(doc: CatalogJson) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def table_to_json(t: TableSchema) -> TableJson:
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


def table_from_json(t: TableJson) -> TableSchema:
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


def db_to_json(d: DatabaseSchema) -> DatabaseJson:
    return {
        "id": d.id,
        "name": d.name,
        "retention_period_ns": d.retention_period_ns,
        "deleted": d.deleted,
        "hard_delete_time_ns": d.hard_delete_time_ns,
        "deleted_name": d.deleted_name,
        "deleted_wal_seq": d.deleted_wal_seq,
        "tables": [table_to_json(t) for t in d.tables.values()],
        "deleted_tables": [table_to_json(t) for t in d.deleted_tables],
        "triggers": [t.to_json() for t in d.triggers.values()],
    }


def db_from_json(raw: DatabaseJson) -> DatabaseSchema:
    d = DatabaseSchema(
        id=raw["id"],
        name=raw["name"],
        retention_period_ns=raw.get("retention_period_ns"),
        deleted=raw.get("deleted", False),
        hard_delete_time_ns=raw.get("hard_delete_time_ns"),
        deleted_name=raw.get("deleted_name"),
        deleted_wal_seq=raw.get("deleted_wal_seq"),
        deleted_tables=[table_from_json(t) for t in raw.get("deleted_tables", [])],
    )
    for t in raw["tables"]:
        d.tables[t["name"]] = table_from_json(t)
    for trig in raw.get("triggers", []):
        d.triggers[trig["trigger_name"]] = TriggerDefinition.from_json(trig)
    return d
