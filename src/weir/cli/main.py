"""The `influxdb3` / `weir` command group. With no subcommand it runs `serve`."""

from __future__ import annotations

import click

import weir
from weir.cli.serve import serve


class _DefaultServe(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0].startswith("-") and args[0] not in
                        ("-h", "--help", "--version", "-V")):
            args = ["serve", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultServe, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(weir.__version__, "--version", "-V", prog_name="influxdb3 (Weir)")
def cli() -> None:
    """Weir: an InfluxDB 3 Core compatible time-series database.

    \b
    Example:
      influxdb3 serve --node-id node0 --object-store file --data-dir ~/.influxdb3
      influxdb3 write --database mydb 'cpu,host=a usage=0.5'
      influxdb3 query --database mydb "SELECT * FROM cpu"
    """


cli.add_command(serve)


def _register() -> None:
    from weir.cli import data, engine_cmds, resources

    for group in (resources.create, resources.delete, resources.show, resources.enable,
                  resources.disable, resources.update, engine_cmds.install, engine_cmds.test):
        cli.add_command(group)
    cli.add_command(data.write)
    cli.add_command(data.write, name="w")
    cli.add_command(data.query)
    cli.add_command(data.query, name="q")


_register()
