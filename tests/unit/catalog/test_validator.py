"""weir.catalog.validator without a server: a real Catalog on the memory object store,
bodies from the production-shaped generator (near-now nanosecond timestamps, thousands
of series), and the refusals the write API reports."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest

from support.datagen import generate
from weir.catalog import Catalog, Limits
from weir.catalog.validator import ValidatedWrite, raise_refused_lines, validate_write
from weir.errors import LineProtocolError, PartialWrite, WriteError
from weir.objectstore.memory import MemoryObjectStore

NOW = time.time_ns()
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def catalog(limits: Limits | None = None) -> Catalog:
    c = Catalog(MemoryObjectStore(), "node0", limits)
    c.load()
    return c


async def validate(c: Catalog, body: str, *, db: str = "db", precision: str = "ns",
                   accept_partial: bool = True) -> ValidatedWrite:
    return await validate_write(c, db, body, precision=precision,
                                accept_partial=accept_partial)


async def test_a_realistic_body_becomes_one_batch_per_table_and_the_schema() -> None:
    data = generate(seed=7, now_ns=NOW, hosts=200, regions=10)
    c = catalog()
    result = await validate(c, data.lp())
    assert not result.errors
    assert sorted(t for t, _ in result.tables) == sorted(data.tables)
    assert result.rows == len(data.lines)
    for table, batch in result.tables:
        assert set(batch.schema.names) == set(data.columns(table))
        assert batch.schema.field("time").type == pa.timestamp("ns")
        times = batch.column("time").cast(pa.int64()).to_pylist()
        assert NOW - 7200 * 10**9 < min(times) <= max(times) <= NOW + 7200 * 10**9  # ns
        stored = c.table("db", table).columns
        assert set(stored) == set(data.columns(table))
    # the schema was persisted: a second catalog on the same store sees it
    again = Catalog(c.store, "node0")
    again.load()
    assert set(again.db("db").tables) == set(data.tables)


async def test_a_type_conflict_refuses_that_line_only_and_names_it() -> None:
    c = catalog()
    await validate(c, f"cpu,host=a usage=1.5 {NOW}\n")
    body = (f"cpu,host=b usage=2.5 {NOW + 1}\n"
            f"cpu,host=c usage=\"high\" {NOW + 2}\n"
            f"cpu,host=d usage=3.5 {NOW + 3}\n")
    result = await validate(c, body)
    assert [e.line_number for e in result.errors] == [2]
    assert "expected float, got string" in result.errors[0].message
    assert result.errors[0].original_line.startswith("cpu,host=c")
    (_table, batch), = result.tables
    assert batch.column("host").to_pylist() == ["b", "d"]
    with pytest.raises(PartialWrite) as info:
        raise_refused_lines(result)
    assert not info.value.limit_exceeded and info.value.lines == result.errors


async def test_without_accept_partial_the_first_bad_line_refuses_all() -> None:
    c = catalog()
    await validate(c, f"cpu,host=a usage=1.5 {NOW}\n")
    body = f"cpu,host=b usage=2i {NOW}\ncpu,host=c usage=1.0 {NOW}\n"
    with pytest.raises(LineProtocolError) as info:
        await validate(c, body, accept_partial=False)
    assert info.value.line.line_number == 1
    assert c.table("db", "cpu").columns["usage"].type == "float"


async def test_a_column_used_only_by_refused_rows_never_enters_the_catalog() -> None:
    c = catalog()
    await validate(c, f"cpu,host=a usage=1.5 {NOW}\n")
    result = await validate(c, f"cpu,host=b usage=\"x\",extra=1i {NOW}\n"
                               f"cpu,host=c usage=2.0 {NOW}\n")
    assert [e.line_number for e in result.errors] == [1]
    assert "extra" not in c.table("db", "cpu").columns


async def test_a_write_that_stores_nothing_creates_no_database() -> None:
    c = catalog(Limits(columns_per_table=3))
    result = await validate(c, f"m a=1i,b=2i,c=3i,d=4i {NOW}\n", db="fresh")
    assert result.tables == [] and result.limit_lines == {1}
    assert not c.db_exists("fresh")
    with pytest.raises(PartialWrite) as info:
        raise_refused_lines(result)
    assert info.value.limit_exceeded
    assert "limit of 3 columns" in info.value.lines[0].message


async def test_limit_refusals_are_told_apart_from_type_conflicts() -> None:
    c = catalog(Limits(tables=1))
    await validate(c, f"one v=1i {NOW}\n")
    with pytest.raises(LineProtocolError) as info:
        await validate(c, f"two v=1i {NOW}\n", accept_partial=False)
    assert info.value.limit_exceeded
    with pytest.raises(LineProtocolError) as info:
        await validate(c, f"one v=1.5 {NOW}\n", accept_partial=False)
    assert not info.value.limit_exceeded


@pytest.mark.parametrize(("db", "message"), [
    ("_internal", "db name did not start with a number or letter"),
    ("bad name!", "invalid character"),
])
async def test_databases_that_cannot_take_writes(db: str, message: str) -> None:
    with pytest.raises(WriteError, match=message):
        await validate(catalog(), f"cpu v=1 {NOW}\n", db=db)


async def test_a_soft_deleted_database_takes_no_writes_until_recreated() -> None:
    c = catalog()
    await validate(c, f"cpu v=1 {NOW}\n")
    c.delete_database("db")
    with pytest.raises(WriteError, match="soft-deleted database 'db'"):
        await validate(c, f"cpu v=2 {NOW}\n")


async def test_precision_and_empty_bodies() -> None:
    c = catalog()
    with pytest.raises(WriteError, match="invalid precision 'minutes'"):
        await validate(c, "cpu v=1 1\n", precision="minutes")
    with pytest.raises(WriteError, match="incoming write was empty"):
        await validate(c, "\n# a comment\n")
    result = await validate(c, f"cpu v=1 {NOW // 10**9}\n", precision="s")
    (_, batch), = result.tables
    assert batch.column("time").cast(pa.int64()).to_pylist() == [NOW // 10**9 * 10**9]
