#!/usr/bin/env bash
# GoCaffe's whole training steps (LeNet b64 and b512, CIFAR-10 quick b100) beside
# PyTorch CPU on the same pinned cores, at each CPU kernel level, for
# BENCHMARKS.md. Runs on any Linux x86-64 machine with taskset; with a
# prebuilt test binary it needs no Go (the GPU host's Xeon, for example).
#
#   bench/cpu_cores.sh                        # builds examples.test, 1, 2 and 8 cores
#   EXAMPLES_TEST=path/examples.test CORES="2 8" LEVELS="avx512 avx2" PYTHON=python3 bench/cpu_cores.sh
#
# TORCH_ARGS passes options to bench/torch/cpu.py (say "--steps 20 --reps 3
# --warm 5" to keep one-core runs short).
set -uo pipefail
cd "$(dirname "$0")/.."
CORES=${CORES:-"1 2 8"}
# LeNet b512 and CIFAR-10 quick b100 are the nets whose 8-core speed-up over
# one core issue 16 asks for.
BENCH=${BENCH:-"LeNetTrainStep64\$|LeNetTrainStep512|CIFAR10QuickTrainStep100"}
LEVELS=${LEVELS:-"avx512 avx2"}
BENCHTIME=${BENCHTIME:-50x}
COUNT=${COUNT:-3}
PYTHON=${PYTHON:-.venv-bench/bin/python}
BIN=${EXAMPLES_TEST:-}
if [ -z "$BIN" ]; then
	BIN=build/bench/examples.test
	mkdir -p build/bench
	GOEXPERIMENT=simd go test -c -o "$BIN" ./examples/
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cpus)"
for n in $CORES; do
	mask="0-$((n - 1))"
	echo "== $n cores (taskset -c $mask), load $(cut -d' ' -f1-3 /proc/loadavg)"
	for level in $LEVELS; do
		(cd examples && GOCAFFE_CPU_LEVEL=$level taskset -c "$mask" "$BIN" -test.run '^$' \
			-test.bench "$BENCH" -test.benchtime "$BENCHTIME" -test.count "$COUNT" |
			grep '^Benchmark' | sed "s/^/gocaffe-$level\t/")
	done
	taskset -c "$mask" "$PYTHON" -W ignore bench/torch/cpu.py --threads "$n" ${TORCH_ARGS:-}
done
