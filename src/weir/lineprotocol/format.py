"""Rendering rows back to line protocol: the inverse of the parser.

`parse(format_line(m, tags, fields, t))` gives back exactly `m`, `tags`, `fields` and
`t` for any names and values line protocol can carry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from weir.lineprotocol.batch import FieldType, FieldValue

_MEASUREMENT = str.maketrans({"\\": "\\\\", ",": "\\,", " ": "\\ "})
_KEY = str.maketrans({"\\": "\\\\", ",": "\\,", "=": "\\=", " ": "\\ "})
_STRING = str.maketrans({"\\": "\\\\", '"': '\\"'})


def escape_measurement(s: str) -> str:
    """Escape backslashes, commas and spaces in a measurement name."""
    return s.translate(_MEASUREMENT)


def escape_key(s: str) -> str:
    """Escape backslashes, commas, equals signs and spaces in a tag key, tag value or
    field key."""
    return s.translate(_KEY)


def escape_string_field(s: str) -> str:
    """Escape backslashes and double quotes in a string field value (the caller adds
    the surrounding quotes; `format_value` does)."""
    return s.translate(_STRING)


def format_value(ftype: FieldType, v: FieldValue) -> str:
    """One field value as line protocol: `1.0`, `3i`, `3u`, `true`, `"text"`."""
    if ftype is FieldType.FLOAT:
        f = float(v)
        if math.isnan(f) or math.isinf(f):
            raise ValueError(f"line protocol cannot carry the float {f}")
        r = repr(f)
        return r if ("." in r or "e" in r) else r + ".0"
    if ftype is FieldType.INTEGER:
        return f"{int(v)}i"
    if ftype is FieldType.UINTEGER:
        return f"{int(v)}u"
    if ftype is FieldType.BOOLEAN:
        return "true" if v else "false"
    s = str(v)
    if "\n" in s:
        raise ValueError("line protocol cannot carry a newline in a string field")
    return '"' + s.translate(_STRING) + '"'


def _check_name(what: str, s: str) -> None:
    if not s:
        raise ValueError(f"line protocol cannot carry an empty {what}")
    if "\n" in s:
        raise ValueError(f"line protocol cannot carry a newline in a {what}: {s!r}")


def format_line(measurement: str, tags: Mapping[str, str | None],
                fields: Mapping[str, tuple[FieldType, FieldValue | None]],
                time_ns: int | None = None) -> str:
    """One line of line protocol.

    Tags whose value is None or empty are left out, as are fields whose value is None
    (line protocol cannot carry either); at least one field must remain. Raises
    ValueError for what line protocol cannot carry: empty names, newlines, NaN or
    infinite floats, a measurement that starts with `#` (a comment) or a tab.
    """
    _check_name("measurement", measurement)
    if measurement[0] in "#\t":
        raise ValueError(f"line protocol cannot carry a measurement starting with "
                         f"{measurement[0]!r}")
    out = [measurement.translate(_MEASUREMENT)]
    for k, tag in tags.items():
        if tag is None or tag == "":
            continue
        _check_name("tag key", k)
        text = str(tag)
        _check_name("tag value", text)
        out.append(f",{k.translate(_KEY)}={text.translate(_KEY)}")
    sep = " "
    for k, (ftype, v) in fields.items():
        if v is None:
            continue
        _check_name("field key", k)
        out.append(f"{sep}{k.translate(_KEY)}={format_value(ftype, v)}")
        sep = ","
    if sep == " ":
        raise ValueError("a line needs at least one field")
    if time_ns is not None:
        out.append(f" {int(time_ns)}")
    return "".join(out)
