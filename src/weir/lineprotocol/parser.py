"""`parse()`: a line protocol body -> per-table columns plus per-line errors.

Two paths give the same answer:

* the batch path (columnar.py) takes a large body without backslashes whole, with
  numpy and Arrow kernels; it never judges errors: at anything unusual it gives up and
  leaves the body to the line path;
* the line path (linepath.py) reads line by line and names each bad line.
"""

from __future__ import annotations

from weir.lineprotocol.batch import ParsedWrite, SchemaLookup
from weir.lineprotocol.columnar import parse_plain_body
from weir.lineprotocol.linepath import parse_lines

PRECISION_NS = {
    "ns": 1, "n": 1, "nanosecond": 1,
    "us": 1_000, "u": 1_000, "microsecond": 1_000, "µs": 1_000,
    "ms": 1_000_000, "millisecond": 1_000_000,
    "s": 1_000_000_000, "second": 1_000_000_000,
}

# Bodies at least this large try the batch path first; below it the line path is as
# fast and the batch path's fixed costs dominate.
FAST_PATH_MIN_BYTES = 8192

# The line path converts float columns in bulk (rather than value by value) for bodies
# at least this large; below it the bulk conversion's fixed costs dominate.
LAZY_FLOATS_MIN_BYTES = 4096


def precision_factor(precision: str) -> tuple[int, bool]:
    """(ns per unit, guess per timestamp?) for a precision name."""
    if precision == "auto":
        return 1, True
    try:
        return PRECISION_NS[precision], False
    except KeyError:
        raise ValueError(f"invalid precision {precision!r}: expected auto, ns, us, ms or s"
                         ) from None


def parse(body: bytes | str, *, precision: str = "auto", default_time_ns: int,
          stop_on_first_error: bool = False, schema: SchemaLookup | None = None
          ) -> ParsedWrite:
    """Parse a line protocol body into per-table columns plus per-line errors.

    `default_time_ns` is given to lines without a timestamp (the caller truncates it to
    the precision). With `stop_on_first_error`, parsing stops at the first bad line and
    only that error is returned (the v1/v2 write semantics). `schema(table)` may give
    the stored columns as {name: (kind, type)}: a line that conflicts with them is an
    error of that line, as is one that conflicts with an earlier line of the batch.
    """
    factor, auto = precision_factor(precision)
    if isinstance(body, str) and (len(body) >= FAST_PATH_MIN_BYTES or not body.isascii()):
        body = _as_bytes(body)
    if isinstance(body, bytes) and len(body) >= FAST_PATH_MIN_BYTES and b"\\" not in body:
        fast = parse_plain_body(body, factor=factor, auto=auto,
                                default_time_ns=default_time_ns, schema=schema)
        if fast is not None:
            return fast
    return parse_lines(body, factor, auto, default_time_ns, stop_on_first_error, schema,
                       lazy=len(body) >= LAZY_FLOATS_MIN_BYTES)


def _as_bytes(body: bytes | str) -> bytes:
    """Text bodies as UTF-8; lone surrogates pass through, to fail their line's decode."""
    if isinstance(body, bytes):
        return body
    try:
        return body.encode()
    except UnicodeEncodeError:
        return body.encode("utf-8", "surrogatepass")
