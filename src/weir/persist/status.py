"""What the storage life cycle records about its snapshots (shown as `system.snapshots`,
see weir.system_tables.life_cycle)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SnapshotRecord"]


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
