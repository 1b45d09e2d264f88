#!/usr/bin/env bash
# Issue 20 on a GPU machine, in one go (about 5 minutes on an H100; well under 10):
#   1. install convnet with the test and gpu extras (cupy-cuda12x), unless already importable;
#   2. name the GPU;
#   3. the GPU tests (tests/gpu: ops fwd+bwd vs NumPy, a resnet20_cifar step vs the CPU, digits
#      training accuracy GPU vs CPU, a checkpoint GPU -> CPU -> GPU bitwise) and the op-level CuPy tests;
#   4. the GPU benchmark against PyTorch CUDA (python -m benchmarks.gpu).
# Outputs go to $OUT (default: ./gpu-results): pip.log, gpu.txt, pytest.txt, junit.xml, bench.txt, bench.json.
# Usage: bash tests/gpu/run.sh   (from the repository root)
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-gpu-results}"
mkdir -p "$OUT"
status=0
# install only what is missing (the machine may have no network: then it must have them already)
if ! python -c "import convnet, cupy, pytest, hypothesis" 2>/dev/null; then
    timeout 240 python -m pip install -q -e ".[test,gpu]" >"$OUT/pip.log" 2>&1 \
        || { echo "pip install failed (see $OUT/pip.log)"; tail -5 "$OUT/pip.log"; exit 1; }
fi
nvidia-smi -L | tee "$OUT/gpu.txt"
python -c "import cupy; p = cupy.cuda.runtime.getDeviceProperties(0); print('cupy', cupy.__version__, p['name'])" | tee -a "$OUT/gpu.txt"
timeout 300 python -m pytest tests/gpu tests/ops/test_cupy_backend.py -q -rs -p no:cacheprovider \
    --junitxml="$OUT/junit.xml" 2>&1 | tee "$OUT/pytest.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
timeout 180 python -m benchmarks.gpu --out "$OUT/bench.json" 2>&1 | tee "$OUT/bench.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "run.sh: exit status $status; results in $OUT"
exit $status
