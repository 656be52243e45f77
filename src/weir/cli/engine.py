"""The processing engine from the command line: create / delete / enable / disable /
update trigger, `install` (plugin packages) and `test` (plugin dry runs)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from weir.cli.base import CommandFunc, command, fail, group
from weir.cli.client import (
    Client,
    client_options,
    database_option,
    key_values,
    print_json,
)
from weir.cli.resources import create, delete, disable, enable, update

if TYPE_CHECKING:
    import httpx

# weir.engine.specs is imported inside the functions that use it, not here: it loads
# croniter and dateutil (~80 ms), which `influxdb3 --help` and most commands never need.

SPEC_HELP = ("When the trigger fires: table:<TABLE> or all_tables (writes), "
             "every:<DURATION> or cron:<6-field cron, seconds first> (schedules), "
             "request:<PATH> (HTTP requests to /api/v3/engine/<PATH>).")


def canonical_spec(spec: str) -> str:
    """Parse a trigger spec here, as the reference's CLI does, and return the canonical
    string the server is sent (`every:60s` -> `every:1m`)."""
    from weir.engine.specs import InvalidTriggerSpec, parse_trigger_spec

    try:
        return parse_trigger_spec(spec).canonical()
    except InvalidTriggerSpec as e:  # a bad cron expression too; the message says what is wrong
        raise click.BadParameter(str(e), param_hint="'--trigger-spec'") from None


def canonical_node_spec(spec: str) -> str:
    """Check `--node-spec` here, before anything is sent: `all` or
    `nodes:<node-id>[,<node-id>...]`, returned canonical (`nodes:a, b` -> `nodes:a,b`)."""
    from weir.engine.node_spec import InvalidNodeSpec, parse_node_spec

    try:
        return parse_node_spec(spec).canonical()
    except InvalidNodeSpec as e:
        raise click.BadParameter(str(e), param_hint="'--node-spec'") from None


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        fail(f"{what}: {path} is not UTF-8 text")
    except OSError as e:
        fail(f"{what}: cannot read {path}: {e.strerror or e}")


def plugin_dir_files(root: Path) -> list[tuple[str, Path]]:
    """Every `.py` file under a plugin package (skipping `__pycache__`), with its path
    relative to the package, in a stable order."""
    out = []
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root)
        if "__pycache__" in rel.parts or not f.is_file():
            continue
        out.append((rel.as_posix(), f))
    return out


def upload_plugin(client: Client, database: str, path_text: str, context: str) -> str:
    """`create trigger --upload`: send a local file or package directory to the server's
    plugin dir; return the name the trigger should use."""
    p = Path(path_text).expanduser()
    if not p.exists():
        fail(f"{context}: File not found: {path_text}")
    if p.is_file():
        client.ok("POST", "/api/v3/plugins/files", context, params={"db": database},
                  json_body={"plugin_name": p.name, "content": _read_text(p, context)})
        return p.name
    if p.is_dir():
        if not (p / "__init__.py").is_file():
            fail(f"{context}: Multi-file plugin directory must contain __init__.py: {path_text}")
        name = p.resolve().name
        for rel, f in plugin_dir_files(p):
            client.ok("POST", "/api/v3/plugins/files", context, params={"db": database},
                      json_body={"plugin_name": f"{name}/{rel}",
                                 "content": _read_text(f, context)})
        return name
    fail(f"{context}: Invalid path: {path_text}")


# ---- triggers -----------------------------------------------------------------------------


@command(create, "trigger", example=[
    "influxdb3 create trigger --database mydb --trigger-spec all_tables \\\n"
    "--path examples/wal_plugin/wal_plugin.py \\\n"
    "--trigger-arguments double_count_table=cpu my_trigger",
    "influxdb3 create trigger --database mydb --trigger-spec every:10s \\\n"
    "--path ./my_plugin.py --upload my_schedule",
    "influxdb3 create trigger --database mydb --trigger-spec request:status \\\n"
    "--path ./status.py --public status_page",
    "influxdb3 create trigger --database mydb --trigger-spec every:1h \\\n"
    "--path ./hourly_rollup.py --catch-up hourly_rollup",
    "influxdb3 create trigger --database mydb --trigger-spec every:5m \\\n"
    "--path ./report.py --node-spec nodes:node-a,node-b report",
])
@database_option()
@click.option("--trigger-spec", required=True, metavar="SPEC", help=SPEC_HELP)
@click.option("--path", "--plugin", "path", default=None, metavar="PATH",
              help="Plugin file or package directory, relative to the server's --plugin-dir "
                   "(or gh:<path> from the plugins repository; with --upload, a local path).")
@click.option("--plugin-filename", default=None, metavar="FILE",
              help="Older name of --path.")
@click.option("--trigger-arguments", multiple=True, metavar="K=V,...",
              help="Arguments passed to the plugin as `args`, e.g. key1=val1,key2=val2; "
                   "repeat the flag to add more (a repeated key keeps its last value).")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@click.option("--run-asynchronous", is_flag=True,
              help="Let invocations run concurrently instead of one at a time.")
@click.option("--error-behavior", type=click.Choice(["log", "retry", "disable"]),
              default="log", show_default=True,
              help="What to do when the plugin raises.")
@click.option("--upload", is_flag=True,
              help="Send the local --path (file or directory) to the server first.")
@click.option("--public", is_flag=True,
              help="Weir: let anyone call this request trigger's /api/v3/engine/<path> "
                   "without a token (request:<path> triggers only).")
@click.option("--catch-up", is_flag=True,
              help="Weir: after the server was down, run ONE catch-up call for the fire "
                   "times this schedule missed (call_time = the last of them, the same "
                   "arguments), then resume the schedule (every:/cron: triggers only). "
                   "Without it the missed runs are only logged.")
@click.option("--node-spec", default="all", show_default=True, metavar="SPEC",
              help="The nodes of a cluster that run it: all, or nodes:<node-id>[,<node-id>...] "
                   "(they must be in process mode; WAL triggers also in ingest mode). Every "
                   "node stores the trigger; the others do not run it.")
@click.argument("trigger_name")
@client_options
def create_trigger(client: Client, database: str, trigger_spec: str, path: str | None,
                   plugin_filename: str | None, trigger_arguments: tuple[str, ...],
                   disabled: bool, run_asynchronous: bool, error_behavior: str, upload: bool,
                   public: bool, catch_up: bool, node_spec: str, trigger_name: str) -> None:
    """Create a processing-engine trigger that runs a plugin on writes, on a schedule, or
    on HTTP requests to /api/v3/engine/<path>."""
    if path and plugin_filename:
        raise click.UsageError("give the plugin with --path or --plugin-filename, not both")
    plugin = path or plugin_filename
    if not plugin:
        raise click.UsageError("Either --path or --plugin-filename must be provided")
    spec = canonical_spec(trigger_spec)
    nodes = canonical_node_spec(node_spec)
    args = key_values(trigger_arguments, "--trigger-arguments")
    context = "Failed to create trigger"
    if upload:
        plugin = upload_plugin(client, database, plugin, context)
    settings: dict[str, object] = {"run_async": run_asynchronous,
                                   "error_behavior": error_behavior}
    if catch_up:  # only then, so the body stays the reference's otherwise
        settings["catch_up"] = True
    body = {"db": database, "plugin_filename": plugin, "trigger_name": trigger_name,
            "trigger_specification": spec, "trigger_arguments": args,
            "trigger_settings": settings, "disabled": disabled}
    if public:  # likewise
        body["public"] = True
    if nodes != "all":  # likewise (Enterprise's body has it; Core's does not)
        body["node_spec"] = nodes
    client.ok("POST", "/api/v3/configure/processing_engine_trigger", context, json_body=body)
    click.echo(f"Trigger {trigger_name} created successfully")


@command(delete, "trigger", example="influxdb3 delete trigger --database mydb --force my_trigger")
@database_option()
@click.option("--force", is_flag=True, help="Delete it even if it is enabled.")
@click.argument("trigger_name")
@client_options
def delete_trigger(client: Client, database: str, force: bool, trigger_name: str) -> None:
    """Delete a trigger (disable it first, or use --force). Its plugin files stay."""
    client.ok("DELETE", "/api/v3/configure/processing_engine_trigger",
              "Failed to delete trigger",
              json_body={"db": database, "trigger_name": trigger_name, "force": force})
    click.echo(f"Trigger {trigger_name} deleted successfully")


def _toggle(grp: click.Group, verb: str) -> None:
    @command(grp, "trigger", example=f"influxdb3 {verb} trigger --database mydb my_trigger")
    @database_option()
    @click.argument("trigger_name")
    @client_options
    def toggle(client: Client, database: str, trigger_name: str) -> None:
        client.ok("POST", f"/api/v3/configure/processing_engine_trigger/{verb}",
                  f"Failed to {verb} trigger",
                  params={"db": database, "trigger_name": trigger_name})
        click.echo(f"Trigger {trigger_name} {verb}d successfully")

    toggle.help = (f"{verb.capitalize()} a trigger"
                   + (" (it starts running)." if verb == "enable" else " (it stops running)."))


_toggle(enable, "enable")
_toggle(disable, "disable")


@command(update, "trigger",
         example="influxdb3 update trigger --database mydb --trigger-name my_trigger "
                 "--path ./my_plugin.py")
@database_option()
@click.option("-t", "--trigger-name", required=True, help="The trigger to update.")
@click.option("-p", "--path", "path", required=True, metavar="PATH",
              help="Local plugin file, or package directory with __init__.py.")
@client_options
def update_trigger(client: Client, database: str, trigger_name: str, path: str) -> None:
    """Replace a trigger's plugin code with a local file or directory; the next call uses
    it."""
    context = "Failed to update trigger"
    p = Path(path).expanduser()
    if not p.exists():
        fail(f"{context}: Path does not exist: {path}")
    if p.is_file():
        client.ok("PUT", "/api/v3/plugins/files", context, params={"db": database},
                  json_body={"plugin_name": trigger_name, "content": _read_text(p, context)})
        click.echo(f"Trigger '{trigger_name}' updated successfully")
        return
    if not p.is_dir():
        fail(f"{context}: Invalid path: {path}")
    if not (p / "__init__.py").is_file():
        fail(f"{context}: Multi-file plugin directory must contain __init__.py: {path}")
    files = [{"relative_path": rel, "content": _read_text(f, context)}
             for rel, f in plugin_dir_files(p)]
    client.ok("PUT", "/api/v3/plugins/directory", context, params={"db": database},
              json_body={"plugin_name": trigger_name, "files": files})
    click.echo(f"Trigger '{trigger_name}' updated successfully (atomic directory replacement)")


# ---- install ------------------------------------------------------------------------------


class Progress:
    """While a long request runs: a spinner with elapsed seconds on a terminal, one
    'started' line otherwise; then a final line with the time it took."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._tty = sys.stderr.isatty()
        self._thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        frames = "|/-\\"
        i = 0
        while not self._stop.wait(0.2):
            click.echo(f"\r{frames[i % 4]} {self.label}... {self.elapsed():.0f}s", err=True,
                       nl=False)
            i += 1

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def __enter__(self) -> Progress:
        if self._tty:
            self._thread.start()
        else:
            click.echo(f"{self.label}...", err=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tty:
            self._stop.set()
            self._thread.join()
            click.echo("\r\033[K", err=True, nl=False)

    def done(self, message: str) -> None:
        click.echo(f"{message} ({self.elapsed():.1f}s)", err=True)


@group("install", example="influxdb3 install package pandas")
def install() -> None:
    """Install Python packages into the server's plugin environment."""


def _install_requirements(client: Client, requirements: str) -> None:
    with Progress(f"installing the requirements in {requirements}") as p:
        client.ok("POST", "/api/v3/configure/plugin_environment/install_requirements",
                  "Failed to install requirements",
                  json_body={"requirements_location": requirements})
    p.done(f"installed the requirements in {requirements}")


def _install_packages(client: Client, packages: list[str]) -> None:
    with Progress(f"installing {' '.join(packages)}") as p:
        client.ok("POST", "/api/v3/configure/plugin_environment/install_packages",
                  "Failed to install packages", json_body={"packages": packages})
    p.done(f"installed {' '.join(packages)}")


def _engine_flags(f: CommandFunc) -> CommandFunc:
    """The reference's `install package` also takes the serve flags of the plugin
    environment; they configure the server, so here they are accepted and ignored."""
    for flag, env in (("--plugin-dir", "INFLUXDB3_PLUGIN_DIR"),
                      ("--virtual-env-location", None),
                      ("--package-manager", None), ("--plugin-repo", None)):
        f = click.option(flag, "ignored_" + flag.strip("-").replace("-", "_"), envvar=env,
                         default=None, hidden=True)(f)
    # a list in the reference (repeatable, comma-separated)
    return click.option("--restrict-plugin-triggers-to", "ignored_restrict_plugin_triggers_to",
                        multiple=True, hidden=True)(f)


@command(install, "package", example=["influxdb3 install package pandas requests",
                                      "influxdb3 install package -r /srv/plugins/requirements.txt"])
@click.option("-r", "--requirements", default=None, metavar="FILE",
              help="A requirements file to install from (a path on the server).")
@click.argument("packages", nargs=-1)
@_engine_flags
@client_options
def install_package(client: Client, requirements: str | None, packages: tuple[str, ...],
                    **_ignored: Any) -> None:
    """Install packages into the plugin virtualenv (pip names, run by the server)."""
    for name, value in _ignored.items():
        if value not in (None, ()):
            flag = "--" + name.removeprefix("ignored_").replace("_", "-")
            click.echo(f"warning: {flag} is ignored: the server's own plugin environment "
                       "settings apply", err=True)
    if not requirements and not packages:
        raise click.UsageError("name at least one package, or give -r/--requirements FILE")
    if requirements:
        _install_requirements(client, requirements)
    if packages:
        _install_packages(client, list(packages))


@command(install, "requirements",
         example="influxdb3 install requirements /srv/plugins/requirements.txt")
@click.argument("requirements", metavar="FILE")
@client_options
def install_requirements(client: Client, requirements: str) -> None:
    """Install everything in a requirements file (a path on the server); the same as
    `install package -r FILE`."""
    _install_requirements(client, requirements)


# ---- test ---------------------------------------------------------------------------------


@group("test", example="influxdb3 test wal_plugin --database mydb --lp 'cpu,host=a usage=1' "
                       "my_plugin.py")
def test() -> None:
    """Run a plugin once against the live database; its writes are returned, not made."""


@command(test, "wal_plugin", example=[
    "influxdb3 test wal_plugin --database sensors \\\n"
    "--lp 'my_measure,tag1=asdf f1=1.0 123' \\\n"
    "--input-arguments arg1=hello,arg2=world test.py",
])
@database_option()
@click.option("--lp", default=None, metavar="LINE_PROTOCOL",
              help="Line protocol the plugin sees as written.")
@click.option("--file", "file", default=None, metavar="FILE",
              help="Read that line protocol from a local file.")
@click.option("--input-arguments", multiple=True, metavar="K=V,...",
              help="Arguments passed to the plugin as `args` (comma-separated, or repeat "
                   "the flag).")
@click.option("--cache-name", default=None, help="Cache namespace to use across test runs.")
@click.argument("filename")
@client_options
def test_wal_plugin(client: Client, database: str, lp: str | None, file: str | None,
                    input_arguments: tuple[str, ...], cache_name: str | None,
                    filename: str) -> None:
    """Dry-run a WAL plugin (a file in the server's plugin dir) on some line protocol;
    print its log lines, the writes it would make and any errors."""
    if lp is not None and file is not None:
        raise click.UsageError("give the input with --lp or --file, not both")
    if lp is None:
        if file is None:
            raise click.UsageError("either --lp or --file must be provided")
        lp = _read_text(Path(file).expanduser(), "Failed to test plugin")
    body = {"filename": filename, "database": database, "input_lp": lp,
            "cache_name": cache_name,
            "input_arguments": key_values(input_arguments, "--input-arguments")}
    r = client.ok("POST", "/api/v3/plugin_test/wal", "Failed to test plugin", json_body=body)
    _print_result(r)


@command(test, "schedule_plugin", example=[
    "influxdb3 test schedule_plugin --database mydb --schedule '*/5 * * * * *' \\\n"
    "--input-arguments region=us-east my_check.py",
])
@database_option()
@click.option("--schedule", default=None, metavar="CRON",
              help="Cron expression, seconds first [server default: * * * * * *].")
@click.option("--input-arguments", multiple=True, metavar="K=V,...",
              help="Arguments passed to the plugin as `args` (comma-separated, or repeat "
                   "the flag).")
@click.option("--cache-name", default=None, help="Cache namespace to use across test runs.")
@click.argument("filename")
@client_options
def test_schedule_plugin(client: Client, database: str, schedule: str | None,
                         input_arguments: tuple[str, ...], cache_name: str | None,
                         filename: str) -> None:
    """Dry-run a scheduled plugin once; print its log lines, the writes it would make and
    any errors."""
    body = {"filename": filename, "database": database, "schedule": schedule,
            "cache_name": cache_name,
            "input_arguments": key_values(input_arguments, "--input-arguments")}
    r = client.ok("POST", "/api/v3/plugin_test/schedule", "Failed to test plugin",
                  json_body=body)
    _print_result(r)


def _print_result(r: httpx.Response) -> None:
    try:
        print_json(r.json())
    except ValueError:
        fail(f"Failed to test plugin: the server's answer is not JSON: {r.text[:200]!r}")
