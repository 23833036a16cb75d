#!/usr/bin/env bash
# Run every check: the editor (install, typecheck, vitest, build), then lint, format, and the
# whole pytest suite (which includes the browser tests against the built editor). What .ci/run
# calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash frontend/build.sh --check
echo "torchloom: ruff check + format"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "torchloom: pytest"
exec .venv/bin/python -m pytest "$@"
