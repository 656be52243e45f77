"""The catalog on its own over a real object store (file and memory): persistence and
reload, databases, tables, triggers, limits."""

from __future__ import annotations

import json

import pytest

from weir.catalog import Catalog, Column, Limits, TriggerDefinition
from weir.errors import AlreadyExists, DatabaseNotFound, LimitExceeded, TriggerRunning
from weir.objectstore import FileObjectStore, MemoryObjectStore


@pytest.fixture(params=["file", "memory"])
def store(request, tmp_path):
    return FileObjectStore(tmp_path / "os") if request.param == "file" else MemoryObjectStore()


def test_catalog_persists_and_reloads(store):
    c = Catalog(store, "n1")
    c.load()
    c.create_database("db1")
    c.add_columns("db1", "cpu", [Column("host", "tag", "tag"), Column("usage", "field", "float")])
    c.persist()
    c.create_trigger(TriggerDefinition("t1", "p.py", "db1", "all_tables", {"a": "b"}))
    c2 = Catalog(store, "n1")
    c2.load()
    assert c2.uuid == c.uuid
    assert sorted(c2.databases()) == ["_internal", "db1"]
    assert list(c2.table("db1", "cpu").columns) == ["time", "host", "usage"]
    assert c2.get_trigger("db1", "t1").trigger_arguments == {"a": "b"}
    with pytest.raises(AlreadyExists):
        c2.create_database("db1")
    with pytest.raises(TriggerRunning):
        c2.delete_trigger("db1", "t1")
    assert c2.set_trigger_disabled("db1", "t1", True) is True
    c2.delete_trigger("db1", "t1")
    c2.delete_database("db1")
    assert c2.was_deleted("db1")
    with pytest.raises(DatabaseNotFound):
        c2.db("db1")


def test_catch_up_is_stored_and_older_catalogs_load_without_it(store):
    c = Catalog(store, "n1")
    c.load()
    c.create_database("db1")
    c.create_trigger(TriggerDefinition("hourly", "p.py", "db1", "every:1h", catch_up=True))
    c.create_trigger(TriggerDefinition("plain", "p.py", "db1", "every:1m"))
    c2 = Catalog(store, "n1")
    c2.load()
    assert c2.get_trigger("db1", "hourly").catch_up is True
    assert c2.get_trigger("db1", "plain").catch_up is False
    # a catalog written before the setting existed: its triggers have no such field
    doc = json.loads(store.get(c.path))
    for db in doc["databases"]:
        for trigger in db.get("triggers", []):
            del trigger["catch_up"]
    store.put(c.path, json.dumps(doc).encode())
    old = Catalog(store, "n1")
    old.load()
    assert [t.catch_up for t in old.triggers("db1")] == [False, False]


def test_catalog_limits(store):
    c = Catalog(store, "n1", Limits(databases=5))
    c.load()
    for i in range(5):
        c.create_database(f"d{i}")
    with pytest.raises(LimitExceeded, match="exceed limit of 5 databases"):
        c.create_database("d5")
    c.limits.columns_per_table = 3
    with pytest.raises(LimitExceeded, match="columns per table"):
        c.add_columns("d0", "t", [Column(f"f{i}", "field", "float") for i in range(5)])
