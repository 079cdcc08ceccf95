package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/modelio"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
	"github.com/gocaffe/gocaffe/kernels/simdev"
)

const testNets = "../../../caffe/testdata/nets"

func runInspectTest(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := inspect(args, &out, &errOut)
	return out.String(), err
}

// row returns the table row of layer name, with runs of spaces collapsed.
func row(t *testing.T, out, name string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, name+" ") {
			return regexp.MustCompile(` {2,}`).ReplaceAllString(strings.TrimSpace(line), " | ")
		}
	}
	t.Fatalf("no row for layer %q in\n%s", name, out)
	return ""
}

func TestInspectLeNet(t *testing.T) {
	out, err := runInspectTest(t, filepath.Join(testNets, "lenet_train_test.prototxt"), "-phase", "test", "-data-shape", "1,28,28")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"conv1":           "conv1 | Convolution | data | conv1 100x20x24x24 | 520 | 4.4 MiB | cpu",
		"pool1":           "pool1 | Pooling | conv1 | pool1 100x20x12x12 | 0 | 1.1 MiB | cpu",
		"ip1":             "ip1 | InnerProduct | pool2 | ip1 100x500 | 400,500 | 195.3 KiB | cpu",
		"relu1":           "relu1 | ReLU | ip1 | ip1 100x500 (in place) | 0 | 0 B | cpu",
		"ip2_ip2_0_split": "ip2_ip2_0_split | Split | ip2 | ip2_ip2_0_split_0 100x10, ip2_ip2_0_split_1 100x10 | 0 | 0 B (shares bottom) | cpu",
		"loss":            "loss | SoftmaxWithLoss | ip2_ip2_0_split_1, label_mnist_1_split_1 | loss scalar | 0 | 4 B | cpu",
	} {
		if got := row(t, out, name); got != want {
			t.Errorf("row %s:\n got %s\nwant %s", name, got, want)
		}
	}
	if !strings.Contains(out, "parameters: 431,080 (431,080 trainable)") {
		t.Errorf("totals missing LeNet's 431,080 parameters:\n%s", out)
	}
	// 1,971,702 values in all blobs, less the 2,200 of the two splits'
	// tops, which share their bottoms' storage.
	if !strings.Contains(out, "activations: 1,969,502 values") {
		t.Errorf("activation total wrong:\n%s", out)
	}
}

func TestInspectBatchAndPhase(t *testing.T) {
	out, err := runInspectTest(t, "-batch", "7", filepath.Join(testNets, "alexnet_deploy.prototxt"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := row(t, out, "pool5"), "pool5 | Pooling | conv5 | pool5 7x256x6x6 | 0 | 252.0 KiB | cpu"; got != want {
		t.Errorf("pool5 row %q, want %q", got, want)
	}
	if !strings.Contains(out, "parameters: 60,965,224") || !strings.Contains(out, "phase TRAIN") {
		t.Errorf("AlexNet header or totals wrong:\n%s", out)
	}
	out, err = runInspectTest(t, filepath.Join(testNets, "lenet_memory_train_test.prototxt"), "--phase=test")
	if err != nil {
		t.Fatal(err)
	}
	if got := row(t, out, "data"); !strings.Contains(got, "data 100x1x28x28, label 100") {
		t.Errorf("TEST MemoryData row %q", got)
	}
}

func TestInspectErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.prototxt")
	if err := os.WriteFile(bad, []byte("name: \"x\"\nlayer { name: \"a\" type: \"Input\" top: \"x\" \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "unknown.prototxt")
	if err := os.WriteFile(unknown, []byte(`layer { name: "a" type: "Foo" top: "x" }`), 0o644); err != nil {
		t.Fatal(err)
	}
	lenet := filepath.Join(testNets, "lenet_train_test.prototxt")
	cases := []struct {
		args []string
		want []string
	}{
		{nil, []string{"missing the net prototxt"}},
		{[]string{"a.prototxt", "b.prototxt"}, []string{"one net prototxt"}},
		{[]string{"-phase", "val", lenet}, []string{`-phase "val"`}},
		{[]string{"-data-shape", "1,28", lenet}, []string{"-data-shape"}},
		{[]string{filepath.Join(dir, "missing.prototxt")}, []string{"missing.prototxt"}},
		{[]string{bad}, []string{"bad.prototxt"}},
		{[]string{unknown}, []string{"unknown.prototxt", `"Foo"`, "Convolution"}},
		{[]string{lenet}, []string{"lenet_train_test.prototxt", `"mnist"`, "-data-shape"}},
	}
	for _, c := range cases {
		_, err := runInspectTest(t, c.args...)
		if err == nil {
			t.Errorf("inspect %q: no error", c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("inspect %q: error %q lacks %q", c.args, err, w)
			}
		}
	}
}

// writeModel builds the net in file (with edit applied to its text) and
// writes its freshly filled weights as a .caffemodel.
func writeModel(t *testing.T, file string, edit func(string) string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(testNets, file))
	if err != nil {
		t.Fatal(err)
	}
	p, err := prototxt.ParseNet(file, []byte(edit(string(src))))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := layers.Standard()
	if err != nil {
		t.Fatal(err)
	}
	n, err := network.New[float32](p, &caffepb.NetState{Phase: caffepb.Phase_TEST.Enum()}, reg, network.WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "w.caffemodel")
	if err := modelio.WriteCaffemodel(path, n.ToProto(false)); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInspectWeights(t *testing.T) {
	deploy := filepath.Join(testNets, "lenet.prototxt")
	same := writeModel(t, "lenet.prototxt", func(s string) string { return s })
	out, err := runInspectTest(t, deploy, "-weights", same)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "4 layers loaded, shapes match") {
		t.Errorf("weights report missing:\n%s", out)
	}
	renamed := writeModel(t, "lenet.prototxt", func(s string) string { return strings.Replace(s, `name: "ip2"`, `name: "classifier"`, 1) })
	out, err = runInspectTest(t, deploy, "-weights", renamed)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "not in the weights (keep their fillers): ip2") || !strings.Contains(out, "not in the net (ignored): classifier") {
		t.Errorf("partial weights report wrong:\n%s", out)
	}
	other := writeModel(t, "lenet.prototxt", func(s string) string { return strings.Replace(s, "num_output: 500", "num_output: 300", 1) })
	_, err = runInspectTest(t, deploy, "-weights", other)
	if err == nil {
		t.Fatal("mismatched weights: no error")
	}
	for _, want := range []string{other, `"ip1"`, "500 800 (400000)", "300 800 (240000)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	_, err = runInspectTest(t, deploy, "-weights", filepath.Join(t.TempDir(), "none.caffemodel"))
	if err == nil || !strings.Contains(err.Error(), "none.caffemodel") {
		t.Errorf("missing weights file: got %v", err)
	}
}

// On a net of another device, inspect says per layer where it runs: the
// portable layers there, the host ones on the CPU.
func TestInspectDeviceColumn(t *testing.T) {
	var out, errs strings.Builder
	err := inspectOn([]string{filepath.Join(testNets, "lenet_train_test.prototxt"), "-phase", "test", "-data-shape", "1,28,28"}, &out, &errs, simdev.New())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"conv1":    "simdev",
		"relu1":    "simdev",
		"loss":     "simdev",
		"accuracy": "simdev",
	} {
		if got := row(t, out.String(), name); !strings.HasSuffix(got, " | "+want) {
			t.Errorf("row %s: %q, want device %q", name, got, want)
		}
	}
	// A host layer (Slice, ContrastiveLoss) falls back to the CPU.
	out.Reset()
	err = inspectOn([]string{filepath.Join(testNets, "mnist_siamese_train_test.prototxt"), "-phase", "train", "-data-shape", "2,28,28"}, &out, &errs, simdev.New())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"conv1": "simdev", "slice_pair": "cpu (fallback)", "loss": "cpu (fallback)"} {
		if got := row(t, out.String(), name); !strings.HasSuffix(got, " | "+want) {
			t.Errorf("siamese row %s: %q, want device %q", name, got, want)
		}
	}
}

// TestInspectAllocatesNoParams: inspecting a net of 4·10⁷ parameters
// (160 MB) prints their count without allocating them, so that a net too
// large for the machine is described rather than crashing inspect.
func TestInspectAllocatesNoParams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.prototxt")
	if err := os.WriteFile(path, []byte(`name: "big"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 4 dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" inner_product_param { num_output: 10000000 } }`), 0o644); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, err := runInspectTest(t, path)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "parameters: 40,000,000") {
		t.Errorf("totals lack the 40,000,000 parameters:\n%s", out)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("inspecting a net of 160 MB of params allocated %d bytes", grew)
	}
}
