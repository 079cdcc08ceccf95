//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// featureRow is one row of -features output.
type featureRow struct {
	id     string
	values map[string][]float32
}

// readParquetDir reads every part-*.parquet file under dir (Spark's output)
// into rows, keeping the given list<float> columns.
func readParquetDir(t *testing.T, dir string, cols ...string) []featureRow {
	t.Helper()
	parts, _ := filepath.Glob(filepath.Join(dir, "part-*.parquet"))
	if len(parts) == 0 {
		t.Fatalf("no part-*.parquet files in %s", dir)
	}
	var rows []featureRow
	for _, p := range parts {
		tbl := readParquet(t, p)
		rd := array.NewTableReader(tbl, 1<<16)
		for rd.Next() {
			rec := rd.RecordBatch()
			ids := columnOf(t, rec, "SampleID").(*array.String)
			base := len(rows)
			for i := 0; i < ids.Len(); i++ {
				rows = append(rows, featureRow{id: ids.Value(i), values: map[string][]float32{}})
			}
			for _, c := range cols {
				l := columnOf(t, rec, c).(*array.List)
				vals := l.ListValues().(*array.Float32).Float32Values()
				offs := l.Offsets()
				for i := 0; i < l.Len(); i++ {
					rows[base+i].values[c] = append([]float32(nil), vals[offs[i]:offs[i+1]]...)
				}
			}
		}
		rd.Release()
		tbl.Release()
	}
	return rows
}

func readParquet(t *testing.T, path string) arrow.Table {
	t.Helper()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.NewGoAllocator())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tbl
}

func columnOf(t *testing.T, rec arrow.RecordBatch, name string) arrow.Array {
	t.Helper()
	idx := rec.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("output has no column %q (schema %v)", name, rec.Schema())
	}
	return rec.Column(idx[0])
}

// idLabels writes the MNIST test set in CaffeOnSpark's ImageDataFrame
// schema (id, label string, ..., data) under e.tmp/mnist-idf and returns
// each id's label.
func idLabels(t *testing.T, e sparkEnv) map[string]int {
	t.Helper()
	dir := filepath.Join(e.tmp, "mnist-idf")
	cmd := exec.Command("go", "run", "./tools/mnist2parquet", "-out", dir, "-schema", "imagedataframe", "-sets", "test",
		"-files", "2")
	cmd.Dir = e.root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mnist2parquet: %v\n%s", err, out)
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "test", "*.parquet"))
	labels := map[string]int{}
	for _, p := range parts {
		tbl := readParquet(t, p)
		rd := array.NewTableReader(tbl, 1<<16)
		for rd.Next() {
			ids := columnOf(t, rd.RecordBatch(), "id").(*array.String)
			ls := columnOf(t, rd.RecordBatch(), "label").(*array.String)
			for i := 0; i < ids.Len(); i++ {
				l, err := strconv.Atoi(ls.Value(i))
				if err != nil {
					t.Fatalf("%s: label %q", p, ls.Value(i))
				}
				labels[ids.Value(i)] = l
			}
		}
		rd.Release()
		tbl.Release()
	}
	if len(labels) != 10000 {
		t.Fatalf("ImageDataFrame test set has %d distinct ids, want 10000", len(labels))
	}
	return labels
}

// variantSolver writes a copy of the LeNet solver beside solver, named
// name_solver.prototxt, whose net is edit(the LeNet net), and returns its path.
func variantSolver(t *testing.T, solver, name string, edit func(t *testing.T, net string) string) string {
	t.Helper()
	base := filepath.Dir(solver)
	net, err := os.ReadFile(filepath.Join(base, "lenet_train_test.prototxt"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.ReadFile(solver)
	if err != nil {
		t.Fatal(err)
	}
	sv := strings.Replace(string(s), `net: "lenet_train_test.prototxt"`, `net: "`+name+`.prototxt"`, 1)
	if sv == string(s) {
		t.Fatal("the LeNet solver names no lenet_train_test.prototxt")
	}
	out := filepath.Join(base, name+"_solver.prototxt")
	for file, text := range map[string]string{name + ".prototxt": edit(t, string(net)), name + "_solver.prototxt": sv} {
		if err := os.WriteFile(filepath.Join(base, file), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// imageDataFrameSolver: the LeNet solver with its test data the
// ImageDataFrame Parquet in dir.
func imageDataFrameSolver(t *testing.T, solver, dir string) string {
	return variantSolver(t, solver, "lenet_idf", func(t *testing.T, net string) string {
		re := regexp.MustCompile(`source: "parquet:[^"]*/test"`)
		if !re.MatchString(net) {
			t.Fatal("the LeNet net has no parquet test source")
		}
		return re.ReplaceAllLiteralString(net, `source: "parquet:`+dir+`"`)
	})
}

// readJSONDir reads Spark's JSON-lines output (part-*.json) under dir.
func readJSONDir(t *testing.T, dir string, cols ...string) []featureRow {
	t.Helper()
	parts, _ := filepath.Glob(filepath.Join(dir, "part-*.json"))
	if len(parts) == 0 {
		t.Fatalf("no part-*.json files in %s", dir)
	}
	var rows []featureRow
	for _, p := range parts {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: %v in %q", p, err, sc.Text())
			}
			r := featureRow{values: map[string][]float32{}}
			if err := json.Unmarshal(m["SampleID"], &r.id); err != nil {
				t.Fatalf("%s: SampleID: %v in %q", p, err, sc.Text())
			}
			for _, c := range cols {
				var v []float32
				if err := json.Unmarshal(m[c], &v); err != nil {
					t.Fatalf("%s: column %s: %v in %q", p, c, err, sc.Text())
				}
				r.values[c] = v
			}
			rows = append(rows, r)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return rows
}

// testLabelCounts reads the MNIST test set's labels (the Parquet the test
// net reads) and counts each class.
func testLabelCounts(t *testing.T, dir string) map[int]int {
	t.Helper()
	parts, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	counts := map[int]int{}
	for _, p := range parts {
		tbl := readParquet(t, p)
		rd := array.NewTableReader(tbl, 1<<16)
		for rd.Next() {
			col := columnOf(t, rd.RecordBatch(), "label")
			for i := 0; i < col.Len(); i++ {
				switch a := col.(type) {
				case *array.Int32:
					counts[int(a.Value(i))]++
				case *array.Int64:
					counts[int(a.Value(i))]++
				default:
					t.Fatalf("%s: label column of type %s", p, col.DataType())
				}
			}
		}
		rd.Release()
		tbl.Release()
	}
	return counts
}

// checkFeatures: one row per test image (the label histogram is the test
// set's), unique SampleIDs, vectors of the blobs' sizes, and the output
// layer's argmax agreeing with the label on at least 90 % of the rows;
// returns that agreement.
func checkFeatures(t *testing.T, what string, rows []featureRow, sizes map[string]int, want map[int]int) float64 {
	t.Helper()
	if len(rows) != 10000 {
		t.Errorf("%s: %d rows, want 10000 (one per MNIST test image)", what, len(rows))
	}
	ids := map[string]bool{}
	got := map[int]int{}
	right := 0
	for _, r := range rows {
		if r.id == "" || ids[r.id] {
			t.Fatalf("%s: SampleID %q empty or repeated", what, r.id)
		}
		ids[r.id] = true
		for c, n := range sizes {
			if len(r.values[c]) != n {
				t.Fatalf("%s: row %s: %s has %d values, want %d", what, r.id, c, len(r.values[c]), n)
			}
		}
		label := int(r.values["label"][0])
		got[label]++
		best := 0
		for k, v := range r.values["ip2"] {
			if v > r.values["ip2"][best] {
				best = k
			}
		}
		if best == label {
			right++
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d rows with label %d, the test set has %d", what, got[k], k, n)
		}
	}
	acc := float64(right) / float64(max(1, len(rows)))
	t.Logf("%s: %d rows, argmax(ip2) = label on %.4f", what, len(rows), acc)
	if acc < 0.9 {
		t.Errorf("%s: argmax(ip2) agrees with the label on %.4f of the rows, want >= 0.90", what, acc)
	}
	return acc
}

// TestFeaturesLeNet: a short -train followed by -features in the same
// application (Parquet output), then -features alone on the trained model
// with -devices 1 (JSON output, the test set as a CaffeOnSpark ImageDataFrame
// whose id column gives the SampleIDs), on 2 executors; then -test -output.
func TestFeaturesLeNet(t *testing.T) {
	e := setup(t)
	const iters = 300
	solver := lenetFiles(t, e, iters, iters, 0)
	model := filepath.Join(e.tmp, "model", "lenet.caffemodel")
	pq := filepath.Join(e.tmp, "features-parquet")
	master := "local-cluster[2,1,1024]"
	sparkArgs := []string{"--conf", "spark.executor.memory=1024m"}
	r := e.submit(t, 8*time.Minute, master, sparkArgs,
		"-train", "-conf", solver, "-model", model, "-clusterSize", "2",
		"-features", "ip2,ip1", "-label", "label", "-output", pq, "-outputFormat", "parquet")
	if r.code != 0 {
		t.Fatalf("-train -features: exit %d; output tail:\n%s", r.code, tail(r.combined, 80))
	}
	for _, l := range strings.Split(r.out, "\n") {
		if strings.HasPrefix(l, "GoCaffe: ") && !strings.HasPrefix(l, "GoCaffe: iteration") {
			t.Log(l)
		}
	}
	if !strings.Contains(r.out, "GoCaffe: features of 10000 samples written to") {
		t.Errorf("no 'features of 10000 samples written' line; stdout:\n%s", r.out)
	}
	want := testLabelCounts(t, filepath.Join(e.tmp, "mnist", "test"))
	checkFeatures(t, "parquet", readParquetDir(t, pq, "ip2", "ip1", "label"),
		map[string]int{"ip2": 10, "ip1": 500, "label": 1}, want)

	// -features alone, on the test set in CaffeOnSpark's ImageDataFrame
	// schema: its id column becomes the SampleID.
	ids := idLabels(t, e)
	idfSolver := imageDataFrameSolver(t, solver, filepath.Join(e.tmp, "mnist-idf", "test"))
	js := filepath.Join(e.tmp, "features-json")
	r = e.submit(t, 6*time.Minute, master, sparkArgs,
		"-features", "ip2", "-label", "label", "-conf", idfSolver, "-model", model, "-clusterSize", "2",
		"-output", js, "-devices", "1")
	if r.code != 0 {
		t.Fatalf("-features -devices 1: exit %d; output tail:\n%s", r.code, tail(r.combined, 80))
	}
	if !strings.Contains(r.out, "GoCaffe: -devices 1: distributed training computes on the executors' CPU cores") {
		t.Errorf("-devices 1: no line saying the CPU is used; stdout:\n%s", r.out)
	}
	rows := readJSONDir(t, js, "ip2", "label")
	jsonAcc := checkFeatures(t, "json", rows, map[string]int{"ip2": 10, "label": 1}, want)
	wrong := 0
	for _, x := range rows {
		if l, ok := ids[x.id]; !ok || float32(l) != x.values["label"][0] {
			wrong++
		}
	}
	if wrong > 0 {
		t.Errorf("json: %d of %d rows have a SampleID that is not the id of an image with their label", wrong, len(rows))
	}

	// -test writes its result to -output as CaffeOnSpark does: one line per
	// output blob, "name: mean". Its accuracy is the features' agreement.
	res := filepath.Join(e.tmp, "test-result.txt")
	r = e.submit(t, 4*time.Minute, "local[1]", nil, "-test", "-conf", solver, "-model", model, "-output", res)
	if r.code != 0 {
		t.Fatalf("-test -output: exit %d; output tail:\n%s", r.code, tail(r.combined, 40))
	}
	text, err := os.ReadFile(res)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "accuracy: ") || !strings.HasPrefix(lines[1], "loss: ") {
		t.Fatalf("-test -output wrote %q, want 'accuracy: A' and 'loss: L' lines", text)
	}
	acc, err := strconv.ParseFloat(strings.TrimPrefix(lines[0], "accuracy: "), 64)
	if err != nil || math.Abs(acc-jsonAcc) > 1e-4 {
		t.Errorf("-test accuracy %q, the features' argmax agreed on %.4f", lines[0], jsonAcc)
	}

	// Bad -features input is reported before any work, all of it at once:
	// an existing -output and a blob the test net lacks (listing its blobs).
	r = e.submit(t, 4*time.Minute, "local[1]", nil, "-train", "-conf", solver, "-features", "ip2,fc7",
		"-output", js, "-model", filepath.Join(e.tmp, "unused.caffemodel"))
	for _, w := range []string{"-output " + js, "exists", "no blob 'fc7'", "its blobs: data, label, conv1, pool1"} {
		if r.code != 1 || !strings.Contains(r.combined, w) {
			t.Errorf("bad -features input: exit %d, want 1 and %q; output tail:\n%s", r.code, w, tail(r.combined, 20))
		}
	}
	if strings.Contains(r.out, "GoCaffe: iteration") {
		t.Error("bad -features input: training ran before the check")
	}

	// A blob the driver cannot rule out (a layer included in the TEST phase
	// only for a stage the net state lacks) fails on the executors, with
	// goexec's message naming the blob.
	staged := variantSolver(t, solver, "lenet_staged", func(t *testing.T, net string) string {
		return net + `layer { name: "staged" type: "ReLU" bottom: "ip2" top: "staged" include { phase: TEST stage: "extra" } }` + "\n"
	})
	r = e.submit(t, 4*time.Minute, "local[1]", nil, "-features", "ip2,staged", "-conf", staged, "-model", model,
		"-output", filepath.Join(e.tmp, "features-staged"))
	for _, w := range []string{"GoCaffeRunner: feature extraction", "refused its input", `no blob "staged"`, "its blobs: "} {
		if r.code != 1 || !strings.Contains(r.combined, w) {
			t.Errorf("blob missing in goexec's net: exit %d, want 1 and %q; output tail:\n%s", r.code, w, tail(r.combined, 30))
		}
	}
	checkClean(t, e.tmp)
}
