"""Line protocol: parsing bytes into per-table columnar batches, and rendering lines.

`parse()` is the write hot path; see parser.py for how it stays fast.
"""

from weir.lineprotocol.format import (
    escape_key,
    escape_measurement,
    escape_string_field,
    format_line,
    format_value,
)
from weir.lineprotocol.parser import (
    PRECISION_NS,
    FieldType,
    LineError,
    ParsedWrite,
    TableColumns,
    parse,
)

__all__ = [
    "PRECISION_NS",
    "FieldType",
    "LineError",
    "ParsedWrite",
    "TableColumns",
    "escape_key",
    "escape_measurement",
    "escape_string_field",
    "format_line",
    "format_value",
    "parse",
]
