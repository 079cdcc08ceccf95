package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/metrics"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
)

func TestTrainTestTimeFlags(t *testing.T) {
	var sink bytes.Buffer
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "-solver is required"},
		{[]string{"-solver", "s", "-weights", "w", "-snapshot", "s"}, "not both"},
		{[]string{"-solver", "s", "-log-format", "xml"}, "-log-format"},
		{[]string{"-solver", "s", "extra"}, "unexpected arguments"},
	} {
		if _, err := parseTrainFlags(c.args, &sink); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("train %q: error %v, want one containing %q", c.args, err, c.want)
		}
	}
	if _, err := parseTestFlags([]string{"-model", "m"}, &sink); err == nil || !strings.Contains(err.Error(), "-weights is required") {
		t.Errorf("test without -weights: %v", err)
	}
	if _, err := parseTimeFlags([]string{"-model", "m", "-iterations", "0", "-phase", "VAL"}, &sink); err == nil ||
		!strings.Contains(err.Error(), "-iterations") || !strings.Contains(err.Error(), "-phase") {
		t.Errorf("time with two bad flags: %v (want both reported)", err)
	}
}

// TestTrainThenTestThenTime runs the three commands on LeNet for a few
// iterations: train writes Caffe-named snapshots, resuming from the
// .solverstate continues to max_iter, test scores the weights on the MNIST
// test set, and time prints every layer.
func TestTrainThenTestThenTime(t *testing.T) {
	if testing.Short() {
		t.Skip("trains LeNet briefly")
	}
	dir := t.TempDir()
	netPath, err := filepath.Abs("../../../examples/lenet_train_test.prototxt")
	if err != nil {
		t.Fatal(err)
	}
	solver := filepath.Join(dir, "solver.prototxt")
	write := func(maxIter string) {
		src := `net: "` + netPath + `"
test_iter: 2 test_interval: 4 base_lr: 0.01 momentum: 0.9 weight_decay: 0.0005
lr_policy: "inv" gamma: 0.0001 power: 0.75 display: 2 max_iter: ` + maxIter + `
snapshot: 4 snapshot_prefix: "` + filepath.Join(dir, "lenet") + `" random_seed: 1`
		if err := os.WriteFile(solver, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("4")
	var log bytes.Buffer
	if err := train(t.Context(), []string{"-solver", solver, "-log-format", "json"}, &log); err != nil {
		t.Fatalf("train: %v\n%s", err, log.String())
	}
	for _, f := range []string{"lenet_iter_4.caffemodel", "lenet_iter_4.solverstate"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("snapshot missing: %v", err)
		}
	}
	if !strings.Contains(log.String(), `"message":"test"`) || !strings.Contains(log.String(), `"accuracy"`) {
		t.Errorf("no test scores logged:\n%s", log.String())
	}
	// Validation curves beside the snapshots: the loss at displays 0 and 2,
	// and the test scores at iteration 4 (test_initialization: also 0).
	curves := filepath.Join(dir, "lenet_metrics.jsonl")
	recs, err := metrics.Read(curves)
	if err != nil {
		t.Fatal(err)
	}
	if got := recordKeys(recs); got != "0 test accuracy,0 test loss,0 train loss,2 train loss,4 test accuracy,4 test loss" {
		t.Errorf("metrics after 4 iterations: %s", got)
	}
	write("6")
	log.Reset()
	err = train(t.Context(), []string{"-solver", solver, "-snapshot", filepath.Join(dir, "lenet_iter_4.solverstate"), "-log-format", "json"}, &log)
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, log.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "lenet_iter_6.caffemodel")); err != nil {
		t.Errorf("resumed run did not snapshot at 6: %v", err)
	}
	if !strings.Contains(log.String(), `"iter":4`) {
		t.Errorf("resumed run did not start at iteration 4:\n%s", log.String())
	}
	// The resumed run appends to the curves.
	if recs, err := metrics.Read(curves); err != nil {
		t.Error(err)
	} else if got := recordKeys(recs[6:]); len(recs) < 6 || got != "4 test accuracy,4 test loss,4 train loss" {
		t.Errorf("metrics appended by the resumed run: %s", got)
	}

	var out bytes.Buffer
	log.Reset()
	err = testCmd(t.Context(), []string{"-model", netPath, "-weights", filepath.Join(dir, "lenet_iter_6.caffemodel"),
		"-data", "mnist::test", "-iterations", "3"}, &out, &log)
	if err != nil {
		t.Fatalf("test: %v\n%s", err, log.String())
	}
	if !strings.Contains(out.String(), "accuracy = ") || !strings.Contains(out.String(), "Loss: ") {
		t.Errorf("test printed:\n%s", out.String())
	}

	// The same weights in a deploy-style net with an Input layer (data and
	// label tops), fed from -data with the transform given by flags.
	np, err := prototxt.ParseNetFile(netPath)
	if err != nil {
		t.Fatal(err)
	}
	input := &caffepb.LayerParameter{}
	if err := prototxt.Unmarshal("input", []byte(`name: "input" type: "Input" top: "data" top: "label"
		input_param { shape { dim: 50 dim: 1 dim: 28 dim: 28 } shape { dim: 50 } }`), input); err != nil {
		t.Fatal(err)
	}
	layers := []*caffepb.LayerParameter{input}
	for _, lp := range np.Layer {
		if lp.GetType() != "MemoryData" {
			layers = append(layers, lp)
		}
	}
	np.Layer = layers
	deploy := filepath.Join(dir, "deploy.prototxt")
	if err := os.WriteFile(deploy, prototxt.FormatNet(np), 0o644); err != nil {
		t.Fatal(err)
	}
	var out2 bytes.Buffer
	err = testCmd(t.Context(), []string{"-model", deploy, "-weights", filepath.Join(dir, "lenet_iter_6.caffemodel"),
		"-data", "mnist::test", "-iterations", "6", "-scale", "0.00390625"}, &out2, &log)
	if err != nil {
		t.Fatalf("test on the Input-layer net: %v\n%s", err, log.String())
	}
	// 300 images either way (3×100, 6×50), so the accuracies must agree.
	acc, acc2 := lineOf(out.String(), "accuracy = "), lineOf(out2.String(), "accuracy = ")
	a, err1 := strconv.ParseFloat(acc, 64)
	a2, err2 := strconv.ParseFloat(acc2, 64)
	if err1 != nil || err2 != nil || math.Abs(a-a2) > 1e-6 {
		t.Errorf("accuracy through MemoryData %q, through Input %q", acc, acc2)
	}
	if err := testCmd(t.Context(), []string{"-model", netPath, "-weights", filepath.Join(dir, "lenet_iter_6.caffemodel"),
		"-scale", "2"}, &out2, &log); err == nil {
		t.Error("-scale accepted for a net with data layers")
	}

	out.Reset()
	if err := timeCmd(t.Context(), []string{"-model", netPath, "-iterations", "1", "-synthetic"}, &out, &log); err != nil {
		t.Fatalf("time: %v", err)
	}
	for _, l := range []string{"conv1", "pool2", "ip1", "loss", "Average Forward-Backward"} {
		if !strings.Contains(out.String(), l) {
			t.Errorf("time output lacks %q:\n%s", l, out.String())
		}
	}
}

// lineOf returns the rest of the first line of s that starts with prefix.
func lineOf(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			return rest
		}
	}
	return ""
}

// recordKeys lists "iteration phase name" of each record, comma-separated.
func recordKeys(recs []metrics.Record) string {
	var ks []string
	for _, r := range recs {
		ks = append(ks, strconv.Itoa(r.Iteration)+" "+r.Phase+" "+r.Name)
	}
	return strings.Join(ks, ",")
}

// TestTimeSyntheticMissingDatabase checks that timing a net whose Data
// layer's database is missing fails under -synthetic with the layer's
// error and why -synthetic does not help: the image shape comes from the
// database.
func TestTimeSyntheticMissingDatabase(t *testing.T) {
	netPath := filepath.Join(t.TempDir(), "net.prototxt")
	const net = `name: "n"
layer { name: "cifar" type: "Data" top: "data" top: "label" data_param { source: "no/such/lmdb" batch_size: 4 backend: LMDB } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 2 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
`
	if err := os.WriteFile(netPath, []byte(net), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, log strings.Builder
	err := timeCmd(t.Context(), []string{"-model", netPath, "-iterations", "1", "-synthetic"}, &out, &log)
	if err == nil {
		t.Fatal("time -synthetic with a missing database succeeded")
	}
	for _, want := range []string{`"cifar"`, "no/such/lmdb", "image shape", "Input or DummyData"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
