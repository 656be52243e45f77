"""In-process tests of the processing engine over the real database.

`open_database` starts a real `weir.database.Database` (real parser, catalog, WAL, buffer,
snapshots and query engine) on the `memory` object store, so an engine under test writes,
queries and sees WAL flushes and Parquet persists exactly as inside a server. Nothing of
Weir's own is replaced; `WriteLog` only records the engine's calls to the real `write_lp`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from datafusion import LogicalPlan, SessionConfig, SessionContext

from weir import lineprotocol
from weir.config import ServeConfig
from weir.database import Database
from weir.engine import ProcessingEngine
from weir.engine.options import EngineOptions
from weir.service import Services


def make_config(tmp_path: Path, **kw: Any) -> ServeConfig:
    """A server's configuration on the memory object store, with a plugin dir and a short
    WAL flush interval (each awaited write is then its own WAL flush, as in a server)."""
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir(exist_ok=True)
    cfg = ServeConfig(plugin_dir=plugin_dir, data_dir=tmp_path / "data",
                      object_store="memory", plugin_call_timeout=10.0,
                      wal_flush_interval=0.01)
    for k, v in kw.items():
        if not hasattr(cfg, k):
            raise AttributeError(f"ServeConfig has no field {k!r}")
        setattr(cfg, k, v)
    return cfg


def services_for(db: Database) -> Services:
    """The services over `db`, as the server builds them (the engine writes and queries
    through them)."""
    return Services.over(db, hard_delete_default_s=db.config.hard_delete_default_duration)


def fast_options(**kw: Any) -> EngineOptions:
    """Options for tests: no venv creation, quick retries, a modest memory limit."""
    opts = EngineOptions(memory_limit=1024 * 1024 * 1024, call_timeout=10.0,
                         retry_attempts=3, retry_base_delay=0.05, retry_max_delay=0.1,
                         create_venv=False)
    for k, v in kw.items():
        setattr(opts, k, v)
    return opts


@dataclass
class WriteLog:
    """The calls made to a real `Database.write_lp`, in order (the write still happens)."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def lines_for(self, database: str) -> list[str]:
        return [ln for db, text, _ in self.calls if db == database
                for ln in text.split("\n") if ln]


def record_writes(db: Database) -> WriteLog:
    """Record every successful `db.write_lp` call (database, body, keyword arguments) and
    every database a WAL trigger's call committed (`db.commit_trigger_writes`: database,
    body, {"trigger": key, "checkpoint": seq})."""
    log = WriteLog()
    real = db.write_lp
    real_commit = db.commit_trigger_writes

    async def write_lp(database: str, body: bytes | str, **kw: Any) -> Any:
        result = await real(database, body, **kw)
        text = body.decode() if isinstance(body, bytes) else body
        log.calls.append((database, text, kw))
        return result

    async def commit_trigger_writes(key: tuple[str, str], seq: int,
                                    writes: Mapping[str, str]) -> Any:
        refused = await real_commit(key, seq, writes)
        log.calls.extend((database, text, {"trigger": key, "checkpoint": seq})
                         for database, text in writes.items() if database not in refused)
        return refused

    write_lp.log = log  # type: ignore[attr-defined]
    db.write_lp = write_lp  # type: ignore[method-assign]
    db.commit_trigger_writes = commit_trigger_writes  # type: ignore[method-assign]
    return log


async def write(db: Database, database: str, lp: str) -> Any:
    """Write as a client does (one awaited write: one WAL flush), lines without a timestamp
    getting one near now; not recorded by `record_writes`, which is for the engine's."""
    return await Database.write_lp(db, database, now_lines(lp))


@asynccontextmanager
async def open_database(config: ServeConfig) -> AsyncIterator[Database]:
    """A started real Database (needs the running asyncio loop); stopped on exit."""
    db = Database(config)
    await db.start()
    try:
        yield db
    finally:
        await db.stop()


async def start_engine(db: Database, options: EngineOptions | None = None
                       ) -> ProcessingEngine:
    """A started processing engine over `db`, built as the server builds it."""
    engine = ProcessingEngine(services_for(db), db, db.config, options or fast_options())
    await engine.start()
    return engine


@asynccontextmanager
async def running_engine(db: Database, options: EngineOptions | None = None
                         ) -> AsyncIterator[ProcessingEngine]:
    """`start_engine`, stopped on exit."""
    engine = await start_engine(db, options)
    try:
        yield engine
    finally:
        await engine.stop()


def now_lines(lp: str, start_ns: int | None = None) -> str:
    """Give each line without a timestamp one near now, a nanosecond apart, in order."""
    t = time.time_ns() if start_ns is None else start_ns
    out = []
    for i, line in enumerate(ln for ln in lp.split("\n") if ln.strip()):
        out.append(line if len(line.rsplit(" ", 2)) == 3 and line.rsplit(" ", 1)[1].isdigit()
                   else f"{line} {t + i}")
    return "\n".join(out)


def batch(lp: str) -> list[tuple[str, pa.RecordBatch]]:
    """Line protocol (times in ns), parsed by the real parser, as the (table, batch) pairs
    a WAL flush carries."""
    parsed = lineprotocol.parse(lp, precision="ns", default_time_ns=time.time_ns())
    assert not parsed.errors, parsed.errors
    return [(name, tc.to_arrow()) for name, tc in parsed.tables.items()]


async def query_rows(db: Database, database: str, sql: str,
                     params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return (await db.query(database, sql, params)).to_pylist()


async def wait_for(predicate: Callable[[], Any], timeout: float = 30.0,
                   interval: float = 0.02, what: str = "condition") -> Any:
    """Poll until `predicate()` is truthy (it may be a coroutine function); returns its
    value or fails the test after a generous deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(interval)


def plan_over_empty_tables(sql: str) -> LogicalPlan:
    """`sql`'s optimised plan over empty tables `cpu` and `mem` (host, region: strings; v:
    float; time), in a session whose default schema is `iox` as the query engine's."""
    ctx = SessionContext(SessionConfig().with_default_catalog_and_schema("public", "iox"))
    empty = pa.record_batch([pa.array([], pa.string()), pa.array([], pa.string()),
                             pa.array([], pa.float64()), pa.array([], pa.timestamp("ns"))],
                            names=["host", "region", "v", "time"])
    for name in ("cpu", "mem"):
        ctx.register_record_batches(name, [[empty]])
    return ctx.sql(sql).optimized_logical_plan()


@contextmanager
def no_time_floors() -> Iterator[None]:
    """Every file and buffered batch of a table in the plan, whatever the query's time
    filter (no bounds pass, so no newest-rows floor either)."""
    from weir.query import engine as query_engine

    real = query_engine._PRUNE_FILES_OVER, query_engine._PRUNE_BUFFERED_ROWS_OVER
    query_engine._PRUNE_FILES_OVER = query_engine._PRUNE_BUFFERED_ROWS_OVER = 10**9
    try:
        yield
    finally:
        query_engine._PRUNE_FILES_OVER, query_engine._PRUNE_BUFFERED_ROWS_OVER = real
