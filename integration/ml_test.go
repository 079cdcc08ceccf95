//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSparkMLPipelineFitTransformSaveLoad: a Pipeline with GoCaffeEstimator
// (LeNet, 300 iterations on 20,000 MNIST rows, two ranks) fits and
// transforms the 10,000 test rows (two partitions) from spark-shell: every input column and row
// is kept, prediction/probability and the ip1 blob are added, and the
// predictions are right for most rows. The PipelineModel is saved; a NEW
// Spark application loads it and gives the same predictions and
// probabilities.
func TestSparkMLPipelineFitTransformSaveLoad(t *testing.T) {
	start := time.Now()
	e := setup(t)
	solver := lenetFiles(t, e, 300, 0, 0)
	train, test := filepath.Join(e.tmp, "mnist", "train"), filepath.Join(e.tmp, "mnist", "test")
	model := filepath.Join(e.tmp, "ml", "pipeline")
	preds := [2]string{filepath.Join(e.tmp, "ml", "preds-fit.txt"), filepath.Join(e.tmp, "ml", "preds-load.txt")}
	if err := os.MkdirAll(filepath.Dir(model), 0o755); err != nil {
		t.Fatal(err)
	}
	common := fmt.Sprintf(`
import org.apache.spark.ml.{Pipeline, PipelineModel}
import org.apache.spark.ml.linalg.Vector
import org.apache.spark.sql.functions.lit
val test = spark.read.parquet(%q).withColumn("note", lit("kept"))
def dump(out: org.apache.spark.sql.DataFrame, path: String): Unit = {
  val lines = out.select("label", "prediction", "probability").collect().map { r =>
    r.getInt(0) + " " + r.getDouble(1).toInt + " " + r.getAs[Vector](2).toArray.map(x => f"$x%%.5f").mkString(",")
  }
  java.nio.file.Files.write(java.nio.file.Paths.get(path), (lines.mkString("\n") + "\n").getBytes("UTF-8"))
  println("ROWS " + lines.length)
}
`, test)
	fit := common + fmt.Sprintf(`
val train = spark.read.parquet(%q).limit(20000)
val est = new com.gocaffe.ml.GoCaffeEstimator().setSolver(%q).setScoresBlob("ip2").setApplySoftmax(true)
  .setOutputBlobs(Array("ip1")).setClusterSize(2)
val model = new Pipeline().setStages(Array(est)).fit(train)
val out = model.transform(test)
println("COLUMNS " + out.columns.mkString(","))
println("SCHEMA " + out.schema.map(f => f.name + ":" + f.dataType.simpleString).mkString(","))
println("IP1 " + out.select("ip1").head().getSeq[Float](0).length)
println("NOTES " + out.where("note = 'kept'").count())
dump(out, %q)
model.write.save(%q)
System.exit(0)
`, train, solver, preds[0], model)
	load := common + fmt.Sprintf(`
val model = PipelineModel.load(%q)
dump(model.transform(test), %q)
System.exit(0)
`, model, preds[1])

	plugin := []string{"--conf", "spark.plugins=com.gocaffe.shim.GoCaffePlugin"}
	r := e.shell(t, 6*time.Minute, "local-cluster[2,1,1024]", plugin, fit)
	if r.code != 0 {
		t.Fatalf("fit/transform/save: exit %d; output tail:\n%s", r.code, tail(r.combined, 60))
	}
	want := map[string]string{
		"COLUMNS": "label,data,channels,height,width,note,prediction,probability,ip1",
		"IP1":     "500",
		"NOTES":   "10000",
		"ROWS":    "10000",
	}
	for key, val := range want {
		m := regexp.MustCompile(`(?m)^` + key + ` (.*)$`).FindStringSubmatch(r.out)
		if m == nil || m[1] != val {
			t.Errorf("%s line %q, want %q; stdout tail:\n%s", key, m, val, tail(r.out, 30))
		}
	}
	fitPreds := readPreds(t, preds[0])
	right := 0
	for _, p := range fitPreds {
		if p[0] == p[1] {
			right++
		}
	}
	acc := float64(right) / float64(len(fitPreds))
	if acc < 0.90 {
		t.Errorf("transform's predictions right for %.3f of the 10000 test rows after 300 iterations, want >= 0.90", acc)
	}
	for _, f := range []string{"solver.prototxt", "model.caffemodel", filepath.Join("metadata", "part-00000")} {
		if m, _ := filepath.Glob(filepath.Join(model, "stages", "*", f)); len(m) != 1 {
			t.Errorf("saved pipeline: want one stages/*/%s, found %v", f, m)
		}
	}

	r = e.shell(t, 4*time.Minute, "local-cluster[1,1,1024]", plugin, load)
	if r.code != 0 {
		t.Fatalf("load/transform in a new application: exit %d; output tail:\n%s", r.code, tail(r.combined, 60))
	}
	loadPreds := readPreds(t, preds[1])
	if len(loadPreds) != len(fitPreds) {
		t.Fatalf("loaded model: %d rows, the fitted one %d", len(loadPreds), len(fitPreds))
	}
	diff := 0
	for i := range fitPreds {
		if fitPreds[i] != loadPreds[i] {
			if diff < 5 {
				t.Errorf("row %d: fitted model %q, loaded model %q", i, fitPreds[i], loadPreds[i])
			}
			diff++
		}
	}
	if diff > 0 {
		t.Errorf("%d of %d rows differ between the fitted and the loaded model", diff, len(fitPreds))
	}
	t.Logf("Spark ML pipeline: transform accuracy %.4f on 10000 rows; test took %v", acc, time.Since(start).Round(time.Second))
}

// readPreds reads dump's lines: label, prediction, probabilities (5 decimals).
func readPreds(t *testing.T, path string) [][3]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][3]string
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || strings.Count(f[2], ",") != 9 {
			t.Fatalf("%s line %d: %q is not 'label prediction p0,...,p9'", path, i+1, line)
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			t.Fatalf("%s line %d: prediction %q", path, i+1, f[1])
		}
		out = append(out, [3]string{f[0], f[1], f[2]})
	}
	return out
}

// TestSparkMLTrainValidationSplitTunesBaseLr: TrainValidationSplit over
// GoCaffeEstimator's baseLr (1e-7, which barely moves LeNet in 200
// iterations, and 0.01) fits both, scores each on the validation split
// through transform, and picks 0.01.
func TestSparkMLTrainValidationSplitTunesBaseLr(t *testing.T) {
	start := time.Now()
	e := setup(t)
	solver := lenetFiles(t, e, 200, 0, 0)
	script := fmt.Sprintf(`
import org.apache.spark.ml.tuning.{ParamGridBuilder, TrainValidationSplit}
import org.apache.spark.ml.evaluation.MulticlassClassificationEvaluator
val data = spark.read.parquet(%q).coalesce(1).limit(6000)
val est = new com.gocaffe.ml.GoCaffeEstimator().setSolver(%q).setScoresBlob("ip2").setApplySoftmax(true)
val grid = new ParamGridBuilder().addGrid(est.baseLr, Array(0.01, 1e-7)).build()
val tvs = new TrainValidationSplit().setEstimator(est).setEstimatorParamMaps(grid).setTrainRatio(0.8).setSeed(7)
  .setEvaluator(new MulticlassClassificationEvaluator().setMetricName("accuracy"))
val m = tvs.fit(data)
println("METRICS " + m.validationMetrics.mkString(" "))
println("BEST " + m.bestModel.asInstanceOf[com.gocaffe.ml.GoCaffeModel].getBaseLr)
System.exit(0)
`, filepath.Join(e.tmp, "mnist", "train"), solver)
	r := e.shell(t, 5*time.Minute, "local-cluster[1,1,1024]",
		[]string{"--conf", "spark.plugins=com.gocaffe.shim.GoCaffePlugin"}, script)
	if r.code != 0 {
		t.Fatalf("TrainValidationSplit: exit %d; output tail:\n%s", r.code, tail(r.combined, 60))
	}
	if n := strings.Count(r.out, "GoCaffe: training done at iteration 200"); n != 3 {
		t.Errorf("%d trainings finished, want 3 (one per base_lr, then the best on all the data)", n)
	}
	m := regexp.MustCompile(`(?m)^METRICS (\S+) (\S+)$`).FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("no METRICS line; GoCaffe's lines and the errors:\n%s",
			strings.Join(regexp.MustCompile(`(?m)^.*(GoCaffe|Exception|Caused by).*$`).FindAllString(r.combined, 60), "\n"))
	}
	high, _ := strconv.ParseFloat(m[1], 64)
	low, _ := strconv.ParseFloat(m[2], 64)
	if high < 0.85 || low > 0.5 {
		t.Errorf("validation accuracy %.4f at base_lr 1e-7 and %.4f at 0.01; want <= 0.5 and >= 0.85", low, high)
	}
	if b := regexp.MustCompile(`(?m)^BEST (.*)$`).FindStringSubmatch(r.out); b == nil || b[1] != "0.01" {
		t.Errorf("best model's baseLr %q, want 0.01", b)
	}
	t.Logf("TrainValidationSplit: accuracy %.4f (base_lr 1e-7), %.4f (0.01); test took %v", low, high,
		time.Since(start).Round(time.Second))
}
