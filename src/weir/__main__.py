"""`python -m weir ...` is the same program as `weir` / `influxdb3`."""

from weir.cli import main

main()
