package layers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/hdf5io"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
)

// h5Fixture is caffe/hdf5io's h5py-written file: data (6×1×2×3 uint8),
// label (6 int64), value i = (i*37)%251 (minus 100 for label).
func h5Fixture(name string) string {
	p, _ := filepath.Abs(filepath.Join("..", "hdf5io", "testdata", name))
	return p
}

func writeList(t *testing.T, files ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(p, []byte(strings.Join(files, "\n")+"\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHDF5Data(t *testing.T) {
	list := writeList(t, h5Fixture("default.h5"), h5Fixture("latest.h5"))
	// latest.h5's data rows are 5 values, default.h5's 6: the second file
	// is refused when reached, naming it.
	text := `type: "HDF5Data" top: "data" top: "label" hdf5_data_param { source: "` + list + `" batch_size: 4 }`
	l, top := forward(t, text, nil, 2)
	if got := top[0].Shape(); len(got) != 4 || got[0] != 4 || got[1] != 1 || got[2] != 2 || got[3] != 3 {
		t.Fatalf("data top shape %v, want [4 1 2 3]", got)
	}
	want := make([]float64, 24)
	for i := range want {
		want[i] = float64((i * 37) % 251)
	}
	layertest.Near(t, "first batch", top[0].Data(), want, 0)
	layertest.Near(t, "first labels", top[1].Data(), []float64{-100, -63, -26, 11}, 0)
	err := l.Forward(nil, top) // rows 4, 5 of default.h5, then latest.h5
	wantErr(t, "second file's rows", err, "latest.h5")

	// One file: wraps to its first row.
	one := writeList(t, h5Fixture("default.h5"))
	l, top = forward(t, `type: "HDF5Data" top: "data" top: "label" hdf5_data_param { source: "`+one+`" batch_size: 4 }`, nil, 2)
	if err := l.Forward(nil, top); err != nil {
		t.Fatal(err)
	}
	layertest.Near(t, "wrapped labels", top[1].Data(), []float64{(4*37)%251 - 100, (5*37)%251 - 100, -100, -63}, 0)

	wantErr(t, "no such top dataset", setupErr(t, `type: "HDF5Data" top: "data" top: "labels" hdf5_data_param { source: "`+one+`" batch_size: 2 }`, nil, 2), `no dataset "labels"`)
	wantErr(t, "missing list", setupErr(t, `type: "HDF5Data" top: "data" hdf5_data_param { source: "/nonexistent/list.txt" batch_size: 2 }`, nil, 1), "list.txt")
	wantErr(t, "empty list", setupErr(t, `type: "HDF5Data" top: "data" hdf5_data_param { source: "`+writeList(t)+`" batch_size: 2 }`, nil, 1), "no HDF5 file")
	wantErr(t, "no batch", setupErr(t, `type: "HDF5Data" top: "data" hdf5_data_param { source: "`+one+`" }`, nil, 1), "batch_size")
	// Tops of different row counts in one file.
	uneven := filepath.Join(t.TempDir(), "uneven.h5")
	if err := hdf5io.Write(uneven, []string{"data", "label"}, []hdf5io.Dataset{
		{Shape: []int{3, 2}, Data: make([]float32, 6)}, {Shape: []int{2}, Data: make([]float32, 2)}}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "uneven rows", setupErr(t, `type: "HDF5Data" top: "data" top: "label" hdf5_data_param { source: "`+writeList(t, uneven)+`" batch_size: 2 }`, nil, 2), "share the first dimension")
}

func TestHDF5DataShuffle(t *testing.T) {
	one := writeList(t, h5Fixture("default.h5"))
	l, top := forward(t, `type: "HDF5Data" top: "data" top: "label" hdf5_data_param { source: "`+one+`" batch_size: 6 shuffle: true }`, nil, 2)
	seen := map[float64]bool{}
	for _, v := range top[1].Data() {
		seen[v] = true
	}
	if len(seen) != 6 {
		t.Errorf("a shuffled pass over 6 rows gave labels %v, want each row once", top[1].Data())
	}
	// Data rows follow their labels.
	for i, lab := range top[1].Data() {
		r := -1
		for k := 0; k < 6; k++ {
			if float64((k*37)%251-100) == lab {
				r = k
			}
		}
		if top[0].Data()[i*6] != float64((r*6*37)%251) {
			t.Fatalf("row %d: label %v but data from another row", i, lab)
		}
	}
	_ = l
}

func TestHDF5Output(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.h5")
	text := `type: "HDF5Output" hdf5_output_param { file_name: "` + path + `" }`
	data, label := gauss(1, 2, 3), gauss(2, 2)
	l, _ := forward(t, text, bl(data, label), 0)
	if err := l.Forward(bl(data, label), nil); err != nil {
		t.Fatal(err)
	}
	sets, err := hdf5io.Read(path, []string{"data", "label"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sets[0].Shape) != 2 || sets[0].Shape[0] != 4 || sets[0].Shape[1] != 3 || sets[1].Shape[0] != 4 {
		t.Fatalf("after two batches of 2: shapes %v %v, want [4 3] [4]", sets[0].Shape, sets[1].Shape)
	}
	for i, v := range sets[0].Data {
		if want := float32(data.Data()[i%6]); v != want {
			t.Fatalf("data value %d: %v, want %v", i, v, want)
		}
	}
	wantErr(t, "no file name", setupErr(t, `type: "HDF5Output"`, bl(data, label), 0), "file_name")
	wantErr(t, "unwritable", setupErr(t, `type: "HDF5Output" hdf5_output_param { file_name: "/nonexistent/dir/out.h5" }`, bl(data, label), 0), "/nonexistent/dir/out.h5")
}
