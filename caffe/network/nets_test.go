package network

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/modelio"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
)

var update = flag.Bool("update", false, "rewrite the golden net descriptions under testdata/golden")

const netsDir = "../testdata/nets"

func standard(t testing.TB) *layer.Registry {
	t.Helper()
	r, err := layers.Standard()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// netCase is one test net in one phase with the figures it must show.
type netCase struct {
	file  string
	phase caffepb.Phase
	// sample is the (channels, height, width) of the records behind its
	// Data layers, if it has any.
	sample [3]int
	// shapes of selected blobs.
	shapes map[string][]int
	// params is the published (or hand-computed) parameter count, shared
	// parameters counted once; trainable excludes BatchNorm statistics.
	params, trainable int64
	golden            string
}

var netCases = []netCase{
	{file: "lenet_train_test.prototxt", phase: caffepb.Phase_TRAIN, sample: [3]int{1, 28, 28},
		shapes: map[string][]int{"data": {64, 1, 28, 28}, "label": {64}, "conv1": {64, 20, 24, 24}, "pool1": {64, 20, 12, 12},
			"conv2": {64, 50, 8, 8}, "pool2": {64, 50, 4, 4}, "ip1": {64, 500}, "ip2": {64, 10}, "loss": {}},
		params: 431080, golden: "lenet_train"},
	{file: "lenet_train_test.prototxt", phase: caffepb.Phase_TEST, sample: [3]int{1, 28, 28},
		shapes: map[string][]int{"data": {100, 1, 28, 28}, "ip2_ip2_0_split_0": {100, 10}, "label_mnist_1_split_1": {100},
			"accuracy": {}, "loss": {}},
		params: 431080, golden: "lenet_test"},
	{file: "lenet.prototxt", phase: caffepb.Phase_TEST,
		shapes: map[string][]int{"data": {64, 1, 28, 28}, "pool2": {64, 50, 4, 4}, "prob": {64, 10}},
		params: 431080, golden: "lenet_deploy"},
	{file: "lenet_memory_train_test.prototxt", phase: caffepb.Phase_TRAIN,
		shapes: map[string][]int{"data": {64, 1, 28, 28}, "label": {64}, "ip2": {64, 10}},
		params: 431080, golden: "lenet_memory_train"},
	{file: "lenet_cos_train_test.prototxt", phase: caffepb.Phase_TEST,
		shapes: map[string][]int{"data": {100, 1, 28, 28}, "label": {100, 1}, "ip2": {100, 10}},
		params: 431080, golden: "lenet_cos_test"},
	{file: "cifar10_quick_train_test.prototxt", phase: caffepb.Phase_TRAIN, sample: [3]int{3, 32, 32},
		shapes: map[string][]int{"data": {100, 3, 32, 32}, "conv1": {100, 32, 32, 32}, "pool1": {100, 32, 16, 16},
			"pool2": {100, 32, 8, 8}, "pool3": {100, 64, 4, 4}, "ip1": {100, 64}, "ip2": {100, 10}},
		params: 145578, golden: "cifar10_quick_train"},
	{file: "cifar10_quick.prototxt", phase: caffepb.Phase_TEST,
		shapes: map[string][]int{"prob": {1, 10}}, params: 145578},
	{file: "cifar10_full_train_test.prototxt", phase: caffepb.Phase_TEST, sample: [3]int{3, 32, 32},
		shapes: map[string][]int{"norm1": {100, 32, 16, 16}, "norm2": {100, 32, 8, 8}, "pool3": {100, 64, 4, 4}, "ip1": {100, 10}},
		params: 89578, golden: "cifar10_full_test"},
	{file: "cifar10_full.prototxt", phase: caffepb.Phase_TEST,
		shapes: map[string][]int{"prob": {1, 10}}, params: 89578},
	{file: "alexnet_deploy.prototxt", phase: caffepb.Phase_TEST,
		shapes: map[string][]int{"conv1": {10, 96, 55, 55}, "pool1": {10, 96, 27, 27}, "conv2": {10, 256, 27, 27},
			"pool2": {10, 256, 13, 13}, "conv3": {10, 384, 13, 13}, "conv5": {10, 256, 13, 13}, "pool5": {10, 256, 6, 6},
			"fc6": {10, 4096}, "fc8": {10, 1000}, "prob": {10, 1000}},
		params: 60965224, golden: "alexnet_deploy"},
	{file: "alexnet_train_val.prototxt", phase: caffepb.Phase_TRAIN, sample: [3]int{3, 256, 256},
		shapes: map[string][]int{"data": {256, 3, 227, 227}, "pool5": {256, 256, 6, 6}, "loss": {}},
		params: 60965224},
	{file: "caffenet_deploy.prototxt", phase: caffepb.Phase_TEST,
		shapes: map[string][]int{"pool1": {10, 96, 27, 27}, "norm1": {10, 96, 27, 27}, "pool2": {10, 256, 13, 13}, "pool5": {10, 256, 6, 6}},
		params: 60965224, golden: "caffenet_deploy"},
	{file: "caffenet_train_val.prototxt", phase: caffepb.Phase_TEST, sample: [3]int{3, 256, 256},
		shapes: map[string][]int{"data": {50, 3, 227, 227}, "fc8": {50, 1000}, "accuracy": {}},
		params: 60965224},
	{file: "vgg16_deploy.prototxt", phase: caffepb.Phase_TEST,
		shapes: map[string][]int{"conv1_2": {10, 64, 224, 224}, "pool1": {10, 64, 112, 112}, "pool2": {10, 128, 56, 56},
			"pool3": {10, 256, 28, 28}, "pool4": {10, 512, 14, 14}, "pool5": {10, 512, 7, 7}, "fc6": {10, 4096}, "prob": {10, 1000}},
		params: 138357544, golden: "vgg16_deploy"},
	{file: "googlenet_deploy.prototxt", phase: caffepb.Phase_TEST,
		shapes: map[string][]int{"conv1/7x7_s2": {10, 64, 112, 112}, "pool1/3x3_s2": {10, 64, 56, 56}, "conv2/3x3": {10, 192, 56, 56},
			"pool2/3x3_s2": {10, 192, 28, 28}, "inception_3a/output": {10, 256, 28, 28}, "inception_3b/output": {10, 480, 28, 28},
			"pool3/3x3_s2": {10, 480, 14, 14}, "inception_4a/output": {10, 512, 14, 14}, "inception_4d/output": {10, 528, 14, 14},
			"inception_4e/output": {10, 832, 14, 14}, "pool4/3x3_s2": {10, 832, 7, 7}, "inception_5b/output": {10, 1024, 7, 7},
			"pool5/7x7_s1": {10, 1024, 1, 1}, "loss3/classifier": {10, 1000}, "prob": {10, 1000}},
		params: 6998552, golden: "googlenet_deploy"},
	{file: "resnet50_deploy.prototxt", phase: caffepb.Phase_TEST,
		shapes: map[string][]int{"conv1": {1, 64, 112, 112}, "pool1": {1, 64, 56, 56}, "res2a": {1, 256, 56, 56},
			"res2c": {1, 256, 56, 56}, "res3a_branch2a": {1, 128, 28, 28}, "res3d": {1, 512, 28, 28}, "res4f": {1, 1024, 14, 14},
			"res5c": {1, 2048, 7, 7}, "pool5": {1, 2048, 1, 1}, "fc1000": {1, 1000}, "prob": {1, 1000}},
		// 25,557,032 trained values (the published ResNet-50 figure) plus
		// 53 BatchNorm layers' mean, variance (2·C) and scale factor (1).
		params: 25557032 + 53173, trainable: 25557032, golden: "resnet50_deploy"},
	{file: "nin_imagenet_deploy.prototxt", phase: caffepb.Phase_TEST,
		shapes: map[string][]int{"conv1": {10, 96, 54, 54}, "pool0": {10, 96, 27, 27}, "pool2": {10, 256, 13, 13},
			"pool3": {10, 384, 6, 6}, "cccp8-1024": {10, 1000, 6, 6}, "pool4": {10, 1000, 1, 1}, "prob": {10, 1000, 1, 1}},
		params: 7595176, golden: "nin_deploy"},
	{file: "mnist_siamese_train_test.prototxt", phase: caffepb.Phase_TRAIN, sample: [3]int{2, 28, 28},
		shapes: map[string][]int{"pair_data": {64, 2, 28, 28}, "data": {64, 1, 28, 28}, "data_p": {64, 1, 28, 28},
			"feat": {64, 2}, "feat_p": {64, 2}, "loss": {}},
		// LeNet's 431,080 with a 2-way feat layer (1,010 → 22) instead of the
		// classifier's 10 outputs counted once: the _p branch shares it all.
		params: 431080 + 22, golden: "siamese_train"},
}

// parseTestNet reads a test net, with its Data layers (if any) turned into
// MemoryData layers of the case's sample shape.
func parseTestNet(t testing.TB, c netCase) *caffepb.NetParameter {
	t.Helper()
	p, err := prototxt.ParseNetFile(filepath.Join(netsDir, c.file))
	if err != nil {
		t.Fatal(err)
	}
	if c.sample != [3]int{} {
		if p, _, err = DataAsMemory(p, c.sample); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func loadNet(t testing.TB, c netCase, opts ...Option) *Net[float32] {
	t.Helper()
	n, err := New[float32](parseTestNet(t, c), &caffepb.NetState{Phase: c.phase.Enum()}, standard(t), append([]Option{WithoutFillers()}, opts...)...)
	if err != nil {
		t.Fatalf("%s (%s): %v", c.file, c.phase, err)
	}
	return n
}

func TestWholeNets(t *testing.T) {
	for _, c := range netCases {
		t.Run(strings.TrimSuffix(c.file, ".prototxt")+"_"+c.phase.String(), func(t *testing.T) {
			n := loadNet(t, c)
			for name, want := range c.shapes {
				b := n.BlobByName(name)
				if b == nil {
					t.Errorf("no blob %q", name)
					continue
				}
				if !blob.ShapeEquals(b.Shape(), want) {
					t.Errorf("blob %q: shape %v, want %v", name, b.Shape(), want)
				}
			}
			s := n.Stats()
			if s.Params != c.params {
				t.Errorf("params %d, want %d", s.Params, c.params)
			}
			trainable := c.trainable
			if trainable == 0 {
				trainable = c.params
			}
			if s.Trainable != trainable {
				t.Errorf("trainable params %d, want %d", s.Trainable, trainable)
			}
			// Shape inference allocates no activations, except where a
			// layer aliases its bottom's storage in Reshape (Split, Flatten
			// and Reshape share it there, which allocates it).
			aliased := map[int]bool{}
			for i, lp := range n.LayerParams() {
				switch lp.GetType() {
				case "Split", "Flatten", "Reshape":
					for _, id := range append(slices.Clone(n.Graph().Bottoms[i]), n.Graph().Tops[i]...) {
						aliased[id] = true
					}
				}
			}
			for i, b := range n.Blobs() {
				if b.Allocated() && !aliased[i] {
					t.Errorf("blob %q allocated by shape inference", n.BlobNames()[i])
				}
			}
			if c.golden != "" {
				checkGolden(t, n, c.golden)
			}
		})
	}
}

func checkGolden(t *testing.T, n *Net[float32], name string) {
	t.Helper()
	var buf bytes.Buffer
	if err := n.Describe(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "golden", name+".txt")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./caffe/network -run TestWholeNets -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		got, wantLines := strings.Split(buf.String(), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(got), len(wantLines)) {
			g, w := "", ""
			if i < len(got) {
				g = got[i]
			}
			if i < len(wantLines) {
				w = wantLines[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s", path, i+1, g, w)
			}
		}
	}
}

// TestLeNetSplitsAndBackward checks the TEST-phase LeNet against what Caffe
// logs for it: the label and ip2 splits, and which layers need backward.
func TestLeNetSplitsAndBackward(t *testing.T) {
	n := loadNet(t, netCases[1])
	want := []string{"mnist", "label_mnist_1_split", "conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2", "ip2_ip2_0_split", "accuracy", "loss"}
	if got := n.LayerNames(); !slices.Equal(got, want) {
		t.Fatalf("layers %v\nwant %v", got, want)
	}
	if got := n.OutputBlobNames(); !slices.Equal(got, []string{"accuracy", "loss"}) {
		t.Errorf("outputs %v", got)
	}
	if got := n.OutputLossWeights(); !slices.Equal(got, []float32{0, 1}) {
		t.Errorf("output loss weights %v, want [0 1]", got)
	}
	for i, name := range want {
		needs := !(name == "mnist" || name == "label_mnist_1_split" || name == "accuracy")
		if n.LayerNeedsBackward(i) != needs {
			t.Errorf("layer %s: needs backward %v, want %v", name, n.LayerNeedsBackward(i), needs)
		}
	}
	if got := n.BottomNeedsBackward(11); !slices.Equal(got, []bool{true, false}) {
		t.Errorf("loss propagate_down %v, want [true false]", got)
	}
	if got := n.BottomNeedsBackward(2); !slices.Equal(got, []bool{false}) {
		t.Errorf("conv1 propagate_down %v: the data needs no gradient", got)
	}
}

func TestSiameseSharesWeights(t *testing.T) {
	n := loadNet(t, netCases[len(netCases)-1])
	if got := len(n.LearnableParams()); got != 10 {
		t.Errorf("%d learnable params, want 10 (5 layers' weights and biases, shared by both branches)", got)
	}
	a, b := n.LayerByName("conv1").Blobs()[0], n.LayerByName("conv1_p").Blobs()[0]
	a.Data()[3] = 7
	if b.Data()[3] != 7 {
		t.Error("conv1_p does not share conv1's weights")
	}
}

func TestRealNetErrors(t *testing.T) {
	read := func(file string) string {
		src, err := os.ReadFile(filepath.Join(netsDir, file))
		if err != nil {
			t.Fatal(err)
		}
		return string(src)
	}
	build := func(src string) error {
		p, err := prototxt.ParseNet("test.prototxt", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		_, err = New[float32](p, nil, standard(t), WithoutFillers())
		return err
	}
	lenet := read("lenet.prototxt")

	err := build(strings.Replace(lenet, `type: "Pooling"`, `type: "Pool"`, 1))
	var ut *layer.UnknownTypeError
	if !errors.As(err, &ut) || ut.Type != "Pool" || ut.Layer != "pool1" || !slices.Contains(ut.Known, "Pooling") {
		t.Errorf("unknown type: got %v", err)
	}

	err = build(strings.Replace(lenet, `bottom: "pool1"`, `bottom: "pool_1"`, 1))
	var mb *MissingBottomError
	if !errors.As(err, &mb) || mb.Layer != "conv2" || mb.Blob != "pool_1" {
		t.Errorf("missing bottom: got %v", err)
	}

	siamese := read("mnist_siamese_train_test.prototxt")
	i := strings.Index(siamese, `name: "ip1_p"`)
	bad := siamese[:i] + strings.Replace(siamese[i:], "num_output: 500", "num_output: 400", 1)
	p, err := prototxt.ParseNet("siamese.prototxt", []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	if p, _, err = DataAsMemory(p, [3]int{2, 28, 28}); err != nil {
		t.Fatal(err)
	}
	_, err = New[float32](p, &caffepb.NetState{Phase: caffepb.Phase_TRAIN.Enum()}, standard(t), WithoutFillers())
	if err == nil || !strings.Contains(err.Error(), `"ip1_p"`) || !strings.Contains(err.Error(), `"ip1_w"`) || !strings.Contains(err.Error(), "shape mismatch") {
		t.Errorf("shared param shape mismatch: got %v", err)
	}
}

// TestCopyTrainedLeNet writes a LeNet's weights as a .caffemodel and loads
// them into a net built separately; a model for another net fails with the
// layer and both shapes.
func TestCopyTrainedLeNet(t *testing.T) {
	c := netCases[2]
	src := loadNet(t, c, WithSeed(1))
	p, err := prototxt.ParseNetFile(filepath.Join(netsDir, c.file))
	if err != nil {
		t.Fatal(err)
	}
	trained, err := New[float32](p, nil, standard(t), WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "lenet.caffemodel")
	if err := modelio.WriteCaffemodel(path, trained.ToProto(false)); err != nil {
		t.Fatal(err)
	}
	model, err := modelio.ReadCaffemodel(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.CopyTrainedLayersFrom(model); err != nil {
		t.Fatal(err)
	}
	for i, b := range trained.LearnableParams() {
		if !slices.Equal(b.Data(), src.LearnableParams()[i].Data()) {
			t.Fatalf("param %s differs after loading", trained.LearnableParamNames()[i])
		}
	}
	other := strings.Replace(string(prototxt.FormatNet(p)), "num_output: 500", "num_output: 300", 1)
	op, err := prototxt.ParseNet("other.prototxt", []byte(other))
	if err != nil {
		t.Fatal(err)
	}
	on, err := New[float32](op, nil, standard(t), WithoutFillers())
	if err != nil {
		t.Fatal(err)
	}
	err = on.CopyTrainedLayersFrom(model)
	var sm *modelio.ShapeMismatchError
	if !errors.As(err, &sm) || sm.Layer != "ip1" || !slices.Equal(sm.Want, []int{300, 800}) || !slices.Equal(sm.Got, []int{500, 800}) {
		t.Errorf("got %v, want a shape mismatch for ip1: 300x800 expected, 500x800 found", err)
	}
}

// TestGeneratedNetsUpToDate regenerates the script-made nets and compares.
func TestGeneratedNetsUpToDate(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	dir := t.TempDir()
	if out, err := exec.Command(py, filepath.Join(netsDir, "gen_nets.py"), dir).CombinedOutput(); err != nil {
		t.Fatalf("gen_nets.py: %v\n%s", err, out)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.prototxt"))
	if err != nil || len(files) != 3 {
		t.Fatalf("generated %v, %v", files, err)
	}
	for _, f := range files {
		got, _ := os.ReadFile(f)
		want, err := os.ReadFile(filepath.Join(netsDir, filepath.Base(f)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run python3 caffe/testdata/nets/gen_nets.py", filepath.Base(f))
		}
	}
}
