"""A column of a table: its name, kind (tag, field, time) and type, and the Arrow types
the catalog's type names stand for. The base of the catalog's other modules (schema and
caches both build on it)."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TAG = "tag"
FIELD = "field"
TIME = "time"

#: column type names used in the catalog and system.influxdb_schema
ARROW_TYPES: dict[str, pa.DataType] = {
    "tag": pa.dictionary(pa.int32(), pa.string()),
    "float": pa.float64(),
    "integer": pa.int64(),
    "uinteger": pa.uint64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    "time": pa.timestamp("ns"),
}

#: the names the table-creation API uses for field types
API_FIELD_TYPES = {
    "utf8": "string",
    "int64": "integer",
    "uint64": "uinteger",
    "float64": "float",
    "bool": "boolean",
}

KIND_META = b"weir:kind"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # tag | field | time
    type: str  # tag | float | integer | uinteger | string | boolean | time

    def arrow_field(self) -> pa.Field:
        return pa.field(self.name, ARROW_TYPES[self.type], metadata={KIND_META: self.kind.encode()})
