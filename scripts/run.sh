#!/usr/bin/env bash
# Start torchloom. Until the server lands, this validates and compiles every example graph and
# prints each one's summary (node, type, output shape, params, FLOPs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/torchloom examples examples "$@"
