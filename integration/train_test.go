//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Distributed LeNet training through spark-submit (issue 7). The CI-sized
// runs train 600 iterations (Caffe's lenet_solver otherwise: batch 64 per
// rank, base_lr 0.01, inv policy) and must reach trainAccuracy on the 10,000
// MNIST test images; the full 10,000-iteration run to 99 % is `make demo`.
const (
	trainIterations = 600
	trainAccuracy   = 0.97
	// killAccuracy is the bar after a killed goexec: the retried round starts
	// a fresh epoch order on the new goexec (measured 0.971-0.972, against
	// 0.975-0.981 without a kill).
	killAccuracy = 0.96
)

// mnistParquet writes MNIST as Parquet (tools/mnist2parquet, plain schema)
// under dir and returns the train and test directories.
func mnistParquet(t *testing.T, e sparkEnv, dir string) (train, test string) {
	t.Helper()
	cmd := exec.Command("go", "run", "./tools/mnist2parquet", "-out", dir, "-files", "2")
	cmd.Dir = e.root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mnist2parquet: %v\n%s", err, out)
	}
	return filepath.Join(dir, "train"), filepath.Join(dir, "test")
}

// lenetFiles writes Caffe's LeNet solver and net (examples/) with the data
// sources on the Parquet files and the given iteration counts, and returns
// the solver's path.
func lenetFiles(t *testing.T, e sparkEnv, maxIter, testInterval, snapshot int) string {
	t.Helper()
	dir := filepath.Join(e.tmp, "lenet")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	train, test := mnistParquet(t, e, filepath.Join(e.tmp, "mnist"))
	net, err := os.ReadFile(filepath.Join(e.root, "examples", "lenet_train_test.prototxt"))
	if err != nil {
		t.Fatal(err)
	}
	n := strings.ReplaceAll(string(net), `"mnist::train"`, strconv.Quote("parquet:"+train))
	n = strings.ReplaceAll(n, `"mnist::test"`, strconv.Quote("parquet:"+test))
	if n == string(net) {
		t.Fatal("examples/lenet_train_test.prototxt no longer reads mnist::train / mnist::test")
	}
	solver, err := os.ReadFile(filepath.Join(e.root, "examples", "lenet_solver.prototxt"))
	if err != nil {
		t.Fatal(err)
	}
	// A fixed seed: every run starts from the same weights.
	s := string(solver) + "random_seed: 1701\n"
	for key, val := range map[string]string{
		"max_iter": strconv.Itoa(maxIter), "test_interval": strconv.Itoa(testInterval),
		"snapshot": strconv.Itoa(snapshot), "snapshot_prefix": `"lenet"`,
	} {
		re := regexp.MustCompile(`(?m)^` + key + `: .*$`)
		if !re.MatchString(s) {
			t.Fatalf("examples/lenet_solver.prototxt has no %s line", key)
		}
		s = re.ReplaceAllString(s, key+": "+val)
	}
	for name, text := range map[string]string{"lenet_train_test.prototxt": n, "lenet_solver.prototxt": s} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "lenet_solver.prototxt")
}

// submitWatching runs spark-submit like submit, and calls watch with each
// stdout line as it arrives.
func (e sparkEnv) submitWatching(t *testing.T, timeout time.Duration, master string, sparkArgs []string,
	watch func(line string), args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := []string{"--master", master, "--class", "GoCaffeRunner",
		"--conf", "spark.executor.extraJavaOptions=-Djava.io.tmpdir=" + e.tmp,
		"--conf", "spark.ui.enabled=false",
		"--driver-memory", "1g"}
	full = append(full, sparkArgs...)
	full = append(full, e.jar)
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(e.sparkHome, "bin", "spark-submit"), full...)
	cmd.Env = e.environ()
	cmd.Dir = e.tmp
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var mu sync.Mutex
	var stdout, both bytes.Buffer
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return both.Write(p)
	})
	pr, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("spark-submit: %v", err)
	}
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		mu.Lock()
		stdout.WriteString(line + "\n")
		both.WriteString(line + "\n")
		mu.Unlock()
		if watch != nil {
			watch(line)
		}
	}
	_, _ = io.Copy(io.Discard, pr)
	err = cmd.Wait()
	mu.Lock()
	r := result{out: stdout.String(), combined: both.String(), took: time.Since(start)}
	mu.Unlock()
	if ctx.Err() != nil {
		t.Fatalf("spark-submit %v did not finish within %v (hang); output tail:\n%s", args, timeout, tail(r.combined, 80))
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("spark-submit: %v", err)
	}
	t.Logf("spark-submit %s %v: exit %d in %v", master, args, r.code, r.took.Round(time.Second))
	return r
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

var (
	trainAppRe  = regexp.MustCompile(`(?m)^GoCaffe: application (\S+): training `)
	progressRe  = regexp.MustCompile(`(?m)^GoCaffe: iteration (\d+)/(\d+), loss ([0-9.eE+-]+), lr ([0-9.eE+-]+), (\d+) images/s \((\d+) ranks?\), ETA \S+$`)
	finalTestRe = regexp.MustCompile(`(?m)^GoCaffe: final test: .*\baccuracy = ([0-9.]+)`)
	rankRe      = regexp.MustCompile(`(?m)^GoCaffe: rank (\d+) on executor (\S+) \(\S+\): partition of (\d+) rows`)
	initTestRe  = regexp.MustCompile(`(?m)^GoCaffe: test at iteration 0: .*\baccuracy = ([0-9.]+)`)
	doneRe      = regexp.MustCompile(`(?m)^GoCaffe: training done at iteration (\d+) .*; model (\S+), solver state (\S+)$`)
)

// trainOutcome is what a training run printed.
type trainOutcome struct {
	app      string
	accuracy float64
	lastIter int
	ranks    map[string]string // rank -> executor (first round)
}

func parseTraining(t *testing.T, r result, wantIter int) trainOutcome {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("training exit %d; output tail:\n%s", r.code, tail(r.combined, 80))
	}
	var o trainOutcome
	m := trainAppRe.FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("no 'GoCaffe: application' line; stdout:\n%s", r.out)
	}
	o.app = m[1]
	ps := progressRe.FindAllStringSubmatch(r.out, -1)
	if len(ps) == 0 {
		t.Fatalf("no progress lines; stdout:\n%s", r.out)
	}
	for _, l := range strings.Split(r.out, "\n") {
		if strings.HasPrefix(l, "GoCaffe: ") {
			t.Log(l)
		}
	}
	prev := -1
	for _, p := range ps {
		it, _ := strconv.Atoi(p[1])
		loss, _ := strconv.ParseFloat(p[3], 64)
		if it <= prev {
			t.Errorf("progress iterations not increasing: %d after %d", it, prev)
		}
		if loss <= 0 || loss > 10 {
			t.Errorf("implausible loss %v at iteration %d", loss, it)
		}
		prev = it
	}
	o.lastIter = prev
	// goexec displays at the start of every display interval (iteration 0,
	// 100, ...), as Caffe does; the last one is before max_iter.
	if prev >= wantIter || prev < wantIter-100 {
		t.Errorf("last progress at iteration %d, want within the last 100 before %d", prev, wantIter)
	}
	d := doneRe.FindStringSubmatch(r.out)
	if d == nil || d[1] != strconv.Itoa(wantIter) {
		t.Fatalf("no 'training done at iteration %d' line; stdout:\n%s", wantIter, r.out)
	}
	for _, f := range d[2:] {
		if st, err := os.Stat(strings.TrimPrefix(f, "file:")); err != nil || st.Size() == 0 {
			t.Errorf("snapshot %s: %v", f, err)
		}
	}
	a := finalTestRe.FindStringSubmatch(r.out)
	if a == nil {
		t.Fatalf("no final test accuracy; stdout:\n%s", r.out)
	}
	o.accuracy, _ = strconv.ParseFloat(a[1], 64)
	o.ranks = map[string]string{}
	for _, x := range rankRe.FindAllStringSubmatch(r.out, -1) {
		if _, seen := o.ranks[x[1]]; !seen {
			o.ranks[x[1]] = x[2]
		}
	}
	return o
}

// checkInitialTest: with want, the test at iteration 0 (Caffe's
// test_initialization) ran before training, on the seed's fresh weights (far
// from trained: LeNet starts near chance); without, it did not run.
func checkInitialTest(t *testing.T, r result, want bool) {
	t.Helper()
	m := initTestRe.FindStringSubmatchIndex(r.out)
	switch {
	case !want && m != nil:
		t.Errorf("a test at iteration 0 ran: %s", r.out[m[0]:m[1]])
	case want && m == nil:
		t.Errorf("no test at iteration 0 (test_initialization); stdout:\n%s", r.out)
	case want:
		acc, _ := strconv.ParseFloat(r.out[m[2]:m[3]], 64)
		if acc > 0.5 {
			t.Errorf("accuracy %.4f at iteration 0: not the untrained weights", acc)
		}
		if p := progressRe.FindStringIndex(r.out); p != nil && p[0] < m[0] {
			t.Errorf("the test at iteration 0 came after training started")
		}
	}
}

// checkOneRankPerExecutor: the ranks ran on distinct executors.
func checkOneRankPerExecutor(t *testing.T, o trainOutcome, n int) {
	t.Helper()
	execs := map[string]bool{}
	for _, ex := range o.ranks {
		execs[ex] = true
	}
	if len(o.ranks) != n || len(execs) != n {
		t.Errorf("ranks ran on executors %v, want %d ranks on %d distinct executors", o.ranks, n, n)
	}
}

var ringGenRe = regexp.MustCompile(`(?m)^GoCaffe: round \d+ done: .*; ring generation (\d+), peers (found|kept)\)$`)

// ringGenerations returns the ring generation of each finished round, in
// order; a generation never decreases.
func ringGenerations(out string) []int {
	var gens []int
	for _, m := range ringGenRe.FindAllStringSubmatch(out, -1) {
		g, _ := strconv.Atoi(m[1])
		gens = append(gens, g)
	}
	return gens
}

func trainLocalCluster(t *testing.T, mode string) {
	e := setup(t)
	solver := lenetFiles(t, e, trainIterations, trainIterations, 300)
	model := filepath.Join(e.tmp, "model", "lenet.caffemodel")
	r := e.submitWatching(t, 8*time.Minute, "local-cluster[2,2,2048]",
		[]string{"--conf", "spark.executor.memory=1g", "--conf", "spark.gocaffe.sync.mode=" + mode},
		nil, "-train", "-conf", solver, "-model", model, "-clusterSize", "2")
	o := parseTraining(t, r, trainIterations)
	t.Logf("%s: test accuracy %.4f after %d iterations", mode, o.accuracy, trainIterations)
	if o.accuracy < trainAccuracy {
		t.Errorf("%s: test accuracy %.4f after %d iterations, want >= %.2f", mode, o.accuracy, trainIterations, trainAccuracy)
	}
	checkOneRankPerExecutor(t, o, 2)
	checkInitialTest(t, r, true)
	checkCurves(t, filepath.Join(e.tmp, "model"), trainIterations, o.accuracy)
	if mode == "allreduce" {
		// Nothing failed: every round trains on the ring of generation 1.
		if gens := ringGenerations(r.combined); len(gens) == 0 || gens[len(gens)-1] != 1 {
			t.Errorf("ring generations of the rounds %v, want 1 throughout; output tail:\n%s", gens, tail(r.combined, 30))
		}
	}
	for _, f := range []string{"lenet_iter_300.caffemodel", "lenet_iter_300.solverstate", "lenet.caffemodel", "lenet.solverstate"} {
		if _, err := os.Stat(filepath.Join(e.tmp, "model", f)); err != nil {
			t.Errorf("snapshot: %v", err)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(e.tmp, "model", ".*tmp*")); len(tmp) > 0 {
		t.Errorf("temporary snapshot files left: %v", tmp)
	}
	checkClean(t, filepath.Join(e.sparkHome, "work", o.app), e.tmp)
	if mode == "allreduce" {
		resumeFromSnapshot(t, e, solver, filepath.Join(e.tmp, "model", "lenet_iter_300.solverstate"))
	}
}

// resumeFromSnapshot: -snapshot alone (no -weights) resumes at the state's
// iteration with its weights, here on Spark's local mode (one rank).
func resumeFromSnapshot(t *testing.T, e sparkEnv, solver, state string) {
	t.Helper()
	r := e.submitWatching(t, 6*time.Minute, "local[2]", nil, nil,
		"-train", "-conf", solver, "-snapshot", state, "-model", filepath.Join(e.tmp, "resumed", "lenet.caffemodel"),
		"-clusterSize", "1")
	o := parseTraining(t, r, trainIterations)
	if !strings.Contains(r.out, "GoCaffe: resuming from "+state+" at iteration 300") {
		t.Errorf("no 'resuming from %s at iteration 300' line", state)
	}
	checkInitialTest(t, r, false) // resumed past iteration 0
	if first := progressRe.FindStringSubmatch(r.out); first == nil || first[1] != "300" {
		t.Errorf("resumed run's first progress %v, want iteration 300", first)
	}
	// One rank (global batch 64 instead of 128) for the last 300
	// iterations: measured 0.972-0.974.
	if o.accuracy < killAccuracy {
		t.Errorf("resumed: test accuracy %.4f, want >= %.2f", o.accuracy, killAccuracy)
	}
	checkClean(t, e.tmp)
}

// TestTrainLeNetAllreduce: 2 executors × 2 cores, synchronous SGD; then a
// resume from its iteration-300 snapshot.
func TestTrainLeNetAllreduce(t *testing.T) { trainLocalCluster(t, "allreduce") }

// TestTrainLeNetAverage: 2 executors × 2 cores, model averaging every round.
func TestTrainLeNetAverage(t *testing.T) { trainLocalCluster(t, "average") }

// TestTrainSurvivesKilledGoexec SIGKILLs one executor's goexec after the
// second round: the round's barrier stage fails, the driver names the
// executor and the cause, Spark retries the stage, a new goexec reloads the
// partition, and training finishes from the last round's weights.
func TestTrainSurvivesKilledGoexec(t *testing.T) {
	e := setup(t)
	solver := lenetFiles(t, e, trainIterations, trainIterations, 0)
	model := filepath.Join(e.tmp, "model", "lenet.caffemodel")
	var killed []int
	root := filepath.Join(e.sparkHome, "work")
	watch := func(line string) {
		if killed != nil || !strings.HasPrefix(line, "GoCaffe: iteration 200/") {
			return
		}
		var pids []int
		for _, p := range goexecProcesses(t, root) {
			if pid, err := strconv.Atoi(strings.Fields(p)[0]); err == nil {
				pids = append(pids, pid)
			}
		}
		sort.Ints(pids)
		killed = []int{}
		if len(pids) == 0 {
			return
		}
		victim := pids[len(pids)-1]
		if err := syscall.Kill(victim, syscall.SIGKILL); err == nil {
			killed = append(killed, victim)
		}
	}
	r := e.submitWatching(t, 8*time.Minute, "local-cluster[2,2,2048]",
		[]string{"--conf", "spark.executor.memory=1g", "--conf", "spark.gocaffe.sync.peerTimeout=30s"},
		watch, "-train", "-conf", solver, "-model", model, "-clusterSize", "2")
	if len(killed) != 1 {
		t.Fatalf("the test did not kill a goexec (killed %v); output tail:\n%s", killed, tail(r.combined, 60))
	}
	o := parseTraining(t, r, trainIterations)
	if o.accuracy < killAccuracy {
		t.Errorf("test accuracy %.4f after the kill, want >= %.2f", o.accuracy, killAccuracy)
	}
	named := regexp.MustCompile(`(?m)^GoCaffe: GoCaffe round \d+: .*: task \d+ on executor (\S+) \(host \S+\) failed: .*goexec \(pid ` +
		strconv.Itoa(killed[0]) + `\) on executor (\S+) .*died: exit status 137 \(killed by signal 9 SIGKILL\)`)
	if m := named.FindStringSubmatch(r.combined); m == nil {
		t.Errorf("the driver log does not name the executor and the cause of the killed goexec (pid %d); output tail:\n%s",
			killed[0], tail(r.combined, 80))
	} else if m[1] != m[2] {
		t.Errorf("failure reported on executor %s for goexec of executor %s", m[1], m[2])
	}
	if !strings.Contains(r.out, "loaded into goexec") {
		t.Error("no partition was reloaded after the kill")
	}
	checkClean(t, filepath.Join(root, o.app), e.tmp)
}

// standaloneCluster starts a Spark master and workers on 127.0.0.1, each
// worker with cores cores and its own work directory; it returns the master
// URL and the work directories. The daemons stop when the test ends.
func standaloneCluster(t *testing.T, e sparkEnv, workers, cores int) (string, []string) {
	t.Helper()
	port := freePort(t)
	master := fmt.Sprintf("spark://127.0.0.1:%d", port)
	startDaemon(t, e, "master", "I have been elected leader",
		"org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--webui-port", strconv.Itoa(freePort(t)))
	var dirs []string
	for i := 1; i <= workers; i++ {
		wd := filepath.Join(e.tmp, fmt.Sprintf("worker%d", i))
		dirs = append(dirs, wd)
		startDaemon(t, e, fmt.Sprintf("worker%d", i), "Successfully registered with master",
			"org.apache.spark.deploy.worker.Worker", master, "--host", "127.0.0.1", "--cores", strconv.Itoa(cores),
			"--memory", "1500m", "--work-dir", wd, "--webui-port", strconv.Itoa(freePort(t)))
	}
	return master, dirs
}

// TestTrainLeNetStandalone: a standalone master and 2 workers on 127.0.0.1,
// one 2-core executor on each, train LeNet in both sync modes (one after the
// other on the same daemons), one rank per executor. The allreduce run uses
// 300-iteration rounds, longer than the display interval (100): its progress
// lines for iterations inside a round must be printed while the round runs,
// before the driver's "round 1 done".
func TestTrainLeNetStandalone(t *testing.T) {
	e := setup(t)
	solver := lenetFiles(t, e, trainIterations, trainIterations, 0)
	master, workDirs := standaloneCluster(t, e, 2, 2)
	for _, mode := range []string{"allreduce", "average"} {
		conf := []string{"--executor-memory", "1g", "--executor-cores", "2", "--total-executor-cores", "4",
			"--conf", "spark.gocaffe.sync.mode=" + mode}
		if mode == "allreduce" {
			conf = append(conf, "--conf", "spark.gocaffe.sync.roundIterations=300")
		}
		r := e.submitWatching(t, 8*time.Minute, master, conf, nil,
			"-train", "-conf", solver, "-model", filepath.Join(e.tmp, "model-"+mode, "lenet.caffemodel"),
			"-clusterSize", "2")
		o := parseTraining(t, r, trainIterations)
		t.Logf("standalone %s: test accuracy %.4f after %d iterations", mode, o.accuracy, trainIterations)
		if o.accuracy < trainAccuracy {
			t.Errorf("standalone %s: test accuracy %.4f after %d iterations, want >= %.2f", mode, o.accuracy,
				trainIterations, trainAccuracy)
		}
		checkOneRankPerExecutor(t, o, 2)
		checkInitialTest(t, r, true)
		if mode == "allreduce" {
			checkLiveProgress(t, r, 1, []int{100, 200})
		}
	}
	// Each worker ran one executor per application, in its own work dir.
	for _, wd := range workDirs {
		execs, _ := filepath.Glob(filepath.Join(wd, "app-*", "*"))
		if len(execs) != 2 {
			t.Errorf("worker dir %s holds executor dirs %v, want one per application (2)", wd, execs)
		}
	}
	checkClean(t, append(workDirs, e.tmp)...)
}

// checkLiveProgress: the progress lines of the given iterations, inside
// round round, come before that round's "round N done" line (stdout and
// stderr are read as they are written; the lines are seconds apart).
func checkLiveProgress(t *testing.T, r result, round int, iters []int) {
	t.Helper()
	doneRe := regexp.MustCompile(`(?m)^GoCaffe: round ` + strconv.Itoa(round) + ` done: (\d+) iterations `)
	done := doneRe.FindStringSubmatchIndex(r.combined)
	if done == nil {
		t.Errorf("no 'round %d done' line; output tail:\n%s", round, tail(r.combined, 40))
		return
	}
	if n, _ := strconv.Atoi(r.combined[done[2]:done[3]]); n <= iters[len(iters)-1] {
		t.Errorf("round %d ran %d iterations; the test needs a round past iteration %d", round, n, iters[len(iters)-1])
	}
	for _, it := range iters {
		at := regexp.MustCompile(`(?m)^GoCaffe: iteration ` + strconv.Itoa(it) + `/`).FindStringIndex(r.combined)
		if at == nil || at[0] > done[0] {
			t.Errorf("progress of iteration %d not printed while round %d ran (before its 'round %d done' line)",
				it, round, round)
		}
	}
}

// TestTrainUpFrontChecks: dynamic allocation, -clusterSize against
// spark.executor.instances, and too few executors each fail fast with
// GoCaffe's own message (never Spark's SPARK-24819 text).
func TestTrainUpFrontChecks(t *testing.T) {
	e := setup(t)
	solver := lenetFiles(t, e, 100, 100, 0)
	cases := []struct {
		name, master string
		conf         []string
		args         []string
		want         []string
	}{
		{"dynamic allocation", "local[1]", []string{"--conf", "spark.dynamicAllocation.enabled=true"},
			[]string{"-clusterSize", "1"}, []string{"spark.dynamicAllocation.enabled=false"}},
		{"clusterSize vs executor instances", "local-cluster[1,1,1024]",
			[]string{"--conf", "spark.executor.instances=3", "--conf", "spark.executor.memory=1g"},
			[]string{"-clusterSize", "2"}, []string{"-clusterSize 2 disagrees with spark.executor.instances 3"}},
		{"too few executors", "local-cluster[1,1,1024]",
			[]string{"--conf", "spark.gocaffe.barrier.slotWaitTimeout=10s", "--conf", "spark.executor.memory=1g"},
			[]string{"-clusterSize", "2"},
			[]string{"GoCaffe needs 2 executors", "has 1 after waiting 10 s", "spark.gocaffe.barrier.slotWaitTimeout"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"-train", "-conf", solver}, c.args...)
			r := e.submitWatching(t, 4*time.Minute, c.master, c.conf, nil, args...)
			if r.code == 0 {
				t.Fatalf("exit 0, want a failure; output tail:\n%s", tail(r.combined, 40))
			}
			for _, w := range c.want {
				if !strings.Contains(r.combined, "GoCaffeRunner: ") || !strings.Contains(r.combined, w) {
					t.Errorf("output lacks %q; tail:\n%s", w, tail(r.combined, 40))
				}
			}
			if strings.Contains(r.combined, "SPARK-24819") {
				t.Error("Spark's SPARK-24819 message reached the user")
			}
			if strings.Contains(r.out, "GoCaffe: iteration") {
				t.Error("training started despite the problem")
			}
		})
	}
	checkClean(t, e.tmp)
}

// TestTrainLeNetV1Net: an old-style CaffeOnSpark net (V1 "layers" with enum
// types and blobs_lr, MemoryData sources) trains on local[2] unchanged: the
// driver parses it with goexec prepare, which upgrades it as Caffe does.
// A broken V1 net fails on the driver with one error naming file:line:col.
func TestTrainLeNetV1Net(t *testing.T) {
	const iters = 200
	e := setup(t)
	lenetFiles(t, e, iters, iters, 0) // writes the MNIST Parquet files
	dir := filepath.Join(e.tmp, "lenet_v1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	v1, err := os.ReadFile(filepath.Join(e.root, "integration", "testdata", "lenet_v1_train_test.prototxt"))
	if err != nil {
		t.Fatal(err)
	}
	net := strings.ReplaceAll(string(v1), `"PARQUET_TRAIN"`, strconv.Quote("parquet:"+filepath.Join(e.tmp, "mnist", "train")))
	net = strings.ReplaceAll(net, `"PARQUET_TEST"`, strconv.Quote("parquet:"+filepath.Join(e.tmp, "mnist", "test")))
	// A V0 solver_type too: goexec prepare upgrades the solver as well.
	solver := "net: \"lenet_v1_train_test.prototxt\"\ntest_iter: 100\ntest_interval: 200\nbase_lr: 0.01\n" +
		"momentum: 0.9\nweight_decay: 0.0005\nlr_policy: \"inv\"\ngamma: 0.0001\npower: 0.75\ndisplay: 100\n" +
		"max_iter: " + strconv.Itoa(iters) + "\nsnapshot_prefix: \"lenet_v1\"\nsolver_mode: CPU\nsolver_type: SGD\nrandom_seed: 1701\n" +
		"test_initialization: false\n"
	// The broken net: V1 layer with a misspelt field on line 3.
	bad := "name: \"broken\"\nlayers {\n  nmae: \"data\"\n  type: MEMORY_DATA\n}\n"
	for name, text := range map[string]string{
		"lenet_v1_train_test.prototxt": net, "lenet_v1_solver.prototxt": solver,
		"broken_v1.prototxt": bad, "broken_solver.prototxt": strings.Replace(solver, "lenet_v1_train_test", "broken_v1", 1),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	driverTmp := []string{"--driver-java-options", "-Djava.io.tmpdir=" + e.tmp}

	r := e.submitWatching(t, 4*time.Minute, "local[2]", driverTmp, nil,
		"-train", "-conf", filepath.Join(dir, "broken_solver.prototxt"), "-clusterSize", "1")
	if r.code == 0 {
		t.Errorf("broken V1 net: exit 0, want a failure")
	}
	if want := filepath.Join(dir, "broken_v1.prototxt") + ":3:"; !strings.Contains(r.combined, want) {
		t.Errorf("broken V1 net: output lacks %q; tail:\n%s", want, tail(r.combined, 40))
	}
	for _, l := range strings.Split(r.combined, "\n") {
		if strings.Contains(l, "broken_v1.prototxt:3:") {
			t.Logf("broken V1 net: %s", l)
		}
	}
	if strings.Contains(r.out, "GoCaffe: iteration") {
		t.Error("broken V1 net: training started")
	}

	model := filepath.Join(e.tmp, "model_v1", "lenet.caffemodel")
	r = e.submitWatching(t, 6*time.Minute, "local[2]", driverTmp, nil,
		"-train", "-conf", filepath.Join(dir, "lenet_v1_solver.prototxt"), "-model", model, "-clusterSize", "1")
	o := parseTraining(t, r, iters)
	checkInitialTest(t, r, false) // the solver says test_initialization: false
	// Measured 0.9405 after 200 iterations of batch 64 on one rank.
	const bar = 0.90
	t.Logf("V1 net: test accuracy %.4f after %d iterations", o.accuracy, iters)
	if o.accuracy < bar {
		t.Errorf("V1 net: test accuracy %.4f after %d iterations, want >= %.2f", o.accuracy, iters, bar)
	}
	if left, _ := filepath.Glob(filepath.Join(e.tmp, "gocaffe-prepare-*")); len(left) > 0 {
		t.Errorf("goexec prepare directories left on the driver: %v", left)
	}
	checkClean(t, e.tmp)
}
