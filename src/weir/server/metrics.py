"""`GET /metrics` and `GET /ready`, and the HTTP request metrics.

/metrics renders the server's registry (weir.metrics) in the Prometheus text format:
the reference's HTTP, write, query-log and object-store metrics under its names, and
Weir's own (buffer, WAL, Parquet files, WAL-trigger lag, plugin calls) as `weir_...`.

/ready answers 503 until the server has started (catalog loaded, WAL replayed, engine
started; weir.server.app answers it during start-up) and whenever the object store does
not answer; 200 otherwise.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import weir
from weir.metrics import Labels, Registry
from weir.server.state import ServerState, state_of

if TYPE_CHECKING:
    from weir.engine import ProcessingEngine

#: the reference's request outcomes (its trace layer's classification of the status)
HTTP_STATUSES = ("ok", "client_error", "server_error", "unexpected_response")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE",
                      "PATCH"})
_BODY_BUCKETS = (100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)
ENGINE_PREFIX = "/api/v3/engine/"


def classify(status: int) -> tuple[str, bool, bool]:
    """(outcome, keep the path label, keep the method label) of a response status, as
    the reference's request metrics classify it: 404 drops the path (unknown paths must
    not grow the metrics), 405 the method; 501 counts as the client's error."""
    if 200 <= status < 300 or status == 304:
        return "ok", True, True
    if 400 <= status < 500:
        return "client_error", status != 404, status != 405
    if status == 501:
        return "client_error", True, True
    if 500 <= status < 600:
        return "server_error", True, True
    return "unexpected_response", True, True


class HttpMetrics:
    """Requests by path, method and outcome: count, latency, response body size
    (`http_requests_total`, `http_request_duration_seconds`,
    `http_response_body_size_bytes`). The path label is the route's path, or the request
    trigger's (`/api/v3/engine/<path>`); a path no route serves has none, so arbitrary
    URLs cannot grow /metrics without bound."""

    LABELS = ("method", "method_path", "path", "status")

    def __init__(self, registry: Registry) -> None:
        self.requests = registry.counter("http_requests_total", "accumulated total requests",
                                         self.LABELS)
        self.duration = registry.histogram("http_request_duration_seconds",
                                           "distribution of request latencies", self.LABELS)
        self.body_size = registry.histogram("http_response_body_size_bytes",
                                            "distribution of response body size in bytes",
                                            self.LABELS, buckets=_BODY_BUCKETS)
        self._seen: set[tuple[str, str]] = set()

    def record(self, method: str, path: str, status: int | None, seconds: float,
               body_bytes: int) -> None:
        """One request; `path` is "" when no route serves it, `status` None when the
        response was not completed (the client went away, or the handler broke off)."""
        outcome, keep_path, keep_method = (classify(status) if status is not None
                                           else ("aborted", True, True))
        method = method if keep_method and method in _METHODS else ""
        path = path if keep_path else ""
        key = (method, path)
        if key not in self._seen:
            # the reference shows every outcome of a (method, path) once it has seen it
            self._seen.add(key)
            for s in HTTP_STATUSES:
                self.requests.touch(self._labels(method, path, s))
                self.duration.touch(self._labels(method, path, s))
                self.body_size.touch(self._labels(method, path, s))
            self.requests.touch(self._labels(method, path, "aborted"))
        labels = self._labels(method, path, outcome)
        self.requests.inc(labels)
        if status is not None:
            self.duration.observe(seconds, labels)
            self.body_size.observe(body_bytes, labels)

    @staticmethod
    def _labels(method: str, path: str, status: str) -> Labels:
        return (method, f"{method} {path}" if method and path else "", path, status)


def register_server_gauges(state: ServerState) -> None:
    """Weir's own gauges, read at each scrape, and the reference's process start time."""
    reg, db = state.metrics.registry, state.database
    started = int(state.started)

    def one(value: float) -> list[tuple[Labels, float]]:
        return [((), value)]

    reg.computed_gauge(
        "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
        ("git_hash", "product_name", "uuid", "version"),
        lambda: [(("weir", "InfluxDB 3 Core", state.process_id, weir.__version__), started)])
    reg.computed_gauge("weir_buffer_bytes", "Bytes held in the in-memory buffer.", (),
                       lambda: one(db.buffer.nbytes))
    reg.computed_gauge("weir_wal_last_sequence", "Sequence number of the newest WAL file.", (),
                       lambda: one(db.wal.last_seq))
    reg.computed_gauge("weir_wal_replayed_files",
                       "WAL files replayed at start-up (grows while the WAL is replayed).", (),
                       lambda: one(db.replayed_files))
    reg.computed_gauge("weir_parquet_files", "Parquet files persisted.", (),
                       lambda: one(len(db.index.all())))
    reg.computed_gauge("weir_ready", "1 once the server has started and serves requests.", (),
                       lambda: one(0 if state.starting is not None else 1))
    reg.computed_gauge("weir_uptime_seconds", "Seconds since the server process started.", (),
                       lambda: one(round(time.time() - state.started, 3)))
    engine = state.engine
    if engine is not None:
        reg.computed_gauge(
            "weir_trigger_wal_lag_files", "WAL files a WAL trigger has yet to process.",
            ("db", "trigger"), lambda: _lags(engine, "files"))
        reg.computed_gauge(
            "weir_trigger_wal_lag_seconds",
            "Age of the oldest WAL file a WAL trigger has yet to process.",
            ("db", "trigger"), lambda: _lags(engine, "seconds"))


def _lags(engine: ProcessingEngine, what: str) -> list[tuple[Labels, float]]:
    """Each running WAL trigger's lag in WAL files, or in seconds (when known)."""
    out: list[tuple[Labels, float]] = []
    for db, trigger, lag in engine.wal_lags():
        value = lag.files if what == "files" else lag.seconds
        if value is not None:
            out.append(((db, trigger), round(value, 3)))
    return out


async def metrics(request: Request) -> Response:
    st = state_of(request)
    return PlainTextResponse(st.metrics.registry.render(),
                             media_type="text/plain; version=0.0.4; charset=utf-8")


def starting_response(reason: str) -> Response:
    """/ready while the server starts."""
    return JSONResponse({"status": "starting", "reason": reason}, status_code=503)


async def ready(request: Request) -> Response:
    st = state_of(request)
    if st.starting is not None:  # (weir.server.app answers this itself; kept for safety)
        return starting_response(st.starting)
    problem = await st.database.store_problem()
    if problem is not None:
        return JSONResponse({"status": "unavailable", "reason": problem}, status_code=503)
    started = datetime.fromtimestamp(st.started, tz=UTC)
    return JSONResponse({"status": "ready",
                         "started": started.isoformat().replace("+00:00", "Z"),
                         "up": _go_duration(time.time() - st.started)})


def _go_duration(seconds: float) -> str:
    """`1h2m3.5s`, as the InfluxDB 2 /ready's `up` (a Go duration) reads."""
    h, rest = divmod(max(0.0, seconds), 3600)
    m, s = divmod(rest, 60)
    text = f"{s:.3f}".rstrip("0").rstrip(".") + "s"
    if h:
        return f"{int(h)}h{int(m)}m{text}"
    return f"{int(m)}m{text}" if m else text


routes = [
    Route("/metrics", metrics, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
]
