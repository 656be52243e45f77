"""`influxdb3 write` and `influxdb3 query`."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path
from typing import Any

import click

from weir.cli.client import FORMAT_CHOICE, Client, client_options, database_option, fail
from weir.config import parse_size


def _read_input(text: str | None, file: str | None, what: str) -> str:
    if text is not None and file is not None:
        fail(f"error: give the {what} either as an argument or with --file, not both", 2)
    if file is not None:
        try:
            return Path(file).expanduser().read_text()
        except OSError as e:
            fail(f"error: cannot read {file}: {e.strerror or e}", 2)
    if text is not None:
        return text
    if not sys.stdin.isatty():
        return sys.stdin.read()
    fail(f"error: no {what} given: pass it as an argument, with --file, or on stdin", 2)


def _chunks(lp: str, max_bytes: int) -> list[str]:
    """Split a body at newlines into pieces of at most max_bytes (a longer line stays whole)."""
    if len(lp.encode()) <= max_bytes:
        return [lp]
    out, cur, size = [], [], 0
    for line in lp.splitlines(keepends=True):
        n = len(line.encode())
        if cur and size + n > max_bytes:
            out.append("".join(cur))
            cur, size = [], 0
        cur.append(line)
        size += n
    if cur:
        out.append("".join(cur))
    return out


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@database_option()
@click.option("-f", "--file", "file", default=None, help="Read line protocol from this file.")
@click.option("-p", "--precision", type=click.Choice(
    ["auto", "ns", "us", "ms", "s", "nanosecond", "microsecond", "millisecond", "second"]),
    default=None, help="Timestamp precision [default: auto].")
@click.option("--accept-partial/--no-accept-partial", default=True, show_default=True,
              help="Write the good lines of a batch that has bad ones.")
@click.option("--no-sync", is_flag=True, help="Return before the write is durable.")
@click.option("--gzip", "use_gzip", is_flag=True, help="Compress the request body.")
@click.option("--max-request-size", default="10485760", show_default=True,
              help="Split bodies larger than this (bytes) at newlines.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.argument("line_protocol", required=False)
@client_options
def write(client: Client, database: str, file: str | None, precision: str | None,
          accept_partial: bool, no_sync: bool, use_gzip: bool, max_request_size: str,
          quiet: bool, line_protocol: str | None) -> None:
    """Write line protocol to a database (argument, --file, or stdin).

    \b
    Example:
      influxdb3 write --database mydb 'cpu,host=a usage=0.5 1700000000'
      influxdb3 write --database mydb --file metrics.lp --precision s
    """
    lp = _read_input(line_protocol, file, "line protocol")
    params = {"db": database, "accept_partial": str(accept_partial).lower(),
              "no_sync": str(no_sync).lower()}
    if precision:
        params["precision"] = precision
    chunks = _chunks(lp, parse_size(max_request_size))
    total = sum(len(c.encode()) for c in chunks)
    sent = 0
    show = not quiet and (file is not None or len(chunks) > 1)
    for chunk in chunks:
        body = chunk.encode()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if use_gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        client.ok("POST", "/api/v3/write_lp", "Write command failed", params=params,
                  content=body, headers=headers)
        sent += len(chunk.encode())
        if show:
            click.echo(f"\rwrote {sent}/{total} bytes ({100 * sent // max(total, 1)}%)",
                       err=True, nl=False)
    if show:
        click.echo("", err=True)
    if not quiet:
        click.echo("success")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@database_option()
@click.option("-l", "--language", type=click.Choice(["sql", "influxql"]), default="sql",
              show_default=True)
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="pretty", show_default=True)
@click.option("-o", "--output", default=None, help="Write the result to this file.")
@click.option("-f", "--file", "file", default=None, help="Read the query from this file.")
@click.argument("query_text", required=False)
@client_options
def query(client: Client, database: str, language: str, fmt: str, output: str | None,
          file: str | None, query_text: str | None) -> None:
    """Run a SQL (or InfluxQL) query and print the result.

    \b
    Example:
      influxdb3 query --database mydb "SELECT * FROM cpu ORDER BY time DESC LIMIT 10"
      influxdb3 query --database mydb --format csv -o out.csv "SELECT * FROM cpu"
    """
    q = _read_input(query_text, file, "query")
    if fmt == "parquet" and output is None:
        fail("error: --format parquet needs --output FILE", 2)
    path = "/api/v3/query_sql" if language == "sql" else "/api/v3/query_influxql"
    body: dict[str, Any] = {"db": database, "q": q, "format": fmt}
    r = client.ok("POST", path, "Query command failed", json_body=body)
    if output is not None:
        Path(output).expanduser().write_bytes(r.content)
        return
    text = r.content.decode("utf-8", "replace")
    click.echo(text if text.endswith("\n") or not text else text)
