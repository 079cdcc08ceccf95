#!/usr/bin/env bash
# Installs what builds GoCaffe's CUDA variant (bin/goexec-cuda) on any
# linux/amd64 machine, GPU or not, into .venv-cuda (ignored by git):
#   - nvcc 13.0 from NVIDIA's pip wheels (nvidia-cuda-nvcc and the wheels it
#     needs: nvvm, crt, runtime headers). The 12.x wheels (nvidia-cuda-nvcc-cu12)
#     carry ptxas but no nvcc. 13.0 exactly: PTX from a newer nvcc does not
#     load on a 13.0 driver; the fatbins also carry SASS for sm_80 and sm_90.
#   - cuda.h of CUDA 12.9 (nvidia-cuda-runtime-cu12) for the cgo side:
#     gorgonia.org/cu v0.9.6 calls cuCtxCreate, cuMemAdvise, ... with their
#     12.x signatures, which CUDA 13's header changed; CUDA 13 drivers still
#     export the 12.x entry points.
#   - a C compiler for cgo (apt-get, if missing).
# Prints nothing when everything is already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

NVCC_VERSION=13.0.88
CUDA_RUNTIME_VERSION=13.0.96
CUDA12_RUNTIME_VERSION=12.9.79
want="nvcc=$NVCC_VERSION runtime=$CUDA_RUNTIME_VERSION cu12-runtime=$CUDA12_RUNTIME_VERSION"

if ! command -v cc >/dev/null 2>&1; then
	echo "cuda-setup: installing gcc with apt-get (cgo needs a C compiler)"
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gcc libc6-dev >/dev/null
fi

if [ "$(cat .venv-cuda/.versions 2>/dev/null)" != "$want" ]; then
	echo "cuda-setup: installing $want into .venv-cuda"
	[ -x .venv-cuda/bin/python ] || python3 -m venv .venv-cuda
	.venv-cuda/bin/pip install --quiet --disable-pip-version-check \
		"nvidia-cuda-nvcc==$NVCC_VERSION" "nvidia-nvvm==$NVCC_VERSION" "nvidia-cuda-crt==$NVCC_VERSION" \
		"nvidia-cuda-runtime==$CUDA_RUNTIME_VERSION" "nvidia-cuda-runtime-cu12==$CUDA12_RUNTIME_VERSION"
	echo "$want" >.venv-cuda/.versions
fi
