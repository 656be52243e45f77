"""The batch fast path: a whole body parsed with Arrow compute kernels.

It serves the common case, a batch with no backslashes and no quotes in which every
line is well formed: lines are split into series key / field set / timestamp by
kernels, each distinct series key is parsed once in Python, and each field key's
values are converted in one cast. Anything unusual (an escape, a string field, a bad
value, mixed types, duplicate keys, a schema conflict) makes it give up and return
None, and the line-by-line parser, which reports each error with its line number,
takes the batch instead. So this path never decides what is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from weir.lineprotocol.parser import FieldType, ParsedWrite, TableColumns

SchemaLookup = Callable[[str], Mapping[str, tuple[str, str]] | None]

_BOOLS_TRUE = pa.array(["t", "T", "true", "True", "TRUE"])
_BOOLS = pa.array(["t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"])
_I64 = (-(2**63), 2**63 - 1)


class _GiveUp(Exception):
    pass


def parse_batch(text: str, *, factor: int, auto: bool, default_time_ns: int,
                schema: SchemaLookup | None) -> ParsedWrite | None:
    """Parse `text` (no backslashes, no quotes) or return None to fall back."""
    try:
        return _parse(text, factor, auto, default_time_ns, schema)
    except (_GiveUp, pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
        return None


def _all(mask: pa.Array) -> bool:
    return bool(pc.all(mask).as_py()) if len(mask) else True


def _parse(text: str, factor: int, auto: bool, default_time_ns: int,
           schema: SchemaLookup | None) -> ParsedWrite:
    raw = pc.split_pattern(pa.array([text], pa.large_string()), "\n").values
    lines = pc.utf8_trim(raw, " \t\r")
    keep = pc.and_(pc.not_equal(pc.utf8_length(lines), 0),
                   pc.invert(pc.starts_with(lines, "#")))
    line_idx = pc.indices_nonzero(keep)
    lines = pc.take(lines, line_idx)
    n = len(lines)
    out = ParsedWrite(lines=n)
    if n == 0:
        return out
    line_numbers = pc.add(line_idx, 1)

    parts = pc.split_pattern(lines, " ")
    nparts = pc.list_value_length(parts)
    if not _all(pc.and_(pc.greater_equal(nparts, 2), pc.less_equal(nparts, 3))):
        raise _GiveUp
    if not _all(pc.greater(pc.utf8_length(pc.list_flatten(parts)), 0)):
        raise _GiveUp
    series = pc.list_element(parts, 0)
    fieldsets = pc.list_element(parts, 1)

    # Timestamps: lines with a third part have one, the others get the default.
    ts_lists = pc.list_slice(parts, 2, 3)
    ts_text = pc.list_flatten(ts_lists)
    times = np.full(n, default_time_ns, dtype=np.int64)
    if len(ts_text):
        ts = pc.cast(ts_text, pa.int64()).to_numpy()
        if auto:
            a = np.abs(ts)
            mult = np.where(a < 5 * 10**9, 10**9, np.where(a < 5 * 10**12, 10**6,
                            np.where(a < 5 * 10**15, 10**3, 1)))
        else:
            mult = np.full(len(ts), factor, dtype=np.int64)
        if np.any(np.abs(ts) > (2**63 - 1) // mult):
            raise _GiveUp
        times[pc.list_parent_indices(ts_lists).to_numpy()] = ts * mult

    # Series keys: each distinct one parsed once.
    denc = pc.dictionary_encode(series)
    sidx = denc.indices.to_numpy(zero_copy_only=False)
    parsed_series = [_series(s) for s in denc.dictionary.to_pylist()]
    series_tags = [dict(t) for _m, t in parsed_series]
    measurements = [m for m, _t in parsed_series]
    table_names = list(dict.fromkeys(measurements))
    table_of_series = np.array([table_names.index(m) for m in measurements], dtype=np.int64)
    row_table = table_of_series[sidx]

    # Field sets: key=value items, one cast per key.
    items = pc.split_pattern(fieldsets, ",")
    item_row = pc.list_parent_indices(items).to_numpy()
    kv = pc.split_pattern(pc.list_flatten(items), "=", max_splits=1)
    if not _all(pc.equal(pc.list_value_length(kv), 2)):
        raise _GiveUp
    keys = pc.list_element(kv, 0)
    vals = pc.list_element(kv, 1)
    kenc = pc.dictionary_encode(keys)
    kidx = kenc.indices.to_numpy(zero_copy_only=False)
    field_names = kenc.dictionary.to_pylist()
    if "" in field_names or "time" in field_names:
        raise _GiveUp
    order = np.argsort(kidx, kind="stable")
    bounds = np.searchsorted(kidx[order], np.arange(len(field_names) + 1))
    field_cols: dict[str, tuple[FieldType, pa.Array, np.ndarray]] = {}
    for j, name in enumerate(field_names):
        sel = order[bounds[j]:bounds[j + 1]]
        rows = item_row[sel]  # ascending: items are in line order, the sort is stable
        if len(rows) > 1 and np.any(rows[1:] == rows[:-1]):
            raise _GiveUp  # the same field twice in a line
        ftype, typed = _convert(pc.take(vals, pa.array(sel)))
        field_cols[name] = (ftype, typed, rows)

    for ti, tname in enumerate(table_names):
        rows_mask = row_table == ti
        trows = np.nonzero(rows_mask)[0]
        nt = len(trows)
        known = (schema(tname) if schema else None) or {}
        tc = TableColumns(tname)
        row_series = pa.array(sidx[trows])
        # position of each global row within this table (-1 if not in it)
        pos = np.full(n, -1, dtype=np.int64)
        pos[trows] = np.arange(nt)
        # tags, in first-seen order over this table's series
        uniq, first = np.unique(sidx[trows], return_index=True)
        series_ids = uniq[np.argsort(first)]
        tag_names: list[str] = []
        for s in series_ids:
            for k, _v in parsed_series[s][1]:
                if k not in tag_names:
                    tag_names.append(k)
        for k in tag_names:
            kk = known.get(k)
            if k in field_cols and np.any(rows_mask[field_cols[k][2]]):
                raise _GiveUp  # a key used as tag and field in one table
            if kk is not None and kk[0] != "tag":
                raise _GiveUp
            # Encode the few per-series values once, then index them per row.
            per_series = pc.dictionary_encode(pa.array(
                [series_tags[s].get(k) for s in range(len(parsed_series))], pa.string()))
            tc.tags[k] = pa.DictionaryArray.from_arrays(
                per_series.indices.take(row_series), per_series.dictionary)
        for name, (ftype, typed, rows) in field_cols.items():
            in_table = rows_mask[rows]
            if not np.any(in_table):
                continue
            kk = known.get(name)
            if kk is not None and (kk[0] != "field" or kk[1] != ftype.value):
                raise _GiveUp
            sel = np.nonzero(in_table)[0]
            take = np.full(nt, -1, dtype=np.int64)
            take[pos[rows[sel]]] = sel
            tc.fields[name] = (ftype, typed.take(pa.array(take, mask=take < 0)))
        tc.times = pa.array(times[trows], pa.int64())
        tc.line_numbers = pc.take(line_numbers, pa.array(trows))
        out.tables[tname] = tc
    return out


def _series(key: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    parts = key.split(",")
    measurement = parts[0]
    if not measurement:
        raise _GiveUp
    tags = []
    seen = set()
    for item in parts[1:]:
        k, eq, v = item.partition("=")
        if not eq or not k or not v or "=" in v or k == "time" or k in seen:
            raise _GiveUp
        seen.add(k)
        tags.append((k, v))
    return measurement, tuple(tags)


def _convert(vals: pa.Array) -> tuple[FieldType, pa.Array]:
    """One field's values: all integers, all unsigned, all booleans, or all floats."""
    if _all(pc.ends_with(vals, "i")):
        body = pc.utf8_slice_codeunits(vals, 0, -1)
        return FieldType.INTEGER, pc.cast(body, pa.int64())
    if _all(pc.ends_with(vals, "u")):
        body = pc.utf8_slice_codeunits(vals, 0, -1)
        if not _all(pc.invert(pc.starts_with(body, "-"))):
            raise _GiveUp
        return FieldType.UINTEGER, pc.cast(body, pa.uint64())
    if _all(pc.is_in(vals, value_set=_BOOLS)):
        return FieldType.BOOLEAN, pc.is_in(vals, value_set=_BOOLS_TRUE)
    # Arrow's float parser also reads inf and nan, which line protocol refuses.
    floats = pc.cast(vals, pa.float64())
    if not _all(pc.is_finite(floats)):
        raise _GiveUp
    return FieldType.FLOAT, floats
