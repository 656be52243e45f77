"""create / delete / enable / disable / update for databases, tables, caches and tokens.
(The trigger subcommands are in `weir.cli.engine`.)"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from weir.cli.base import comma_list, command, fail, group, quoted
from weir.cli.client import Client, client_options, database_option, print_json
from weir.cli.serve import DURATION
from weir.config import DurationError, parse_duration

if TYPE_CHECKING:
    import httpx

# weir.engine.specs (croniter, ~80 ms) and weir.catalog (pyarrow, ~0.5 s) are imported inside
# the functions that use them, not here, so that `influxdb3 --help` and the commands that
# never need them start without loading them.


def humantime(seconds: float) -> str:
    """Seconds in the humantime form the reference's client sends (`30days`, `1h 30m`)."""
    from weir.engine.specs import format_humantime

    return format_humantime(round(seconds * 1e9))


def retention_value(text: str, flag: str) -> str:
    try:
        secs = parse_duration(text)
    except DurationError as e:
        raise click.BadParameter(str(e), param_hint=f"'{flag}'") from None
    if secs <= 0:
        raise click.BadParameter("must be greater than zero", param_hint=f"'{flag}'")
    return humantime(secs)


def confirm(message: str, yes: bool) -> None:
    """The reference's prompt: the question on stderr, then `yes` or `y` on stdin."""
    if yes:
        return
    click.echo(message, err=True)
    answer = sys.stdin.readline()
    if answer.strip().lower() not in ("yes", "y"):
        fail("Cannot proceed without confirmation")


def hard_delete_value(text: str | None) -> str | None:
    """`--hard-delete` checked here, so a typo is a usage error before anything is
    deleted: never, now, default or an RFC 3339 time, sent as `hard_delete_at`."""
    if text is None:
        return None
    low = text.strip().lower()
    if low in ("never", "now", "default"):
        return low
    from weir.catalog import parse_rfc3339_ns

    try:
        parse_rfc3339_ns(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not never, now, default or an RFC 3339 time "
            "(e.g. 2025-12-31T23:59:59Z)", param_hint="'--hard-delete'") from None
    return text.strip()


_HARD_DELETE_HELP = ("When the data goes for good: never (soft delete only), now, default "
                     "(after the server's --hard-delete-default-duration, 72h unless set; "
                     "also when not given) or an RFC 3339 time.")


# ---- groups -------------------------------------------------------------------------------


@group("create", example="influxdb3 create database mydb")
def create() -> None:
    """Create a database, table, trigger, cache or token."""


@group("delete", example="influxdb3 delete database mydb --yes")
def delete() -> None:
    """Delete a database, table, trigger, cache or token."""


@group("enable", example="influxdb3 enable trigger --database mydb my_trigger")
def enable() -> None:
    """Enable a processing-engine trigger."""


@group("disable", example="influxdb3 disable trigger --database mydb my_trigger")
def disable() -> None:
    """Disable a processing-engine trigger."""


@group("update", example="influxdb3 update database --database mydb --retention-period 7d")
def update() -> None:
    """Update a database's retention period or a trigger's plugin code."""


# ---- databases ----------------------------------------------------------------------------


def _database_name(name: str | None, database: str | None) -> str:
    if name and database and name != database:
        raise click.UsageError(f"two database names given: {name!r} and {database!r}")
    if not (name or database):
        raise click.UsageError("give the database name, e.g. `mydb` "
                               "(or set INFLUXDB3_DATABASE_NAME)")
    return name or database  # type: ignore[return-value]


@command(create, "database", example="influxdb3 create database mydb --retention-period 30d")
@click.argument("name", envvar="INFLUXDB3_DATABASE_NAME", required=False)
@click.option("-d", "--database", hidden=True, default=None)
@click.option("--retention-period", default=None, metavar="DURATION",
              help="Drop data older than this (e.g. 30d, 24h).")
@client_options
def create_database(client: Client, name: str | None, database: str | None,
                    retention_period: str | None) -> None:
    """Create a database. Names start with a letter or digit; then letters, digits,
    `_` and `-`."""
    name = _database_name(name, database)
    body: dict[str, Any] = {"db": name, "retention_period": None}
    if retention_period is not None:
        body["retention_period"] = retention_value(retention_period, "--retention-period")
    client.ok("POST", "/api/v3/configure/database", "Failed to create database", json_body=body)
    click.echo(f"Database {quoted(name)} created successfully")


@command(delete, "database", example="influxdb3 delete database mydb --yes")
@click.argument("name", envvar="INFLUXDB3_DATABASE_NAME", required=False)
@click.option("-d", "--database", hidden=True, default=None)
@click.option("--hard-delete", default=None, metavar="WHEN", help=_HARD_DELETE_HELP)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@client_options
def delete_database(client: Client, name: str | None, database: str | None,
                    hard_delete: str | None, yes: bool) -> None:
    """Delete a database. Its triggers are disabled; its data goes now or later
    (--hard-delete)."""
    name = _database_name(name, database)
    confirm(f"Are you sure you want to delete {quoted(name)}? Enter 'yes' or 'y' to confirm",
            yes)
    params = {"db": name}
    if hard_delete is not None:
        params["hard_delete_at"] = hard_delete_value(hard_delete)  # type: ignore[assignment]
    client.ok("DELETE", "/api/v3/configure/database", "Failed to delete database",
              params=params)
    click.echo(f"Database {quoted(name)} deleted successfully")


@command(update, "database",
         example="influxdb3 update database --database mydb --retention-period 7d")
@database_option()
@click.option("-r", "--retention-period", required=True, metavar="DURATION|none",
              help="New retention period (e.g. 30d), or `none` to keep data forever.")
@client_options
def update_database(client: Client, database: str, retention_period: str) -> None:
    """Change a database's retention period."""
    body: dict[str, Any] = {"db": database, "retention_period": None}
    if retention_period.strip().lower() != "none":
        body["retention_period"] = retention_value(retention_period, "--retention-period")
    client.ok("PUT", "/api/v3/configure/database", "Failed to update database", json_body=body)
    click.echo(f"Database {quoted(database)} updated successfully")


# ---- tables -------------------------------------------------------------------------------

FIELD_TYPES = ("int64", "uint64", "float64", "utf8", "bool")


def parse_fields(values: str | Sequence[str] | None) -> list[dict[str, str]]:
    out = []
    for item in comma_list(values):
        name, colon, ftype = item.partition(":")
        if not colon:
            raise click.BadParameter(f"invalid FIELD:VALUE. No `:` found in `{item}`",
                                     param_hint="'--fields'")
        if ftype not in FIELD_TYPES:
            raise click.BadParameter(f"{ftype} is not a valid data type, values are int64, "
                                     "uint64, float64, utf8, and bool", param_hint="'--fields'")
        out.append({"name": name, "type": ftype})
    return out


@command(create, "table", example="influxdb3 create table cpu --database mydb "
                                  "--tags host,region --fields usage:float64,cores:int64")
@database_option()
@click.option("--tags", multiple=True, metavar="TAG,...",
              help="Tag column names (comma-separated, or repeat the flag).")
@click.option("-f", "--fields", multiple=True, metavar="NAME:TYPE,...",
              help="Field columns; types int64, uint64, float64, utf8, bool (comma-separated, "
                   "or repeat the flag).")
@click.argument("name")
@client_options
def create_table(client: Client, database: str, tags: tuple[str, ...],
                 fields: tuple[str, ...], name: str) -> None:
    """Create a table with the given tag and field columns."""
    body = {"db": database, "table": name, "tags": comma_list(tags),
            "fields": parse_fields(fields)}
    client.ok("POST", "/api/v3/configure/table", "Failed to create table", json_body=body)
    click.echo(f"Table {quoted(database)}.{quoted(name)} created successfully")


@command(delete, "table", example="influxdb3 delete table cpu --database mydb --yes")
@database_option()
@click.option("--hard-delete", default=None, metavar="WHEN", help=_HARD_DELETE_HELP)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.argument("name")
@client_options
def delete_table(client: Client, database: str, hard_delete: str | None, yes: bool,
                 name: str) -> None:
    """Delete a table."""
    confirm(f"Are you sure you want to delete {quoted(database)}.{quoted(name)}? "
            "Enter 'yes' or 'y' to confirm", yes)
    params = {"db": database, "table": name}
    if hard_delete is not None:
        params["hard_delete_at"] = hard_delete_value(hard_delete)  # type: ignore[assignment]
    client.ok("DELETE", "/api/v3/configure/table", "Failed to delete table", params=params)
    click.echo(f"Table {quoted(database)}.{quoted(name)} deleted successfully")


# ---- caches -------------------------------------------------------------------------------


def _cache_created(r: httpx.Response) -> None:
    if r.status_code == 204 or not r.content:
        click.echo("a cache already exists for the provided parameters")
        return
    try:
        click.echo(f"new cache created: {json.dumps(r.json(), indent=2, ensure_ascii=False)}")
    except ValueError:
        click.echo(f"new cache created: {r.text}")


@command(create, "last_cache", example="influxdb3 create last_cache --database mydb "
                                       "--table cpu --key-columns host --value-columns usage")
@database_option()
@click.option("-t", "--table", required=True, help="Table the cache is for.")
@click.option("--key-columns", multiple=True, metavar="COL,...",
              help="Key columns (comma-separated, or repeat the flag).")
@click.option("--value-columns", multiple=True, metavar="COL,...",
              help="Value columns (comma-separated, or repeat the flag).")
@click.option("--count", default=1, type=click.IntRange(min=1), show_default=True,
              help="Values kept per key (more use more memory).")
@click.option("--ttl", default="4 hours", type=DURATION, show_default=True,
              help="How long entries live.")
@click.argument("cache_name", required=False)
@client_options
def create_last_cache(client: Client, database: str, table: str,
                      key_columns: tuple[str, ...], value_columns: tuple[str, ...], count: int,
                      ttl: float,
                      cache_name: str | None) -> None:
    """Create a last-value cache."""
    body: dict[str, Any] = {"db": database, "table": table}
    if cache_name:
        body["name"] = cache_name
    if key_columns:  # not given: not sent, and the server picks them
        body["key_columns"] = comma_list(key_columns)
    if value_columns:
        body["value_columns"] = comma_list(value_columns)
    body.update(count=count, ttl=int(ttl))
    _cache_created(client.ok("POST", "/api/v3/configure/last_cache",
                             "Failed to create last cache", json_body=body))


@command(create, "distinct_cache", example="influxdb3 create distinct_cache --database mydb "
                                           "--table cpu --columns region,host")
@database_option()
@click.option("-t", "--table", required=True, help="Table the cache is for.")
@click.option("--columns", required=True, multiple=True, metavar="COL,...",
              help="Columns to cache distinct values of, top level first (comma-separated, "
                   "or repeat the flag).")
@click.option("--max-cardinality", default=100000, type=click.IntRange(min=1),
              show_default=True, help="Most value combinations kept.")
@click.option("--max-age", default="1d", type=DURATION, show_default=True,
              help="How long entries live.")
@click.argument("cache_name", required=False)
@client_options
def create_distinct_cache(client: Client, database: str, table: str, columns: tuple[str, ...],
                          max_cardinality: int, max_age: float, cache_name: str | None) -> None:
    """Create a distinct-value cache."""
    body: dict[str, Any] = {"db": database, "table": table}
    if cache_name:
        body["name"] = cache_name
    body.update(columns=comma_list(columns), max_cardinality=max_cardinality,
                max_age=int(max_age))
    _cache_created(client.ok("POST", "/api/v3/configure/distinct_cache",
                             "Failed to create distinct cache", json_body=body))


def _delete_cache(kind: str) -> None:
    path = f"/api/v3/configure/{kind}_cache"

    @command(delete, f"{kind}_cache",
             example=f"influxdb3 delete {kind}_cache --database mydb --table cpu my_cache")
    @database_option()
    @click.option("-t", "--table", required=True, help="Table the cache is for.")
    @click.argument("cache_name")
    @client_options
    def delete_cache(client: Client, database: str, table: str, cache_name: str) -> None:
        client.ok("DELETE", path, f"Failed to delete {kind} cache",
                  json_body={"db": database, "table": table, "name": cache_name})
        click.echo(f"{kind} cache deleted successfully")

    delete_cache.help = f"Delete a {kind}-value cache."


_delete_cache("last")
_delete_cache("distinct")


# ---- tokens -------------------------------------------------------------------------------


def new_token() -> str:
    """`apiv3_` + URL-safe base64 (no padding) of 64 random bytes, as the reference makes."""
    return "apiv3_" + base64.urlsafe_b64encode(secrets.token_bytes(64)).decode().rstrip("=")


def print_token(token: str, fmt: str) -> None:
    if fmt == "json":
        help_msg = ("Store this token securely, as it will not be shown again. HTTP requests "
                    f'require the following header: "Authorization: Bearer {token}"')
        print_json({"token": token, "help_msg": help_msg})
        return
    title = click.style("New token created successfully!", underline=True)
    click.echo(f"\n{title}\n\n"
               f"{click.style('Token:', bold=True)} {token}\n"
               f"{click.style('HTTP Requests Header:', bold=True)} Authorization: Bearer {token}"
               f"\n\n{click.style('IMPORTANT:', fg='red', bold=True)} Store this token securely, "
               "as it will not be shown again.\n")


def _write_token_file(path: Path, token: str, name: str, expiry_millis: int | None) -> None:
    content: dict[str, Any] = {"token": token, "name": name}
    if expiry_millis is not None:
        content["expiry_millis"] = expiry_millis
    path = path.expanduser()
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(content, indent=2))
        os.replace(tmp, path)
    except OSError as e:
        fail(f"Failed to create token: cannot write {path}: {e.strerror or e}")
    click.echo(f"Token saved to: {path}")


@command(create, "token", example=[
    "influxdb3 create token --admin",
    "influxdb3 create token --admin --regenerate --token OLD_TOKEN",
    'influxdb3 create token --name ingest --permission "db:sensors:write" --expiry 30d'])
@click.option("--admin", is_flag=True, help="Create the operator (admin) token.")
@click.option("--regenerate", is_flag=True,
              help="Replace the operator token (asks for 'yes'; needs --token).")
@click.option("--name", default=None, help="Create a named admin (or scoped) token instead.")
@click.option("--permission", "permissions", multiple=True, metavar="db:DB[,DB]:ACTIONS",
              help="Make a database-scoped token, e.g. db:sensors:read,write (repeatable).")
@click.option("--expiry", default=None, type=DURATION, metavar="DURATION",
              help="Named token expires after this long (e.g. 10d, 1y).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="How to print the token.")
@click.option("--offline", is_flag=True,
              help="Make the token here, without a server (needs --output-file).")
@click.option("--output-file", default=None, metavar="FILE",
              help="With --offline: write the token file `serve --admin-token-file` loads.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before regenerating.")
@client_options
def create_token(client: Client, admin: bool, regenerate: bool, name: str | None,
                 permissions: tuple[str, ...], expiry: float | None, fmt: str, offline: bool,
                 output_file: str | None, yes: bool) -> None:
    """Create an admin or database-scoped token. It is printed once: store it safely."""
    if permissions:
        if admin or not name:
            fail("error: a scoped token (--permission) needs --name and no --admin", 2)
        r = client.ok("POST", "/api/v3/configure/token", "Failed to create token",
                      json_body={"token_name": name, "permissions": list(permissions),
                                 "expiry_secs": int(expiry) if expiry else None})
        print_token(r.json()["token"], fmt)
        return
    if not admin:
        fail("Missing required subcommand. Use: influxdb3 create token --admin [OPTIONS]", 2)
    if offline:
        if not output_file:
            fail("error: --output-file is required with --offline", 2)
        token = new_token()
        expiry_ms = None
        if name and expiry:
            expiry_ms = int(time.time() * 1000) + int(expiry) * 1000
        _write_token_file(Path(output_file), token, name or "_admin", expiry_ms)
        print_token(token, fmt)
        return
    if regenerate:
        if not yes:
            click.echo("Are you sure you want to regenerate admin token? Enter 'yes' to confirm")
            if sys.stdin.readline().strip().lower() not in ("yes", "y"):
                fail("Failed to create token: Cannot regenerate token without confirmation")
        r = client.ok("POST", "/api/v3/configure/token/admin/regenerate",
                      "Failed to create token")
    elif name:
        r = client.ok("POST", "/api/v3/configure/token/named_admin", "Failed to create token",
                      json_body={"token_name": name,
                                 "expiry_secs": int(expiry) if expiry else None})
    else:
        r = client.ok("POST", "/api/v3/configure/token/admin", "Failed to create token")
    try:
        token = r.json()["token"]
    except (ValueError, KeyError, TypeError):
        fail(f"Failed to create token: the server's answer has no token: {r.text[:200]!r}")
    print_token(token, fmt)


@command(delete, "token", example="influxdb3 delete token --token-name ci --yes")
@click.option("--token-name", required=True, help="Name of the token to delete.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@client_options
def delete_token(client: Client, token_name: str, yes: bool) -> None:
    """Delete a named token."""
    if token_name == "_admin":
        click.echo('The operator token "_admin" is required and cannot be deleted. To '
                   "regenerate an operator token, use: influxdb3 create token --admin "
                   "--regenerate --token [TOKEN]")
        return
    confirm(f"Are you sure you want to delete {quoted(token_name)}? Enter 'yes' or 'y' to "
            "confirm", yes)
    client.ok("DELETE", "/api/v3/configure/token", "Failed to delete token",
              params={"token_name": token_name})
    click.echo(f"Token {quoted(token_name)} deleted successfully")
