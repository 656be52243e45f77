"""What the storage life cycle did: `system.snapshots` (every snapshot attempt, newest last)
and `system.compactions` (that database's compaction jobs), in every database."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import pyarrow as pa

from weir.system_tables.base import SystemTable

__all__ = ["COMPACTIONS_SCHEMA", "SNAPSHOTS_SCHEMA", "LifeCycleState", "LifeCycleTables"]


class SnapshotInfo(Protocol):
    @property
    def wal_seq(self) -> int: ...

    @property
    def status(self) -> str: ...

    @property
    def attempt(self) -> int: ...

    @property
    def started_ns(self) -> int: ...

    @property
    def duration_ms(self) -> float: ...

    @property
    def files(self) -> int: ...

    @property
    def rows(self) -> int: ...

    @property
    def error(self) -> str: ...


class CompactionInfo(Protocol):
    @property
    def database(self) -> str: ...

    @property
    def table_name(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def input_files(self) -> int: ...

    @property
    def output_files(self) -> int: ...

    @property
    def input_rows(self) -> int: ...

    @property
    def output_rows(self) -> int: ...

    @property
    def started_ns(self) -> int: ...

    @property
    def duration_ms(self) -> float: ...

    @property
    def error(self) -> str: ...


class CompactionLog(Protocol):
    @property
    def history(self) -> Iterable[CompactionInfo]: ...


class LifeCycleState(Protocol):
    """Where the records are (bounded histories that other threads append to)."""

    @property
    def snapshot_history(self) -> Iterable[SnapshotInfo]: ...

    @property
    def compactor(self) -> CompactionLog: ...


_TS = pa.timestamp("ns")

SNAPSHOTS_SCHEMA = pa.schema([
    ("wal_seq", pa.int64()), ("status", pa.string()), ("attempt", pa.int64()),
    ("started_at", _TS), ("duration_ms", pa.float64()), ("files", pa.int64()),
    ("rows", pa.int64()), ("error", pa.string()),
])
COMPACTIONS_SCHEMA = pa.schema([
    ("table_name", pa.string()), ("status", pa.string()), ("input_files", pa.int64()),
    ("output_files", pa.int64()), ("input_rows", pa.int64()), ("output_rows", pa.int64()),
    ("started_at", _TS), ("duration_ms", pa.float64()), ("error", pa.string()),
])


class LifeCycleTables:
    """The provider of `snapshots` and `compactions`."""

    def __init__(self, state: LifeCycleState) -> None:
        self._state = state

    def __call__(self, database: str, /) -> dict[str, SystemTable]:
        state = self._state
        return {
            "snapshots": SystemTable(SNAPSHOTS_SCHEMA,
                                     lambda: snapshots_table(list(state.snapshot_history))),
            # copied first: the compactor appends from its own thread
            "compactions": SystemTable(COMPACTIONS_SCHEMA, lambda: compactions_table(
                [r for r in list(state.compactor.history) if r.database == database])),
        }


def snapshots_table(records: list[SnapshotInfo]) -> pa.Table:
    return pa.table([
        pa.array([r.wal_seq for r in records], pa.int64()),
        pa.array([r.status for r in records], pa.string()),
        pa.array([r.attempt for r in records], pa.int64()),
        pa.array([r.started_ns for r in records], _TS),
        pa.array([r.duration_ms for r in records], pa.float64()),
        pa.array([r.files for r in records], pa.int64()),
        pa.array([r.rows for r in records], pa.int64()),
        pa.array([r.error for r in records], pa.string()),
    ], schema=SNAPSHOTS_SCHEMA)


def compactions_table(records: list[CompactionInfo]) -> pa.Table:
    return pa.table([
        pa.array([r.table_name for r in records], pa.string()),
        pa.array([r.status for r in records], pa.string()),
        pa.array([r.input_files for r in records], pa.int64()),
        pa.array([r.output_files for r in records], pa.int64()),
        pa.array([r.input_rows for r in records], pa.int64()),
        pa.array([r.output_rows for r in records], pa.int64()),
        pa.array([r.started_ns for r in records], _TS),
        pa.array([r.duration_ms for r in records], pa.float64()),
        pa.array([r.error for r in records], pa.string()),
    ], schema=COMPACTIONS_SCHEMA)
