#!/usr/bin/env bash
# Distributed training through spark-submit on local-cluster[N,1,1024] for
# N = 1, 2, 4 executors in both sync modes (issue 7's scaling table), and
# the cost of an averaging round (the driver's average) for LeNet and
# for a 60 M-parameter net. Prints one line per run for BENCHMARKS.md.
#
#   make jar demo-data && bench/spark_scaling.sh
#   ITERS=1000 EXECUTORS="1 2" MODES=allreduce bench/spark_scaling.sh
#   ONLY=averaging bench/spark_scaling.sh
#
# batch_size is per executor (CaffeOnSpark's meaning): N executors train
# on N·64 images per iteration. Every run starts from random_seed 1701
# (SEED=... for another). THREADS=1 gives each goexec one thread, as
# many as its executor has cores (local-cluster[N,1,...]); by default
# goexec uses every core of the machine, so on a small machine one
# executor already keeps all cores busy and a second cannot add any.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ITERS=${ITERS:-1000}
TAU=${TAU:-100}
EXECUTORS=${EXECUTORS:-1 2 4}
MODES=${MODES:-allreduce average}
ONLY=${ONLY:-all}
SPARK_HOME=${SPARK_HOME:-$(ls -d "$ROOT"/.venv/lib/python3*/site-packages/pyspark | head -1)}
JAR=$ROOT/build/libs/gocaffe.jar
MNIST=$ROOT/build/demo/mnist
OUT=$ROOT/build/bench-spark
export SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_HOSTNAME=localhost
[ -f "$JAR" ] || { echo "spark_scaling: build the jar first (make jar)" >&2; exit 2; }
[ -d "$MNIST/test" ] || { echo "spark_scaling: convert MNIST first (make demo-data)" >&2; exit 2; }
mkdir -p "$OUT"

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); cpu: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cpus); load: $(cut -d' ' -f1-3 /proc/loadavg)"

# solver NAME NET MAXITER TESTINTERVAL: a copy of Caffe's LeNet solver.
solver() {
	sed -e "s#^net: .*#net: \"$OUT/$2\"#" -e "s#^max_iter: .*#max_iter: $3#" -e "s#^test_interval: .*#test_interval: $4#" \
		-e 's#^snapshot: .*#snapshot: 0#' -e "s#^snapshot_prefix: .*#snapshot_prefix: \"$OUT/$1\"#" \
		-e 's#^display: .*#display: 100#' examples/lenet_solver.prototxt >"$OUT/$1_solver.prototxt"
	echo "random_seed: ${SEED:-1701}" >>"$OUT/$1_solver.prototxt"
}

sed -e "s#\"mnist::train\"#\"parquet:$MNIST/train\"#" -e "s#\"mnist::test\"#\"parquet:$MNIST/test\"#" \
	examples/lenet_train_test.prototxt >"$OUT/lenet_train_test.prototxt"

# submit LOG N MODE SOLVER: one training run; its output goes to LOG.
# EXEC_MB is each executor's heap (the 60 M-parameter rounds move 240 MB
# of weights and as much history each way). The driver runs with Spark's
# default memory (1 GB) unless DRIVER_MEMORY says otherwise.
submit() {
	local log=$1 n=$2 mode=$3 solver=$4
	local mb=${EXEC_MB:-1024}
	local driver=() threads=()
	[ -n "${DRIVER_MEMORY:-}" ] && driver=(--driver-memory "$DRIVER_MEMORY")
	[ -n "${THREADS:-}" ] && threads=(--conf spark.gocaffe.goexec.threads="$THREADS")
	"$SPARK_HOME/bin/spark-submit" --master "local-cluster[$n,1,$mb]" "${driver[@]}" "${threads[@]}" --conf spark.executor.memory="${mb}m" \
		--conf spark.ui.enabled=false --conf spark.gocaffe.sync.mode="$mode" \
		--conf spark.gocaffe.sync.roundIterations="$TAU" \
		--class GoCaffeRunner "$JAR" -train -conf "$solver" -model "$OUT/model.caffemodel" -overwrite -clusterSize "$n" \
		>"$log" 2>&1 || { echo "spark_scaling: run failed, see $log" >&2; tail -20 "$log" >&2; return 1; }
}

# report LOG N MODE ITERS: time per iteration from the rounds' times, the
# slowest rank's training time, and the final test accuracy.
report() {
	awk -v n="$2" -v mode="$3" -v iters="$4" '
		/round [0-9]+ done:/ { for (i = 1; i <= NF; i++) if ($i == "in") { wall += $(i+1); rounds++ } }
		/final test:/ { if (match($0, /accuracy = [0-9.]+/)) acc = substr($0, RSTART + 11, RLENGTH - 11) }
		END { printf "| %d | %s | %d | %.1f ms | %.0f | %s |\n", n, mode, iters, 1000 * wall / iters, iters * 64 * n / wall, acc }
	' "$1"
}

if [ "$ONLY" = all ] || [ "$ONLY" = scaling ]; then
	solver lenet lenet_train_test.prototxt "$ITERS" "$ITERS"
	echo "| executors | sync | iterations | time per iteration | images/s | test accuracy |"
	echo "|---|---|---|---|---|---|"
	for mode in $MODES; do
		for n in $EXECUTORS; do
			submit "$OUT/lenet-$mode-$n.log" "$n" "$mode" "$OUT/lenet_solver.prototxt"
			report "$OUT/lenet-$mode-$n.log" "$n" "$mode" "$ITERS"
		done
	done
fi

# Averaging rounds: τ = 1, so every iteration is a round; the driver's
# "average" figure is the reduce of the ranks' weights and history into the
# driver's model files, from which the next round's ranks fetch them. A
# round's wall time includes it.
if [ "$ONLY" = all ] || [ "$ONLY" = averaging ]; then
	# 784·10000 + 10000·5200 + 5200·10 weights plus biases: 59,907,210.
	sed -e '/name: "conv1"/,$d' "$OUT/lenet_train_test.prototxt" | sed '$d' >"$OUT/mlp60m_train_test.prototxt"
	cat >>"$OUT/mlp60m_train_test.prototxt" <<'EOF'
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
  inner_product_param { num_output: 10000 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 5200 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "relu2" type: "ReLU" bottom: "ip2" top: "ip2" }
layer { name: "ip3" type: "InnerProduct" bottom: "ip2" top: "ip3"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip3" bottom: "label" top: "loss" }
EOF
	echo "| net | parameters | executors | rounds | round wall (median) | slowest rank's training (median) | Spark + driver share (median) | of which the driver's average |"
	echo "|---|---|---|---|---|---|---|---|"
	for net in lenet:431080 mlp60m:59907210; do
		name=${net%%:*} params=${net##*:}
		solver "avg-$name" "${name}_train_test.prototxt" 12 0
		sed -i 's#^test_interval: .*#test_interval: 0#' "$OUT/avg-${name}_solver.prototxt"
		TAU=1 EXEC_MB=3500 submit "$OUT/avg-$name.log" 2 average "$OUT/avg-${name}_solver.prototxt"
		# The first two rounds warm up (partition load, JIT); the median of the rest.
		grep -E 'round [0-9]+ done:' "$OUT/avg-$name.log" | tail -n +3 | awk -v net="$name" -v params="$params" '
			function median(a, n,   i, j, t) {
				for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
				return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
			}
			{
				for (i = 1; i <= NF; i++) {
					if ($i == "in" && $(i-1) == "iterations") wall = $(i+1)
					if ($i == "trained") slow = $(i+1)
					if ($i == "average") avg = $(i+1)
				}
				n++; W[n] = wall; S[n] = slow; O[n] = wall - slow; D[n] = avg
			}
			END { printf "| %s | %d | 2 | %d | %.2f s | %.2f s | %.2f s | %.3f s |\n", net, params, n, median(W, n), median(S, n), median(O, n), median(D, n) }'
	done
fi
