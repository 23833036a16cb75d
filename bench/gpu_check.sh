#!/usr/bin/env bash
# The GPU checks in one go (run on a lent GPU machine from the repository root; see
# bench/RESULTS.md): the CUDA-only tests, the engine's throughput benchmark, and the anchor
# baselines measured in the same run. Expects pydantic wheels in .whl/ and the anchor scripts
# (../shared/anchors) copied into .anchors/. Writes logs to $OUT (default: ./gpu-out).
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, sys; print('torch', torch.__version__, 'python', sys.version.split()[0])" \
  | tee -a "$OUT/gpu.txt"
echo "== CUDA tests"
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$OUT/cuda_tests.txt"
echo "== engine throughput"
timeout 300 python3 bench/train_throughput.py --device cuda --n 60000 --seconds 2 --markdown 2>&1 \
  | tee "$OUT/throughput.txt"
if [ -d .anchors ]; then
  echo "== anchors"
  (cd .anchors && timeout 120 python3 anchor_cudagraph.py 2>&1) | tee "$OUT/anchor_cudagraph.txt"
  (cd .anchors && timeout 90 python3 anchor_train.py --only resident/bs --seconds 2 2>&1) \
    | tee "$OUT/anchor_train.txt"
fi
