"""Metrics: a small typed registry rendered in the Prometheus text format, and the
recorders storage and the processing engine count through.

The names, label names, types and help texts are InfluxDB 3 Core's where Core exports the
same thing (its write-buffer, query-log and object-store metrics); what only Weir measures
is named `weir_...`. Each recorder is built on one `Registry`, which `GET /metrics`
renders (weir.server.metrics); a part built without one (a unit test's `Database`) gets
its own registry that nobody reads.

Everything here may be called from any thread (storage counts from worker threads).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

#: the reference's default duration-histogram buckets (seconds), +Inf implied
DURATION_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                       0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[str, ...]
_F = TypeVar("_F", bound="_Family")


def _number(v: float) -> str:
    """A sample value or bucket bound as Prometheus prints it: integers without `.0`."""
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if math.isnan(v):
        return "NaN"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str],
            extra: tuple[str, str] | None = None) -> str:
    """`{a="x",b="y"}`; a label whose value is empty is left out (Prometheus reads an
    empty label as an absent one), and so are the braces when nothing is left."""
    pairs = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True) if v]
    if extra is not None:
        pairs.append(f'{extra[0]}="{extra[1]}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


class _Family:
    """One metric family: a name, a help text, fixed label names, and its series."""

    kind = ""

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _check(self, values: Labels) -> None:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")

    def lines(self) -> list[str]:
        raise NotImplementedError

    def render(self) -> list[str]:
        body = self.lines()
        if not body:
            return []  # a family with no series is not shown (as the reference does)
        return [f"# HELP {self.name} {_escape_help(self.help)}",
                f"# TYPE {self.name} {self.kind}", *body]


class Counter(_Family):
    """A value that only goes up, per label values."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self._check(labels)
        with self._lock:
            self._values[labels] = self._values.get(labels, 0) + amount

    def touch(self, labels: Labels = ()) -> None:
        """Show the series (at 0 until counted)."""
        self.inc(labels, 0)

    def value(self, labels: Labels = ()) -> float:
        with self._lock:
            return self._values.get(labels, 0)

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in items]


class Gauge(_Family):
    """A value that goes up and down, per label values."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[Labels, float] = {}

    def set(self, value: float, labels: Labels = ()) -> None:
        self._check(labels)
        with self._lock:
            self._values[labels] = value

    def add(self, amount: float, labels: Labels = ()) -> None:
        self._check(labels)
        with self._lock:
            self._values[labels] = self._values.get(labels, 0) + amount

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in items]


class ComputedGauge(_Family):
    """A gauge read when the metrics are rendered: `read()` gives (labels, value) pairs."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str],
                 read: Callable[[], Iterable[tuple[Labels, float]]]) -> None:
        super().__init__(name, help_text, labelnames)
        self._read = read

    def lines(self) -> list[str]:
        items = sorted(self._read())
        return [f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in items]


class Histogram(_Family):
    """Observations counted into cumulative buckets (`le`), with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = DURATION_BUCKETS) -> None:
        super().__init__(name, help_text, labelnames)
        self.bounds = tuple(sorted(buckets))
        #: labels -> [count per bucket (last: above every bound)], sum
        self._series: dict[Labels, tuple[list[int], list[float]]] = {}

    def _get(self, labels: Labels) -> tuple[list[int], list[float]]:
        s = self._series.get(labels)
        if s is None:
            s = self._series[labels] = ([0] * (len(self.bounds) + 1), [0.0])
        return s

    def observe(self, value: float, labels: Labels = ()) -> None:
        self._check(labels)
        i = 0
        while i < len(self.bounds) and value > self.bounds[i]:
            i += 1
        with self._lock:
            counts, total = self._get(labels)
            counts[i] += 1
            total[0] += value

    def touch(self, labels: Labels = ()) -> None:
        self._check(labels)
        with self._lock:
            self._get(labels)

    def count(self, labels: Labels = ()) -> int:
        with self._lock:
            s = self._series.get(labels)
            return sum(s[0]) if s else 0

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted((k, (list(c), t[0])) for k, (c, t) in self._series.items())
        out = []
        for k, (counts, total) in items:
            running = 0
            for bound, n in zip((*self.bounds, math.inf), counts, strict=True):
                running += n
                le = ("le", _number(bound))
                out.append(f"{self.name}_bucket{_labels(self.labelnames, k, le)} {running}")
            out.append(f"{self.name}_sum{_labels(self.labelnames, k)} {_number(total)}")
            out.append(f"{self.name}_count{_labels(self.labelnames, k)} {running}")
        return out


class Registry:
    """The metric families of one server, by name."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}
        self._lock = threading.Lock()

    def _add(self, family: _F) -> _F:
        with self._lock:
            if family.name in self._families:
                raise ValueError(f"metric {family.name} is already registered")
            self._families[family.name] = family
        return family

    def counter(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, help_text, labelnames))

    def gauge(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(name, help_text, labelnames))

    def computed_gauge(self, name: str, help_text: str, labelnames: Sequence[str],
                       read: Callable[[], Iterable[tuple[Labels, float]]]) -> ComputedGauge:
        return self._add(ComputedGauge(name, help_text, labelnames, read))

    def histogram(self, name: str, help_text: str, labelnames: Sequence[str] = (),
                  buckets: Sequence[float] = DURATION_BUCKETS) -> Histogram:
        return self._add(Histogram(name, help_text, labelnames, buckets))

    def render(self) -> str:
        """Every family with a series, by name, in the Prometheus text format (0.0.4),
        ending with the `# EOF` line the reference adds."""
        with self._lock:
            families = sorted(self._families.items())
        lines: list[str] = []
        for _, family in families:
            lines.extend(family.render())
        lines.append("# EOF")
        return "\n".join(lines) + "\n"


# ---- what storage counts: writes, queries, object-store operations --------------------


class WriteMetrics:
    """Lines and bytes stored per database, and lines refused (the reference's
    `influxdb3_write_*`). A write is counted once it is stored: a batch refused whole
    (a bad line without `accept_partial`, a missing database) counts nothing, as in the
    reference; with `accept_partial`, the refused lines count as rejected. Bytes are
    those of the accepted lines, line endings not included."""

    def __init__(self, registry: Registry) -> None:
        self.lines = registry.counter(
            "influxdb3_write_lines_total",
            "track total number of lines written to the database", ("db",))
        self.rejected = registry.counter(
            "influxdb3_write_lines_rejected_total",
            "track total number of lines written to the database that were rejected",
            ("db",))
        self.bytes = registry.counter(
            "influxdb3_write_bytes_total",
            "track total number of bytes written to the database", ("db",))

    def record(self, db: str, lines: int, rejected: int, nbytes: int) -> None:
        self.lines.inc((db,), lines)
        self.rejected.inc((db,), rejected)
        self.bytes.inc((db,), nbytes)


QueryOutcome = Literal["success", "fail", "cancel"]
#: the phases of the reference's query log that a Weir query passes through
QUERY_PHASES = ("received", "planned", "success", "fail", "cancel")
#: the reference's bucket bounds for rows returned
_ROW_BUCKETS = (0, 1, 10, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 100_000)


class QueryMetrics:
    """Queries by phase and their durations (the reference's query-log metrics,
    `influxdb_iox_query_log_*`): each SQL statement run on a database is `received`,
    `planned` once DataFusion has planned it, and ends as `success`, `fail` or `cancel`
    (a streamed result its reader stopped reading)."""

    def __init__(self, registry: Registry) -> None:
        self.phase_entered = registry.counter(
            "influxdb_iox_query_log_phase_entered_total",
            "Number of queries that entered the given phase", ("phase",))
        self.phase_current = registry.gauge(
            "influxdb_iox_query_log_phase_current",
            "Number of queries that currently in the given phase", ("phase",))
        self.plan_duration = registry.histogram(
            "influxdb_iox_query_log_plan_duration_seconds",
            "Duration it took to logically and physically plan the query")
        self.execute_duration = registry.histogram(
            "influxdb_iox_query_log_execute_duration_seconds",
            "Duration it took to execute the query")
        self.end2end_duration = registry.histogram(
            "influxdb_iox_query_log_end2end_duration_seconds",
            "Duration from `issue_time` til the query ended somehow")
        self.num_rows = registry.histogram(
            "influxdb_iox_query_log_num_rows", "The number of rows returned per query",
            buckets=_ROW_BUCKETS)
        for phase in QUERY_PHASES:
            self.phase_entered.touch((phase,))
            self.phase_current.set(0, (phase,))
        for h in (self.plan_duration, self.execute_duration, self.end2end_duration,
                  self.num_rows):
            h.touch()

    def start(self) -> QueryTimer:
        """A query was received."""
        return QueryTimer(self)

    def _enter(self, phase: str, previous: str | None) -> None:
        self.phase_entered.inc((phase,))
        self.phase_current.add(1, (phase,))
        if previous is not None:
            self.phase_current.add(-1, (previous,))


class QueryTimer:
    """One query's way through the phases; `finished` counts once, later calls do
    nothing."""

    def __init__(self, metrics: QueryMetrics) -> None:
        self._m = metrics
        self._started = time.perf_counter()
        self._planned: float | None = None
        self._phase: str | None = "received"
        self._lock = threading.Lock()
        metrics._enter("received", None)

    def planned(self) -> None:
        with self._lock:
            if self._phase != "received":
                return
            self._planned = time.perf_counter()
            self._phase = "planned"
        self._m.plan_duration.observe(self._planned - self._started)
        self._m._enter("planned", "received")

    def finished(self, outcome: QueryOutcome, rows: int | None = None) -> None:
        with self._lock:
            previous, self._phase = self._phase, None
        if previous is None:
            return
        now = time.perf_counter()
        if self._planned is not None and outcome != "cancel":
            self._m.execute_duration.observe(now - self._planned)
        self._m.end2end_duration.observe(now - self._started)
        if outcome == "success" and rows is not None:
            self._m.num_rows.observe(rows)
        self._m._enter(outcome, previous)


#: the operations of weir.objectstore.ObjectStore, by the reference's op names
OBJECT_STORE_OPS = ("put", "put_opts", "get", "head", "list", "delete")
_BYTES_OPS = frozenset({"put", "put_opts", "get"})


class ObjectStoreMetrics:
    """Each object-store operation's duration by op and result, and the bytes put and
    got (the reference's `object_store_*`, store_type `main`)."""

    def __init__(self, registry: Registry, store_type: str = "main") -> None:
        self.store_type = store_type
        self.op_duration = registry.histogram(
            "object_store_op_duration_seconds", "object store operation duration",
            ("op", "result", "store_type"))
        self.transfer_bytes = registry.counter(
            "object_store_transfer_bytes_total",
            "cumulative count of file content bytes transferred to/from the object store",
            ("op", "result", "store_type"))
        for op in OBJECT_STORE_OPS:
            for result in ("success", "error"):
                self.op_duration.touch((op, result, store_type))
                if op in _BYTES_OPS:
                    self.transfer_bytes.touch((op, result, store_type))

    def record(self, op: str, ok: bool, seconds: float, nbytes: int | None = None) -> None:
        labels = (op, "success" if ok else "error", self.store_type)
        self.op_duration.observe(seconds, labels)
        if nbytes is not None:
            self.transfer_bytes.inc(labels, nbytes)


# ---- what the processing engine counts -----------------------------------------------


class TriggerMetrics:
    """Each trigger's plugin calls, failed calls and call durations (Weir's own: the
    reference counts trigger invocations only in its telemetry, not on /metrics). A call
    is one run of the plugin (each retry is a call); it failed when the plugin raised,
    timed out, its worker died, or its buffered writes could not be stored."""

    LABELS = ("db", "trigger", "trigger_type")

    def __init__(self, registry: Registry) -> None:
        self.calls = registry.counter(
            "weir_processing_engine_calls_total", "Plugin calls made by a trigger.",
            self.LABELS)
        self.errors = registry.counter(
            "weir_processing_engine_errors_total",
            "Plugin calls of a trigger that failed.", self.LABELS)
        self.duration = registry.histogram(
            "weir_processing_engine_call_duration_seconds",
            "How long a trigger's plugin calls took, writing back their lines included.",
            self.LABELS)

    def record(self, db: str, trigger: str, trigger_type: str, ok: bool,
               seconds: float) -> None:
        labels = (db, trigger, trigger_type)
        self.calls.inc(labels)
        if ok:
            self.errors.touch(labels)
        else:
            self.errors.inc(labels)
        self.duration.observe(seconds, labels)


@dataclass(frozen=True)
class ServerMetrics:
    """Every recorder of one server, over one registry."""

    registry: Registry
    writes: WriteMetrics
    queries: QueryMetrics
    object_store: ObjectStoreMetrics
    triggers: TriggerMetrics

    @classmethod
    def create(cls, registry: Registry | None = None) -> ServerMetrics:
        reg = registry or Registry()
        return cls(reg, WriteMetrics(reg), QueryMetrics(reg), ObjectStoreMetrics(reg),
                   TriggerMetrics(reg))
