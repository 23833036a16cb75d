#!/usr/bin/env bash
# Build the browser editor when needed: `npm ci` into frontend/node_modules only when
# package-lock.json changed since the last install, `vite build` only when a source is newer
# than frontend/dist. Usage: frontend/build.sh [--check]  (--check: also typecheck + vitest)
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v npm >/dev/null; then
  echo "torchloom: npm is missing; install Node 20.19+ to build the editor" >&2
  exit 1
fi

stamp=node_modules/.torchloom-lock
want=$(sha1sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "torchloom: installing the editor's packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

if [ "${1:-}" = "--check" ]; then
  echo "torchloom: editor typecheck (tsc --noEmit) + unit tests (vitest)"
  npx --no-install tsc --noEmit -p .
  npx --no-install vitest run --reporter=dot
fi

built=dist/index.html
if [ ! -f "$built" ] || [ -n "$(find src index.html vite.config.ts package-lock.json tsconfig.json -newer "$built" -print -quit)" ]; then
  echo "torchloom: building the editor (vite build)"
  npx --no-install vite build --logLevel warn
fi
