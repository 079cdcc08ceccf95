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

// shell runs a Scala script in spark-shell with the jar on the classpath,
// as a user's Spark program would call GoCaffe's Scala API.
func (e sparkEnv) shell(t *testing.T, timeout time.Duration, master string, sparkArgs []string, script string) result {
	t.Helper()
	path := filepath.Join(e.tmp, fmt.Sprintf("script-%d.scala", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--master", master, "--jars", e.jar,
		"--conf", "spark.executor.extraJavaOptions=-Djava.io.tmpdir=" + e.tmp,
		"--conf", "spark.ui.enabled=false", "--driver-memory", "768m"}
	args = append(append(args, sparkArgs...), "-i", path)
	// Empty input: the REPL ends when the script does not.
	r := e.run(t, timeout, "spark-shell", args, strings.NewReader(""))
	t.Logf("spark-shell %s: exit %d in %v", master, r.code, r.took.Round(time.Second))
	return r
}

// TestScalaAPITrainsOnDataFrames: GoCaffe.train(spark, args, trainDF,
// Some(testDF)) from spark-shell trains on the DataFrames given, not on the
// data layers' sources: the train DataFrame is a 20,000-row subset, so each
// of the two ranks gets 10,000 rows where the source has 60,000. Without
// GoCaffe's plugin configured the call says what to set.
func TestScalaAPITrainsOnDataFrames(t *testing.T) {
	e := setup(t)
	solver := lenetFiles(t, e, 300, 300, 0)
	train, test := filepath.Join(e.tmp, "mnist", "train"), filepath.Join(e.tmp, "mnist", "test")
	model := filepath.Join(e.tmp, "api", "lenet.caffemodel")
	script := func(call string) string {
		return fmt.Sprintf(`
val train = spark.read.parquet(%q).limit(20000)
val test = spark.read.parquet(%q)
val status = try %s catch {
  case e: com.gocaffe.train.GoCaffeException => println("GoCaffe.train failed: " + e.getMessage); 3
}
println(s"GoCaffe.train returned $status")
System.exit(status)
`, train, test, call)
	}
	call := fmt.Sprintf(`com.gocaffe.GoCaffe.train(spark, Seq("-conf", %q, "-model", %q, "-clusterSize", "2"), train, Some(test))`,
		solver, model)

	r := e.shell(t, 8*time.Minute, "local-cluster[2,1,1024]",
		[]string{"--conf", "spark.plugins=com.gocaffe.shim.GoCaffePlugin"}, script(call))
	o := parseTraining(t, r, 300)
	if !strings.Contains(r.out, "data the DataFrame given to GoCaffe.train in 2 partitions") {
		t.Errorf("the driver's first line does not say the data is the DataFrame; stdout tail:\n%s", tail(r.out, 20))
	}
	if !strings.Contains(r.out, "GoCaffe.train returned 0") {
		t.Errorf("no 'GoCaffe.train returned 0' line; stdout tail:\n%s", tail(r.out, 20))
	}
	rows := regexp.MustCompile(`(?m)^GoCaffe: rank (\d+) on executor \S+ \(\S+\): partition of (\d+) rows`).FindAllStringSubmatch(r.out, -1)
	if len(rows) < 2 {
		t.Fatalf("want a partition line per rank; stdout:\n%s", r.out)
	}
	total := 0
	for _, m := range rows[:2] {
		n, _ := strconv.Atoi(m[2])
		total += n
	}
	if total != 20000 {
		t.Errorf("the ranks' partitions hold %d rows, want the train DataFrame's 20000 (the source has 60000)", total)
	}
	if o.accuracy < 0.90 {
		t.Errorf("test accuracy %.4f after 300 iterations, want >= 0.90", o.accuracy)
	}
	t.Logf("Scala API: accuracy %.4f", o.accuracy)

	// Without the plugin the API refuses, naming the setting.
	r = e.shell(t, 3*time.Minute, "local-cluster[1,1,1024]", nil, script(call))
	if r.code != 3 || !strings.Contains(r.out, "spark.plugins=com.gocaffe.shim.GoCaffePlugin") {
		t.Errorf("without the plugin: exit %d, want 3 and a message naming spark.plugins; stdout tail:\n%s", r.code, tail(r.out, 20))
	}
}
