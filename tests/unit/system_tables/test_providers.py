"""The system tables' one home: each provider offers its tables for a database, every
table's builder makes rows with exactly the schema it declares (information_schema lists
that schema without building), and the package stands alone (no import of storage or of
the query layer: the old database <-> system_tables cycle is gone)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pytest

from weir.auth import Permission, Token
from weir.catalog import Column, DatabaseSchema, TableSchema, TriggerDefinition
from weir.engine.logs import PluginLogs
from weir.persist import PersistedFile
from weir.persist.compactor import CompactionRecord
from weir.persist.status import SnapshotRecord
from weir.service.query_log import QueryLog
from weir.system_tables import (
    EngineTables,
    LifeCycleTables,
    NodeInfo,
    ServerTables,
    StorageTables,
    SystemTable,
    SystemTableProvider,
    SystemTables,
    TokenTables,
)


def test_importing_the_package_imports_neither_storage_nor_the_query_layer() -> None:
    code = ("import sys, weir.system_tables\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[:2] in "
            "(['weir', 'database'], ['weir', 'query'], ['weir', 'persist'], "
            "['weir', 'engine'], ['weir', 'auth'], ['weir', 'server']))\n"
            "assert not bad, bad\n"
            "import weir.database\n")  # and storage imports it without a cycle
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- what the providers read: the real record types, in small stand-ins of their owners --


def _table(tid: int, name: str, hard_delete: int | None = None) -> TableSchema:
    return TableSchema(tid, name, {
        "host": Column("host", "tag", "tag"), "usage": Column("usage", "field", "float"),
        "time": Column("time", "time", "time")}, hard_delete_time_ns=hard_delete)


@dataclass
class Catalog:
    live: dict[str, DatabaseSchema]
    deleted: list[DatabaseSchema] = field(default_factory=list)
    trigger_defs: list[TriggerDefinition] = field(default_factory=list)
    gen1_duration_s: float | None = 600.0

    def databases(self) -> list[str]:
        return list(self.live)

    def db(self, name: str) -> DatabaseSchema:
        return self.live[name]

    def deleted_database_schemas(self) -> list[DatabaseSchema]:
        return self.deleted

    def db_exists(self, name: str) -> bool:
        return name in self.live

    def triggers(self, db: str | None = None) -> list[TriggerDefinition]:
        return [t for t in self.trigger_defs if db is None or t.database == db]


@dataclass
class Index:
    files: list[PersistedFile]

    def all(self) -> list[PersistedFile]:
        return self.files


@dataclass
class Storage:
    catalog: Catalog
    index: Index


@dataclass
class Compactor:
    history: list[CompactionRecord]


@dataclass
class LifeCycle:
    snapshot_history: list[SnapshotRecord]
    compactor: Compactor


class Files:
    def list_files(self, plugin_filename: str) -> Iterable[tuple[str, str, int, int]]:
        return [(plugin_filename, f"/plugins/{plugin_filename}", 10, 1_000)]


class Tokens:
    def tokens(self) -> list[Token]:
        return [Token(1, "_admin", "salt", "0123456789abcdef", 1_000, None, admin=True),
                Token(2, "reader", "salt", "fedcba9876543210", 2_000, 9_000,
                      permissions=[Permission(["db"], ["read"])])]


def _providers() -> list[tuple[str, SystemTableProvider]]:
    db = DatabaseSchema(1, "db", {"cpu": _table(1, "cpu")}, retention_period_ns=3_600,
                        deleted_tables=[_table(2, "old", hard_delete=5 * 10**9)])
    internal = DatabaseSchema(0, "_internal")
    gone = DatabaseSchema(3, "gone-1", {"mem": _table(3, "mem")}, deleted=True,
                          hard_delete_time_ns=7 * 10**9)
    catalog = Catalog({"_internal": internal, "db": db}, [gone], [
        TriggerDefinition("t1", "a.py", "db", "every:1s", {"k": "v"}, public=True,
                          catch_up=True),
        TriggerDefinition("t2", "b.py", "db", "not a spec", disabled=True)])
    files = [PersistedFile("db", 1, "cpu", 1, "dbs/1/1/a.parquet", 100, 2, 10, 20)]
    logs = PluginLogs()
    logs.info("t1", "hello")
    queries = QueryLog()
    with queries.record("sql", "SELECT 1"):
        pass
    node = NodeInfo("node0", "uuid-1", 4, 1_000, {"node-id": "node0",
                                                  "aws-secret-access-key": "s3cr3t"})
    return [
        ("storage", StorageTables(Storage(catalog, Index(files)))),
        ("life cycle", LifeCycleTables(LifeCycle(
            [SnapshotRecord(3, "ok", 1, 10, 1.5, 1, 2)],
            Compactor([CompactionRecord("db", "cpu", "ok", 2, 1, 4, 4, 10, 2.0),
                       CompactionRecord("other", "x", "ok", 2, 1, 4, 4, 10, 2.0)])))),
        ("engine", EngineTables(catalog, logs, Files(), render_spec=str.upper)),
        ("tokens", TokenTables(Tokens())),
        ("server", ServerTables(lambda: node, queries)),
    ]


@pytest.mark.parametrize("database", ["db", "_internal"])
def test_every_table_builds_exactly_its_declared_schema(database: str) -> None:
    for label, provider in _providers():
        for name, table in provider(database).items():
            built = table.build()
            assert built.schema.equals(table.schema, check_metadata=True), (label, name)
            assert table.read().equals(built)


def test_each_database_gets_its_tables() -> None:
    registry = SystemTables(p for _, p in _providers())
    common = {"parquet_files", "influxdb_schema", "snapshots", "compactions",
              "processing_engine_logs", "processing_engine_triggers",
              "processing_engine_trigger_arguments", "queries"}
    assert set(registry("db")) == common
    assert set(registry("_internal")) == common | {"databases", "tables", "plugin_files",
                                                   "tokens", "generation_durations", "nodes"}


def test_rows() -> None:
    registry = SystemTables(p for _, p in _providers())
    db, internal = registry("db"), registry("_internal")
    assert db["parquet_files"].build().to_pylist() == [
        {"table_name": "cpu", "path": "dbs/1/1/a.parquet", "size_bytes": 100,
         "row_count": 2, "min_time": 10, "max_time": 20}]
    assert db["influxdb_schema"].build().to_pylist() == [
        {"measurement": "cpu", "key": k, "data_type": t}
        for k, t in (("host", "tag"), ("time", "time"), ("usage", "float"))]
    assert [r["table_name"] for r in db["compactions"].build().to_pylist()] == ["cpu"]
    # (no engine behind the provider: no delivery, checkpoint, lag or last error)
    no_status = dict.fromkeys(("delivery", "wal_checkpoint", "wal_lag_files", "wal_lag_rows",
                               "wal_lag_seconds", "wal_lagging", "wal_skipped_files",
                               "last_error"))
    no_status["node_spec"] = "all"  # (the definitions' default; after the engine's columns)
    assert db["processing_engine_triggers"].build().to_pylist() == [
        {"trigger_name": "t1", "plugin_filename": "a.py", "trigger_specification": "EVERY:1S",
         "disabled": False, "error_behavior": "log", "public": True, "catch_up": True,
         **no_status},
        {"trigger_name": "t2", "plugin_filename": "b.py",
         "trigger_specification": "NOT A SPEC", "disabled": True, "error_behavior": "log",
         "public": False, "catch_up": False, **no_status}]
    assert db["processing_engine_trigger_arguments"].build().to_pylist() == [
        {"trigger_name": "t1", "argument_key": "k", "argument_value": "v"}]
    assert [r["log_text"] for r in db["processing_engine_logs"].build().to_pylist()] == [
        "hello"]
    dbs = internal["databases"].build().to_pylist()
    assert [(r["database_name"], r["deleted"]) for r in dbs] == [
        ("_internal", False), ("db", False), ("gone-1", True)]
    tables = internal["tables"].build().to_pylist()
    assert [(r["database_name"], r["table_name"], r["deleted"]) for r in tables] == [
        ("db", "cpu", False), ("db", "old", True), ("gone-1", "mem", True)]
    assert [r["plugin_name"] for r in internal["plugin_files"].build().to_pylist()] == [
        "t1", "t2"]
    toks = internal["tokens"].build().to_pylist()
    assert [(t["name"], t["hash"], t["permissions"]) for t in toks] == [
        ("_admin", "012345678", "*:*:*"), ("reader", "fedcba987", "db:db:read")]
    assert internal["generation_durations"].build().to_pylist() == [
        {"level": 1, "duration_seconds": 600}]
    [node] = internal["nodes"].build().to_pylist()
    assert (node["node_id"], node["mode"], node["state"], node["core_count"]) == (
        "node0", ["core"], "running", 4)
    # the operator's options, secrets hidden as the reference hides them
    assert node["cli_params"] == '{"node-id":"node0","aws-secret-access-key":"*******"}'
    [q] = db["queries"].build().to_pylist()
    assert (q["query_type"], q["query_text"], q["phase"], q["success"], q["running"]) == (
        "sql", "SELECT 1", "success", True, False)


def test_tokens_without_auth_have_no_hash_column() -> None:
    table = TokenTables(Tokens(), started_with_auth=False)("_internal")["tokens"]
    built = table.build()
    assert built.schema.equals(table.schema) and "hash" not in built.column_names
    assert [t["name"] for t in built.to_pylist()] == ["_admin", "reader"]


def test_a_later_provider_replaces_a_table_of_the_same_name() -> None:
    one = pa.table({"a": [1]})
    two = pa.table({"a": [2]})

    def first(database: str, /) -> Mapping[str, SystemTable]:
        return {"t": SystemTable(one.schema, lambda: one)}

    def second(database: str, /) -> Mapping[str, SystemTable]:
        return {"t": SystemTable(two.schema, lambda: two)} if database == "db" else {}

    registry = SystemTables([first])
    registry.register(second)
    assert registry("db")["t"].read() is two
    assert registry("other")["t"].read() is one


def test_read_holds_a_builder_to_its_declared_schema() -> None:
    declared = pa.schema([("n", pa.uint64())])
    assert SystemTable(declared, lambda: pa.table({"n": [1]})).read().schema == declared
    with pytest.raises(ValueError, match="built with columns"):
        SystemTable(declared, lambda: pa.table({"m": [1]})).read()
