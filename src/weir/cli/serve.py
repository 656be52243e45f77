"""`influxdb3 serve`: the flags of surface.md §5.1, their environment variables and
defaults, turned into a `ServeConfig` for `weir.server.run`."""

from __future__ import annotations

import importlib.abc
import os
import socket
import sys
from pathlib import Path
from typing import Any

import click

from weir.cli.base import CommandFunc, WeirCommand, comma_list, fail
from weir.cli.store_options import object_store_config, object_store_options
from weir.config import (
    DEFAULT_NUM_COLUMNS_PER_TABLE_LIMIT,
    DEFAULT_NUM_DATABASE_LIMIT,
    DEFAULT_NUM_TABLE_LIMIT,
    NODE_MODES,
    DurationError,
    ServeConfig,
    parse_duration,
    parse_size,
)
from weir.errors import ClusterRefused

# ---- value types: a bad value is one line naming the flag, exit 2 -------------------------


# The bases below stay unsubscripted: ParamType is generic only from click 8.4, and
# pyproject accepts click >= 8.1, where `click.ParamType[float]` fails at import.
class DurationType(click.ParamType):  # type: ignore[type-arg]  # see above
    """A humantime duration (`1s`, `10ms`, `1h 30m`) -> seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(str(value))
        except DurationError as e:
            self.fail(str(e), param, ctx)


class SizeType(click.ParamType):  # type: ignore[type-arg]  # see above
    """Bytes: `10485760`, `512m`, `2g`; with `allow_percent`, also `20%` of this machine's
    memory (the reference's form for memory limits)."""

    name = "size"

    def __init__(self, allow_percent: bool = False) -> None:
        self.allow_percent = allow_percent

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if self.allow_percent and text.endswith("%"):
            try:
                pct = float(text[:-1])
            except ValueError:
                self.fail(f"invalid percentage {text!r}", param, ctx)
            if not 0 < pct <= 100:
                self.fail(f"percentage must be between 0 and 100, got {text!r}", param, ctx)
            return int(total_memory() * pct / 100)
        try:
            return parse_size(text)
        except ValueError as e:
            self.fail(str(e), param, ctx)


def total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3


DURATION = DurationType()
SIZE = SizeType()
MEMORY = SizeType(allow_percent=True)

TRIGGER_KINDS = ("wal", "wal_flush", "schedule", "request", "parquet")
AUTHZ_RESOURCES = ("health", "ping", "metrics", "ready", "pprof")

# ---- reference flags Weir does not act on -------------------------------------------------
# Every `influxdb3 serve` flag is either wired (a regular option above/below), refused, or
# accepted with a start-up warning so the reference's docs and service files still start.
# (flag, env var or None, takes a value)
Flag = tuple[str, str | None, bool]

#: Refused (exit 2): starting without them would quietly give the user less than asked for.
REFUSED: dict[str, tuple[str | None, bool, str]] = {
    "--tls-cert": ("INFLUXDB3_TLS_CERT", True,
                   "Weir serves plain HTTP; put a TLS-terminating proxy in front of it"),
    "--tls-key": ("INFLUXDB3_TLS_KEY", True,
                  "Weir serves plain HTTP; put a TLS-terminating proxy in front of it"),
}

#: Storage and object-store flags Weir does not use (the object store's client has no such
#: setting, or Weir has no such part yet). Their environment variables are the reference's
#: (AWS_CREDENTIALS_FILE, ...), so what is set for the server is named in the start-up
#: warning and never reaches plugins (see server_env_vars); the boolean ones keep none, as
#: a stray value there would stop the server. The object-store flags Weir uses are declared
#: in weir.cli.store_options.
NOT_YET_WIRED: list[Flag] = [
    ("--gen1-lookback-duration", "INFLUXDB3_GEN1_LOOKBACK_DURATION", True),
    ("--wal-replay-fail-on-error", "INFLUXDB3_WAL_REPLAY_FAIL_ON_ERROR", False),
    ("--wal-replay-concurrency-limit", "INFLUXDB3_WAL_REPLAY_CONCURRENCY_LIMIT", True),
    ("--aws-credentials-file", "AWS_CREDENTIALS_FILE", True),
    ("--object-store-http2-max-frame-size", "INFLUXDB3_OBJECT_STORE_HTTP2_MAX_FRAME_SIZE", True),
    ("--object-store-cache-endpoint", "INFLUXDB3_OBJECT_STORE_CACHE_ENDPOINT", True),
]

#: Flags that tune parts of the reference Weir does not have (its Rust runtime, DataFusion,
#: caches, telemetry, tracing) or features Weir lacks; accepted, named in one warning.
INTERNALS: list[Flag] = [
    ("--tls-minimum-version", "INFLUXDB3_TLS_MINIMUM_VERSION", True),
    ("--admin-token-recovery-http-bind", "INFLUXDB3_ADMIN_TOKEN_RECOVERY_HTTP_BIND_ADDR", True),
    ("--query-log-size", "INFLUXDB3_QUERY_LOG_SIZE", True),
    ("--query-file-limit", "INFLUXDB3_QUERY_FILE_LIMIT", True),
    ("--max-concurrent-queries", "INFLUXDB3_MAX_CONCURRENT_QUERIES", True),
    ("--last-cache-eviction-interval", "INFLUXDB3_LAST_CACHE_EVICTION_INTERVAL", True),
    ("--distinct-cache-eviction-interval", "INFLUXDB3_DISTINCT_CACHE_EVICTION_INTERVAL", True),
    ("--parquet-mem-cache-size", "INFLUXDB3_PARQUET_MEM_CACHE_SIZE", True),
    ("--parquet-mem-cache-prune-percentage", "INFLUXDB3_PARQUET_MEM_CACHE_PRUNE_PERCENTAGE",
     True),
    ("--parquet-mem-cache-prune-interval", "INFLUXDB3_PARQUET_MEM_CACHE_PRUNE_INTERVAL", True),
    ("--parquet-mem-cache-query-path-duration",
     "INFLUXDB3_PARQUET_MEM_CACHE_QUERY_PATH_DURATION", True),
    ("--disable-parquet-mem-cache", "INFLUXDB3_DISABLE_PARQUET_MEM_CACHE", False),
    ("--table-index-cache-max-entries", "INFLUXDB3_TABLE_INDEX_CACHE_MAX_ENTRIES", True),
    ("--table-index-cache-concurrency-limit", "INFLUXDB3_TABLE_INDEX_CACHE_CONCURRENCY_LIMIT",
     True),
    ("--disable-log-filter-noise-reduction", "INFLUXDB3_DISABLE_LOG_FILTER_NOISE_REDUCTION",
     False),
    ("--log-destination", "INFLUXDB3_LOG_DESTINATION", True),
    ("--log-format", "INFLUXDB3_LOG_FORMAT", True),
    ("--traces-exporter", "INFLUXDB3_TRACES_EXPORTER", True),
    ("--traces-exporter-jaeger-agent-host", None, True),
    ("--traces-exporter-jaeger-agent-port", None, True),
    ("--traces-exporter-jaeger-service-name", None, True),
    ("--traces-exporter-jaeger-trace-context-header-name", None, True),
    ("--traces-jaeger-debug-name", None, True),
    ("--traces-jaeger-tags", None, True),
    ("--traces-jaeger-max-msgs-per-second", None, True),
    ("--datafusion-num-threads", "INFLUXDB3_DATAFUSION_NUM_THREADS", True),
    ("--datafusion-runtime-type", "INFLUXDB3_DATAFUSION_RUNTIME_TYPE", True),
    ("--datafusion-max-parquet-fanout", "INFLUXDB3_DATAFUSION_MAX_PARQUET_FANOUT", True),
    ("--datafusion-use-cached-parquet-loader", "INFLUXDB3_DATAFUSION_USE_CACHED_PARQUET_LOADER",
     False),
    ("--datafusion-config", "INFLUXDB3_DATAFUSION_CONFIG", True),
    ("--num-io-threads", "INFLUXDB3_NUM_THREADS", True),
    ("--test-mode", None, False),
    ("--disable-telemetry-upload", "INFLUXDB3_TELEMETRY_DISABLE_UPLOAD", False),
    ("--telemetry-endpoint", "INFLUXDB3_TELEMETRY_ENDPOINT", True),
    ("--tcp-listener-file-path", None, True),
]

#: every accepted-but-ignored flag (`--help-all` shows them)
IGNORED: list[Flag] = NOT_YET_WIRED + INTERNALS


def _param_name(flag: str) -> str:
    return "ignored_" + flag.lstrip("-").replace("-", "_")


def _hidden_option(f: CommandFunc, flag: str, env: str | None, takes_value: bool,
                   help_text: str) -> CommandFunc:
    name = _param_name(flag)
    if not takes_value:
        return click.option(flag, name, is_flag=True, default=None, envvar=env, hidden=True,
                            help=help_text)(f)
    if flag == "--admin-token-recovery-http-bind":
        return click.option(flag, name, default=None, envvar=env, hidden=True, help=help_text,
                            is_flag=False, flag_value="127.0.0.1:8182")(f)
    return click.option(flag, name, default=None, envvar=env, hidden=True,
                        help=help_text)(f)


def _ignored_options(f: CommandFunc) -> CommandFunc:
    for flag, (env, takes_value, _) in reversed(REFUSED.items()):
        f = _hidden_option(f, flag, env, takes_value, "Not supported by Weir (refused).")
    for flag, env, takes_value in reversed(IGNORED):
        f = _hidden_option(f, flag, env, takes_value,
                           "Accepted for compatibility; Weir ignores it (with a warning).")
    return f


def _show_all_help(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    ignored = [p for p in ctx.command.params
               if isinstance(p, click.Option) and p.name and p.name.startswith("ignored_")]
    for p in ignored:
        p.hidden = False
    try:
        click.echo(ctx.get_help(), color=ctx.color)
    finally:
        for p in ignored:
            p.hidden = True
    ctx.exit()


_EXAMPLE = [
    "influxdb3 serve --node-id node0 --object-store file --data-dir ~/.influxdb3 \\\n"
    "--plugin-dir ~/.plugins",
    "influxdb3 serve --node-id node0 --object-store s3 --bucket weir \\\n"
    "--aws-endpoint http://127.0.0.1:8333 --aws-allow-http \\\n"
    "--aws-access-key-id KEY --aws-secret-access-key SECRET",
    "influxdb3 serve --cluster-id c1 --node-id node0 --mode ingest,query \\\n"
    "--object-store file --data-dir /mnt/shared/weir",
    "influxdb3 serve --node-id node0 --plugin-dir ~/.plugins \\\n"
    "--plugin-env-deny 'GITHUB_TOKEN,SSH_*'",
    "influxdb3 serve --node-id node0 --plugin-dir ~/.plugins \\\n"
    "--plugin-env-allow 'TWILIO_*' --plugin-env-allow NORI_API_KEY",
]


def _pyarrow_without_pandas() -> None:
    """The first time pyarrow converts a Python list it asks whether pandas is installed
    (is the list a pandas Series?) and, where it is, imports all of it: ~0.17 s of every
    start of a server that never touches pandas. That one question is answered "no" here,
    by refusing to import pandas for the moment pyarrow asks; pyarrow still imports it if
    anything converts to or from pandas later, and so may anything else."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    class NoPandas(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name == "pandas":
                raise ModuleNotFoundError("No module named 'pandas'", name=name)

    finder = NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(finder)


@click.command("serve", cls=WeirCommand, example=_EXAMPLE)
@click.option("--node-id", "--host-id", "node_id", envvar="INFLUXDB3_NODE_IDENTIFIER_PREFIX",
              show_envvar=True, metavar="ID",
              help="Name of this node; its files live under <data-dir>/<node-id>/ "
                   "[default: <hostname>-node].")
@click.option("--node-id-from-env", "node_id_from_env", envvar="INFLUXDB3_NODE_IDENTIFIER_FROM_ENV",
              metavar="VAR", help="Take the node id from this environment variable.")
@object_store_options(data_dir_help="Directory of the file object store "
                                    "[default: ~/.influxdb3].")
@click.option("--http-bind", envvar="INFLUXDB3_HTTP_BIND_ADDR", default="0.0.0.0:8181",
              show_default=True, show_envvar=True, metavar="ADDR",
              help="Address and port to listen on.")
@click.option("--plugin-dir", envvar="INFLUXDB3_PLUGIN_DIR", default=None, show_envvar=True,
              metavar="DIR", help="Directory of processing-engine plugins (turns the engine on).")
@click.option("--virtual-env-location", envvar="VIRTUAL_ENV", default=None, show_envvar=True,
              metavar="DIR", help="Virtualenv for plugins [default: <plugin-dir>/.venv].")
@click.option("--package-manager", envvar="INFLUXDB3_PACKAGE_MANAGER", default="discover",
              show_default=True, show_envvar=True,
              type=click.Choice(["discover", "pip", "uv", "disabled"]),
              help="How `influxdb3 install` installs packages (deprecated in the reference).")
@click.option("--plugin-repo", envvar="INFLUXDB3_PLUGIN_REPO", default=None, show_envvar=True,
              metavar="URL", help="Base URL that gh: plugin names are fetched from "
                                  "[default: the influxdb3_plugins repository on GitHub].")
@click.option("--restrict-plugin-triggers-to", envvar="INFLUXDB3_RESTRICT_PLUGIN_TRIGGERS_TO",
              multiple=True, show_envvar=True, metavar="KINDS",
              help="Allow only these trigger kinds (wal, schedule, request; comma-separated, "
                   "or repeat the flag).")
@click.option("--plugin-env-allow", envvar="INFLUXDB3_PLUGIN_ENV_ALLOW", multiple=True,
              show_envvar=True, metavar="NAMES",
              help="Weir: plugins see only these of the server's environment variables "
                   "(names or globs, comma-separated or repeated), plus PATH, HOME, locale, "
                   "TLS and proxy settings; e.g. --plugin-env-allow 'TWILIO_*,NORI_API_KEY'. "
                   "A name given exactly is passed even if serve reads it itself "
                   "[default: the server's whole environment except the variables of these "
                   "serve options].")
@click.option("--plugin-env-deny", envvar="INFLUXDB3_PLUGIN_ENV_DENY", multiple=True,
              show_envvar=True, metavar="NAMES",
              help="Weir: plugins never see these environment variables (names or globs, "
                   "comma-separated or repeated); e.g. --plugin-env-deny 'GITHUB_TOKEN,SSH_*'.")
@click.option("--without-auth", envvar="INFLUXDB3_START_WITHOUT_AUTH", is_flag=True,
              show_envvar=True, help="Serve every request without checking tokens.")
@click.option("--disable-authz", envvar="INFLUXDB3_DISABLE_AUTHZ", default=None,
              show_envvar=True, metavar="RESOURCES",
              help="Endpoints that need no token (comma list of health, ping, metrics, ready, "
                   "pprof).")
@click.option("--admin-token-file", envvar="INFLUXDB3_ADMIN_TOKEN_FILE", default=None,
              show_envvar=True, metavar="FILE",
              help="Offline admin token file (from `create token --admin --offline`).")
@click.option("--max-http-request-size", envvar="INFLUXDB3_MAX_HTTP_REQUEST_SIZE",
              default="10485760", type=SIZE, show_default=True, show_envvar=True,
              help="Largest request body, in bytes.")
@click.option("--wal-flush-interval", envvar="INFLUXDB3_WAL_FLUSH_INTERVAL", default="1s",
              type=DURATION, show_default=True, show_envvar=True,
              help="Longest a write waits for its WAL file (e.g. 1s, 10ms). Weir writes the "
                   "next WAL file as soon as the previous fsync ends (group commit), so "
                   "writes usually wait far less.")
@click.option("--wal-snapshot-size", envvar="INFLUXDB3_WAL_SNAPSHOT_SIZE", default=600,
              type=click.IntRange(min=1), show_default=True, show_envvar=True,
              help="WAL files between snapshots to Parquet.")
@click.option("--wal-max-write-buffer-size", envvar="INFLUXDB3_WAL_MAX_WRITE_BUFFER_SIZE",
              default=100000, type=click.IntRange(min=1), show_default=True, show_envvar=True,
              help="Most write requests buffered before the WAL is full.")
@click.option("--snapshotted-wal-files-to-keep", envvar="INFLUXDB3_NUM_WAL_FILES_TO_KEEP",
              default=300, type=click.IntRange(min=0), show_default=True, show_envvar=True,
              help="Snapshotted WAL files kept on disk.")
@click.option("--trigger-max-wal-lag", envvar="INFLUXDB3_TRIGGER_MAX_WAL_LAG",
              default=3600, type=click.IntRange(min=0), show_default=True, show_envvar=True,
              help="Weir: WAL files kept for a WAL trigger that has not processed them yet; "
                   "a trigger further behind is marked lagging and skips what is deleted.")
@click.option("--gen1-duration", envvar="INFLUXDB3_GEN1_DURATION", default="10m",
              type=DURATION, show_default=True, show_envvar=True,
              help="Time span of one Parquet file (1m, 5m or 10m).")
@click.option("--exec-mem-pool-bytes", envvar="INFLUXDB3_EXEC_MEM_POOL_BYTES", default=None,
              type=MEMORY, show_envvar=True, metavar="SIZE",
              help="Memory limit of the query engine: bytes, or a percentage like 20%.")
@click.option("--force-snapshot-mem-threshold", envvar="INFLUXDB3_FORCE_SNAPSHOT_MEM_THRESHOLD",
              default=None, type=MEMORY, show_envvar=True, metavar="SIZE",
              help="Snapshot early when the buffer holds this much: bytes or a percentage "
                   "(sets --force-snapshot-bytes).")
@click.option("--force-snapshot-bytes", envvar="WEIR_FORCE_SNAPSHOT_BYTES", default="512m",
              type=SIZE, show_default=True, show_envvar=True,
              help="Weir: snapshot early when the buffer holds this many bytes.")
@click.option("--buffer-mem-limit", envvar="WEIR_BUFFER_MEM_LIMIT", default=None,
              type=MEMORY, show_envvar=True, metavar="SIZE",
              help="Weir: buffer size past which writes wait for a snapshot, then get 503 "
                   "[default: twice --force-snapshot-bytes].")
@click.option("--compaction-interval", envvar="WEIR_COMPACTION_INTERVAL", default="10s",
              type=DURATION, show_default=True, show_envvar=True,
              help="Weir: how often small Parquet files are compacted (0s turns the "
                   "compactor off).")
@click.option("--compaction-file-rows", envvar="WEIR_COMPACTION_FILE_ROWS", default=1_000_000,
              type=click.IntRange(min=1), show_default=True, show_envvar=True,
              help="Weir: rows per compacted Parquet file in a time window still open, "
                   "and per time slice (row groups) of a closed window's file.")
@click.option("--compaction-max-file-rows", envvar="WEIR_COMPACTION_MAX_FILE_ROWS",
              default=50_000_000, type=click.IntRange(min=1), show_default=True,
              show_envvar=True,
              help="Weir: rows past which a closed window's compacted file (one per gen1 "
                   "window, hour, then day) is split into several.")
@click.option("--retention-check-interval", envvar="INFLUXDB3_RETENTION_CHECK_INTERVAL",
              default="30m", type=DURATION, show_default=True, show_envvar=True,
              help="How often data past a database's retention period is removed.")
@click.option("--hard-delete-default-duration",
              envvar="INFLUXDB3_HARD_DELETE_DEFAULT_DURATION", default="72h", type=DURATION,
              show_default=True, show_envvar=True,
              help="Delay of `--hard-delete default` after a database or table is deleted.")
@click.option("--delete-grace-period", envvar="INFLUXDB3_DELETE_GRACE_PERIOD", default="24h",
              type=DURATION, show_default=True, show_envvar=True,
              help="How long files no longer referenced are kept before removal.")
@click.option("--num-database-limit", envvar="INFLUXDB3_NUM_DATABASE_LIMIT",
              default=DEFAULT_NUM_DATABASE_LIMIT, type=click.IntRange(min=1), show_default=True,
              show_envvar=True, help="Most databases (not counting _internal).")
@click.option("--num-table-limit", envvar="INFLUXDB3_NUM_TABLE_LIMIT",
              default=DEFAULT_NUM_TABLE_LIMIT, type=click.IntRange(min=1), show_default=True,
              show_envvar=True, help="Most tables, all databases together.")
@click.option("--num-total-columns-per-table-limit",
              envvar="INFLUXDB3_NUM_TOTAL_COLUMNS_PER_TABLE_LIMIT",
              default=DEFAULT_NUM_COLUMNS_PER_TABLE_LIMIT, type=click.IntRange(min=2),
              show_default=True, show_envvar=True,
              help="Most columns in one table (tags, fields and time).")
@click.option("--query-timeout", envvar="WEIR_QUERY_TIMEOUT", default="5m", type=DURATION,
              show_default=True, show_envvar=True, help="Weir: longest one query may run.")
@click.option("--plugin-call-timeout", envvar="WEIR_PLUGIN_CALL_TIMEOUT", default="5m",
              type=DURATION, show_default=True, show_envvar=True,
              help="Weir: longest one plugin call may run.")
@click.option("--log-filter", "log_filter", envvar="INFLUXDB3_LOG_FILTER", default=None,
              show_envvar=True, metavar="FILTER",
              help="Log level: error, warn, info, debug or trace [default: info].")
@click.option("-v", "--verbose", count=True, help="More logging (-v debug, -vv trace).")
@click.option("--cluster-id", envvar="INFLUXDB3_ENTERPRISE_CLUSTER_ID", default=None,
              show_envvar=True, metavar="ID",
              help="Join the cluster of this name: nodes started with the same cluster id on "
                   "one object store (a bucket, or a shared --data-dir) work as one database "
                   "(InfluxDB 3 Enterprise's flag). Differs from every node id. "
                   "[default: none, a single node]")
@click.option("--mode", "mode", envvar="INFLUXDB3_ENTERPRISE_MODE", multiple=True,
              show_envvar=True, metavar="MODES",
              help="What this cluster node does: ingest, query, compact, process or all "
                   "(comma-separated, or repeat the flag); anything but all needs "
                   "--cluster-id. [default: all]")
@click.option("--cluster-poll-interval", envvar="WEIR_CLUSTER_POLL_INTERVAL", default="250ms",
              type=DURATION, show_default=True, show_envvar=True,
              help="Weir: how often a cluster node looks for the other nodes' new files "
                   "(catalog, Parquet, WAL).")
@click.option("--compactor-lease-duration", envvar="WEIR_COMPACTOR_LEASE_DURATION",
              default="30s", type=DURATION, show_default=True, show_envvar=True,
              help="Weir: how long the cluster's compactor lease lasts unrenewed: after a "
                   "compactor dies, another compact node takes over within this time.")
@click.option("--help-all", is_flag=True, expose_value=False, is_eager=True,
              callback=_show_all_help,
              help="Show all options, including the reference's that Weir ignores.")
@_ignored_options
def serve(**kw: Any) -> None:
    """Run the Weir server: the InfluxDB 3 Core HTTP API, with the processing engine when
    --plugin-dir is given. Stops cleanly on Ctrl-C / SIGTERM.

    The reference's other serve flags are accepted and ignored, named in one start-up
    WARNING line: those tuning parts Weir does not have (DataFusion, caches, I/O threads,
    telemetry, tracing) and the few object-store flags its client has no setting for
    (--aws-credentials-file, --object-store-http2-max-frame-size,
    --object-store-cache-endpoint). --tls-cert and --tls-key are refused: Weir serves
    plain HTTP. --help-all lists them all."""
    config = build_config(kw)
    # imported here, not at the top: weir.server loads pyarrow and DataFusion (over a
    # second), which every other command, and `influxdb3 --help`, must not wait for
    _pyarrow_without_pandas()
    from weir.server import run

    try:
        run(config)
    except KeyboardInterrupt:
        pass
    except ClusterRefused as e:
        fail(f"Serve command failed: {e}")
    except OSError as e:
        fail(f"Serve command failed: {e.strerror or e}"
             + (f" ({config.http_bind})" if e.errno in (98, 48, 13, 99) else ""))


def _bad(flag: str, message: str) -> click.BadParameter:
    return click.BadParameter(message, param_hint=f"'{flag}'")


def _choices(flag: str, given: str | tuple[str, ...] | None,
             allowed: tuple[str, ...]) -> list[str]:
    values = comma_list(given)
    for v in values:
        if v.lower() not in allowed:
            raise _bad(flag, f"{v!r} is not one of {', '.join(allowed)}")
    return [v.lower() for v in values]


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def server_env_vars() -> list[str]:
    """Every environment variable `serve` reads: those of its options, the hidden ones
    (object-store keys, TLS keys) included. The server's own settings and credentials, so
    plugin workers do not inherit them (`weir.engine.plugin_env`)."""
    names: list[str] = []
    for p in serve.params:
        env = p.envvar
        for name in [env] if isinstance(env, str) else list(env or ()):
            if name not in names:
                names.append(name)
    return names


def _env_names(flag: str, given: tuple[str, ...] | None) -> list[str]:
    names = comma_list(given)
    for n in names:
        if "=" in n:
            raise _bad(flag, f"{n!r}: give variable names or patterns (NAME, PREFIX_*), "
                             "not NAME=VALUE")
    return names


def build_config(kw: dict[str, Any]) -> ServeConfig:
    """Validate the parsed flags and build the server's configuration."""
    ctx = click.get_current_context(silent=True)
    def given(flag: str, env: str | None) -> str | None:
        """`--flag` (or `--flag (from ENV)`) when it was set, else None."""
        if kw.get(_param_name(flag)) in (None, False):
            return None
        if ctx is not None and env and ctx.get_parameter_source(_param_name(flag)) \
                == click.core.ParameterSource.ENVIRONMENT:
            return f"{flag} (from {env})"
        return flag

    for flag, (env, _, reason) in REFUSED.items():
        if (shown := given(flag, env)) is not None:
            raise click.UsageError(f"{shown} is not supported by Weir: {reason}")
    ignored = [shown for flag, env, _ in IGNORED if (shown := given(flag, env)) is not None]
    if ignored:
        # One line, so a service file full of tuning flags does not bury the real log.
        click.echo("WARNING: Weir accepts but ignores these InfluxDB 3 options (they tune "
                   "parts Weir does not have, or are not supported yet; see README, serve "
                   "options): " + ", ".join(ignored), err=True)

    store = kw.get("object_store") or "file"
    if store == "memory-throttled":
        _warn("--object-store memory-throttled is served as memory (no throttling)")
        store = "memory"
    store_options = object_store_config(kw, store)

    node_id = kw.get("node_id")
    if not node_id and kw.get("node_id_from_env"):
        var = kw["node_id_from_env"]
        node_id = os.environ.get(var)
        if not node_id:
            raise _bad("--node-id-from-env", f"environment variable {var} is not set")
    if not node_id:
        node_id = f"{socket.gethostname() or 'primary'}-node"
        click.echo(f"Using auto-generated node id: {node_id}. For production deployments, "
                   "explicitly set --node-id", err=True)
    if "/" in node_id or node_id in (".", ".."):
        raise _bad("--node-id", f"{node_id!r} cannot be used as a directory name")
    cluster_id, modes = _cluster(kw, node_id, store)

    data_dir = (Path(kw["data_dir"]).expanduser() if kw.get("data_dir")
                else Path.home() / ".influxdb3")
    http_bind = kw.get("http_bind") or "0.0.0.0:8181"
    _host, sep, port = http_bind.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise _bad("--http-bind", f"{http_bind!r} is not HOST:PORT (e.g. 0.0.0.0:8181)")

    plugin_dir = Path(kw["plugin_dir"]).expanduser().resolve() if kw.get("plugin_dir") else None
    venv = kw.get("virtual_env_location")
    venv_path = Path(venv).expanduser().resolve() if venv else None
    if (venv_path is not None and ctx is not None
            and ctx.get_parameter_source("virtual_env_location")
            == click.core.ParameterSource.ENVIRONMENT
            and venv_path == Path(sys.prefix).resolve()):
        # VIRTUAL_ENV names the environment Weir itself runs in (it was activated to run
        # Weir): plugins get their own venv instead of sharing and altering Weir's.
        venv_path = None

    wal_flush = kw.get("wal_flush_interval", 1.0)
    if wal_flush <= 0:
        raise _bad("--wal-flush-interval", "must be greater than zero")
    gen1 = kw.get("gen1_duration", 600.0)
    if gen1 <= 0:
        raise _bad("--gen1-duration", "must be greater than zero")
    for flag in ("query_timeout", "plugin_call_timeout"):
        if kw.get(flag) is not None and kw[flag] <= 0:
            raise _bad("--" + flag.replace("_", "-"), "must be greater than zero")

    log_filter = kw.get("log_filter") or "info"
    verbose = kw.get("verbose") or 0
    if verbose and not kw.get("log_filter"):
        log_filter = "debug" if verbose == 1 else "trace"

    force_snapshot = kw.get("force_snapshot_bytes", 512 * 1024**2)
    if kw.get("force_snapshot_mem_threshold"):
        force_snapshot = kw["force_snapshot_mem_threshold"]
    buffer_mem_limit = kw.get("buffer_mem_limit") or 2 * force_snapshot
    if buffer_mem_limit <= 0:
        raise _bad("--buffer-mem-limit", "must be greater than zero")
    compaction_interval = kw.get("compaction_interval", 10.0)
    if compaction_interval < 0:
        raise _bad("--compaction-interval", "must not be negative (0s turns compaction off)")
    for flag in ("retention_check_interval",):
        if kw.get(flag) is not None and kw[flag] <= 0:
            raise _bad("--" + flag.replace("_", "-"), "must be greater than zero")
    for flag in ("hard_delete_default_duration", "delete_grace_period"):
        if kw.get(flag) is not None and kw[flag] < 0:
            raise _bad("--" + flag.replace("_", "-"), "must not be negative")

    cfg = ServeConfig(
        node_id=node_id,
        cluster_id=cluster_id,
        modes=modes,
        cluster_poll_interval=kw.get("cluster_poll_interval", 0.25),
        compactor_lease_duration=kw.get("compactor_lease_duration", 30.0),
        object_store=store,
        object_store_options=store_options,
        data_dir=data_dir,
        http_bind=http_bind,
        plugin_dir=plugin_dir,
        virtual_env_location=venv_path,
        package_manager=kw.get("package_manager") or "discover",
        restrict_plugin_triggers_to=_choices("--restrict-plugin-triggers-to",
                                             kw.get("restrict_plugin_triggers_to"),
                                             TRIGGER_KINDS),
        without_auth=bool(kw.get("without_auth")),
        disable_authz=_choices("--disable-authz", kw.get("disable_authz"), AUTHZ_RESOURCES),
        admin_token_file=(Path(kw["admin_token_file"]).expanduser()
                          if kw.get("admin_token_file") else None),
        max_http_request_size=kw.get("max_http_request_size", 10 * 1024 * 1024),
        wal_flush_interval=wal_flush,
        wal_snapshot_size=kw.get("wal_snapshot_size", 600),
        wal_max_write_buffer_size=kw.get("wal_max_write_buffer_size", 100_000),
        snapshotted_wal_files_to_keep=kw.get("snapshotted_wal_files_to_keep", 300),
        trigger_max_wal_lag=kw.get("trigger_max_wal_lag", 3600),
        gen1_duration=gen1,
        force_snapshot_bytes=force_snapshot,
        compaction_interval=compaction_interval,
        compaction_file_rows=kw.get("compaction_file_rows", 1_000_000),
        compaction_max_file_rows=kw.get("compaction_max_file_rows", 50_000_000),
        buffer_mem_limit=buffer_mem_limit,
        retention_check_interval=kw.get("retention_check_interval", 1800.0),
        hard_delete_default_duration=kw.get("hard_delete_default_duration", 72 * 3600.0),
        delete_grace_period=kw.get("delete_grace_period", 24 * 3600.0),
        num_database_limit=kw.get("num_database_limit", DEFAULT_NUM_DATABASE_LIMIT),
        num_table_limit=kw.get("num_table_limit", DEFAULT_NUM_TABLE_LIMIT),
        num_total_columns_per_table_limit=kw.get("num_total_columns_per_table_limit",
                                                 DEFAULT_NUM_COLUMNS_PER_TABLE_LIMIT),
        query_timeout=kw.get("query_timeout", 300.0),
        exec_mem_pool_bytes=kw.get("exec_mem_pool_bytes"),
        plugin_call_timeout=kw.get("plugin_call_timeout", 300.0),
        log_filter=log_filter,
        # the variable --node-id-from-env names is the server's setting too
        server_env_vars=server_env_vars() + ([kw["node_id_from_env"]]
                                             if kw.get("node_id_from_env") else []),
        plugin_env_allow=(_env_names("--plugin-env-allow", kw["plugin_env_allow"])
                          if kw.get("plugin_env_allow") else None),
        plugin_env_deny=_env_names("--plugin-env-deny", kw.get("plugin_env_deny")),
    )
    if kw.get("plugin_repo"):
        cfg.plugin_repo = kw["plugin_repo"]
    cfg.cli_params = given_params(ctx)
    return cfg


#: `--mode` values: the node modes, and `all` for every one of them
MODE_CHOICES = (*NODE_MODES, "all")


def _cluster(kw: dict[str, Any], node_id: str, store: str) -> tuple[str | None, frozenset[str]]:
    """`--cluster-id`, `--mode` and `--cluster-poll-interval`, checked against each other and
    the node id and object store: (cluster id or None, modes)."""
    cluster_id: str | None = kw.get("cluster_id")
    modes = set(_choices("--mode", kw.get("mode"), MODE_CHOICES)) or {"all"}
    if "all" in modes:
        modes = set(NODE_MODES)
    if kw.get("cluster_poll_interval") is not None and kw["cluster_poll_interval"] <= 0:
        raise _bad("--cluster-poll-interval", "must be greater than zero")
    if kw.get("compactor_lease_duration") is not None and kw["compactor_lease_duration"] < 3:
        raise _bad("--compactor-lease-duration", "must be at least 3s (a holder renews it "
                                                 "every compaction pass)")
    if cluster_id is None:
        if modes != set(NODE_MODES):
            raise _bad("--mode", f"{','.join(sorted(modes))} needs --cluster-id: a single "
                                 "node (no cluster id) does everything, so its mode is all")
        return None, frozenset(NODE_MODES)
    if not cluster_id.strip() or "/" in cluster_id or cluster_id in (".", ".."):
        raise _bad("--cluster-id", f"{cluster_id!r} cannot be used as a cluster id (it names "
                                   "a folder in the object store: no '/', not empty)")
    if cluster_id == node_id:
        raise _bad("--cluster-id", f"the cluster id {cluster_id!r} is also the node id; give "
                                   "the cluster and its nodes different names")
    if store == "memory":
        raise _bad("--cluster-id", "the memory object store is this process's own, so no "
                                   "other node can share it; use --object-store file with a "
                                   "shared --data-dir, or s3")
    return cluster_id, frozenset(modes)


def given_params(ctx: click.Context | None, argv: list[str] | None = None) -> dict[str, str]:
    """The options the operator gave, on the command line or through their environment
    variables, as typed (long name without `--` -> text; a flag is "true"; a repeated
    option's values joined by commas): system.nodes shows them (redacted)."""
    if ctx is None:
        return {}
    argv = sys.argv[1:] if argv is None else argv
    out: dict[str, str] = {}
    for p in serve.params:
        if not isinstance(p, click.Option) or not p.name or not p.opts:
            continue
        source = ctx.get_parameter_source(p.name)
        name = max(p.opts, key=len).lstrip("-")
        if source == click.core.ParameterSource.ENVIRONMENT:
            envs = [p.envvar] if isinstance(p.envvar, str) else list(p.envvar or ())
            text = next((os.environ[e] for e in envs if e in os.environ), None)
            if text is not None:
                out[name] = text
        elif source == click.core.ParameterSource.COMMANDLINE:
            values: list[str] = []
            for i, arg in enumerate(argv):
                opt, eq, inline = arg.partition("=")
                if opt not in p.opts:
                    continue
                if p.is_flag:
                    values.append("true")
                elif eq:
                    values.append(inline)
                elif i + 1 < len(argv):
                    values.append(argv[i + 1])
            if values:
                out[name] = ",".join(values)
    return out
