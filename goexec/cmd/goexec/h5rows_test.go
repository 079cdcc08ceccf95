package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/hdf5io"
)

// h5py's fixtures (caffe/hdf5io/testdata/gen.py): value i of a flattened
// dataset is (i*37) % 251, minus 100 for signed types.
func h5Value(i int, signed bool) float32 {
	v := (i * 37) % 251
	if signed {
		v -= 100
	}
	return float32(v)
}

func h5Fixture(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "..", "caffe", "hdf5io", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestH5SplitThenRows checks a list as the Spark shim's driver does and
// streams one row range as an executor does, on files h5py wrote (uint8
// data, int64 labels, read as float); a relative path in the list is taken
// from the working directory, as Caffe does.
func TestH5SplitThenRows(t *testing.T) {
	def := h5Fixture(t, "default.h5")
	list := filepath.Join(t.TempDir(), "list.txt")
	rel := filepath.Join("..", "..", "..", "caffe", "hdf5io", "testdata", "default.h5")
	os.WriteFile(list, []byte(def+"\n\n"+rel+"\n"), 0o644)
	var out, errb bytes.Buffer
	if err := h5Split([]string{"-tops", "data,label", list}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if want := "data\t1 2 3\nlabel\t\n6\t" + def + "\n6\t" + def + "\n"; out.String() != want {
		t.Errorf("h5-split printed\n%q, want\n%q", out.String(), want)
	}

	out.Reset()
	if err := h5Rows([]string{"-tops", "label,data", "-start", "2", "-count", "3", def}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var want []float32
	for r := 2; r < 5; r++ {
		want = append(want, h5Value(r, true)) // label, int64
		for j := 0; j < 6; j++ {
			want = append(want, h5Value(r*6+j, false)) // data, uint8
		}
	}
	b := out.Bytes()
	if len(b) != 4*len(want) {
		t.Fatalf("h5-rows wrote %d bytes, want %d", len(b), 4*len(want))
	}
	for i, w := range want {
		if g := math.Float32frombits(binary.BigEndian.Uint32(b[4*i:])); g != w {
			t.Fatalf("value %d: %v, want %v", i, g, w)
		}
	}
	if err := h5Rows([]string{"-tops", "data", "-start", "4", "-count", "3", def}, &out, &errb); err == nil ||
		!strings.Contains(err.Error(), "rows [4, 7) asked for, it has 6") {
		t.Errorf("rows past the end: %v", err)
	}
}

// TestH5SplitErrors: each bad input is one error naming the file (and the
// list or the dataset), found from the headers before any row is read.
func TestH5SplitErrors(t *testing.T) {
	dir := t.TempDir()
	uneven := filepath.Join(dir, "uneven.h5")
	if err := hdf5io.Write(uneven, []string{"data", "label"}, []hdf5io.Dataset{
		{Data: make([]float32, 6), Shape: []int{3, 2}}, {Data: make([]float32, 4), Shape: []int{4}}}); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.h5")
	for _, c := range []struct {
		name, tops string
		files      []string
		want       string
	}{
		{"missing file", "data,label", []string{h5Fixture(t, "default.h5"), missing}, "HDF5 file " + missing + " (listed in "},
		{"missing dataset", "data,weights", []string{h5Fixture(t, "default.h5")},
			"HDF5 file " + h5Fixture(t, "default.h5") + `: no dataset "weights" (it has: data, label)`},
		{"first axes differ", "data,label", []string{uneven},
			"HDF5 file " + uneven + `: dataset "label" has 4 rows, dataset "data" 3 (all tops share the first axis)`},
		{"not a number", "data,label", []string{h5Fixture(t, "strings.h5")},
			"HDF5 file " + h5Fixture(t, "strings.h5") + `: dataset "label": type string is not a number`},
		{"row shapes differ", "data,label", []string{h5Fixture(t, "default.h5"), h5Fixture(t, "latest.h5")},
			"HDF5 file " + h5Fixture(t, "latest.h5") + `: dataset "data" has rows of shape [5], the first file's (` +
				h5Fixture(t, "default.h5") + ") [1 2 3]"},
		{"empty list", "data", nil, "lists no HDF5 file"},
	} {
		list := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".txt")
		os.WriteFile(list, []byte(strings.Join(c.files, "\n")), 0o644)
		var out, errb bytes.Buffer
		err := h5Split([]string{"-tops", c.tops, list}, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
		if out.Len() != 0 {
			t.Errorf("%s: printed %q besides the error", c.name, out.String())
		}
	}
}
