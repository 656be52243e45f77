"""InfluxQL errors. All are QueryErrors, so the server maps them like SQL errors (400)."""

from __future__ import annotations

from weir.errors import QueryError


class InfluxQLError(QueryError):
    """A statement that cannot be planned or run; the message is shown to the user."""


class InfluxQLSyntaxError(InfluxQLError):
    """Text that is not InfluxQL."""


class UnsupportedStatement(InfluxQLError):
    """Valid InfluxQL that Weir does not run; names the statement, never answers wrongly."""

    def __init__(self, what: str) -> None:
        super().__init__(f"unsupported InfluxQL statement: {what} is not supported by Weir")
        self.what = what
