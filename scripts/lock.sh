#!/usr/bin/env bash
# Refresh requirements.lock: exact versions and sha256 hashes of everything Weir, its tests
# and its benchmarks install (extras `test` and `bench`), for CPython 3.11 on Linux x86_64,
# resolved against PyPI alone (not any extra index or wheel folder this machine's pip config
# names), so that a fresh machine installs what the suite passed with.
#
#   bash scripts/lock.sh                         # add what pyproject.toml gained; keep every other pin
#   bash scripts/lock.sh --upgrade               # move everything to the newest releases
#   bash scripts/lock.sh --upgrade-package pyarrow   # move one package (and what it needs)
#
# Any other arguments go to `uv pip compile`. After an upgrade: `bash scripts/setup.sh`, run
# the suite, and commit requirements.lock with a message naming what moved.
# `bash scripts/test-latest.sh` tries the newest releases without touching the lock.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
PY=${PYTHON:-python3}

# uv is needed only here, so it lives in a throwaway venv, not in .venv or the lock.
tools=$(mktemp -d "${TMPDIR:-/tmp}/weir-lock.XXXXXX")
trap 'rm -rf "$tools"' EXIT
"$PY" -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet --isolated --disable-pip-version-check \
  --index-url https://pypi.org/simple "uv==$UV_VERSION"

# --no-config: ignore uv.toml and UV_* settings; the index is named explicitly.
# The existing requirements.lock is read as the preferred versions, so only what must move moves.
"$tools/venv/bin/uv" pip compile pyproject.toml \
  --no-config --index-url https://pypi.org/simple \
  --extra test --extra bench \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --generate-hashes --no-emit-package weir \
  --custom-compile-command "bash scripts/lock.sh" \
  --output-file requirements.lock "$@"
echo "==> wrote requirements.lock ($(grep -c '^[A-Za-z0-9]' requirements.lock) packages)"
