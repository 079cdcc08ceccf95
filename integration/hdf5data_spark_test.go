//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gocaffe/gocaffe/caffe/data"
	"github.com/gocaffe/gocaffe/caffe/hdf5io"
)

// hdf5Rows writes MNIST images [from, from+n) of set to path as Caffe's
// HDF5 users store them: data n×1×28×28 in [0, 1], label n, and target n×2
// (a regression target: the label's two one-hot-like values), plus a
// dataset no top names.
func hdf5Rows(t *testing.T, im *data.Images, from, n int, path string, names []string) {
	t.Helper()
	px := 28 * 28
	d := make([]float32, n*px)
	for i := range d {
		d[i] = float32(im.Pix[from*px+i]) / 255
	}
	lab := append([]float32(nil), im.Labels[from:from+n]...)
	tgt := make([]float32, 2*n)
	for i, l := range lab {
		tgt[2*i], tgt[2*i+1] = l/10, 1-l/10
	}
	sets := map[string]hdf5io.Dataset{
		"data":   {Data: d, Shape: []int{n, 1, 28, 28}},
		"label":  {Data: lab, Shape: []int{n}},
		"target": {Data: tgt, Shape: []int{n, 2}},
		"unused": {Data: make([]float32, n), Shape: []int{n}},
	}
	var out []hdf5io.Dataset
	for _, name := range names {
		out = append(out, sets[name])
	}
	if err := hdf5io.Write(path, names, out); err != nil {
		t.Fatal(err)
	}
}

// Caffe's HDF5Data layer on Spark: a LeNet-like net whose TRAIN layer reads
// three HDF5 files (1,000 MNIST rows, the middle file cut between the two
// ranks) with three tops, one a two-value regression target fed to a
// EuclideanLoss, and whose TEST layer reads a fourth file. Each rank reads
// only its row range. Then one bad input: a file lacking a top's dataset
// fails at the driver, before training, naming the file and the dataset.
func TestHDF5DataOnSpark(t *testing.T) {
	start := time.Now()
	e := setup(t)
	dir := filepath.Join(e.tmp, "hdf5")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mnistDir, err := data.ResolveMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	train, err := data.LoadMNIST(mnistDir, "train")
	if err != nil {
		t.Fatal(err)
	}
	test, err := data.LoadMNIST(mnistDir, "test")
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"data", "label", "target", "unused"}
	var list []string
	from := 0
	for i, n := range []int{400, 350, 250} {
		p := filepath.Join(dir, fmt.Sprintf("train%d.h5", i))
		hdf5Rows(t, train, from, n, p, all)
		list = append(list, p)
		from += n
	}
	os.WriteFile(filepath.Join(dir, "train.txt"), []byte(strings.Join(list, "\n")+"\n"), 0o644)
	hdf5Rows(t, test, 0, 500, filepath.Join(dir, "test0.h5"), all)
	os.WriteFile(filepath.Join(dir, "test.txt"), []byte(filepath.Join(dir, "test0.h5")+"\n"), 0o644)

	run := func(name, master string, iters int) result {
		layer := func(phase, list string, batch int) string {
			return `layer { name: "data" type: "HDF5Data" top: "data" top: "label" top: "target" include { phase: ` + phase + ` }
  hdf5_data_param { source: "` + list + `" batch_size: ` + fmt.Sprint(batch) + ` shuffle: true } }
`
		}
		net := `name: "lenet_hdf5"
` + layer("TRAIN", filepath.Join(dir, "train.txt"), 32) + layer("TEST", filepath.Join(dir, "test.txt"), 50) + `
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 8 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1" inner_product_param { num_output: 64 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "ip3" type: "InnerProduct" bottom: "ip1" top: "ip3" inner_product_param { num_output: 2 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
layer { name: "target_loss" type: "EuclideanLoss" bottom: "ip3" bottom: "target" top: "target_loss" loss_weight: 0.1 }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy" include { phase: TEST } }
`
		solver := `net: "` + filepath.Join(dir, name+".prototxt") + `"
base_lr: 0.01 momentum: 0.9 lr_policy: "fixed" max_iter: ` + fmt.Sprint(iters) + ` display: 50
test_iter: 5 test_interval: ` + fmt.Sprint(iters) + ` test_initialization: false
snapshot_prefix: "` + filepath.Join(dir, name) + `" solver_mode: CPU
`
		os.WriteFile(filepath.Join(dir, name+".prototxt"), []byte(net), 0o644)
		os.WriteFile(filepath.Join(dir, name+"_solver.prototxt"), []byte(solver), 0o644)
		return e.submitWatching(t, 4*time.Minute, master, []string{"--conf", "spark.executor.memory=768m"}, nil,
			"-train", "-conf", filepath.Join(dir, name+"_solver.prototxt"), "-model", filepath.Join(dir, name+".caffemodel"),
			"-clusterSize", map[bool]string{true: "2", false: "1"}[strings.HasPrefix(master, "local-cluster")])
	}

	const iters = 150
	r := run("lenet", "local-cluster[2,1,1024]", iters)
	o := parseTraining(t, r, iters)
	t.Logf("test accuracy %.4f after %d iterations (%v)", o.accuracy, iters, r.took.Round(time.Second))
	if o.accuracy < 0.5 { // chance is 0.1
		t.Errorf("test accuracy %.4f after %d iterations, want >= 0.5", o.accuracy, iters)
	}
	if !strings.Contains(r.out, "target_loss = ") {
		t.Errorf("no target_loss (the two-value top's EuclideanLoss) in the output:\n%s", tail(r.out, 30))
	}
	checkOneRankPerExecutor(t, o, 2)
	if want := "train.txt: 1000 rows in 3 files, 500/500 rows for 2 ranks"; !strings.Contains(r.combined, want) {
		t.Errorf("driver output lacks %q", want)
	}
	// Rows [0, 500) and [500, 1000): rank 0's executor reads train0.h5 and
	// the first 100 rows of train1.h5, rank 1's the rest of train1.h5 and
	// train2.h5, and neither the other's files (no shuffle after the read).
	logs, _ := filepath.Glob(filepath.Join(e.sparkHome, "work", o.app, "*", "stderr"))
	var text string
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		text += string(b)
	}
	reads := regexp.MustCompile(`(?m)HDF5 list \S+/train\.txt: (\S+) (rows \[\d+, \d+\)) on executor (\S+) `).FindAllStringSubmatch(text, -1)
	got := map[string]string{} // file and rows -> executor
	for _, m := range reads {
		got[filepath.Base(m[1])+" "+m[2]] = m[3]
	}
	want := map[string]string{
		"train0.h5 rows [0, 400)":   o.ranks["0"],
		"train1.h5 rows [0, 100)":   o.ranks["0"],
		"train1.h5 rows [100, 350)": o.ranks["1"],
		"train2.h5 rows [0, 250)":   o.ranks["1"],
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("training rows read (file rows -> executor) %v, want %v (ranks on %v)", got, want, o.ranks)
	}
	checkClean(t, filepath.Join(e.sparkHome, "work", o.app), e.tmp)
	rows := 0
	for _, m := range rankRe.FindAllStringSubmatch(r.out, -1) {
		var n int
		fmt.Sscan(m[3], &n)
		rows += n
	}
	if rows != 1000 {
		t.Errorf("ranks' training partitions hold %d rows, want 1000", rows)
	}

	// A listed file that lacks the target dataset: the driver's message
	// names the file and the dataset, and nothing is trained.
	bad := filepath.Join(dir, "no_target.h5")
	hdf5Rows(t, train, 0, 10, bad, []string{"data", "label"})
	os.WriteFile(filepath.Join(dir, "train.txt"), []byte(list[0]+"\n"+bad+"\n"), 0o644)
	r = run("bad", "local[1]", 10)
	msg := driverMessage(t, r)
	if want := "HDF5 file " + bad + `: no dataset "target" (it has: data, label)`; !strings.Contains(msg, want) {
		t.Errorf("driver message lacks %q: %s", want, msg)
	}
	if strings.Contains(r.out, "training done") {
		t.Errorf("training ran despite the bad file")
	}
	t.Logf("TestHDF5DataOnSpark took %v", time.Since(start).Round(time.Second))
}
