"""The one place where typed errors become the reference's status codes and bodies."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

from starlette.responses import JSONResponse, PlainTextResponse, Response

from weir import errors as e
from weir.lineprotocol import LineError
from weir.query import SqlQueryError

log = logging.getLogger("weir.server")


class HttpError(Exception):
    """An error already shaped for HTTP (status + body)."""

    def __init__(self, status: int, body: str | Mapping[str, object] | Sequence[object],
                 json_body: bool | None = None) -> None:
        super().__init__(body if isinstance(body, str) else json.dumps(body))
        self.status = status
        self.body = body
        self.json_body = json_body if json_body is not None else not isinstance(body, str)

    def response(self) -> Response:
        if self.json_body and isinstance(self.body, str):  # already JSON text
            return Response(self.body, status_code=self.status, media_type="application/json")
        if self.json_body:
            return JSONResponse(self.body, status_code=self.status)
        return PlainTextResponse(str(self.body), status_code=self.status)


def json_error(status: int, message: str) -> HttpError:
    return HttpError(status, {"error": message})


def auth_error(status: int, message: str) -> HttpError:
    """An authentication or authorization refusal byte for byte as the reference writes
    it: `{"error": "<message>"}`, a space after the colon (its text is formatted, not
    serialized; clients that compare bodies see the difference)."""
    return HttpError(status, '{"error": ' + json.dumps(message) + "}", json_body=True)


def line_error_json(line: LineError) -> dict[str, object]:
    """One refused line as the reference shows it: its first 20 bytes only."""
    raw = line.original_line.encode()[:20].decode("utf-8", "ignore")
    return {"error_message": line.message, "line_number": line.line_number,
            "original_line": raw}


def write_error_response(exc: e.WriteError) -> tuple[int, dict[str, object]]:
    """Status and JSON body of a refused write, as `/api/v3/write_lp` answers it."""
    if isinstance(exc, e.LineProtocolError):
        return (422 if exc.limit_exceeded else 400,
                {"error": str(exc), "data": line_error_json(exc.line)})
    if isinstance(exc, e.PartialWrite):
        return (422 if exc.limit_exceeded else 400,
                {"error": str(exc), "data": [line_error_json(x) for x in exc.lines]})
    if isinstance(exc, e.WriteUnavailable):
        return 503, {"error": str(exc)}
    if isinstance(exc, e.WalFailure):
        return 500, {"error": str(exc)}
    return 400, {"error": str(exc)}


def query_status(exc: e.QueryError) -> int:
    if isinstance(exc, e.DatabaseMissingForQuery):
        return 404
    if isinstance(exc, e.QueryTimeout):
        return 408
    if isinstance(exc, e.QueryUnsupported):
        return 405
    if isinstance(exc, e.QueryFailed):
        return 500
    return 400


def to_response(exc: BaseException) -> Response:
    """Map any error raised by a handler to the response the reference would give."""
    if isinstance(exc, HttpError):
        return exc.response()
    if isinstance(exc, e.InvalidBody):
        return PlainTextResponse(str(exc), status_code=400)
    if isinstance(exc, e.NodeModeRefused):  # (the client may retry at another node)
        return JSONResponse({"error": str(exc)}, status_code=421)
    if isinstance(exc, e.WriteError):
        status, body = write_error_response(exc)
        return JSONResponse(body, status_code=status)
    if isinstance(exc, e.DatabaseMissingForQuery):
        return JSONResponse({"error": str(exc)}, status_code=404)
    if isinstance(exc, e.QueryError):
        # the reference's body for SQL errors (DataFusion's message), else our text
        return PlainTextResponse(exc.http_body if isinstance(exc, SqlQueryError) else str(exc),
                                 status_code=query_status(exc))
    if isinstance(exc, e.AccessDenied):
        return auth_error(403, str(exc)).response()
    if isinstance(exc, e.InvalidName):
        return JSONResponse({"error": str(exc)}, status_code=400)
    if isinstance(exc, e.LimitExceeded):
        return JSONResponse({"error": str(exc)}, status_code=422)
    if isinstance(exc, e.NotFound):
        return PlainTextResponse(str(exc), status_code=404)
    if isinstance(exc, e.AlreadyExists):
        return PlainTextResponse(str(exc), status_code=409)
    if isinstance(exc, e.PluginError):
        return PlainTextResponse(f"Plugin error: {exc}", status_code=500)
    if isinstance(exc, e.ProcessingEngineError):
        return PlainTextResponse(f"Processing engine error: {exc}", status_code=500)
    if isinstance(exc, e.InvalidRequest):
        return PlainTextResponse(f"invalid request: {exc}", status_code=400)
    if isinstance(exc, e.ObjectStoreUnavailable):
        # the data may well be intact: the store did not answer, so the client may retry
        return JSONResponse({"error": f"object store unavailable: {exc}"}, status_code=503)
    if isinstance(exc, e.TriggerRunning | e.CatalogError):
        return PlainTextResponse(str(exc), status_code=500 if isinstance(exc, e.TriggerRunning)
                                 else 400)
    log.error("unhandled error in request", exc_info=exc)
    return PlainTextResponse(f"internal error: {type(exc).__name__}: {exc}", status_code=500)
