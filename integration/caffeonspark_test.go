//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// CaffeOnSpark users' files work unchanged (issue 7): the LeNet solvers and
// nets of examples/caffeonspark/, written as CaffeOnSpark's data/lenet_*
// files are (MemoryData + com.yahoo.ml.caffe.ImageDataFrame, CoSData +
// com.yahoo.ml.caffe.DataFrameSource, solver_mode GPU and all), train
// through spark-submit on MNIST DataFrames in CaffeOnSpark's schemas
// (tools/mnist2parquet) with no edit but the data paths.
const (
	// cosIterations is the examples' max_iter; the tests check the run
	// stops there.
	cosIterations = 500
	// cosAccuracy is the bar on the 10,000 test images after 500
	// iterations on 2 ranks (global batch 128). Measured 0.9767 (CoSData)
	// and 0.9790 (ImageDataFrame, PNG) on the 2-core CI machine.
	cosAccuracy = 0.95
)

// convertMNIST runs tools/mnist2parquet (2 part files per set) into dir.
func convertMNIST(t *testing.T, e sparkEnv, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"run", "./tools/mnist2parquet", "-out", dir, "-files", "2"}, args...)...)
	cmd.Dir = e.root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mnist2parquet %v: %v\n%s", args, err, out)
	}
}

// userFiles copies examples/caffeonspark/lenet_<style>_solver.prototxt and
// its net into a fresh directory, replacing only the data path prefix from
// (as the example writes it) with to, the way a user points the files at
// their data; it returns the solver's path.
func userFiles(t *testing.T, e sparkEnv, style, from, to string) string {
	t.Helper()
	dir := filepath.Join(e.tmp, "user_"+style)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(e.root, "examples", "caffeonspark")
	for _, name := range []string{"lenet_" + style + "_solver.prototxt", "lenet_" + style + "_train_test.prototxt"} {
		text, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		out := strings.ReplaceAll(string(text), from, to)
		if strings.HasSuffix(name, "_train_test.prototxt") && strings.Count(string(text), from) != 2 {
			t.Fatalf("%s: %d sources under %s, want 2 (TRAIN and TEST)", name, strings.Count(string(text), from), from)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "lenet_"+style+"_solver.prototxt")
}

// trainUserFiles runs the user's solver through spark-submit on 2
// executors of 1 core and checks the run and its accuracy.
func trainUserFiles(t *testing.T, e sparkEnv, solver string) {
	t.Helper()
	model := filepath.Join(e.tmp, "model", "lenet.caffemodel")
	r := e.submitWatching(t, 6*time.Minute, "local-cluster[2,1,2048]",
		[]string{"--conf", "spark.executor.memory=1g"},
		nil, "-train", "-conf", solver, "-model", model, "-clusterSize", "2")
	o := parseTraining(t, r, cosIterations)
	t.Logf("test accuracy %.4f after %d iterations (%v)", o.accuracy, cosIterations, r.took.Round(time.Second))
	if o.accuracy < cosAccuracy {
		t.Errorf("test accuracy %.4f after %d iterations, want >= %.2f", o.accuracy, cosIterations, cosAccuracy)
	}
	checkOneRankPerExecutor(t, o, 2)
	checkClean(t, filepath.Join(e.sparkHome, "work", o.app), e.tmp)
}

// TestCaffeOnSparkImageDataFramePNG: lenet_memory_* (MemoryData layers,
// source_class com.yahoo.ml.caffe.ImageDataFrame, dataframe_column_select)
// over an ImageDataFrame of PNG-encoded images (encoded = true), decoded in
// goexec.
func TestCaffeOnSparkImageDataFramePNG(t *testing.T) {
	e := setup(t)
	data := filepath.Join(e.tmp, "mnist_dataframe")
	convertMNIST(t, e, data, "-schema", "imagedataframe", "-encoded", "png")
	solver := userFiles(t, e, "memory", "file:/tmp/mnist_dataframe", "file:"+data)
	trainUserFiles(t, e, solver)
}

// TestCaffeOnSparkDataFrameSource: lenet_cos_* (CoSData layers, source_class
// com.yahoo.ml.caffe.DataFrameSource, a RAW_IMAGE top with its own
// transform_param and a STRING label top) over a CoSData DataFrame.
func TestCaffeOnSparkDataFrameSource(t *testing.T) {
	e := setup(t)
	data := filepath.Join(e.tmp, "mnist_cos_dataframe")
	convertMNIST(t, e, data, "-schema", "cosdata", "-label", "string")
	solver := userFiles(t, e, "cos", "file:/tmp/mnist_cos_dataframe", "file:"+data)
	trainUserFiles(t, e, solver)
}

// writeCoSParquet writes rows of a CoSData DataFrame (id, label string,
// data 784 raw bytes) to path; labels[i] is row i's label.
func writeCoSParquet(t *testing.T, path string, labels []string) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "label", Type: arrow.BinaryTypes.String},
		{Name: "data", Type: arrow.BinaryTypes.Binary},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	pix := make([]byte, 28*28)
	for i, l := range labels {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("sample-%03d", i))
		b.Field(1).(*array.StringBuilder).Append(l)
		pix[i%len(pix)] = 255
		b.Field(2).(*array.BinaryBuilder).Append(pix)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, f, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// driverMessage returns the runner's one error line of a failed run.
func driverMessage(t *testing.T, r result) string {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit 0, want a failure; output tail:\n%s", tail(r.combined, 40))
	}
	for _, l := range strings.Split(r.combined, "\n") {
		if strings.HasPrefix(l, "GoCaffeRunner: ") {
			t.Logf("driver: %s", l)
			return l
		}
	}
	t.Fatalf("no 'GoCaffeRunner: ' line; output tail:\n%s", tail(r.combined, 40))
	return ""
}

// TestCaffeOnSparkBadInput: a CoSData DataFrame whose STRING label is not a
// number fails with goexec's message naming the row and the value, on the
// driver; a CaffeOnSpark source class GoCaffe does not read yet fails up
// front with a "not yet" naming the class, and an unknown class says so.
func TestCaffeOnSparkBadInput(t *testing.T) {
	e := setup(t)
	driverTmp := []string{"--driver-java-options", "-Djava.io.tmpdir=" + e.tmp}

	t.Run("non-integer string label", func(t *testing.T) {
		data := filepath.Join(e.tmp, "bad_labels")
		labels := make([]string, 200)
		for i := range labels {
			labels[i] = strconv.Itoa(i % 10)
		}
		const badRow = 137
		labels[badRow] = "seven"
		writeCoSParquet(t, filepath.Join(data, "train", "part-00000.parquet"), labels)
		writeCoSParquet(t, filepath.Join(data, "test", "part-00000.parquet"), labels[:100])
		solver := userFiles(t, e, "cos", "file:/tmp/mnist_cos_dataframe", "file:"+data)
		r := e.submitWatching(t, 4*time.Minute, "local[2]", driverTmp, nil, "-train", "-conf", solver, "-clusterSize", "1")
		// The driver's one-line message carries goexec's: the column, the
		// row in the partition (one partition of one file here), the
		// sample's id and the value.
		msg := driverMessage(t, r)
		for _, want := range []string{"refused its input", `layer "data"`,
			fmt.Sprintf(`column "label" row %d (id "sample-%03d"): bad value "seven": not a number`, badRow, badRow)} {
			if !strings.Contains(msg, want) {
				t.Errorf("driver message lacks %q: %s", want, msg)
			}
		}
		if strings.Contains(r.combined, "retrying GoCaffe round") {
			t.Error("the round was retried despite the bad input")
		}
		if strings.Contains(r.out, "GoCaffe: iteration") {
			t.Error("training started despite the bad label")
		}
	})

	for _, tc := range []struct{ class, want string }{
		// The LMDB source is supported: a database that is not there is named.
		{"com.yahoo.ml.caffe.LMDB", "no_such_lmdb/train/ does not exist"},
		{"com.example.MyDataSource", "data layer 'data': unknown source_class com.example.MyDataSource"},
	} {
		t.Run(tc.class, func(t *testing.T) {
			solver := userFiles(t, e, "memory", "file:/tmp/mnist_dataframe", "file:"+filepath.Join(e.tmp, "no_such_lmdb"))
			net := filepath.Join(filepath.Dir(solver), "lenet_memory_train_test.prototxt")
			text, err := os.ReadFile(net)
			if err != nil {
				t.Fatal(err)
			}
			text = []byte(strings.ReplaceAll(string(text), "com.yahoo.ml.caffe.ImageDataFrame", tc.class))
			if err := os.WriteFile(net, text, 0o644); err != nil {
				t.Fatal(err)
			}
			r := e.submitWatching(t, 4*time.Minute, "local[2]", driverTmp, nil, "-train", "-conf", solver, "-clusterSize", "1")
			if msg := driverMessage(t, r); !strings.Contains(msg, tc.want) {
				t.Errorf("driver message lacks %q: %s", tc.want, msg)
			}
			if strings.Contains(r.out, "GoCaffe: iteration") {
				t.Error("training started")
			}
		})
	}
	checkClean(t, e.tmp)
}
