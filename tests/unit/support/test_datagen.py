"""The test data generator itself: reproducible, unique points, the shapes it promises,
and line protocol that Weir's parser reads back as the rows the generator expects."""

from __future__ import annotations

import time

import pyarrow as pa

from support.datagen import (
    BOOLEAN,
    CPU,
    ESCAPED,
    FLOAT,
    INTEGER,
    STRING,
    UINTEGER,
    generate,
)
from weir.lineprotocol import parse


def test_same_seed_and_now_give_the_same_data() -> None:
    now = time.time_ns()
    a = generate(seed=3, now_ns=now, hosts=5, regions=4, overwrites=20)
    b = generate(seed=3, now_ns=now, hosts=5, regions=4, overwrites=20)
    assert a.lines == b.lines and a.rows == b.rows
    assert generate(seed=4, now_ns=now, hosts=5, regions=4).lines != a.lines


def test_production_shape() -> None:
    now = time.time_ns()
    data = generate(seed=5, now_ns=now, boundary_rows=True)
    assert len(data.series(CPU)) == 2000 and len(data.series(ESCAPED)) == 50
    assert len({r.key for r in data.rows}) == len(data.rows) == len(data.lines)
    assert all(now - 26 * 60 * 10**9 < r.time < now for r in data.rows)  # near now, in ns
    assert len(data.windows(CPU)) >= 3
    kinds = {k for spec in data.tables.values() for k in spec.field_types.values()}
    assert kinds == {FLOAT, INTEGER, UINTEGER, STRING, BOOLEAN}
    ints = [v for r in data.rows for v in r.fields.values()
            if isinstance(v, int) and not isinstance(v, bool)]
    assert max(ints) == 2**64 - 1 and min(ints) == -(2**63)
    assert any(2**53 < abs(v) < 2**63 for v in ints)
    assert any(len(r.fields) < len(data.tables[r.table].field_types) for r in data.rows)
    assert any("region" not in r.tags for r in data.table_rows(CPU))
    [b] = data.boundaries
    assert b % data.gen1_ns == 0
    assert {r.time for r in data.rows} >= {b - 1, b}
    body = data.lp()
    assert r"disk\ io\,x,host\ name=" in body and r"mount\,point=/var\,log\=x" in body
    assert r"ratio\=pct=" in body and '\\"hi\\"' in body


def test_overwrites_merge_as_last_write_wins() -> None:
    data = generate(seed=6, hosts=4, regions=3, overwrites=50)
    assert data.overwrites_from is not None
    base = generate(seed=6, now_ns=data.now_ns, hosts=4, regions=3)
    assert data.lines[:data.overwrites_from] == base.lines
    assert len(data.rows) == len(base.rows)  # overwrites add no point
    before = {r.key: r for r in base.rows}
    changed = [r for r in data.rows if r.fields != before[r.key].fields]
    assert changed
    for r in changed:  # a later write replaces the fields it names and keeps the others
        assert set(before[r.key].fields) <= set(r.fields)


def test_weirs_parser_reads_the_rows_the_generator_expects() -> None:
    data = generate(seed=8, hosts=6, regions=5, boundary_rows=True)
    parsed = parse(data.lp().encode(), precision="ns", default_time_ns=0)
    assert not parsed.errors
    for table in data.tables:
        t = parsed.tables[table].to_arrow()
        t = t.set_column(t.schema.get_field_index("time"), "time",
                         t.column("time").cast(pa.int64()))
        got = [{k: v for k, v in row.items() if v is not None} for row in t.to_pylist()]
        want = [{**r.tags, **r.fields, "time": r.time} for r in data.table_rows(table)]
        assert sorted(got, key=_key) == sorted(want, key=_key)


def _key(d: dict) -> tuple:
    return (d["time"], sorted((k, repr(v)) for k, v in d.items()))
