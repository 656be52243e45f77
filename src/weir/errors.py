"""Typed errors shared by the parts. The server turns them into status codes and bodies
in one place (weir.server.errors); the parts never know about HTTP."""

from __future__ import annotations

from typing import Any


class WeirError(Exception):
    """Base of every error Weir raises on purpose."""


class CatalogError(WeirError):
    """A catalog operation was refused; the message is shown to the user as-is."""


class NotFound(CatalogError):
    def __init__(self, what: str) -> None:
        super().__init__(f"the requested resource was not found: {what}")
        self.what = what


class DatabaseNotFound(NotFound):
    def __init__(self, db: str) -> None:
        CatalogError.__init__(self, f"Database not found {db}")
        self.what = db
        self.db = db


class TableNotFound(NotFound):
    def __init__(self, db: str, table: str) -> None:
        CatalogError.__init__(self, f"Table not found {table} in database {db}")
        self.what = table


class AlreadyExists(CatalogError):
    def __init__(self, what: str = "") -> None:
        super().__init__("attempted to create a resource that already exists")
        self.what = what


class InvalidName(CatalogError):
    """A database, table or column name that is not allowed."""


class LimitExceeded(CatalogError):
    """Core's limits on databases, tables and columns (HTTP 422)."""


class TriggerRunning(CatalogError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Cannot delete running plugin {name}. Disable it first or use --force.")


class WriteError(WeirError):
    """A write that was refused in whole or in part.

    `status` and `body` are what the v3 API answers; `lines` lists the per-line errors.
    """

    def __init__(self, message: str, status: int = 400, body: Any = None,
                 lines: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else {"error": message}
        self.lines = lines or []


class QueryError(WeirError):
    """A query that failed. `status` follows the reference (400 plan errors, 404 unknown db)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class DatabaseMissingForQuery(QueryError):
    def __init__(self, db: str) -> None:
        super().__init__(f"query error: database not found: {db}", status=404)
        self.db = db


class PluginError(WeirError):
    """Plugin files that cannot be found, read or trusted (HTTP 500, `Plugin error: ...`)."""


class ProcessingEngineError(WeirError):
    """The processing engine refused an operation (HTTP 500, `Processing engine error: ...`)."""


class InvalidRequest(WeirError):
    """A request the server cannot act on (HTTP 400, `invalid request: ...`)."""
