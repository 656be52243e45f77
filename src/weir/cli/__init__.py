"""The `weir` / `influxdb3` command line."""


def main() -> None:
    from weir.cli.main import cli

    cli()
