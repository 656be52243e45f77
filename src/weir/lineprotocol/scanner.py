"""One line of line protocol, read carefully: every escaping rule, quoted strings, and a
reason for each way a line can be wrong.

Grammar (after the caller has trimmed the line's leading and trailing whitespace):

    line        = measurement ("," tag_key "=" tag_value)* " "+ field ("," field)*
                  (" "+ timestamp)?
    field       = field_key "=" (quoted_string | number | integer "i" | unsigned "u" | bool)

A backslash followed by a delimiter (`,`, `=`, space) or by another backslash stands for
that character; before any other character it is a literal backslash. The measurement
unescapes `\\,` `\\ ` `\\\\`; tag keys, tag values and field keys also `\\=`. An unescaped
`=` may appear inside a tag value. In a quoted string only `\\"` and `\\\\` are escapes.
"""

from __future__ import annotations

import math
import re

from weir.lineprotocol.batch import FieldType, FieldValue

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
U64_MAX = 2**64 - 1
MAX_STRING_BYTES = 65536

TRUE_WORDS = frozenset(("t", "T", "true", "True", "TRUE"))
FALSE_WORDS = frozenset(("f", "F", "false", "False", "FALSE"))
FLOAT_END = frozenset("0123456789.")
FLOAT_START = frozenset("0123456789-.")

# Names: runs of ordinary characters or backslash pairs (a lone backslash at the end of
# the line is literal). These four match the empty string: `.match()` never gives None.
_MEASUREMENT = re.compile(r"(?:[^\\, ]++|\\.?)*+")
_KEY = re.compile(r"(?:[^\\,= ]++|\\.?)*+")
_TAG_VALUE = re.compile(r"(?:[^\\, ]++|\\.?)*+")
_PLAIN_VALUE = re.compile(r"[^, ]*")
_STRING = re.compile(r'"((?:[^"\\]++|\\.?)*+)"')
_UNESCAPE_MEASUREMENT = re.compile(r"\\([\\, ])")
_UNESCAPE_KEY = re.compile(r"\\([\\,= ])")
_UNESCAPE_STRING = re.compile(r'\\(["\\])')


#: the reference's words for a line without a field set (`cpu,host=a`, `cpu 1234`,
#: `cpu val= 1`)
NO_FIELDS = "No fields were provided"


class LineSyntaxError(Exception):
    """A line is not valid line protocol; the message says why."""


def unescape_measurement(raw: str) -> str:
    return _UNESCAPE_MEASUREMENT.sub(r"\1", raw) if "\\" in raw else raw


def unescape_key(raw: str) -> str:
    """Tag keys, tag values and field keys."""
    return _UNESCAPE_KEY.sub(r"\1", raw) if "\\" in raw else raw


def _is_int_text(s: str) -> bool:
    """`-?[0-9]+`, ASCII digits only (int() would also take `+`, `_`, spaces, other
    scripts' digits)."""
    return s.isascii() and (s.isdigit() or (s[:1] == "-" and s[1:].isdigit()))


def field_value(key: str, raw: str) -> tuple[FieldType, FieldValue]:
    """An unquoted field value: float, integer (`12i`), unsigned (`12u`) or boolean.

    Floats are `-?([0-9]+.?[0-9]*|.[0-9]+)([eE][+-]?[0-9]+)?`: float() reads a superset,
    so the checks around it keep out signs, underscores, whitespace and non-ASCII.
    """
    if not raw:
        raise LineSyntaxError(f"missing value for field '{key}'")
    last = raw[-1]
    if last in FLOAT_END:
        try:
            v = float(raw)
        except ValueError:
            v = None
        if v is None or raw[0] not in FLOAT_START or "_" in raw or not raw.isascii():
            raise LineSyntaxError(f"invalid field value for '{key}': '{raw}'")
        if v == math.inf or v == -math.inf:
            raise LineSyntaxError(f"float value out of range for field '{key}': '{raw}'")
        return FieldType.FLOAT, v
    if last == "i":
        if not _is_int_text(raw[:-1]):
            raise LineSyntaxError(f"invalid field value for '{key}': '{raw}'")
        v = int(raw[:-1])
        if not I64_MIN <= v <= I64_MAX:
            raise LineSyntaxError(f"integer value out of range for field '{key}': '{raw}'")
        return FieldType.INTEGER, v
    if last == "u":
        body = raw[:-1]
        if not (body.isascii() and body.isdigit()):
            raise LineSyntaxError(f"invalid field value for '{key}': '{raw}'")
        v = int(body)
        if v > U64_MAX:
            raise LineSyntaxError(
                f"unsigned integer value out of range for field '{key}': '{raw}'")
        return FieldType.UINTEGER, v
    if raw in TRUE_WORDS:
        return FieldType.BOOLEAN, True
    if raw in FALSE_WORDS:
        return FieldType.BOOLEAN, False
    raise LineSyntaxError(f"invalid field value for '{key}': '{raw}'")


def field_value_lazy(key: str, raw: str) -> tuple[FieldType, FieldValue]:
    """Like field_value, but a float is left as its text, for the caller to convert a
    whole column at once (and to check it: this does not)."""
    if raw and raw[-1] in FLOAT_END:
        return FieldType.FLOAT, raw
    return field_value(key, raw)


def timestamp_ns(raw: str, factor: int, auto: bool) -> int:
    """A timestamp in the request's precision (or guessed from its size) as ns."""
    if not _is_int_text(raw):
        raise LineSyntaxError(f"invalid timestamp '{raw}'")
    ts = int(raw)
    if auto:
        factor = guess_factor(ts)
    ns = ts * factor
    if not I64_MIN <= ns <= I64_MAX:
        raise LineSyntaxError(f"timestamp out of range '{raw}'")
    return ns


def guess_factor(ts: int) -> int:
    """Precision `auto`: |ts|/1e9 < 5 means seconds, < 5000 ms, < 5e6 us, else ns."""
    a = -ts if ts < 0 else ts
    if a < 5_000_000_000:
        return 1_000_000_000
    if a < 5_000_000_000_000:
        return 1_000_000
    if a < 5_000_000_000_000_000:
        return 1_000
    return 1


def _string_value(line: str, pos: int, key: str) -> tuple[str, int]:
    m = _STRING.match(line, pos)
    if m is None:
        raise LineSyntaxError(f"unterminated string field value for '{key}'")
    raw = m.group(1)
    value = _UNESCAPE_STRING.sub(r"\1", raw) if "\\" in raw else raw
    if len(value) > MAX_STRING_BYTES // 4 and len(value.encode()) > MAX_STRING_BYTES:
        raise LineSyntaxError(
            f"string field value for '{key}' is longer than {MAX_STRING_BYTES} bytes")
    return value, m.end()


Scanned = tuple[str, list[tuple[str, str]], list[tuple[str, FieldType, FieldValue]], str | None]


def scan_line(line: str, lazy_floats: bool = False) -> Scanned:
    """(measurement, [(tag, value)], [(field, type, value)], timestamp text or None).

    `line` has no leading or trailing whitespace. Raises LineSyntaxError. With
    `lazy_floats`, float values stay text (see field_value_lazy).
    """
    n = len(line)
    m = _MEASUREMENT.match(line)
    assert m is not None
    pos = m.end()
    if pos == 0:
        raise LineSyntaxError("Invalid measurement was provided")  # the reference's words
    measurement = unescape_measurement(m.group())

    tags: list[tuple[str, str]] = []
    while pos < n and line[pos] == ",":
        m = _KEY.match(line, pos + 1)
        assert m is not None
        key = unescape_key(m.group())
        if not key:
            raise LineSyntaxError(f"missing tag key at column {pos + 2}")
        pos = m.end()
        if pos >= n or line[pos] != "=":
            raise LineSyntaxError(f"missing '=' after tag key '{key}'")
        m = _TAG_VALUE.match(line, pos + 1)
        assert m is not None
        value = unescape_key(m.group())
        if not value:
            raise LineSyntaxError(f"missing value for tag '{key}'")
        tags.append((key, value))
        pos = m.end()

    # Here pos is at a space or at the end of the line.
    while pos < n and line[pos] == " ":
        pos += 1
    if pos >= n:
        raise LineSyntaxError(NO_FIELDS)

    fields: list[tuple[str, FieldType, FieldValue]] = []
    while True:
        m = _KEY.match(line, pos)
        assert m is not None
        key = unescape_key(m.group())
        if not key:
            raise LineSyntaxError(NO_FIELDS if not fields else
                                  f"missing field key at column {pos + 1}")
        pos = m.end()
        if pos >= n or line[pos] != "=":
            # a first "field" that is none (`m 1234`) is a missing field set
            raise LineSyntaxError(NO_FIELDS if not fields else
                                  f"missing '=' after field key '{key}'")
        pos += 1
        if pos < n and line[pos] == '"':
            value, pos = _string_value(line, pos, key)
            fields.append((key, FieldType.STRING, value))
            if pos < n and line[pos] not in ", ":
                raise LineSyntaxError(
                    f"unexpected text after string field value for '{key}' at column {pos + 1}")
        else:
            m = _PLAIN_VALUE.match(line, pos)
            assert m is not None
            if not m.group() and not fields:  # `m v= 1`: no field set either
                raise LineSyntaxError(NO_FIELDS)
            ftype, v = (field_value_lazy if lazy_floats else field_value)(key, m.group())
            fields.append((key, ftype, v))
            pos = m.end()
        if pos < n and line[pos] == ",":
            pos += 1
            continue
        break

    if pos >= n:
        return measurement, tags, fields, None
    while line[pos] == " ":  # the line does not end with a space
        pos += 1
    end = line.find(" ", pos)
    if end < 0:
        return measurement, tags, fields, line[pos:]
    raise LineSyntaxError(f"unexpected text after timestamp: '{line[end:].strip()}'")
