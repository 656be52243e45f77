"""Durable WAL triggers (issue #15), against real servers and real plugin workers: the
trigger reads the WAL from its checkpoint, so a kill -9, a crashing worker or an error
never costs a batch, and a plugin using buffered writes never doubles its output;
several waiting WAL files go to the plugin as one call; a trigger past
--trigger-max-wal-lag skips what snapshots deleted, says so, and never holds up ingest.

Every output row here carries the id of the input row it came from as a tag and no
timestamp (the server stamps it when the call's writes are stored), so a row delivered
twice would show up as two rows with the same id."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx

from conftest import WeirServer, free_port
from support.cli import poll

TRIGGER = "/api/v3/configure/processing_engine_trigger"

#: writes each row it sees to `args["out"]` (id tag, i field), buffered; sleeps `pause`
#: seconds per call, and records each call (rows seen) in `calls`
COPY = """
import time

def process_writes(influxdb3_local, table_batches, args=None):
    n = 0
    for batch in table_batches:
        for row in batch["rows"]:
            n += 1
            influxdb3_local.write(LineBuilder(args["out"]).tag("id", str(row["i"]))
                                  .int64_field("i", row["i"]))
    influxdb3_local.write(LineBuilder("calls").int64_field("rows", n))
    time.sleep(float(args.get("pause", "0")))
"""


def engine_server(server_factory: Any, tmp_path: Path, *extra: str) -> WeirServer:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    s: WeirServer = server_factory(plugin_dir=plugins, extra_args=[
        "--wal-flush-interval", "10ms", "--plugin-call-timeout", "20s", *extra])
    s.start()
    assert httpx.post(f"{s.url}/api/v3/configure/database", json={"db": "d"}).status_code \
        == 200
    return s


def create_trigger(s: WeirServer, name: str, plugin: str, spec: str, args: dict[str, str],
                   error_behavior: str = "log") -> None:
    r = httpx.post(f"{s.url}{TRIGGER}", json={
        "db": "d", "plugin_filename": plugin, "trigger_name": name,
        "trigger_specification": spec, "trigger_arguments": args,
        "trigger_settings": {"run_async": False, "error_behavior": error_behavior},
        "disabled": False}, timeout=60)
    assert r.status_code == 200, r.text


def rows(s: WeirServer, sql: str, db: str = "d") -> list[dict[str, Any]]:
    r = s.query(db, sql)
    return r.json() if r.status_code == 200 else []


def ids(s: WeirServer, table: str) -> list[int]:
    """Every output row's id, sorted, duplicates kept."""
    return sorted(r["i"] for r in rows(s, f"SELECT i FROM {table}"))


def status(s: WeirServer, trigger: str) -> dict[str, Any]:
    got = rows(s, "SELECT * FROM system.processing_engine_triggers "
                  f"WHERE trigger_name = '{trigger}'")
    return got[0] if got else {}


def trigger_logs(s: WeirServer, trigger: str) -> list[str]:
    return [r["log_text"] for r in rows(
        s, "SELECT log_text FROM system.processing_engine_logs "
           f"WHERE trigger_name = '{trigger}' ORDER BY event_time", "_internal")]


def wait_for(fn: Any, timeout: float = 45.0) -> Any:
    return poll(fn, timeout)


def write_each(s: WeirServer, table: str, numbers: range) -> float:
    """One acknowledged write (one WAL file) per number; the slowest write's seconds."""
    slowest = 0.0
    for i in numbers:
        t0 = time.monotonic()
        r = s.write("d", f"{table} i={i}i")
        slowest = max(slowest, time.monotonic() - t0)
        assert r.status_code == 204, r.text
    return slowest


def test_kill9_with_calls_pending_delivers_every_row_exactly_once(server_factory, tmp_path):
    s = engine_server(server_factory, tmp_path)
    (s.plugin_dir / "copy.py").write_text(COPY)
    create_trigger(s, "copier", "copy.py", "table:src", {"out": "dst", "pause": "0.3"})
    write_each(s, "src", range(40))
    before = len(ids(s, "dst"))
    s.kill9()
    assert before < 40, "the plugin had every row before the kill: nothing was pending"
    s.port = free_port()
    s.start()
    assert wait_for(lambda: len(ids(s, "dst")) >= 40), ids(s, "dst")
    time.sleep(1.0)  # anything delivered twice would arrive by now
    assert ids(s, "dst") == list(range(40))
    assert any(t.startswith("resuming after WAL file ") for t in trigger_logs(s, "copier"))
    # each call's rows were counted once too: its `calls` row is stored with its writes
    assert sum(r["rows"] for r in rows(s, "SELECT rows FROM calls")) == 40
    st = wait_for(lambda: (x := status(s, "copier")) and x["wal_lag_files"] == 0 and x)
    assert st["delivery"] == "exactly once for buffered writes; on error: log and skip"
    assert st["wal_lagging"] is False and st["wal_skipped_files"] == 0


SEGFAULT_ONCE = """
import ctypes
import os

def process_writes(influxdb3_local, table_batches, args=None):
    got = sorted(row["i"] for batch in table_batches for row in batch["rows"])
    marker = os.path.join(args["dir"], "seen-" + "-".join(map(str, got)))
    if not os.path.exists(marker):  # the first call with this batch: crash
        open(marker, "w").close()
        ctypes.string_at(0)
    for i in got:
        influxdb3_local.write(LineBuilder("dst").tag("id", str(i)).int64_field("i", i))
"""


def test_a_worker_that_segfaults_gets_the_batch_again(server_factory, tmp_path):
    s = engine_server(server_factory, tmp_path)
    markers = tmp_path / "markers"
    markers.mkdir()
    (s.plugin_dir / "crash.py").write_text(SEGFAULT_ONCE)
    s.expect_log(r"ERROR weir\.engine: processing engine \[crasher\]: error executing wal "
                 r"plugin: the plugin worker killed by signal 11 \(SIGSEGV\)")
    create_trigger(s, "crasher", "crash.py", "table:src", {"dir": str(markers)},
                   error_behavior="retry")
    write_each(s, "src", range(6))
    assert wait_for(lambda: ids(s, "dst") == list(range(6))), ids(s, "dst")
    time.sleep(0.5)
    assert ids(s, "dst") == list(range(6))
    # every batch crashed its worker once and was delivered again to the next one
    crashed = sorted(p.name for p in markers.iterdir())
    assert crashed and sum(len(n.split("-")) - 1 for n in crashed) == 6
    text = trigger_logs(s, "crasher")
    assert any(t.startswith("starting a new plugin worker; the previous one stopped: the "
                            "plugin worker killed by signal 11") for t in text)
    assert status(s, "crasher")["last_error"].startswith(
        "error executing wal plugin: the plugin worker killed by signal 11")


FLAKY = """
import os

def process_writes(influxdb3_local, table_batches, args=None):
    got = [row for batch in table_batches for row in batch["rows"]]
    if any(row.get("bad") for row in got) and not os.path.exists(args["fixed"]):
        n = influxdb3_local.cache.get("failures", default=0) + 1
        influxdb3_local.cache.put("failures", n)
        if n <= int(args["fail_times"]):
            raise ValueError(f"bad batch, failure {n}")
    for row in got:
        influxdb3_local.write(LineBuilder(args["out"]).tag("id", str(row["i"]))
                              .int64_field("i", row["i"]))
"""


def _wal_seq(s: WeirServer) -> int:
    text = httpx.get(f"{s.url}/metrics").text
    m = re.search(r"^weir_wal_last_sequence (\d+)$", text, re.MULTILINE)
    return int(m.group(1))  # type: ignore[union-attr]


def test_error_behaviors_move_the_checkpoint_or_keep_it(server_factory, tmp_path):
    s = engine_server(server_factory, tmp_path)
    fixed = tmp_path / "fixed"
    (s.plugin_dir / "flaky.py").write_text(FLAKY)
    s.expect_log(r"processing engine \[retrier\]: error executing wal plugin: ValueError: bad "
                 r"batch, failure [12]; will retry in \d+s \(attempt [12] of 10\)", count=2)
    s.expect_log(r"processing engine \[logger\]: error executing wal plugin: ValueError: bad "
                 r"batch, failure 1\n", count=1)
    s.expect_log(r"processing engine \[disabler\]: error executing wal plugin: ValueError: bad "
                 r"batch, failure 1\n", count=1)
    s.expect_log(r"processing engine \[disabler\]: trigger disabler was disabled because of "
                 r"an error \(error_behavior=disable\)", count=1)
    for name, behavior, fail_times in (("retrier", "retry", "2"), ("logger", "log", "99"),
                                       ("disabler", "disable", "99")):
        create_trigger(s, name, "flaky.py", f"table:{name}",
                       {"out": f"{name}_out", "fail_times": fail_times, "fixed": str(fixed)},
                       error_behavior=behavior)
    for name in ("retrier", "logger", "disabler"):
        s.write("d", f"{name} i=1i")
    assert wait_for(lambda: all(ids(s, f"{n}_out") == [1]
                                for n in ("retrier", "logger", "disabler")))
    s.write("d", "retrier i=2i,bad=true")
    before_logger = _wal_seq(s)
    s.write("d", "logger i=2i,bad=true")
    s.write("d", "disabler i=2i,bad=true")
    after_disabler = _wal_seq(s)
    # retry: the same batch again, with backoff, until it succeeds (the third attempt)
    assert wait_for(lambda: ids(s, "retrier_out") == [1, 2]), ids(s, "retrier_out")
    # log: the batch is skipped, and the checkpoint moves past it (stored)
    assert wait_for(lambda: status(s, "logger").get("wal_checkpoint", 0) > before_logger)
    # disable: the trigger stops with its checkpoint before the failed batch
    assert wait_for(lambda: status(s, "disabler").get("disabled"))
    held = status(s, "disabler")["wal_checkpoint"]
    assert held < after_disabler
    for name in ("retrier", "logger", "disabler"):
        s.write("d", f"{name} i=3i")
    assert wait_for(lambda: ids(s, "retrier_out") == [1, 2, 3])
    assert wait_for(lambda: ids(s, "logger_out") == [1, 3])
    assert status(s, "disabler")["wal_checkpoint"] == held  # disabled: nothing handled
    assert status(s, "disabler")["last_error"].startswith(
        "trigger disabler was disabled because of an error (error_behavior=disable): "
        "ValueError: bad batch, failure 1")
    # enabling it again resumes at the checkpoint: the failed batch first, then the rest
    fixed.touch()
    r = httpx.post(f"{s.url}{TRIGGER}/enable", params={"db": "d", "trigger_name": "disabler"})
    assert r.status_code == 200, r.text
    assert wait_for(lambda: ids(s, "disabler_out") == [1, 2, 3]), ids(s, "disabler_out")
    time.sleep(0.5)
    assert ids(s, "disabler_out") == [1, 2, 3] and ids(s, "retrier_out") == [1, 2, 3]
    assert ids(s, "logger_out") == [1, 3]
    assert status(s, "retrier")["delivery"] == ("exactly once for buffered writes; on error: "
                                                "retry, 10 attempts, then skip")
    assert status(s, "disabler")["delivery"] == (
        "exactly once for buffered writes; on error: disable the trigger; enabling it "
        "resumes at the failed batch")


SLOW_FIRST = """
import time

def process_writes(influxdb3_local, table_batches, args=None):
    if not influxdb3_local.cache.get("slept"):
        influxdb3_local.cache.put("slept", True)
        time.sleep(float(args["pause"]))
    for batch in table_batches:
        for row in batch["rows"]:
            influxdb3_local.write(LineBuilder("dst").tag("id", str(row["i"]))
                                  .int64_field("i", row["i"]))
"""


def test_a_trigger_past_the_lag_bound_skips_deleted_files_and_never_blocks_ingest(
        server_factory, tmp_path):
    s = engine_server(server_factory, tmp_path, "--wal-snapshot-size", "2",
                      "--snapshotted-wal-files-to-keep", "0", "--trigger-max-wal-lag", "3")
    (s.plugin_dir / "slow.py").write_text(SLOW_FIRST)
    s.expect_log(r"ERROR weir\.engine: processing engine \[laggard\]: skipped \d+ WAL files "
                 r"\(WAL files \d+ to \d+\): deleted before this trigger processed them")
    create_trigger(s, "laggard", "slow.py", "table:src", {"pause": "6"})
    write_each(s, "src", range(1))  # its call sleeps 6 s
    time.sleep(0.3)
    slowest = write_each(s, "src", range(1, 13))
    # more than 3 files behind at a snapshot: storage marks it lagging and keeps no WAL
    # for it (the first 3 files after its call are in the engine's memory)
    lagging = wait_for(lambda: (x := status(s, "laggard")) and x["wal_lagging"] and x,
                       timeout=5)
    assert lagging, status(s, "laggard")
    assert lagging["wal_lag_files"] > 3
    slowest = max(slowest, write_each(s, "src", range(13, 31)))
    assert slowest < 1.0  # ingest does not wait for the trigger
    # once its call returns it catches up, skipping the deleted files, and says which
    done = wait_for(lambda: (x := status(s, "laggard")) and x["wal_lag_files"] == 0
                    and x["wal_skipped_files"] and x)
    assert done, status(s, "laggard")
    skipped = [t for t in trigger_logs(s, "laggard") if t.startswith("skipped ")]
    assert skipped
    counted = 0
    for text in skipped:
        m = re.match(r"skipped (\d+) WAL files? \(WAL files? (\d+)(?: to (\d+))?\)", text)
        assert m, text
        first, last = int(m.group(2)), int(m.group(3) or m.group(2))
        assert int(m.group(1)) == last - first + 1
        counted += int(m.group(1))
    assert counted == done["wal_skipped_files"]
    got = ids(s, "dst")
    assert got[0] == 0 and len(got) == len(set(got)) and len(got) < 31
    # what was not deleted is delivered: writes after the skipped range
    s.write("d", "src i=99i")
    assert wait_for(lambda: 99 in ids(s, "dst"))


def test_a_lagging_trigger_gets_several_wal_files_per_call(server_factory, tmp_path):
    s = engine_server(server_factory, tmp_path)
    (s.plugin_dir / "copy.py").write_text(COPY)
    # a call lasts a second: the lag stays visible long enough to read it twice, even
    # on a loaded machine (at 0.3 s, the trigger had caught up between the two reads)
    create_trigger(s, "batcher", "copy.py", "table:src", {"out": "dst", "pause": "1"})
    write_each(s, "src", range(40))
    # while it works through them, /metrics and the triggers table show the lag
    metrics = httpx.get(f"{s.url}/metrics").text
    st = status(s, "batcher")
    assert st["wal_lag_files"] > 0 and st["wal_lag_rows"] > 0, st
    assert st["wal_lag_seconds"] is not None and st["wal_lag_seconds"] >= 0
    assert re.search(r'^weir_trigger_wal_lag_files\{db="d",trigger="batcher"\} [1-9]\d*$',
                     metrics, re.MULTILINE), metrics
    assert re.search(r'^weir_trigger_wal_lag_seconds\{db="d",trigger="batcher"\} \d',
                     metrics, re.MULTILINE), metrics
    assert wait_for(lambda: ids(s, "dst") == list(range(40))), ids(s, "dst")
    calls = [r["rows"] for r in rows(s, "SELECT rows FROM calls")]
    assert sum(calls) == 40
    assert len(calls) < 40 and max(calls) > 1, calls  # files merged into fewer calls
    time.sleep(0.5)
    assert ids(s, "dst") == list(range(40))
    st = wait_for(lambda: (x := status(s, "batcher")) and x["wal_lag_files"] == 0 and x)
    assert st["wal_lag_rows"] == 0 and st["wal_lag_seconds"] == 0.0


def test_a_new_trigger_starts_at_the_newest_wal_file(server_factory, tmp_path):
    """Rows written before a trigger exists are not its (nor after a restart)."""
    s = engine_server(server_factory, tmp_path)
    (s.plugin_dir / "copy.py").write_text(COPY)
    write_each(s, "src", range(3))
    create_trigger(s, "late", "copy.py", "table:src", {"out": "dst"})
    st = status(s, "late")
    assert st["wal_checkpoint"] >= 3 and st["wal_lag_files"] <= 1
    write_each(s, "src", range(3, 5))
    assert wait_for(lambda: ids(s, "dst") == [3, 4]), ids(s, "dst")
    s.restart()
    write_each(s, "src", range(5, 6))
    assert wait_for(lambda: ids(s, "dst") == [3, 4, 5]), ids(s, "dst")
    time.sleep(0.5)
    assert ids(s, "dst") == [3, 4, 5]


JITTER = """
import random
import time

def process_writes(influxdb3_local, table_batches, args=None):
    time.sleep(random.random() * 0.3)  # overlapping calls finish out of order
    for batch in table_batches:
        for row in batch["rows"]:
            influxdb3_local.write(LineBuilder("dst").tag("id", str(row["i"]))
                                  .int64_field("i", row["i"]))
"""


def test_run_async_calls_overlap_and_the_checkpoint_follows_the_finished_prefix(
        server_factory, tmp_path):
    s = engine_server(server_factory, tmp_path)
    (s.plugin_dir / "jitter.py").write_text(JITTER)
    r = httpx.post(f"{s.url}{TRIGGER}", json={
        "db": "d", "plugin_filename": "jitter.py", "trigger_name": "overlapping",
        "trigger_specification": "table:src", "trigger_arguments": None,
        "trigger_settings": {"run_async": True, "error_behavior": "log"},
        "disabled": False}, timeout=60)
    assert r.status_code == 200, r.text
    write_each(s, "src", range(20))
    assert wait_for(lambda: ids(s, "dst") == list(range(20))), ids(s, "dst")
    last = _wal_seq(s)
    # every call finished, so the checkpoint reaches past the last one (out of order or not)
    st = wait_for(lambda: (x := status(s, "overlapping")) and x["wal_lag_files"] == 0 and x)
    assert st, status(s, "overlapping")
    assert st["delivery"] == "at least once (run_async); on error: log and skip"
    s.restart()  # a clean stop stores the checkpoint: nothing is delivered again
    assert status(s, "overlapping")["wal_checkpoint"] >= last
    s.write("d", "src i=20i")
    assert wait_for(lambda: ids(s, "dst") == list(range(21))), ids(s, "dst")
