"""The catalog as a log of numbered versions shared by several nodes (issue #13).

Several `Catalog` objects on one real store (memory, file, and S3 through moto) stand
for nodes of a cluster: they race in threads, lose races to each other, and must end
with every change stored exactly once. A thin wrapper around a real store injects
failures and counts requests; nothing of Weir's own is mocked."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable

import pytest

from support.s3 import S3Server, moto_s3  # noqa: F401 - session fixture
from support.stores import Wrapped
from weir.auth import TokenStore
from weir.catalog import (
    Catalog,
    CatalogConflict,
    Column,
    ColumnTypeConflict,
    Limits,
    TriggerDefinition,
)
from weir.catalog.log import KEPT
from weir.catalog.validator import validate_write
from weir.config import ObjectStoreConfig
from weir.errors import AlreadyExists, LineProtocolError, ObjectStoreUnavailable
from weir.objectstore import ObjectStore, open_store

NOW = time.time_ns()
CLUSTER = "cluster-a"


class Faulty(Wrapped):
    """A real store with the catalog's conditional writes made to fail on demand, and
    its LIST and GET requests counted."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.fail_puts = False
        self.always_taken = False
        self.lists = 0
        self.gets = 0

    def put_if_absent(self, path: str, data: bytes) -> bool:
        if self.fail_puts:
            raise ObjectStoreUnavailable(f"put of {path!r} failed: the test took the store away")
        if self.always_taken:
            return False
        return self.inner.put_if_absent(path, data)

    def get(self, path: str) -> bytes:
        self.gets += 1
        return self.inner.get(path)

    def list(self, prefix: str) -> list[str]:
        self.lists += 1
        return self.inner.list(prefix)


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path) -> ObjectStore:  # type: ignore[no-untyped-def]
    return open_store(request.param, str(tmp_path / "store"))


def node(store: ObjectStore, node_id: str) -> Catalog:
    c = Catalog(store, node_id, prefix=CLUSTER)
    c.load()
    return c


def versions(store: ObjectStore) -> list[str]:
    return store.list(f"{CLUSTER}/catalog/")


def run_together(*jobs: Callable[[], None]) -> None:
    """Run the jobs in threads that start at the same moment; re-raise the first error."""
    start = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        start.wait()
        try:
            job()
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]


def all_ids(c: Catalog) -> list[int]:
    ids = []
    for name in c.databases():
        d = c.db(name)
        ids.append(d.id)
        ids.extend(t.id for t in d.tables.values())
    return ids


# ---- the log ------------------------------------------------------------------------

def test_each_change_is_the_next_numbered_version_and_a_restart_reads_the_newest(
        store: ObjectStore) -> None:
    c = node(store, "node-a")
    assert c.version == 1 and c.path == f"{CLUSTER}/catalog/{1:020d}.json"
    c.create_database("metrics")
    c.create_table("metrics", "cpu", ["host"], [("usage", "float")])
    c.create_trigger(TriggerDefinition("t1", "p.py", "metrics", "all_tables"))
    assert versions(store) == [f"{CLUSTER}/catalog/{v:020d}.json" for v in (1, 2, 3, 4)]
    doc = json.loads(store.get(c.path))
    assert (doc["format"], doc["version"], doc["node_id"]) == (2, 4, "node-a")
    assert store.size(c.path) > 0  # what Database.store_problem asks for
    # a change that changes nothing writes nothing
    assert c.set_trigger_disabled("metrics", "t1", False) is False
    assert c.version == 4

    again = Catalog(store, "node-b", prefix=CLUSTER)
    again.load()
    assert again.version == 4 and again.uuid == c.uuid
    assert list(again.table("metrics", "cpu").columns) == ["host", "usage", "time"]
    assert again.get_trigger("metrics", "t1").plugin_filename == "p.py"


def test_without_a_prefix_a_single_node_keeps_its_log_under_its_node_id(
        store: ObjectStore) -> None:
    c = Catalog(store, "n1")
    c.load()
    c.create_database("db")
    assert store.list("n1/catalog/") == [f"n1/catalog/{v:020d}.json" for v in (1, 2)]


def test_old_versions_are_deleted_keeping_the_last_hundred(store: ObjectStore) -> None:
    c = node(store, "node-a")
    c.create_database("db")
    for i in range(KEPT + 20):
        c.update_database("db", (i + 1) * 3_600_000_000_000)
    kept = versions(store)
    assert len(kept) == KEPT
    assert kept[-1] == c.path
    assert node(store, "node-b").db("db").retention_period_ns == (KEPT + 20) * 3_600_000_000_000


def test_a_node_far_behind_does_not_commit_into_the_gap_of_deleted_versions(
        store: ObjectStore) -> None:
    """Node b is at version 1; a writes past KEPT more versions, deleting version 2 among
    others. b's write of version 2 succeeds in the store but is not the newest: it is
    taken back and b's change applied on the newest instead, not lost."""
    a, b = node(store, "node-a"), node(store, "node-b")
    a.limits = b.limits = Limits(databases=KEPT + 20)
    for i in range(KEPT + 10):
        a.create_database(f"a{i}")
    assert not store.exists(f"{CLUSTER}/catalog/{2:020d}.json")
    b.create_database("from-b")
    assert b.version == KEPT + 12
    assert not store.exists(f"{CLUSTER}/catalog/{2:020d}.json")
    fresh = node(store, "node-c")
    assert fresh.db_exists("from-b") and fresh.db_exists(f"a{KEPT + 9}")


# ---- racing nodes -------------------------------------------------------------------

def test_nodes_starting_together_on_an_empty_bucket_make_one_first_version(
        store: ObjectStore) -> None:
    nodes = [Catalog(store, f"node-{i}", prefix=CLUSTER) for i in range(4)]
    run_together(*(c.load for c in nodes))
    assert versions(store) == [f"{CLUSTER}/catalog/{1:020d}.json"]
    assert {c.uuid for c in nodes} == {nodes[0].uuid}
    assert {c.db("_internal").id for c in nodes} == {1}


def race_everything(store: ObjectStore, nodes: int = 3, each: int = 6) -> list[Catalog]:
    """Each node creates its own databases and a table in each, adds columns to one
    shared table (the same ones, as ingest nodes seeing the same data would), and
    creates tokens, all at once."""
    cats = [node(store, f"node-{i}") for i in range(nodes)]
    tokens = [TokenStore(c) for c in cats]

    def work(i: int) -> Callable[[], None]:
        def job() -> None:
            c = cats[i]
            for k in range(each):
                c.create_database(f"db-{i}-{k}")
                c.create_table(f"db-{i}-{k}", "cpu", ["host"], [("usage", "float")])
                c.ensure_database("shared")
                c.add_columns("shared", "mem", [Column("host", "tag", "tag"),
                                                Column(f"f{k}", "field", "integer")])
                c.persist()
                tokens[i].create(f"token-{i}-{k}", admin=False)

        return job

    run_together(*(work(i) for i in range(nodes)))
    return cats


def test_racing_nodes_store_every_change_exactly_once(store: ObjectStore) -> None:
    race_everything(store)
    final = node(store, "reader")
    expected = {"_internal", "shared"} | {f"db-{i}-{k}" for i in range(3) for k in range(6)}
    assert set(final.databases()) == expected
    ids = all_ids(final)
    assert len(ids) == len(set(ids)), "ids are unique across nodes"
    assert set(final.table("shared", "mem").columns) == \
        {"time", "host", *(f"f{k}" for k in range(6))}
    for i in range(3):
        for k in range(6):
            assert list(final.table(f"db-{i}-{k}", "cpu").columns) == ["host", "usage", "time"]
    toks = TokenStore(final).tokens()
    assert sorted(t.name for t in toks) == sorted(f"token-{i}-{k}" for i in range(3)
                                                  for k in range(6))
    assert len({t.id for t in toks}) == len(toks)


def test_racing_nodes_on_s3(moto_s3: S3Server) -> None:  # noqa: F811
    options = ObjectStoreConfig(bucket=moto_s3.new_bucket(), aws_endpoint=moto_s3.endpoint,
                                aws_allow_http=True, aws_access_key_id=moto_s3.access_key,
                                aws_secret_access_key=moto_s3.secret_key)
    store = open_store("s3", None, options)
    race_everything(store, nodes=2, each=3)
    final = node(store, "reader")
    assert len([n for n in final.databases() if n.startswith("db-")]) == 6
    assert len(TokenStore(final).tokens()) == 6
    ids = all_ids(final)
    assert len(ids) == len(set(ids))


# ---- losing a race ------------------------------------------------------------------

def test_an_ensure_that_loses_to_the_same_change_succeeds(store: ObjectStore) -> None:
    a, b = node(store, "node-a"), node(store, "node-b")
    a.ensure_database("metrics")
    a.add_columns("metrics", "cpu", [Column("host", "tag", "tag"),
                                     Column("usage", "field", "float")])
    a.persist()
    # b has not seen a's version: it creates the same database and table itself, with
    # one column more
    _, created = b.ensure_database("metrics")
    assert created
    b.add_columns("metrics", "cpu", [Column("host", "tag", "tag"),
                                     Column("usage", "field", "float"),
                                     Column("idle", "field", "float")])
    b.persist()
    assert b.version == 3
    final = node(store, "reader")
    assert final.db("metrics").id == a.db("metrics").id == b.db("metrics").id
    assert final.table("metrics", "cpu").id == a.table("metrics", "cpu").id
    assert set(final.table("metrics", "cpu").columns) == {"time", "host", "usage", "idle"}


def test_two_write_paths_at_once_on_a_new_database_both_succeed(store: ObjectStore) -> None:
    a, b = node(store, "node-a"), node(store, "node-b")

    async def write(c: Catalog, body: str) -> int:
        return (await validate_write(c, "sensors", body, precision="ns",
                                     accept_partial=False)).rows

    assert asyncio.run(write(a, f"room,id=1 temp=21.5 {NOW}\n")) == 1
    assert asyncio.run(write(b, f"room,id=2 temp=22.0,hum=40i {NOW + 1}\n")) == 1
    final = node(store, "reader")
    assert set(final.table("sensors", "room").columns) == {"time", "id", "temp", "hum"}
    assert final.version == 3


def test_a_column_another_node_added_with_another_type_conflicts(store: ObjectStore) -> None:
    a, b = node(store, "node-a"), node(store, "node-b")
    a.ensure_database("metrics")
    a.add_columns("metrics", "cpu", [Column("usage", "field", "float")])
    a.persist()
    b.ensure_database("metrics")
    b.add_columns("metrics", "cpu", [Column("usage", "field", "integer")])
    with pytest.raises(ColumnTypeConflict, match=r"'usage'.*already a field of type float"):
        b.persist()
    assert b.version == 2  # nothing written; b now holds a's version
    assert b.table("metrics", "cpu").columns["usage"].type == "float"
    assert len(versions(store)) == 2
    b.persist()  # the failed batch is gone: nothing left to write
    assert len(versions(store)) == 2


def test_the_write_path_refuses_lines_against_a_type_another_node_stored(
        store: ObjectStore) -> None:
    a, b = node(store, "node-a"), node(store, "node-b")

    async def write(c: Catalog, body: str) -> int:
        return (await validate_write(c, "sensors", body, precision="ns",
                                     accept_partial=False)).rows

    asyncio.run(write(a, f"room,id=1 temp=21.5 {NOW}\n"))
    with pytest.raises(LineProtocolError) as refused:
        asyncio.run(write(b, f"room,id=2 temp=22i {NOW + 1}\n"))
    assert "expected type float, but got integer" in refused.value.line.message
    assert b.table("sensors", "room").columns["temp"].type == "float"


def test_a_create_that_loses_to_the_same_name_raises_and_writes_nothing(
        store: ObjectStore) -> None:
    a, b = node(store, "node-a"), node(store, "node-b")
    a.create_database("metrics")
    with pytest.raises(AlreadyExists):
        b.create_database("metrics")
    assert b.version == 2 and b.db_exists("metrics")
    assert len(versions(store)) == 2


def test_create_table_that_creates_its_database_uses_one_another_node_made(
        store: ObjectStore) -> None:
    a, b = node(store, "node-a"), node(store, "node-b")
    a.create_database("metrics")
    b.create_table("metrics", "cpu", ["host"], [("usage", "float")], create_database=True)
    assert b.db("metrics").id == a.db("metrics").id
    assert node(store, "reader").databases() == ["_internal", "metrics"]
    assert node(store, "reader").table("metrics", "cpu").id == b.table("metrics", "cpu").id


def test_gen1_duration_set_by_two_starting_nodes_keeps_the_first(store: ObjectStore) -> None:
    a, b = node(store, "node-a"), node(store, "node-b")
    a.gen1_duration_s = 600.0
    a.persist()
    b.gen1_duration_s = 3600.0  # what Database.start does with its own flag
    b.persist()
    assert b.gen1_duration_s == 600.0
    assert node(store, "reader").gen1_duration_s == 600.0


def test_losing_every_race_ends_in_a_typed_error_with_memory_unchanged(
        store: ObjectStore) -> None:
    faulty = Faulty(store)
    c = node(faulty, "node-a")
    faulty.always_taken = True
    with pytest.raises(CatalogConflict, match="lost the race for the next version 30 times"):
        c.create_database("metrics")
    assert not c.db_exists("metrics") and c.version == 1


# ---- refresh ------------------------------------------------------------------------

def test_refresh_takes_in_other_nodes_versions_and_tells_the_listeners(
        store: ObjectStore) -> None:
    a = node(store, "node-a")
    faulty = Faulty(store)
    b = node(faulty, "node-b")
    heard: list[int] = []
    b.add_change_listener(lambda: heard.append(b.version))

    faulty.lists = faulty.gets = 0
    assert b.refresh() is False
    assert (faulty.lists, faulty.gets) == (1, 0), "nothing new costs one LIST"
    assert heard == []

    a.create_database("metrics")
    a.create_table("metrics", "cpu", ["host"], [("usage", "float")])
    assert b.refresh() is True
    assert heard == [3]
    assert list(b.table("metrics", "cpu").columns) == ["host", "usage", "time"]
    assert b.refresh() is False and heard == [3]

    # versions that arrived through a commit that lost a race are announced too
    a.create_database("logs")
    b.create_database("events")
    assert b.db_exists("logs")
    assert b.refresh() is True and heard == [3, 5]


def test_refresh_keeps_changes_not_yet_persisted(store: ObjectStore) -> None:
    a, b = node(store, "node-a"), node(store, "node-b")
    b.ensure_database("metrics")
    b.add_columns("metrics", "cpu", [Column("usage", "field", "float")])
    a.create_database("logs")
    assert b.refresh()
    assert b.db_exists("logs") and "usage" in b.table("metrics", "cpu").columns
    b.persist()
    final = node(store, "reader")
    assert final.db_exists("logs") and "usage" in final.table("metrics", "cpu").columns


# ---- failures -----------------------------------------------------------------------

def test_a_failed_write_leaves_the_catalog_in_memory_as_it_was(store: ObjectStore) -> None:
    faulty = Faulty(store)
    c = node(faulty, "node-a")
    c.create_database("metrics")
    c.create_table("metrics", "cpu", ["host"], [("usage", "float")])
    tokens = TokenStore(c)
    before = (c.version, json.loads(store.get(c.path)))
    cpu = c.table("metrics", "cpu")

    faulty.fail_puts = True
    attempts: list[Callable[[], object]] = [
        lambda: c.create_database("logs"),
        lambda: c.delete_database("metrics"),
        lambda: c.delete_table("metrics", "cpu"),
        lambda: c.update_database("metrics", 3_600_000_000_000),
        lambda: c.create_last_cache("metrics", "cpu", key_columns=["host"]),
        lambda: tokens.create("ops", admin=True),
    ]
    for attempt in attempts:
        with pytest.raises(ObjectStoreUnavailable):
            attempt()
        assert c.db_exists("metrics") and not c.db_exists("logs")
        assert c.db("metrics").retention_period_ns is None
        assert c.table("metrics", "cpu").last_caches == {}
        assert tokens.tokens() == []
    # the write path's batch: ensure and add_columns in memory, then persist
    c.ensure_database("new")
    c.add_columns("metrics", "cpu", [Column("idle", "field", "float")])
    with pytest.raises(ObjectStoreUnavailable):
        c.persist()
    assert not c.db_exists("new") and "idle" not in c.table("metrics", "cpu").columns
    assert c.table("metrics", "cpu").columns == cpu.columns

    faulty.fail_puts = False
    assert c.version == before[0]
    assert json.loads(store.get(c.path)) == before[1]
    c.create_database("logs")  # the store is back
    assert node(store, "reader").databases() == ["_internal", "metrics", "logs"]


# ---- migration ----------------------------------------------------------------------

def test_a_single_nodes_format_1_catalog_becomes_version_1(store: ObjectStore) -> None:
    old = {
        "format": 1, "uuid": "0b7e7f43-5b38-4c53-9d0b-6d1c2a0a8f10", "sequence": 42,
        "node_id": "node-a", "gen1_duration_s": 600.0, "next_id": 4,
        "databases": [
            {"id": 1, "name": "_internal", "retention_period_ns": 604800000000000,
             "tables": []},
            {"id": 2, "name": "metrics", "tables": [
                {"id": 3, "name": "cpu", "columns": [["time", "time", "time"],
                                                     ["host", "tag", "tag"],
                                                     ["usage", "field", "float"]]}],
             "triggers": [{"trigger_name": "t", "plugin_filename": "p.py",
                           "database": "metrics", "trigger_specification": "all_tables"}]},
        ],
        "extra": {"tokens": []},
    }
    store.put("node-a/catalog.json", json.dumps(old).encode())
    c = Catalog(store, "node-a")
    c.load()
    assert c.version == 1 and c.uuid == old["uuid"] and c.gen1_duration_s == 600.0
    assert list(c.table("metrics", "cpu").columns) == ["time", "host", "usage"]
    assert store.list("node-a/catalog/") == [f"node-a/catalog/{1:020d}.json"]
    assert store.exists("node-a/catalog.json"), "the old file is left as it was"
    c.create_database("logs")
    assert c.db("logs").id == 4
    restarted = Catalog(store, "node-a")
    restarted.load()
    assert restarted.databases() == ["_internal", "metrics", "logs"]
    assert restarted.get_trigger("metrics", "t").trigger_specification == "all_tables"
