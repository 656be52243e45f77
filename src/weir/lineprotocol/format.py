"""Rendering values back to line protocol (the inverse of the parser)."""

from __future__ import annotations

import math
from typing import Any

from weir.lineprotocol.parser import FieldType


def escape_measurement(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")


def escape_key(s: str) -> str:
    """Tag keys, tag values and field keys."""
    return (s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
            .replace(" ", "\\ "))


def escape_string_field(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_value(ftype: FieldType, v: Any) -> str:
    if ftype is FieldType.FLOAT:
        f = float(v)
        if math.isnan(f) or math.isinf(f):
            raise ValueError(f"line protocol cannot carry the float {f}")
        r = repr(f)
        return r if any(c in r for c in ".en") else r + ".0"
    if ftype is FieldType.INTEGER:
        return f"{int(v)}i"
    if ftype is FieldType.UINTEGER:
        return f"{int(v)}u"
    if ftype is FieldType.BOOLEAN:
        return "true" if v else "false"
    return escape_string_field(str(v))


def format_line(measurement: str, tags: dict[str, str], fields: dict[str, tuple[FieldType, Any]],
                time_ns: int | None = None) -> str:
    """One line of line protocol. Tags with empty values are left out (LP cannot carry them)."""
    if not fields:
        raise ValueError("a line needs at least one field")
    head = escape_measurement(measurement)
    tag_part = "".join(f",{escape_key(k)}={escape_key(str(v))}" for k, v in tags.items()
                       if v is not None and str(v) != "")
    field_part = ",".join(f"{escape_key(k)}={format_value(t, v)}" for k, (t, v) in fields.items())
    line = f"{head}{tag_part} {field_part}"
    return line if time_ns is None else f"{line} {time_ns}"
