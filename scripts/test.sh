#!/usr/bin/env bash
# Run every check: lint, format, and the whole pytest suite. What .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "torchloom: ruff check + format"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "torchloom: pytest"
exec .venv/bin/python -m pytest "$@"
