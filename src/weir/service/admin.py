"""Databases and tables: create, list, change retention, delete. A delete is one storage
call; whoever must react to it (the processing engine) listens for it there."""

from __future__ import annotations

import asyncio
import time

import pyarrow as pa

from weir.catalog import INTERNAL_DB, resolve_hard_delete_time, validate_db_name
from weir.config import DurationError, parse_duration
from weir.errors import CatalogError
from weir.ports import Storage


class AdminService:
    def __init__(self, storage: Storage, hard_delete_default_s: float) -> None:
        self._storage = storage
        self._hard_delete_default_s = hard_delete_default_s

    def _hard_delete_time(self, hard_delete_at: str | None) -> int | None:
        """`hard_delete_at` (never, now, default or RFC 3339) as the time (ns) the deleted
        database or table goes for good; None for never."""
        try:
            return resolve_hard_delete_time(hard_delete_at, time.time_ns(),
                                            self._hard_delete_default_s)
        except ValueError as e:
            raise CatalogError(str(e)) from None

    def databases(self, show_deleted: bool) -> pa.Table:
        """`iox::database` (and `deleted` when asked), sorted by name."""
        catalog = self._storage.catalog
        names = sorted(catalog.databases())
        if not show_deleted:
            return pa.table({"iox::database": pa.array(names, pa.string())})
        deleted = sorted(catalog.deleted_databases())
        return pa.table({"iox::database": pa.array(names + deleted, pa.string()),
                         "deleted": pa.array([False] * len(names) + [True] * len(deleted))})

    async def create_database(self, db: str, retention_period: str | None) -> None:
        validate_db_name(db)  # before the retention period is looked at, as the reference
        retention_ns = _retention_ns(retention_period)
        await asyncio.to_thread(self._storage.catalog.create_database, db, retention_ns)

    async def set_retention(self, db: str, retention_period: str | None) -> None:
        """Keep `db`'s rows for `retention_period` (a duration; None, "" or "none": for
        ever)."""
        await asyncio.to_thread(self._storage.catalog.update_database, db,
                                _retention_ns(retention_period))

    async def delete_database(self, db: str, hard_delete_at: str | None) -> None:
        """Soft-delete `db`; its data goes for good at `hard_delete_at`."""
        # the time is read first (a bad one is a 400 even for a missing database), then
        # DatabaseNotFound before anything changes, as the reference does
        at = self._hard_delete_time(hard_delete_at)
        if db == INTERNAL_DB:
            raise CatalogError("cannot delete the _internal database")
        self._storage.catalog.db(db)
        await self._storage.delete_database(db, at)

    async def create_table(self, db: str, table: str, tags: list[str],
                           fields: list[tuple[str, str]]) -> None:
        if not table or "" in tags or any(not name for name, _ in fields):
            raise CatalogError("table, tag and field names cannot be empty")
        catalog = self._storage.catalog
        if not catalog.db_exists(db):
            validate_db_name(db)
        # The catalog checks every limit before creating the database or the table.
        await asyncio.to_thread(catalog.create_table, db, table, list(tags), fields, True)

    async def delete_table(self, db: str, table: str, hard_delete_at: str | None) -> None:
        at = self._hard_delete_time(hard_delete_at)  # as delete_database: the time first
        self._storage.catalog.table(db, table)  # NotFound before anything changes
        await self._storage.delete_table(db, table, at)


def _retention_ns(value: str | None) -> int | None:
    """A retention period as nanoseconds; None for none."""
    if value in (None, "", "none"):
        return None
    try:
        ns = round(parse_duration(str(value)) * 1e9)
    except DurationError as e:
        raise CatalogError(f"invalid retention_period: {e}") from None
    if ns <= 0:
        raise CatalogError(f"invalid retention_period {value!r}: must be greater than zero")
    return ns
