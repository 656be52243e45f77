"""What `parse()` returns: per-table columns, line errors, and their Arrow form.

Every column is held as an Arrow array (the parser builds them in bulk) and shown to
Python code as a `ColumnValues`: a read-only, list-like sequence with one entry per row
and None where a row lacks the column. It turns into a Python list only when someone
reads it element by element, so the write path (parse, `to_arrow()`) never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class FieldType(Enum):
    FLOAT = "float"
    INTEGER = "integer"
    UINTEGER = "uinteger"
    STRING = "string"
    BOOLEAN = "boolean"


#: one field value as Python holds it: float, integer or unsigned (int), string, boolean;
#: also every entry of a column (tags are str, times and line numbers int), None where a
#: row lacks the column. (The line path keeps a float as its text until it converts the
#: whole column.)
FieldValue = float | int | str | bool


ARROW_TYPES: dict[FieldType, pa.DataType] = {
    FieldType.FLOAT: pa.float64(),
    FieldType.INTEGER: pa.int64(),
    FieldType.UINTEGER: pa.uint64(),
    FieldType.STRING: pa.string(),
    FieldType.BOOLEAN: pa.bool_(),
}
TAG_TYPE = pa.dictionary(pa.int32(), pa.string())
TIME_TYPE = pa.timestamp("ns")
KIND_KEY = b"weir:kind"

# `schema(table)` -> the stored columns {name: (kind, type)}, kind "tag", "field" or "time"
# and, for fields, type a FieldType value ("float", ...); None for a table not yet stored.
SchemaLookup = Callable[[str], Mapping[str, tuple[str, str]] | None]
_TAG_META = {KIND_KEY: b"tag"}
_FIELD_META = {KIND_KEY: b"field"}
_TIME_META = {KIND_KEY: b"time"}


@dataclass
class LineError:
    """One rejected line: 1-based number, a reason, and the line as written."""

    line_number: int
    message: str
    original_line: str


class ColumnValues(Sequence[FieldValue | None]):
    """One column as a read-only list: `col[i]`, `len(col)`, iteration, `col == [...]`.

    `.array` is the Arrow array underneath; `.to_pylist()` gives a plain list.
    """

    __slots__ = ("_list", "array")

    def __init__(self, array: pa.Array) -> None:
        self.array = array
        self._list: list[FieldValue | None] | None = None

    def to_pylist(self) -> list[FieldValue | None]:
        if self._list is None:
            self._list = self.array.to_pylist()
        return self._list

    def __len__(self) -> int:
        return len(self.array)

    @overload
    def __getitem__(self, i: int) -> FieldValue | None: ...
    @overload
    def __getitem__(self, i: slice) -> list[FieldValue | None]: ...
    def __getitem__(self, i: int | slice) -> FieldValue | list[FieldValue | None] | None:
        return self.to_pylist()[i]

    def __iter__(self) -> Iterator[FieldValue | None]:
        return iter(self.to_pylist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ColumnValues):
            return self.to_pylist() == other.to_pylist()
        if isinstance(other, list | tuple):
            return self.to_pylist() == list(other)
        return NotImplemented

    # unhashable, as the list it stands for (Sequence declares __hash__ a method)
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ColumnValues({self.to_pylist()!r})"


def tag_columns(series_tags: Sequence[Mapping[str, str]], row_series: np.ndarray
                ) -> dict[str, pa.Array]:
    """Tag columns as dictionary arrays, built once per series rather than per row.

    `series_tags[i]` is series i's {tag: value}, `row_series[r]` the series of row r.
    Keys come in first-seen order (series in order, then each series' own order).
    """
    keys = dict.fromkeys(k for tags in series_tags for k in tags)
    out: dict[str, pa.Array] = {}
    small = len(row_series) <= 64  # numpy's fixed costs outweigh its speed
    for k in keys:
        words: dict[str, int] = {}
        series_codes = [None if (v := tags.get(k)) is None else words.setdefault(v, len(words))
                        for tags in series_tags]
        if small:
            indices = pa.array([series_codes[i] for i in row_series], pa.int32())
        else:
            codes = np.array([-1 if c is None else c for c in series_codes],
                             np.int32)[row_series]
            missing = codes < 0
            indices = pa.array(codes, mask=missing) if missing.any() else pa.array(codes)
        out[k] = pa.DictionaryArray.from_arrays(indices, pa.array(list(words), pa.string()))
    return out


@dataclass
class TableColumns:
    """One table's rows of a write, column by column, rows in line order.

    `tags` and `fields` are in first-seen order; every column has `rows` entries.
    """

    name: str
    line_numbers: ColumnValues
    tags: dict[str, ColumnValues]
    fields: dict[str, tuple[FieldType, ColumnValues]]
    times: ColumnValues

    @classmethod
    def from_arrays(cls, name: str, line_numbers: pa.Array, tags: dict[str, pa.Array],
                    fields: dict[str, tuple[FieldType, pa.Array]], times: pa.Array
                    ) -> TableColumns:
        return cls(name, ColumnValues(line_numbers),
                   {k: ColumnValues(v) for k, v in tags.items()},
                   {k: (t, ColumnValues(v)) for k, (t, v) in fields.items()},
                   ColumnValues(times))

    @property
    def rows(self) -> int:
        return len(self.times)

    def line_number(self, row: int) -> int:
        """The body line that row `row` came from."""
        return int(self.line_numbers.array[row].as_py())

    def drop_rows(self, rows: set[int]) -> TableColumns:
        """A copy without the rows at these indexes (out-of-range indexes are ignored)."""
        n = self.rows
        keep = np.ones(n, np.bool_)
        drop = [r for r in rows if 0 <= r < n]
        keep[drop] = False
        mask = pa.array(keep)

        def pick(col: ColumnValues) -> pa.Array:
            return pc.filter(col.array, mask)

        return TableColumns.from_arrays(
            self.name, pick(self.line_numbers),
            {k: pick(v) for k, v in self.tags.items()},
            {k: (t, pick(v)) for k, (t, v) in self.fields.items()},
            pick(self.times))

    def to_arrow(self) -> pa.RecordBatch:
        """Tags as dictionary<int32, utf8>, fields by type, then `time` (timestamp[ns]);
        each column's metadata says its kind (`weir:kind` = tag, field or time)."""
        arrays = [col.array for col in self.tags.values()]
        arrays.extend(col.array for _t, col in self.fields.values())
        arrays.append(self.times.array.view(TIME_TYPE))
        shape = (tuple(self.tags), tuple((k, t) for k, (t, _c) in self.fields.items()))
        schema = _SCHEMAS.get(shape)
        if schema is None:
            schema = pa.schema(
                [pa.field(k, TAG_TYPE, metadata=_TAG_META) for k in self.tags]
                + [pa.field(k, ARROW_TYPES[t], metadata=_FIELD_META) for k, t in shape[1]]
                + [pa.field("time", TIME_TYPE, metadata=_TIME_META)])
            if len(_SCHEMAS) >= 1024:
                _SCHEMAS.clear()
            _SCHEMAS[shape] = schema
        return pa.RecordBatch.from_arrays(arrays, schema=schema)


# Arrow schemas by column names and types: writers send the same shapes again and again.
_SCHEMAS: dict[tuple[tuple[str, ...], tuple[tuple[str, FieldType], ...]], pa.Schema] = {}


@dataclass
class ParsedWrite:
    """The outcome of one body: tables in order of first appearance, and the lines
    that were rejected (sorted by line number). `lines` counts the non-blank,
    non-comment lines seen, good or bad."""

    tables: dict[str, TableColumns] = field(default_factory=dict)
    errors: list[LineError] = field(default_factory=list)
    lines: int = 0
