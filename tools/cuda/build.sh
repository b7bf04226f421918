#!/usr/bin/env bash
# Builds the CUDA-enabled `lifted` (candle's CUDA backend) on a machine without a GPU or a
# system CUDA: nvcc, headers and libraries come from NVIDIA's PyPI wheels (pip-setup.sh), in
# their own target dir so the CPU build is untouched. See docs/gpu.md.
#
#   tools/cuda/build.sh            # -> target-cuda/release/lifted (sm_90, H100/H200)
#   CUDA_COMPUTE_CAP=80 tools/cuda/build.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export ROOT=${ROOT:-$HOME/.cache/cuda13}
if [ ! -x "$ROOT/cuda-pip/nvidia/cu13/bin/nvcc" ]; then
    tools/cuda/pip-setup.sh .
fi
export PATH=$ROOT/cuda-pip/nvidia/cu13/bin:$PATH
export CUDA_HOME=$ROOT/cuda-pip/nvidia/cu13
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
CARGO_TARGET_DIR=target-cuda cargo build --release --locked --features cuda -j 2 --bin lifted "$@"
echo "built target-cuda/release/lifted (compute capability $CUDA_COMPUTE_CAP)"
