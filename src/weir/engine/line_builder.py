"""`LineBuilder`: the helper plugins use to build one line of line protocol.

It behaves like the reference's `line_builder.py` (same methods, validation messages
and escaping), with one fix: string field values escape the backslash *before* the
quote, so `"a\\"b"` round-trips instead of producing an invalid line.

The worker puts `LineBuilder` and the four exception classes into `builtins` before
any plugin code runs, so plugins use them without importing anything. This module
imports only the standard library: it runs inside the plugin's Python.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = [
    "InfluxDBError",
    "InvalidKeyError",
    "InvalidLineError",
    "InvalidMeasurementError",
    "LineBuilder",
]


class InfluxDBError(Exception):
    """Base class of the errors LineBuilder raises."""


class InvalidMeasurementError(InfluxDBError):
    """The measurement (table) name cannot be used."""


class InvalidKeyError(InfluxDBError):
    """A tag or field key is empty or contains a space, comma or equals sign."""


class InvalidLineError(InfluxDBError):
    """The line cannot be built (it has no field)."""


def _escape_key_or_tag_value(s: str) -> str:
    return (s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
            .replace(" ", "\\ "))


def _escape_measurement(s: str) -> str:
    return s.replace(",", "\\,").replace(" ", "\\ ")


def _escape_string_field(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


class LineBuilder:
    """Build one line: `LineBuilder("cpu").tag("host", "a").float64_field("usage", 0.5)`.

    Every setter returns the builder, so calls chain. Setting a key again replaces its
    value but keeps its first position. `build()` returns the line as a string.
    """

    def __init__(self, measurement: str) -> None:
        if " " in measurement:
            raise InvalidMeasurementError("Measurement name cannot contain spaces")
        self.measurement = measurement
        self.tags: OrderedDict[str, str] = OrderedDict()
        self.fields: OrderedDict[str, str] = OrderedDict()
        self._timestamp_ns: int | None = None

    @staticmethod
    def _validate_key(key: str, key_type: str) -> None:
        if not key:
            raise InvalidKeyError(f"{key_type} key cannot be empty")
        if " " in key:
            raise InvalidKeyError(f"{key_type} key '{key}' cannot contain spaces")
        if "," in key:
            raise InvalidKeyError(f"{key_type} key '{key}' cannot contain commas")
        if "=" in key:
            raise InvalidKeyError(f"{key_type} key '{key}' cannot contain equals signs")

    def tag(self, key: str, value: object) -> LineBuilder:
        """Add a tag; the value is stored as `str(value)`."""
        self._validate_key(key, "tag")
        self.tags[key] = str(value)
        return self

    def int64_field(self, key: str, value: int) -> LineBuilder:
        """Add a signed integer field (`42i`)."""
        self._validate_key(key, "field")
        self.fields[key] = f"{value}i"
        return self

    def uint64_field(self, key: str, value: int) -> LineBuilder:
        """Add an unsigned integer field (`42u`); negative values raise ValueError."""
        self._validate_key(key, "field")
        if value < 0:
            raise ValueError(f"uint64 field '{key}' cannot be negative")
        self.fields[key] = f"{value}u"
        return self

    def float64_field(self, key: str, value: float) -> LineBuilder:
        """Add a float field; whole numbers are written with `.0` (`2.0`)."""
        self._validate_key(key, "field")
        self.fields[key] = f"{int(value)}.0" if value % 1 == 0 else str(value)
        return self

    def string_field(self, key: str, value: str) -> LineBuilder:
        """Add a string field, quoted, with backslashes and quotes escaped."""
        self._validate_key(key, "field")
        self.fields[key] = f'"{_escape_string_field(value)}"'
        return self

    def bool_field(self, key: str, value: bool) -> LineBuilder:
        """Add a boolean field (`t` / `f`)."""
        self._validate_key(key, "field")
        self.fields[key] = "t" if value else "f"
        return self

    def time_ns(self, timestamp_ns: int) -> LineBuilder:
        """Set the timestamp (nanoseconds since the epoch); without it the server's
        ingest time is used."""
        self._timestamp_ns = timestamp_ns
        return self

    def build(self) -> str:
        """The line protocol text; raises InvalidLineError when there is no field."""
        line = _escape_measurement(self.measurement)
        for k, v in self.tags.items():
            line += f",{k}={_escape_key_or_tag_value(v)}"
        if not self.fields:
            raise InvalidLineError(f"At least one field is required: {line}")
        line += " " + ",".join(
            f"{_escape_key_or_tag_value(k)}={v}" for k, v in self.fields.items()
        )
        if self._timestamp_ns is not None:
            line += f" {self._timestamp_ns}"
        return line

    def __repr__(self) -> str:
        try:
            return f"LineBuilder({self.build()!r})"
        except InfluxDBError:
            return f"LineBuilder({self.measurement!r})"


#: What the worker injects into `builtins` before plugin code runs.
BUILTINS = {
    "LineBuilder": LineBuilder,
    "InfluxDBError": InfluxDBError,
    "InvalidMeasurementError": InvalidMeasurementError,
    "InvalidKeyError": InvalidKeyError,
    "InvalidLineError": InvalidLineError,
}
