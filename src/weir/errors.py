"""Typed errors shared by the parts. The server turns them into status codes and bodies
in one place (weir.server.errors); the parts never know about HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from weir.lineprotocol import LineError


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
        CatalogError.__init__(self, f"Table {table} not in DB schema for {db}")
        self.what = table


class AlreadyExists(CatalogError):
    def __init__(self, what: str = "") -> None:
        super().__init__("attempted to create a resource that already exists")
        self.what = what


class InvalidName(CatalogError):
    """A database, table or column name that is not allowed."""


class InvalidConfiguration(CatalogError):
    """A cache definition the catalog refuses (a missing column, no columns)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"invalid configuration provided: {message}")


class InvalidCacheColumnType(CatalogError):
    """A column of a type a last-value cache cannot key on, or a distinct-value cache
    cannot hold."""


class LimitExceeded(CatalogError):
    """Core's limits on databases, tables and columns (HTTP 422)."""


class TriggerRunning(CatalogError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Cannot delete running plugin {name}. Disable it first or use --force.")


class WriteError(WeirError):
    """A write that was refused as a whole (bad parameters, an empty body, a database that
    cannot take writes). Nothing was stored."""


class InvalidBody(WriteError):
    """A request body that cannot be read as line protocol at all (not UTF-8)."""


class LineProtocolError(WriteError):
    """A write refused at its first bad line (`accept_partial=false`, v1 and v2 writes).
    Nothing was stored. `limit_exceeded`: the line would have passed Core's limits on
    databases, tables or columns."""

    def __init__(self, line: LineError, *, limit_exceeded: bool = False) -> None:
        super().__init__("line protocol parsing error")
        self.line = line
        self.lines = [line]
        self.limit_exceeded = limit_exceeded


class PartialWrite(WriteError):
    """Some lines were refused (`lines`, in line order); every other line was stored."""

    def __init__(self, lines: list[LineError], *, limit_exceeded: bool = False) -> None:
        super().__init__("partial write of line protocol occurred")
        self.lines = lines
        self.limit_exceeded = limit_exceeded


class WriteUnavailable(WriteError):
    """Storage cannot take the write now (buffer full, shutting down); retry later.
    Nothing was stored."""


class WalFailure(WriteError):
    """The write-ahead log could not be made durable; the write was not acknowledged."""


class QueryError(WeirError):
    """A query that cannot be planned or run as written (the user's to fix)."""


class QueryTimeout(QueryError):
    """A query that ran past its time limit and was stopped."""


class QueryUnsupported(QueryError):
    """A query using a feature the engine does not implement."""


class QueryFailed(QueryError):
    """A query that failed while running, or for reasons not the user's (I/O, resources)."""


class DatabaseMissingForQuery(QueryError):
    def __init__(self, db: str) -> None:
        super().__init__(f"query error: database not found: {db}")
        self.db = db


class AccessDenied(WeirError):
    """The caller's token may not do this (read or write a database)."""


class PluginError(WeirError):
    """Plugin files that cannot be found, read or trusted (HTTP 500, `Plugin error: ...`)."""


class ProcessingEngineError(WeirError):
    """The processing engine refused an operation (HTTP 500, `Processing engine error: ...`)."""


class InvalidRequest(WeirError):
    """A request the server cannot act on (HTTP 400, `invalid request: ...`)."""


class NodeModeRefused(WeirError):
    """A cluster node was asked for what its modes leave to other nodes (a write to a
    node without ingest, a query to one without query): HTTP 421 Misdirected Request."""


class ObjectStoreUnavailable(WeirError, OSError):
    """The object store (S3, Google Cloud Storage, Azure) could not be reached, or refused
    the request for a reason not of the data (credentials, a missing bucket, TLS); worth
    retrying once the store or its configuration is fixed (HTTP 503).

    An OSError too, so the code that already treats a failing disk as a failed store
    (snapshots retried, a start-up that stops with a message) treats this one the same."""


class ClusterRefused(WeirError):
    """A node could not join its cluster (`serve --cluster-id`) and must not start: another
    cluster owns the bucket, its node id is in use by a running node, or the object store
    does not keep the conditional writes the nodes coordinate by. The message says which."""
