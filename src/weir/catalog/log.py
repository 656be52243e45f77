"""The catalog's versions in the object store: `<prefix>/catalog/<version:020d>.json`.

Each version is a whole catalog document, written once with put-if-absent, so of the
nodes racing for the next version exactly one wins; the others read the winner and try
again above it. That conditional write is the only coordination several nodes sharing a
bucket need. Old versions are deleted after a write, keeping the last `KEPT`.
"""

from __future__ import annotations

import logging

from weir.errors import CatalogError
from weir.objectstore import ObjectStore

log = logging.getLogger(__name__)

#: versions kept behind the newest (a node at least this far behind rereads from a LIST)
KEPT = 100


class CatalogConflict(CatalogError):
    """A catalog change lost the race for the next version to other nodes too many times
    in a row (each time it was applied again on top of their newer catalog)."""


class ColumnTypeConflict(CatalogError):
    """A column the change adds is already in the table with another kind or type (most
    likely added a moment ago by another node)."""

    def __init__(self, db: str, table: str, column: str, existing: str, wanted: str) -> None:
        super().__init__(f"column '{column}' of table '{table}' in database '{db}' is "
                         f"already {existing}, cannot add it as {wanted}")
        self.db, self.table, self.column = db, table, column


class CatalogLog:
    """The numbered catalog files under one prefix: naming, listing, reading, writing."""

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store = store
        self.folder = f"{prefix}/catalog/"

    def key(self, version: int) -> str:
        return f"{self.folder}{version:020d}.json"

    def versions(self) -> list[int]:
        """Every version present, oldest first (one LIST)."""
        out = []
        for key in self.store.list(self.folder):
            v = self._version_of(key)
            if v is not None:
                out.append(v)
        out.sort()
        return out

    def newest(self) -> int | None:
        found = self.versions()
        return found[-1] if found else None

    def read(self, version: int) -> bytes:
        """Version `version`'s document; FileNotFoundError if it is not (or no longer)
        there."""
        return self.store.get(self.key(version))

    def try_write(self, version: int, data: bytes) -> bool:
        """Write `version` unless it exists; False if another writer has it."""
        return self.store.put_if_absent(self.key(version), data)

    def settle(self, version: int) -> bool:
        """After `version` was written: False if a newer version was already there,
        which means `version` fell into the gap old versions leave once deleted (the
        writer was more than KEPT versions behind): the write is deleted again and does
        not count. Otherwise deletes versions more than KEPT behind it and returns True.
        One LIST; failed deletes are left for a later write. If that LIST fails, the
        write counts (it did land; being that far behind is what is rare)."""
        try:
            present = self.versions()
        except Exception as e:  # noqa: BLE001 - the write itself succeeded
            log.warning("catalog version %s written, but listing %s failed: %s",
                        self.key(version), self.folder, e)
            return True
        if present and present[-1] > version:
            self._delete(version)
            return False
        for old in present:
            if old > version - KEPT:
                break
            self._delete(old)
        return True

    def _delete(self, version: int) -> None:
        try:
            self.store.delete(self.key(version))
        except Exception as e:  # noqa: BLE001 - best effort: a later write deletes it
            log.warning("could not delete catalog version %s: %s", self.key(version), e)

    def _version_of(self, key: str) -> int | None:
        name = key[len(self.folder):]
        if not name.endswith(".json") or "/" in name:
            return None
        try:
            return int(name[:-5])
        except ValueError:
            return None
