#!/usr/bin/env bash
# GoCaffe's CUDA backend on a GPU machine, in one call, beside PyTorch on the
# same GPU: the CUDA test binaries; `goexec-cuda bench` at LeNet b64/b512/b4096
# and CIFAR-10 quick b100/b1000 (the batch fixed in device memory, as
# bench/torch/gpu.py's is) with the defaults (cuDNN when found, its fastest
# algorithms, the copy stream), with GoCaffe's own convolution kernels
# (GOCAFFE_CUDNN_CONV=0), with cuDNN's deterministic algorithms, and TF32 at
# the big batches; a fresh batch uploaded every iteration with and without
# the copy stream; AlexNet b256; the full LeNet run (10,000 iterations) with
# nvidia-smi's peak memory, its test time and a Go CPU profile of its host
# side (OUT/train.prof); bench/torch/gpu.py; and ncu kernel-time profiles
# of LeNet b64, CIFAR-10 quick b100 and AlexNet b256. About 400 s on an H100. The
# machine needs the NVIDIA driver, Python with PyTorch, ncu, and no Go:
# build the binaries elsewhere.
#
#   make goexec-cuda && D=build/device && mkdir -p $D && cp bin/goexec-cuda $D/
#   for p in kernels/cuda kernels/cuda/cudnn caffe/network caffe/solver; do
#     GOEXPERIMENT=simd go test -tags cuda -c -o $D/$(basename $p).test ./$p; done
#   cp <MNIST's four .gz files> $D/mnist/      # or any GOCAFFE_MNIST_DIR
#   # on the GPU machine, from the repository root, with OUT a results folder:
#   BIN=$D OUT=results bench/cuda_device_run.sh
#
# Files ending in .xz in BIN are unpacked first (to fit a transfer limit).
# BUDGET (seconds, default 400) skips what would not fit; OUT/summary.txt
# holds every line printed.
cd "$(dirname "$0")/.."
C=$(cd "${BIN:?set BIN to the folder with goexec-cuda and the test binaries}" && pwd)
mkdir -p "${OUT:=build/cuda-run}"; OUT=$(cd "$OUT" && pwd); T0=$SECONDS; left() { echo $((${BUDGET:-400} - (SECONDS - T0))); }
S=$OUT/summary.txt; say() { echo "$@" | tee -a $S; }
for f in $C/*.xz; do xz -d -f -T4 $f & done; wait; chmod +x $C/*; export GOCAFFE_MNIST_DIR=${GOCAFFE_MNIST_DIR:-$C/mnist}
say "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader) $(date -u)"; say "$($C/goexec-cuda cuda-probe 2>&1 | tail -2)"
t() { (cd $1 && timeout $4 $C/$2 -test.count=1 -test.v ${3:+-test.run "$3"} > $OUT/t.log 2>&1; rc=$?; cat $OUT/t.log >> $OUT/tests.log
   say "$1 ($2 ${3:-all}): rc=$rc passed $(grep -c -- '--- PASS' $OUT/t.log) skipped $(grep -c -- '--- SKIP' $OUT/t.log) failed $(grep -c -- '--- FAIL' $OUT/t.log) $((SECONDS-T0)) s"
   grep -E -A8 -e '--- FAIL' $OUT/t.log | head -30 | tee -a $S); rm -f $OUT/t.log; }
t kernels/cuda cuda.test "" 100; t kernels/cuda/cudnn cudnn.test "" 30; t caffe/network network.test 'CUDA|CUDNN|Fusion' 60; t caffe/solver solver.test 'CUDA|CUDNN' 80
L=examples/lenet_train_test.prototxt Q=examples/cifar10_quick_train_test.prototxt A=caffe/testdata/nets/alexnet_train_val.prototxt
b() { local lab=$1 c=$2; shift 2; [ $(left) -lt 30 ] && { say "$lab ${c%%:*}: skipped"; return; }
  r=$(env "$@" timeout 50 $C/goexec-cuda bench -gpu 0 -log-level warn -iterations ${c##*:} -warmup 10 -cases ${c%:*} $BX 2>&1 | tee -a $OUT/bench.log | grep -v '^$' | tail -1 | sed 's/device memory peak.*cases so far), //'); say "$lab: $r"; }
say "== bench fixed data, defaults: cuDNN (fastest algorithms), copy stream (left $(left))"
for c in lenet:$L:64:400 lenet:$L:512:200 lenet:$L:4096:50 cifar10_quick:$Q:100:300 cifar10_quick:$Q:1000:50; do b default $c; done
for c in lenet:$L:4096:50 cifar10_quick:$Q:1000:50; do b tf32 $c GOCAFFE_CUDA_TF32=1; done
prof() { [ $(left) -lt 40 ] && return; timeout 45 ncu --clock-control none --metrics gpu__time_duration.sum --csv env "${@:3}" $C/goexec-cuda bench -gpu 0 -log-level warn -iterations 3 -warmup 3 -cases "$1" >"$OUT/ncu.csv" 2>/dev/null; say "ncu $1 ${*:3} rc=$?"
python3 - "$OUT/ncu.csv" > $OUT/ncu_$2.txt <<'PY'
import collections, csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows: sys.exit("ncu wrote no kernel rows")
h = rows[0]; k = h.index('Kernel Name'); v = h.index('Metric Value')
t = collections.defaultdict(float); n = collections.Counter()
for r in rows[1:]:
    t[r[k][:60]] += float(r[v].replace(',', '')); n[r[k][:60]] += 1
print('kernels profiled', sum(n.values()), 'total ns', int(sum(t.values())))
for name, ns in sorted(t.items(), key=lambda x: -x[1])[:40]: print(f'{name:60s} {n[name]:5d} {ns / 1000:9.1f} us')
print('--- launch order, last 80')
for r in rows[-80:]: print(f'{r[k][:60]:60s} {float(r[v].replace(",", ""))/1000:8.1f}')
PY
head -16 $OUT/ncu_$2.txt; rm -f $OUT/ncu.csv; }
say "== PyTorch (left $(left))"
PYTHONUNBUFFERED=1 timeout $(( $(left) > 140 ? 130 : $(left) - 10 )) python3 bench/torch/gpu.py --nets lenet,cifar_quick,alexnet > "$OUT/torch.log" 2>&1; grep -v '^$' $OUT/torch.log | python3 -c "
import sys, json
for l in sys.stdin:
    try: d = json.loads(l)
    except Exception: print(l.strip()); continue
    if 'net' in d: print('torch', d['net'], d['batch'], 'graph' if d['graph'] else 'eager', 'tf32' if d['tf32'] else 'fp32', d['us_per_iter'], 'us', d['peak_mem_mib'], 'MiB')
" | tee -a $S; rm -f "$OUT/torch.log"
say "== LeNet 10k (left $(left))"
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$OUT/mem.log" 2>&1 & smi=$!
rm -rf out; mkdir -p out; t0=$(date +%s.%N)
GOCAFFE_CPUPROFILE=$OUT/train.prof timeout 60 $C/goexec-cuda train -solver examples/lenet_solver.prototxt -gpu 0 -log-format json >"$OUT/train.log" 2>&1
say "train rc=$? wall $(python3 -c "import time; print(round(time.time() - $t0, 2))") s, nvidia-smi peak $(sort -n $OUT/mem.log | tail -1) MiB (idle $(head -1 $OUT/mem.log))"; kill $smi; rm -f $OUT/mem.log
grep -E '"test"|optimization done|"error"|"done"' "$OUT/train.log" | tail -4 | cut -c1-260 | tee -a $S
python3 - "$OUT/train.log" <<'PY' | tee -a $S
import json, re, sys
took = []
for l in open(sys.argv[1]):
    try: d = json.loads(l)
    except Exception: continue
    if d.get('message') == 'test' and 'took' in d:
        m = re.fullmatch(r'([\d.]+)(ms|s|µs)', d['took'])
        if m: took.append(float(m[1]) * {'ms': 1e-3, 's': 1, 'µs': 1e-6}[m[2]])
print(f'tests: {len(took)}, {sum(took):.3f} s in all')
PY
say "== AlexNet b256 (left $(left))"; b default alexnet:$A:256:10; b tf32 alexnet:$A:256:10 GOCAFFE_CUDA_TF32=1
say "== ncu (left $(left))"; prof "lenet:$L:64" lenet64; prof "cifar10_quick:$Q:100" cifar100; prof "alexnet:$A:256" alexnet
say "== bench fixed data: GoCaffe's own kernels | cuDNN deterministic (left $(left))"
for c in lenet:$L:64:400 lenet:$L:512:200 lenet:$L:4096:50 cifar10_quick:$Q:100:300 cifar10_quick:$Q:1000:50; do
  b own $c GOCAFFE_CUDNN_CONV=0; b determ $c GOCAFFE_CUDNN_ALGO=deterministic; done
say "== fresh data"; BX="-data fresh"; for c in lenet:$L:64:400 lenet:$L:4096:50 cifar10_quick:$Q:1000:50; do b default $c; b one-stream $c GOCAFFE_CUDA_COPY_STREAM=0; done; BX=
say "total $((SECONDS-T0)) s"; echo; echo "==== SUMMARY"; cat $S
