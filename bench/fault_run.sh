#!/usr/bin/env bash
# The fault run: LeNet trains through spark-submit on local-cluster[2,1,1024]
# in allreduce mode for about MINUTES minutes while, every KILL_EVERY seconds
# (± a third), a random goexec or a random executor JVM of the application is
# SIGKILLed, never before a round has completed since the previous kill (a
# kill during the retry of the round the last one broke would only repeat
# it). Then it checks: training finished (exit 0, "training done"),
# the final test accuracy reached MIN_ACCURACY, no goexec process and no
# goexec work directory is left, and every goexec's RSS and open files stayed
# flat over its life (sampled every SAMPLE seconds). It prints a summary for
# RELIABILITY.md: kills survived and time lost per kill. Not a CI test.
#
#   make jar demo-data && bench/fault_run.sh
#   MINUTES=10 KILL_EVERY=120 bench/fault_run.sh
#
# The iteration count is MINUTES × 60 × RATE (RATE: iterations per second
# this machine trains 2-rank LeNet at; measure it with bench/spark_scaling.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MINUTES=${MINUTES:-30}
KILL_EVERY=${KILL_EVERY:-180}
RATE=${RATE:-20}
SAMPLE=${SAMPLE:-10}
MIN_ACCURACY=${MIN_ACCURACY:-0.97}
TAU=${TAU:-100}
ITERS=${ITERS:-$((MINUTES * 60 * RATE / TAU * TAU))}
SPARK_HOME=${SPARK_HOME:-$(ls -d "$ROOT"/.venv/lib/python3*/site-packages/pyspark | head -1)}
JAR=${JAR:-$ROOT/build/libs/gocaffe.jar}
MNIST=$ROOT/build/demo/mnist
OUT=${OUT:-$ROOT/build/fault-run}
export SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_HOSTNAME=localhost
[ -f "$JAR" ] || { echo "fault_run: build the jar first (make jar)" >&2; exit 2; }
[ -d "$MNIST/test" ] || { echo "fault_run: convert MNIST first (make demo-data)" >&2; exit 2; }
rm -rf "$OUT" && mkdir -p "$OUT/tmp"
LOG=$OUT/spark.log KILLS=$OUT/kills.tsv SAMPLES=$OUT/goexec.tsv
: >"$KILLS"
printf 'time\tpid\trss_kb\tfds\tfinal\n' >"$SAMPLES"

echo "fault_run: date $(date -u '+%Y-%m-%d %H:%M UTC'); cpu $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cpus); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "fault_run: $ITERS iterations (~$MINUTES min at $RATE it/s), a kill every ~${KILL_EVERY}s, output in $OUT"

sed -e "s#\"mnist::train\"#\"parquet:$MNIST/train\"#" -e "s#\"mnist::test\"#\"parquet:$MNIST/test\"#" \
	examples/lenet_train_test.prototxt >"$OUT/lenet_train_test.prototxt"
sed -e "s#^net: .*#net: \"$OUT/lenet_train_test.prototxt\"#" -e "s#^max_iter: .*#max_iter: $ITERS#" \
	-e "s#^test_interval: .*#test_interval: $ITERS#" -e 's#^snapshot: .*#snapshot: 0#' \
	-e "s#^snapshot_prefix: .*#snapshot_prefix: \"$OUT/lenet\"#" -e 's#^display: .*#display: 500#' \
	examples/lenet_solver.prototxt >"$OUT/lenet_solver.prototxt"
echo "random_seed: 1701" >>"$OUT/lenet_solver.prototxt"

# TMPDIR and the cache directory under $OUT: whatever goexec leaves is found there.
TMPDIR=$OUT/tmp "$SPARK_HOME/bin/spark-submit" --master "local-cluster[2,1,1024]" --driver-memory 2g \
	--conf spark.executor.memory=1g --conf spark.ui.enabled=false --conf spark.gocaffe.sync.mode=allreduce \
	--conf spark.gocaffe.sync.roundIterations="$TAU" --conf spark.gocaffe.sync.peerTimeout=30s \
	--conf spark.gocaffe.data.cacheDir="$OUT/tmp" --conf spark.stage.maxConsecutiveAttempts=8 \
	--class GoCaffeRunner "$JAR" -train -conf "$OUT/lenet_solver.prototxt" -model "$OUT/model/lenet.caffemodel" \
	-clusterSize 2 >"$LOG" 2>&1 &
SUBMIT=$!
START=$(date +%s)

app() { sed -n 's/^GoCaffe: application \(app-[^:]*\):.*/\1/p' "$LOG" | head -1; }
# goexec_pids: live goexec processes started from this run's cache directory.
goexec_pids() {
	local p exe
	for p in /proc/[0-9]*; do
		exe=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline" | cut -d' ' -f1) || continue
		case $exe in "$OUT"/tmp/*/goexec | "$OUT"/tmp/gocaffe-goexec-*/goexec) echo "${p#/proc/}" ;; esac
	done
}
executor_pids() {
	local a=$1 p
	for p in /proc/[0-9]*; do
		if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q "CoarseGrainedExecutorBackend.*--app-id $a"; then echo "${p#/proc/}"; fi
	done
}

next_kill=$((START + KILL_EVERY))
rounds_at_kill=0
last_sample=0
while kill -0 "$SUBMIT" 2>/dev/null; do
	now=$(date +%s)
	# Samples once every round is done belong to the final test, which
	# loads the test partition: they are not held to the flatness check.
	final=0
	if (($(grep -c 'round [0-9]* done' "$LOG" || true) >= ITERS / TAU)); then final=1; fi
	if ((now - last_sample >= SAMPLE)); then
		last_sample=$now
		for p in $(goexec_pids); do
			rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
			fds=$(ls "/proc/$p/fd" 2>/dev/null | wc -l)
			printf '%d\t%s\t%s\t%s\t%d\n' "$((now - START))" "$p" "$rss" "$fds" "$final" >>"$SAMPLES"
		done
	fi
	a=$(app)
	rounds=$(grep -c 'round [0-9]* done' "$LOG" || true)
	if [ -n "$a" ] && ((now >= next_kill)) && ((rounds > rounds_at_kill)); then
		rounds_at_kill=$rounds
		if ((RANDOM % 2)); then kind=goexec pids=($(goexec_pids)); else kind=executor pids=($(executor_pids "$a")); fi
		if ((${#pids[@]} > 0)); then
			victim=${pids[RANDOM % ${#pids[@]}]}
			if kill -KILL "$victim" 2>/dev/null; then
				printf '%d\t%s\t%s\n' "$((now - START))" "$kind" "$victim" >>"$KILLS"
				echo "fault_run: $((now - START))s: killed $kind $victim"
			fi
		fi
		next_kill=$((now + KILL_EVERY * 2 / 3 + RANDOM % (KILL_EVERY * 2 / 3 + 1)))
	fi
	sleep 1
done
set +e
wait "$SUBMIT"
CODE=$?
set -e
END=$(date +%s)
WALL=$((END - START))
sleep 5 # the executors' goexecs stop when their JVMs exit

fail=0
check() { if eval "$2"; then echo "ok    $1"; else echo "FAIL  $1"; fail=1; fi; }
A=$(app)
ACC=$(sed -n 's/.*final test: .*accuracy = \([0-9.]*\).*/\1/p' "$LOG" | tail -1)
LEFT_PROCS=$(goexec_pids | wc -l)
LEFT_DIRS=$(find "$OUT/tmp" "$SPARK_HOME/work/$A" -maxdepth 3 -name 'gocaffe-goexec-*' 2>/dev/null | wc -l)
check "spark-submit exit 0 (got $CODE)" '[ "$CODE" = 0 ]'
check "training done" 'grep -q "GoCaffe: training done at iteration $ITERS" "$LOG"'
check "final accuracy ${ACC:-none} >= $MIN_ACCURACY" 'awk -v a="${ACC:-0}" -v m="$MIN_ACCURACY" "BEGIN{exit !(a >= m)}"'
check "no goexec process left ($LEFT_PROCS)" '[ "$LEFT_PROCS" = 0 ]'
check "no goexec work directory left ($LEFT_DIRS)" '[ "$LEFT_DIRS" = 0 ]'
# Flat: for every goexec, its training samples (not the final test's) from
# the first one within 10 % of its peak, i.e. once its partition is loaded:
# the mean RSS and the most open files of the second half of those samples
# against the first half. Processes with fewer than 6 such samples are left out.
FLAT=$(awk -F'\t' -v after="${FINAL_AFTER:-0}" 'NR > 1 && $5 != 1 && (after == 0 || $1 < after) {
		n[$2]++; r[$2, n[$2]] = $3; f[$2, n[$2]] = $4; if ($3 > peak[$2]) peak[$2] = $3 }
	END {
		worst_r = 0; worst_f = 0; procs = 0
		for (p in n) {
			s = 1; while (s <= n[p] && r[p, s] < 0.9 * peak[p]) s++
			m = n[p] - s + 1; if (m < 6) continue
			procs++; h = int(m / 2); ar = br = af = bf = 0
			for (i = s; i < s + h; i++) { ar += r[p, i]; if (f[p, i] > af) af = f[p, i] }
			for (i = n[p] - h + 1; i <= n[p]; i++) { br += r[p, i]; if (f[p, i] > bf) bf = f[p, i] }
			gr = (br - ar) / ar; gf = bf - af
			if (gr > worst_r) worst_r = gr; if (gf > worst_f) worst_f = gf
		}
		printf "%d %.3f %d\n", procs, worst_r, worst_f
	}' "$SAMPLES")
read -r FLAT_PROCS RSS_GROWTH FD_GROWTH <<<"$FLAT"
check "goexec RSS flat: worst growth last third vs middle third $(awk -v g="$RSS_GROWTH" 'BEGIN{printf "%.1f %%", 100*g}') over $FLAT_PROCS processes (< 10 %)" \
	'awk -v g="$RSS_GROWTH" "BEGIN{exit !(g < 0.10)}"'
check "goexec open files flat: worst growth of the peak $FD_GROWTH fds (<= 2)" 'awk -v g="$FD_GROWTH" "BEGIN{exit !(g <= 2)}"'

NKILLS=$(wc -l <"$KILLS")
NRETRY=$(grep -c 'GoCaffe: retrying' "$LOG" || true)
# Time lost per kill: the wall time beyond what the rounds take at the
# median round time, shared over the kills (an upper bound: Spark start-up
# and the tests count as lost).
MED=$(grep -E 'round [0-9]+ done:' "$LOG" | awk '{for (i = 1; i <= NF; i++) if ($i == "in") print $(i+1)}' | sort -n |
	awk '{t[NR] = $1} END {print (NR ? t[int((NR + 1) / 2)] : 0)}')
awk -v wall="$WALL" -v iters="$ITERS" -v kills="$NKILLS" -v retries="$NRETRY" -v tau="$TAU" -v med="$MED" 'BEGIN {
	ideal = med * iters / tau
	printf "fault_run: %d kills, %d round retries, wall %d s, median round %.2f s (%d iterations), ", kills, retries, wall, med, tau
	if (kills > 0) printf "time lost per kill ~%.0f s (wall minus %d rounds at the median)\n", (wall - ideal) / kills, iters / tau
	else printf "no kills\n"
}'
cut -f2 "$KILLS" | sort | uniq -c | awk '{printf "fault_run: killed %s %d times\n", $2, $1}'
exit $fail
