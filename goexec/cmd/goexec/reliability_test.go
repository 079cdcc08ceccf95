package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/modelio"
)

// lenetSolver writes a LeNet solver with the given learning rate and max_iter.
func lenetSolver(t *testing.T, dir, lr, maxIter, extra string) string {
	t.Helper()
	netPath, err := filepath.Abs("../../../examples/lenet_train_test.prototxt")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "solver.prototxt")
	src := `net: "` + netPath + `"
test_iter: 2 test_interval: 1000 base_lr: ` + lr + ` momentum: 0.9 weight_decay: 0.0005
lr_policy: "fixed" display: 5 max_iter: ` + maxIter + `
snapshot_prefix: "` + filepath.Join(dir, "lenet") + `" random_seed: 1 ` + extra
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// LeNet with base_lr 10 goes NaN within a few dozen iterations: train must
// stop there with an error naming the iteration, loss, lr and layer (so
// main exits non-zero), keep the last good snapshot, and write none after.
func TestTrainStopsOnDivergence(t *testing.T) {
	if testing.Short() {
		t.Skip("trains LeNet briefly")
	}
	dir := t.TempDir()
	solverPath := lenetSolver(t, dir, "10", "200", "snapshot: 2")
	var log bytes.Buffer
	err := train(t.Context(), []string{"-solver", solverPath, "-log-format", "json"}, &log)
	if err == nil {
		t.Fatalf("train with base_lr 10 succeeded:\n%s", log.String())
	}
	msg := err.Error()
	for _, want := range []string{"diverged at iteration", "loss = ", "learning rate = 10", "first non-finite output: layer"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	// LeNet diverges at iteration 3 with this seed: the snapshot at 2 is
	// kept and finite, none is written later.
	if np, err := modelio.ReadCaffemodel(filepath.Join(dir, "lenet_iter_2.caffemodel")); err != nil {
		t.Errorf("last good snapshot: %v", err)
	} else if err := modelio.CheckNetFinite(np); err != nil {
		t.Errorf("last good snapshot: %v", err)
	}
	for _, it := range []string{"4", "200"} {
		if _, serr := os.Stat(filepath.Join(dir, "lenet_iter_"+it+".caffemodel")); serr == nil {
			t.Errorf("snapshot at %s written after divergence", it)
		}
	}
	// With -nonfinite warn it trains on to max_iter, as Caffe does.
	warnSolver := lenetSolver(t, dir, "10", "8", "snapshot_after_train: false")
	log.Reset()
	if err := train(t.Context(), []string{"-solver", warnSolver, "-nonfinite", "warn", "-log-format", "json"}, &log); err != nil {
		t.Fatalf("-nonfinite warn: %v", err)
	}
	if !strings.Contains(log.String(), "non-finite loss or gradient; training on") {
		t.Errorf("-nonfinite warn logged no warning:\n%s", log.String())
	}
	if _, err := parseTrainFlags([]string{"-solver", "s", "-nonfinite", "ignore"}, &log); err == nil || !strings.Contains(err.Error(), "-nonfinite") {
		t.Errorf("-nonfinite ignore: %v", err)
	}
}

// Every JSON log line of `goexec test` is an object without repeated keys
// (LeNet's loss output is named "loss", like the total).
func TestTestLogHasNoRepeatedKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("trains LeNet briefly")
	}
	dir := t.TempDir()
	solverPath := lenetSolver(t, dir, "0.01", "2", "")
	var log bytes.Buffer
	if err := train(t.Context(), []string{"-solver", solverPath, "-log-format", "json"}, &log); err != nil {
		t.Fatalf("train: %v\n%s", err, log.String())
	}
	netPath, _ := filepath.Abs("../../../examples/lenet_train_test.prototxt")
	var out bytes.Buffer
	log.Reset()
	if err := testCmd(t.Context(), []string{"-model", netPath, "-weights", filepath.Join(dir, "lenet_iter_2.caffemodel"),
		"-data", "mnist::test", "-iterations", "1", "-log-format", "json"}, &out, &log); err != nil {
		t.Fatalf("test: %v\n%s", err, log.String())
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		if strings.Contains(line, `"message":"test"`) {
			found = true
		}
		if k := repeatedKey(t, line); k != "" {
			t.Errorf("key %q repeated in %s", k, line)
		}
	}
	if !found {
		t.Errorf("no test line:\n%s", log.String())
	}
}

// repeatedKey returns a key that a JSON object (at any depth) repeats.
func repeatedKey(t *testing.T, line string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	type frame struct {
		seen  map[string]bool
		isObj bool
		key   bool // next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.isObj {
					top.key = true
				}
				stack = append(stack, &frame{seen: map[string]bool{}, isObj: v == '{', key: v == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
		default:
			if top == nil || !top.isObj {
				continue
			}
			if top.key {
				k, _ := v.(string)
				if top.seen[k] {
					return k
				}
				top.seen[k] = true
				top.key = false
			} else {
				top.key = true
			}
		}
	}
}

// bigBatchNet writes LeNet with a train batch of 10⁹ images.
func bigBatchNet(t *testing.T, dir string) string {
	t.Helper()
	src, err := os.ReadFile("../../../examples/lenet_train_test.prototxt")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "batch_size: 64", "batch_size: 1000000000", 1)
	if text == string(src) {
		t.Fatal("LeNet's train batch_size: 64 not found")
	}
	p := filepath.Join(dir, "big.prototxt")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A batch of 10⁹ is refused before anything is allocated, in one line with
// both figures and the largest blobs (it died in the runtime's fatal
// out-of-memory before), and inspect shows its shapes without allocating.
func TestTrainRefusesNetTooLarge(t *testing.T) {
	dir := t.TempDir()
	net := bigBatchNet(t, dir)
	solverPath := filepath.Join(dir, "solver.prototxt")
	if err := os.WriteFile(solverPath, []byte(`net: "`+net+`" base_lr: 0.01 lr_policy: "fixed" max_iter: 10
test_iter: 1 test_interval: 100 snapshot_prefix: "`+filepath.Join(dir, "x")+`"`), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	err := train(t.Context(), []string{"-solver", solverPath}, &log)
	if err == nil || !strings.Contains(err.Error(), "needs about 143.3 TiB (batch 1000000000) but this process may use") ||
		!strings.Contains(err.Error(), "largest blobs: conv1 [1000000000×20×24×24] (41.9 TiB)") {
		t.Fatalf("train at batch 1e9: %v", err)
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var out, errOut bytes.Buffer
	if err := inspect([]string{net}, &out, &errOut); err != nil {
		t.Fatalf("inspect at batch 1e9: %v", err)
	}
	runtime.ReadMemStats(&after)
	if !strings.Contains(out.String(), "conv1 1000000000x20x24x24") {
		t.Errorf("inspect does not show conv1 at batch 1e9:\n%s", out.String())
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<20 {
		t.Errorf("inspect at batch 1e9 allocated %d bytes", grew)
	}
}

// The driver hands goexec a -snapshot it could not parse: goexec names the
// file, the byte offset and the field, as goexec train does.
func TestPrepareChecksTruncatedSolverState(t *testing.T) {
	st := &caffepb.SolverState{Iter: proto.Int32(100), LearnedNet: proto.String("m.caffemodel"),
		History: []*caffepb.BlobProto{{Data: make([]float32, 500)}}}
	b, err := proto.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "s.solverstate")
	if err := os.WriteFile(p, b[:len(b)-700], 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err = prepare([]string{"-check-solverstate", p, "-file-name", "hdfs://nn/x/s.solverstate"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "hdfs://nn/x/s.solverstate: byte ") || !strings.Contains(err.Error(), "field SolverState.history[0].data") {
		t.Errorf("truncated solverstate: %v", err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := prepare([]string{"-check-solverstate", p}, &out, &errOut); err != nil {
		t.Errorf("a whole solverstate: %v", err)
	}
}
