"""Waiting for real snapshots through what users see: `system.parquet_files`.

There is no "snapshot now" API. Tests that need data in Parquet start the server with
`SNAPSHOT_EVERY_FLUSH` (a snapshot after every WAL file), write, then poll
`system.parquet_files` until the files hold every row written.
"""

from __future__ import annotations

import time
from typing import Any

# a snapshot after each WAL file; WAL files every 10 ms
SNAPSHOT_EVERY_FLUSH = ["--wal-flush-interval", "10ms", "--wal-snapshot-size", "1"]


def write_ok(server: Any, db: str, lp: str, **params: str) -> None:
    r = server.write(db, lp, **params)
    assert r.status_code == 204, f"write to {db!r} refused: {r.status_code} {r.text[:500]}"


def parquet_files(server: Any, db: str) -> list[dict]:
    """system.parquet_files for `db`, ordered by table and min_time."""
    return server.rows(db, "SELECT table_name, path, row_count, min_time, max_time "
                           "FROM system.parquet_files ORDER BY table_name, min_time, path")


def persisted_rows(server: Any, db: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in parquet_files(server, db):
        out[f["table_name"]] = out.get(f["table_name"], 0) + f["row_count"]
    return out


def wait_persisted(server: Any, db: str, rows: dict[str, int], timeout: float = 90.0
                   ) -> list[dict]:
    """Poll until system.parquet_files holds at least `rows[table]` rows for each table;
    return the files. Fails naming what was missing when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        have = persisted_rows(server, db)
        if all(have.get(t, 0) >= n for t, n in rows.items()):
            return parquet_files(server, db)
        failed = "snapshot failed" in server.log()  # no use waiting out the deadline
        if failed or time.monotonic() > deadline:
            why = "a snapshot failed" if failed else f"after {timeout:.0f}s"
            raise AssertionError(
                f"{why}: system.parquet_files of {db!r} holds {have} rows, expected at "
                f"least {rows}; server log tail:\n{server.log()[-3000:]}")
        time.sleep(0.1)
