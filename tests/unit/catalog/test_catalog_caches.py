"""Cache definitions in the catalog over a real object store: the reference's checks (and
their errors), default names, ids that are never reused, persistence across a reload."""

from __future__ import annotations

import pytest

from weir.catalog import Catalog, Column, column_identifier, column_ordinal
from weir.errors import (
    AlreadyExists,
    CatalogError,
    DatabaseNotFound,
    InvalidCacheColumnType,
    InvalidConfiguration,
    NotFound,
    TableNotFound,
)
from weir.objectstore import FileObjectStore


@pytest.fixture
def catalog(tmp_path) -> Catalog:
    c = Catalog(FileObjectStore(tmp_path / "os"), "n1")
    c.load()
    c.create_database("db")
    c.add_columns("db", "cpu", [Column("host", "tag", "tag"), Column("region", "tag", "tag"),
                                Column("usage", "field", "float"),
                                Column("state", "field", "string"),
                                Column("cores", "field", "integer"),
                                Column("up", "field", "boolean")])
    c.persist()
    return c


def reload(c: Catalog) -> Catalog:
    c2 = Catalog(c.store, "n1")
    c2.load()
    return c2


def test_last_cache_defaults_are_the_series_key_and_every_other_column(catalog) -> None:
    lc = catalog.create_last_cache("db", "cpu")
    assert (lc.name, lc.key_columns, lc.value_columns, lc.count, lc.ttl_s, lc.id) == (
        "cpu_host_region_last_cache", ("host", "region"), None, 1, 14400, 0)
    again = reload(catalog).table("db", "cpu").last_caches
    assert again == {"cpu_host_region_last_cache": lc}


def test_last_cache_explicit_columns_name_and_ids(catalog) -> None:
    a = catalog.create_last_cache("db", "cpu", key_columns=["state", "cores", "up"],
                                  value_columns=["usage", "time"], count=5, ttl_s=60)
    assert a.name == "cpu_state_cores_up_last_cache"
    assert a.value_columns == ("usage", "time")
    b = catalog.create_last_cache("db", "cpu", name="mine", key_columns=[])
    assert (b.id, b.key_columns) == (1, ())
    catalog.delete_last_cache("db", "cpu", "mine")
    c = catalog.create_last_cache("db", "cpu", name="mine")
    assert c.id == 2  # ids are not reused
    t = reload(catalog).table("db", "cpu")
    assert list(t.last_caches) == ["cpu_state_cores_up_last_cache", "mine"]
    assert t.next_last_cache_id == 3


@pytest.mark.parametrize(("kw", "error", "message"), [
    ({"key_columns": ["nope"]}, InvalidConfiguration,
     "invalid configuration provided: invalid key column provided: nope"),
    ({"key_columns": ["usage"]}, InvalidCacheColumnType,
     "only uint64, int64, bool, tag, and string columns are supported in the last cache"),
    ({"key_columns": ["time"]}, InvalidCacheColumnType, "only uint64"),
    ({"value_columns": ["nope"]}, InvalidConfiguration,
     "invalid configuration provided: invalid value column provided: nope"),
    ({"count": 0}, CatalogError, "last cache size must be greater than 0"),
])
def test_last_cache_refusals(catalog, kw, error, message) -> None:
    with pytest.raises(error, match=message):
        catalog.create_last_cache("db", "cpu", **kw)
    assert catalog.table("db", "cpu").last_caches == {}


def test_missing_database_table_and_cache(catalog) -> None:
    with pytest.raises(DatabaseNotFound, match="Database not found nope"):
        catalog.create_last_cache("nope", "cpu")
    with pytest.raises(TableNotFound, match="Table mem not in DB schema for db"):
        catalog.create_distinct_cache("db", "mem", ["host"])
    with pytest.raises(NotFound, match="the requested resource was not found: c1"):
        catalog.delete_last_cache("db", "cpu", "c1")
    with pytest.raises(NotFound, match="c1"):
        catalog.delete_distinct_cache("db", "cpu", "c1")


def test_a_name_is_taken_whatever_the_configuration(catalog) -> None:
    catalog.create_last_cache("db", "cpu", name="c")
    with pytest.raises(AlreadyExists):
        catalog.create_last_cache("db", "cpu", name="c")
    with pytest.raises(AlreadyExists):
        catalog.create_last_cache("db", "cpu", name="c", count=3, ttl_s=1)
    catalog.create_distinct_cache("db", "cpu", ["region", "host"])
    with pytest.raises(AlreadyExists):
        catalog.create_distinct_cache("db", "cpu", ["region", "host"], max_cardinality=1)


def test_distinct_cache_checks_and_persistence(catalog) -> None:
    with pytest.raises(InvalidConfiguration, match="no columns provided"):
        catalog.create_distinct_cache("db", "cpu", [])
    with pytest.raises(InvalidConfiguration, match="invalid column provided: nope"):
        catalog.create_distinct_cache("db", "cpu", ["host", "nope"])
    with pytest.raises(InvalidCacheColumnType,
                       match="only tag and string columns are supported in the distinct cache"):
        catalog.create_distinct_cache("db", "cpu", ["cores"])
    dc = catalog.create_distinct_cache("db", "cpu", ["region", "state"], max_cardinality=10,
                                       max_age_s=30)
    assert (dc.name, dc.columns, dc.max_cardinality, dc.max_age_s) == (
        "cpu_region_state_distinct_cache", ("region", "state"), 10, 30)
    t = reload(catalog).table("db", "cpu")
    assert t.distinct_caches == {dc.name: dc}
    catalog.delete_distinct_cache("db", "cpu", dc.name)
    assert reload(catalog).table("db", "cpu").distinct_caches == {}


def test_column_identifiers_as_the_reference_writes_them(catalog) -> None:
    cols = catalog.table("db", "cpu").columns
    assert column_identifier(cols, "host") == {"tag": 0}
    assert column_identifier(cols, "region") == {"tag": 1}
    assert column_identifier(cols, "state") == {"field": [0, 1]}
    assert column_identifier(cols, "time") == "timestamp"
    assert column_ordinal(cols, "time") == 0
    assert column_ordinal(cols, "region") == 2
