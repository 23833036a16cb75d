#!/usr/bin/env bash
# Create .venv and install torchloom into it. Idempotent: a second run with an unchanged
# pyproject.toml installs nothing and takes about a second.
#
# torch: an already-installed torch is kept (put a CUDA build there first on a GPU machine).
# Otherwise TORCHLOOM_TORCH is installed, by default torch==2.13.0 — pinned so that pip never
# resolves a bare "torch" to a multi-GB download on CPU-only machines and CI.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "torchloom: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
vpy=.venv/bin/python

if ! "$vpy" -c "import torch" >/dev/null 2>&1; then
  spec=${TORCHLOOM_TORCH:-torch==2.13.0}
  echo "torchloom: installing $spec"
  "$vpy" -m pip install --quiet --disable-pip-version-check "$spec" 2>&1 | grep -v "is ignored" || true
  "$vpy" -c "import torch" || { echo "torchloom: torch failed to install" >&2; exit 1; }
fi

stamp=.venv/.torchloom-installed
want=$(cat pyproject.toml | sha1sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "torchloom: installing the project and its dependencies into .venv"
  "$vpy" -m pip install --quiet --disable-pip-version-check -e ".[dev]" 2>&1 \
    | grep -v "is ignored" || true
  "$vpy" -c "import graph_compiler, pydantic, sklearn" || { echo "torchloom: install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
