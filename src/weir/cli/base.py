"""Click building blocks every command uses: help that ends with a pasteable example,
`help` as a word, command aliases, and failing with one clear line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import click

CTX: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

#: a command function that decorators adding options hand back as they got it
CommandFunc = TypeVar("CommandFunc", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line to stderr and exit with `code`."""
    click.echo(" ".join(message.split("\n")).rstrip(), err=True)
    sys.exit(code)


def comma_list(values: str | Sequence[str] | None) -> list[str]:
    """A list option's items, as the reference's `value_delimiter = ','` reads them: every
    occurrence of the option (click's `multiple=True` gives them as a tuple) split on
    commas, so `--columns a,b --columns c` is `[a, b, c]`; blanks are dropped."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [s.strip() for v in values for s in v.split(",") if s.strip()]


def quoted(text: str) -> str:
    """A name in double quotes, escaped the way the reference prints it (`"my db"`)."""
    return json.dumps(text, ensure_ascii=False)


def _examples_epilog(example: str | Sequence[str]) -> str:
    examples = [example] if isinstance(example, str) else list(example)
    out = ["Example:" if len(examples) == 1 else "Examples:"]
    for ex in examples:
        first, *rest = ex.split("\n")
        out.append(f"  {first}")
        out.extend(f"      {line.strip()}" for line in rest)
    return "\n".join(out)


class _ExampleHelp:
    """Mixin: the epilog is printed verbatim (no re-wrapping), so examples paste."""

    epilog: str | None

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.epilog:
            formatter.write_paragraph()
            for line in self.epilog.splitlines():
                formatter.write(f"{line}\n" if line else "\n")


class WeirCommand(_ExampleHelp, click.Command):
    """A leaf command. `example=` becomes the last thing its help prints;
    `influxdb3 create trigger help` prints the help, as the seed documents expect."""

    def __init__(self, *args: Any, example: str | Sequence[str] | None = None,
                 **kwargs: Any) -> None:
        if example is not None:
            kwargs["epilog"] = _examples_epilog(example)
        kwargs.setdefault("context_settings", CTX)
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args == ["help"]:
            args = ["--help"]
        return super().parse_args(ctx, args)


class WeirGroup(_ExampleHelp, click.Group):
    """A command group with hidden aliases (`w` for `write`) and `help [COMMAND]`."""

    command_class = WeirCommand

    def __init__(self, *args: Any, example: str | Sequence[str] | None = None,
                 aliases: dict[str, str] | None = None, **kwargs: Any) -> None:
        if example is not None:
            kwargs["epilog"] = _examples_epilog(example)
        kwargs.setdefault("context_settings", CTX)
        super().__init__(*args, **kwargs)
        self.aliases: dict[str, str] = dict(aliases or {})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        return (cmd.name if cmd is not None else name), cmd, rest

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] == "help":  # `influxdb3 help create trigger`
            args = [*args[1:], "--help"]
        return super().parse_args(ctx, args)


WeirGroup.group_class = WeirGroup


def command(group: click.Group, name: str, *, example: str | Sequence[str],
            **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
    """`@command(create, "database", example="influxdb3 create database mydb")`."""
    return group.command(name, cls=WeirCommand, example=example, **kwargs)


def group(name: str, *, example: str | Sequence[str], **kwargs: Any
          ) -> Callable[[Callable[..., Any]], WeirGroup]:
    return click.group(name, cls=WeirGroup, example=example, **kwargs)
