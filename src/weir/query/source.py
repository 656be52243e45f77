"""What the storage side hands the query engine: a consistent view of one database."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs

from weir.system_tables import SystemTable

#: a SQL table function (`last_cache('cpu')`): its literal arguments (a value that is not a
#: literal comes as an object of no such type) -> its rows. It raises `weir.errors.QueryError`
#: for arguments it cannot use; the message becomes the planning error.
TableFunction = Callable[[Sequence[object]], pa.Table]


@dataclass(frozen=True)
class ParquetFileRef:
    path: str  # within DatabaseSnapshot.filesystem
    min_time: int
    max_time: int
    row_count: int
    size_bytes: int


@dataclass
class TableSnapshot:
    name: str
    #: the table's full current schema; batches and files may lack newer columns
    schema: pa.Schema
    batches: list[pa.RecordBatch] = field(default_factory=list)
    files: list[ParquetFileRef] = field(default_factory=list)
    #: rows older than this (ns) are hidden: the database's retention period
    min_time: int | None = None


@dataclass
class DatabaseSnapshot:
    name: str
    tables: Mapping[str, TableSnapshot]
    filesystem: pafs.FileSystem
    #: the `system.*` tables: their columns, and their rows built only for a query that
    #: reads them
    system_tables: Mapping[str, SystemTable] = field(default_factory=dict)
    #: the SQL table functions this database has, by name (its caches')
    table_functions: Mapping[str, TableFunction] = field(default_factory=dict)
    #: the most Parquet files any one table has: above a few, a first planning pass that
    #: finds each table's earliest time wanted pays for itself (query.time_floor)
    most_files: int = 0
    #: the most rows in memory any one table has: above a few batches' worth, that pass
    #: also leaves out the buffered batches wholly outside the statement's time range
    most_buffered_rows: int = 0
