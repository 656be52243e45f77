"""The batch path: a whole body parsed with numpy and Arrow kernels.

It serves the common large write: no backslashes, every line well formed (quoted string
fields are fine). The body is never split into Python strings. Instead:

1. numpy finds every newline, space, comma, equals sign and double quote; delimiters
   between a pair of quotes are dropped. From the positions come each line's series
   key, field set and timestamp, and each field's key and value as byte ranges.
2. Arrow string arrays are laid over the body *in place*: offsets alternate between
   the start and end of each wanted range, and the gaps in between are null entries,
   so casting such an array parses exactly the wanted ranges.
3. Series keys and field keys are dictionary-encoded; each distinct series key is parsed
   once in Python (through the line path's cache); all float values are cast in one
   kernel call, as are all integers, all unsigned integers and all timestamps.
4. Items are grouped per table and field key with numpy; tag columns are built once
   per series as dictionary arrays.

Anything unusual (a bad value, mixed types, a repeated key, a schema conflict, odd
whitespace) makes it give up and return None: the line path then takes the body and
names each bad line. So this path never decides what is an error, and the property
tests check that both paths agree whenever this one answers.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weir.lineprotocol.batch import (
    FieldType,
    ParsedWrite,
    SchemaLookup,
    TableColumns,
    tag_columns,
)
from weir.lineprotocol.linepath import series_entry
from weir.lineprotocol.scanner import I64_MAX, I64_MIN, MAX_STRING_BYTES

_TAB, _NL, _CR, _SPACE, _QUOTE, _HASH, _PLUS = 9, 10, 13, 32, 34, 35, 43
_COMMA, _DOT, _EQ = 44, 46, 61
_ZERO, _NINE, _LOWER_I, _LOWER_U, _LOWER_X, _CASE_BIT = 48, 57, 105, 117, 120, 32

_FLOAT, _INT, _UINT, _BOOL, _STRING = 0, 1, 2, 3, 4
_CLASS_TYPES = {_FLOAT: FieldType.FLOAT, _INT: FieldType.INTEGER,
                _UINT: FieldType.UINTEGER, _BOOL: FieldType.BOOLEAN,
                _STRING: FieldType.STRING}
_BOOL_WORDS = pa.array(["t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"])
_TRUE_WORDS = pa.array(["t", "T", "true", "True", "TRUE"])
_AUTO_FACTORS = (1_000_000_000, 1_000_000, 1_000, 1)


class _GiveUp(Exception):
    pass


def parse_plain_body(body: bytes, *, factor: int, auto: bool, default_time_ns: int,
                     schema: SchemaLookup | None) -> ParsedWrite | None:
    """Parse `body` (which has no backslashes) or return None to leave it to the line
    path."""
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        return _parse(body, factor, auto, default_time_ns, schema)
    except (_GiveUp, pa.ArrowInvalid):
        return None


def _check(ok: bool | np.bool_) -> None:
    if not ok:
        raise _GiveUp


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of arange(lo[k], hi[k]) over k."""
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    shift = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    return shift + np.arange(total)


def _in_lines(pos: np.ndarray, starts: np.ndarray, ends: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """The positions that fall inside one of the (sorted, disjoint) lines, and the index
    of that line."""
    owner = np.searchsorted(starts, pos, side="right") - 1
    inside = owner >= 0
    inside[inside] = pos[inside] < ends[owner[inside]]
    return pos[inside], owner[inside]


class _Spans:
    """Builds Arrow string arrays whose even entries are byte ranges of the body."""

    def __init__(self, body: bytes) -> None:
        self.data = pa.py_buffer(body)
        large = len(body) >= 2**31 - 1
        self.offset_type = np.int64 if large else np.int32
        self.type = pa.large_string() if large else pa.string()

    def array(self, starts: np.ndarray, ends: np.ndarray,
              valid: np.ndarray | None = None) -> pa.Array:
        k = len(starts)
        offsets = np.empty(2 * k, self.offset_type)
        offsets[0::2] = starts
        offsets[1::2] = ends
        bits = np.zeros(2 * k - 1, np.bool_)
        bits[0::2] = True if valid is None else valid
        validity = pa.py_buffer(np.packbits(bits, bitorder="little"))
        return pa.Array.from_buffers(self.type, 2 * k - 1,
                                     [validity, pa.py_buffer(offsets), self.data])


def _even_values(arr: pa.Array, dtype: type[np.generic]) -> np.ndarray:
    """The values at even positions of a primitive array (null slots hold garbage)."""
    raw = np.frombuffer(arr.buffers()[1], dtype=dtype)
    return raw[arr.offset:arr.offset + len(arr):2]


def _data_lines(buf: np.ndarray, body: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index, start, end) of each line that is neither blank nor a comment, without its
    newline or the CR before it. Gives up on indented lines and trailing whitespace (the
    line path's business)."""
    size = len(buf)
    newlines = np.flatnonzero(buf == _NL)
    starts = np.empty(len(newlines) + 1, np.int64)
    starts[0] = 0
    starts[1:] = newlines + 1
    ends = np.empty_like(starts)
    ends[:-1] = newlines
    ends[-1] = size
    if b"\r" in body:
        ends -= (ends > starts) & (buf[np.maximum(ends - 1, 0)] == _CR)
    nonblank = ends > starts
    first = np.zeros(len(starts), np.uint8)
    first[nonblank] = buf[starts[nonblank]]
    last = np.zeros(len(starts), np.uint8)
    last[nonblank] = buf[ends[nonblank] - 1]
    _check(not np.any((first == _SPACE) | (first == _TAB)))
    _check(not np.any((last == _SPACE) | (last == _TAB) | (last == _CR)))
    line_index = np.flatnonzero(nonblank & (first != _HASH))
    return line_index, starts[line_index], ends[line_index]


def _check_not_hex(buf: np.ndarray, starts: np.ndarray) -> None:
    """Arrow's integer casts also read hexadecimal (`0x1f`, `0X1F`); line protocol's
    integers are decimal: give up on a value whose second byte is an x or X."""
    second = np.take(buf, starts + 1, mode="clip")  # (a value may end the body)
    _check(not np.any((second | _CASE_BIT) == _LOWER_X))


def _timestamps(buf: np.ndarray, spans: _Spans, starts: np.ndarray, ends: np.ndarray,
                factor: int, auto: bool) -> np.ndarray:
    """The timestamps in these ranges as ns (`auto`: the precision guessed per value)."""
    _check(not np.any(buf[starts] == _PLUS))
    _check_not_hex(buf, starts)
    raw = _even_values(pc.cast(spans.array(starts, ends), pa.int64()), np.int64)
    if auto:
        mag = np.abs(raw)  # |INT64_MIN| stays negative: it gets 10**9 and fails below
        mult = np.where(mag < 5 * 10**9, 10**9,
                        np.where(mag < 5 * 10**12, 10**6,
                                 np.where(mag < 5 * 10**15, 10**3, 1)))
        factors: tuple[int, ...] = _AUTO_FACTORS
    else:
        mult = np.full(len(raw), factor, np.int64)
        factors = (factor,)
    for f in factors:
        sel = raw[mult == f]
        if len(sel):
            _check(sel.max() <= I64_MAX // f and sel.min() >= -(-I64_MIN // f))
    return raw * mult


def _field_values(buf: np.ndarray, spans: _Spans, value_start: np.ndarray,
                  item_end: np.ndarray, quotes: np.ndarray | None
                  ) -> tuple[np.ndarray, dict[int, np.ndarray], pa.Array | None]:
    """Each value's class (from its first and last byte), the numeric and boolean values
    by class (indexed by item), and the strings (at even positions, by item * 2)."""
    n_items = len(value_start)
    first_byte = buf[value_start]
    last_byte = buf[item_end - 1]
    _check(not np.any(first_byte == _PLUS))
    item_class = np.full(n_items, _BOOL, np.int8)
    item_class[((last_byte >= _ZERO) & (last_byte <= _NINE)) | (last_byte == _DOT)] = _FLOAT
    item_class[last_byte == _LOWER_I] = _INT
    item_class[last_byte == _LOWER_U] = _UINT
    strings = None
    if quotes is not None:
        # every quote opens or closes a string value: `="` ... `"` then `,`/space/end
        is_string = first_byte == _QUOTE
        item_class[is_string] = _STRING
        str_start = value_start[is_string]
        str_end = item_end[is_string]
        _check(len(quotes) == 2 * len(str_start))
        _check(np.all(str_end - str_start >= 2) and np.all(buf[str_end - 1] == _QUOTE))
        _check(np.all(np.searchsorted(quotes, str_end) - np.searchsorted(quotes, str_start)
                      == 2))
        _check(np.all(str_end - str_start - 2 <= MAX_STRING_BYTES))
        if len(str_start):  # the text between the quotes (empty ranges elsewhere)
            strings = spans.array(np.where(is_string, value_start + 1, value_start),
                                  np.where(is_string, item_end - 1, value_start), is_string)
    values: dict[int, np.ndarray] = {}
    for cls, arrow_type, trim in ((_FLOAT, pa.float64(), 0), (_INT, pa.int64(), 1),
                                  (_UINT, pa.uint64(), 1)):
        mask = item_class == cls
        if mask.any():
            if cls != _FLOAT:
                _check_not_hex(buf, value_start[mask])
            arr = spans.array(value_start, item_end - trim, mask)
            values[cls] = _even_values(pc.cast(arr, arrow_type), arrow_type.to_pandas_dtype())
    if _FLOAT in values:
        _check(np.all(np.isfinite(values[_FLOAT][item_class == _FLOAT])))
    mask = item_class == _BOOL
    if mask.any():
        arr = spans.array(value_start, item_end, mask)
        known_word = pc.is_in(arr, value_set=_BOOL_WORDS).to_numpy(zero_copy_only=False)
        _check(np.all(known_word[0::2][mask]))
        truth = pc.is_in(arr, value_set=_TRUE_WORDS).to_numpy(zero_copy_only=False)
        values[_BOOL] = np.ascontiguousarray(truth[0::2])
    return item_class, values, strings


def _parse(body: bytes, factor: int, auto: bool, default_time_ns: int,
           schema: SchemaLookup | None) -> ParsedWrite:
    buf = np.frombuffer(body, np.uint8)
    line_index, s, e = _data_lines(buf, body)
    n = len(line_index)
    if n == 0:
        return ParsedWrite()

    # --- quotes: delimiters between a pair of quotes are text ----------------------
    quotes = None
    if b'"' in body:
        quotes, owner = _in_lines(np.flatnonzero(buf == _QUOTE), s, e)
        _check(not np.any(np.bincount(owner, minlength=n) & 1))

    def unquoted(pos: np.ndarray) -> np.ndarray:
        if quotes is None:
            return pos
        outside: np.ndarray = pos[(np.searchsorted(quotes, pos, side="right") & 1) == 0]
        return outside

    # --- sections: exactly one or two spaces per line ---------------------------------
    spaces, owner = _in_lines(np.flatnonzero(buf == _SPACE), s, e)
    if quotes is not None:
        keep = (np.searchsorted(quotes, spaces, side="right") & 1) == 0
        spaces, owner = spaces[keep], owner[keep]
    per_line = np.bincount(owner, minlength=n)
    _check(per_line.min() >= 1 and per_line.max() <= 2)
    first_space = np.cumsum(per_line) - per_line
    sp1 = spaces[first_space]
    has_ts = per_line == 2
    sp2 = spaces[first_space[has_ts] + 1]
    fields_end = e.copy()
    fields_end[has_ts] = sp2
    _check(np.all(fields_end > sp1 + 1))

    # --- field items: key=value between the field set's commas -----------------------
    commas = unquoted(np.flatnonzero(buf == _COMMA))
    equals = unquoted(np.flatnonzero(buf == _EQ))
    c_lo = np.searchsorted(commas, sp1)
    c_hi = np.searchsorted(commas, fields_end)
    e_lo = np.searchsorted(equals, sp1)
    e_hi = np.searchsorted(equals, fields_end)
    items_per_line = c_hi - c_lo + 1
    _check(np.array_equal(e_hi - e_lo, items_per_line))
    field_commas = commas[_ranges(c_lo, c_hi)]
    eq_pos = equals[_ranges(e_lo, e_hi)]
    n_items = int(items_per_line.sum())
    first_item = np.cumsum(items_per_line) - items_per_line
    last_item = first_item + items_per_line - 1
    item_start = np.empty(n_items, np.int64)
    item_end = np.empty(n_items, np.int64)
    not_first = np.ones(n_items, np.bool_)
    not_first[first_item] = False
    not_last = np.ones(n_items, np.bool_)
    not_last[last_item] = False
    item_start[first_item] = sp1 + 1
    item_start[not_first] = field_commas + 1
    item_end[last_item] = fields_end
    item_end[not_last] = field_commas
    # one '=' inside each item, with a key before it and a value after it
    _check(np.all(item_start < eq_pos) and np.all(eq_pos + 1 < item_end))
    item_line = np.repeat(np.arange(n), items_per_line)
    value_start = eq_pos + 1

    spans = _Spans(body)

    # --- series keys -> tables ---------------------------------------------------------
    series_enc = pc.dictionary_encode(spans.array(s, sp1))
    line_series = _even_values(series_enc.indices, np.int32)
    series_texts = series_enc.dictionary.to_pylist()
    series_tags = []
    table_names: dict[str, int] = {}
    table_series: list[list[int]] = []
    series_tables: list[int] = []
    for i, text in enumerate(series_texts):
        entry = series_entry(text)
        if entry is None:
            raise _GiveUp
        measurement, tags, tag_map = entry
        _check(len(tag_map) == len(tags) and "time" not in tag_map)
        series_tags.append(tag_map)
        t = table_names.get(measurement)
        if t is None:
            t = table_names[measurement] = len(table_names)
            table_series.append([])
        table_series[t].append(i)
        series_tables.append(t)
    n_tables = len(table_names)
    line_table = np.array(series_tables, np.int64)[line_series] if n_tables > 1 else None

    times = np.full(n, default_time_ns, np.int64)
    if len(sp2):
        times[has_ts] = _timestamps(buf, spans, sp2 + 1, e[has_ts], factor, auto)

    # --- field keys and values -----------------------------------------------------
    key_enc = pc.dictionary_encode(spans.array(item_start, eq_pos))
    item_key = _even_values(key_enc.indices, np.int32).astype(np.int64)
    key_names = key_enc.dictionary.to_pylist()
    _check("time" not in key_names)

    item_class, values, strings = _field_values(buf, spans, value_start, item_end, quotes)

    # --- group items by (table, key) ------------------------------------------------
    n_keys = len(key_names)
    group = item_key if line_table is None else line_table[item_line] * n_keys + item_key
    counts = np.bincount(group)
    present = np.flatnonzero(counts)
    if len(present) < 65536:  # a stable sort of 16-bit keys is a radix sort
        dense = np.zeros(len(counts), np.uint16)
        dense[present] = np.arange(len(present))
        order = np.argsort(dense[group], kind="stable")
    else:
        order = np.argsort(group, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(counts[present])))

    # rows of each table, and each line's row within its table
    table_rows: list[np.ndarray | None] = [None]
    row_in_table = None
    if line_table is not None:
        rows_of_table = [np.flatnonzero(line_table == t) for t in range(n_tables)]
        row_in_table = np.empty(n, np.int64)
        for rows in rows_of_table:
            row_in_table[rows] = np.arange(len(rows))
        table_rows = [*rows_of_table]

    table_fields: list[list[tuple[int, str, FieldType, pa.Array]]] = [
        [] for _ in range(n_tables)]
    for j, g in enumerate(present):
        sel = order[bounds[j]:bounds[j + 1]]
        lines = item_line[sel]
        _check(len(lines) < 2 or bool(np.all(lines[1:] > lines[:-1])))  # no key twice
        classes = item_class[sel]
        cls = int(classes[0])
        _check(bool(np.all(classes == cls)))  # one type per key and table
        t, k = divmod(int(g), n_keys)
        rows_t = table_rows[t]
        n_rows = n if rows_t is None else len(rows_t)
        where = lines if row_in_table is None else row_in_table[lines]
        if cls == _STRING:
            assert strings is not None  # _field_values made it: some items are strings
            take = np.zeros(n_rows, np.int64)
            take[where] = 2 * sel
            missing = np.ones(n_rows, np.bool_)
            missing[where] = False
            arr = strings.take(pa.array(take, mask=missing if len(sel) < n_rows else None))
        elif len(sel) == n_rows:
            arr = pa.array(values[cls][sel])
        else:
            got = values[cls][sel]
            full = np.zeros(n_rows, got.dtype)
            full[where] = got
            missing = np.ones(n_rows, np.bool_)
            missing[where] = False
            arr = pa.array(full, mask=missing)
        table_fields[t].append((int(sel[0]), key_names[k], _CLASS_TYPES[cls], arr))

    # --- assemble tables -----------------------------------------------------------
    line_numbers = line_index + 1
    tables: dict[str, TableColumns] = {}
    for name, t in table_names.items():
        rows_t = table_rows[t]
        sids = table_series[t]
        tags_of_series = [series_tags[i] for i in sids]
        fields = sorted(table_fields[t], key=lambda f: f[0])  # first-seen order
        tag_keys = dict.fromkeys(k for tags in tags_of_series for k in tags)
        _check(tag_keys.keys().isdisjoint(f[1] for f in fields))
        known = (schema(name) if schema is not None else None) or {}
        for tag in tag_keys:
            _check(known.get(tag, ("tag",))[0] == "tag")
        for _first, fkey, ftype, _arr in fields:
            kind = known.get(fkey)
            _check(kind is None or (kind[0] == "field" and kind[1] == ftype.value))
        if rows_t is None:
            row_series = line_series
        else:  # series ids local to this table
            local = np.zeros(len(series_texts), np.int64)
            local[sids] = np.arange(len(sids))
            row_series = local[line_series[rows_t]]
        tables[name] = TableColumns.from_arrays(
            name,
            pa.array(line_numbers if rows_t is None else line_numbers[rows_t]),
            tag_columns(tags_of_series, row_series),
            {k: (ftype, arr) for _first, k, ftype, arr in fields},
            pa.array(times if rows_t is None else times[rows_t]))
    return ParsedWrite(tables=tables, errors=[], lines=n)
