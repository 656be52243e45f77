"""The `influxdb3` / `weir` command group. With no subcommand it runs `serve`.

Every failure ends as one line on stderr and a non-zero exit code: usage mistakes exit
2, failed requests 1; no Python traceback is shown (set WEIR_TRACEBACK=1 to see one).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import click

import weir
from weir.cli import data, debug, engine, resources, show
from weir.cli.base import WeirGroup
from weir.cli.client import RequestError
from weir.cli.serve import serve

_TOP_FLAGS = ("-h", "--help", "--help-all", "--version", "-V")


class InfluxDB3(WeirGroup):
    """The top-level group: defaults to `serve`, and owns error reporting."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0].startswith("-") and args[0] not in _TOP_FLAGS:
            # `influxdb3 --host URL show databases`: client options given before the
            # command are moved after it, where the command reads them.
            at = _command_index(args, set(self.commands) | set(self.aliases))
            if at is not None:
                args = [*args[at:], *args[:at]]
        if not args or (args[0].startswith("-") and args[0] not in _TOP_FLAGS):
            args = ["serve", *args]
        return super().parse_args(ctx, args)

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except RequestError as e:
            click.echo(_one_line(str(e)), err=True)
            sys.exit(e.code)
        except click.exceptions.NoArgsIsHelpError as e:
            click.echo(e.ctx.get_help(), err=True)
            sys.exit(2)
        except click.UsageError as e:
            sys.exit(_report_usage_error(e))
        except click.ClickException as e:
            click.echo(f"error: {_one_line(e.format_message())}", err=True)
            sys.exit(e.exit_code)
        except click.Abort as e:  # Ctrl-C (click turns KeyboardInterrupt into Abort)
            click.echo("Aborted!", err=True)
            sys.exit(130 if isinstance(e.__cause__, KeyboardInterrupt) else 1)
        except KeyboardInterrupt:
            click.echo("", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # `influxdb3 query ... | head`: stop quietly.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except SystemExit:
            raise
        except Exception as e:  # a bug or an environment problem: still one line
            if os.environ.get("WEIR_TRACEBACK"):
                raise
            click.echo(f"error: {type(e).__name__}: {_one_line(str(e))}", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


_VALUELESS = {"--tls-no-verify", "--without-auth", "-y", "--yes", "-q", "--quiet"}


def _command_index(args: list[str], names: set[str]) -> int | None:
    """Where the command name is in `--opt value ... command ...`, if that is the shape."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in names:
            return i
        if not a.startswith("-"):
            return None
        i += 1 if ("=" in a or a in _VALUELESS) else 2
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _report_usage_error(e: click.UsageError) -> int:
    msg = _one_line(e.format_message())  # click names the flag and its env var
    hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
    click.echo(f"error: {msg}{hint}", err=True)
    return e.exit_code


def _help_all(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """`influxdb3 --help-all`: every command's help, one after another."""
    if not value or ctx.resilient_parsing:
        return
    click.echo(ctx.get_help())

    def walk(group: click.Group, gctx: click.Context) -> None:
        for name in group.list_commands(gctx):
            cmd = group.get_command(gctx, name)
            if cmd is None or cmd.hidden:
                continue
            sub = click.Context(cmd, info_name=name, parent=gctx)
            click.echo("\n" + "=" * 72 + "\n")
            click.echo(sub.get_help())
            if isinstance(cmd, click.Group):
                walk(cmd, sub)

    walk(ctx.command, ctx)  # type: ignore[arg-type]
    ctx.exit()


@click.group(cls=InfluxDB3, aliases={"w": "write", "q": "query"}, example=[
    "influxdb3 serve --node-id node0 --object-store file --data-dir ~/.influxdb3",
    "influxdb3 create database mydb",
    "influxdb3 write --database mydb 'cpu,host=a usage=0.5'",
    "influxdb3 query --database mydb 'SELECT * FROM cpu'",
])
@click.version_option(weir.__version__, "--version", "-V",
                      message="%(prog)s %(version)s (Weir)")
@click.option("--help-all", is_flag=True, expose_value=False, is_eager=True,
              callback=_help_all, help="Show the help of every command.")
def cli() -> None:
    """Weir: a time-series database that speaks InfluxDB 3 Core's HTTP API and CLI.

    With no command, runs `serve` with node id <hostname>-node.
    Client commands reach the server at --host (env INFLUXDB3_HOST_URL,
    default http://127.0.0.1:8181) with --token (env INFLUXDB3_AUTH_TOKEN).
    """


def _register() -> None:
    cli.add_command(serve)
    for cmd in (resources.create, resources.delete, resources.enable, resources.disable,
                resources.update, show.show, engine.install, engine.test, data.write,
                data.query, debug.debug):
        cli.add_command(cmd)


_register()
