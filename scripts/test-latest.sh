#!/usr/bin/env bash
# Run the suite against the newest releases of everything Weir depends on, ignoring
# requirements.lock, in a throwaway venv (.venv is not touched). This is how an upstream
# release that breaks Weir is found on purpose, before a user finds it: if it passes, move
# the lock with `bash scripts/lock.sh --upgrade`; if not, fix Weir (or cap the dependency
# in pyproject.toml) first.
#
#   bash scripts/test-latest.sh                    # the whole suite
#   bash scripts/test-latest.sh tests/unit/wal  # arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
venv=$(mktemp -d "${TMPDIR:-/tmp}/weir-latest.XXXXXX")
trap 'rm -rf "$venv"' EXIT
echo "==> creating a throwaway venv in $venv"
"$PY" -m venv "$venv"
echo "==> installing the newest releases (pip install -U '.[test,bench]')"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -U pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -U -e '.[test,bench]'
"$venv/bin/python" -m pip check
echo "==> versions that differ from requirements.lock"
"$venv/bin/python" - <<'EOF'
import re
from importlib.metadata import distributions
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()  # noqa: E731
locked = dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)==([^ \\\n]+)",
                         open("requirements.lock").read(), re.M))
locked = {norm(k): v for k, v in locked.items()}
for d in sorted(distributions(), key=lambda d: norm(d.metadata["Name"])):
    name = norm(d.metadata["Name"])
    if name in locked and locked[name] != d.version:
        print(f"  {name}: {locked[name]} -> {d.version}")
EOF
echo "==> pytest (newest releases)"
# the test servers run `influxdb3`/`weir` from this venv: put it first on PATH
export PATH="$venv/bin:$PATH"
exec "$venv/bin/python" -m pytest -q "$@"
