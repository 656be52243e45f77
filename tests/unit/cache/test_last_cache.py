"""The last-N-value cache on its own, fed batches of line protocol parsed by the real
parser (as a WAL flush carries them): thousands of series near now, each key's newest
`count` rows against a model worked out here, the reference's rules for rows that do not
enter, new fields, TTL, and `load` (the refill from storage) merging with what it holds."""

from __future__ import annotations

import random
import time

import pyarrow as pa
import pytest

from support.inprocess import batch
from weir.cache import LastCache, last_cache_schema
from weir.catalog import Column, LastCacheDefinition

NS = 1_000_000_000
COLUMNS = {
    "time": Column("time", "time", "time"), "host": Column("host", "tag", "tag"),
    "region": Column("region", "tag", "tag"), "usage": Column("usage", "field", "float"),
    "cores": Column("cores", "field", "integer"), "state": Column("state", "field", "string"),
}


def definition(keys: tuple[str, ...] = ("region", "host"), values: tuple[str, ...] | None = None,
               count: int = 1, ttl_s: int = 14400) -> LastCacheDefinition:
    return LastCacheDefinition(0, "cpu", "c", keys, values, count, ttl_s)


def push(cache: LastCache, lp: str, now_ns: int) -> None:
    for table, b in batch(lp):
        assert table == "cpu"
        cache.push(b, now_ns)


def test_thousands_of_series_keep_their_newest_rows() -> None:
    rng = random.Random(1201)
    now = time.time_ns()
    hosts, regions, points = [f"h{i:03d}" for i in range(100)], [f"r{j:02d}" for j in range(20)], 4
    model: dict[tuple[str, str], list[tuple[int, float, int]]] = {}
    lines = []
    for p in range(points):
        for h in hosts:
            for r in regions:
                t = now - (points - p) * NS + rng.randrange(1000)
                usage, cores = round(rng.random() * 100, 3), rng.randrange(1, 64)
                lines.append(f"cpu,host={h},region={r} usage={usage},cores={cores}i {t}")
                model.setdefault((r, h), []).append((t, usage, cores))
    cache = LastCache(definition(count=2))
    for start in range(0, len(lines), 4000):  # several WAL writes, oldest first
        push(cache, "\n".join(lines[start:start + 4000]), now)
    got = cache.read(COLUMNS, now)
    assert got.schema.names == ["region", "host", "cores", "state", "time", "usage"]
    assert got.schema.field("region").type == pa.string()
    assert got.num_rows == 2 * len(hosts) * len(regions)
    want = []
    for key in sorted(model):
        for t, usage, cores in sorted(model[key], reverse=True)[:2]:
            want.append({"region": key[0], "host": key[1], "cores": cores, "state": None,
                         "time": t, "usage": usage})
    rows = got.set_column(4, "time", got.column("time").cast(pa.int64())).to_pylist()
    assert rows == want


def test_rows_that_do_not_enter() -> None:
    now = time.time_ns()
    cache = LastCache(definition())
    push(cache, f"cpu,host=a,region=r usage=1 {now - 10}\n"
                f"cpu,host=b usage=2 {now - 9}\n"  # no region: ignored
                f"cpu,region=r usage=3 {now - 8}", now)  # no host: ignored
    push(cache, f"cpu,host=a,region=r usage=0.5 {now - 20}", now)  # older: ignored
    push(cache, f"cpu,host=a,region=r state=\"up\" {now - 10}", now)  # same time: merged
    rows = cache.read(COLUMNS, now).select(["region", "host", "usage", "state"]).to_pylist()
    assert rows == [{"region": "r", "host": "a", "usage": 1.0, "state": "up"}]


def test_new_fields_show_up_and_explicit_value_columns_keep_time_last() -> None:
    now = time.time_ns()
    cache = LastCache(definition(keys=("host",), count=3))
    push(cache, f"cpu,host=a usage=1 {now - 3}", now)
    push(cache, f"cpu,host=a usage=2,cores=4i {now - 2}", now)
    cols = dict(COLUMNS, load=Column("load", "field", "float"))
    push(cache, f"cpu,host=a load=0.5 {now - 1}", now)
    got = cache.read(cols, now)
    assert got.schema.names == ["host", "cores", "load", "region", "state", "time", "usage"]
    assert got.column("load").to_pylist() == [0.5, None, None]
    assert got.column("cores").to_pylist() == [None, 4, None]
    assert got.column("region").type == pa.dictionary(pa.int32(), pa.string())

    explicit = LastCache(definition(keys=("host",), values=("time", "usage"), count=3))
    push(explicit, f"cpu,host=a usage=7,cores=1i {now}", now)
    assert explicit.read(COLUMNS, now).schema.names == ["host", "usage", "time"]
    no_keys = LastCache(definition(keys=(), count=2))
    push(no_keys, "\n".join(f"cpu,host=h{i} usage={i} {now - 100 + i}" for i in range(50)), now)
    assert no_keys.read(COLUMNS, now).column("usage").to_pylist() == [49.0, 48.0]


def test_ttl_counts_from_when_a_row_entered() -> None:
    now = time.time_ns()
    cache = LastCache(definition(keys=("host",), ttl_s=60))
    push(cache, f"cpu,host=a usage=1 {now - 3600 * NS}", now)  # an old time enters now
    push(cache, f"cpu,host=b usage=2 {now}", now + 30 * NS)
    assert cache.read(COLUMNS, now + 59 * NS).column("host").to_pylist() == ["a", "b"]
    assert cache.read(COLUMNS, now + 61 * NS).column("host").to_pylist() == ["b"]
    assert cache.read(COLUMNS, now + 91 * NS).num_rows == 0
    assert len(cache) == 2
    cache.evict(now + 61 * NS)
    assert len(cache) == 1


def test_reads_are_kept_until_the_cache_changes() -> None:
    now = time.time_ns()
    cache = LastCache(definition(keys=("host",)))
    push(cache, f"cpu,host=a usage=1 {now}", now)
    first = cache.read(COLUMNS, now)
    assert cache.read(COLUMNS, now + 1) is first
    push(cache, f"cpu,host=a usage=2 {now + 1}", now)
    assert cache.read(COLUMNS, now + 2).column("usage").to_pylist() == [2.0]


def test_load_merges_stored_rows_with_live_ones() -> None:
    now = time.time_ns()
    cache = LastCache(definition(keys=("host",), count=3))
    push(cache, f"cpu,host=a usage=10 {now - 1 * NS}", now)  # a live write came first
    stored = pa.table({
        "host": ["a", "a", "a", "b"], "usage": [9.0, 8.0, 10.0, 5.0],
        "time": pa.array([now - 2 * NS, now - 3 * NS, now - 1 * NS, now - 5 * NS],
                         pa.timestamp("ns")),
    })
    cache.load(stored, now)
    got = cache.read(COLUMNS, now).select(["host", "usage"]).to_pylist()
    assert got == [{"host": "a", "usage": 10.0}, {"host": "a", "usage": 9.0},
                   {"host": "a", "usage": 8.0}, {"host": "b", "usage": 5.0}]
    # a stored row entered at its own time: it expires `ttl` after it
    short = LastCache(definition(keys=("host",), ttl_s=10))
    short.load(stored.slice(3), now)
    assert short.read(COLUMNS, now).num_rows == 1
    assert short.read(COLUMNS, now + 6 * NS).num_rows == 0


@pytest.mark.parametrize("keys", [("region", "host"), ("host",), ()])
def test_empty_cache_has_the_schema(keys: tuple[str, ...]) -> None:
    d = definition(keys=keys)
    got = LastCache(d).read(COLUMNS, time.time_ns())
    assert got.num_rows == 0
    assert got.schema == last_cache_schema(d, COLUMNS)


def test_three_key_columns_of_mixed_types() -> None:
    now = time.time_ns()
    cache = LastCache(definition(keys=("region", "host", "cores"), count=1))
    push(cache, "\n".join(f"cpu,host=h{i % 40},region=r{i % 3} cores={i % 2}i,usage={i} "
                          f"{now - 1000 + i}" for i in range(600))
         + f"\ncpu,host=h1,region=r1 usage=-1 {now}", now)  # no cores: ignored
    got = cache.read(COLUMNS, now)
    assert got.schema.names[:3] == ["region", "host", "cores"]
    assert got.schema.field("cores").type == pa.int64()
    assert got.num_rows == len({(i % 3, i % 40, i % 2) for i in range(600)})
    newest = {(f"r{i % 3}", f"h{i % 40}", i % 2): float(i) for i in range(600)}
    assert {(r["region"], r["host"], r["cores"]): r["usage"] for r in got.to_pylist()} == newest
