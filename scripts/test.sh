#!/usr/bin/env bash
# Install everything needed, then run the linters and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "==> ruff"
.venv/bin/ruff check src tests bench plugins fuzz
echo "==> pytest"
exec .venv/bin/python -m pytest -q "$@"
