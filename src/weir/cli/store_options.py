"""The object-store flags, declared once for every command that opens a store (`serve`,
`debug object-store-check`): `--object-store`, `--data-dir`, the bucket, the S3, Google and
Azure credentials and the client's retry, connection and TLS settings, with the
reference's names and environment variables, checked and turned into what
`weir.objectstore.open_store` takes."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from weir.cli.base import CommandFunc
from weir.config import DurationError, ObjectStoreConfig, parse_duration

OBJECT_STORES = ("file", "memory", "memory-throttled", "s3", "google", "azure")
#: the kinds kept in a bucket (an Azure container), which need --bucket
CLOUD_STORES = ("s3", "google", "azure")


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except DurationError as e:
        raise click.BadParameter(str(e), ctx, param) from None


# (flag, parameter name, environment variable or None, keyword arguments of click.option).
# Boolean flags keep no environment variable where the reference has none: a stray value
# there would stop the server.
_CLOUD_FLAGS: list[tuple[str, str, str | None, dict[str, Any]]] = [
    ("--bucket", "bucket", "INFLUXDB3_BUCKET",
     {"metavar": "NAME", "help": "Bucket of s3 and google; container of azure (required "
                                 "with them)."}),
    ("--aws-access-key-id", "aws_access_key_id", "AWS_ACCESS_KEY_ID",
     {"metavar": "KEY", "help": "S3 access key id."}),
    ("--aws-secret-access-key", "aws_secret_access_key", "AWS_SECRET_ACCESS_KEY",
     {"metavar": "SECRET", "help": "S3 secret access key."}),
    ("--aws-session-token", "aws_session_token", "AWS_SESSION_TOKEN",
     {"metavar": "TOKEN", "help": "S3 session token (temporary credentials)."}),
    ("--aws-default-region", "aws_default_region", "AWS_DEFAULT_REGION",
     {"metavar": "REGION", "default": "us-east-1", "show_default": True,
      "help": "S3 region."}),
    ("--aws-endpoint", "aws_endpoint", "AWS_ENDPOINT",
     {"metavar": "URL", "help": "URL of an S3-compatible server (MinIO, SeaweedFS, Ceph, "
                                "...) [default: AWS's endpoint of the region]."}),
    ("--aws-allow-http", "aws_allow_http", None,
     {"is_flag": True, "help": "Allow an http:// --aws-endpoint (no TLS)."}),
    ("--aws-skip-signature", "aws_skip_signature", None,
     {"is_flag": True, "help": "Send S3 requests unsigned (a public bucket)."}),
    ("--google-service-account", "google_service_account", "GOOGLE_SERVICE_ACCOUNT",
     {"metavar": "FILE", "help": "Google service-account JSON file (google; untested)."}),
    ("--azure-storage-account", "azure_storage_account", "AZURE_STORAGE_ACCOUNT",
     {"metavar": "NAME", "help": "Azure storage account (azure; untested)."}),
    ("--azure-storage-access-key", "azure_storage_access_key", "AZURE_STORAGE_ACCESS_KEY",
     {"metavar": "KEY", "help": "Azure storage access key."}),
    ("--azure-endpoint", "azure_endpoint", "AZURE_ENDPOINT",
     {"metavar": "URL", "help": "Azure blob endpoint (an emulator, a sovereign cloud)."}),
    ("--azure-allow-http", "azure_allow_http", None,
     {"is_flag": True, "help": "Allow an http:// --azure-endpoint (no TLS)."}),
    ("--object-store-connection-limit", "object_store_connection_limit",
     "INFLUXDB3_OBJECT_STORE_CONNECTION_LIMIT",
     {"type": click.IntRange(min=1), "default": 16, "show_default": True,
      "help": "Most requests to the object store at once."}),
    ("--object-store-max-retries", "object_store_max_retries",
     "INFLUXDB3_OBJECT_STORE_MAX_RETRIES",
     {"type": click.IntRange(min=0), "metavar": "N",
      "help": "Retries of a failed object-store request [default: 10]."}),
    ("--object-store-retry-timeout", "object_store_retry_timeout",
     "INFLUXDB3_OBJECT_STORE_RETRY_TIMEOUT",
     {"callback": _duration, "metavar": "DURATION",
      "help": "Stop retrying a request after this long [default: 3m]."}),
    ("--object-store-slow-warning", "object_store_slow_warning",
     "WEIR_OBJECT_STORE_SLOW_WARNING",
     {"callback": _duration, "metavar": "DURATION",
      "help": "Log a warning naming any object-store request (retries included) still "
              "waiting after this long; 0 never [default: 10s]. Weir only."}),
    ("--object-store-http2-only", "object_store_http2_only",
     "INFLUXDB3_OBJECT_STORE_HTTP2_ONLY",
     {"is_flag": True, "help": "Speak only HTTP/2 to the object store."}),
    ("--object-store-tls-allow-insecure", "object_store_tls_allow_insecure",
     "INFLUXDB3_OBJECT_STORE_TLS_ALLOW_INSECURE",
     {"is_flag": True, "help": "Accept any TLS certificate from the object store (testing "
                               "only)."}),
    ("--object-store-tls-ca", "object_store_tls_ca", "INFLUXDB3_OBJECT_STORE_TLS_CA",
     {"metavar": "FILE", "help": "PEM file of CA certificates to trust besides the "
                                 "system's."}),
]

#: every flag declared here (serve's tests and `--help-all` account for them)
OBJECT_STORE_FLAGS: list[str] = ["--object-store", "--data-dir"] + [f for f, *_ in _CLOUD_FLAGS]


def object_store_options(*, data_dir_help: str) -> Callable[[CommandFunc], CommandFunc]:
    """The decorator adding every object-store flag to a command."""

    def add(f: CommandFunc) -> CommandFunc:
        for flag, name, env, extra in reversed(_CLOUD_FLAGS):
            f = click.option(flag, name, envvar=env, show_envvar=env is not None,
                             **extra)(f)
        f = click.option("--data-dir", envvar="INFLUXDB3_DB_DIR", default=None,
                         show_envvar=True, metavar="DIR", help=data_dir_help)(f)
        return click.option(
            "--object-store", envvar="INFLUXDB3_OBJECT_STORE", default="file",
            show_default=True, show_envvar=True, type=click.Choice(OBJECT_STORES),
            help="Where the WAL, catalog and Parquet files are kept: file (--data-dir), "
                 "memory, or a bucket of s3, google or azure (--bucket).")(f)

    return add


def _usage(message: str) -> click.UsageError:
    return click.UsageError(message, click.get_current_context(silent=True))


def _endpoint(flag: str, url: str | None, allow_http: bool, allow_flag: str) -> None:
    if url is None:
        return
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{url!r} is not an http:// or https:// URL "
                                 "(e.g. http://127.0.0.1:8333)", param_hint=f"'{flag}'")
    if parts.scheme == "http" and not allow_http:
        raise _usage(f"{flag} {url} is plain HTTP: add {allow_flag} to allow it, or use "
                     "https://")


def object_store_config(kw: Mapping[str, Any], store: str) -> ObjectStoreConfig:
    """The cloud flags of `kw` (a command's parsed options) checked against `--object-store
    store`: a bad combination is a usage error naming the flag."""
    tls_ca = kw.get("object_store_tls_ca")
    o = ObjectStoreConfig(
        bucket=kw.get("bucket") or None,
        aws_access_key_id=kw.get("aws_access_key_id") or None,
        aws_secret_access_key=kw.get("aws_secret_access_key") or None,
        aws_session_token=kw.get("aws_session_token") or None,
        aws_default_region=kw.get("aws_default_region") or "us-east-1",
        aws_endpoint=kw.get("aws_endpoint") or None,
        aws_allow_http=bool(kw.get("aws_allow_http")),
        aws_skip_signature=bool(kw.get("aws_skip_signature")),
        azure_storage_account=kw.get("azure_storage_account") or None,
        azure_storage_access_key=kw.get("azure_storage_access_key") or None,
        azure_endpoint=kw.get("azure_endpoint") or None,
        azure_allow_http=bool(kw.get("azure_allow_http")),
        google_service_account=kw.get("google_service_account") or None,
        connection_limit=kw.get("object_store_connection_limit") or 16,
        max_retries=kw.get("object_store_max_retries"),
        retry_timeout=kw.get("object_store_retry_timeout"),
        slow_warning=(ObjectStoreConfig.slow_warning
                      if kw.get("object_store_slow_warning") is None
                      else kw["object_store_slow_warning"]),
        http2_only=bool(kw.get("object_store_http2_only")),
        tls_allow_insecure=bool(kw.get("object_store_tls_allow_insecure")),
        tls_ca=Path(tls_ca).expanduser() if tls_ca else None,
    )
    if store not in CLOUD_STORES:
        return o
    if not o.bucket:
        what = "container" if store == "azure" else "bucket"
        raise _usage(f"--object-store {store} needs --bucket (or INFLUXDB3_BUCKET): the "
                     f"{what} to keep the data in")
    if store == "azure" and not o.azure_storage_account:
        raise _usage("--object-store azure needs --azure-storage-account (or "
                     "AZURE_STORAGE_ACCOUNT)")
    _endpoint("--aws-endpoint", o.aws_endpoint, o.aws_allow_http, "--aws-allow-http")
    _endpoint("--azure-endpoint", o.azure_endpoint, o.azure_allow_http, "--azure-allow-http")
    if o.tls_ca is not None and not o.tls_ca.is_file():
        raise click.BadParameter(f"{o.tls_ca} is not a readable file",
                                 param_hint="'--object-store-tls-ca'")
    return o
