"""weir.persist.series_order: files that follow each other in time, written as one run
sorted by series key then time, in parts of bounded size spilled to disk that agree with
sorting the whole at once (nulls, a tag missing from older files, a budget smaller than
one value's rows), each input read once; too many parts, and the window is copied."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weir.catalog.columns import KIND_META
from weir.persist import parquet_options
from weir.persist.lww import sort_for_storage
from weir.persist.series_order import MAX_PARTS, write_series_sorted

SEC = 10**9
T0 = 1_796_000_000 * SEC + 123_456_789  # (near now, in ns)


def _tag(name: str) -> pa.Field:
    return pa.field(name, pa.dictionary(pa.int32(), pa.string()),
                    metadata={KIND_META: b"tag"})


SCHEMA = pa.schema([_tag("host"), _tag("region"), _tag("rack"),
                    pa.field("time", pa.timestamp("ns")), pa.field("usage", pa.float64())])


def _file(t: pa.Table, row_group_rows: int) -> pq.ParquetFile:
    sink = io.BytesIO()
    pq.write_table(t, sink, row_group_size=row_group_rows, **parquet_options(t.schema))
    return pq.ParquetFile(io.BytesIO(sink.getvalue()))


def _slice(start_s: int, hosts: int, points: int, rng: random.Random,
           with_rack: bool = True) -> pa.Table:
    """`points` per host, 10 s apart from `start_s`, some hosts without a host tag."""
    rows: dict[str, list[object]] = {"host": [], "region": [], "rack": [], "time": [],
                                     "usage": []}
    for h in range(hosts):
        for p in range(points):
            rows["host"].append(None if h % 17 == 0 else f"host_{h:04d}")
            rows["region"].append(f"r{h % 5}")
            rows["rack"].append(f"k{h % 3}")
            rows["time"].append(T0 + (start_s + 10 * p) * SEC + h)
            rows["usage"].append(rng.random())
    t = pa.table(rows, schema=SCHEMA)
    if not with_rack:
        t = t.drop_columns(["rack"])
    return sort_for_storage(t)


def _plain(t: pa.Table) -> list[dict[str, object]]:
    return t.to_pylist()


def _inputs(rng: random.Random) -> tuple[list[pq.ParquetFile], pa.Table]:
    """Six files disjoint in time, the first two written before `rack` existed."""
    tables = [_slice(600 * i, 120, 20, rng, with_rack=i >= 2) for i in range(6)]
    files = [_file(t, row_group_rows=1_000) for t in tables]
    whole = pa.concat_tables([t if "rack" in t.column_names else
                              t.append_column(SCHEMA.field("rack"),
                                              pa.nulls(t.num_rows, SCHEMA.field("rack").type))
                              .select(SCHEMA.names) for t in tables])
    return files, whole


@pytest.mark.parametrize("budget", [10**9, 5_000, 1_000, 500])
def test_parts_give_the_order_of_one_whole_sort(budget: int, tmp_path: Path) -> None:
    files, whole = _inputs(random.Random(3))
    parts: list[pa.Table] = []
    assert write_series_sorted(files, SCHEMA, parts.append, keep=lambda t: t,
                               budget_rows=budget, spill_dir=str(tmp_path))
    out = pa.concat_tables(parts)
    assert _plain(out) == _plain(sort_for_storage(whole))
    if budget >= whole.num_rows:
        assert len(parts) == 1
    else:
        # each part a range of hosts (one host's 120 rows are never split), nulls last
        assert len(parts) > 1
        assert all(p.num_rows <= max(budget, 120) for p in parts[:-1])
        assert parts[-1].column("host").null_count == parts[-1].num_rows
    assert list(tmp_path.iterdir()) == []  # (the spill files are gone)


def test_each_input_row_group_is_read_once(tmp_path: Path) -> None:
    """However many parts, the inputs are read once (then their tags, for the census):
    rows go to their part's spill file, not re-read per part."""
    files, _ = _inputs(random.Random(5))
    reads: list[int] = []
    for f in files:
        original = f.read_row_group

        def counted(i: int, *a: object, _orig=original, **kw: object) -> pa.Table:
            reads.append(i)
            return _orig(i, *a, **kw)

        f.read_row_group = counted  # type: ignore[method-assign]
    parts: list[pa.Table] = []
    assert write_series_sorted(files, SCHEMA, parts.append, keep=lambda t: t,
                               budget_rows=600, spill_dir=str(tmp_path))
    assert len(parts) >= 20
    assert len(reads) == sum(f.metadata.num_row_groups for f in files)


def test_a_window_of_too_many_parts_is_copied_in_time_order() -> None:
    """More than MAX_PARTS parts: each input row group is handed over as it is, in time
    order."""
    files, whole = _inputs(random.Random(6))
    assert whole.num_rows // 100 > MAX_PARTS
    parts: list[pa.Table] = []
    assert not write_series_sorted(files, SCHEMA, parts.append, keep=lambda t: t,
                                   budget_rows=100)
    assert len(parts) == sum(f.metadata.num_row_groups for f in files)
    assert _plain(pa.concat_tables(parts)) == _plain(whole)


@pytest.mark.parametrize("budget", [10**9, 3_000])
def test_keep_drops_rows_and_the_rest_stays_sorted(budget: int) -> None:
    files, whole = _inputs(random.Random(4))
    cutoff = T0 + 1505 * SEC
    parts: list[pa.Table] = []

    def keep(t: pa.Table) -> pa.Table:
        return t.filter(pa.compute.greater_equal(t.column("time").cast(pa.int64()), cutoff))

    assert write_series_sorted(files, SCHEMA, parts.append, keep=keep, budget_rows=budget)
    assert _plain(pa.concat_tables(parts)) == _plain(sort_for_storage(keep(whole)))


def test_a_table_without_tags_keeps_its_time_order() -> None:
    schema = pa.schema([pa.field("time", pa.timestamp("ns")), pa.field("v", pa.int64())])
    tables = [pa.table({"time": pa.array([T0 + (100 * i + k) * SEC for k in range(50)],
                                         pa.timestamp("ns")),
                        "v": pa.array(range(50), pa.int64())}) for i in range(4)]
    parts: list[pa.Table] = []
    assert write_series_sorted([_file(t, 20) for t in tables], schema, parts.append,
                               keep=lambda t: t, budget_rows=30)
    assert _plain(pa.concat_tables(parts)) == _plain(pa.concat_tables(tables))
