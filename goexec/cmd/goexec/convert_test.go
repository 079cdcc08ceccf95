package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/db"
	"github.com/gocaffe/gocaffe/caffe/modelio"
)

// TestConvertMNISTThenSplitAndRows writes the MNIST test set with Caffe's
// command line (flags after the positional arguments), its mean, then cuts
// it into key ranges and streams one range as the Spark shim does.
func TestConvertMNISTThenSplitAndRows(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mnist_test_leveldb")
	var out, errb bytes.Buffer
	if err := convertMNIST([]string{"-set", "test", path, "-backend=leveldb"}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "wrote 10000 images") || !strings.Contains(out.String(), "leveldb") {
		t.Errorf("convert_mnist said %q", out.String())
	}
	if err := convertMNIST([]string{"-set", "test", path}, &out, &errb); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("converting over an existing database: %v", err)
	}
	out.Reset()
	mean := filepath.Join(dir, "mean.binaryproto")
	if err := computeImageMean([]string{"-backend", "leveldb", path, mean}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if bp, err := modelio.ReadBlobProto(mean); err != nil || len(bp.GetData()) != 784 || !strings.Contains(out.String(), "mean_value channel [0]: 33.") {
		t.Errorf("mean: %v, %d values, printed %q", err, len(bp.GetData()), out.String())
	}

	out.Reset()
	if err := dbSplit([]string{"-backend", "leveldb", "-parts", "3", path}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(out.String())
	if len(lines) != 4 || lines[0] != "10000" || lines[1] != hex.EncodeToString([]byte("00000000")) || lines[2] != hex.EncodeToString([]byte("00003334")) {
		t.Fatalf("db-split printed %q, want 10000 and the keys 00000000, 00003334, 00006668", lines)
	}
	// -shape: the C H W the Data layer takes, before the count.
	out.Reset()
	if err := dbSplit([]string{"-backend", "leveldb", "-shape", "-force-color", path}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(out.String()); len(got) != 5 || strings.Join(got[:4], " ") != "1 28 28 10000" {
		t.Errorf("db-split -shape printed %q, want 1 28 28 (raw Datums ignore force_color), then 10000 and one key", got)
	}
	out.Reset()
	if err := dbRows([]string{"-backend", "leveldb", "-start", lines[2], "-end", lines[3], path}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	// Walk the rows: key, label, c, h, w, encoded, data.
	b := out.Bytes()
	n := 0
	for {
		kl := int32(binary.BigEndian.Uint32(b))
		if kl < 0 {
			break
		}
		key := string(b[4 : 4+kl])
		b = b[4+kl:]
		c, h, w := binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint32(b[12:])
		dl := binary.BigEndian.Uint32(b[17:])
		if n == 0 && key != "00003334" || c != 1 || h != 28 || w != 28 || b[16] != 0 || dl != 784 {
			t.Fatalf("row %d: key %q shape %d×%d×%d encoded %d, %d bytes", n, key, c, h, w, b[16], dl)
		}
		b = b[21+dl:]
		n++
	}
	if n != 3334 {
		t.Errorf("db-rows streamed %d records of range 2, want 3334", n)
	}

	// A corrupt record among few: named by key.
	bad := filepath.Join(dir, "bad_lmdb")
	w, err := db.Create(db.LMDB, bad)
	if err != nil {
		t.Fatal(err)
	}
	w.Put([]byte("k1"), []byte("\xff\xffjunk"))
	w.Close()
	errb.Reset()
	err = dbRows([]string{bad}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), `key "k1"`) || !strings.Contains(errb.String(), `bad record key "k1"`) {
		t.Errorf("corrupt record: %v, stderr %q", err, errb.String())
	}
}
