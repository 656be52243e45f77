"""create / delete / show / enable / disable / update: databases, tables, triggers, tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from weir.cli.client import (
    FORMAT_CHOICE,
    Client,
    client_options,
    database_option,
    fail,
    key_values,
)

CTX = {"help_option_names": ["-h", "--help"]}


def _print_body(r: Any) -> None:
    text = r.content.decode("utf-8", "replace")
    click.echo(text)


def _query(client: Client, db: str, sql: str, fmt: str, context: str) -> Any:
    return client.ok("POST", "/api/v3/query_sql", context,
                     json_body={"db": db, "q": sql, "format": fmt})


# ---- create ----------------------------------------------------------------------------


@click.group(context_settings=CTX)
def create() -> None:
    """Create a database, table, trigger or token.

    \b
    Example:
      influxdb3 create database mydb
    """


@create.command("database", context_settings=CTX)
@click.option("--retention-period", default=None, help="e.g. 30d; data older is dropped.")
@click.argument("name")
@client_options
def create_database(client: Client, name: str, retention_period: str | None) -> None:
    """Create a database.

    \b
    Example:
      influxdb3 create database mydb --retention-period 30d
    """
    body: dict[str, Any] = {"db": name}
    if retention_period:
        body["retention_period"] = retention_period
    client.ok("POST", "/api/v3/configure/database", "Failed to create database", json_body=body)
    click.echo(f'Database "{name}" created successfully')


@create.command("table", context_settings=CTX)
@database_option()
@click.option("--tags", default="", help="Comma-separated tag column names.")
@click.option("-f", "--fields", default="", help="name:type,... with type int64, uint64, "
              "float64, utf8 or bool.")
@click.argument("name")
@client_options
def create_table(client: Client, database: str, name: str, tags: str, fields: str) -> None:
    """Create a table with the given tag and field columns.

    \b
    Example:
      influxdb3 create table cpu -d mydb --tags host,region --fields usage:float64,cores:int64
    """
    field_list = []
    for item in [f for f in fields.split(",") if f]:
        fname, colon, ftype = item.partition(":")
        if not colon or ftype not in ("int64", "uint64", "float64", "utf8", "bool"):
            raise click.BadParameter(f"expected name:type with type int64, uint64, float64, "
                                     f"utf8 or bool, got {item!r}", param_hint="--fields")
        field_list.append({"name": fname, "type": ftype})
    client.ok("POST", "/api/v3/configure/table", "Failed to create table", json_body={
        "db": database, "table": name, "tags": [t for t in tags.split(",") if t],
        "fields": field_list})
    click.echo(f'Table "{database}"."{name}" created successfully')


def canonical_spec(spec: str) -> str:
    from weir.engine.specs import parse_trigger_spec

    try:
        return parse_trigger_spec(spec).canonical()
    except Exception as e:
        raise click.BadParameter(str(e), param_hint="--trigger-spec") from None


def _upload(client: Client, database: str, path: str) -> str:
    """Send a local plugin file or package directory; return the name the server uses."""
    p = Path(path).expanduser()
    if not p.exists():
        fail(f"Failed to create trigger: plugin path not found: {path}")
    if p.is_file():
        client.ok("POST", "/api/v3/plugins/files", "Failed to upload plugin",
                  params={"db": database},
                  json_body={"plugin_name": p.name, "content": p.read_text()})
        return p.name
    if not (p / "__init__.py").is_file():
        fail(f"Failed to create trigger: plugin directory {path} must contain __init__.py")
    for f in sorted(p.rglob("*.py")):
        if "__pycache__" in f.parts:
            continue
        rel = f"{p.name}/{f.relative_to(p).as_posix()}"
        client.ok("POST", "/api/v3/plugins/files", "Failed to upload plugin",
                  params={"db": database}, json_body={"plugin_name": rel, "content": f.read_text()})
    return p.name


@create.command("trigger", context_settings=CTX)
@database_option()
@click.option("--trigger-spec", required=True,
              help="table:NAME | all_tables | every:DURATION | cron:EXPR | request:PATH | "
                   "parquet:all_tables | parquet:NAME")
@click.option("--path", "--plugin", "path", default=None,
              help="Plugin file or directory (or gh:...), relative to the plugin dir.")
@click.option("--plugin-filename", default=None, help="Older name of --path.")
@click.option("--trigger-arguments", default=None, help="k=v,k2=v2 passed to the plugin.")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@click.option("--run-asynchronous", is_flag=True, help="Let invocations overlap.")
@click.option("--error-behavior", type=click.Choice(["log", "retry", "disable"]),
              default="log", show_default=True)
@click.option("--upload", is_flag=True, help="Send the local --path to the server first.")
@click.argument("trigger_name")
@client_options
def create_trigger(client: Client, database: str, trigger_spec: str, path: str | None,
                   plugin_filename: str | None, trigger_arguments: str | None, disabled: bool,
                   run_asynchronous: bool, error_behavior: str, upload: bool,
                   trigger_name: str) -> None:
    """Create a processing-engine trigger that runs a plugin.

    \b
    Example:
      influxdb3 create trigger --database mydb --path examples/wal_plugin/wal_plugin.py \\
        --trigger-spec all_tables --trigger-arguments double_count_table=cpu my_trigger
    """
    plugin = path or plugin_filename
    if not plugin:
        raise click.UsageError("give the plugin with --path (or --plugin-filename)")
    spec = canonical_spec(trigger_spec)
    args = key_values(trigger_arguments, "--trigger-arguments")
    if upload:
        plugin = _upload(client, database, plugin)
    body = {"db": database, "plugin_filename": plugin, "trigger_name": trigger_name,
            "trigger_specification": spec, "trigger_arguments": args,
            "trigger_settings": {"run_async": run_asynchronous, "error_behavior": error_behavior},
            "disabled": disabled}
    client.ok("POST", "/api/v3/configure/processing_engine_trigger",
              "Failed to create trigger", json_body=body)
    click.echo(f"Trigger {trigger_name} created successfully")


@create.command("token", context_settings=CTX)
@click.option("--admin", is_flag=True, help="Create the operator (admin) token.")
@click.option("--regenerate", is_flag=True, help="Replace the operator token.")
@click.option("--name", default=None, help="Name of a named admin or scoped token.")
@click.option("--permission", "permissions", multiple=True,
              help="db:<db,...|*>:<read,write> — a database-scoped token (repeatable).")
@click.option("--expiry", default=None, help="Lifetime, e.g. 7d (default: never expires).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before regenerating.")
@client_options
def create_token(client: Client, admin: bool, regenerate: bool, name: str | None,
                 permissions: tuple[str, ...], expiry: str | None, fmt: str, yes: bool) -> None:
    """Create a token (printed once; store it safely).

    \b
    Example:
      influxdb3 create token --admin
      influxdb3 create token --name ingest --permission "db:sensors:write" --expiry 30d
    """
    body: dict[str, Any] = {}
    if expiry:
        body["expiry"] = expiry
    if permissions:
        if admin:
            raise click.UsageError("--permission makes a scoped token; leave out --admin")
        if not name:
            raise click.UsageError("a scoped token needs --name")
        body.update(token_name=name, permissions=list(permissions))
        r = client.ok("POST", "/api/v3/configure/token", "Failed to create token",
                      json_body=body)
    elif not admin:
        fail("Missing required subcommand. Use: influxdb3 create token --admin [OPTIONS]", 2)
    elif regenerate:
        if not yes and input("Are you sure you want to regenerate the operator token? "
                             "Enter 'yes' to confirm: ").strip().lower() not in ("yes", "y"):
            fail("Cancelled")
        r = client.ok("POST", "/api/v3/configure/token/admin/regenerate",
                      "Failed to create token")
    elif name:
        body["token_name"] = name
        r = client.ok("POST", "/api/v3/configure/token/named_admin", "Failed to create token",
                      json_body=body)
    else:
        r = client.ok("POST", "/api/v3/configure/token/admin", "Failed to create token")
    token = r.json().get("token", "")
    if fmt == "json":
        click.echo(json.dumps({"token": token, "help_msg": _token_help(token)}, indent=2))
    else:
        click.echo(f"\nNew token created successfully!\n\nToken: {token}\n"
                   f"HTTP Requests Header: Authorization: Bearer {token}\n\n"
                   f"IMPORTANT: Store this token securely, as it will not be shown again.\n")


def _token_help(token: str) -> str:
    return f"Store this token securely. HTTP header: Authorization: Bearer {token}"


# ---- delete ----------------------------------------------------------------------------


@click.group(context_settings=CTX)
def delete() -> None:
    """Delete a database, table, trigger or token.

    \b
    Example:
      influxdb3 delete database mydb --yes
    """


def _confirm(yes: bool, what: str) -> None:
    if yes:
        return
    answer = click.prompt(f"Are you sure you want to delete {what}? Enter 'yes' to confirm",
                          default="", show_default=False)
    if answer.strip().lower() not in ("yes", "y"):
        fail("Cannot delete: not confirmed", 1)


@delete.command("database", context_settings=CTX)
@click.option("--hard-delete", default=None, help="never | now | default | RFC3339 time")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.argument("name")
@client_options
def delete_database(client: Client, name: str, hard_delete: str | None, yes: bool) -> None:
    """Delete a database (its triggers are disabled).

    \b
    Example:
      influxdb3 delete database mydb --yes
    """
    _confirm(yes, f'database "{name}"')
    params = {"db": name}
    if hard_delete:
        params["hard_delete_at"] = hard_delete
    client.ok("DELETE", "/api/v3/configure/database", "Failed to delete database", params=params)
    click.echo(f'Database "{name}" deleted successfully')


@delete.command("table", context_settings=CTX)
@database_option()
@click.option("--hard-delete", default=None)
@click.option("-y", "--yes", is_flag=True)
@click.argument("name")
@client_options
def delete_table(client: Client, database: str, name: str, hard_delete: str | None,
                 yes: bool) -> None:
    """Delete a table.

    \b
    Example:
      influxdb3 delete table cpu --database mydb --yes
    """
    _confirm(yes, f'table "{database}"."{name}"')
    client.ok("DELETE", "/api/v3/configure/table", "Failed to delete table",
              params={"db": database, "table": name})
    click.echo(f'Table "{database}"."{name}" deleted successfully')


@delete.command("trigger", context_settings=CTX)
@database_option()
@click.option("--force", is_flag=True, help="Delete even if it is enabled.")
@click.argument("name")
@client_options
def delete_trigger(client: Client, database: str, name: str, force: bool) -> None:
    """Delete a trigger (disable it first, or use --force).

    \b
    Example:
      influxdb3 delete trigger my_trigger --database mydb --force
    """
    client.ok("DELETE", "/api/v3/configure/processing_engine_trigger",
              "Failed to delete trigger",
              json_body={"db": database, "trigger_name": name, "force": force})
    click.echo(f"Trigger {name} deleted successfully")


@delete.command("token", context_settings=CTX)
@click.option("--token-name", required=True)
@click.option("-y", "--yes", is_flag=True)
@client_options
def delete_token(client: Client, token_name: str, yes: bool) -> None:
    """Delete a named token.

    \b
    Example:
      influxdb3 delete token --token-name ci --yes
    """
    if token_name == "_admin":
        click.echo("Cannot delete the operator token _admin; regenerate it instead with "
                   "`influxdb3 create token --admin --regenerate`")
        return
    _confirm(yes, f'token "{token_name}"')
    client.ok("DELETE", "/api/v3/configure/token", "Failed to delete token",
              params={"token_name": token_name})
    click.echo(f'Token "{token_name}" deleted successfully')


# ---- enable / disable ------------------------------------------------------------------------


def _toggle(verb: str) -> click.Group:
    @click.group(name=verb, context_settings=CTX)
    def group() -> None:
        pass

    group.__doc__ = f"""{verb.capitalize()} a trigger.

    \b
    Example:
      influxdb3 {verb} trigger my_trigger --database mydb
    """

    @group.command("trigger", context_settings=CTX)
    @database_option()
    @click.argument("name")
    @client_options
    def toggle_trigger(client: Client, database: str, name: str) -> None:
        client.ok("POST", f"/api/v3/configure/processing_engine_trigger/{verb}",
                  f"Failed to {verb} trigger", params={"db": database, "trigger_name": name})
        click.echo(f"Trigger {name} {verb}d successfully")

    toggle_trigger.help = (f"{verb.capitalize()} a trigger.\n\n\b\nExample:\n"
                           f"  influxdb3 {verb} trigger my_trigger --database mydb")
    return group


enable = _toggle("enable")
disable = _toggle("disable")


# ---- show ---------------------------------------------------------------------------------


@click.group(context_settings=CTX)
def show() -> None:
    """Show databases, triggers, plugins, tokens and system tables.

    \b
    Example:
      influxdb3 show databases
    """


@show.command("databases", context_settings=CTX)
@click.option("--show-deleted", is_flag=True)
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="pretty", show_default=True)
@client_options
def show_databases(client: Client, show_deleted: bool, fmt: str) -> None:
    """List databases.

    \b
    Example:
      influxdb3 show databases --format json
    """
    r = client.ok("GET", "/api/v3/configure/database", "Failed to list databases",
                  params={"format": fmt, "show_deleted": str(show_deleted).lower()})
    _print_body(r)


@show.command("summary", context_settings=CTX)
@database_option()
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="pretty", show_default=True)
@client_options
def show_summary(client: Client, database: str, fmt: str) -> None:
    """Summarise a database: its tables and its processing-engine triggers.

    \b
    Example:
      influxdb3 show summary --database mydb
    """
    click.echo("Tables:")
    _print_body(_query(client, database,
                       "SELECT table_name FROM information_schema.tables "
                       "WHERE table_schema = 'iox' ORDER BY table_name", fmt,
                       "Failed to show summary"))
    click.echo("Triggers:")
    _print_body(_query(client, database,
                       "SELECT trigger_name, plugin_filename, trigger_specification, disabled, "
                       "error_behavior FROM system.processing_engine_triggers "
                       "ORDER BY trigger_name", fmt, "Failed to show summary"))


@show.command("plugins", context_settings=CTX)
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="pretty", show_default=True)
@client_options
def show_plugins(client: Client, fmt: str) -> None:
    """List the plugin files used by triggers.

    \b
    Example:
      influxdb3 show plugins
    """
    _print_body(_query(client, "_internal", "SELECT * FROM system.plugin_files", fmt,
                       "Failed to show plugins"))


@show.command("tokens", context_settings=CTX)
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="pretty", show_default=True)
@client_options
def show_tokens(client: Client, fmt: str) -> None:
    """List tokens (never their secret values).

    \b
    Example:
      influxdb3 show tokens
    """
    _print_body(_query(client, "_internal", "SELECT * FROM system.tokens", fmt,
                       "Failed to show tokens"))


@show.command("system", context_settings=CTX)
@database_option()
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="pretty", show_default=True)
@click.option("-l", "--limit", default=100, show_default=True, help="0 for no limit.")
@click.option("-o", "--order-by", default=None)
@click.option("-s", "--select", "select", default=None)
@click.argument("what", type=click.Choice(["table-list", "table", "summary"]))
@click.argument("table", required=False)
@client_options
def show_system(client: Client, database: str, fmt: str, limit: int, order_by: str | None,
                select: str | None, what: str, table: str | None) -> None:
    """Show the system tables of a database.

    \b
    Example:
      influxdb3 show system --database mydb table-list
      influxdb3 show system --database mydb table parquet_files --limit 10
    """
    if what == "table-list":
        sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'system' "
               "ORDER BY table_name")
    elif what == "table":
        if not table:
            raise click.UsageError("give the system table name: show system table NAME")
        sql = f"SELECT {select or '*'} FROM system.{table}"
        if order_by:
            sql += f" ORDER BY {order_by}"
        if limit:
            sql += f" LIMIT {limit}"
    else:
        for name in ("processing_engine_triggers", "parquet_files"):
            click.echo(f"{name}:")
            _print_body(_query(client, database, f"SELECT * FROM system.{name} LIMIT {limit}",
                               fmt, "Failed to show system summary"))
        return
    _print_body(_query(client, database, sql, fmt, "Failed to show system table"))


# ---- update ----------------------------------------------------------------------------------


@click.group(context_settings=CTX)
def update() -> None:
    """Update a database's retention or a trigger's plugin code.

    \b
    Example:
      influxdb3 update database -d mydb --retention-period 7d
    """


@update.command("database", context_settings=CTX)
@database_option()
@click.option("-r", "--retention-period", required=True, help="A duration, or none.")
@client_options
def update_database(client: Client, database: str, retention_period: str) -> None:
    """Change a database's retention period.

    \b
    Example:
      influxdb3 update database -d mydb --retention-period 7d
    """
    body: dict[str, Any] = {"db": database}
    if retention_period.lower() != "none":
        body["retention_period"] = retention_period
    client.ok("PUT", "/api/v3/configure/database", "Failed to update database", json_body=body)
    click.echo(f'Database "{database}" updated successfully')


@update.command("trigger", context_settings=CTX)
@database_option()
@click.option("-t", "--trigger-name", required=True)
@click.option("-p", "--path", "path", required=True, help="Local plugin file or directory.")
@client_options
def update_trigger(client: Client, database: str, trigger_name: str, path: str) -> None:
    """Replace a trigger's plugin code with a local file or directory.

    \b
    Example:
      influxdb3 update trigger -d mydb -t my_trigger -p ./my_plugin.py
    """
    p = Path(path).expanduser()
    if p.is_file():
        client.ok("PUT", "/api/v3/plugins/files", "Failed to update trigger",
                  params={"db": database},
                  json_body={"plugin_name": trigger_name, "content": p.read_text()})
        click.echo(f"Trigger '{trigger_name}' updated successfully")
    elif p.is_dir():
        if not (p / "__init__.py").is_file():
            fail(f"Failed to update trigger: {path} must contain __init__.py")
        files = [{"relative_path": f.relative_to(p).as_posix(), "content": f.read_text()}
                 for f in sorted(p.rglob("*.py")) if "__pycache__" not in f.parts]
        client.ok("PUT", "/api/v3/plugins/directory", "Failed to update trigger",
                  params={"db": database},
                  json_body={"plugin_name": trigger_name, "files": files})
        click.echo(f"Trigger '{trigger_name}' updated successfully (atomic directory replacement)")
    else:
        fail(f"Failed to update trigger: {path} not found")


__all__ = ["create", "delete", "disable", "enable", "key_values", "show", "update"]
