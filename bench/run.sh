#!/usr/bin/env bash
# Runs GoCaffe's CPU benchmarks (kernels, vision layers, whole LeNet and
# CIFAR-10 quick forward+backward) beside the PyTorch CPU anchor, on this
# machine, at the same time, and prints everything needed for BENCHMARKS.md.
#
#   bench/run.sh                 # all of it
#   BENCHTIME=50x COUNT=5 bench/run.sh
#   ONLY=nets bench/run.sh       # nets | layers | gemm | torch
#
# The reference run is bench/torch/cpu.py (PyTorch twins of the same nets);
# it needs PyTorch in .venv-bench (ignored by git), created with pip on
# first use.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCHTIME=${BENCHTIME:-30x}
COUNT=${COUNT:-3}
ONLY=${ONLY:-all}
THREADS=${THREADS:-2}
VENV=${VENV:-.venv-bench}

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cpus), go: $(go version | cut -d' ' -f3)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
export GOEXPERIMENT=simd
run() { [ "$ONLY" = all ] || [ "$ONLY" = "$1" ]; }
if run nets; then
	go test -run '^$' -bench 'Nets' -benchtime "$BENCHTIME" -count "$COUNT" ./bench/ | grep '^Benchmark'
fi
if run layers; then
	go test -run '^$' -bench 'Vision' -benchtime "$BENCHTIME" -count 1 ./caffe/layers/ | grep '^Benchmark'
fi
if run gemm; then
	go test -run '^$' -bench 'Sgemm' -benchtime 200x -count 1 ./kernels/cpu/ | grep '^Benchmark'
fi
if run torch; then
	if [ ! -x "$VENV/bin/python" ]; then
		python3 -m venv "$VENV"
		"$VENV/bin/pip" install torch numpy
	fi
	"$VENV/bin/python" -W ignore bench/torch/cpu.py --threads "$THREADS"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
