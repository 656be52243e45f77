"""Server configuration: the `serve` flags, their environment variables and defaults.

The names and defaults follow `influxdb3 serve` (see shared/spec/surface.md §5.1).
The CLI fills a `ServeConfig`; the server only ever reads one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

# humantime units (the reference's duration grammar), in seconds.
_UNITS: dict[str, float] = {}
for _names, _secs in (
    (("nsec", "ns"), 1e-9),
    (("usec", "us", "µs"), 1e-6),
    (("msec", "ms"), 1e-3),
    (("seconds", "second", "sec", "secs", "s"), 1.0),
    (("minutes", "minute", "min", "mins", "m"), 60.0),
    (("hours", "hour", "hr", "hrs", "h"), 3600.0),
    (("days", "day", "d"), 86400.0),
    (("weeks", "week", "wk", "wks", "w"), 7 * 86400.0),
    (("months", "month", "M"), 30.44 * 86400.0),
    (("years", "year", "yr", "yrs", "y"), 365.25 * 86400.0),
):
    for _n in _names:
        _UNITS[_n] = _secs

_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-zµ]+)")


class DurationError(ValueError):
    """A duration string that humantime would not accept."""


def parse_duration(text: str) -> float:
    """Parse a humantime duration (`10s`, `1h 30m`, `1 day`) into seconds.

    Raises DurationError naming the text when it cannot be read.
    """
    s = text.strip()
    if not s:
        raise DurationError(f"invalid duration {text!r}: empty")
    pos = 0
    total = 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            raise DurationError(
                f"invalid duration {text!r}: expected a number followed by a unit "
                f"(ns, us, ms, s, m, h, d, w, M, y) at position {pos}"
            )
        unit = m.group(2)
        if unit not in _UNITS:
            raise DurationError(f"invalid duration {text!r}: unknown unit {unit!r}")
        total += float(m.group(1)) * _UNITS[unit]
        pos = m.end()
        while pos < len(s) and s[pos] == " ":
            pos += 1
    return total


def format_duration(seconds: float) -> str:
    """Render seconds the way humantime's format_duration does (`1h 30m`, `10s`, `1ms 234us`)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    parts = []
    for unit, size in (
        ("y", 31_557_600 * 10**9),
        ("month", 2_630_016 * 10**9),
        ("d", 86_400 * 10**9),
        ("h", 3_600 * 10**9),
        ("m", 60 * 10**9),
        ("s", 10**9),
        ("ms", 10**6),
        ("us", 10**3),
        ("ns", 1),
    ):
        if ns >= size:
            n, ns = divmod(ns, size)
            parts.append(f"{n}{unit}" if unit != "month" else f"{n}months" if n > 1 else "1month")
    return " ".join(parts)


def parse_size(text: str | int) -> int:
    """Parse a byte size: a plain integer, or with a suffix k/m/g (powers of 1024)."""
    if isinstance(text, int):
        return text
    s = text.strip().lower()
    m = re.fullmatch(r"(\d+)\s*([kmg]i?b?|b)?", s)
    if not m:
        raise ValueError(f"invalid size {text!r}: expected bytes, optionally with k, m or g")
    n = int(m.group(1))
    suffix = (m.group(2) or "b")[0]
    return n * {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[suffix]


# Catalog limits: defaults of `--num-database-limit`, `--num-table-limit` (all databases
# together) and `--num-total-columns-per-table-limit`; `weir.catalog.Limits` uses them too.
DEFAULT_NUM_DATABASE_LIMIT = 100
DEFAULT_NUM_TABLE_LIMIT = 4000
DEFAULT_NUM_COLUMNS_PER_TABLE_LIMIT = 500


#: the modes a node can run in (`serve --mode`), InfluxDB 3 Enterprise's names
NODE_MODES = ("ingest", "query", "compact", "process")


@dataclass
class ObjectStoreConfig:
    """The flags of the cloud object stores (`--object-store s3|google|azure`), named after
    the reference's. Secrets stay out of the repr, so a logged config does not show them.
    None means the store's own default (or what its environment variables give)."""

    #: the S3 or Google Cloud Storage bucket, or the Azure container
    bucket: str | None = None
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    aws_default_region: str = "us-east-1"
    #: an S3-compatible server's URL (MinIO, SeaweedFS, Ceph, ...)
    aws_endpoint: str | None = None
    aws_allow_http: bool = False
    #: anonymous requests (a public bucket)
    aws_skip_signature: bool = False
    azure_storage_account: str | None = None
    azure_storage_access_key: str | None = field(default=None, repr=False)
    azure_endpoint: str | None = None
    azure_allow_http: bool = False
    #: path of a Google service-account JSON file
    google_service_account: str | None = None
    #: requests to the store in flight at once (the reference's default)
    connection_limit: int = 16
    max_retries: int | None = None
    #: seconds after which a failing request is no longer retried
    retry_timeout: float | None = None
    #: seconds a request (with obstore's silent retries) may wait before the log names it;
    #: 0 never
    slow_warning: float = 10.0
    http2_only: bool = False
    tls_allow_insecure: bool = False
    #: a PEM file of root certificates to trust besides the system's
    tls_ca: Path | None = None


@dataclass
class ServeConfig:
    """Everything `influxdb3 serve` was told. Durations are seconds, sizes bytes."""

    node_id: str = "weir-node"
    #: several nodes sharing one bucket (InfluxDB 3 Enterprise's `--cluster-id`): None is
    #: a single Core-style node whose catalog lives under its node id
    cluster_id: str | None = None
    #: what this node does (`--mode`): any of ingest, query, compact, process
    modes: frozenset[str] = frozenset(NODE_MODES)
    #: how often a cluster node looks for other nodes' new files (catalog, manifests, WAL)
    cluster_poll_interval: float = 0.25
    #: seconds the compactor lease lasts unrenewed (`--compactor-lease-duration`)
    compactor_lease_duration: float = 30.0
    object_store: str = "file"  # file | memory | s3 | google | azure
    data_dir: Path = field(default_factory=lambda: Path.home() / ".influxdb3")
    #: the bucket, credentials and client settings of s3, google and azure
    object_store_options: ObjectStoreConfig = field(default_factory=ObjectStoreConfig)
    http_bind: str = "0.0.0.0:8181"
    plugin_dir: Path | None = None
    virtual_env_location: Path | None = None
    package_manager: str = "discover"  # discover | pip | uv | disabled
    plugin_repo: str = "https://raw.githubusercontent.com/influxdata/influxdb3_plugins/main/"
    restrict_plugin_triggers_to: list[str] = field(default_factory=list)
    without_auth: bool = False
    disable_authz: list[str] = field(default_factory=list)
    admin_token_file: Path | None = None
    max_http_request_size: int = 10 * 1024 * 1024
    wal_flush_interval: float = 1.0
    wal_snapshot_size: int = 600
    wal_max_write_buffer_size: int = 100_000
    snapshotted_wal_files_to_keep: int = 300
    # Weir: WAL files kept for WAL triggers that have not processed them (about an hour of
    # writes at the default 1 s flush interval); a trigger further behind is lagging
    trigger_max_wal_lag: int = 3600
    gen1_duration: float = 600.0
    # Weir: buffer memory (bytes) past which a snapshot is forced even before
    # `wal_snapshot_size` files have accumulated; keeps memory bounded under heavy ingest.
    force_snapshot_bytes: int = 512 * 1024 * 1024
    # Weir: background compaction of gen1 Parquet files; 0 turns the compactor off.
    compaction_interval: float = 10.0
    #: target rows per compacted Parquet file
    compaction_file_rows: int = 1_000_000
    #: rows past which a closed window's compacted file is split (between its inputs)
    compaction_max_file_rows: int = 50_000_000
    #: buffer bytes past which writes wait for a snapshot, then get 503
    #: (the CLI defaults it to twice `force_snapshot_bytes`)
    buffer_mem_limit: int = 2 * 512 * 1024 * 1024
    # Retention and deletes (seconds): how often expired data is removed, when a
    # `--hard-delete default` deletion happens, and how long removed files linger.
    retention_check_interval: float = 1800.0
    hard_delete_default_duration: float = 72 * 3600.0
    delete_grace_period: float = 24 * 3600.0
    # Catalog limits (the reference's defaults).
    num_database_limit: int = DEFAULT_NUM_DATABASE_LIMIT
    num_table_limit: int = DEFAULT_NUM_TABLE_LIMIT
    num_total_columns_per_table_limit: int = DEFAULT_NUM_COLUMNS_PER_TABLE_LIMIT
    query_timeout: float = 300.0
    exec_mem_pool_bytes: int | None = None
    plugin_call_timeout: float = 300.0
    #: RLIMIT_AS of each plugin worker in bytes (None: max(2 GiB, half the RAM))
    plugin_memory_limit: int | None = field(
        default_factory=lambda: parse_size(os.environ["WEIR_PLUGIN_MEMORY_LIMIT"])
        if os.environ.get("WEIR_PLUGIN_MEMORY_LIMIT") else None)
    #: the environment variables `serve` reads itself (its options'), withheld from plugin
    #: workers; the CLI derives them from the options (weir.engine.plugin_env says the rest)
    server_env_vars: list[str] = field(default_factory=list)
    #: --plugin-env-allow: only names matching these (glob) patterns reach plugins, plus
    #: what a Python process needs; None: every name but the withheld ones
    plugin_env_allow: list[str] | None = None
    #: --plugin-env-deny: names matching these (glob) patterns never reach plugins
    plugin_env_deny: list[str] = field(default_factory=list)
    log_filter: str = "info"
    #: the `serve` options the operator gave (long name without `--` -> value, flags
    #: "true"), shown redacted in system.nodes.cli_params as the reference does
    cli_params: dict[str, str] = field(default_factory=dict)

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.http_bind.rpartition(":")
        return (host or "0.0.0.0").strip("[]"), int(port)

    @property
    def venv_dir(self) -> Path | None:
        if self.virtual_env_location is not None:
            return self.virtual_env_location
        if self.plugin_dir is not None:
            return self.plugin_dir / ".venv"
        return None


def env_default(name: str, default: str | None = None) -> str | None:
    """Read a serve flag's environment variable (empty counts as unset)."""
    v = os.environ.get(name)
    return v if v not in (None, "") else default
