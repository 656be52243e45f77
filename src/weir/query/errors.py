"""What a failed SQL query raises: DataFusion's messages in the reference's words, sorted
by whose fault they are (the statement's, a missing feature, the server's)."""

from __future__ import annotations

from weir.errors import QueryError, QueryFailed, QueryUnsupported

__all__ = ["Interrupted", "SqlFailed", "SqlPlanningError", "SqlQueryError", "SqlUnsupported",
           "planning_failure", "reraise_interpreter_exit", "sql_error", "table_failure"]


class SqlQueryError(QueryError):
    """A query DataFusion refused or failed.

    `detail` is DataFusion's own message; `phase` is "planning" (parsing, planning,
    optimising) or "execution". The kind says whose fault it is: `SqlPlanningError` (the
    query's), `SqlUnsupported` (a feature DataFusion lacks), `SqlFailed` (internal, I/O and
    resource errors, and every execution error). (A time limit raises `QueryTimeout`.)
    `http_body` is the body the reference's `/api/v3/query_sql` answers with: the bare
    DataFusion message for planning errors, `query error: error while executing plan: ...`
    for execution errors. `str(err)` is the reference's QueryExecutorError text (what
    plugins see): `error while planning query: <detail>`.
    """

    def __init__(self, message: str, *, detail: str, phase: str) -> None:
        super().__init__(message)
        self.detail = detail
        self.phase = phase

    @property
    def http_body(self) -> str:
        return self.detail if self.phase == "planning" else f"query error: {self}"


class SqlPlanningError(SqlQueryError):
    """SQL, plan, schema or constant-folding errors: the query's to fix."""


class SqlUnsupported(SqlQueryError, QueryUnsupported):
    """`This feature is not implemented` in DataFusion."""


class SqlFailed(SqlQueryError, QueryFailed):
    """Internal, I/O and resource errors while planning; any error while executing."""


class Interrupted(BaseException):
    """Raised inside a query thread to stop it at its time limit."""


def planning_failure(e: BaseException, failures: list[BaseException]) -> BaseException:
    """What to raise when planning failed with `e`: an interpreter exit as it is, what a
    lazy schema kept (a table the statement names could not be made), else `e` as a
    planning error."""
    reraise_interpreter_exit(e)
    if failures:
        failure = failures[0]
        # (the session holds the list: keeping the exception, whose traceback holds the
        # session, would make a cycle the collector cannot see)
        failures.clear()
        return table_failure(failure)
    return sql_error(str(e), "planning")


def table_failure(e: BaseException) -> BaseException:
    """What to raise for an exception a lazy schema kept: interruptions and query errors as
    they are, anything else as an execution error (a bad snapshot, a failing builder)."""
    if isinstance(e, SqlQueryError) or not isinstance(e, Exception):
        return e
    return sql_error(f"{type(e).__name__}: {e}", "execution")


# ---- errors ------------------------------------------------------------------------------

_SERVER_SIDE = ("Internal error", "Resources exhausted", "IO error", "Object Store error",
                "Parquet error", "External error", "Execution error: Join Error")


def reraise_interpreter_exit(e: BaseException) -> None:
    if isinstance(e, KeyboardInterrupt | SystemExit | GeneratorExit):
        raise e


def sql_error(message: str, phase: str) -> SqlQueryError:
    """DataFusion's error text as the reference reports it (status, message)."""
    detail = message
    while detail.startswith("DataFusion error: "):
        detail = detail[len("DataFusion error: "):]
    detail = detail.strip()
    root = detail.rsplit("caused by\n", 1)[-1].strip()
    if phase == "planning":
        kind: type[SqlQueryError]
        if root.startswith("This feature is not implemented") or \
                detail.startswith("This feature is not implemented"):
            kind = SqlUnsupported
        elif root.startswith(_SERVER_SIDE):
            kind = SqlFailed
        else:
            kind = SqlPlanningError  # plan, SQL, schema and constant-folding (cast) errors
        return kind(f"error while planning query: {detail}", detail=detail, phase="planning")
    return SqlFailed(f"error while executing plan: {detail}", detail=detail,
                     phase="execution")
