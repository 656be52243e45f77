"""The `weir` / `influxdb3` command line."""


def main() -> None:
    # imported here, not at the top: importing one module of this package (weir.cli.serve,
    # weir.cli.client) must not load the whole command tree, and weir.cli.main itself
    # imports this package, which would make the two import each other
    from weir.cli.main import cli

    cli()
