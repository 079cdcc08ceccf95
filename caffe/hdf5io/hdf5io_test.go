package hdf5io

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden_output.h5")

// value is testdata/gen.py's v(i) for element i of a dataset of that kind.
func value(i int, signed bool) float32 {
	v := (i * 37) % 251
	if signed {
		v -= 100
	}
	return float32(v)
}

func check(t *testing.T, file, name string, d Dataset, shape []int, signed bool) {
	t.Helper()
	if len(d.Shape) != len(shape) {
		t.Fatalf("%s %s: shape %v, want %v", file, name, d.Shape, shape)
	}
	n := 1
	for i := range shape {
		if d.Shape[i] != shape[i] {
			t.Fatalf("%s %s: shape %v, want %v", file, name, d.Shape, shape)
		}
		n *= shape[i]
	}
	if len(d.Data) != n {
		t.Fatalf("%s %s: %d values, want %d", file, name, len(d.Data), n)
	}
	for i, v := range d.Data {
		if want := value(i, signed); v != want {
			t.Fatalf("%s %s: value %d is %v, want %v", file, name, i, v, want)
		}
	}
}

// TestReadH5py reads the files h5py wrote (testdata/gen.py): its default
// format and the newest, contiguous and chunked (gzip, shuffle), integer
// types of 1, 2, 4 and 8 bytes and both float widths.
func TestReadH5py(t *testing.T) {
	type want struct {
		name   string
		shape  []int
		signed bool
	}
	for file, ws := range map[string][]want{
		"default.h5": {{"data", []int{6, 1, 2, 3}, false}, {"label", []int{6}, true}},
		"chunked.h5": {{"data", []int{6, 3, 4}, true}, {"/label", []int{6, 1}, true}, {"weights", []int{6, 2}, true}, {"counts", []int{6}, false}},
		"latest.h5":  {{"data", []int{4, 5}, true}, {"label", []int{4}, true}},
	} {
		names := make([]string, len(ws))
		for i, w := range ws {
			names[i] = w.name
		}
		path := filepath.Join("testdata", file)
		sets, err := Read(path, names)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for i, w := range ws {
			check(t, file, w.name, sets[i], w.shape, w.signed)
		}
	}
}

func TestReadErrors(t *testing.T) {
	path := filepath.Join("testdata", "default.h5")
	_, err := Read(path, []string{"data", "labels"})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `no dataset "labels"`) || !strings.Contains(err.Error(), "data, label") {
		t.Errorf("missing dataset: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "not.h5")
	os.WriteFile(bad, []byte("not an HDF5 file at all, just text"), 0o644)
	if _, err := Read(bad, []string{"data"}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("not HDF5: %v", err)
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing.h5"), []string{"data"}); err == nil || !strings.Contains(err.Error(), "missing.h5") {
		t.Errorf("missing file: %v", err)
	}
}

// TestWriteGolden writes what HDF5Output writes for five rows and compares
// it with testdata/golden_output.h5, which h5py read (testdata/gen.py
// checks it); then reads it back.
func TestWriteGolden(t *testing.T) {
	data := Dataset{Shape: []int{5, 2, 3}, Data: make([]float32, 30)}
	for i := range data.Data {
		data.Data[i] = value(i, true)
	}
	label := Dataset{Shape: []int{5}, Data: make([]float32, 5)}
	for i := range label.Data {
		label.Data[i] = value(i, true)
	}
	path := filepath.Join(t.TempDir(), "out.h5")
	if err := Write(path, []string{"data", "label"}, []Dataset{data, label}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "golden_output.h5")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("written file (%d bytes) differs from %s (%d bytes), which h5py read", len(got), golden, len(want))
	}
	sets, err := Read(path, []string{"data", "label"})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "out.h5", "data", sets[0], []int{5, 2, 3}, true)
	check(t, "out.h5", "label", sets[1], []int{5}, true)

	if err := Write(path, []string{"data"}, []Dataset{{Shape: []int{2}, Data: []float32{1}}}); err == nil || !strings.Contains(err.Error(), `dataset "data"`) {
		t.Errorf("short data: %v", err)
	}
}
