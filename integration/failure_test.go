//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// executorJVM is one live Spark executor process (CoarseGrainedExecutorBackend).
type executorJVM struct {
	pid int
	id  string // Spark's executor id
}

// executorJVMs lists the live executor JVMs of application app, found
// through /proc by their command line.
func executorJVMs(t *testing.T, app string) []executorJVM {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []executorJVM
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !pidAlive(pid) {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if !contains(argv, "org.apache.spark.executor.CoarseGrainedExecutorBackend") {
			continue
		}
		if flag(argv, "--app-id") != app {
			continue
		}
		found = append(found, executorJVM{pid: pid, id: flag(argv, "--executor-id")})
	}
	sort.Slice(found, func(i, j int) bool { return found[i].pid < found[j].pid })
	return found
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// flag returns the value after name in argv ("" if absent).
func flag(argv []string, name string) string {
	for i, a := range argv[:max(0, len(argv)-1)] {
		if a == name {
			return argv[i+1]
		}
	}
	return ""
}

// sparkSubmitProcess returns the process id and process group of this
// test's spark-submit (the driver JVM, found by the test's private temp dir
// on its command line), or zeros after reporting an error.
func sparkSubmitProcess(t *testing.T, e sparkEnv) (pid, pgid int) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if !contains(argv, "org.apache.spark.deploy.SparkSubmit") ||
			!contains(argv, "spark.executor.extraJavaOptions=-Djava.io.tmpdir="+e.tmp) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis: state, ppid, pgrp.
		if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 2 {
			if pgid, err := strconv.Atoi(f[2]); err == nil {
				return pid, pgid
			}
		}
	}
	t.Errorf("no spark-submit process with java.io.tmpdir %s", e.tmp)
	return 0, 0
}

// awaitGone waits until no goexec from the roots runs any more, for at most
// limit: a goexec whose JVM died exits when its standard input closes, which
// may trail the application's end by the moments its shutdown takes. It
// returns what is still running at the limit.
func awaitGone(t *testing.T, limit time.Duration, roots ...string) []string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ps := goexecProcesses(t, roots...)
		if len(ps) == 0 || time.Now().After(deadline) {
			return ps
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestTrainSurvivesKilledExecutor SIGKILLs one executor JVM (not its goexec)
// in the third round. The round's barrier stage fails with the executor
// lost, the driver names the executor and the cause, the local-cluster Worker
// starts a replacement executor, and the retried round runs there from the
// last round's weights: the partition is loaded into the new executor's
// goexec. Training finishes above the bar, and the dead executor's goexec
// (its standard input closed with the JVM) has stopped and removed its
// directory.
func TestTrainSurvivesKilledExecutor(t *testing.T) {
	e := setup(t)
	solver := lenetFiles(t, e, trainIterations, trainIterations, 0)
	model := filepath.Join(e.tmp, "model", "lenet.caffemodel")
	var app string
	var victim *executorJVM
	var firstExecs []executorJVM
	watch := func(line string) {
		if m := trainAppRe.FindStringSubmatch(line); m != nil {
			app = m[1]
		}
		if victim != nil || app == "" || !strings.HasPrefix(line, "GoCaffe: iteration 200/") {
			return
		}
		firstExecs = executorJVMs(t, app)
		victim = &executorJVM{}
		if len(firstExecs) == 0 {
			return
		}
		v := firstExecs[len(firstExecs)-1]
		if err := syscall.Kill(v.pid, syscall.SIGKILL); err == nil {
			*victim = v
		}
	}
	r := e.submitWatching(t, 8*time.Minute, "local-cluster[2,2,2048]",
		[]string{"--conf", "spark.executor.memory=1g", "--conf", "spark.gocaffe.sync.peerTimeout=30s"},
		watch, "-train", "-conf", solver, "-model", model, "-clusterSize", "2")
	if victim == nil || victim.pid == 0 {
		t.Fatalf("the test did not kill an executor JVM (found %v); output tail:\n%s", firstExecs, tail(r.combined, 60))
	}
	t.Logf("killed executor %s (pid %d) of %v", victim.id, victim.pid, firstExecs)
	o := parseTraining(t, r, trainIterations)
	if o.accuracy < killAccuracy {
		t.Errorf("test accuracy %.4f after the executor kill, want >= %.2f", o.accuracy, killAccuracy)
	}
	named := regexp.MustCompile(`(?m)^GoCaffe: GoCaffe round \d+: .*: task \d+ on executor (\S+) \(host \S+\) failed: executor lost: .*`)
	lost := false
	for _, m := range named.FindAllStringSubmatch(r.combined, -1) {
		t.Log(m[0])
		if m[1] == victim.id {
			lost = true
		}
	}
	if !lost {
		t.Errorf("the driver log does not name executor %s as lost; output tail:\n%s", victim.id, tail(r.combined, 80))
	}
	if !regexp.MustCompile(`(?m)^GoCaffe: retrying GoCaffe round \d+: .* from the weights of iteration \d+`).MatchString(r.out) {
		t.Errorf("no retry of the failed round; stdout:\n%s", r.out)
	}
	// The retried round ran on the replacement executor, which loaded its
	// partition into its own goexec.
	old := map[string]bool{}
	for _, x := range firstExecs {
		old[x.id] = true
	}
	reloaded := false
	for _, m := range regexp.MustCompile(`(?m)^GoCaffe: rank \d+ on executor (\S+) \(\S+\): partition of \d+ rows loaded into goexec$`).
		FindAllStringSubmatch(r.out, -1) {
		if !old[m[1]] {
			reloaded = true
		}
	}
	if !reloaded {
		t.Errorf("no rank loaded its partition on a new executor after the kill; stdout:\n%s", r.out)
	}
	if pidAlive(victim.pid) {
		t.Errorf("killed executor pid %d still alive", victim.pid)
	}
	// The failed round invalidated the ring: the rounds after it find their
	// peers again under a new generation.
	if gens := ringGenerations(r.combined); len(gens) == 0 || gens[0] != 1 || gens[len(gens)-1] < 2 {
		t.Errorf("ring generations of the rounds %v, want 1 first and a later one after the kill", gens)
	}
	root := filepath.Join(e.sparkHome, "work", o.app)
	if ps := awaitGone(t, 30*time.Second, root, e.tmp); len(ps) > 0 {
		t.Errorf("goexec processes left 30 s after the application ended:\n%s", strings.Join(ps, "\n"))
	}
	checkClean(t, root, e.tmp)
}

// TestTrainCtrlC interrupts spark-submit mid-training, in two ways: as
// Ctrl-C in a terminal does (SIGINT to its process group, which on a
// local-cluster holds the driver, the executors and their goexecs), and as
// on a real cluster, where the executors run elsewhere and only spark-submit
// gets the signal. Either way spark-submit exits with a failure, and no
// goexec process or work directory is left.
func TestTrainCtrlC(t *testing.T) {
	e := setup(t)
	solver := lenetFiles(t, e, trainIterations, trainIterations, 0)
	for _, c := range []struct {
		name  string
		group bool
	}{{"process group", true}, {"spark-submit only", false}} {
		t.Run(c.name, func(t *testing.T) {
			e := e
			e.tmp = t.TempDir()
			interruptTraining(t, e, solver, c.group)
		})
	}
}

func interruptTraining(t *testing.T, e sparkEnv, solver string, group bool) {
	var app string
	interrupted := false
	var at time.Time
	watch := func(line string) {
		if m := trainAppRe.FindStringSubmatch(line); m != nil {
			app = m[1]
		}
		if interrupted || app == "" || !strings.HasPrefix(line, "GoCaffe: iteration 100/") {
			return
		}
		interrupted = true
		at = time.Now()
		if len(goexecProcesses(t, filepath.Join(e.sparkHome, "work", app), e.tmp)) == 0 {
			t.Errorf("no goexec running mid-training")
		}
		// spark-submit leads its own process group (submitWatching sets
		// Setpgid), as a shell's foreground job does.
		pid, pgid := sparkSubmitProcess(t, e)
		if group {
			pid = -pgid
		}
		if pid != 0 {
			if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
				t.Errorf("SIGINT: %v", err)
			}
		}
	}
	r := e.submitWatching(t, 4*time.Minute, "local-cluster[2,2,2048]",
		[]string{"--conf", "spark.executor.memory=1g"},
		watch, "-train", "-conf", solver, "-model", filepath.Join(e.tmp, "model", "lenet.caffemodel"), "-clusterSize", "2")
	if !interrupted {
		t.Fatalf("training never reached iteration 100; output tail:\n%s", tail(r.combined, 60))
	}
	t.Logf("spark-submit exited with status %d %v after SIGINT", r.code, time.Since(at).Round(100*time.Millisecond))
	if r.code == 0 {
		t.Errorf("spark-submit exit 0 after SIGINT, want a failure")
	}
	if doneRe.MatchString(r.out) {
		t.Errorf("training finished despite SIGINT")
	}
	root := filepath.Join(e.sparkHome, "work", app)
	if ps := awaitGone(t, 30*time.Second, root, e.tmp); len(ps) > 0 {
		t.Errorf("goexec processes left 30 s after spark-submit exited:\n%s", strings.Join(ps, "\n"))
	}
	checkClean(t, root, e.tmp)
}

// TestTrainBadLabel: a label of 42 in a 10-class net (row 137 of a
// DataFrame whose rows carry sample ids) on two executors in allreduce
// mode. The round is not retried, and the last line of the run is
// GoCaffe's sentence naming the row's sample id and the label, whatever
// Spark printed before it.
func TestTrainBadLabel(t *testing.T) {
	e := setup(t)
	start := time.Now()
	data := filepath.Join(e.tmp, "label42")
	labels := make([]string, 200)
	for i := range labels {
		labels[i] = strconv.Itoa(i % 10)
	}
	const badRow = 137
	labels[badRow] = "42"
	writeCoSParquet(t, filepath.Join(data, "train", "part-00000.parquet"), labels)
	writeCoSParquet(t, filepath.Join(data, "test", "part-00000.parquet"), labels[:100])
	solver := userFiles(t, e, "cos", "file:/tmp/mnist_cos_dataframe", "file:"+data)
	r := e.submitWatching(t, 8*time.Minute, "local-cluster[2,1,1024]",
		[]string{"--conf", "spark.executor.memory=1g", "--conf", "spark.gocaffe.sync.mode=allreduce"},
		nil, "-train", "-conf", solver, "-clusterSize", "2")
	if r.code == 0 {
		t.Fatalf("exit 0 despite a label of 42; output tail:\n%s", tail(r.combined, 40))
	}
	last := tail(r.combined, 1)
	t.Logf("last line: %s", last)
	if !strings.HasPrefix(last, "GoCaffeRunner: ") {
		t.Errorf("the last line is not GoCaffe's: %s\noutput tail:\n%s", last, tail(r.combined, 30))
	}
	for _, want := range []string{"refused its input", "42", fmt.Sprintf("sample-%03d", badRow)} {
		if !strings.Contains(last, want) {
			t.Errorf("last line lacks %q: %s", want, last)
		}
	}
	if strings.Contains(last, "Could not recover") || strings.Contains(last, "barrier") {
		t.Errorf("the last line is Spark's text: %s", last)
	}
	if strings.Contains(r.combined, "retrying GoCaffe round") {
		t.Error("the round was retried despite the bad label")
	}
	if m := trainAppRe.FindStringSubmatch(r.out); m != nil {
		checkClean(t, filepath.Join(e.sparkHome, "work", m[1]), e.tmp)
	} else {
		t.Errorf("no 'GoCaffe: application' line; stdout:\n%s", r.out)
	}
	t.Logf("TestTrainBadLabel took %v", time.Since(start).Round(time.Second))
}
