#!/usr/bin/env bash
# Start torchloom: install what is missing into .venv, build the browser editor when needed
# (frontend/dist), then serve the app on 127.0.0.1 with the embedded SQLite database in
# .torchloom/ (the example projects are added on first start).
# The URL printed at start carries the access token. Extra arguments go to `torchloom serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash frontend/build.sh || echo "torchloom: the editor could not be built (see above); serving anyway" >&2
exec .venv/bin/torchloom serve "$@"
