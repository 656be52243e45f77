"""The catalog's versions in the object store: `<prefix>/catalog/<version:020d>.json`.

Each version is a whole catalog document, written once with put-if-absent, so of the
nodes racing for the next version exactly one wins; the others read the winner and try
again above it. That conditional write is the only coordination several nodes sharing a
bucket need. Old versions are deleted after a write, keeping the last `KEPT`.
"""

from __future__ import annotations

import hashlib
import json
import logging

from weir.errors import CatalogError
from weir.objectstore import ObjectStore

log = logging.getLogger(__name__)

#: versions kept behind the newest (a node at least this far behind rereads from a LIST)
KEPT = 100


def parent_tag(data: bytes) -> str:
    """What a version's `parent` says of the version it was made from: a digest of that
    version's bytes (how `settle` tells a version written on top of another from one
    that only happens to follow it)."""
    return hashlib.sha256(data).hexdigest()[:32]


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

    def settle(self, version: int, data: bytes) -> bool:
        """After `version` was written with `data`: False if it fell into the gap that
        deleted old versions leave (the writer was more than KEPT versions behind, so
        newer versions were there already and were not built on it): it is deleted
        again and does not count. Otherwise deletes versions more than KEPT behind it
        and returns True. One LIST (and a GET when newer versions are there already);
        failed deletes are left for a later write. If the LIST fails, the write counts:
        it did land, and being that far behind is what is rare."""
        try:
            present = self.versions()
        except Exception as e:  # noqa: BLE001 - the write itself succeeded
            log.warning("catalog version %s written, but listing %s failed: %s",
                        self.key(version), self.folder, e)
            return True
        if present and present[-1] > version and not self._built_on(version, data, present):
            log.warning("catalog version %s was written into the gap left by deleted old "
                        "versions (this node was far behind): taken back", self.key(version))
            self._delete(version)
            return False
        for old in present:
            if old > version - KEPT:
                break
            self._delete(old)
        return True

    def _built_on(self, version: int, data: bytes, present: list[int]) -> bool:
        """Whether the version after `version`, written meanwhile, names `data` as its
        parent (the normal race: another node read ours and wrote the next one)."""
        if version + 1 not in present:
            return False
        try:
            after = json.loads(self.read(version + 1))
        except FileNotFoundError:
            return False
        except Exception:  # noqa: BLE001 - cannot tell: the usual case is that it was
            return True
        return isinstance(after, dict) and after.get("parent") == parent_tag(data)

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
