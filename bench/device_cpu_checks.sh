#!/usr/bin/env bash
# CPU-side checks on a lent machine with spare cores (run from the repository root; see
# bench/RESULTS.md): the server-load benchmark (watchers in their own processes) and the CPU
# training-throughput ratios, on a quiet machine instead of this shared 2-core one. Expects the
# server's wheels for that machine's Python in .whl/ (pip download --only-binary); writes logs
# to $OUT (default: ./gpu-out).
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
{ nproc; python3 -c "import torch, numpy, sys; print('torch', torch.__version__, 'numpy', \
numpy.__version__, 'python', sys.version.split()[0])"; } | tee "$OUT/machine.txt"
echo "== server load"
timeout 300 python3 bench/server_load.py "$@" 2>&1 | grep -v '" 200 -$' | tee "$OUT/server_load.txt"
echo "== CPU training throughput"
timeout 200 python3 bench/train_throughput.py --device cpu --seconds 2 --repeats 3 --markdown 2>&1 \
  | tee "$OUT/cpu_throughput.txt"
