# Sourced by the scripts run on a lent device machine (bench/gpu_check.sh,
# bench/device_cpu_checks.sh): the output folder, and the wheels that machine's Python lacks
# (.whl/, downloaded here with `pip download --only-binary :all: --python-version 3.12`)
# installed into /tmp/site ahead of the repository on PYTHONPATH.
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1
