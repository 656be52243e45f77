#!/usr/bin/env bash
# Create ./.venv (if missing) and install Weir into it with its test and bench tools, at the
# exact versions (and sha256 hashes) in requirements.lock: a fresh machine gets what the
# suite passed with, never whatever was released this morning. To move a version on
# purpose: scripts/lock.sh; to try the newest releases: scripts/test-latest.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${WEIR_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
# The lock is resolved for one interpreter and platform; elsewhere pip may still find
# matching files, but say so rather than fail later in an obscure way.
where=$("$VENV/bin/python" -c 'import platform, sys; print(f"{sys.version_info[0]}.{sys.version_info[1]} {platform.system()} {platform.machine()}")')
if [ "$where" != "3.11 Linux x86_64" ]; then
  echo "warning: requirements.lock is for Python 3.11 on Linux x86_64; this is $where" >&2
fi
echo "==> installing the locked dependencies (requirements.lock) into $VENV"
# --require-hashes: every file must match a hash in the lock, whichever index served it.
# --no-deps: the lock is the whole set; nothing may pull in an unlisted package.
# (a machine whose pip config names a local index missing some packages warns once per
# package per fresh venv; those lines say nothing about Weir and are dropped)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --require-hashes --no-deps -r requirements.lock \
  2> >(grep -v "^WARNING: Location 'file:" >&2)
echo "==> installing weir itself (editable, no dependencies)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
"$VENV/bin/python" -m pip check
