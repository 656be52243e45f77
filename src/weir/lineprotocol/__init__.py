"""Line protocol: parsing bodies into per-table columnar batches, and rendering lines.

`parse()` is the write hot path (parser.py says how its two paths share the work);
`format_line()` and the `escape_*` functions render rows back to line protocol.
"""

from weir.lineprotocol.batch import (
    ColumnValues,
    FieldType,
    FieldValue,
    LineError,
    ParsedWrite,
    SchemaLookup,
    TableColumns,
)
from weir.lineprotocol.format import (
    escape_key,
    escape_measurement,
    escape_string_field,
    format_line,
    format_value,
)
from weir.lineprotocol.parser import PRECISION_NS, parse, precision_factor

__all__ = [
    "PRECISION_NS",
    "ColumnValues",
    "FieldType",
    "FieldValue",
    "LineError",
    "ParsedWrite",
    "SchemaLookup",
    "TableColumns",
    "escape_key",
    "escape_measurement",
    "escape_string_field",
    "format_line",
    "format_value",
    "parse",
    "precision_factor",
]
