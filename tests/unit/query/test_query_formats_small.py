"""A small result is written to JSON cell by cell in Python; the text must be exactly what
the vectorised writer gives for the same rows (every type it takes, edge values, nulls).
The vectorised JSON and CSV writers render same-typed columns together: checked here too."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from weir.query import encode_batches
from weir.query.formats import (
    _SMALL_ROWS,
    _csv_quote,
    _csv_rows,
    _display_plain,
    _float_text,
    _json_bodies,
    _json_small,
    _render,
)

NS = pa.timestamp("ns")

FLOATS = [0.0, -0.0, 1.0, -1.5, 0.1, 1 / 3, 1e-5, 9.99e-6, 1e-7, 123456789.0, 1e9, 1e10,
          9999999999.5, 1.7976931348623157e308, 5e-324, float("nan"), float("inf"),
          float("-inf"), 2.5e15, 1e16, 0.30000000000000004]
INTS = [0, 1, -1, 2**63 - 1, -(2**63), 42]
STRINGS = ["", "a", 'quote " here', "back\\slash", "tab\tnew\nline", "ctl\x01\x1f",
           "ünïcødé ✓", "emoji 🙂", "slash / and \u2028"]
TIMES = [0, 1, -1, 1_700_000_000_123_000_000, 1_700_000_000_123_456_000,
         1_700_000_000_123_456_789, 1_700_000_000_000_000_000, -86_400_000_000_001,
         253_402_300_799_999_999_999 // 1000]


def _table(rng: random.Random, rows: int) -> pa.Table:
    def pick(values: list[object]) -> list[object]:
        return [None if rng.random() < 0.15 else rng.choice(values) for _ in range(rows)]

    tags = pa.array(pick(STRINGS), pa.string())
    return pa.table({
        "f": pa.array(pick(FLOATS), pa.float64()),
        "i": pa.array(pick(INTS), pa.int64()),
        "u": pa.array([None if v is None else abs(v) for v in pick(INTS)], pa.uint64()),
        "b": pa.array(pick([True, False]), pa.bool_()),
        "s": tags,
        "tag": tags.dictionary_encode().cast(pa.dictionary(pa.int32(), pa.string())),
        "time": pa.array(pick(TIMES), NS),
        "ms": pa.array([None if v is None else v // 1_000_000 for v in pick(TIMES)],
                       pa.timestamp("ms")),
        "us": pa.array([None if v is None else v // 1000 for v in pick(TIMES)],
                       pa.timestamp("us")),
        "sec": pa.array([None if v is None else v // 10**9 for v in pick(TIMES)],
                        pa.timestamp("s")),
        "odd \"name\"": pa.array(pick([0, -7, 2**31 - 1]), pa.int32()),
        # more columns of the float and string types, one without nulls: the writer
        # renders same-typed columns as one array and slices it apart
        "f2": pa.array([rng.choice(FLOATS) for _ in range(rows)], pa.float64()),
        "s2": pa.array([rng.choice(STRINGS) for _ in range(rows)], pa.string()),
        "f3": pa.array(pick(FLOATS), pa.float64()),
    })


@pytest.mark.parametrize("seed", range(40))
def test_small_batches_read_as_the_vectorised_writer_writes_them(seed: int) -> None:
    rng = random.Random(seed)
    table = _table(rng, rng.randint(1, _SMALL_ROWS))
    for batch in table.to_batches():
        assert _json_small(batch) == _json_bodies(batch).to_pylist()


@pytest.mark.parametrize("seed", range(10))
def test_large_and_chunked_batches_as_cell_by_cell(seed: int) -> None:
    """Past `_SMALL_ROWS` only the vectorised writer runs: the same text, cell for cell,
    with columns of one type written together, chunked columns and float32 among them."""
    rng = random.Random(1000 + seed)
    table = pa.concat_tables([_table(rng, rng.randint(_SMALL_ROWS, 300)) for _ in range(2)])
    table = table.append_column("f32", pa.array(
        [None if rng.random() < 0.2 else rng.choice([0.5, 1.0, 1e-6, 3e12, -2.25])
         for _ in range(table.num_rows)], pa.float32()))
    expected = _json_small(table.drop_columns(["f32"]))
    got = _json_bodies(table).to_pylist()
    f32 = table.column("f32").to_pylist()
    assert expected is not None
    for row, (want, value) in enumerate(zip(expected, f32, strict=True)):
        text = got[row]
        if value is not None:  # float32 is not a `_json_cell` type: its cell comes last
            assert text.endswith(f',"f32":{_float_text(value, json_style=True, single=True)}')
            text = text[: text.rindex(',"f32":')]
        assert text == want, row


def test_a_time_outside_python_s_years_and_other_types_take_the_vectorised_path() -> None:
    far = pa.table({"time": pa.array([300_000_000_000_000_000_000 // 1000], pa.timestamp("us"))})
    assert _json_small(far.to_batches()[0]) is None
    for column in (pa.array([1.5], pa.float32()), pa.array([b"x"], pa.binary()),
                   pa.array([[1]], pa.list_(pa.int64())),
                   pa.array([0], pa.timestamp("ns", tz="UTC"))):
        assert _json_small(pa.table({"c": column}).to_batches()[0]) is None
    # written all the same
    assert b"".join(encode_batches([far], "json")).startswith(b'[{"time":"')


def test_a_result_of_small_and_large_batches_is_one_json_array() -> None:
    rng = random.Random(7)
    small, large = _table(rng, 3), _table(rng, _SMALL_ROWS * 3)
    for fmt in ("json", "jsonl"):
        mixed = b"".join(encode_batches([small, large, small], fmt))
        whole = b"".join(encode_batches([pa.concat_tables([small, large, small])
                                         .combine_chunks()], fmt))
        assert mixed == whole


@pytest.mark.parametrize("seed", range(10))
def test_csv_rows_as_column_by_column(seed: int) -> None:
    """CSV renders same-typed float and string columns as one array too: each row reads as
    the columns rendered one by one would give it."""
    rng = random.Random(2000 + seed)
    table = pa.concat_tables([_table(rng, rng.randint(1, 200)) for _ in range(2)])
    columns = [_render(col, lambda a: _csv_quote(_display_plain(a))).fill_null("")
               .to_pylist() for col in table.columns]
    expected = [",".join(row) for row in zip(*columns, strict=True)]
    assert _csv_rows(table).to_pylist() == expected
