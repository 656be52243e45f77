"""`system.last_caches` and `system.distinct_caches` from a real catalog: the reference's
columns and types, one row per cache in creation order, column ids as the columns'
positions in their table, null value columns for a cache that keeps every column."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow as pa

from weir.catalog import Catalog, Column
from weir.objectstore import MemoryObjectStore
from weir.system_tables import CacheTables
from weir.system_tables.caches import DISTINCT_CACHES_SCHEMA, LAST_CACHES_SCHEMA


def test_cache_tables_list_the_catalogs_definitions() -> None:
    catalog = Catalog(MemoryObjectStore(), "n1")
    catalog.load()
    catalog.create_database("db")
    catalog.add_columns("db", "cpu", [Column("host", "tag", "tag"),
                                      Column("region", "tag", "tag"),
                                      Column("usage", "field", "float"),
                                      Column("state", "field", "string")])
    catalog.add_columns("db", "mem", [Column("host", "tag", "tag"),
                                      Column("free", "field", "integer")])
    catalog.create_last_cache("db", "cpu")
    catalog.create_last_cache("db", "cpu", name="by_state", key_columns=["state"],
                              value_columns=["usage"], count=3, ttl_s=60)
    catalog.create_last_cache("db", "mem", key_columns=[])
    catalog.create_distinct_cache("db", "cpu", ["region", "host"], max_cardinality=5,
                                  max_age_s=30)
    provider = CacheTables(SimpleNamespace(catalog=catalog))
    tables = provider("db")
    last = tables["last_caches"].read()
    assert last.schema == LAST_CACHES_SCHEMA
    assert last.schema.field("key_column_ids").type == pa.list_(pa.uint16())
    assert last.to_pylist() == [
        {"table": "cpu", "name": "cpu_host_region_last_cache", "key_column_ids": [1, 2],
         "key_column_names": ["host", "region"], "value_column_ids": None,
         "value_column_names": None, "count": 1, "ttl": 14400},
        {"table": "cpu", "name": "by_state", "key_column_ids": [4],
         "key_column_names": ["state"], "value_column_ids": [3],
         "value_column_names": ["usage"], "count": 3, "ttl": 60},
        {"table": "mem", "name": "mem__last_cache", "key_column_ids": [],
         "key_column_names": [], "value_column_ids": None, "value_column_names": None,
         "count": 1, "ttl": 14400},
    ]
    distinct = tables["distinct_caches"].read()
    assert distinct.schema == DISTINCT_CACHES_SCHEMA
    assert distinct.to_pylist() == [
        {"table": "cpu", "name": "cpu_region_host_distinct_cache", "column_ids": [2, 1],
         "column_names": ["region", "host"], "max_cardinality": 5, "max_age_seconds": 30}]
    catalog.delete_last_cache("db", "cpu", "by_state")
    assert [r["name"] for r in provider("db")["last_caches"].read().to_pylist()] == [
        "cpu_host_region_last_cache", "mem__last_cache"]
    assert provider("_internal")["distinct_caches"].read().num_rows == 0
