package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

const v1Net = "../../../integration/testdata/lenet_v1_train_test.prototxt"

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runPrepareTest(args ...string) (stdout, stderr []byte, err error) {
	var o, e bytes.Buffer
	err = prepare(args, &o, &e)
	return o.Bytes(), e.Bytes(), err
}

func TestPrepareListNets(t *testing.T) {
	dir := t.TempDir()
	s := writeFile(t, dir, "s.prototxt", "train_net: \"a.prototxt\"\ntest_net: \"b.prototxt\"\ntest_net: \"a.prototxt\"\nmax_iter: 10\n")
	out, _, err := runPrepareTest("-solver", s, "-list-nets")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got != "a.prototxt\nb.prototxt\n" {
		t.Errorf("-list-nets printed %q", got)
	}
}

// A V1 net (layers { type: MEMORY_DATA }) and a V0 solver_type come back
// upgraded, with the net inlined.
func TestPrepareUpgradesV1Net(t *testing.T) {
	dir := t.TempDir()
	s := writeFile(t, dir, "s.prototxt", "net: \"lenet_v1.prototxt\"\nmax_iter: 10\nsolver_type: NESTEROV\n")
	out, stderr, err := runPrepareTest("-solver", s, "-solver-name", "hdfs://nn/s.prototxt",
		"-net", "lenet_v1.prototxt\t"+v1Net+"\thdfs://nn/lenet_v1.prototxt")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	sp := &caffepb.SolverParameter{}
	if err := proto.Unmarshal(out, sp); err != nil {
		t.Fatal(err)
	}
	if sp.Net != nil || sp.NetParam == nil {
		t.Fatalf("net not inlined: net=%q net_param=%v", sp.GetNet(), sp.NetParam != nil)
	}
	if sp.GetType() != "Nesterov" {
		t.Errorf("solver type %q, want Nesterov (upgraded from solver_type)", sp.GetType())
	}
	n := sp.GetNetParam()
	if len(n.GetLayers()) != 0 || len(n.GetLayer()) != 11 {
		t.Fatalf("got %d V1 layers and %d layers, want 0 and 11", len(n.GetLayers()), len(n.GetLayer()))
	}
	d := n.GetLayer()[0]
	if d.GetType() != "MemoryData" || d.GetMemoryDataParam().GetSource() != "PARQUET_TRAIN" ||
		d.GetMemoryDataParam().GetBatchSize() != 64 || d.GetTransformParam().GetScale() != 0.00390625 {
		t.Errorf("data layer upgraded to %v", d)
	}
	c := n.GetLayer()[2]
	if c.GetType() != "Convolution" || len(c.GetParam()) != 2 || c.GetParam()[1].GetLrMult() != 2 {
		t.Errorf("conv1 upgraded to %v", c)
	}
}

// Errors name the file the caller gave (not the local copy) and line:column.
func TestPrepareErrors(t *testing.T) {
	dir := t.TempDir()
	s := writeFile(t, dir, "s.prototxt", "net: \"n.prototxt\"\nmax_iter: 10\n")
	bad := writeFile(t, dir, "bad", "name: \"x\"\nlayer {\n  nmae: \"y\"\n}\n")
	_, _, err := runPrepareTest("-solver", s, "-net", "n.prototxt\t"+bad+"\thdfs://nn/dir/n.prototxt")
	if err == nil || !strings.Contains(err.Error(), "hdfs://nn/dir/n.prototxt:3:") {
		t.Errorf("bad net: error %v, want one naming hdfs://nn/dir/n.prototxt:3:", err)
	}
	_, _, err = runPrepareTest("-solver", s)
	if err == nil || !strings.Contains(err.Error(), `"n.prototxt"`) {
		t.Errorf("missing net: error %v, want one naming n.prototxt", err)
	}
	badSolver := writeFile(t, dir, "bs", "max_iter: 10\nbase_lr: x\n")
	_, _, err = runPrepareTest("-solver", badSolver, "-solver-name", "file:/s.prototxt", "-list-nets")
	if err == nil || !strings.Contains(err.Error(), "file:/s.prototxt:2:") {
		t.Errorf("bad solver: error %v, want one naming file:/s.prototxt:2:", err)
	}
	if _, _, err := runPrepareTest("-solver", s, "-net", "only-two\tfields"); err == nil {
		t.Error("malformed -net accepted")
	}
}
