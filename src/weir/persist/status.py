"""What the storage life cycle did, as `system.snapshots` and `system.compactions`."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from weir.persist.compactor import CompactionRecord

__all__ = ["SnapshotRecord", "compactions_table", "snapshots_table"]

_TS = pa.timestamp("ns")


@dataclass
class SnapshotRecord:
    """One snapshot attempt."""

    wal_seq: int
    status: str  # ok | failed
    attempt: int
    started_ns: int
    duration_ms: float
    files: int
    rows: int
    error: str = ""


def snapshots_table(records: list[SnapshotRecord]) -> pa.Table:
    return pa.table({
        "wal_seq": pa.array([r.wal_seq for r in records], pa.int64()),
        "status": pa.array([r.status for r in records], pa.string()),
        "attempt": pa.array([r.attempt for r in records], pa.int64()),
        "started_at": pa.array([r.started_ns for r in records], _TS),
        "duration_ms": pa.array([r.duration_ms for r in records], pa.float64()),
        "files": pa.array([r.files for r in records], pa.int64()),
        "rows": pa.array([r.rows for r in records], pa.int64()),
        "error": pa.array([r.error for r in records], pa.string()),
    })


def compactions_table(records: list[CompactionRecord]) -> pa.Table:
    return pa.table({
        "table_name": pa.array([r.table_name for r in records], pa.string()),
        "status": pa.array([r.status for r in records], pa.string()),
        "input_files": pa.array([r.input_files for r in records], pa.int64()),
        "output_files": pa.array([r.output_files for r in records], pa.int64()),
        "input_rows": pa.array([r.input_rows for r in records], pa.int64()),
        "output_rows": pa.array([r.output_rows for r in records], pa.int64()),
        "started_at": pa.array([r.started_ns for r in records], _TS),
        "duration_ms": pa.array([r.duration_ms for r in records], pa.float64()),
        "error": pa.array([r.error for r in records], pa.string()),
    })
