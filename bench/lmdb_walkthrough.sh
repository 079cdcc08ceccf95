#!/usr/bin/env bash
# CaffeOnSpark's MNIST LMDB walk-through in full, for BENCHMARKS.md: the
# LMDBs `goexec convert_mnist` writes (what Caffe's create_mnist.sh makes),
# CaffeOnSpark's own lenet_memory_solver/lenet_memory_train_test
# (examples/caffeonspark/lmdb) with only the database paths and max_iter
# changed, trained through spark-submit on 2 executors of
# local-cluster[2,1,1024]. Prints the command, the wall time and the test
# accuracy after the last iteration. Not a CI test (about 10 minutes on two
# cores).
#
#   make goexec jar && bench/lmdb_walkthrough.sh            # 10,000 iterations
#   ITERS=2000 JAR=path/gocaffe.jar OUT=/tmp/walk bench/lmdb_walkthrough.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ITERS=${ITERS:-10000}
JAR=${JAR:-$ROOT/build/libs/gocaffe.jar}
GOEXEC=${GOEXEC:-$ROOT/bin/goexec}
OUT=${OUT:-$(mktemp -d /tmp/gocaffe-lmdb-walk-XXXXXX)}
SPARK_HOME=${SPARK_HOME:-$(echo "$ROOT"/.venv/lib/python3*/site-packages/pyspark)}
export SPARK_HOME
mkdir -p "$OUT"
cd "$OUT"
for set in train test; do
	[ -d "mnist_${set}_lmdb" ] || "$GOEXEC" convert_mnist -set "$set" "mnist_${set}_lmdb"
done
sed -e "s#max_iter: 2000#max_iter: $ITERS#" "$ROOT/examples/caffeonspark/lmdb/lenet_memory_solver.prototxt" >lenet_memory_solver.prototxt
sed -e "s#file:/Users/mridul/bigml/demodl/mnist_train_lmdb#file:$OUT/mnist_train_lmdb#" \
	-e "s#file:/Users/mridul/bigml/demodl/mnist_test_lmdb/#file:$OUT/mnist_test_lmdb/#" \
	"$ROOT/examples/caffeonspark/lmdb/lenet_memory_train_test.prototxt" >lenet_memory_train_test.prototxt
cmd=("$SPARK_HOME/bin/spark-submit" --master 'local-cluster[2,1,1024]' --conf spark.ui.enabled=false
	--driver-memory 768m --class GoCaffeRunner "$JAR"
	-train -conf lenet_memory_solver.prototxt -model lenet.caffemodel -clusterSize 2)
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), cpu: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cpus), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command (in $OUT): ${cmd[*]}"
start=$(date +%s)
"${cmd[@]}" >train.log 2>&1 || { tail -40 train.log; exit 1; }
end=$(date +%s)
echo "wall time: $((end - start)) s; load after: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -E "GoCaffe: (rank|data layer|test at iteration)" train.log | tail -8
