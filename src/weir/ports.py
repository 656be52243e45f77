"""The seams to storage, as protocols, and the values that cross them.

The services (weir.service) and the processing engine reach storage only through these
protocols, so a second storage back end, or a remote node, can stand behind the same seam.
`weir.database.Database` is today's one implementation of every storage port.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import quote

import pyarrow as pa

from weir.catalog import Catalog, DistinctCacheDefinition, LastCacheDefinition
from weir.errors import WriteError
from weir.persist import PersistEvent as PersistEvent  # (re-exported: what persist listeners get)
from weir.system_tables import SystemTableProvider

Action = Literal["read", "write"]

#: a JSON value bound to a `$name` placeholder of a query
QueryParams = Mapping[str, object]


class Principal(Protocol):
    """Who asks: an authenticated token (None stands for "auth is off")."""

    @property
    def name(self) -> str: ...

    @property
    def admin(self) -> bool: ...

    def allows(self, db: str, action: str) -> bool: ...


@dataclass(frozen=True)
class WriteResult:
    lines_written: int
    tables: list[str]


@dataclass
class FlushedWal:
    """One durable WAL file's rows, handed to WAL listeners (the processing engine):
    database -> [(table, rows)] in the order they were written."""

    seq: int
    writes: dict[str, list[tuple[str, pa.RecordBatch]]] = field(default_factory=dict)
    #: when the file was written (ns since the epoch): how old a trigger's backlog is
    written_ns: int = 0


class WriteSink(Protocol):
    """Where validated line protocol goes: durable (in the WAL) when the call returns,
    unless `no_sync`. Raises `weir.errors.WriteError` and its kinds."""

    async def write_lp(self, database: str, body: bytes | str, *, precision: str = "auto",
                       accept_partial: bool = True, no_sync: bool = False,
                       from_plugin: bool = False) -> WriteResult: ...


class QuerySource(Protocol):
    """Runs SQL on one database's data (buffer, Parquet and system tables). Raises
    `weir.errors.QueryError` and its kinds."""

    async def query(self, database: str, sql: str,
                    params: QueryParams | None = None) -> pa.Table: ...


class BatchStream(Protocol):
    """A query's result read batch by batch as it is computed (blocking: iterate it in a
    worker thread); `close()` stops it early and frees what it holds."""

    schema: pa.Schema

    def __iter__(self) -> Iterator[pa.RecordBatch]: ...

    def close(self) -> None: ...


class StreamingQuerySource(Protocol):
    async def query_stream(self, database: str, sql: str,
                           params: QueryParams | None = None) -> BatchStream:
        """Plan `sql` (planning errors raise here) and return its rows as a stream."""
        ...


class QueryDescription(Protocol):
    """What a statement would return, planned but not run."""

    @property
    def schema(self) -> pa.Schema:
        """The columns of its result, as `query_stream` would give them."""
        ...

    @property
    def parameters(self) -> pa.Schema:
        """Its `$placeholders` (`$1`, `$host`), typed as the query engine infers them (null
        where it cannot tell)."""
        ...


class DescribingQuerySource(Protocol):
    async def describe_query(self, database: str, sql: str,
                             params: QueryParams | None = None) -> QueryDescription:
        """Plan `sql` without reading any rows (FlightSQL's schemas and prepared
        statements); without `params`, its placeholders may stay unbound."""
        ...


class TagValueCache(Protocol):
    def cached_tag_values(self, database: str, table: str, tag: str,
                          equal: Mapping[str, str], since_ns: int | None,
                          until_ns: int | None) -> list[str] | None:
        """The distinct non-null values of tag `tag` in the rows of `table` between
        `since_ns` and `until_ns` (inclusive; None: unbounded) whose columns in `equal`
        have those values, sorted, if a distinct-value cache holds exactly that; None when
        none can say (ask the data)."""
        ...


class CatalogQuerySource(QuerySource, StreamingQuerySource, DescribingQuerySource,
                         TagValueCache, Protocol):
    """A query source whose catalog can be read (InfluxQL plans from the schema)."""

    @property
    def catalog(self) -> Catalog: ...


WalListener = Callable[[FlushedWal], Awaitable[None]]
PersistListener = Callable[[PersistEvent], Awaitable[None]]
#: called after a database was deleted (soft): its name
DatabaseDeletedListener = Callable[[str], Awaitable[None]]


class StorageEvents(Protocol):
    """What happens in storage that others react to."""

    def add_wal_listener(self, cb: WalListener) -> None: ...

    def add_persist_listener(self, cb: PersistListener) -> None: ...

    def add_system_tables(self, provider: SystemTableProvider) -> None: ...

    def add_database_deleted_listener(self, cb: DatabaseDeletedListener) -> None: ...


#: a WAL trigger: (database, trigger name)
TriggerKey = tuple[str, str]


class TriggerWriteSink(Protocol):
    async def commit_trigger_writes(self, key: TriggerKey, seq: int,
                                    writes: Mapping[str, str]) -> dict[str, WriteError]:
        """Store a WAL trigger's buffered writes (database -> line protocol, ns) and its
        checkpoint `seq` in one WAL file: durable together or not at all. Refused
        databases are returned; the rest and the checkpoint are stored."""
        ...


class WalTriggerLog(Protocol):
    """What WAL triggers read of the WAL to never miss a batch: their durable checkpoint,
    the flushed files after it (kept for them, up to --trigger-max-wal-lag files)."""

    @property
    def last_wal_seq(self) -> int: ...

    def trigger_checkpoint(self, key: TriggerKey) -> int | None: ...

    def first_wal_seq(self) -> int | None: ...

    async def read_flushed(self, seq: int) -> FlushedWal | None: ...

    def note_trigger_progress(self, key: TriggerKey, seq: int) -> None: ...

    def forget_trigger_progress(self, key: TriggerKey) -> None: ...

    def trigger_lagging(self, key: TriggerKey) -> bool: ...


class CacheStore(Protocol):
    """Last-value and distinct-value caches: defined in the catalog (checked there, with
    its errors), kept by storage from every write, and filled from stored data when
    created. Raises DatabaseNotFound/TableNotFound, AlreadyExists, NotFound and the
    catalog's InvalidConfiguration/InvalidCacheColumnType."""

    async def create_last_cache(self, db: str, table: str, *, name: str | None,
                                key_columns: Sequence[str] | None,
                                value_columns: Sequence[str] | None, count: int, ttl_s: int
                                ) -> LastCacheDefinition: ...

    async def delete_last_cache(self, db: str, table: str, name: str) -> None: ...

    async def create_distinct_cache(self, db: str, table: str, columns: Sequence[str], *,
                                    name: str | None, max_cardinality: int, max_age_s: int
                                    ) -> DistinctCacheDefinition: ...

    async def delete_distinct_cache(self, db: str, table: str, name: str) -> None: ...


class Storage(WriteSink, TriggerWriteSink, CatalogQuerySource, StorageEvents, WalTriggerLog,
              CacheStore, Protocol):
    """Everything the services and the processing engine need from a storage back end."""

    async def delete_database(self, name: str, hard_delete_at_ns: int | None = None
                              ) -> None: ...

    async def delete_table(self, db: str, table: str,
                           hard_delete_at_ns: int | None = None) -> None: ...


class TriggerStateStore(Protocol):
    """Small durable records the processing engine keeps per trigger (a schedule trigger's
    last handled fire time): one object each, at `trigger_state_key`, replaced whole by
    every save."""

    async def load_trigger_state(self, database: str, trigger_name: str) -> bytes | None:
        """The trigger's record; None if it has none."""
        ...

    async def save_trigger_state(self, database: str, trigger_name: str, state: bytes
                                 ) -> None:
        """Store the record durably and atomically (a reader sees the old or the new)."""
        ...

    async def delete_trigger_state(self, database: str, trigger_name: str) -> None:
        """Forget the record; no error if there is none."""
        ...


def trigger_state_key(node_id: str, database: str, trigger_name: str) -> str:
    """`<node_id>/triggers/<db>/<trigger>.json`, each name percent-encoded (`/` and `.`
    too, so that no name leaves its folder)."""

    def part(name: str) -> str:
        return quote(name, safe="").replace(".", "%2E")

    return f"{node_id}/triggers/{part(database)}/{part(trigger_name)}.json"
