"""`influxdb3 serve`: flags, their environment variables and defaults (surface.md §5.1)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import click

from weir.config import DurationError, ServeConfig, parse_duration, parse_size

# Reference flags Weir accepts so scripts keep working, but does not act on.
_IGNORED = [
    ("--bucket", "INFLUXDB3_BUCKET"),
    ("--tls-cert", "INFLUXDB3_TLS_CERT"),
    ("--tls-key", "INFLUXDB3_TLS_KEY"),
    ("--tls-minimum-version", "INFLUXDB3_TLS_MINIMUM_VERSION"),
    ("--gen1-lookback-duration", "INFLUXDB3_GEN1_LOOKBACK_DURATION"),
    ("--query-log-size", "INFLUXDB3_QUERY_LOG_SIZE"),
    ("--max-concurrent-queries", "INFLUXDB3_MAX_CONCURRENT_QUERIES"),
    ("--retention-check-interval", "INFLUXDB3_RETENTION_CHECK_INTERVAL"),
    ("--hard-delete-default-duration", "INFLUXDB3_HARD_DELETE_DEFAULT_DURATION"),
    ("--delete-grace-period", "INFLUXDB3_DELETE_GRACE_PERIOD"),
    ("--last-cache-eviction-interval", None),
    ("--distinct-cache-eviction-interval", None),
    ("--parquet-mem-cache-size", None),
    ("--force-snapshot-mem-threshold", None),
    ("--admin-token-recovery-http-bind", "INFLUXDB3_ADMIN_TOKEN_RECOVERY_HTTP_BIND_ADDR"),
    ("--node-id-from-env", "INFLUXDB3_NODE_IDENTIFIER_FROM_ENV"),
]


def _duration(flag: str, value: str) -> float:
    try:
        return parse_duration(value)
    except DurationError as e:
        raise click.BadParameter(str(e), param_hint=flag) from None


def _size(flag: str, value: str) -> int:
    try:
        return parse_size(value)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=flag) from None


def _ignored_options(f: Any) -> Any:
    for flag, env in reversed(_IGNORED):
        f = click.option(flag, envvar=env, default=None, hidden=True,
                         help="Accepted for compatibility; Weir ignores it.")(f)
    return f


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--node-id", "--host-id", "node_id", envvar="INFLUXDB3_NODE_IDENTIFIER_PREFIX",
              help="Name of this node; its files live under <data-dir>/<node-id>/.")
@click.option("--object-store", envvar="INFLUXDB3_OBJECT_STORE", default="file",
              show_default=True, type=click.Choice(["file", "memory"]),
              help="Where WAL, catalog and Parquet files are kept.")
@click.option("--data-dir", envvar="INFLUXDB3_DB_DIR", default=None,
              help="Directory of the file object store [default: ~/.influxdb3].")
@click.option("--http-bind", envvar="INFLUXDB3_HTTP_BIND_ADDR", default="0.0.0.0:8181",
              show_default=True, help="Address and port to listen on.")
@click.option("--plugin-dir", envvar="INFLUXDB3_PLUGIN_DIR", default=None,
              help="Directory of processing-engine plugins (turns the engine on).")
@click.option("--virtual-env-location", envvar="VIRTUAL_ENV", default=None,
              help="Plugin virtualenv [default: <plugin-dir>/.venv].")
@click.option("--package-manager", envvar="INFLUXDB3_PACKAGE_MANAGER", default="discover",
              show_default=True, type=click.Choice(["discover", "pip", "uv", "disabled"]))
@click.option("--plugin-repo", envvar="INFLUXDB3_PLUGIN_REPO", default=None,
              help="Base URL that gh: plugin names are fetched from.")
@click.option("--restrict-plugin-triggers-to", envvar="INFLUXDB3_RESTRICT_PLUGIN_TRIGGERS_TO",
              default=None, help="Comma list of trigger kinds allowed: wal,schedule,request.")
@click.option("--without-auth", envvar="INFLUXDB3_START_WITHOUT_AUTH", is_flag=True,
              help="Serve every request without checking tokens.")
@click.option("--disable-authz", envvar="INFLUXDB3_DISABLE_AUTHZ", default=None,
              help="Endpoints that need no token: health,ping,metrics.")
@click.option("--admin-token-file", envvar="INFLUXDB3_ADMIN_TOKEN_FILE", default=None)
@click.option("--max-http-request-size", envvar="INFLUXDB3_MAX_HTTP_REQUEST_SIZE",
              default="10485760", show_default=True, help="Largest request body, in bytes.")
@click.option("--wal-flush-interval", envvar="INFLUXDB3_WAL_FLUSH_INTERVAL", default="1s",
              show_default=True, help="Longest a write waits for its WAL file (e.g. 1s, 10ms).")
@click.option("--wal-snapshot-size", envvar="INFLUXDB3_WAL_SNAPSHOT_SIZE", default=600,
              show_default=True, type=int, help="WAL files between snapshots to Parquet.")
@click.option("--wal-max-write-buffer-size", envvar="INFLUXDB3_WAL_MAX_WRITE_BUFFER_SIZE",
              default=100000, show_default=True, type=int)
@click.option("--snapshotted-wal-files-to-keep", envvar="INFLUXDB3_NUM_WAL_FILES_TO_KEEP",
              default=300, show_default=True, type=int)
@click.option("--gen1-duration", envvar="INFLUXDB3_GEN1_DURATION", default="10m",
              show_default=True, help="Time span of one Parquet file (1m, 5m, 10m).")
@click.option("--exec-mem-pool-bytes", envvar="INFLUXDB3_EXEC_MEM_POOL_BYTES", default=None,
              help="Memory limit of the query engine, in bytes.")
@click.option("--force-snapshot-bytes", envvar="WEIR_FORCE_SNAPSHOT_BYTES", default="512m",
              show_default=True, help="Snapshot early when the buffer holds this much.")
@click.option("--query-timeout", envvar="WEIR_QUERY_TIMEOUT", default="5m", show_default=True)
@click.option("--plugin-call-timeout", envvar="WEIR_PLUGIN_CALL_TIMEOUT", default="5m",
              show_default=True, help="Longest one plugin call may run.")
@click.option("--log-filter", "-v", "log_filter", envvar="INFLUXDB3_LOG_FILTER",
              default="info", show_default=True)
@_ignored_options
def serve(**kw: Any) -> None:
    """Run the Weir server.

    \b
    Example:
      influxdb3 serve --node-id node0 --object-store file \\
        --data-dir ~/.influxdb3 --plugin-dir ~/.plugins
    """
    ignored = [f for f, _env in _IGNORED if kw.get(f.lstrip("-").replace("-", "_")) is not None]
    for flag in ignored:
        click.echo(f"warning: {flag} is accepted for compatibility but ignored by Weir",
                   err=True)
    config = build_config(kw)
    from weir.server import run

    run(config)


def build_config(kw: dict[str, Any]) -> ServeConfig:
    node_id = kw["node_id"] or f"{socket.gethostname()}-node"
    data_dir = Path(kw["data_dir"]).expanduser() if kw["data_dir"] else Path.home() / ".influxdb3"
    gen1 = _duration("--gen1-duration", kw["gen1_duration"])
    cfg = ServeConfig(
        node_id=node_id,
        object_store=kw["object_store"],
        data_dir=data_dir,
        http_bind=kw["http_bind"],
        plugin_dir=Path(kw["plugin_dir"]).expanduser().resolve() if kw["plugin_dir"] else None,
        virtual_env_location=(Path(kw["virtual_env_location"]).expanduser().resolve()
                              if kw["virtual_env_location"] else None),
        package_manager=kw["package_manager"],
        restrict_plugin_triggers_to=[
            s.strip() for s in (kw["restrict_plugin_triggers_to"] or "").split(",") if s.strip()],
        without_auth=kw["without_auth"],
        disable_authz=[s.strip() for s in (kw["disable_authz"] or "").split(",") if s.strip()],
        admin_token_file=Path(kw["admin_token_file"]) if kw["admin_token_file"] else None,
        max_http_request_size=_size("--max-http-request-size", kw["max_http_request_size"]),
        wal_flush_interval=_duration("--wal-flush-interval", kw["wal_flush_interval"]),
        wal_snapshot_size=kw["wal_snapshot_size"],
        wal_max_write_buffer_size=kw["wal_max_write_buffer_size"],
        snapshotted_wal_files_to_keep=kw["snapshotted_wal_files_to_keep"],
        gen1_duration=gen1,
        force_snapshot_bytes=_size("--force-snapshot-bytes", kw["force_snapshot_bytes"]),
        query_timeout=_duration("--query-timeout", kw["query_timeout"]),
        exec_mem_pool_bytes=(_size("--exec-mem-pool-bytes", kw["exec_mem_pool_bytes"])
                             if kw["exec_mem_pool_bytes"] else None),
        plugin_call_timeout=_duration("--plugin-call-timeout", kw["plugin_call_timeout"]),
        log_filter=kw["log_filter"],
    )
    if kw["plugin_repo"]:
        cfg.plugin_repo = kw["plugin_repo"]
    if cfg.wal_flush_interval <= 0:
        raise click.BadParameter("must be greater than zero", param_hint="--wal-flush-interval")
    if cfg.wal_snapshot_size < 1:
        raise click.BadParameter("must be at least 1", param_hint="--wal-snapshot-size")
    return cfg
