//go:build integration

package integration

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// bigMLP is a 784-3000-3800-10 MLP on MNIST: 13,794,810 parameters, so its
// weights and momentum history are 110 MB, 0.43 of a 256 MB driver heap (the
// 60 M-parameter MLP of bench/spark_scaling.sh is 480 MB, 0.47 of Spark's
// default 1 GB).
const bigMLP = `name: "BigMLP"
layer { name: "mnist" type: "MemoryData" top: "data" top: "label"
  transform_param { scale: 0.00390625 }
  memory_data_param { source: %q batch_size: %d channels: 1 height: 28 width: 28 } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
  inner_product_param { num_output: 3000 weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.01 } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 3800 weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.01 } } }
layer { name: "relu2" type: "ReLU" bottom: "ip2" top: "ip2" }
layer { name: "ip3" type: "InnerProduct" bottom: "ip2" top: "ip3"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip3" bottom: "label" top: "loss" }
`

const bigMLPParams = 784*3000 + 3000 + 3000*3800 + 3800 + 3800*10 + 10

// bigMLPFiles writes the net (reading source, batch rows per iteration) and
// a solver training it for iters iterations with momentum, and returns the
// solver's path.
func bigMLPFiles(t *testing.T, dir, name, source string, batch, iters int) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	net := filepath.Join(dir, name+"_net.prototxt")
	solver := filepath.Join(dir, name+"_solver.prototxt")
	s := fmt.Sprintf("net: %q\nbase_lr: 0.01\nmomentum: 0.9\nweight_decay: 0.0005\nlr_policy: \"fixed\"\n"+
		"display: 1\nmax_iter: %d\nsnapshot: 0\nsnapshot_prefix: %q\nsolver_mode: CPU\nrandom_seed: 1701\n",
		net, iters, filepath.Join(dir, name))
	for p, text := range map[string]string{net: fmt.Sprintf(bigMLP, source, batch), solver: s} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return solver
}

// readNet parses a .caffemodel; its blobs' float values in order.
func readNet(t *testing.T, path string) [][]float32 {
	t.Helper()
	b, err := os.ReadFile(strings.TrimPrefix(path, "file:"))
	if err != nil {
		t.Fatal(err)
	}
	var n caffepb.NetParameter
	if err := proto.Unmarshal(b, &n); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var blobs [][]float32
	for _, l := range n.GetLayer() {
		for _, bl := range l.GetBlobs() {
			blobs = append(blobs, bl.GetData())
		}
	}
	return blobs
}

// maxDiff is the largest absolute difference between two nets' values.
func maxDiff(t *testing.T, a, b [][]float32) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("nets with %d and %d blobs", len(a), len(b))
	}
	d := 0.0
	for i := range a {
		if len(a[i]) != len(b[i]) {
			t.Fatalf("blob %d: %d and %d values", i, len(a[i]), len(b[i]))
		}
		for j := range a[i] {
			d = math.Max(d, math.Abs(float64(a[i][j])-float64(b[i][j])))
		}
	}
	return d
}

var avgRoundRe = regexp.MustCompile(`(?m)^GoCaffe: round (\d+) done: 1 iterations in ([0-9.]+) s .*driver: average ([0-9.]+) s`)

// TestSparkAverageBigNetSmallDriver: average mode trains a net whose model
// (weights and momentum history) is 0.43 of the driver's heap, as the
// 60 M-parameter MLP's is of Spark's default 1 GB: the driver keeps the
// model between rounds in files that the ranks fetch from its file server,
// never in its heap. A driver that held the previous model, its broadcast
// and the new average in memory ran out of heap in round 2.
//
// The heap is 256 MB; spark.testing.memory lets Spark's memory manager
// start with it (Spark refuses a heap under 450 MB) and sizes its storage
// pool as for a 512 MB heap.
//
// It also checks that the result is the ranks' average: with τ = 1 and each
// rank's batch its whole partition (32 of 64 MNIST rows), the average of
// the two ranks' momentum-SGD steps from the same weights and history is
// one step on all 64 rows, so two rounds must give what goexec trains
// alone with batch 64, within float rounding; a model trained on 32 rows
// is far from it.
func TestSparkAverageBigNetSmallDriver(t *testing.T) {
	start := time.Now()
	e := setup(t)
	data := filepath.Join(e.tmp, "mnist64")
	half := filepath.Join(e.tmp, "mnist32")
	for dir, n := range map[string]string{data: "64", half: "32"} {
		cmd := exec.Command("go", "run", "./tools/mnist2parquet", "-out", dir, "-files", "1", "-limit", n, "-sets", "train")
		cmd.Dir = e.root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mnist2parquet: %v\n%s", err, out)
		}
	}
	const iters = 2
	dir := filepath.Join(e.tmp, "bigmlp")
	solver := bigMLPFiles(t, dir, "spark", "parquet:"+filepath.Join(data, "train"), 32, iters)
	model := filepath.Join(dir, "model", "bigmlp.caffemodel")
	r := e.submitWatching(t, 6*time.Minute, "local-cluster[2,1,1024]",
		[]string{"--driver-memory", "256m", "--conf", "spark.testing.memory=536870912", "--conf", "spark.executor.memory=1024m",
			"--conf", "spark.gocaffe.sync.mode=average", "--conf", "spark.gocaffe.sync.roundIterations=1"},
		nil, "-train", "-conf", solver, "-model", model, "-clusterSize", "2")
	if r.code != 0 {
		t.Fatalf("training a %d-parameter net in average mode with a 256 MB driver: exit %d; output tail:\n%s",
			bigMLPParams, r.code, tail(r.combined, 60))
	}
	rounds := avgRoundRe.FindAllStringSubmatch(r.combined, -1)
	for _, m := range rounds {
		t.Logf("round %s: %s s, driver's average %s s", m[1], m[2], m[3])
	}
	if len(rounds) != iters {
		t.Fatalf("%d averaging rounds done, want %d; output tail:\n%s", len(rounds), iters, tail(r.combined, 40))
	}
	d := doneRe.FindStringSubmatch(r.out)
	if d == nil {
		t.Fatalf("no 'training done' line; stdout:\n%s", r.out)
	}
	got := readNet(t, d[2])

	// The .solverstate beside it: the iteration, the model's path, and one
	// momentum history blob per weights blob.
	sb, err := os.ReadFile(strings.TrimPrefix(d[3], "file:"))
	if err != nil {
		t.Fatal(err)
	}
	var st caffepb.SolverState
	if err := proto.Unmarshal(sb, &st); err != nil {
		t.Fatalf("%s: %v", d[3], err)
	}
	if st.GetIter() != iters || !strings.HasSuffix(st.GetLearnedNet(), "bigmlp.caffemodel") || len(st.GetHistory()) != len(got) {
		t.Errorf("solver state: iter %d, learned_net %q, %d history blobs; want %d, the model's path, %d",
			st.GetIter(), st.GetLearnedNet(), len(st.GetHistory()), iters, len(got))
	}

	// goexec alone: all 64 rows per iteration, and 32 rows per iteration.
	ref := func(name, source string, batch int) [][]float32 {
		s := bigMLPFiles(t, dir, name, source, batch, iters)
		runGoexec(t, dir, "train", "-solver", s, "-metrics", "none")
		return readNet(t, filepath.Join(dir, fmt.Sprintf("%s_iter_%d.caffemodel", name, iters)))
	}
	full := ref("all64", "parquet:"+filepath.Join(data, "train"), 64)
	other := ref("first32", "parquet:"+filepath.Join(half, "train"), 32)
	dAvg, dHalf := maxDiff(t, got, full), maxDiff(t, other, full)
	t.Logf("largest difference from one rank on 64 rows: Spark's average %.3g, one rank on 32 rows %.3g", dAvg, dHalf)
	if dHalf == 0 || dAvg > dHalf/100 {
		t.Errorf("Spark's averaged model differs from one rank training on all 64 rows by up to %.3g, "+
			"want below 1/100 of what 32 rows alone give (%.3g)", dAvg, dHalf)
	}
	checkClean(t, e.tmp)
	t.Logf("TestSparkAverageBigNetSmallDriver took %v", time.Since(start).Round(time.Second))
}
