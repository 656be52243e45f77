"""Who may do what: authentication before routing, database scope inside handlers.

Every request needs a valid token except what `--disable-authz` names (`health`,
`ping`, `metrics`, `ready`: as in the reference, even /health and /ping need one unless
named), the first creation of the operator token, and the request triggers created
public (Weir's addition). Admin tokens may do everything;
database-scoped tokens may only write to and query their databases.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.types import Scope

from weir.auth import READ, WRITE, AuthError, Token, TokenStore
from weir.server.errors import auth_error

#: what answers without a token whatever --disable-authz says: nothing, as in the reference
OPEN_PATHS: frozenset[str] = frozenset()
ENGINE_PREFIX = "/api/v3/engine/"
_AUTHZ_NAMES = {"health": {"/health", "/api/v1/health"}, "ping": {"/ping"},
                "metrics": {"/metrics"}, "ready": {"/ready"}}
#: paths a database-scoped token may reach (its database is checked in the handler)
SCOPED_PATHS = {"/api/v3/write_lp", "/api/v2/write", "/write", "/api/v3/query_sql",
                "/api/v3/query_influxql", "/query"}
_MALFORMED = (
    "Authorization header was malformed, the request was not in the form of "
    "'Authorization: <auth-scheme> <token>', supported auth-schemes are Bearer, Token and Basic"
)
NOT_AUTHENTICATED = "the request was not authenticated"


def open_paths(disable_authz: list[str]) -> set[str]:
    paths = set(OPEN_PATHS)
    for name in disable_authz:
        paths |= _AUTHZ_NAMES.get(name, set())
    return paths


def token_from_header(value: str | None) -> str | None:
    """The token of an Authorization header; the reference's shape rules (400 if off)."""
    if value is None:
        return None
    parts = value.split(" ")
    if len(parts) != 2 or parts[0] not in ("Bearer", "Token", "Basic") or not parts[1]:
        raise auth_error(400, _MALFORMED)
    scheme, cred = parts
    if scheme != "Basic":
        return cred
    try:
        decoded = base64.b64decode(cred, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise auth_error(400, _MALFORMED) from None
    user, sep, token = decoded.rpartition(":")
    if not sep or ":" in user:
        raise auth_error(400, _MALFORMED)
    return token


def request_token(scope: Scope) -> str | None:
    """v1 `p` parameter on /query and /write, else the Authorization header."""
    if scope["path"] in ("/query", "/write"):
        qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if qs.get("p"):
            password: str = qs["p"][-1]
            return password
    header = None
    for k, v in scope.get("headers", []):
        if k == b"authorization":
            header = v.decode("latin-1")
    return token_from_header(header)


def authenticate(scope: Scope, store: TokenStore | None, open_: set[str],
                 public_request: Callable[[str], bool] | None = None) -> Token | None:
    """Raise HttpError unless the request may proceed; the token (None when open).
    `public_request(path)` says whether `/api/v3/engine/<path>` is a public trigger's."""
    text = request_token(scope)  # validates the header's shape even without auth
    path = scope["path"]
    if store is None or path in open_:
        return None
    if path == "/api/v3/configure/token/admin" and scope["method"] == "POST":
        return None  # creating the first operator token needs none (409 if it exists)
    if (public_request is not None and path.startswith(ENGINE_PREFIX)
            and public_request(path[len(ENGINE_PREFIX):])):
        return None
    try:
        tok = store.authenticate(text)
    except AuthError:
        raise auth_error(401, NOT_AUTHENTICATED) from None
    if not tok.admin and path not in SCOPED_PATHS:
        raise auth_error(403, "this token does not grant access to this resource")
    return tok


__all__ = ["READ", "WRITE", "authenticate", "open_paths", "token_from_header"]
