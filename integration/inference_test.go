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

// TestScalaAPITestAndFeaturesOnDataFrames: GoCaffe.test and
// GoCaffe.features from spark-shell on 2,000 MNIST test rows (two
// executors), with weights from a short `goexec train`.
//   - test returns one row per score; features returns the input's id and
//     label and the blobs, the same rows in the same order, and the argmax of
//     ip2 gives test's accuracy.
//   - Caffe's deploy LeNet (an Input layer, Softmax output, no loss) on a
//     DataFrame whose pixels and labels are in columns the options name:
//     -test's accuracy (argmax of prob against -labelColumn) equals the
//     train_test net's, and -features gives the same predictions.
//   - a missing column and a blob the deploy net lacks are one clear error each.
func TestScalaAPITestAndFeaturesOnDataFrames(t *testing.T) {
	start := time.Now()
	e := setup(t)
	solver := lenetFiles(t, e, 1, 0, 0)
	test := filepath.Join(e.tmp, "mnist", "test")
	dir := filepath.Join(e.tmp, "inference")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Weights: 200 iterations of LeNet in goexec alone (mnist::train).
	trainSolver := filepath.Join(dir, "train_solver.prototxt")
	os.WriteFile(trainSolver, []byte(fmt.Sprintf(`net: %q
base_lr: 0.01 momentum: 0.9 weight_decay: 0.0005 lr_policy: "inv" gamma: 0.0001 power: 0.75
display: 100 max_iter: 200 snapshot_prefix: %q random_seed: 3
`, filepath.Join(e.root, "examples", "lenet_train_test.prototxt"), filepath.Join(dir, "lenet"))), 0o644)
	runGoexec(t, dir, "train", "-solver", trainSolver, "-metrics", "none")
	weights := filepath.Join(dir, "lenet_iter_200.caffemodel")

	// Caffe's deploy LeNet with batch 100, so that -test's 1,000 rows per
	// partition make whole batches and the mean over batches is the mean
	// over rows.
	deploy, err := os.ReadFile(filepath.Join(e.root, "caffe", "testdata", "nets", "lenet.prototxt"))
	if err != nil {
		t.Fatal(err)
	}
	d := strings.Replace(string(deploy), "dim: 64", "dim: 100", 1)
	if d == string(deploy) {
		t.Fatal("caffe/testdata/nets/lenet.prototxt no longer has input dim 64")
	}
	os.WriteFile(filepath.Join(dir, "lenet_deploy.prototxt"), []byte(d), 0o644)
	deploySolver := filepath.Join(dir, "deploy_solver.prototxt")
	os.WriteFile(deploySolver, []byte("net: \"lenet_deploy.prototxt\"\n"), 0o644)

	script := fmt.Sprintf(`
import org.apache.spark.sql.functions._
import com.gocaffe.GoCaffe
def argmax(s: Seq[Float]): Int = s.indices.maxBy(s(_))
val t0 = System.nanoTime()
def step(s: String): Unit = println(f"STEP $s ${(System.nanoTime() - t0) / 1e9}%%.1f s")
val test = spark.read.parquet(%[1]q).limit(2000).withColumn("id", concat(lit("s"), monotonically_increasing_id().cast("string"))).cache()
println("ROWS " + test.count())
val base = Seq("-conf", %[2]q, "-model", %[3]q, "-clusterSize", "2")
GoCaffe.test(spark, base, test).collect().foreach(r => println("SCORE " + r.getString(0) + " " + r.getDouble(1)))
step("test")
val feats = GoCaffe.features(spark, base ++ Seq("-features", "ip2"), test)
println("FCOLUMNS " + feats.columns.mkString(","))
val in = test.select("id", "label").collect().map(r => r.getString(0) + "/" + r.getInt(1)).toSeq
val fr = feats.collect()
println("FROWS " + fr.length)
println("FORDER " + (fr.map(r => r.getString(0) + "/" + r.getInt(1)).toSeq == in))
val fpred = fr.map(r => argmax(r.getSeq[Float](2)))
println("FACC " + fr.indices.count(i => fpred(i) == fr(i).getInt(1)).toDouble / fr.length)
// The deploy net takes the pixels as the train_test net's data layer makes them (scale 1/256).
step("features")
val scaled = udf((b: Array[Byte]) => b.map(x => (x & 0xff) * 0.00390625f))
val dtest = test.select(col("id"), col("label").as("digit"), scaled(col("data")).as("pixels"))
val dbase = Seq("-conf", %[4]q, "-model", %[3]q, "-clusterSize", "2", "-dataColumn", "pixels", "-labelColumn", "digit")
GoCaffe.test(spark, dbase, dtest).collect().foreach(r => println("DSCORE " + r.getString(0) + " " + r.getDouble(1)))
step("deploy test")
val dfeats = GoCaffe.features(spark, dbase ++ Seq("-features", "prob"), dtest)
println("DCOLUMNS " + dfeats.columns.mkString(","))
val dpred = dfeats.select("prob").collect().map(r => argmax(r.getSeq[Float](0)))
println("DSAME " + (dpred.toSeq == fpred.toSeq))
step("deploy features")
def err(what: String, f: => Any): Unit =
  try { f; println(what + " no error") } catch { case e: com.gocaffe.train.GoCaffeException => println(what + " " + e.getMessage) }
err("ERRCOLUMN", GoCaffe.test(spark, Seq("-conf", %[4]q, "-model", %[3]q, "-dataColumn", "pixels", "-labelColumn", "nope"), dtest))
err("ERRBLOB", GoCaffe.test(spark, dbase ++ Seq("-scoresBlob", "nope"), dtest))
System.exit(0)
`, test, solver, weights, deploySolver)
	r := e.shell(t, 9*time.Minute, "local-cluster[2,1,1024]", []string{"--conf",
		"spark.plugins=com.gocaffe.shim.GoCaffePlugin", "--conf", "spark.ui.showConsoleProgress=false"}, script)
	if r.code != 0 {
		t.Fatalf("spark-shell: exit %d; stdout tail:\n%s\noutput tail:\n%s", r.code, tail(r.out, 30), tail(r.combined, 40))
	}
	t.Logf("steps:\n%s", strings.Join(regexp.MustCompile(`(?m)^STEP .*$`).FindAllString(r.out, -1), "\n"))
	line := func(key string) string {
		m := regexp.MustCompile(`(?m)^` + key + ` (.*)$`).FindStringSubmatch(r.out)
		if m == nil {
			t.Fatalf("no %s line; stdout tail:\n%s", key, tail(r.out, 40))
		}
		return m[1]
	}
	scores := map[string]float64{}
	for _, m := range regexp.MustCompile(`(?m)^SCORE (\S+) (\S+)$`).FindAllStringSubmatch(r.out, -1) {
		scores[m[1]], _ = strconv.ParseFloat(m[2], 64)
	}
	if len(scores) != 2 || scores["accuracy"] < 0.85 || scores["loss"] <= 0 {
		t.Errorf("GoCaffe.test rows %v, want accuracy >= 0.85 and loss > 0", scores)
	}
	for key, want := range map[string]string{"FCOLUMNS": "id,label,ip2", "FROWS": "2000", "ROWS": "2000", "FORDER": "true",
		"DCOLUMNS": "id,digit,prob", "DSAME": "true"} {
		if got := line(key); got != want {
			t.Errorf("%s %q, want %q", key, got, want)
		}
	}
	facc, _ := strconv.ParseFloat(line("FACC"), 64)
	if d := facc - scores["accuracy"]; d > 1e-4 || d < -1e-4 {
		t.Errorf("argmax of the features' ip2: accuracy %.5f, GoCaffe.test %.5f", facc, scores["accuracy"])
	}
	dscores := regexp.MustCompile(`(?m)^DSCORE (\S+) (\S+)$`).FindAllStringSubmatch(r.out, -1)
	if len(dscores) != 1 || dscores[0][1] != "accuracy" {
		t.Fatalf("deploy net's GoCaffe.test rows %v, want one: accuracy", dscores)
	}
	dacc, _ := strconv.ParseFloat(dscores[0][2], 64)
	if d := dacc - scores["accuracy"]; d > 1e-4 || d < -1e-4 {
		t.Errorf("deploy net's accuracy %.5f, the train_test net's %.5f", dacc, scores["accuracy"])
	}
	for key, want := range map[string]string{
		"ERRCOLUMN": "-labelColumn 'nope' is not a column of the DataFrame (its columns: id, digit, pixels)",
		"ERRBLOB":   "has no blob 'nope' (-scoresBlob",
	} {
		if got := line(key); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want it to contain %q", key, got, want)
		}
	}
	t.Logf("GoCaffe.test accuracy %.4f, deploy net %.4f, features %.4f; test took %v", scores["accuracy"], dacc, facc,
		time.Since(start).Round(time.Second))
}
