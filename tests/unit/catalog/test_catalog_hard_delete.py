"""The catalog's small API for the storage side over a real file object store:
`due_hard_deletes`, `complete_hard_delete`, `retention_cutoff_ns`, limits from options,
hard-delete time resolution."""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from weir.catalog import Catalog, HardDelete, Limits, parse_rfc3339_ns, resolve_hard_delete_time
from weir.errors import LimitExceeded
from weir.objectstore import open_store

NS = 1_000_000_000
DAY_NS = 86_400 * NS


# ---- the catalog API the storage side calls --------------------------------------------------


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "store"


def _catalog(path: Path, limits: Limits | None = None) -> Catalog:
    c = Catalog(open_store("file", str(path)), "node0", limits)
    c.load()
    return c


def test_hard_delete_api_is_durable(catalog_dir: Path) -> None:
    now = time.time_ns()
    c = _catalog(catalog_dir)
    for name in ("a", "b", "c"):
        c.create_database(name)
        c.create_table(name, "cpu", ["host"], [("usage", "float")])
        c.create_table(name, "mem", ["host"], [("free", "integer")])
    a_id, b_id = c.db("a").id, c.db("b").id
    mem_id = c.table("c", "mem").id
    c.delete_database("a", hard_delete_at_ns=now - NS)
    c.delete_database("b", hard_delete_at_ns=now + DAY_NS)
    c.delete_table("c", "mem", hard_delete_at_ns=now)
    c.delete_table("c", "cpu")  # never
    due = c.due_hard_deletes(now)
    assert due == [HardDelete(a_id, "a", None, None, now - NS),
                   HardDelete(c.db("c").id, "c", mem_id, "mem", now)]
    assert [h.db_name for h in c.due_hard_deletes(now + DAY_NS)] == ["a", "c", "b"]

    # a second process (a restart) sees the same, and completes one of them
    c2 = _catalog(catalog_dir)
    assert c2.due_hard_deletes(now) == due
    c2.complete_hard_delete(due[0])
    c2.complete_hard_delete(due[0])  # twice is harmless
    c3 = _catalog(catalog_dir)
    assert c3.due_hard_deletes(now) == due[1:]
    # listed by the reference's `<name>-<deletion time>`
    assert [n.split("-")[0] for n in c3.deleted_databases()] == ["b"]
    c3.complete_hard_delete(due[1])
    c4 = _catalog(catalog_dir)
    assert c4.due_hard_deletes(now + 10 * DAY_NS) == [
        HardDelete(b_id, "b", None, None, now + DAY_NS)]
    assert [t.name for t in c4.db("c").deleted_tables] == ["cpu"]
    # the name of a completed database is free again
    c4.create_database("a")


def test_set_hard_delete_time_and_retention_cutoff(catalog_dir: Path) -> None:
    now = time.time_ns()
    c = _catalog(catalog_dir)
    c.create_database("keep", retention_period_ns=30 * DAY_NS)
    c.create_database("forever")
    assert c.retention_cutoff_ns("keep", now) == now - 30 * DAY_NS
    assert c.retention_cutoff_ns("forever", now) is None
    assert c.retention_cutoff_ns("missing", now) is None
    c.update_database("forever", DAY_NS)
    assert _catalog(catalog_dir).retention_cutoff_ns("forever", now) == now - DAY_NS
    c.create_table("keep", "t", [], [("v", "float")])
    t_id, keep_id = c.table("keep", "t").id, c.db("keep").id
    c.delete_table("keep", "t")
    assert c.due_hard_deletes(now + 1000 * DAY_NS) == []
    c.set_hard_delete_time(keep_id, t_id, now)
    assert _catalog(catalog_dir).due_hard_deletes(now) == [
        HardDelete(keep_id, "keep", t_id, "t", now)]


def test_catalog_limits_from_options(catalog_dir: Path) -> None:
    assert Limits() == Limits(databases=100, tables=4000, columns_per_table=500)
    c = _catalog(catalog_dir, Limits(databases=1, tables=2, columns_per_table=3))
    c.create_database("one")
    with pytest.raises(LimitExceeded, match=r"^Adding a new database would exceed limit of 1 "
                                            r"databases$"):
        c.create_database("two")
    with pytest.raises(LimitExceeded, match="columns per table limit of 3 columns"):
        c.create_table("one", "t", ["a", "b"], [("c", "float"), ("d", "float")])
    c.create_table("one", "t", ["a", "b"], [("c", "float")])  # (time is not counted)
    c.create_table("one", "u", [], [])
    with pytest.raises(LimitExceeded, match=r"^Update to schema would exceed number of tables "
                                            r"limit: attempted to create table but already have "
                                            r"2 table\(s\) \(limit: 2\)$"):
        c.create_table("one", "v", [], [])


def test_soft_deleted_names_are_the_references(catalog_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A soft-deleted database or table is listed as `<name>-<%Y%m%dT%H%M%S>` (UTC), with
    `-<id>` after it when that name is taken (deleted twice within a second); the name
    survives a restart."""
    at = calendar.timegm((2025, 5, 11, 14, 30, 0, 0, 0, 0)) * NS + 123
    monkeypatch.setattr(time, "time_ns", lambda: at)  # the clock only
    c = _catalog(catalog_dir)
    c.create_table("db", "cpu", ["host"], [("usage", "float")], True)
    c.delete_table("db", "cpu")
    c.create_table("db", "cpu", ["host"], [("usage", "float")])
    c.delete_table("db", "cpu")
    first, second = c.db("db").deleted_tables
    assert first.deleted_name == "cpu-20250511T143000"
    assert second.deleted_name == f"cpu-20250511T143000-{second.id}"
    c.delete_database("db")
    assert c.deleted_databases() == ["db-20250511T143000"]
    monkeypatch.undo()
    c2 = _catalog(catalog_dir)
    assert c2.deleted_databases() == ["db-20250511T143000"]
    [d] = c2.deleted_database_schemas()
    assert [t.deleted_name for t in d.deleted_tables] == [first.deleted_name,
                                                          second.deleted_name]


def test_hard_delete_time_resolution() -> None:
    now = time.time_ns()
    assert resolve_hard_delete_time("never", now, 3600) is None
    assert resolve_hard_delete_time("now", now, 3600) == now
    assert resolve_hard_delete_time("default", now, 3600) == now + 3600 * NS
    assert resolve_hard_delete_time(None, now, 60) == now + 60 * NS
    assert resolve_hard_delete_time("1999-12-31T23:59:59Z", now, 60) == now
    far = "2200-01-02T03:04:05.123456789+02:00"
    assert resolve_hard_delete_time(far, now, 60) == parse_rfc3339_ns(far)
    assert parse_rfc3339_ns(far) % NS == 123456789
    assert parse_rfc3339_ns("2200-01-02T01:04:05.123456789Z") == parse_rfc3339_ns(far)
    for bad in ("tomorrow", "2025-02-30", "2025-02-30T00:00:00Z", "2025-01-01T25:00:00Z"):
        with pytest.raises(ValueError):
            resolve_hard_delete_time(bad, now, 60)


def test_rows_in_the_wal_from_before_a_deletion_stay_deleted(catalog_dir: Path) -> None:
    """`deleted_before`: WAL rows of a deleted database or table, by the WAL file they
    are in, also once the name is in use again; kept across a reload of the catalog."""
    from weir.catalog import Column

    c = _catalog(catalog_dir)
    c.create_database("foo")
    c.add_columns("foo", "cpu", [Column("v", "field", "integer")])
    c.add_columns("foo", "mem", [Column("v", "field", "integer")])
    c.persist()
    assert not c.deleted_before("foo", "cpu", 7)
    c.delete_table("foo", "cpu", wal_seq=7)
    assert c.deleted_before("foo", "cpu", 7) and c.deleted_before("foo", "cpu", 99)
    c.add_columns("foo", "cpu", [Column("v", "field", "integer")])  # made again
    assert c.deleted_before("foo", "cpu", 7) and not c.deleted_before("foo", "cpu", 8)
    assert not c.deleted_before("foo", "mem", 7)
    c.delete_database("foo", wal_seq=10)
    assert c.deleted_before("foo", "mem", 11)  # (gone, not made again: every file)
    c.create_database("foo")
    c = _catalog(catalog_dir)  # reloaded from the store
    assert c.deleted_before("foo", "mem", 10) and not c.deleted_before("foo", "mem", 11)
    assert not c.deleted_before("bar", "cpu", 1)
