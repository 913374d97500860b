#!/usr/bin/env bash
# On a machine with a CUDA GPU: run the GPU tests, then benchmarks/gpu.py, in under 8 minutes, with logs in $OUT.
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh      # logs in that folder (default: /tmp/gradcore_gpu_check)
#
# Needs python3 with CuPy, pytest and (for the PyTorch column) PyTorch with CUDA; installs nothing.
# The exit status is non-zero when a test or a benchmark check failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gradcore_gpu_check}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

{
    date
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv || true
    python3 -c "import cupy; print('cupy', cupy.__version__, 'runtime', cupy.cuda.runtime.runtimeGetVersion())" || true
} 2>&1 | tee "$OUT/environment.log"

status=0
# The GPU-only tests first (the kernels on the device against float64 references; they also compile the modules,
# which fills CuPy's cache for the benchmark), then the suite with CUDA as the default device, without
# tests/kernels: the kernel tests there run the CPU emulation, which CI runs already and which would only spend
# the GPU's time.
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_kernels_gpu.py -rs 2>&1 \
    | tee "$OUT/tests_kernels_gpu.log" || status=1
if python3 -m pytest --help 2>/dev/null | grep -q -- "--device"; then
    timeout 150 python3 -m pytest -q -p no:cacheprovider -x tests --device cuda --ignore=tests/kernels 2>&1 \
        | tail -n 60 | tee "$OUT/tests_cuda.log" || status=1
fi
# gpu.py writes gpu_bench.log and gpu_bench.json before each figure and at the end: a run that the timeout stops
# keeps the figures it finished. (Its --tiny dry run is tests/kernels/test_gpu_benchmark.py, run by CI.) After
# figure (a) it writes the measured GEMM-or-cuBLAS crossover to gradcore/backend/gemm_crossover.json (which
# product_path reads; commit it with the logs) and a copy to $OUT.
timeout 190 python3 benchmarks/gpu.py --out "$OUT" --write-crossover 2>&1 | tee "$OUT/gpu_bench_stdout.log" \
    || status=1
cp gradcore/backend/gemm_crossover.json "$OUT/" 2>/dev/null || true
echo "gpu_check: exit status $status; logs in $OUT"
exit "$status"
