"""The one home of the `system.*` tables (surface.md §4).

Each part of the server that has system tables offers them through a
`SystemTableProvider` (a callable: database name -> {table name: `SystemTable`}), reading
what it needs through the small protocols of its module, never the classes behind them:

* `StorageTables` (storage): `parquet_files`, `influxdb_schema`; `databases`, `tables`,
  `generation_durations` in `_internal`;
* `LifeCycleTables` (snapshots and compactions): `snapshots`, `compactions`;
* `EngineTables` (the processing engine): `processing_engine_logs`,
  `processing_engine_triggers`, `processing_engine_trigger_arguments`; `plugin_files` in
  `_internal`;
* `TokenTables` (the token store): `tokens` in `_internal` (with auth off too);
* `ServerTables` (the server): `queries` (the query log); `nodes` in `_internal`;
* `CacheTables` (the last-value and distinct-value caches' definitions): `last_caches`,
  `distinct_caches`.

Storage keeps a `SystemTables` registry of them; the query layer gets one database's
tables, knows their columns without building them, and builds only those a query reads.
This package imports nothing of storage or the query layer.
"""

from weir.system_tables.base import SystemTable, SystemTableProvider, SystemTables
from weir.system_tables.caches import CacheTables
from weir.system_tables.engine import EngineTables
from weir.system_tables.life_cycle import LifeCycleTables
from weir.system_tables.server import NodeInfo, ServerTables
from weir.system_tables.storage import StorageTables
from weir.system_tables.tokens import TokenTables

__all__ = ["CacheTables", "EngineTables", "LifeCycleTables", "NodeInfo", "ServerTables",
           "StorageTables", "SystemTable", "SystemTableProvider", "SystemTables",
           "TokenTables"]
