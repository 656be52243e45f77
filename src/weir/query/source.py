"""What the storage side hands the query engine: a consistent view of one database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs


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
    tables: dict[str, TableSnapshot]
    filesystem: pafs.FileSystem
    #: system table name -> builder, called only if the query names the table
    system_tables: dict[str, Callable[[], pa.Table]] = field(default_factory=dict)
