"""`influxdb3 show ...`: databases, tokens, plugins, retention, system tables, and
Weir's `show summary` of a database's tables and triggers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypedDict

import click

from weir.cli.base import CommandFunc, comma_list, command, fail, group
from weir.cli.client import (
    FORMAT_CHOICE,
    WIRE_FORMAT,
    Client,
    client_options,
    database_option,
    describe_error,
    print_body,
    print_json,
)

if TYPE_CHECKING:
    import httpx

INTERNAL_DB = "_internal"

# weir.engine.specs is imported inside the functions that use it, not here: it loads
# croniter and dateutil (~80 ms), which `influxdb3 --help` and most commands never need.


def format_option(f: CommandFunc) -> CommandFunc:
    return click.option("--format", "fmt", type=FORMAT_CHOICE, default="pretty",
                        show_default=True, help="Output format.")(f)


def sql(client: Client, database: str, query: str, fmt: str, context: str
        ) -> httpx.Response:
    """POST /api/v3/query_sql with the JSON body the reference's client sends."""
    return client.ok("POST", "/api/v3/query_sql", context,
                     json_body={"db": database, "q": query, "format": WIRE_FORMAT[fmt],
                                "params": None})


def sql_rows(client: Client, database: str, query: str, context: str) -> list[dict[str, Any]]:
    r = sql(client, database, query, "json", context)
    try:
        rows = r.json()
    except ValueError:
        fail(f"{context}: the server's answer is not JSON: {r.text[:200]!r}")
    return rows if isinstance(rows, list) else []


@group("show", example="influxdb3 show databases")
def show() -> None:
    """Show databases, tokens, plugins, retention, system tables, or a database summary."""


@command(show, "databases", example="influxdb3 show databases --format json")
@click.option("--show-deleted", is_flag=True, help="Include soft-deleted databases.")
@format_option
@client_options
def show_databases(client: Client, show_deleted: bool, fmt: str) -> None:
    """List databases."""
    r = client.ok("GET", "/api/v3/configure/database", "Failed to list databases",
                  params={"show_deleted": str(show_deleted).lower(),
                          "format": WIRE_FORMAT[fmt]})
    _emit(r, fmt)


@command(show, "tokens", example="influxdb3 show tokens --token ADMIN_TOKEN")
@format_option
@client_options
def show_tokens(client: Client, fmt: str) -> None:
    """List tokens (never their secret values)."""
    _emit(sql(client, INTERNAL_DB, "select * from system.tokens", fmt, "Failed to show tokens"),
          fmt)


@command(show, "plugins", example="influxdb3 show plugins")
@format_option
@client_options
def show_plugins(client: Client, fmt: str) -> None:
    """List the plugin files of all triggers."""
    _emit(sql(client, INTERNAL_DB, "SELECT * FROM system.plugin_files", fmt,
              "Failed to show plugins"), fmt)


_RETENTION_SQL = (
    "SELECT database_name, CASE "
    "WHEN retention_period_ns IS NULL THEN 'infinite' "
    "WHEN CAST(retention_period_ns AS BIGINT) % 86400000000000 = 0 THEN "
    "CAST(CAST(retention_period_ns AS BIGINT) / 86400000000000 AS VARCHAR) || 'd' "
    "WHEN CAST(retention_period_ns AS BIGINT) % 3600000000000 = 0 THEN "
    "CAST(CAST(retention_period_ns AS BIGINT) / 3600000000000 AS VARCHAR) || 'h' "
    "WHEN CAST(retention_period_ns AS BIGINT) % 60000000000 = 0 THEN "
    "CAST(CAST(retention_period_ns AS BIGINT) / 60000000000 AS VARCHAR) || 'm' "
    "ELSE CAST(CAST(retention_period_ns AS BIGINT) / 1000000000 AS VARCHAR) || 's' "
    "END as retention_period FROM system.databases {where}ORDER BY database_name"
)


@command(show, "retention", example="influxdb3 show retention --database mydb")
@click.option("--database", default=None, help="Only this database.")
@format_option
@client_options
def show_retention(client: Client, database: str | None, fmt: str) -> None:
    """Show each database's retention period."""
    where = ""
    if database:
        where = "WHERE database_name = '{}' ".format(database.replace("'", "''"))
    _emit(sql(client, INTERNAL_DB, _RETENTION_SQL.format(where=where), fmt,
              "Failed to show retention"), fmt)


# ---- show system ----------------------------------------------------------------------------

SYS_TABLES_QUERY = (
    "SELECT table_name, array_agg(column_name) AS column_names FROM "
    "(SELECT table_name, column_name FROM information_schema.columns "
    "WHERE table_schema = 'system' ORDER BY table_name, column_name) "
    "GROUP BY table_name ORDER BY table_name"
)
_DEFAULT_ORDER = {"last_caches": "count", "parquet_files": "size_bytes",
                  "queries": "end2end_duration", "distinct_caches": "max_cardinality"}
_DEFAULT_FILTER = {"queries": "query_text !~ '.*(select.queries.|information_schema)*'"}


def _system_query(table: str, select: str | None, order_by: str | None, limit: int) -> str:
    clauses = [f'SELECT {select or "*"} FROM system."{table}"']
    if table in _DEFAULT_FILTER:
        clauses.append(f"WHERE {_DEFAULT_FILTER[table]}")
    if order_by:
        clauses.append(f"ORDER BY {order_by}")
    elif table in _DEFAULT_ORDER:
        clauses.append(f"ORDER BY {_DEFAULT_ORDER[table]}")
    if limit > 0:
        clauses.append(f"LIMIT {limit}")
    return "\n".join(clauses)


@group("system", example="influxdb3 show system --database mydb table-list")
@database_option(required=False)
@click.pass_context
def show_system(ctx: click.Context, database: str | None) -> None:
    """Show the system tables of a database (--database may come before or after the
    subcommand)."""
    ctx.obj = database


show.add_command(show_system)
show.aliases["s"] = "system"


def _db(ctx: click.Context, database: str | None) -> str:
    db = database or ctx.obj
    if not db:
        raise click.UsageError("Missing option '-d' / '--database' (or set "
                               "INFLUXDB3_DATABASE_NAME)")
    return db


@command(show_system, "table-list", example="influxdb3 show system --database mydb table-list")
@database_option(required=False)
@format_option
@client_options
@click.pass_context
def system_table_list(ctx: click.Context, client: Client, database: str | None,
                      fmt: str) -> None:
    """List the system tables and their columns."""
    _emit(sql(client, _db(ctx, database), SYS_TABLES_QUERY, fmt,
              "Failed to list system tables"), fmt)


@command(show_system, "table",
         example="influxdb3 show system --database mydb table parquet_files --limit 10")
@database_option(required=False)
@click.option("-l", "--limit", default=100, type=click.IntRange(min=0), show_default=True,
              help="Most rows to show; 0 for all.")
@click.option("-o", "--order-by", multiple=True, metavar="COL,...",
              help="Sort by these columns (comma-separated, or repeat the flag).")
@click.option("-s", "--select", "select", multiple=True, metavar="COL,...",
              help="Only these columns (comma-separated, or repeat the flag).")
@format_option
@click.argument("system_table")
@client_options
@click.pass_context
def system_table(ctx: click.Context, client: Client, database: str | None, limit: int,
                 order_by: tuple[str, ...], select: tuple[str, ...], fmt: str,
                 system_table: str) -> None:
    """Show the rows of one system table."""
    db = _db(ctx, database)
    r = client.request("POST", "/api/v3/query_sql", json_body={
        "db": db, "q": _system_query(system_table, ",".join(comma_list(select)),
                                     ",".join(comma_list(order_by)), limit),
        "format": WIRE_FORMAT[fmt], "params": None})
    if r.status_code >= 400:
        if "not found" in r.text:
            names = [row.get("table_name") for row in
                     sql_rows(client, db, SYS_TABLES_QUERY, "Failed to show system table")]
            fail(f"Failed to show system table: system table '{system_table}' not found: "
                 f"please use a valid system table name: {names}")
        fail(f"Failed to show system table: {describe_error(r)}")
    _emit(r, fmt)


@command(show_system, "summary", example="influxdb3 show system --database mydb summary")
@database_option(required=False)
@click.option("-l", "--limit", default=10, type=click.IntRange(min=0), show_default=True,
              help="Most rows per table; 0 for all.")
@format_option
@client_options
@click.pass_context
def system_summary(ctx: click.Context, client: Client, database: str | None, limit: int,
                   fmt: str) -> None:
    """Show the first rows of every system table."""
    db = _db(ctx, database)
    for row in sql_rows(client, db, SYS_TABLES_QUERY, "Failed to summarize system tables"):
        name = row.get("table_name")
        click.echo(f"{name} summary:")
        print_body(sql(client, db, _system_query(str(name), None, None, limit), fmt,
                       "Failed to summarize system tables"))


# ---- show summary (Weir) --------------------------------------------------------------------

_TABLES_SQL = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'iox' "
               "ORDER BY table_name")
# `*`: Weir adds a `public` column that the reference's table does not have
_TRIGGERS_SQL = "SELECT * FROM system.processing_engine_triggers ORDER BY trigger_name"
_ARGS_SQL = ("SELECT trigger_name, argument_key, argument_value FROM "
             "system.processing_engine_trigger_arguments ORDER BY trigger_name, argument_key")


def spec_from_system(text: Any) -> str:
    """`system.processing_engine_triggers.trigger_specification` (the reference's JSON
    enum) back to the CLI form: `"all_tables_wal_write"` -> `all_tables`."""
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return str(text)
    if value == "all_tables_wal_write":
        return "all_tables"
    if value == "parquet_persist_all_tables":
        return "parquet:all_tables"
    if isinstance(value, dict) and len(value) == 1:
        (kind, inner), = value.items()
        inner = inner if isinstance(inner, dict) else {}
        if kind == "single_table_wal_write":
            return f"table:{inner.get('table_name')}"
        if kind == "parquet_persist_table":
            return f"parquet:{inner.get('table_name')}"
        if kind == "schedule":
            return f"cron:{inner.get('schedule')}"
        if kind == "request_path":
            return f"request:{inner.get('path')}"
        if kind == "every":
            d = inner.get("duration") or {}
            from weir.engine.specs import format_humantime

            ns = int(d.get("secs", 0)) * 1_000_000_000 + int(d.get("nanos", 0))
            return f"every:{format_humantime(ns)}"
    return str(text)


def render_table(columns: list[str], rows: list[list[Any]]) -> str:
    """An ASCII table in the server's `pretty` style."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [sep, "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
           + " |", sep]
    out += ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |"
            for r in cells]
    if cells:
        out.append(sep)
    return "\n".join(out)


class _TriggerSummary(TypedDict):
    trigger_name: object
    trigger_spec: str
    plugin: object
    status: str
    error_behavior: object
    delivery: object
    arguments: dict[str, str]


@command(show, "summary", example="influxdb3 show summary --database mydb")
@database_option()
@click.option("--format", "fmt", type=click.Choice(["pretty", "json"]), default="pretty",
              show_default=True, help="Output format.")
@client_options
def show_summary(client: Client, database: str, fmt: str) -> None:
    """Summarise a database: its tables and its processing-engine triggers (spec, plugin,
    state, error behaviour, delivery, arguments)."""
    context = "Failed to show summary"
    tables = [r.get("table_name") for r in sql_rows(client, database, _TABLES_SQL, context)]
    triggers = sql_rows(client, database, _TRIGGERS_SQL, context)
    args: dict[str, dict[str, str]] = {}
    for r in sql_rows(client, database, _ARGS_SQL, context):
        args.setdefault(str(r.get("trigger_name")), {})[str(r.get("argument_key"))] = \
            str(r.get("argument_value"))
    summary: list[_TriggerSummary] = [{"trigger_name": t.get("trigger_name"),
                "trigger_spec": spec_from_system(t.get("trigger_specification")),
                "plugin": t.get("plugin_filename"),
                "status": ("disabled" if t.get("disabled") else "enabled")
                + (", public" if t.get("public") else "")
                + (", catch_up" if t.get("catch_up") else "")
                + (f", {t['node_spec']}" if t.get("node_spec") not in (None, "all") else ""),
                "error_behavior": t.get("error_behavior"),
                # Weir: what it promises (exactly once, at least once; on error ...)
                "delivery": t.get("delivery"),
                "arguments": args.get(str(t.get("trigger_name")), {})} for t in triggers]
    if fmt == "json":
        print_json({"database": database, "tables": tables, "triggers": summary})
        return
    click.echo(f"Database: {database}\n")
    click.echo(f"Tables ({len(tables)}):")
    click.echo("\n".join(f"  {t}" for t in tables) if tables else "  (none)")
    click.echo(f"\nTriggers ({len(summary)}):")
    if not summary:
        click.echo("  (none)")
        return
    cols = ["trigger_name", "trigger_spec", "plugin", "status", "error_behavior", "arguments",
            "delivery"]
    rows = [[s["trigger_name"], s["trigger_spec"], s["plugin"], s["status"],
             s["error_behavior"], ",".join(f"{k}={v}" for k, v in s["arguments"].items()),
             s["delivery"]] for s in summary]
    click.echo(render_table(cols, rows))


def _emit(r: httpx.Response, fmt: str) -> None:
    if fmt == "parquet":
        out = click.open_file("-", "wb")
        out.write(r.content)
        out.flush()
        return
    print_body(r)
