"""The one place where typed errors become the reference's status codes and bodies."""

from __future__ import annotations

import json
import logging

from starlette.responses import JSONResponse, PlainTextResponse, Response

from weir import errors as e

log = logging.getLogger("weir.server")


class HttpError(Exception):
    """An error already shaped for HTTP (status + body)."""

    def __init__(self, status: int, body: str | dict | list, json_body: bool | None = None) -> None:
        super().__init__(body if isinstance(body, str) else json.dumps(body))
        self.status = status
        self.body = body
        self.json_body = json_body if json_body is not None else not isinstance(body, str)

    def response(self) -> Response:
        if self.json_body:
            return JSONResponse(self.body, status_code=self.status)
        return PlainTextResponse(str(self.body), status_code=self.status)


def json_error(status: int, message: str) -> HttpError:
    return HttpError(status, {"error": message})


def to_response(exc: BaseException) -> Response:
    """Map any error raised by a handler to the response the reference would give."""
    if isinstance(exc, HttpError):
        return exc.response()
    if isinstance(exc, e.WriteError):
        return JSONResponse(exc.body, status_code=exc.status)
    if isinstance(exc, e.DatabaseMissingForQuery):
        return JSONResponse({"error": str(exc)}, status_code=404)
    if isinstance(exc, e.QueryError):
        # the reference's body for SQL errors (DataFusion's message), else our text
        return PlainTextResponse(getattr(exc, "http_body", None) or str(exc),
                                 status_code=exc.status)
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
    if isinstance(exc, e.TriggerRunning | e.CatalogError):
        return PlainTextResponse(str(exc), status_code=500 if isinstance(exc, e.TriggerRunning)
                                 else 400)
    log.exception("unhandled error in request", exc_info=exc)
    return PlainTextResponse(f"internal error: {type(exc).__name__}: {exc}", status_code=500)
