"""The buffer's series tracker and last-write-wins merge, in process on real parsed
line protocol (no server): the cheap checks that decide when a query must merge."""

from __future__ import annotations

import time

import pyarrow as pa

from weir import lineprotocol
from weir.buffer.series import SeriesTracker
from weir.persist.lww import dedupe, sort_for_storage

NOW = time.time_ns()


def batch(lp: str) -> pa.RecordBatch:
    parsed = lineprotocol.parse(lp.encode(), precision="ns", default_time_ns=NOW)
    assert not parsed.errors, parsed.errors
    (table,) = parsed.tables.values()
    return table.to_arrow()


def test_steady_ingest_never_collides() -> None:
    tr = SeriesTracker()
    for k in range(5):
        lines = [f"cpu,host=h{h},region=r{h % 3} v={h} {NOW + k * 10**9}" for h in range(500)]
        seen = tr.observe(batch("\n".join(lines)))
        assert not seen.earlier_rows and not seen.old_files


def test_writers_out_of_order_across_series_do_not_collide() -> None:
    tr = SeriesTracker()
    assert not tr.observe(batch(f"cpu,host=a v=1 {NOW + 10}")).earlier_rows
    # another series, older timestamp: no point is overwritten
    assert not tr.observe(batch(f"cpu,host=b v=1 {NOW}")).earlier_rows
    assert tr.observe(batch(f"cpu,host=a v=2 {NOW + 10}")).earlier_rows


def test_tag_order_and_absent_tags_name_the_same_series() -> None:
    tr = SeriesTracker()
    tr.observe(batch(f"cpu,host=a,region=x v=1 {NOW}"))
    assert tr.observe(batch(f"cpu,region=x,host=a v=2 {NOW}")).earlier_rows
    # an absent tag is null: host=a alone is another series
    assert not tr.observe(batch(f"cpu,host=a v=3 {NOW}")).earlier_rows
    # rows of a batch with an extra column where that column is null
    mixed = batch(f"cpu,host=a,zone=z v=4 {NOW + 1}\ncpu,host=a v=5 {NOW}")
    assert tr.observe(mixed).earlier_rows


def test_duplicate_inside_one_body_collides() -> None:
    tr = SeriesTracker()
    assert tr.observe(batch(f"cpu,host=a v=1 {NOW}\ncpu,host=a w=2 {NOW}")).earlier_rows


def test_rows_older_than_startup_files_may_overwrite_them() -> None:
    tr = SeriesTracker(persisted_before=NOW)
    assert tr.observe(batch(f"cpu,host=a v=1 {NOW}")).old_files
    assert not tr.observe(batch(f"cpu,host=a v=1 {NOW + 1}")).old_files


def test_dedupe_keeps_the_last_value_of_each_field() -> None:
    rows = pa.concat_tables([pa.Table.from_batches([batch(lp)]) for lp in (
        f"m,h=x v=1 {NOW}", f"m,h=x v=2 {NOW}", f"m,h=x w=3i {NOW}", f"m,h=y v=9 {NOW}")],
        promote_options="default")
    out = sort_for_storage(dedupe(rows))
    assert out.to_pylist() == [
        {"h": "x", "v": 2.0, "time": out.column("time")[0].as_py(), "w": 3},
        {"h": "y", "v": 9.0, "time": out.column("time")[1].as_py(), "w": None},
    ]


def test_storage_order_is_by_tag_values_then_time() -> None:
    lp = [f"cpu,host=h{h % 7},zone=z{h % 3} v={h} {NOW - h}" for h in range(200)]
    lp += [f"cpu,host=h{h} v={h} {NOW + h}" for h in range(5)]  # no zone: nulls sort last
    t = pa.concat_tables([pa.Table.from_batches([batch("\n".join(lp[:120]))]),
                          pa.Table.from_batches([batch("\n".join(lp[120:]))])],
                         promote_options="default")
    out = sort_for_storage(t).to_pylist()
    want = sorted(out, key=lambda r: (r["host"], r["zone"] is None, r["zone"] or "",
                                      r["time"]))
    assert out == want
    assert len(out) == 205


def test_storage_order_puts_the_tag_with_most_values_first() -> None:
    # TSBS-like: `arch` and `datacenter` sort before `hostname` by name, but a query asks
    # for hosts; with hosts first each page of the file holds few hosts
    lp = [f"cpu,arch=a{h % 3},datacenter=d{h % 5},hostname=host_{h:03d} v={i} {NOW + i}"
          for i in range(4) for h in range(60)]
    out = sort_for_storage(pa.Table.from_batches([batch("\n".join(lp))])).to_pylist()
    assert out == sorted(out, key=lambda r: (r["hostname"], r["time"]))
    assert [r["hostname"] for r in out[:5]] == ["host_000"] * 4 + ["host_001"]
