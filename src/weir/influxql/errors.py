"""InfluxQL errors. All are QueryErrors, so the server maps them like SQL errors (400,
405 for what the reference parses but does not implement)."""

from __future__ import annotations

from weir.errors import QueryError, QueryUnsupported

#: what the reference puts before every parse error ("error in InfluxQL statement: " from
#: its HTTP layer, "parsing error: " from its statement rewriter)
PARSE_ERROR_PREFIX = "error in InfluxQL statement: parsing error: "


class InfluxQLError(QueryError):
    """A statement that cannot be planned or run; the message is shown to the user."""


class InfluxQLSyntaxError(InfluxQLError):
    """Text that is not InfluxQL, in the reference's words: `error in InfluxQL statement:
    parsing error: <message> at pos <offset>[. <details>]` (`pos` counts characters from
    the start of the query)."""

    def __init__(self, message: str, pos: int | None = None,
                 details: str | None = None) -> None:
        text = PARSE_ERROR_PREFIX + message
        if pos is not None:
            text += f" at pos {pos}"
        if details:
            text += f". {details}"
        super().__init__(text)
        self.message = message
        self.pos = pos


class InfluxQLPlanError(InfluxQLError):
    """A statement the reference refuses while planning it (a DataFusion planning error):
    `Error during planning: <message>` (the v1 API adds `datafusion error: ` before it)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Error during planning: {message}")
        self.message = message


class BindParameterError(InfluxQLPlanError):
    """A bind parameter the statement uses and the request lacks, or the other way round,
    or one of a type InfluxQL has no literal for."""


class InfluxQLNotImplemented(InfluxQLError, QueryUnsupported):
    """A statement the reference parses but does not run (`CREATE DATABASE`, `DELETE`,
    `DROP MEASUREMENT`, `SHOW DATABASES` over Flight, a database prefix in a measurement
    name over Flight): HTTP 405, `This feature is not implemented: <what>`."""

    def __init__(self, what: str) -> None:
        super().__init__(f"This feature is not implemented: {what}")
        self.what = what


class UnsupportedStatement(InfluxQLError):
    """Valid InfluxQL that Weir does not run; names the statement, never answers wrongly."""

    def __init__(self, what: str) -> None:
        super().__init__(f"unsupported InfluxQL statement: {what} is not supported by Weir")
        self.what = what
