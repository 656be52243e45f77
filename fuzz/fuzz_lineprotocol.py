#!/usr/bin/env python3
"""Coverage-guided fuzzing of the line protocol parser with atheris (libFuzzer).

    .venv/bin/python fuzz/fuzz_lineprotocol.py -max_total_time=600 -print_final_stats=1
    .venv/bin/python fuzz/fuzz_lineprotocol.py -runs=20000
    .venv/bin/python fuzz/fuzz_lineprotocol.py fuzz/out/crash-<sha1>   # replay one input

Each input is one request body. The weir.lineprotocol modules are instrumented for
coverage, and every input goes through `lineprotocol_invariants.check_body()`, which
checks real invariants, not only that nothing raises: every line is a row or an error
with its line number, all parser paths and precisions agree, accepted rows round-trip
through format_line(). A broken invariant raises, which libFuzzer reports as a crash
(the input is saved as `crash-<sha1>` under the artifact prefix).

Any libFuzzer flag can be given. Without corpus directories or input files it fuzzes
into fuzz/out/corpus/ (created; libFuzzer writes new inputs to the first directory)
starting from the committed seeds in fuzz/corpus/lineprotocol/, and unless given it
uses -dict=fuzz/lineprotocol.dict, -artifact_prefix=fuzz/out/, -max_len=4096 and
-timeout=30. Every power of two inputs it prints a `weir-fuzz:` line with what the
checks saw (inputs with rows, with errors, batch path answers, round trips).

WEIR_FUZZ_INJECT=<bug> plants a deliberate parser bug, so a test can see the harness
catch it: `lose-line` (parse() drops a bad line's error), `batch-disagrees` (the batch
path shifts a time by 1 ns), `crash` (the scanner raises on a line with an escaped
space), `round-trip` (format_line() stops escaping `=` in keys).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import atheris

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

# The C-backed libraries are not instrumented (and are imported once, up front).
import numpy  # noqa: E402, F401
import pyarrow  # noqa: E402
import pyarrow.compute  # noqa: E402

with atheris.instrument_imports(include=["weir"]):
    import weir.lineprotocol
    import weir.lineprotocol.batch
    import weir.lineprotocol.columnar
    import weir.lineprotocol.format
    import weir.lineprotocol.linepath
    import weir.lineprotocol.parser
    import weir.lineprotocol.scanner

import lineprotocol_invariants as invariants  # noqa: E402

SEEDS = HERE / "corpus" / "lineprotocol"
OUT = HERE / "out"
DICT = HERE / "lineprotocol.dict"


# ---- planted bugs (WEIR_FUZZ_INJECT), to prove the checks can fail ------------------


def _inject_lose_line() -> None:
    parser = weir.lineprotocol.parser
    real = parser.parse_lines

    def parse_lines(*args: Any, **kw: Any) -> Any:
        r = real(*args, **kw)
        del r.errors[-1:]
        return r

    parser.parse_lines = parse_lines


def _inject_batch_disagrees() -> None:
    columnar = weir.lineprotocol.columnar
    TableColumns = weir.lineprotocol.batch.TableColumns
    real = columnar.parse_plain_body

    def parse_plain_body(*args: Any, **kw: Any) -> Any:
        r = real(*args, **kw)
        if r is not None and r.tables:
            name, t = list(r.tables.items())[-1]
            times = pyarrow.compute.add(t.times.array, 1)
            r.tables[name] = TableColumns.from_arrays(
                name, t.line_numbers.array, {k: c.array for k, c in t.tags.items()},
                {k: (ft, c.array) for k, (ft, c) in t.fields.items()}, times)
        return r

    weir.lineprotocol.parser.parse_plain_body = parse_plain_body
    invariants.parse_plain_body = parse_plain_body


def _inject_crash() -> None:
    linepath = weir.lineprotocol.linepath
    real = linepath.scan_line

    def scan_line(line: str, *args: Any) -> Any:
        if "\\ " in line:
            raise IndexError("planted bug")
        return real(line, *args)

    linepath.scan_line = scan_line


def _inject_round_trip() -> None:
    weir.lineprotocol.format._KEY = str.maketrans({"\\": "\\\\", ",": "\\,", " ": "\\ "})


INJECTIONS: dict[str, Callable[[], None]] = {
    "lose-line": _inject_lose_line,
    "batch-disagrees": _inject_batch_disagrees,
    "crash": _inject_crash,
    "round-trip": _inject_round_trip,
}


# ---- the fuzz target -------------------------------------------------------------------

_next_report = 1


def _report() -> None:
    s = invariants.STATS
    print(f"weir-fuzz: {s['inputs']} inputs, {s['inputs with rows']} with rows "
          f"({s['rows']} rows), {s['inputs with errors']} with errors, "
          f"{s['batch path answered']} batch path answers, {s['round trips']} round trips",
          file=sys.stderr, flush=True)


def test_one_input(data: bytes) -> None:
    global _next_report
    invariants.check_body(data)
    if invariants.STATS["inputs"] >= _next_report:
        _next_report *= 2
        _report()


def main(argv: list[str]) -> None:
    args = argv[1:]
    flags = [a for a in args if a.startswith("-")]
    paths = [a for a in args if not a.startswith("-")]
    given = {a.split("=", 1)[0] for a in flags}
    if not paths:
        (OUT / "corpus").mkdir(parents=True, exist_ok=True)
        paths = [str(OUT / "corpus"), str(SEEDS)]
    defaults = {"-dict": str(DICT), "-artifact_prefix": f"{OUT}/", "-max_len": "4096",
                "-timeout": "30"}
    for flag, value in defaults.items():
        if flag not in given:
            if flag == "-artifact_prefix":
                OUT.mkdir(exist_ok=True)
            flags.append(f"{flag}={value}")
    bug = os.environ.get("WEIR_FUZZ_INJECT")
    if bug:
        if bug not in INJECTIONS:
            sys.exit(f"WEIR_FUZZ_INJECT={bug!r}: expected one of {', '.join(INJECTIONS)}")
        INJECTIONS[bug]()
        print(f"weir-fuzz: planted bug {bug!r}", file=sys.stderr, flush=True)
    atheris.Setup([argv[0], *flags, *paths], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
