"""The seam between the parts of the server that own `system.*` tables and the query layer.

A part (storage, the storage life cycle, the processing engine, the token store) offers its
tables through a `SystemTableProvider`: given a database, the tables it has there, each a
`SystemTable` whose columns are known up front and whose rows are built only when a query
reads them. `SystemTables` gathers the providers; the query layer receives one database's
tables as a `Mapping[str, SystemTable]`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

__all__ = ["SystemTable", "SystemTableProvider", "SystemTables"]


@dataclass(frozen=True)
class SystemTable:
    """One `system.<name>` table.

    `schema` is known without building the table: information_schema and SHOW COLUMNS list
    it as is. `build` makes the rows; the query layer calls it (through `read`) only for a
    query that reads the table, once per query.
    """

    schema: pa.Schema
    build: Callable[[], pa.Table]

    def read(self) -> pa.Table:
        """The rows, with exactly `schema` (the contract information_schema shows): a
        built table with the same columns in other types or metadata is cast to it; one
        with other columns is an error."""
        table = self.build()
        if table.schema.equals(self.schema, check_metadata=True):
            return table
        if table.schema.names != self.schema.names:
            raise ValueError(f"built with columns {table.schema.names}, declared with "
                             f"{self.schema.names}")
        return table.cast(self.schema)


class SystemTableProvider(Protocol):
    """A part of the server that has system tables: those it has in `database`, by name."""

    def __call__(self, database: str, /) -> Mapping[str, SystemTable]: ...


class SystemTables:
    """The registry of providers, itself a provider: a database's tables from every
    provider, in registration order (a later provider's table replaces an earlier one's of
    the same name). Providers may be registered while queries run."""

    def __init__(self, providers: Iterable[SystemTableProvider] = ()) -> None:
        self._providers = list(providers)
        self._lock = threading.Lock()

    def register(self, provider: SystemTableProvider) -> None:
        with self._lock:
            self._providers.append(provider)

    def __call__(self, database: str, /) -> dict[str, SystemTable]:
        with self._lock:
            providers = list(self._providers)
        tables: dict[str, SystemTable] = {}
        for provider in providers:
            tables.update(provider(database))
        return tables
