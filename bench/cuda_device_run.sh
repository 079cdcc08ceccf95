#!/usr/bin/env bash
# GoCaffe's CUDA backend on a GPU machine, in one call, beside PyTorch on the
# same GPU: the CUDA test binaries, `goexec-cuda bench` at LeNet b64/b4096 and
# CIFAR-10 quick b100/b1000 with and without CUDA-graph replay, with cuBLAS
# (when the machine has it) and GoCaffe's own GEMM kernels, fp32 and TF32,
# bench/torch/gpu.py, a full LeNet run (10,000 iterations) with its peak GPU
# memory, its iteration-5000 snapshot resumed on the CPU, and a kernel-time
# profile of LeNet b64 with ncu; also the next batch copied on a second stream
# (GOCAFFE_CUDA_COPY_STREAM=1) and convolutions on cuDNN (GOCAFFE_CUDNN_CONV=1,
# cuDNN found as goexec finds it, e.g. in PyTorch's nvidia wheels), fp32 and
# TF32. The machine needs the NVIDIA driver, Python
# with PyTorch, and no Go: build the binaries elsewhere.
#
#   make goexec-cuda && D=build/device && mkdir -p $D && cp bin/goexec-cuda $D/
#   for p in kernels/cuda kernels/cuda/cudnn caffe/network caffe/solver; do
#     GOEXPERIMENT=simd go test -tags cuda -c -o $D/$(basename $p).test ./$p; done
#   cp <MNIST's four .gz files> $D/mnist/      # or any GOCAFFE_MNIST_DIR
#   # on the GPU machine, from the repository root, with OUT a results folder:
#   BIN=$D OUT=results bench/cuda_device_run.sh
#
# Files ending in .xz in BIN are unpacked first (to fit a transfer limit).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
B=$(cd "${BIN:?set BIN to the folder with goexec-cuda and the test binaries}" && pwd)
OUT=${OUT:-$ROOT/build/cuda-run}; mkdir -p "$OUT"
for f in "$B"/*.xz; do [ -e "$f" ] && xz -d -f "$f"; done
chmod +x "$B"/goexec-cuda "$B"/*.test 2>/dev/null
export GOCAFFE_MNIST_DIR=${GOCAFFE_MNIST_DIR:-$B/mnist}
nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv,noheader; date -u
L=examples/lenet_train_test.prototxt Q=examples/cifar10_quick_train_test.prototxt
CASES="lenet:$L:64:200 lenet:$L:4096:30 cifar10_quick:$Q:100:200 cifar10_quick:$Q:1000:30"
bench() { # bench LABEL EXTRA-FLAGS...: one line per case
	local label=$1; shift
	for c in $CASES; do
		timeout 30 "$B/goexec-cuda" bench -gpu 0 -log-level warn -iterations "${c##*:}" -warmup 10 -cases "${c%:*}" "$@" 2>&1 |
			tee -a "$OUT/bench_$label.log" | grep -v '^$' | tail -1
	done
}
echo "== tests"
for t in kernels/cuda:cuda kernels/cuda/cudnn:cudnn caffe/network:network caffe/solver:solver; do
	dir=${t%%:*} bin=$B/${t##*:}.test
	[ -x "$bin" ] || continue
	run=(); case $dir in kernels/cuda*) ;; *) run=(-test.run 'CUDA|CUDNN') ;; esac
	(cd "$dir" && timeout 90 "$bin" -test.count=1 -test.v "${run[@]}" >"$OUT/test_${t##*:}.log" 2>&1
		echo "$dir: rc=$? passed $(grep -c -- '--- PASS' "$OUT/test_${t##*:}.log"), failed $(grep -c -- '--- FAIL' "$OUT/test_${t##*:}.log")")
done
echo "== bench, iterations replayed as CUDA graphs"; bench graphs
echo "== bench, kernel by kernel"; bench eager -graphs=false
"$B/goexec-cuda" cuda-probe -device 0 2>&1 | tail -2 # cuBLAS and cuDNN: where found, or where looked for
echo "== bench, GoCaffe's own GEMM kernels (GOCAFFE_CUBLAS=off)"; GOCAFFE_CUBLAS=off bench own
echo "== bench, TF32 tensor cores (GOCAFFE_CUDA_TF32=1), cuBLAS when found"; GOCAFFE_CUDA_TF32=1 bench tf32
echo "== bench, TF32 on GoCaffe's own kernel"; GOCAFFE_CUBLAS=off GOCAFFE_CUDA_TF32=1 bench own_tf32
echo "== bench, the next batch on a copy stream (GOCAFFE_CUDA_COPY_STREAM=1)"; GOCAFFE_CUDA_COPY_STREAM=1 bench copy
echo "== bench, convolutions on cuDNN (GOCAFFE_CUDNN_CONV=1)"; GOCAFFE_CUDNN_CONV=1 bench cudnn
echo "== bench, cuDNN and the copy stream"; GOCAFFE_CUDNN_CONV=1 GOCAFFE_CUDA_COPY_STREAM=1 bench cudnn_copy
echo "== bench, cuDNN with TF32"; GOCAFFE_CUDNN_CONV=1 GOCAFFE_CUDA_TF32=1 bench cudnn_tf32
echo "== PyTorch on the same GPU"
PYTHONUNBUFFERED=1 timeout 120 python3 bench/torch/gpu.py 2>&1 | tee "$OUT/torch.log" | grep -v '^$' | tail -14
echo "== LeNet, 10,000 iterations on the GPU"
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$OUT/memory.log" 2>&1 &
smi=$!
mkdir -p out # snapshot_prefix "out/lenet" is relative to the working directory
t0=$(date +%s.%N)
timeout 180 "$B/goexec-cuda" train -solver examples/lenet_solver.prototxt -gpu 0 -log-format json >"$OUT/train.log" 2>&1
echo "train rc=$? wall $(python3 -c "import time; print(round(time.time() - $t0, 2))") s"
kill "$smi"
echo "nvidia-smi used MiB: peak $(sort -n "$OUT/memory.log" | tail -1), before $(head -1 "$OUT/memory.log")"
grep -E '"test"|replayed|optimization done|"error"' "$OUT/train.log" | tail -5 | cut -c1-330
echo "== the iteration-5000 snapshot resumed on the CPU, to 5,500"
sed -e 's/^max_iter: .*/max_iter: 5500/' -e 's/^solver_mode: .*//' -e 's#^snapshot_prefix: .*#snapshot_prefix: "out/cpuresume"#' \
	examples/lenet_solver.prototxt >examples/lenet_cpu_resume.prototxt
timeout 120 "$B/goexec-cuda" train -solver examples/lenet_cpu_resume.prototxt -snapshot out/lenet_iter_5000.solverstate \
	-log-format json >"$OUT/resume.log" 2>&1
echo "resume rc=$?"; grep -E '"test"|restored|"error"' "$OUT/resume.log" | tail -3 | cut -c1-300
echo "== kernel time per LeNet b64 iteration (ncu)"
timeout 60 ncu --clock-control none --metrics gpu__time_duration.sum --csv "$B/goexec-cuda" bench -gpu 0 -log-level warn \
	-iterations 5 -warmup 5 -cases "lenet:$L:64" >"$OUT/ncu.csv" 2>"$OUT/ncu.err"
echo "ncu rc=$?"
python3 - "$OUT/ncu.csv" <<'PY'
import collections, csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows:
    sys.exit("ncu wrote no kernel rows")
h = rows[0]; k = h.index('Kernel Name'); v = h.index('Metric Value')
t = collections.defaultdict(float); n = collections.Counter()
for r in rows[1:]:
    t[r[k][:40]] += float(r[v].replace(',', '')); n[r[k][:40]] += 1
print('kernels profiled', sum(n.values()), 'total ns', int(sum(t.values())))
for name, ns in sorted(t.items(), key=lambda x: -x[1])[:12]:
    print(f'{name:40s} {n[name]:5d} {ns / 1000:9.1f} us')
PY
date -u
