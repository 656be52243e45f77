"""Check per-package coverage against the floors in scripts/coverage-floors.txt.

Usage: python scripts/coverage_floor.py COVERAGE_JSON [FLOORS_FILE]

COVERAGE_JSON is what `coverage json` wrote for the combined data of a whole-suite run.
A package `weir.x` is the module src/weir/x.py or everything under src/weir/x/. Prints one
line per package (statements, covered, percent, floor) and exits 1 if any is below its floor,
so a drop fails CI while a rise only asks for the floor to be raised.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path, PurePosixPath

#: How far above its floor a package may drift before the check suggests raising the floor.
RAISE_HINT = 2.0


def read_floors(path: Path) -> dict[str, float]:
    floors: dict[str, float] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise SystemExit(f"{path}:{n}: expected 'package floor', got {raw!r}")
        try:
            floors[parts[0]] = float(parts[1])
        except ValueError:
            raise SystemExit(f"{path}:{n}: the floor {parts[1]!r} is not a number") from None
    return floors


def package_of(filename: str, packages: list[str]) -> str | None:
    """The floored package a measured file belongs to (by its path from the last 'weir/')."""
    parts = PurePosixPath(filename.replace("\\", "/")).parts
    if "weir" not in parts:
        return None
    rel = "/".join(parts[len(parts) - 1 - parts[::-1].index("weir"):])
    for pkg in packages:
        base = pkg.replace(".", "/")
        if rel.startswith(base + "/") or rel == base + ".py":
            return pkg
    return None


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    report = json.loads(Path(argv[1]).read_text())
    floors_path = Path(argv[2]) if len(argv) == 3 else Path(__file__).with_name(
        "coverage-floors.txt")
    floors = read_floors(floors_path)
    totals = {pkg: [0, 0] for pkg in floors}  # statements, covered
    for filename, data in report["files"].items():
        pkg = package_of(filename, list(floors))
        if pkg is not None:
            totals[pkg][0] += data["summary"]["num_statements"]
            totals[pkg][1] += data["summary"]["covered_lines"]
    failed = []
    print(f"{'package':<16} {'stmts':>6} {'covered':>8} {'cover':>7} {'floor':>6}")
    for pkg, floor in floors.items():
        stmts, covered = totals[pkg]
        if stmts == 0:
            print(f"{pkg:<16} no measured files: is the name right, did the suite run?")
            failed.append(pkg)
            continue
        pct = 100.0 * covered / stmts
        mark = ""
        if pct < floor:
            mark = "  BELOW THE FLOOR"
            failed.append(pkg)
        elif pct >= floor + RAISE_HINT:
            mark = f"  (raise the floor to {int(pct) - 1}?)"
        print(f"{pkg:<16} {stmts:>6} {covered:>8} {pct:>6.1f}% {floor:>5.1f}%{mark}")
    if failed:
        print(f"coverage fell below its floor ({floors_path}) for: {', '.join(failed)}; "
              "add tests for what is no longer covered (or, if code was removed on purpose, "
              "say why when lowering the floor)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
