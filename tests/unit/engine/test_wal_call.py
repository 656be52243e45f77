"""A WAL call's payload (`weir.engine.wal_triggers.wal_call`): several WAL files' batches of a
table become one Arrow IPC stream, with columns added along the way filled with nulls,
and the worker reads them back as the rows the plugin API promises."""

from __future__ import annotations

import time

import pyarrow as pa

from weir import lineprotocol
from weir.engine.triggers import delivery_text
from weir.engine.wal_triggers import wal_call
from weir.engine.worker.protocol import ipc_to_table, split_segments
from weir.engine.worker.runtime import _table_batches


def _batches(lp: str) -> list[tuple[str, pa.RecordBatch]]:
    parsed = lineprotocol.parse(lp, precision="ns", default_time_ns=time.time_ns())
    assert not parsed.errors, parsed.errors
    return [(name, tc.to_arrow()) for name, tc in parsed.tables.items()]


def test_one_stream_per_table_with_promoted_schema() -> None:
    items = (_batches("cpu,host=a usage=1 1\nmem,host=a free=3i 1")
             + _batches("cpu,host=b usage=2,idle=5 2")  # a column the first file lacked
             + _batches("cpu,region=eu,host=c usage=3 3"))  # and a new tag
    header, payload = wal_call(items)
    assert header["kind"] == "wal"
    assert [t["name"] for t in header["tables"]] == ["cpu", "mem"]
    cpu_bytes, _ = split_segments(payload, [t["size"] for t in header["tables"]])
    cpu = ipc_to_table(cpu_bytes)
    assert cpu.num_rows == 3
    assert set(cpu.column_names) == {"host", "usage", "time", "idle", "region"}
    # each column still says what it is (tag, field, time): the worker orders rows by it
    kinds = {f.name: (f.metadata or {}).get(b"weir:kind") for f in cpu.schema}
    assert kinds["host"] == kinds["region"] == b"tag" and kinds["idle"] == b"field"
    tables = _table_batches({"tables": header["tables"]}, payload)
    assert tables == [
        {"table_name": "cpu", "rows": [
            {"host": "a", "usage": 1.0, "time": 1},
            {"host": "b", "usage": 2.0, "idle": 5.0, "time": 2},
            {"host": "c", "region": "eu", "usage": 3.0, "time": 3}]},
        {"table_name": "mem", "rows": [{"host": "a", "free": 3, "time": 1}]}]


def test_one_file_is_sent_as_it_is() -> None:
    items = _batches("cpu,host=a usage=1 1")
    header, payload = wal_call(items)
    assert len(header["tables"]) == 1 and header["tables"][0]["size"] == len(payload)
    assert ipc_to_table(payload).equals(pa.Table.from_batches([items[0][1]]))
    assert wal_call([]) == ({"kind": "wal", "tables": []}, b"")


def test_batches_that_cannot_be_joined_go_as_separate_streams() -> None:
    a = pa.record_batch({"v": pa.array([1], pa.int64())})
    b = pa.record_batch({"v": pa.array(["x"], pa.string())})
    header, payload = wal_call([("t", a), ("t", b)])
    assert [t["name"] for t in header["tables"]] == ["t", "t"]
    assert _table_batches({"tables": header["tables"]}, payload) == [
        {"table_name": "t", "rows": [{"v": 1}, {"v": "x"}]}]


def test_delivery_texts() -> None:
    assert delivery_text("wal", False, "retry", 10) == (
        "exactly once for buffered writes; on error: retry, 10 attempts, then skip")
    assert delivery_text("wal", True, "log", 10) == (
        "at least once (run_async); on error: log and skip")
    assert delivery_text("wal", False, "disable", 10).endswith(
        "enabling it resumes at the failed batch")
    assert delivery_text("request", False, "log", 10) == "once per request"
    assert delivery_text("parquet", False, "disable", 3) == (
        "each snapshot's files while the server runs; on error: disable the trigger")
