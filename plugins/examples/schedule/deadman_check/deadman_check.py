"""Deadman check: alert when a table has received no data for a while.

Trigger: a schedule, e.g. `every:1m`. Arguments:

* `table` (required) - the table to watch
* `window` (default `5 minutes`) - how far back to look, as an SQL interval
* `alert_table` (default `deadman_alerts`) - where alerts are written

Each call counts the rows written to `table` within the last `window`.
With none, it logs an error and writes an alert row (`table` tag, `window` and
`message` fields). When data comes back after an alert, it logs that once. The
state between calls lives in the trigger's cache.
"""

# ruff: noqa: F821 - LineBuilder is a builtin inside the processing engine

import re

_INTERVAL = re.compile(r"^\d+\s*(second|minute|hour|day|week)s?$", re.IGNORECASE)


def process_scheduled_call(influxdb3_local, call_time, args=None):
    args = args or {}
    table = args.get("table")
    if not table:
        influxdb3_local.error("deadman_check needs a 'table' argument")
        return
    window = args.get("window", "5 minutes").strip()
    if not _INTERVAL.match(window):
        influxdb3_local.error(f"invalid window {window!r}: use e.g. '30 seconds' or '5 minutes'")
        return
    alert_table = args.get("alert_table", "deadman_alerts")
    try:
        rows = influxdb3_local.query(
            f"SELECT COUNT(*) AS n FROM \"{table}\" WHERE time > now() - INTERVAL '{window}'")
        count = rows[0]["n"] if rows else 0
    except Exception as e:  # noqa: BLE001 - e.g. no such table yet: as silent as it gets
        influxdb3_local.warn(f"cannot query {table}: {e}")
        count = 0

    was_silent = influxdb3_local.cache.get("silent", default=False)
    if count:
        if was_silent:
            influxdb3_local.info(f"{table} is receiving data again ({count} rows in {window})")
        influxdb3_local.cache.put("silent", False)
        return
    influxdb3_local.error(f"no data in {table} in the last {window}")
    influxdb3_local.cache.put("silent", True)
    influxdb3_local.write(
        LineBuilder(alert_table)
        .tag("table", table)
        .string_field("window", window)
        .string_field("message", f"no data in {table} in the last {window}"))
