"""weir.persist.series_order: files that follow each other in time, written as one run
sorted by series key then time, in passes of bounded size that agree with sorting the
whole at once (nulls, a tag missing from older files, a budget smaller than one value's
rows, row groups skipped by their statistics)."""

from __future__ import annotations

import io
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weir.catalog.columns import KIND_META
from weir.persist import PAGE_ROWS, parquet_options
from weir.persist.lww import sort_for_storage
from weir.persist.series_order import write_series_sorted

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


@pytest.mark.parametrize("budget", [10**9, 5_000, 2_000])
def test_passes_give_the_order_of_one_whole_sort(budget: int) -> None:
    files, whole = _inputs(random.Random(3))
    passes: list[pa.Table] = []
    assert write_series_sorted(files, SCHEMA, passes.append, keep=lambda t: t,
                               budget_rows=budget)
    out = pa.concat_tables(passes)
    assert _plain(out) == _plain(sort_for_storage(whole))
    if budget >= whole.num_rows:
        assert len(passes) == 1
    else:
        # each pass a range of hosts (one host's 120 rows are never split), nulls last
        assert len(passes) > 1
        assert all(p.num_rows <= max(budget, 120) for p in passes[:-1])
        assert passes[-1].column("host").null_count == passes[-1].num_rows


@pytest.mark.parametrize("budget", [100, 900])
def test_a_window_that_would_take_too_many_passes_is_copied_in_time_order(
        budget: int) -> None:
    """144 passes (more than MAX_PASSES), or 16 passes that would each read a row group
    of every input (more than MAX_READ_FACTOR reads of the window): each input row group
    is handed over as it is, in time order."""
    rng = random.Random(6)
    if budget == 100:
        files, whole = _inputs(rng)
    else:  # (one row group per input: each spans every host)
        tables = [_slice(600 * i, 120, 20, rng) for i in range(6)]
        files, whole = [_file(t, row_group_rows=10_000) for t in tables], \
            pa.concat_tables(tables)
    passes: list[pa.Table] = []
    assert not write_series_sorted(files, SCHEMA, passes.append, keep=lambda t: t,
                                   budget_rows=budget)
    assert len(passes) == sum(f.metadata.num_row_groups for f in files)
    assert _plain(pa.concat_tables(passes)) == _plain(whole)


def test_keep_drops_rows_and_the_rest_stays_sorted() -> None:
    files, whole = _inputs(random.Random(4))
    cutoff = T0 + 1505 * SEC
    passes: list[pa.Table] = []

    def keep(t: pa.Table) -> pa.Table:
        return t.filter(pa.compute.greater_equal(t.column("time").cast(pa.int64()), cutoff))

    assert write_series_sorted(files, SCHEMA, passes.append, keep=keep, budget_rows=3_000)
    assert _plain(pa.concat_tables(passes)) == _plain(sort_for_storage(keep(whole)))


def test_row_groups_of_other_hosts_are_not_read() -> None:
    """Inputs sorted by host in small row groups: a pass over a range of hosts reads only
    the row groups whose host statistics reach it."""
    rng = random.Random(5)
    tables = [_slice(600 * i, 200, 30, rng) for i in range(3)]
    files = [_file(t, row_group_rows=PAGE_ROWS) for t in tables]
    reads: list[int] = []
    for f in files:
        original = f.read_row_group

        def counted(i: int, *a: object, _orig=original, **kw: object) -> pa.Table:
            reads.append(i)
            return _orig(i, *a, **kw)

        f.read_row_group = counted  # type: ignore[method-assign]
    passes: list[pa.Table] = []
    assert write_series_sorted(files, SCHEMA, passes.append, keep=lambda t: t,
                               budget_rows=1_500)
    groups = sum(f.metadata.num_row_groups for f in files)
    assert len(passes) >= 4
    # without statistics every pass would read every row group
    assert len(reads) < len(passes) * groups / 2
    assert sum(p.num_rows for p in passes) == sum(t.num_rows for t in tables)


def test_a_table_without_tags_keeps_its_time_order() -> None:
    schema = pa.schema([pa.field("time", pa.timestamp("ns")), pa.field("v", pa.int64())])
    tables = [pa.table({"time": pa.array([T0 + (100 * i + k) * SEC for k in range(50)],
                                         pa.timestamp("ns")),
                        "v": pa.array(range(50), pa.int64())}) for i in range(4)]
    passes: list[pa.Table] = []
    assert write_series_sorted([_file(t, 20) for t in tables], schema, passes.append,
                               keep=lambda t: t, budget_rows=30)
    assert _plain(pa.concat_tables(passes)) == _plain(pa.concat_tables(tables))
