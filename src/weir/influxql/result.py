"""What an InfluxQL statement returns: an Arrow table plus how it splits into series."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa

MEASUREMENT = "iox::measurement"
#: the schema metadata key IOx uses for the same information
METADATA_KEY = "iox::influxql::group_key::metadata"

TAG_TYPE = pa.dictionary(pa.int32(), pa.string())
TIME_TYPE = pa.timestamp("ns")


@dataclass
class InfluxQLResult:
    """`table` starts with `iox::measurement`; `group_tags` are the GROUP BY tag columns
    (sorted), and `projected_tags` those of them the SELECT list also names (v1 output
    keeps those as columns as well as in `tags`)."""

    table: pa.Table
    group_tags: list[str] = field(default_factory=list)
    projected_tags: set[str] = field(default_factory=set)

    def with_metadata(self) -> pa.Table:
        names = self.table.column_names
        md = {
            "measurement_column_index": 0,
            "tag_key_columns": [
                {"tag_key": t, "column_index": names.index(t),
                 "is_projected": t in self.projected_tags}
                for t in self.group_tags if t in names
            ],
        }
        return self.table.replace_schema_metadata({METADATA_KEY: json.dumps(md)})


def empty_result(columns: list[tuple[str, pa.DataType]]) -> InfluxQLResult:
    schema = pa.schema([pa.field(MEASUREMENT, TAG_TYPE), *[pa.field(n, t) for n, t in columns]])
    return InfluxQLResult(schema.empty_table())
