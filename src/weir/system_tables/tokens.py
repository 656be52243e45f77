"""The token store's `system.tokens` table, in `_internal`: the reference's columns (the
ones Weir does not record, description and who created or updated a token when, are
empty); without auth there is no `hash` column, as in the reference."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pyarrow as pa

from weir.catalog import INTERNAL_DB
from weir.system_tables.base import SystemTable

__all__ = ["TOKENS_SCHEMA", "TOKENS_SCHEMA_WITHOUT_AUTH", "TokenSource", "TokenTables"]


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
    ("created_at", _MS), ("description", pa.string()), ("created_by_token_id", pa.uint64()),
    ("updated_at", _MS), ("updated_by_token_id", pa.uint64()), ("expiry", _MS),
    ("permissions", pa.string()),
])
#: without auth (the reference leaves the hash out then)
TOKENS_SCHEMA_WITHOUT_AUTH = pa.schema([f for f in TOKENS_SCHEMA if f.name != "hash"])


class TokenTables:
    """The provider of `tokens`."""

    def __init__(self, store: TokenSource, started_with_auth: bool = True) -> None:
        self._store = store
        self._with_auth = started_with_auth

    def __call__(self, database: str, /) -> dict[str, SystemTable]:
        if database != INTERNAL_DB:
            return {}
        schema = TOKENS_SCHEMA if self._with_auth else TOKENS_SCHEMA_WITHOUT_AUTH
        return {"tokens": SystemTable(schema, lambda: tokens_table(self._store,
                                                                    self._with_auth))}


def tokens_table(store: TokenSource, with_auth: bool = True) -> pa.Table:
    toks = store.tokens()
    n = len(toks)
    table = pa.table([
        pa.array([t.id for t in toks], pa.uint64()),
        pa.array([t.name for t in toks], pa.string()),
        pa.array([t.digest[:9] for t in toks], pa.string()),
        pa.array([t.created_at_ms for t in toks], pa.int64()).cast(_MS),
        pa.nulls(n, pa.string()), pa.nulls(n, pa.uint64()), pa.nulls(n, _MS),
        pa.nulls(n, pa.uint64()),
        pa.array([t.expiry_ms for t in toks], pa.int64()).cast(_MS),
        pa.array([t.permissions_text() for t in toks], pa.string()),
    ], schema=TOKENS_SCHEMA)
    return table if with_auth else table.drop_columns(["hash"])
