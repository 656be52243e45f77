"""The token store's `system.tokens` table, in `_internal` (only with auth on)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pyarrow as pa

from weir.catalog import INTERNAL_DB
from weir.system_tables.base import SystemTable

__all__ = ["TOKENS_SCHEMA", "TokenSource", "TokenTables"]


class TokenInfo(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def digest(self) -> str: ...

    @property
    def created_at_ms(self) -> int: ...

    @property
    def expiry_ms(self) -> int | None: ...

    def permissions_text(self) -> str: ...


class TokenSource(Protocol):
    def tokens(self) -> Sequence[TokenInfo]: ...


_MS = pa.timestamp("ms")

TOKENS_SCHEMA = pa.schema([
    ("token_id", pa.uint64()), ("name", pa.string()), ("hash", pa.string()),
    ("created_at", _MS), ("expiry", _MS), ("permissions", pa.string()),
])


class TokenTables:
    """The provider of `tokens`."""

    def __init__(self, store: TokenSource) -> None:
        self._store = store

    def __call__(self, database: str, /) -> dict[str, SystemTable]:
        if database != INTERNAL_DB:
            return {}
        return {"tokens": SystemTable(TOKENS_SCHEMA, lambda: tokens_table(self._store))}


def tokens_table(store: TokenSource) -> pa.Table:
    toks = store.tokens()
    return pa.table([
        pa.array([t.id for t in toks], pa.uint64()),
        pa.array([t.name for t in toks], pa.string()),
        pa.array([t.digest[:9] for t in toks], pa.string()),
        pa.array([t.created_at_ms for t in toks], pa.int64()).cast(_MS),
        pa.array([t.expiry_ms for t in toks], pa.int64()).cast(_MS),
        pa.array([t.permissions_text() for t in toks], pa.string()),
    ], schema=TOKENS_SCHEMA)
