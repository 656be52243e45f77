"""Write validation: parse a line protocol body against a database's stored schema, and
take the columns it adds into the catalog.

`validate_write` is the one place a write meets the catalog. Lines whose columns conflict
with the stored types, or that would pass Core's limits, are refused with the reason and
the line as written; the rest become one Arrow batch per table, ready for the WAL. A write
that stores nothing creates nothing (not even its database).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from weir import lineprotocol
from weir.catalog.catalog import Catalog
from weir.catalog.columns import Column
from weir.catalog.log import ColumnTypeConflict
from weir.catalog.schema import validate_db_name
from weir.errors import (
    DatabaseNotFound,
    InvalidName,
    LimitExceeded,
    LineProtocolError,
    PartialWrite,
    WriteError,
)
from weir.lineprotocol import ColumnValues, LineError, ParsedWrite, TableColumns

#: the precisions a stored write may name (the API layer decides which each API accepts)
PRECISION_NS: Mapping[str, int] = {
    "auto": 1, "ns": 1, "n": 1, "nanosecond": 1,
    "us": 1_000, "u": 1_000, "microsecond": 1_000,
    "ms": 1_000_000, "millisecond": 1_000_000,
    "s": 1_000_000_000, "second": 1_000_000_000,
}

_FIELD_TYPE_NAMES = {"FLOAT": "float", "INTEGER": "integer", "UINTEGER": "uinteger",
                     "STRING": "string", "BOOLEAN": "boolean"}

# Bodies below this size are parsed on the event loop: a thread hop costs more.
_PARSE_IN_THREAD_BYTES = 65536
#: validations of one write against a catalog other nodes keep changing under it
_VALIDATE_TRIES = 5


@dataclass
class ValidatedWrite:
    """What may be stored: (table, rows) in order, and the refused lines."""

    database: str
    tables: list[tuple[str, pa.RecordBatch]] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    #: refused lines that would have passed a database/table/column limit
    limit_lines: set[int] = field(default_factory=set)

    @property
    def rows(self) -> int:
        return sum(batch.num_rows for _, batch in self.tables)


def check_target(catalog: Catalog, database: str) -> None:
    """Refuse a write to a database that cannot take one, before anything is parsed."""
    try:
        validate_db_name(database)  # (refuses `_internal` too: no leading underscore)
    except InvalidName as e:
        raise WriteError(str(e)) from None
    # the original name until it is created anew, and the `<name>-<time>` listings show
    if not catalog.db_exists(database) and (catalog.was_deleted(database)
                                            or database in catalog.deleted_databases()):
        raise WriteError(
            f"cannot write to soft-deleted database '{database}' - it is marked for deletion")


def precision_factor(precision: str) -> int:
    """Nanoseconds per unit of `precision` (1 for `auto`)."""
    try:
        return PRECISION_NS[precision]
    except KeyError:
        raise WriteError(
            f"invalid precision {precision!r}: expected one of auto, ns, us, ms, s "
            "(or nanosecond, microsecond, millisecond, second)"
        ) from None


async def validate_write(catalog: Catalog, database: str, body: bytes | str, *,
                         precision: str, accept_partial: bool) -> ValidatedWrite:
    """Parse and validate `body`; add its new columns to the catalog (and persist it).

    Raises `LineProtocolError` at the first bad line unless `accept_partial`, and
    `WriteError` for an empty body. With `accept_partial`, refused lines are returned in
    `errors` (line order) and the caller stores the rest."""
    check_target(catalog, database)
    factor = precision_factor(precision)
    now = time.time_ns() // factor * factor

    def parse() -> ParsedWrite:
        return lineprotocol.parse(body, precision=precision, default_time_ns=now,
                                  stop_on_first_error=not accept_partial,
                                  schema=_schema_lookup(catalog, database))

    parsed = parse() if len(body) < _PARSE_IN_THREAD_BYTES else await asyncio.to_thread(parse)
    errors = list(parsed.errors)
    if not errors and parsed.lines == 0:
        raise WriteError("incoming write was empty")
    if errors and not accept_partial:
        raise LineProtocolError(errors[0])
    result = _validate_and_commit(catalog, database, parsed, errors, body)
    if result.errors:
        result.errors.sort(key=lambda e: e.line_number)
        if not accept_partial:
            first = result.errors[0]
            raise LineProtocolError(first,
                                    limit_exceeded=first.line_number in result.limit_lines)
    return result


def raise_refused_lines(result: ValidatedWrite) -> None:
    """After the accepted rows are stored: the refused lines, if any, as `PartialWrite`."""
    if result.errors:
        raise PartialWrite(result.errors, limit_exceeded=bool(result.limit_lines))


def _schema_lookup(catalog: Catalog, database: str
                   ) -> Callable[[str], dict[str, tuple[str, str]] | None]:
    def lookup(table: str) -> dict[str, tuple[str, str]] | None:
        try:
            cols = catalog.db(database).tables[table].columns
        except (KeyError, DatabaseNotFound):
            return None
        return {c.name: (c.kind, c.type) for c in cols.values()}

    return lookup


def _validate_and_commit(catalog: Catalog, database: str, parsed: ParsedWrite,
                         errors: list[LineError], body: bytes | str) -> ValidatedWrite:
    """`_validate`, then commit the database, tables and columns it added. If another
    node added one of those columns with another type, or took the last room under a
    limit, first, the lines are checked again against the catalog that node wrote."""
    for attempt in range(_VALIDATE_TRIES):
        out, changed = _validate(catalog, database, parsed, list(errors), body)
        if not changed:
            return out
        try:
            catalog.persist()
            return out
        except (ColumnTypeConflict, LimitExceeded):
            if attempt == _VALIDATE_TRIES - 1:
                raise
    raise AssertionError("unreachable")


def _validate(catalog: Catalog, database: str, parsed: ParsedWrite, errors: list[LineError],
              body: bytes | str) -> tuple[ValidatedWrite, bool]:
    """Check each table's columns against the catalog; drop rows that conflict. Adds
    the new database, tables and columns to the catalog in memory; True if it did."""
    out = ValidatedWrite(database, errors=errors)
    if not parsed.tables:
        return out, False
    body_lines: list[str] = []

    def line_at(n: int) -> str:  # split the body once, and only if a row is refused
        if not body_lines:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            body_lines.extend(text.split("\n"))
        return body_lines[n - 1].rstrip("\r") if 0 < n <= len(body_lines) else ""

    try:
        dbschema, created = catalog.ensure_database(database)
    except LimitExceeded as e:
        for tc in parsed.tables.values():
            refused = _row_errors(tc, range(tc.rows), str(e), line_at)
            errors.extend(refused)
            out.limit_lines.update(r.line_number for r in refused)
        return out, False
    changed = created

    bad_lines = {e.line_number for e in errors}
    for name, tc in parsed.tables.items():
        known = dbschema.tables.get(name)
        cols = known.columns if known else {}
        bad: dict[int, str] = {}
        new: list[Column] = []
        for tag, values in tc.tags.items():
            c = cols.get(tag)
            if c is None:
                new.append(Column(tag, "tag", "tag"))
            elif c.kind != "tag":
                _mark(bad, values, f"invalid column type for column '{tag}', expected "
                      f"{c.kind} ({c.type}), got tag")
        for fname, (ftype, values) in tc.fields.items():
            tname = _FIELD_TYPE_NAMES[ftype.name]
            c = cols.get(fname)
            if c is None:
                new.append(Column(fname, "field", tname))
            elif c.kind != "field":
                _mark(bad, values, f"invalid column type for column '{fname}', expected "
                      f"{c.kind}, got field")
            elif c.type != tname:
                _mark(bad, values, f"invalid field value in line protocol for field "
                      f"'{fname}': expected type {c.type}, but got {tname}")
        if bad:
            for row, msg in sorted(bad.items()):
                ln = tc.line_number(row)
                if ln not in bad_lines:
                    errors.append(LineError(ln, msg, line_at(ln)))
                    bad_lines.add(ln)
            tc = tc.drop_rows(set(bad))
            if not tc.rows:
                continue
            # Columns that only the dropped rows used must not enter the catalog.
            present = set(tc.tags) | set(tc.fields)
            new = [c for c in new if c.name in present]
        if new or known is None:
            try:
                catalog.add_columns(database, name, new)
                changed = True
            except LimitExceeded as e:
                refused = _row_errors(tc, range(tc.rows), str(e), line_at)
                errors.extend(refused)
                out.limit_lines.update(r.line_number for r in refused)
                continue
        out.tables.append((name, tc.to_arrow()))
    if created and not out.tables:
        # every line was refused: a write that stores nothing creates nothing either
        changed = not catalog.discard_empty_database(database)
    return out, changed


def _mark(bad: dict[int, str], values: Sequence[object], msg: str) -> None:
    items = values.to_pylist() if isinstance(values, ColumnValues) else values
    for i, v in enumerate(items):
        if v is not None and i not in bad:
            bad[i] = msg


def _row_errors(tc: TableColumns, rows: range, msg: str, line_at: Callable[[int], str]
                ) -> list[LineError]:
    return [LineError(n, msg, line_at(n)) for n in map(tc.line_number, rows)]
