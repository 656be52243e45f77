"""The atheris harness (fuzz/fuzz_lineprotocol.py), run as CI runs it: a real libFuzzer
process with a bounded budget must finish clean after many inputs, and the same harness
must fail on each kind of parser bug planted in it (so a clean run means something)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

HARNESS = ROOT / "fuzz" / "fuzz_lineprotocol.py"
SEEDS = ROOT / "fuzz" / "corpus" / "lineprotocol"

FUZZ_SECONDS = 20  # the CI budget; a longer run is in fuzz/README.md
# CI (CI=true) fuzzes from a fixed libFuzzer seed so that a landing cannot turn on the
# luck of the draw; by hand every run explores anew (or WEIR_FUZZ_SEED replays one)
LIBFUZZER_SEED = os.environ.get("WEIR_FUZZ_SEED") or ("20261202" if os.environ.get("CI")
                                                     else "0")
MAX_RUNS = 200_000
MIN_EXECUTIONS = 1000


def harness(args: list[str], inject: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "WEIR_FUZZ_INJECT"}
    if inject:
        env["WEIR_FUZZ_INJECT"] = inject
    return subprocess.Popen([sys.executable, str(HARNESS), *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(p: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        raise AssertionError(f"the harness did not finish in {timeout}s:\n{out[-4000:]}"
                             ) from None
    return out


def test_bounded_fuzz_run_is_clean_and_tries_many_inputs(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    p = harness([str(corpus), str(SEEDS), f"-max_total_time={FUZZ_SECONDS}",
                 f"-runs={MAX_RUNS}", "-print_final_stats=1", f"-seed={LIBFUZZER_SEED}",
                 f"-artifact_prefix={tmp_path}/"])
    out = finish(p, FUZZ_SECONDS + 60)
    assert p.returncode == 0, out[-6000:]
    assert not list(tmp_path.glob("crash-*")), out[-6000:]

    executed = int(re.search(r"^stat::number_of_executed_units:\s*(\d+)", out, re.MULTILINE)[1])
    done = re.search(r"^#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+)", out, re.MULTILINE)
    assert done is not None, out[-3000:]
    rate = re.search(r"^stat::average_exec_per_sec:\s*(\d+)", out, re.MULTILINE)[1]
    print(f"\nlibFuzzer: {executed} inputs executed in ~{FUZZ_SECONDS}s ({rate}/s), "
          f"cov {done[2]}, ft {done[3]}")
    assert int(done[1]) == executed
    assert executed > MIN_EXECUTIONS, out[-3000:]
    # coverage of the instrumented weir.lineprotocol code: without instrumentation
    # libFuzzer sees next to nothing
    assert int(done[2]) > 300, done[0]

    # the checks were not vacuous: rows, errors, batch path answers and round trips
    stats = re.findall(r"^weir-fuzz: (\d+) inputs, (\d+) with rows \((\d+) rows\), "
                       r"(\d+) with errors, (\d+) batch path answers, (\d+) round trips",
                       out, re.MULTILINE)
    assert stats, out[-3000:]
    inputs, with_rows, _rows, with_errors, batch, round_trips = map(int, stats[-1])
    print(f"weir-fuzz: {stats[-1]}")
    assert inputs >= 512
    assert with_rows > 50 and with_errors > 50 and batch > 50 and round_trips > 50


# One body per planted bug, which the harness must catch when given it (libFuzzer runs a
# file argument once), with the invariant it must name.
PLANTED = {
    "lose-line": (b"m v=1\nm v=bad\n", "lines lost or invented"),
    "batch-disagrees": (b"m,t=a v=1 5\n", "the batch path disagrees with the line path"),
    "crash": (b"m\\ x v=1\n", "IndexError: planted bug"),
    "round-trip": (b"m,a\\=b=c v=1\n", "rows change when rendered with format_line()"),
}


def test_the_harness_catches_planted_bugs(tmp_path: Path) -> None:
    artifacts = f"-artifact_prefix={tmp_path}/"
    files, runs = [], {}
    for bug, (body, _expected) in PLANTED.items():
        path = tmp_path / f"{bug}.lp"
        path.write_bytes(body)
        files.append(str(path))
        runs[bug] = harness([str(path), artifacts], inject=bug)
    # the fuzz loop itself (not only a replayed file) stops at a planted bug: the seed
    # corpus holds bad lines, so it fails while reading them, and saves the input
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    runs["fuzz loop"] = harness([str(corpus), str(SEEDS), "-max_total_time=60",
                                 "-runs=100000", artifacts], inject="lose-line")
    outs = {bug: finish(p, 120) for bug, p in runs.items()}
    for bug, out in outs.items():
        assert runs[bug].returncode != 0, (bug, out[-4000:])
        assert "weir-fuzz: planted bug" in out, (bug, out[-4000:])
        expected = PLANTED.get(bug, (b"", "lines lost or invented"))[1]
        assert expected in out, (bug, out[-4000:])
        print(f"planted bug {bug!r}: exit {runs[bug].returncode}, caught: {expected}")
    crashes = list(tmp_path.glob("crash-*"))
    assert len(crashes) == 1, outs["fuzz loop"][-4000:]

    # without the planted bugs the same inputs, and the saved one, pass
    p = harness([*files, str(crashes[0]), artifacts])
    out = finish(p, 120)
    assert p.returncode == 0, out[-4000:]
    assert out.count("Executed ") == len(files) + 1, out[-4000:]
