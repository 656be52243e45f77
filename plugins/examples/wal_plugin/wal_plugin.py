"""Count the rows each WAL flush wrote to each table, into `write_reports`.

Trigger: `all_tables` (or `table:<name>`). Argument `double_count_table=<table>`
doubles that table's count (a demonstration of trigger arguments). The plugin skips
its own `write_reports` table, so its output does not feed back into it.
"""

# ruff: noqa: F821 - LineBuilder is a builtin inside the processing engine

REPORT_TABLE = "write_reports"


def process_writes(influxdb3_local, table_batches, args=None):
    double = (args or {}).get("double_count_table")
    for table_batch in table_batches:
        table = table_batch["table_name"]
        if table == REPORT_TABLE:
            continue
        row_count = len(table_batch["rows"])
        if double is not None and table == double:
            row_count *= 2
        report = (LineBuilder(REPORT_TABLE)
                  .tag("table_name", table)
                  .int64_field("row_count", row_count))
        influxdb3_local.write(report)
    influxdb3_local.info("wal_plugin.py done")
