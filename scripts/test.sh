#!/usr/bin/env bash
# Install everything needed (from requirements.lock), run ruff and mypy, then the test suite under
# coverage: the servers and CLI processes the tests start are measured too (pyproject.toml,
# [tool.coverage.run]). Prints the combined coverage of the weir package and, for a whole-suite
# run, checks the per-package floors in scripts/coverage-floors.txt, and runs the end-to-end tests
# a second time on S3 (below). Ends with pytest's summary lines; exits non-zero if a test failed,
# no test ran, or coverage fell below a floor.
#
#   bash scripts/test.sh                    # what CI runs
#   bash scripts/test.sh tests/unit/wal  # some tests: coverage reported, floors not checked
#   WEIR_COVERAGE=0 bash scripts/test.sh    # no coverage (faster)
#   WEIR_TEST_WORKERS=0 bash scripts/test.sh   # one process (default: 3 pytest-xdist workers)
#   WEIR_TEST_STORE=s3 bash scripts/test.sh tests/e2e   # every `file` server on SeaweedFS
set -euo pipefail
cd "$(dirname "$0")/.."
# Bytecode caches on: with PYTHONDONTWRITEBYTECODE set (as on some CI images) every server,
# CLI call and pytest worker the suite starts compiled all of weir's source again, ~0.3 s
# of CPU each, minutes over a run. The caches land in __pycache__/ (ignored by git).
unset PYTHONDONTWRITEBYTECODE
bash scripts/setup.sh
# Three workers on CI's two cores: most of an end-to-end test is spent waiting on the servers
# it started, so a third worker still finds a core free. Tests sharing a module's server run
# on one worker (loadscope), so each module starts its servers once.
WORKERS=${WEIR_TEST_WORKERS:-3}
XDIST=(-n "$WORKERS")
[ "$WORKERS" != "0" ] && XDIST+=(--dist loadscope)

# A whole-suite run ends with a second pass: the end-to-end tests again with their servers on
# S3 (a SeaweedFS the tests start on loopback; WEIR_TEST_STORE=s3, see tests/conftest.py),
# without coverage, leaving out the files whose store plays no part (STORE_BLIND_E2E there).
# WEIR_TEST_S3=0 leaves it out.
S3_PASS=0
if [ $# -eq 0 ] && [ "${WEIR_TEST_S3:-1}" != "0" ] && [ "${WEIR_TEST_STORE:-file}" = "file" ]; then
  S3_PASS=1
fi
s3_pass() {  # appends to $1; returns pytest's status
  echo "==> pytest tests/e2e again, their servers on S3 (WEIR_TEST_STORE=s3)"
  set +e
  WEIR_TEST_STORE=s3 "$PY" -m pytest -q -p no:cacheprovider "${XDIST[@]}" tests/e2e 2>&1 \
    | tee -a "$1"
  local st=${PIPESTATUS[0]}
  set -e
  return "$st"
}
echo "==> ruff"
# the rules, and the few per-file exceptions with their reasons: pyproject.toml [tool.ruff.lint]
.venv/bin/ruff check src tests bench plugins fuzz scripts
# strict type check of the packages listed in pyproject.toml ([tool.mypy] files)
echo "==> mypy"
.venv/bin/mypy
PY=.venv/bin/python

if [ "${WEIR_COVERAGE:-1}" = "0" ]; then
  echo "==> pytest"
  if [ "$S3_PASS" = "0" ]; then
    exec "$PY" -m pytest -q "${XDIST[@]}" "$@"
  fi
  status=0
  "$PY" -m pytest -q "${XDIST[@]}" || status=$?
  s3_pass /dev/null || status=$?
  exit "$status"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/weir-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Under a trace function (coverage's, on Python 3.11) a query thread that calls
# PyThreadState_SetAsyncExc(its own id, NULL) never ends: every query then waits for its 300 s
# time limit and a timed-out one hangs the process. Until weir.query.time_limit.with_time_limit
# stops doing that, measuring would turn the suite red: check both paths (a quick query, an
# interrupted one) in a second, and run without coverage, saying so, if they hang.
printf '%s\n' 'try:' '    from weir.query.time_limit import with_time_limit' \
  'except ImportError:' '    raise SystemExit(0)' 'with_time_limit(lambda: 1, 30)' \
  'def spin():' '    while True:' '        pass' \
  'try:' '    with_time_limit(spin, 0.2)' 'except Exception:' '    pass' > "$work/probe.py"
if ! COVERAGE_FILE="$work/probe.coverage" timeout -s KILL 20 "$PY" -m coverage run "$work/probe.py"; then
  echo "warning: a query under coverage hangs (weir.query.time_limit.with_time_limit clears an"
  echo "  async exception with PyThreadState_SetAsyncExc(..., NULL)); running WITHOUT coverage"
  echo "==> pytest"
  exec "$PY" -m pytest -q "${XDIST[@]}" "$@"
fi
# Absolute, so that a process started in another directory (a server, a CLI call) still
# writes its data file here; every process writes .coverage.<host>.<pid>.<random>.
export COVERAGE_FILE="$PWD/.coverage"
rm -f .coverage .coverage.*

echo "==> pytest (under coverage)"
set +e
"$PY" -m coverage run -m pytest -q --durations=15 "${XDIST[@]}" "$@" 2>&1 \
  | tee "$work/pytest.out"
status=${PIPESTATUS[0]}
set -e
if [ "$S3_PASS" = "1" ]; then
  s3_status=0
  s3_pass "$work/pytest-s3.out" || s3_status=$?
  [ "$status" -eq 0 ] && status=$s3_status
fi

echo "==> coverage of weir, all processes combined"
covered=1
"$PY" -m coverage combine --quiet && "$PY" -m coverage report \
  && "$PY" -m coverage json --quiet -o "$work/coverage.json" || covered=0

if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests (exit 5): nothing was checked"
elif [ "$status" -ne 0 ]; then
  echo "error: pytest failed (exit $status); coverage floors not checked"
elif [ "$covered" -eq 0 ] && [ $# -gt 0 ]; then
  # e.g. tests that only drive servers, which end by SIGKILL and write no data
  echo "==> coverage: no data from these tests; floors not checked (only part of the suite ran)"
elif [ "$covered" -eq 0 ]; then
  echo "error: no coverage data was combined; the floors cannot be checked"
  status=1
elif [ $# -gt 0 ]; then
  echo "==> coverage floors: not checked (only part of the suite ran)"
else
  echo "==> coverage floors (scripts/coverage-floors.txt)"
  "$PY" scripts/coverage_floor.py "$work/coverage.json" scripts/coverage-floors.txt || status=1
fi
# pytest's own summary line last, where CI and people look for it
summary() {
  grep -E '(passed|failed|error|errors|skipped|deselected|no tests ran).* in [0-9.]+s' "$1" \
    | tail -n 1 || true
}
if [ "$S3_PASS" = "1" ]; then
  echo "on S3: $(summary "$work/pytest-s3.out")"
fi
line=$(summary "$work/pytest.out")
[ -n "$line" ] && echo "$line"
exit "$status"
