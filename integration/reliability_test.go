//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// lenetWith writes the LeNet solver with its key: value lines replaced.
func lenetWith(t *testing.T, e sparkEnv, maxIter int, set map[string]string) string {
	t.Helper()
	solver := lenetFiles(t, e, maxIter, maxIter, 0)
	src, err := os.ReadFile(solver)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for k, v := range set {
		re := regexp.MustCompile(`(?m)^` + k + `: .*$`)
		if !re.MatchString(s) {
			t.Fatalf("the LeNet solver has no %s line", k)
		}
		s = re.ReplaceAllString(s, k+": "+v)
	}
	s += "test_initialization: false\n" // no test before the first round
	if err := os.WriteFile(solver, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return solver
}

// LeNet with base_lr 10 goes NaN within a few iterations: through
// spark-submit the run stops at once (not at max_iter), exits non-zero,
// names the iteration, loss, learning rate and layer, and writes no model.
func TestSparkDivergenceStops(t *testing.T) {
	e := setup(t)
	start := time.Now()
	solver := lenetWith(t, e, 2000, map[string]string{"base_lr": "10", "lr_policy": `"fixed"`})
	model := filepath.Join(e.tmp, "div", "lenet.caffemodel")
	r := e.submit(t, 9*time.Minute, "local-cluster[2,1,1024]", []string{"--conf", "spark.executor.memory=1g"},
		"-train", "-conf", solver, "-model", model, "-clusterSize", "2")
	if r.code == 0 {
		t.Fatalf("a diverging run exited 0; output tail:\n%s", tail(r.combined, 40))
	}
	for _, want := range []string{"training diverged at iteration", "learning rate = 10", "first non-finite output: layer"} {
		if !strings.Contains(r.combined, want) {
			t.Errorf("output lacks %q; tail:\n%s", want, tail(r.combined, 40))
		}
	}
	if strings.Contains(r.out, "iteration 1000/") || strings.Contains(r.out, "final test") {
		t.Errorf("training went on after divergence:\n%s", tail(r.out, 30))
	}
	if _, err := os.Stat(model); err == nil {
		t.Errorf("a diverged model was written to %s", model)
	}
	t.Logf("TestSparkDivergenceStops took %v", time.Since(start).Round(time.Second))
}

// Every destination is checked before any work: an existing -model without
// -overwrite and a model directory that cannot be created are both
// reported in one message; a truncated -snapshot names its byte offset and
// field, as goexec train does.
func TestSparkDestinationsCheckedFirst(t *testing.T) {
	e := setup(t)
	start := time.Now()
	solver := lenetWith(t, e, 100, nil)
	dir := filepath.Join(e.tmp, "dest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(dir, "old.caffemodel")
	if err := os.WriteFile(existing, []byte("old model"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "afile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.submit(t, 4*time.Minute, "local[1]", nil, "-train", "-conf", solver, "-model", existing)
	if r.code == 0 || !strings.Contains(r.combined, "exists; give -overwrite to replace it") {
		t.Errorf("an existing -model: exit %d; tail:\n%s", r.code, tail(r.combined, 20))
	}
	if strings.Contains(r.out, "GoCaffe: application") {
		t.Errorf("training started before the destination check:\n%s", r.out)
	}
	if b, _ := os.ReadFile(existing); string(b) != "old model" {
		t.Errorf("the existing model was changed")
	}
	under := filepath.Join(dir, "afile", "sub", "m.caffemodel") // its parent cannot be created: afile is a file
	r = e.submit(t, 4*time.Minute, "local[1]", nil, "-train", "-conf", solver, "-model", under)
	if r.code == 0 || !strings.Contains(r.combined, "-model") || !strings.Contains(r.combined, filepath.Join("afile", "sub")) {
		t.Errorf("an unwritable -model directory: exit %d; tail:\n%s", r.code, tail(r.combined, 20))
	}

	state := filepath.Join(dir, "cut.solverstate")
	if err := os.WriteFile(state, []byte{0x08, 0x64, 0x12, 0x40, 'l', 'e'}, 0o644); err != nil { // iter 100, learned_net cut short
		t.Fatal(err)
	}
	r = e.submit(t, 4*time.Minute, "local[1]", nil, "-train", "-conf", solver, "-model", filepath.Join(dir, "new.caffemodel"),
		"-snapshot", state)
	if r.code == 0 || !regexp.MustCompile(`-snapshot \S*cut\.solverstate: byte \d+: field SolverState\.learned_net`).MatchString(r.combined) {
		t.Errorf("a truncated -snapshot: exit %d; tail:\n%s", r.code, tail(r.combined, 20))
	}
	t.Logf("TestSparkDestinationsCheckedFirst took %v", time.Since(start).Round(time.Second))
}

// A batch of 10⁹ images is refused by goexec before it allocates anything,
// and the driver's output says how much the net needs, how much goexec may
// use and which blobs are largest (it died with the runtime's fatal
// out-of-memory and a goroutine dump before).
func TestSparkNetTooLarge(t *testing.T) {
	e := setup(t)
	start := time.Now()
	solver := lenetWith(t, e, 100, nil)
	net := filepath.Join(filepath.Dir(solver), "lenet_train_test.prototxt")
	src, err := os.ReadFile(net)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Replace(string(src), "batch_size: 64", "batch_size: 1000000000", 1)
	if big == string(src) {
		t.Fatal("LeNet's train batch_size: 64 not found")
	}
	if err := os.WriteFile(net, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.submit(t, 8*time.Minute, "local[1]", []string{"--conf", "spark.stage.maxConsecutiveAttempts=1"},
		"-train", "-conf", solver, "-model", filepath.Join(e.tmp, "big", "lenet.caffemodel"))
	if r.code == 0 {
		t.Fatalf("a batch of 1e9 trained; tail:\n%s", tail(r.combined, 30))
	}
	for _, want := range []string{"RESOURCE_EXHAUSTED", "needs about", "(batch 1000000000) but this process may use",
		"largest blobs: conv1 [1000000000×20×24×24]"} {
		if !strings.Contains(r.combined, want) {
			t.Errorf("output lacks %q; tail:\n%s", want, tail(r.combined, 30))
		}
	}
	if strings.Contains(r.combined, "fatal error: runtime: out of memory") || strings.Contains(r.combined, "goroutine 1 [") {
		t.Errorf("goexec crashed instead of refusing the net")
	}
	t.Logf("TestSparkNetTooLarge took %v", time.Since(start).Round(time.Second))
}
