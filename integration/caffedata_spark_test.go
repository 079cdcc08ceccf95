//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/db"
)

// Caffe's Data layer on Spark: BVLC Caffe's own lenet_solver and
// lenet_train_test (Data layers, backend LMDB), unchanged but for the paths
// and the iteration count, given to spark-submit. The driver cuts each
// database into key ranges; each rank's task reads only its own range (no
// shuffle after the read) and the driver reports the unusable records.

const (
	caffeSparkIters    = 300
	caffeSparkAccuracy = 0.93
)

// dbRangeRe matches the line each database-reading task logs.
var dbRangeRe = regexp.MustCompile(`GoCaffe: data layer 'mnist': LMDB (\S+) key range (\d) \[([0-9a-f]*), ([0-9a-f]*)\): (\d+) records on executor (\d+), (\d+) unusable`)

// withUnusable copies the LMDB at src to dst with extra records added.
func withUnusable(t *testing.T, src, dst string, extra map[string][]byte) {
	t.Helper()
	in, err := db.Open(db.LMDB, src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := db.Create(db.LMDB, dst)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := in.NewCursor()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	for ; cur.Valid(); err = cur.Next() {
		if err != nil {
			t.Fatal(err)
		}
		if err := out.Put(append([]byte(nil), cur.Key()...), append([]byte(nil), cur.Value()...)); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range extra {
		if err := out.Put([]byte(k), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCaffeDataLayerOnSpark(t *testing.T) {
	start := time.Now()
	e := setup(t)
	root := caffeRoot(t, caffeSparkIters)
	mnist := filepath.Join(root, "examples", "mnist")
	// Five unusable records among the 60,000: one that is no Datum, one
	// whose pixels do not fill its shape, one without pixels (the readers
	// of the key ranges skip them), a corrupt JPEG and a PNG of another
	// size (goexec drops them when it loads the rank's partition).
	short, _ := proto.Marshal(&caffepb.Datum{Channels: proto.Int32(1), Height: proto.Int32(28), Width: proto.Int32(28), Data: make([]byte, 700), Label: proto.Int32(3)})
	empty, _ := proto.Marshal(&caffepb.Datum{Channels: proto.Int32(1), Height: proto.Int32(28), Width: proto.Int32(28), Label: proto.Int32(3)})
	withUnusable(t, filepath.Join(mnist, "mnist_train_lmdb"), filepath.Join(mnist, "mnist_train_mixed_lmdb"), map[string][]byte{
		"00000100a": []byte("\xff\xff\xffnot a datum"),
		"00030000a": short,
		"00059999a": empty,
		"00000200a": corruptJPEGDatum(t),
		"00040000a": pngDatum(t, 32, 32),
	})
	solverPath := filepath.Join(mnist, "lenet_solver.prototxt")
	netPath := filepath.Join(mnist, "lenet_train_test.prototxt")
	for _, f := range []struct {
		path string
		from []string
		to   []string
	}{
		{solverPath, []string{`"examples/mnist/lenet_train_test.prototxt"`}, []string{strconv.Quote(netPath)}},
		{netPath, []string{`"examples/mnist/mnist_train_lmdb"`, `"examples/mnist/mnist_test_lmdb"`},
			[]string{strconv.Quote(filepath.Join(mnist, "mnist_train_mixed_lmdb")), strconv.Quote("file:" + filepath.Join(mnist, "mnist_test_lmdb"))}},
	} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for i := range f.from {
			if !strings.Contains(s, f.from[i]) {
				t.Fatalf("%s lacks %s", f.path, f.from[i])
			}
			s = strings.Replace(s, f.from[i], f.to[i], 1)
		}
		os.WriteFile(f.path, []byte(s), 0o644)
	}
	model := filepath.Join(e.tmp, "model", "lenet.caffemodel")
	// Both databases (written by goexec convert_mnist, and by the same LMDB
	// library extended) are read on the JVM with positioned reads of the
	// pages each key range needs, through Hadoop's FileSystem API, as an
	// hdfs: or s3a: LMDB is (TestCaffeDataCropMeanUnusable has goexec read
	// them through mmap).
	r := e.submitWatching(t, 14*time.Minute, "local-cluster[2,1,2048]",
		[]string{"--conf", "spark.executor.memory=1g", "--conf", "spark.hadoop.gocaffe.lmdb.positioned-reads=true"}, nil,
		"-train", "-conf", solverPath, "-model", model, "-clusterSize", "2")
	o := parseTraining(t, r, caffeSparkIters)
	t.Logf("test accuracy %.4f after %d iterations (%v)", o.accuracy, caffeSparkIters, r.took.Round(time.Second))
	if o.accuracy < caffeSparkAccuracy {
		t.Errorf("test accuracy %.4f after %d iterations, want >= %.2f", o.accuracy, caffeSparkIters, caffeSparkAccuracy)
	}
	checkOneRankPerExecutor(t, o, 2)

	// The driver's summary lines: the unusable records by key.
	for _, want := range []string{
		"GoCaffe: data layer 'mnist': LMDB " + filepath.Join(mnist, "mnist_train_mixed_lmdb") + ": 60005 of 60005 records read in 2 of 2 key ranges, 5 unusable and skipped; first: " +
			`key "00000100a": not a Datum`,
		`key "00030000a": 700 data bytes for 1×28×28`,
		`key "00059999a": no data bytes`,
		`(id "00000200a"): decoding `,
		`(id "00040000a"): image is 32×32, the field wants 28×28`,
		"GoCaffe: data layer 'mnist': LMDB file:" + filepath.Join(mnist, "mnist_test_lmdb") + ": 10000 of 10000 records read in 2 of 2 key ranges, 0 unusable",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("driver output lacks %q:\n%s", want, tail(r.out, 40))
		}
	}
	// Each rank's partition holds the usable records of one range.
	rows := 0
	for _, m := range rankRe.FindAllStringSubmatch(r.out, -1) {
		n, _ := strconv.Atoi(m[3])
		rows += n
	}
	if rows != 60000 {
		t.Errorf("ranks' partitions hold %d rows, want the 60,000 usable training records", rows)
	}

	// Each range was read by the executor of the rank that trained on it:
	// no shuffle moved the records after the read.
	logs, _ := filepath.Glob(filepath.Join(e.sparkHome, "work", o.app, "*", "stderr"))
	readBy := map[string]string{} // train range -> executor
	byPages := 0                  // ranges read with positioned reads
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		byPages += strings.Count(string(b), "pages of 4096 bytes read")
		for _, m := range dbRangeRe.FindAllStringSubmatch(string(b), -1) {
			if strings.HasSuffix(m[1], "mnist_train_mixed_lmdb") {
				readBy[m[2]] = m[6]
			}
		}
	}
	if byPages < 4 {
		t.Errorf("%d key ranges read with positioned reads, want 4 (2 train, 2 test)", byPages)
	}
	if len(readBy) != 2 || readBy["0"] != o.ranks["0"] || readBy["1"] != o.ranks["1"] {
		t.Errorf("training ranges read by executors %v, ranks on %v: want range r read by rank r's executor", readBy, o.ranks)
	}
	checkClean(t, filepath.Join(e.sparkHome, "work", o.app), e.tmp)
	t.Logf("TestCaffeDataLayerOnSpark took %v", time.Since(start).Round(time.Second))
}

// corruptJPEGDatum is an encoded Datum (as Caffe's convert_imageset
// -encoded writes them: no dimensions) whose JPEG stops after its header.
func corruptJPEGDatum(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 28, 28)), nil); err != nil {
		t.Fatal(err)
	}
	d, _ := proto.Marshal(&caffepb.Datum{Encoded: proto.Bool(true), Data: b.Bytes()[:40], Label: proto.Int32(4)})
	return d
}

// pngDatum is an encoded Datum of an h×w gray PNG.
func pngDatum(t *testing.T, h, w int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	d, _ := proto.Marshal(&caffepb.Datum{Encoded: proto.Bool(true), Data: b.Bytes(), Label: proto.Int32(5)})
	return d
}

// tinyLMDB writes 200 raw 1×8×8 Datums (keys %08d; every 20th also holds
// 1,000 float_data values, so that LMDB keeps it on overflow pages) and the
// given unusable records (keys %08dbad, every 50th) to a new LMDB at path.
func tinyLMDB(t *testing.T, path string, bad ...[]byte) {
	t.Helper()
	out, err := db.Create(db.LMDB, path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		px := make([]byte, 64)
		for j := range px {
			px[j] = byte(i * j)
		}
		d := &caffepb.Datum{Channels: proto.Int32(1), Height: proto.Int32(8), Width: proto.Int32(8), Data: px, Label: proto.Int32(int32(i % 2))}
		if i%20 == 0 {
			d.FloatData = make([]float32, 1000)
		}
		v, _ := proto.Marshal(d)
		if err := out.Put([]byte(fmt.Sprintf("%08d", i)), v); err != nil {
			t.Fatal(err)
		}
	}
	for i, v := range bad {
		if err := out.Put([]byte(fmt.Sprintf("%08dbad", 50*i+7)), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCaffeDataCropMeanUnusable: Caffe Data layers with crop_size and a
// mean_file (read by the driver, sent with the partitions) train and test
// through spark-submit, a corrupt JPEG among 201 records is skipped and
// named; a database in which more than 1 % of the records are images
// goexec cannot use (corrupt JPEGs, PNGs of another size) stops training
// after the round that read it, with one message naming the share and the
// first of them by key. The first and last databases are read on the JVM
// with positioned reads through Hadoop's FileSystem API (file: URIs).
func TestCaffeDataCropMeanUnusable(t *testing.T) {
	start := time.Now()
	e := setup(t)
	dir := filepath.Join(e.tmp, "crop_mean")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mean := make([]float32, 64)
	for i := range mean {
		mean[i] = float32(i)
	}
	bp, _ := proto.Marshal(&caffepb.BlobProto{Num: proto.Int32(1), Channels: proto.Int32(1), Height: proto.Int32(8), Width: proto.Int32(8), Data: mean})
	meanFile := filepath.Join(dir, "mean.binaryproto")
	os.WriteFile(meanFile, bp, 0o644)
	driverTmp := []string{"--driver-java-options", "-Djava.io.tmpdir=" + e.tmp}
	transform := `transform_param { crop_size: 6 mean_file: "` + meanFile + `" scale: 0.01 }`
	positioned := []string{"--conf", "spark.hadoop.gocaffe.lmdb.positioned-reads=true"}
	run := func(name, lmdb, transform string, sparkArgs []string) result {
		data := func(phase string) string {
			return `layer { name: "data" type: "Data" top: "data" top: "label" include { phase: ` + phase + ` }
  ` + transform + `
  data_param { source: "` + lmdb + `" backend: LMDB batch_size: 16 } }
`
		}
		net := `name: "tiny"
` + data("TRAIN") + data("TEST") + `layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 6 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
layer { name: "accuracy" type: "Accuracy" bottom: "ip" bottom: "label" top: "accuracy" include { phase: TEST } }
`
		solver := `net: "` + filepath.Join(dir, name+".prototxt") + `"
base_lr: 0.01 lr_policy: "fixed" max_iter: 20 display: 10 test_iter: 2 test_interval: 20 test_initialization: false
snapshot_prefix: "` + filepath.Join(dir, name) + `" solver_mode: CPU
`
		os.WriteFile(filepath.Join(dir, name+".prototxt"), []byte(net), 0o644)
		os.WriteFile(filepath.Join(dir, name+"_solver.prototxt"), []byte(solver), 0o644)
		return e.submitWatching(t, 4*time.Minute, "local[2]", append(sparkArgs, driverTmp...), nil,
			"-train", "-conf", filepath.Join(dir, name+"_solver.prototxt"), "-clusterSize", "1", "-lmdb_partitions", "3")
	}

	// Read on the JVM with positioned reads of the pages each key range
	// needs, through Hadoop's FileSystem API (a file: URI here), cut into 3
	// key ranges from the branch pages.
	lmdb := filepath.Join(dir, "one_bad")
	tinyLMDB(t, lmdb, corruptJPEGDatum(t))
	r := run("one_bad", lmdb, transform, positioned)
	if r.code != 0 || !strings.Contains(r.out, "GoCaffe: test at iteration 20: ") {
		t.Fatalf("training with crop_size and mean_file: exit %d, no test at iteration 20:\n%s", r.code, tail(r.combined, 40))
	}
	if want := "GoCaffe: data layer 'data': LMDB " + lmdb + `: 201 of 201 records read in 3 of 3 key ranges, 1 unusable and skipped; first: column "data" row 8 (id "00000007bad"): decoding`; !strings.Contains(r.out, want) {
		t.Errorf("driver output lacks %q:\n%s", want, tail(r.out, 40))
	}
	for _, l := range strings.Split(r.combined, "\n") {
		if strings.Contains(l, "pages of 4096 bytes read") {
			t.Log(l)
		}
	}
	if n := strings.Count(r.combined, "pages of 4096 bytes read"); n < 3 {
		t.Errorf("%d key ranges read with positioned reads, want 3 or more (train and test):\n%s", n, tail(r.combined, 60))
	}
	if m := rankRe.FindStringSubmatch(r.out); m == nil || m[3] != "200" {
		t.Errorf("rank partition line %v, want 200 rows", m)
	}

	// Read by goexec (mmap) as usual.
	lmdb = filepath.Join(dir, "four_bad")
	tinyLMDB(t, lmdb, corruptJPEGDatum(t), pngDatum(t, 9, 8), corruptJPEGDatum(t), pngDatum(t, 8, 12))
	r = run("four_bad", lmdb, transform, nil)
	msg := driverMessage(t, r)
	for _, want := range []string{"data layer 'data': LMDB " + lmdb + ": 4 of 204 records unusable (at most 1 % may be)",
		`(id "00000007bad"): decoding`, `(id "00000057bad"): image is 9×8, the field wants 8×8`, `(id "00000107bad")`,
		`(id "00000157bad"): image is 8×12`} {
		if !strings.Contains(msg, want) {
			t.Errorf("driver message lacks %q: %s", want, msg)
		}
	}
	if models, _ := filepath.Glob(filepath.Join(dir, "four_bad*.caffemodel")); len(models) > 0 || strings.Contains(r.out, "training done") {
		t.Errorf("training finished despite the unusable share (%v)", models)
	}

	// The LMDB PyPI's lmdb wrote (caffe/db/testdata/pylmdb: five 1×2×3
	// Datums and a 1×64×64 one on an overflow page), read with positioned
	// reads: the big record is read whole and, of another size than the
	// first, is one unusable record of six, too many.
	pylmdb := "file:" + filepath.Join(e.root, "caffe", "db", "testdata", "pylmdb")
	r = run("pylmdb", pylmdb, "", positioned)
	msg = driverMessage(t, r)
	if want := "LMDB " + pylmdb + `: 1 of 6 records unusable (at most 1 % may be); first: column "data" row 5 (id "00000005"): image is 64×64, the field wants 2×3`; !strings.Contains(msg, want) {
		t.Errorf("driver message lacks %q: %s", want, msg)
	}
	t.Logf("TestCaffeDataCropMeanUnusable took %v", time.Since(start).Round(time.Second))
}

// seqFileScript writes 4,000 MNIST test images (an ImageDataFrame Parquet
// of PNG images) as a Hadoop SequenceFile the way CaffeOnSpark's tools do, from a
// Spark program: keys are Java-serialized (id, label) Tuple2s with 32×32 PNG
// values (so -resize has work to do), every tenth a Tuple6 (id, label, 1, 28,
// 28, false) with raw pixels, plus three unusable records (a key of another
// class, a key that is no serialized object, a value that is no image: the
// one goexec drops when it loads the partition).
const seqFileScript = `
import java.io._
import java.awt.image.BufferedImage
import javax.imageio.ImageIO
import org.apache.hadoop.io.BytesWritable
object W extends Serializable {
  def ser(o: AnyRef): Array[Byte] = {
    val b = new ByteArrayOutputStream(); val s = new ObjectOutputStream(b); s.writeObject(o); s.close(); b.toByteArray
  }
  def gray(png: Array[Byte]): BufferedImage = ImageIO.read(new ByteArrayInputStream(png))
  def png32(png: Array[Byte]): Array[Byte] = {
    val dst = new BufferedImage(32, 32, BufferedImage.TYPE_BYTE_GRAY)
    val g = dst.createGraphics()
    g.setRenderingHint(java.awt.RenderingHints.KEY_INTERPOLATION, java.awt.RenderingHints.VALUE_INTERPOLATION_BILINEAR)
    g.drawImage(gray(png), 0, 0, 32, 32, null); g.dispose()
    val out = new ByteArrayOutputStream(); ImageIO.write(dst, "png", out); out.toByteArray
  }
  def raw(png: Array[Byte]): Array[Byte] = {
    val px = new Array[Byte](28 * 28); gray(png).getRaster.getDataElements(0, 0, 28, 28, px); px
  }
}
val rows = spark.read.parquet(%q).rdd.map(r => (r.getAs[String]("id"), r.getAs[String]("label"), r.getAs[Array[Byte]]("data")))
val recs = rows.zipWithIndex.map { case ((id, label, png), i) =>
  val (k, v) =
    if (i %% 10 == 0) (W.ser((id, label, 1, 28, 28, false)), W.raw(png))
    else (W.ser((id, label)), W.png32(png))
  (new BytesWritable(k), new BytesWritable(v))
}
val junk = sc.parallelize(Seq(1, 2, 3), 1).map { i =>
  (new BytesWritable(if (i == 1) W.ser(new java.util.Date(0L)) else if (i == 2) "not java".getBytes else W.ser(("no-image", "3"))),
    new BytesWritable(Array[Byte](1)))
}
recs.union(junk).saveAsSequenceFile(%q)
println("sequence file written")
System.exit(0)
`

// TestCaffeOnSparkSeqImage: CaffeOnSpark's lenet_memory files with
// source_class com.yahoo.ml.caffe.SeqImageDataSource, on a SequenceFile a
// Spark program wrote, with -resize (its PNGs are 32×32, the net takes
// 28×28) and -persistent, on 2 executors.
func TestCaffeOnSparkSeqImage(t *testing.T) {
	start := time.Now()
	e := setup(t)
	const iters = 200
	pq := filepath.Join(e.tmp, "mnist_png")
	convertMNIST(t, e, pq, "-schema", "imagedataframe", "-encoded", "png", "-sets", "test", "-limit", "4000")
	seq := filepath.Join(e.tmp, "mnist_test_seq")
	w := e.shell(t, 5*time.Minute, "local[2]", nil, fmt.Sprintf(seqFileScript, filepath.Join(pq, "test"), seq))
	if !strings.Contains(w.out, "sequence file written") {
		t.Fatalf("the Spark program did not write the SequenceFile (exit %d):\n%s", w.code, tail(w.combined, 40))
	}
	t.Logf("SequenceFile written in %v", w.took.Round(time.Second))

	user := filepath.Join(e.tmp, "user_seq")
	os.MkdirAll(user, 0o755)
	src := filepath.Join(e.root, "examples", "caffeonspark", "lmdb")
	for _, name := range []string{"lenet_memory_solver.prototxt", "lenet_memory_train_test.prototxt"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, r := range [][2]string{
			{`"com.yahoo.ml.caffe.LMDB"`, `"com.yahoo.ml.caffe.SeqImageDataSource"`},
			{"file:/Users/mridul/bigml/demodl/mnist_train_lmdb", "file:" + seq},
			{"file:/Users/mridul/bigml/demodl/mnist_test_lmdb/", "file:" + seq},
			{"max_iter: 2000", "max_iter: " + strconv.Itoa(iters)},
			{"test_interval: 100", "test_interval: " + strconv.Itoa(iters)},
		} {
			s = strings.ReplaceAll(s, r[0], r[1])
		}
		os.WriteFile(filepath.Join(user, name), []byte(s), 0o644)
	}
	model := filepath.Join(e.tmp, "model_seq", "lenet.caffemodel")
	r := e.submitWatching(t, 10*time.Minute, "local-cluster[2,1,2048]",
		[]string{"--conf", "spark.executor.memory=1g"}, nil,
		"-train", "-conf", filepath.Join(user, "lenet_memory_solver.prototxt"), "-model", model, "-clusterSize", "2",
		"-resize", "-persistent")
	o := parseTraining(t, r, iters)
	t.Logf("test accuracy %.4f after %d iterations (%v)", o.accuracy, iters, r.took.Round(time.Second))
	if o.accuracy < 0.90 {
		t.Errorf("test accuracy %.4f after %d iterations on the (training) set, want >= 0.90", o.accuracy, iters)
	}
	checkOneRankPerExecutor(t, o, 2)
	m := regexp.MustCompile(`GoCaffe: data layer 'data': SequenceFile file:` + regexp.QuoteMeta(seq) +
		`: 4003 records read in (\d+) of (\d+) file splits, 3 unusable and skipped; first: (.*)`).FindStringSubmatch(r.out)
	if m == nil || m[1] != m[2] || !strings.Contains(m[3], "java.util.Date") || !strings.Contains(m[3], "StreamCorruptedException") ||
		!strings.Contains(m[3], `(id "no-image"): decoding 1 bytes`) {
		t.Errorf("no summary line naming the 3 unusable of 4003 records; driver output:\n%s", tail(r.out, 40))
	}
	rows := 0
	for _, m := range rankRe.FindAllStringSubmatch(r.out, -1) {
		n, _ := strconv.Atoi(m[3])
		rows += n
	}
	if rows != 4000 {
		t.Errorf("ranks' partitions hold %d rows, want the 4,000 usable records", rows)
	}
	checkClean(t, filepath.Join(e.sparkHome, "work", o.app), e.tmp)
	t.Logf("TestCaffeOnSparkSeqImage took %v", time.Since(start).Round(time.Second))
}
