//go:build integration

package integration

import (
	"archive/zip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfBadSettingsFailFast: two bad spark.gocaffe.* settings make
// spark-submit fail on the driver, listing both, before Spark starts (so
// before any executor or goexec exists).
func TestConfBadSettingsFailFast(t *testing.T) {
	e := setup(t)
	solver := filepath.Join(e.root, "examples", "lenet_solver.prototxt")
	r := e.submit(t, 3*time.Minute, "local-cluster[2,1,1024]",
		[]string{"--conf", "spark.gocaffe.sync.mode=sideways", "--conf", "spark.gocaffe.sync.roundIteration=50",
			"--conf", "spark.executor.memory=1g"},
		"-train", "-conf", solver, "-clusterSize", "2")
	if r.code != 2 {
		t.Errorf("exit %d, want 2 (bad settings); output tail:\n%s", r.code, tail(r.combined, 40))
	}
	for _, want := range []string{
		"GoCaffeRunner: 2 problems in GoCaffe's Spark settings:",
		`spark.gocaffe.sync.mode="sideways": not one of allreduce, average`,
		`spark.gocaffe.sync.roundIteration="50": unknown key (did you mean spark.gocaffe.sync.roundIterations?)`,
	} {
		if !strings.Contains(r.combined, want) {
			t.Errorf("output lacks %q; tail:\n%s", want, tail(r.combined, 40))
		}
	}
	// Spark's SparkContext logs this line first thing; the check comes before it.
	if strings.Contains(r.combined, "Running Spark version") || strings.Contains(r.combined, "Exception") {
		t.Errorf("Spark started or a stack trace was printed; tail:\n%s", tail(r.combined, 40))
	}
	checkClean(t, e.tmp)
}

// TestConfGoexecSettingsReachExecutors: goexec settings checked on the
// driver are the ones the executor's goexec runs with: its memory limit
// (debug.SetMemoryLimit) and threads, its log level, the cache directory its
// work directory is made in, and the binary it runs.
func TestConfGoexecSettingsReachExecutors(t *testing.T) {
	e := setup(t)
	// A short path: the goexec socket in it must fit a Unix socket's 107 bytes.
	short, err := os.MkdirTemp("", "gcconf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(short) })
	cache := filepath.Join(short, "cache")
	bin := filepath.Join(short, "my-goexec")
	extractGoexec(t, e.jar, bin)
	r := e.submit(t, 4*time.Minute, "local-cluster[1,1,1024]",
		[]string{"--conf", "spark.executor.memory=1g",
			"--conf", "spark.gocaffe.goexec.memoryLimit=300m",
			"--conf", "spark.gocaffe.goexec.threads=1",
			"--conf", "spark.gocaffe.goexec.logLevel=DEBUG",
			"--conf", "spark.gocaffe.data.cacheDir=" + cache,
			"--conf", "spark.gocaffe.goexec.binary=" + bin},
		"--selftest", "-clusterSize", "1")
	if r.code != 0 {
		t.Fatalf("selftest exit %d; output tail:\n%s", r.code, tail(r.combined, 60))
	}
	for _, x := range checkReports(t, r, 1) {
		if pidAlive(x.pid) {
			t.Errorf("goexec pid %d (%s) still alive after the application ended", x.pid, bin)
		}
	}
	app := appWorkDir(t, r, filepath.Join(e.sparkHome, "work"))
	logs, err := filepath.Glob(filepath.Join(app, "*", "stderr"))
	if err != nil || len(logs) != 1 {
		t.Fatalf("executor stderr files in %s: %v, %v", app, logs, err)
	}
	b, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	stderr := string(b)
	for what, want := range map[string]string{
		"memory limit and threads":  `"memory_limit":314572800,"gomaxprocs":1`,
		"debug log level":           `"level":"debug"`,
		"work dir in the cache dir": " in " + cache + "/gocaffe-goexec-",
		"the given binary":          ": " + bin + "\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("%s: executor stderr lacks %q; tail:\n%s", what, want, tail(stderr, 40))
		}
	}
	if _, err := os.Stat(cache); err != nil {
		t.Errorf("cache dir: %v", err)
	}
	checkClean(t, app, e.tmp, cache)
}

// extractGoexec copies the jar's goexec to path, as a user would install
// their own build on the executors.
func extractGoexec(t *testing.T, jar, path string) {
	t.Helper()
	z, err := zip.OpenReader(jar)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	f, err := z.Open("gocaffe/linux-amd64/goexec")
	if err != nil {
		t.Fatalf("%s: %v", jar, err)
	}
	defer f.Close()
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, f); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
