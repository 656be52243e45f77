"""Tokens: the operator (admin) token, named admin tokens, and database-scoped tokens.

Tokens look like the reference's (`apiv3_` + 64 random bytes, URL-safe base64) but are
stored only as salted HMAC-SHA512 digests in the catalog: the plaintext is shown once,
at creation, and is never written to the data dir or the logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from weir.catalog import Catalog
from weir.errors import AlreadyExists, CatalogError, NotFound

ADMIN_NAME = "_admin"
READ = "read"
WRITE = "write"

_R = TypeVar("_R")


class AuthError(Exception):
    """Not authenticated (401) or not allowed (403)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Permission:
    """`db:<names or *>:<actions>` — actions read and/or write."""

    databases: list[str]
    actions: list[str]

    def allows(self, db: str, action: str) -> bool:
        return action in self.actions and ("*" in self.databases or db in self.databases)

    def text(self) -> str:
        return f"db:{','.join(self.databases)}:{','.join(self.actions)}"


@dataclass
class Token:
    id: int
    name: str
    salt: str
    digest: str
    created_at_ms: int
    expiry_ms: int | None = None
    admin: bool = False
    permissions: list[Permission] = field(default_factory=list)

    def expired(self, now_ms: int) -> bool:
        return self.expiry_ms is not None and now_ms >= self.expiry_ms

    def allows(self, db: str, action: str) -> bool:
        return self.admin or any(p.allows(db, action) for p in self.permissions)

    def permissions_text(self) -> str:
        return "*:*:*" if self.admin else ";".join(p.text() for p in self.permissions)


def parse_permission(text: str) -> Permission:
    """`db:db1,db2:read,write` (the Enterprise CLI's form); `*` for every database."""
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != "db" or not parts[1] or not parts[2]:
        raise ValueError(f"invalid permission {text!r}: expected db:<database,...|*>:"
                         "<read,write>")
    actions = [a.strip() for a in parts[2].split(",") if a.strip()]
    if not actions or any(a not in (READ, WRITE) for a in actions):
        raise ValueError(f"invalid permission {text!r}: actions must be read and/or write")
    return Permission([d.strip() for d in parts[1].split(",") if d.strip()], actions)


def _digest(salt: str, token: str) -> str:
    return hmac.new(bytes.fromhex(salt), token.encode(), hashlib.sha512).hexdigest()


def new_token_text() -> str:
    return "apiv3_" + base64.urlsafe_b64encode(secrets.token_bytes(64)).decode().rstrip("=")


class TokenStore:
    """Tokens kept in the catalog (`extra["tokens"]`), checked on every request."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        # plaintext -> (token id, digest) for tokens already verified: saves an HMAC per
        # token per request; memory only, never persisted. The digest is compared too,
        # since another node may replace a token (same id, new secret) without this
        # store hearing of it.
        self._verified: dict[str, tuple[int, str]] = {}

    def _tokens(self) -> list[Token]:
        raw = self.catalog.extra.get("tokens", [])
        return [Token(**{**t, "permissions": [Permission(**p) for p in t["permissions"]]})
                for t in raw]

    def _change(self, change: Callable[[list[Token]], tuple[list[Token], _R]]) -> _R:
        """Commit `change` (the current tokens -> the new tokens and a result) to the
        catalog. It is run again on the newest tokens if another node changed the
        catalog first, so a token made there at the same moment is kept."""
        def apply() -> _R:
            tokens, result = change(self._tokens())
            self.catalog.extra["tokens"] = [asdict(t) for t in tokens]
            return result

        try:
            return self.catalog.commit(apply)
        finally:
            self._verified.clear()

    def tokens(self) -> list[Token]:
        with self._lock:
            return self._tokens()

    def has_admin(self) -> bool:
        return any(t.name == ADMIN_NAME for t in self.tokens())

    def create(self, name: str, *, admin: bool, permissions: list[Permission] | None = None,
               expiry_s: float | None = None, replace: bool = False) -> tuple[Token, str]:
        """Create a token; returns it and its plaintext (the only time that is known)."""
        text = new_token_text()
        salt = secrets.token_hex(16)
        now = int(time.time() * 1000)

        def change(tokens: list[Token]) -> tuple[list[Token], Token]:
            existing = [t for t in tokens if t.name == name]
            if existing and not replace:
                raise AlreadyExists(name) if name == ADMIN_NAME else CatalogError(
                    f"token name already exists, {name}")
            if replace and not existing:
                raise NotFound(name)
            tokens = [t for t in tokens if t.name != name]
            tid = existing[0].id if existing else max((t.id for t in tokens), default=-1) + 1
            tok = Token(id=tid, name=name, salt=salt, digest=_digest(salt, text),
                        created_at_ms=now,
                        expiry_ms=None if expiry_s is None else now + int(expiry_s * 1000),
                        admin=admin, permissions=list(permissions or []))
            return [*tokens, tok], tok

        with self._lock:
            return self._change(change), text

    def import_token(self, name: str, text: str, expiry_ms: int | None = None) -> Token:
        """Adopt a token made elsewhere (`create token --admin --offline`) as an admin
        token, replacing one of the same name; only its digest is kept."""
        if not text.startswith("apiv3_"):
            raise ValueError("not a Weir/InfluxDB 3 token (expected apiv3_...)")
        salt = secrets.token_hex(16)
        now = int(time.time() * 1000)

        def change(tokens: list[Token]) -> tuple[list[Token], Token]:
            old = next((t for t in tokens if t.name == name), None)
            if old is not None and hmac.compare_digest(old.digest, _digest(old.salt, text)):
                return tokens, old
            tokens = [t for t in tokens if t.name != name]
            tok = Token(id=old.id if old else max((t.id for t in tokens), default=-1) + 1,
                        name=name, salt=salt, digest=_digest(salt, text),
                        created_at_ms=now, expiry_ms=expiry_ms, admin=True)
            return [*tokens, tok], tok

        with self._lock:
            return self._change(change)

    def delete(self, name: str) -> None:
        if name == ADMIN_NAME:
            raise CatalogError("cannot delete operator token")

        def change(tokens: list[Token]) -> tuple[list[Token], None]:
            if not any(t.name == name for t in tokens):
                raise NotFound(name)
            return [t for t in tokens if t.name != name], None

        with self._lock:
            self._change(change)

    def authenticate(self, text: str | None) -> Token:
        """The token whose secret is `text`; AuthError if none is valid."""
        if not text:
            raise AuthError("the request was not authenticated")
        now = int(time.time() * 1000)
        with self._lock:
            tokens = self._tokens()
            known = self._verified.get(text)
            match = None
            if known is not None:
                match = next((t for t in tokens if (t.id, t.digest) == known), None)
            if match is None:
                for t in tokens:
                    if hmac.compare_digest(t.digest, _digest(t.salt, text)):
                        match = t
                        if len(self._verified) < 10_000:
                            self._verified[text] = (t.id, t.digest)
                        break
        if match is None or match.expired(now):
            raise AuthError("the request was not authenticated")
        return match


def token_json(tok: Token, text: str) -> dict[str, Any]:
    from datetime import UTC, datetime

    def iso(ms: int | None) -> str | None:
        if ms is None:
            return None
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    return {"id": tok.id, "name": tok.name, "token": text, "hash": tok.digest,
            "created_at": iso(tok.created_at_ms), "expiry": iso(tok.expiry_ms)}


__all__ = ["ADMIN_NAME", "AuthError", "Permission", "Token", "TokenStore", "parse_permission",
           "token_json"]
