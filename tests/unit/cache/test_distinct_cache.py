"""The distinct-value cache on its own, fed parsed line protocol: thousands of series near
now, nulls, max_age by the rows' own time, max_cardinality keeping the most recently seen,
`load` from storage, and the `Caches` registry's table functions with the reference's
planning errors."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pyarrow as pa
import pytest

from support.inprocess import batch
from weir.cache import Caches, DistinctCache
from weir.catalog import Column, DistinctCacheDefinition, LastCacheDefinition
from weir.errors import QueryError

NS = 1_000_000_000


def definition(columns: tuple[str, ...] = ("region", "host"), max_cardinality: int = 100_000,
               max_age_s: int = 86400) -> DistinctCacheDefinition:
    return DistinctCacheDefinition(0, "cpu", "d", columns, max_cardinality, max_age_s)


def push(cache: DistinctCache, lp: str, now: int) -> None:
    for _, b in batch(lp):
        cache.push(b, now)


def test_thousands_of_series_sorted_as_the_reference_tree() -> None:
    now = time.time_ns()
    lines = [f"cpu,host=h{i:04d},region=r{i % 7} usage={i} {now - i}" for i in range(3000)]
    lines += [f"cpu,host=h{i:04d},region=r{i % 7} usage={i} {now - i - NS}" for i in range(3000)]
    cache = DistinctCache(definition())
    for start in range(0, len(lines), 2500):
        push(cache, "\n".join(lines[start:start + 2500]), now)
    got = cache.read(now)
    assert got.schema == pa.schema([("region", pa.string()), ("host", pa.string())])
    want = sorted((f"r{i % 7}", f"h{i:04d}") for i in range(3000))
    assert list(zip(got.column("region").to_pylist(), got.column("host").to_pylist(),
                    strict=True)) == want


def test_missing_values_are_nulls_listed_first() -> None:
    now = time.time_ns()
    cache = DistinctCache(definition())
    push(cache, f"cpu,host=a,region=us v=1 {now}\ncpu,host=b v=1 {now}\ncpu v=1 {now}\n"
                f"cpu,region=eu v=1 {now}", now)
    assert cache.read(now).to_pylist() == [
        {"region": None, "host": None}, {"region": None, "host": "b"},
        {"region": "eu", "host": None}, {"region": "us", "host": "a"}]


def test_max_age_is_by_the_rows_time() -> None:
    now = time.time_ns()
    cache = DistinctCache(definition(("host",), max_age_s=60))
    push(cache, f"cpu,host=old v=1 {now - 61 * NS}\ncpu,host=new v=1 {now - 30 * NS}", now)
    assert cache.read(now).column("host").to_pylist() == ["new"]
    assert cache.read(now + 31 * NS).num_rows == 0
    # seen again: back in what is read
    push(cache, f"cpu,host=new v=1 {now + 30 * NS}", now + 31 * NS)
    assert cache.read(now + 31 * NS).column("host").to_pylist() == ["new"]
    assert len(cache) == 2
    cache.evict(now + 31 * NS)
    assert len(cache) == 1


def test_max_cardinality_keeps_the_most_recently_seen() -> None:
    now = time.time_ns()
    cache = DistinctCache(definition(("host",), max_cardinality=1000))
    push(cache, "\n".join(f"cpu,host=h{i:04d} v=1 {now - 5000 + i}" for i in range(2500)), now)
    got = cache.read(now).column("host").to_pylist()
    assert got == [f"h{i:04d}" for i in range(1500, 2500)]
    push(cache, f"cpu,host=h0000 v=1 {now}", now)  # seen again, newest: it stays
    got = cache.read(now).column("host").to_pylist()
    assert got[0] == "h0000" and "h1500" not in got and len(got) == 1000


def test_load_keeps_the_newest_time_seen() -> None:
    now = time.time_ns()
    cache = DistinctCache(definition(("host",), max_age_s=10))
    push(cache, f"cpu,host=a v=1 {now - 8 * NS}", now)
    cache.load(pa.table({"host": ["a", "b"], "time": pa.array(
        [now - 1 * NS, now - 9 * NS], pa.timestamp("ns"))}), now)
    assert cache.read(now + 2 * NS).column("host").to_pylist() == ["a"]  # b: 11 s old


def test_table_functions_and_their_errors() -> None:
    now = time.time_ns()
    caches = Caches(clock=lambda: now)
    cols = {"time": Column("time", "time", "time"), "host": Column("host", "tag", "tag"),
            "v": Column("v", "field", "float")}
    lc = LastCacheDefinition(0, "cpu", "lc", ("host",), None, 1, 3600)
    dc = DistinctCacheDefinition(0, "cpu", "dc", ("host",), 10, 3600)

    table = SimpleNamespace(columns=cols, last_caches={"lc": lc}, distinct_caches={"dc": dc})

    caches.add_last_cache("db", lc)
    caches.add_distinct_cache("db", dc)
    caches.add_last_cache("other", LastCacheDefinition(0, "cpu", "lc", ("host",), None, 1, 3600))
    rows = [(t, b) for t, b in batch(f"cpu,host=a v=1 {now}\ncpu,host=b v=2 {now}")]
    caches.push([("db", t, b) for t, b in rows])
    fns = caches.table_functions("db", {"cpu": table})
    assert fns["last_cache"](["cpu"]).column("host").to_pylist() == ["a", "b"]
    assert fns["last_cache"](["cpu", "lc"]).num_rows == 2
    assert fns["distinct_cache"](["cpu", "dc"]).column("host").to_pylist() == ["a", "b"]
    other = caches.table_functions("other", {"cpu": table})
    assert other["last_cache"](["cpu"]).num_rows == 0  # its own cache: nothing pushed there
    for name, args, message in [
        ("last_cache", [], "first argument must be the table name as a string"),
        ("last_cache", [1], "first argument must be the table name as a string"),
        ("last_cache", ["cpu", 2], "second argument, if passed, must be the cache name"),
        ("last_cache", ["mem"], "provided table name is invalid"),
        ("last_cache", ["cpu", "x"], "could not find cache for the given arguments"),
        ("distinct_cache", ["mem"], r"provided table name \(mem\) is invalid"),
        ("distinct_cache", ["cpu", "x"],
         "could not find distinct value cache for the given arguments"),
    ]:
        with pytest.raises(QueryError, match=message):
            fns[name](args)
    caches.remove_last_cache("db", "cpu", "lc")
    assert fns["last_cache"](["cpu"]).num_rows == 0  # deleted since the query began
    caches.drop_database("db")
    assert len(caches) == 1


def test_values_of_one_column_and_completeness() -> None:
    now = time.time_ns()
    cache = DistinctCache(definition(max_cardinality=50, max_age_s=3600))
    push(cache, "\n".join(f"cpu,host=h{i:02d},region=r{i % 3} v=1 {now - (40 - i) * NS}"
                          for i in range(40)) + f"\ncpu,region=r0 v=1 {now}", now)
    assert cache.values("region", {}, None, now) == ["r0", "r1", "r2"]
    assert cache.values("host", {"region": "r1"}, None, now) == [
        f"h{i:02d}" for i in range(40) if i % 3 == 1]
    assert cache.values("host", {"region": "r1"}, now - 10 * NS, now) == ["h31", "h34", "h37"]
    assert cache.values("host", {"region": "r1", "host": "h01"}, None, now) == ["h01"]
    assert cache.complete
    push(cache, "\n".join(f"cpu,host=x{i},region=r9 v=1 {now}" for i in range(20)), now)
    assert not cache.complete  # 61 combinations for 50: some were left out
