"""Test doubles for the processing engine's unit tests (no tests here).

`FakeDatabase` implements the few `weir.database.Database` methods the engine uses,
over a real in-memory catalog; `parse_lp` is a small line-protocol parser with the
`weir.lineprotocol.parse` contract (no escapes), for test runs.
"""

from __future__ import annotations

import asyncio
import enum
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa

from weir.catalog import Catalog, Column
from weir.config import ServeConfig
from weir.engine.options import EngineOptions
from weir.errors import DatabaseMissingForQuery, QueryError, WriteError
from weir.objectstore import open_store

# ---- line protocol (test version) ----------------------------------------------------


class FieldType(enum.Enum):
    FLOAT = "float"
    INTEGER = "integer"
    UINTEGER = "uinteger"
    STRING = "string"
    BOOLEAN = "boolean"


_ARROW = {FieldType.FLOAT: pa.float64(), FieldType.INTEGER: pa.int64(),
          FieldType.UINTEGER: pa.uint64(), FieldType.STRING: pa.string(),
          FieldType.BOOLEAN: pa.bool_()}


@dataclass
class LineError:
    line_number: int
    message: str
    original_line: str


@dataclass
class TableColumns:
    name: str
    line_numbers: list[int] = field(default_factory=list)
    tags: dict[str, list[str | None]] = field(default_factory=dict)
    fields: dict[str, tuple[FieldType, list[Any]]] = field(default_factory=dict)
    times: list[int] = field(default_factory=list)

    def to_arrow(self) -> pa.RecordBatch:
        cols, names = [], []
        for k, vals in self.tags.items():
            f = pa.field(k, pa.dictionary(pa.int32(), pa.string()), metadata={b"weir:kind": b"tag"})
            cols.append(pa.array(vals, pa.string()).dictionary_encode())
            names.append(f)
        for k, (ft, vals) in self.fields.items():
            names.append(pa.field(k, _ARROW[ft], metadata={b"weir:kind": b"field"}))
            cols.append(pa.array(vals, _ARROW[ft]))
        names.append(pa.field("time", pa.timestamp("ns"), metadata={b"weir:kind": b"time"}))
        cols.append(pa.array(self.times, pa.timestamp("ns")))
        return pa.RecordBatch.from_arrays(cols, schema=pa.schema(names))


@dataclass
class ParsedWrite:
    tables: dict[str, TableColumns] = field(default_factory=dict)
    errors: list[LineError] = field(default_factory=list)
    lines: int = 0


def _value(text: str) -> tuple[FieldType, Any]:
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return FieldType.STRING, text[1:-1]
    if text in ("t", "true", "T", "True"):
        return FieldType.BOOLEAN, True
    if text in ("f", "false", "F", "False"):
        return FieldType.BOOLEAN, False
    if re.fullmatch(r"-?\d+i", text):
        return FieldType.INTEGER, int(text[:-1])
    if re.fullmatch(r"\d+u", text):
        return FieldType.UINTEGER, int(text[:-1])
    return FieldType.FLOAT, float(text)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts, cur, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_lp(body: bytes | str, *, precision: str = "auto", default_time_ns: int,
             stop_on_first_error: bool = False) -> ParsedWrite:
    text = body.decode() if isinstance(body, bytes) else body
    out = ParsedWrite()
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        out.lines += 1
        try:
            parts = _split_outside_quotes(line, " ")
            if len(parts) not in (2, 3):
                raise ValueError("expected measurement, fields and an optional timestamp")
            head, fieldset = parts[0], parts[1]
            ts = int(parts[2]) if len(parts) == 3 else default_time_ns
            meas, *tagparts = head.split(",")
            tags = dict(p.split("=", 1) for p in tagparts)
            fields = {k: _value(v) for k, v in (p.split("=", 1)
                                                for p in _split_outside_quotes(fieldset, ","))}
        except ValueError as e:
            out.errors.append(LineError(n, f"invalid line: {e}", raw))
            if stop_on_first_error:
                break
            continue
        tc = out.tables.get(meas) or TableColumns(meas)
        conflict = [k for k, (ft, _) in fields.items()
                    if k in tc.fields and tc.fields[k][0] != ft]
        if conflict:
            out.errors.append(LineError(n, f"field type conflict for {conflict[0]}", raw))
            if stop_on_first_error:
                break
            continue
        out.tables[meas] = tc
        row = len(tc.times)
        for k, v in tags.items():
            tc.tags.setdefault(k, [None] * row).append(v)
        for k, (ft, v) in fields.items():
            tc.fields.setdefault(k, (ft, [None] * row))[1].append(v)
        for vals in tc.tags.values():
            vals.extend([None] * (row + 1 - len(vals)))
        for _, vals in tc.fields.values():
            vals.extend([None] * (row + 1 - len(vals)))
        tc.times.append(ts)
        tc.line_numbers.append(n)
    return out


# ---- database ------------------------------------------------------------------------


class FakeDatabase:
    """The engine's view of `weir.database.Database`, with a real in-memory catalog."""

    def __init__(self) -> None:
        self.catalog = Catalog(open_store("memory"), "test-node")
        self.catalog.load()
        self.written: list[tuple[str, str, dict[str, Any]]] = []
        self.query_handler: Callable[[str, str, Any], pa.Table] | None = None
        self.queries: list[tuple[str, str, Any]] = []
        self.wal_listeners: list[Any] = []
        self.persist_listeners: list[Any] = []
        self.providers: list[Any] = []
        self._seq = 0

    async def write_lp(self, database: str, body: bytes | str, *, precision: str = "auto",
                       accept_partial: bool = True, no_sync: bool = False) -> None:
        text = body.decode() if isinstance(body, bytes) else body
        if "INVALID" in text:
            raise WriteError("line protocol parsing error",
                             lines=[LineError(1, "bad line (INVALID)", text)])
        if " " in database:
            raise WriteError(f"invalid database name: {database}")
        self.catalog.ensure_database(database)
        self.written.append((database, text, {"precision": precision,
                                              "accept_partial": accept_partial,
                                              "no_sync": no_sync}))

    async def query(self, database: str, sql: str, params: Any = None) -> pa.Table:
        self.queries.append((database, sql, params))
        if not self.catalog.db_exists(database):
            raise DatabaseMissingForQuery(database)
        m = re.fullmatch(r"\s*SELECT \* FROM system\.(\w+)\s*", sql, re.IGNORECASE)
        if m:
            return self.system_table(database, m.group(1))
        if self.query_handler is not None:
            return self.query_handler(database, sql, params)
        raise QueryError(f"error while planning query: table not found: {sql}")

    def add_wal_listener(self, cb: Any) -> None:
        self.wal_listeners.append(cb)

    def add_persist_listener(self, cb: Any) -> None:
        self.persist_listeners.append(cb)

    def add_system_tables(self, provider: Any) -> None:
        self.providers.append(provider)

    def system_table(self, database: str, name: str) -> pa.Table:
        for p in self.providers:
            tables = p(database)
            if name in tables:
                return tables[name]()
        raise QueryError(f"table system.{name} not found")

    async def flush(self, writes: dict[str, list[tuple[str, pa.RecordBatch]]]) -> None:
        """Deliver one WAL flush to the listeners (as the WAL does after fsync)."""
        self._seq += 1
        for db, items in writes.items():
            d, _ = self.catalog.ensure_database(db)
            for table, batch in items:
                self.catalog.add_columns(db, table, [
                    Column(f.name, (f.metadata or {}).get(b"weir:kind", b"field").decode(),
                           "tag" if pa.types.is_dictionary(f.type) else "time"
                           if f.name == "time" else "float")
                    for f in batch.schema])
        event = SimpleNamespace(seq=self._seq, writes=writes)
        for cb in self.wal_listeners:
            await cb(event)

    async def persist(self, files: list[dict[str, Any]]) -> None:
        event = SimpleNamespace(seq=1, files=[SimpleNamespace(**f) for f in files])
        for cb in self.persist_listeners:
            await cb(event)

    def lines_for(self, database: str) -> list[str]:
        return [ln for db, text, _ in self.written if db == database
                for ln in text.split("\n")]


def batch(lp: str) -> list[tuple[str, pa.RecordBatch]]:
    """Line protocol as the (table, batch) pairs a WAL flush carries."""
    parsed = parse_lp(lp, default_time_ns=time.time_ns())
    assert not parsed.errors, parsed.errors
    return [(name, tc.to_arrow()) for name, tc in parsed.tables.items()]


def make_config(tmp_path: Path, **kw: Any) -> ServeConfig:
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir(exist_ok=True)
    cfg = ServeConfig(plugin_dir=plugin_dir, data_dir=tmp_path / "data",
                      object_store="memory", plugin_call_timeout=10.0)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def fast_options(**kw: Any) -> EngineOptions:
    """Options for tests: no venv creation, quick retries, a modest memory limit."""
    opts = EngineOptions(memory_limit=1024 * 1024 * 1024, call_timeout=10.0,
                         retry_attempts=3, retry_base_delay=0.05, retry_max_delay=0.1,
                         create_venv=False)
    for k, v in kw.items():
        setattr(opts, k, v)
    return opts


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0,
                   interval: float = 0.02) -> Any:
    """Poll until `predicate()` is truthy; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
