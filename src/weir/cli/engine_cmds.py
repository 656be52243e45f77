"""`influxdb3 install` and `influxdb3 test`: the plugin environment and plugin dry runs."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import click

from weir.cli.client import Client, client_options, database_option, fail, key_values

CTX = {"help_option_names": ["-h", "--help"]}


class _Progress:
    """An elapsed-time line on stderr while a long request runs."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        spin = "|/-\\"
        i = 0
        while not self._stop.wait(0.25):
            click.echo(f"\r{spin[i % 4]} {self.label} ({time.monotonic() - start:.0f}s)",
                       err=True, nl=False)
            i += 1

    def __enter__(self) -> _Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        click.echo("\r" + " " * (len(self.label) + 12) + "\r", err=True, nl=False)


@click.group(context_settings=CTX)
def install() -> None:
    """Install Python packages into the plugin environment.

    \b
    Example:
      influxdb3 install package pandas
    """


def _install_requirements(client: Client, requirements: str) -> None:
    with _Progress(f"installing from {requirements}"):
        client.ok("POST", "/api/v3/configure/plugin_environment/install_requirements",
                  "Failed to install requirements",
                  json_body={"requirements_location": requirements})
    click.echo(f"installed the requirements in {requirements}")


@install.command("package", context_settings=CTX)
@click.option("-r", "--requirements", default=None,
              help="A requirements file on the server to install from.")
@click.argument("packages", nargs=-1)
@client_options
def install_package(client: Client, requirements: str | None, packages: tuple[str, ...]) -> None:
    """Install packages (pip names or paths on the server) into the plugin venv.

    \b
    Example:
      influxdb3 install package requests
      influxdb3 install package -r /srv/plugins/requirements.txt
    """
    if requirements:
        _install_requirements(client, requirements)
        if not packages:
            return
    if not packages:
        raise click.UsageError("name at least one package (or -r FILE)")
    with _Progress(f"installing {' '.join(packages)}"):
        client.ok("POST", "/api/v3/configure/plugin_environment/install_packages",
                  "Failed to install packages", json_body={"packages": list(packages)})
    click.echo(f"installed {' '.join(packages)}")


@install.command("requirements", context_settings=CTX)
@click.argument("requirements")
@client_options
def install_requirements(client: Client, requirements: str) -> None:
    """Install everything in a requirements file (a path on the server).

    \b
    Example:
      influxdb3 install requirements /srv/plugins/requirements.txt
    """
    _install_requirements(client, requirements)


@click.group(context_settings=CTX)
def test() -> None:
    """Run a plugin once against the live database without keeping its writes.

    \b
    Example:
      influxdb3 test wal_plugin --database mydb --lp 'cpu,host=a usage=1' my_plugin.py
    """


def _print_json(r: object) -> None:
    click.echo(json.dumps(r, indent=2))


@test.command("wal_plugin", context_settings=CTX)
@database_option()
@click.option("--lp", default=None, help="Line protocol to feed the plugin.")
@click.option("--file", "file", default=None, help="Read the line protocol from this file.")
@click.option("--input-arguments", default=None, help="k=v,k2=v2 passed as args.")
@click.option("--cache-name", default=None)
@click.argument("filename")
@client_options
def test_wal_plugin(client: Client, database: str, lp: str | None, file: str | None,
                    input_arguments: str | None, cache_name: str | None, filename: str) -> None:
    """Dry-run a WAL plugin on some line protocol; print its logs and would-be writes.

    \b
    Example:
      influxdb3 test wal_plugin --database mydb --lp 'cpu,host=a usage=1' \\
        --input-arguments double_count_table=cpu examples/wal_plugin/wal_plugin.py
    """
    if (lp is None) == (file is None):
        raise click.UsageError("give the input with exactly one of --lp or --file")
    if file is not None:
        try:
            lp = Path(file).expanduser().read_text()
        except OSError as e:
            fail(f"error: cannot read {file}: {e.strerror or e}", 2)
    body = {"filename": filename, "database": database, "input_lp": lp,
            "input_arguments": key_values(input_arguments, "--input-arguments")}
    if cache_name:
        body["cache_name"] = cache_name
    r = client.ok("POST", "/api/v3/plugin_test/wal", "Failed to test plugin", json_body=body)
    _print_json(r.json())


@test.command("schedule_plugin", context_settings=CTX)
@database_option()
@click.option("--schedule", default=None, help="Cron expression (seconds first).")
@click.option("--input-arguments", default=None, help="k=v,k2=v2 passed as args.")
@click.option("--cache-name", default=None)
@click.argument("filename")
@client_options
def test_schedule_plugin(client: Client, database: str, schedule: str | None,
                         input_arguments: str | None, cache_name: str | None,
                         filename: str) -> None:
    """Dry-run a scheduled plugin once; print its logs and would-be writes.

    \b
    Example:
      influxdb3 test schedule_plugin --database mydb --schedule '*/5 * * * * *' my_check.py
    """
    body = {"filename": filename, "database": database,
            "input_arguments": key_values(input_arguments, "--input-arguments")}
    if schedule:
        body["schedule"] = schedule
    if cache_name:
        body["cache_name"] = cache_name
    r = client.ok("POST", "/api/v3/plugin_test/schedule", "Failed to test plugin",
                  json_body=body)
    _print_json(r.json())
