"""What the catalog holds: databases, tables with typed columns, triggers."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, NotRequired, TypedDict, cast

import pyarrow as pa

from weir.catalog.columns import TAG, Column
from weir.errors import InvalidName

if TYPE_CHECKING:
    from weir.catalog.caches import DistinctCacheDefinition, LastCacheDefinition

@dataclass
class TableSchema:
    id: int
    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    deleted: bool = False
    #: when a soft-deleted table's data and schema go for good (ns since epoch; None: never)
    hard_delete_time_ns: int | None = None
    #: the table's last-value and distinct-value caches by name (weir.catalog.caches),
    #: replaced whole on change so readers never see one half-updated
    last_caches: dict[str, LastCacheDefinition] = field(default_factory=dict)
    distinct_caches: dict[str, DistinctCacheDefinition] = field(default_factory=dict)
    #: the next cache ids (never reused)
    next_last_cache_id: int = 0
    next_distinct_cache_id: int = 0
    #: a soft-deleted table's name in listings (soft_deleted_name; None: live, or deleted
    #: by an older Weir, which listed it by its name)
    deleted_name: str | None = None
    #: the newest WAL file when it was deleted: that file's rows of this name and older
    #: ones are the deleted table's, not those of a table made later under the same name
    deleted_wal_seq: int | None = None

    def arrow_schema(self) -> pa.Schema:
        """Columns sorted by name: the order `SELECT *` shows them in."""
        cols = sorted(self.columns.values(), key=lambda c: c.name)
        return pa.schema([c.arrow_field() for c in cols])

    def tag_names(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.kind == TAG]


class TriggerJson(TypedDict):
    """A trigger as the catalog file stores it: TriggerDefinition's fields."""

    trigger_name: str
    plugin_filename: str
    database: str
    trigger_specification: str
    trigger_arguments: NotRequired[dict[str, str] | None]
    run_async: NotRequired[bool]
    error_behavior: NotRequired[str]
    disabled: NotRequired[bool]
    public: NotRequired[bool]
    catch_up: NotRequired[bool]
    node_spec: NotRequired[str]


@dataclass
class TriggerDefinition:
    trigger_name: str
    plugin_filename: str
    database: str
    trigger_specification: str
    trigger_arguments: dict[str, str] | None = None
    run_async: bool = False
    error_behavior: str = "log"
    disabled: bool = False
    # Weir: a request trigger that answers without a token (set at creation)
    public: bool = False
    # Weir: a schedule trigger that runs one catch-up call for the fire times it missed
    # while the server was down (set at creation; catalogs written before it lack it)
    catch_up: bool = False
    #: which nodes of a cluster run it: `all`, or `nodes:<node-id>[,<node-id>...]`
    #: (canonical, checked by the engine at creation; catalogs written before it lack it)
    node_spec: str = "all"

    def to_json(self) -> TriggerJson:
        # every field, by asdict (TriggerJson names them; from_json's cls(**d) is checked
        # against the fields)
        return cast(TriggerJson, asdict(self))

    @classmethod
    def from_json(cls, d: TriggerJson) -> TriggerDefinition:
        return cls(**d)


@dataclass
class DatabaseSchema:
    id: int
    name: str
    tables: dict[str, TableSchema] = field(default_factory=dict)
    triggers: dict[str, TriggerDefinition] = field(default_factory=dict)
    retention_period_ns: int | None = None
    deleted: bool = False
    #: when a soft-deleted database's data and schema go for good (ns; None: never)
    hard_delete_time_ns: int | None = None
    #: soft-deleted tables, kept (out of `tables`, so nothing reads them) until their
    #: hard deletion is done
    deleted_tables: list[TableSchema] = field(default_factory=list)
    #: a soft-deleted database's name in listings (soft_deleted_name; None: live, or
    #: deleted by an older Weir, which listed it by its name)
    deleted_name: str | None = None
    #: the newest WAL file when it was deleted (see TableSchema.deleted_wal_seq)
    deleted_wal_seq: int | None = None


def soft_deleted_name(name: str, deleted_at_ns: int, id_: int, taken: Iterable[str]) -> str:
    """The name the reference gives a soft-deleted database or table: the original name,
    `-` and the deletion time (UTC) as `%Y%m%dT%H%M%S`, e.g. `cpu-20250511T143000`; with
    `-<id>` after it if that name is `taken` (deleted twice within one second)."""
    at = datetime.datetime.fromtimestamp(deleted_at_ns // 1_000_000_000, datetime.UTC)
    stamped = f"{name}-{at:%Y%m%dT%H%M%S}"
    return f"{stamped}-{id_}" if stamped in set(taken) else stamped


_DB_NAME_CHARS = re.compile(r"[A-Za-z0-9_\-]*")


def validate_db_name(name: str) -> None:
    """The HTTP API's database-name rules, with the reference's messages."""
    if not name:
        raise InvalidName("db name cannot be empty")
    if len(name.encode()) > 511:
        raise InvalidName("db name too long: max 511")
    if not name.isascii():
        raise InvalidName(
            "invalid character in database or rp name: must be ASCII, containing only "
            "letters, numbers, underscores, or hyphens"
        )
    if not name[0].isalnum():
        raise InvalidName("db name did not start with a number or letter")
    if name.count("/") > 1 or name.endswith("/"):
        raise InvalidName(
            "db name with invalid retention policy, if providing a retention policy name, "
            "must be of form '<db_name>/<rp_name>'"
        )
    for part in name.split("/"):
        if not _DB_NAME_CHARS.fullmatch(part):
            raise InvalidName(
                "invalid character in database or rp name: must be ASCII, containing only "
                "letters, numbers, underscores, or hyphens"
            )
