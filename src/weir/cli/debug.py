"""`influxdb3 debug ...`: Weir's diagnostics (the reference has no such commands).

`debug object-store-check` opens the store `serve` would open, from the same flags, and
runs the checks of `weir.objectstore.check` on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from weir.cli.base import command, group
from weir.cli.store_options import object_store_config, object_store_options


@group("debug", example="influxdb3 debug object-store-check --object-store s3 --bucket weir")
def debug() -> None:
    """Diagnostics of Weir's own (not in InfluxDB 3)."""


@command(debug, "object-store-check", example=[
    "influxdb3 debug object-store-check --object-store s3 --bucket weir \\\n"
    "--aws-endpoint http://127.0.0.1:8333 --aws-allow-http \\\n"
    "--aws-access-key-id KEY --aws-secret-access-key SECRET",
    "influxdb3 debug object-store-check --object-store file --data-dir ~/.influxdb3 "
    "--format json",
])
@object_store_options(data_dir_help="Directory of the file object store "
                                    "[default: ~/.influxdb3].")
@click.option("--writers", default=8, show_default=True, type=click.IntRange(2, 64),
              help="Writers racing in the conditional-write checks.")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1, 100),
              help="Races per conditional-write check.")
@click.option("--format", "fmt", default="pretty", show_default=True,
              type=click.Choice(["pretty", "json"]), help="A table, or JSON for machines.")
@click.pass_context
def object_store_check(ctx: click.Context, /, **kw: Any) -> None:
    """Check that an object store keeps what Weir relies on: put-if-absent and conditional
    overwrite (If-Match on the ETag) under concurrent writers, exactly one winning each
    race; read-after-write; listing after write; deletes. Many S3 look-alikes accept
    conditional writes and silently ignore them, which a multi-node Weir cannot survive.

    It writes a few small objects under weir-object-store-check/ and removes them. Exit
    code 0 if every check passes, 1 otherwise."""
    # imported here: opening a store loads pyarrow (and obstore), which `--help` need not
    from weir.objectstore import open_store
    from weir.objectstore.check import check_store

    kind = kw.get("object_store") or "file"
    if kind == "memory-throttled":
        kind = "memory"
    options = object_store_config(kw, kind)
    data_dir = (Path(kw["data_dir"]).expanduser() if kw.get("data_dir")
                else Path.home() / ".influxdb3")
    try:
        store = open_store(kind, str(data_dir), options)
    except ValueError as e:  # a setting obstore refuses (a bad region, an unreadable CA)
        raise click.UsageError(str(e)) from e
    where = getattr(store, "url", None) or (str(data_dir) if kind == "file" else kind)
    results = check_store(store, writers=kw["writers"], rounds=kw["rounds"])
    ok = all(r.ok for r in results)
    if kw["fmt"] == "json":
        click.echo(json.dumps({"store": where, "ok": ok, "checks": [
            {"check": r.check, "ok": r.ok, "detail": r.detail} for r in results]}, indent=2))
    else:
        click.echo(f"object store: {where}")
        width = max(len(r.check) for r in results)
        click.echo(f"{'check':<{width}}  result  detail")
        for r in results:
            click.echo(f"{r.check:<{width}}  {'ok' if r.ok else 'FAILED':<6}  {r.detail}")
        click.echo("all checks passed" if ok else
                   f"{sum(not r.ok for r in results)} of {len(results)} checks failed")
    ctx.exit(0 if ok else 1)
