//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gocaffe/gocaffe/caffe/hdf5io"
)

var (
	ldbPlanRe  = regexp.MustCompile(`GoCaffe: data layer 'data': LevelDB \S+: 2 key ranges cut from MANIFEST-\d+, tables per range: (\d+)/(\d+) of (\d+) table files`)
	ldbRangeRe = regexp.MustCompile(`GoCaffe: data layer 'data': LevelDB \S+ key range (\d) \[[0-9a-f]*, [0-9a-f]*\): (\d+) records on executor (\S+), (\d+) unusable, in \d+ ms \(files read: ([^;]+);`)
	h5CopyRe   = regexp.MustCompile(`GoCaffe: data layer 'data': HDF5 list \S+: copied \S+/(test\d\.h5) \(\d+ bytes\) to executor (\S+)`)
)

// Databases and HDF5 files on a remote Hadoop file system, read through
// Hadoop's FileSystem API as an hdfs: or s3a: path is (file: URIs with
// spark.hadoop.gocaffe.remote-reads=true): a TRAIN Data layer on a LevelDB
// written by plyvel (tables on several levels, overlapping level-0 tables,
// overwrites, deletes, last writes in the log) cut into 2 key ranges from
// its MANIFEST, each executor copying only the tables its range overlaps;
// a TEST HDF5Data layer over three files, each executor copying only the
// files of its row range. The whole database's 2529 records (what plyvel
// reads) are read once in all.
func TestRemoteLevelDBAndHDF5OnSpark(t *testing.T) {
	start := time.Now()
	e := setup(t)
	dir := filepath.Join(e.tmp, "remote")
	ldb := filepath.Join(dir, "ldb")
	if err := os.MkdirAll(ldb, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(e.root, "caffe", "db", "testdata", "plyvel_ranges")
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	tables := 0
	for _, f := range ents {
		b, err := os.ReadFile(filepath.Join(src, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(ldb, f.Name()), b, 0o644)
		if strings.HasSuffix(f.Name(), ".ldb") {
			tables++
		}
	}
	// Three HDF5 files of 60, 40 and 100 rows: rank 0's rows [0, 100) are
	// test0.h5 and test1.h5, rank 1's test2.h5.
	var list []string
	for i, n := range []int{60, 40, 100} {
		d := make([]float32, n*64)
		lab := make([]float32, n)
		for r := range lab {
			lab[r] = float32((r + i) % 5)
			for j := 0; j < 64; j++ {
				d[r*64+j] = float32((r*7+j*3+i)%13) / 13
			}
		}
		p := filepath.Join(dir, fmt.Sprintf("test%d.h5", i))
		if err := hdf5io.Write(p, []string{"data", "label"}, []hdf5io.Dataset{
			{Data: d, Shape: []int{n, 1, 8, 8}}, {Data: lab, Shape: []int{n}}}); err != nil {
			t.Fatal(err)
		}
		list = append(list, "file:"+p)
	}
	os.WriteFile(filepath.Join(dir, "test.txt"), []byte(strings.Join(list, "\n")+"\n"), 0o644)

	net := `name: "remote"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { scale: 0.00390625 } data_param { source: "file:` + ldb + `" backend: LEVELDB batch_size: 16 } }
layer { name: "data" type: "HDF5Data" top: "data" top: "label" include { phase: TEST }
  hdf5_data_param { source: "file:` + filepath.Join(dir, "test.txt") + `" batch_size: 20 } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 5 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
layer { name: "accuracy" type: "Accuracy" bottom: "ip" bottom: "label" top: "accuracy" include { phase: TEST } }
`
	const iters = 20
	solver := `net: "` + filepath.Join(dir, "net.prototxt") + `"
base_lr: 0.01 momentum: 0.9 lr_policy: "fixed" max_iter: ` + strconv.Itoa(iters) + ` display: 10
test_iter: 5 test_interval: ` + strconv.Itoa(iters) + ` test_initialization: false
snapshot_prefix: "` + filepath.Join(dir, "remote") + `" solver_mode: CPU
`
	os.WriteFile(filepath.Join(dir, "net.prototxt"), []byte(net), 0o644)
	os.WriteFile(filepath.Join(dir, "solver.prototxt"), []byte(solver), 0o644)
	r := e.submitWatching(t, 4*time.Minute, "local-cluster[2,1,1024]",
		[]string{"--conf", "spark.executor.memory=768m", "--conf", "spark.hadoop.gocaffe.remote-reads=true",
			// Files over 4 KiB: the driver checks their headers from a prefix.
			"--conf", "spark.hadoop.gocaffe.hdf5.header-bytes=4096"}, nil,
		"-train", "-conf", filepath.Join(dir, "solver.prototxt"), "-model", filepath.Join(dir, "remote.caffemodel"),
		"-clusterSize", "2")
	o := parseTraining(t, r, iters)
	checkOneRankPerExecutor(t, o, 2)

	// The driver's plan: 2 ranges, each needing fewer than all tables.
	m := ldbPlanRe.FindStringSubmatch(r.combined)
	if m == nil {
		t.Fatalf("no LevelDB plan line in the driver's output:\n%s", tail(r.combined, 40))
	}
	t.Log(m[0])
	if a, b, n := m[1], m[2], m[3]; n != strconv.Itoa(tables) || a == n || b == n {
		t.Errorf("tables per range %s/%s of %s, want each range fewer than all %d", a, b, n, tables)
	}
	logs, _ := filepath.Glob(filepath.Join(e.sparkHome, "work", o.app, "*", "stderr"))
	var text string
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		text += string(b)
	}
	// Each range read once (a retried task would read it again), on the
	// executor of its rank, from fewer files than the database has.
	ranges := map[string]string{}
	records := 0
	for _, m := range ldbRangeRe.FindAllStringSubmatch(text, -1) {
		if _, dup := ranges[m[1]]; dup {
			continue
		}
		ranges[m[1]] = m[3]
		t.Log(m[0])
		n, _ := strconv.Atoi(m[2])
		records += n
		files := strings.Split(m[5], ",")
		read := 0
		for _, f := range files {
			if strings.HasSuffix(f, ".ldb") {
				read++
			}
		}
		if read >= tables || !strings.Contains(m[5], ".log") {
			t.Errorf("key range %s read files %v: want fewer than all %d tables, and the log", m[1], files, tables)
		}
		if m[4] != "0" {
			t.Errorf("key range %s: %s unusable records", m[1], m[4])
		}
	}
	if len(ranges) != 2 || ranges["0"] == ranges["1"] || records != 2529 {
		t.Errorf("LevelDB ranges read %v (%d records), want ranges 0 and 1 on the 2 executors, 2529 records (plyvel's count)",
			ranges, records)
	}
	if want := "records read in 2 of 2 key ranges, 0 unusable"; !strings.Contains(r.combined, "2529 "+want) {
		t.Errorf("driver output lacks %q", "2529 "+want)
	}
	// HDF5: each executor copied only the files of its rows.
	copies := map[string][]string{} // executor -> files
	for _, m := range h5CopyRe.FindAllStringSubmatch(text, -1) {
		copies[m[2]] = append(copies[m[2]], m[1])
	}
	for ex := range copies {
		sort.Strings(copies[ex])
		copies[ex] = slices.Compact(copies[ex])
	}
	// The TEST partitions need not land on the executors in rank order:
	// one executor copies rows [0, 100)'s files, the other rows [100, 200)'s.
	var shares []string
	for _, files := range copies {
		shares = append(shares, strings.Join(files, "+"))
	}
	sort.Strings(shares)
	if fmt.Sprint(shares) != "[test0.h5+test1.h5 test2.h5]" {
		t.Errorf("HDF5 files copied (executor -> files) %v, want test0.h5 and test1.h5 on one executor, test2.h5 on the other",
			copies)
	}
	if m := regexp.MustCompile(`test\.txt: headers of \d of 3 files read from their first 4096 bytes.*`).FindString(r.combined); m == "" {
		t.Errorf("driver output lacks the HDF5 header-check line")
	} else {
		t.Log(m)
	}
	if !strings.Contains(r.combined, "test.txt: 200 rows in 3 files, 100/100 rows for 2 ranks") {
		t.Errorf("driver output lacks the HDF5 split line:\n%s", tail(r.combined, 40))
	}
	checkClean(t, filepath.Join(e.sparkHome, "work", o.app), e.tmp)
	t.Logf("TestRemoteLevelDBAndHDF5OnSpark took %v", time.Since(start).Round(time.Second))
}
