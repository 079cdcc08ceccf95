// Package hdf5io reads and writes the HDF5 files of Caffe's HDF5Data and
// HDF5Output layers: datasets of numbers, each read whole as float32 with
// its shape.
//
// It is built on github.com/scigolib/hdf5 (pure Go, no libhdf5): its reader
// covers what h5py writes by default (superblock v0, v2 and v3, object
// headers v1 and v2, compact, contiguous and chunked layouts with gzip) and,
// since v0.13.19, every fixed-point width besides the floats. It gives a
// dataset's dimensions only in its Info() text, which Read parses (the
// exact module version is pinned, and the tests read h5py's files).
package hdf5io

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/scigolib/hdf5"
)

// Dataset is one dataset: its values row-major and its shape.
type Dataset struct {
	Data  []float32
	Shape []int
}

// Rows is the dataset's first dimension.
func (d Dataset) Rows() int {
	if len(d.Shape) == 0 {
		return 0
	}
	return d.Shape[0]
}

// Read reads the named datasets (paths from the root group; a leading "/"
// is optional) of the HDF5 file at path. Any integer or float type is read,
// as float32. Errors name the file and the dataset.
func Read(path string, names []string) ([]Dataset, error) {
	f, found, err := open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make([]Dataset, len(names))
	for i, name := range names {
		d, err := lookup(path, name, found)
		if err != nil {
			return nil, err
		}
		ds, err := readDataset(d)
		if err != nil {
			return nil, fmt.Errorf("HDF5 file %s: dataset %q: %w", path, name, err)
		}
		out[i] = ds
	}
	return out, nil
}

// open opens the file and finds its datasets by path from the root.
func open(path string) (*hdf5.File, map[string]*hdf5.Dataset, error) {
	f, err := hdf5.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("HDF5 file %s: %w", path, err)
	}
	found := map[string]*hdf5.Dataset{}
	f.Walk(func(p string, obj hdf5.Object) {
		if d, ok := obj.(*hdf5.Dataset); ok {
			found[strings.TrimPrefix(p, "/")] = d
		}
	})
	return f, found, nil
}

func lookup(path, name string, found map[string]*hdf5.Dataset) (*hdf5.Dataset, error) {
	d, ok := found[strings.TrimPrefix(name, "/")]
	if !ok {
		have := make([]string, 0, len(found))
		for k := range found {
			have = append(have, k)
		}
		sort.Strings(have)
		return nil, fmt.Errorf("HDF5 file %s: no dataset %q (it has: %s)", path, name, strings.Join(have, ", "))
	}
	return d, nil
}

// ReadList reads an hdf5_data_param.source: HDF5 file paths, one a line
// (blank lines skipped).
func ReadList(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hdf5_data_param.source: %w", err)
	}
	var files []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			files = append(files, l)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("hdf5_data_param.source %s lists no HDF5 file", path)
	}
	return files, nil
}

// dimsRe matches the dataspace in scigolib/hdf5's Info text: "1D array
// [5]", "2D array [3 x 4]", "4D array [2 3 4 5]".
var dimsRe = regexp.MustCompile(`(\d+)D array \[([0-9x ]*)\]`)

// shapeOf is a dataset's shape, from its header only; a type other than an
// integer or a float is an error.
func shapeOf(d *hdf5.Dataset) ([]int, error) {
	info, err := d.Info()
	if err != nil {
		return nil, err
	}
	// Info reads "Dataset: CLASS (size=N bytes), ...".
	if cls := strings.Fields(strings.TrimPrefix(info, "Dataset: ")); len(cls) > 0 && cls[0] != "integer" && cls[0] != "float" {
		return nil, fmt.Errorf("type %s is not a number (any integer or float type is read)", cls[0])
	}
	m := dimsRe.FindStringSubmatch(info)
	if m == nil {
		return nil, fmt.Errorf("not an array of at least one dimension (%s)", info)
	}
	rank, _ := strconv.Atoi(m[1])
	var shape []int
	for _, f := range strings.FieldsFunc(m[2], func(r rune) bool { return r == ' ' || r == 'x' }) {
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("dimension %q in %s", f, info)
		}
		shape = append(shape, v)
	}
	if len(shape) != rank {
		return nil, fmt.Errorf("%d dimensions read for a %dD array (%s)", len(shape), rank, info)
	}
	return shape, nil
}

// Shapes gives the named datasets' shapes from their headers, reading no
// data: what Read would check, for a list of files checked before any is read.
func Shapes(path string, names []string) ([][]int, error) {
	f, found, err := open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make([][]int, len(names))
	for i, name := range names {
		d, err := lookup(path, name, found)
		if err != nil {
			return nil, err
		}
		if out[i], err = shapeOf(d); err != nil {
			return nil, fmt.Errorf("HDF5 file %s: dataset %q: %w", path, name, err)
		}
	}
	return out, nil
}

func readDataset(d *hdf5.Dataset) (Dataset, error) {
	shape, err := shapeOf(d)
	if err != nil {
		return Dataset{}, err
	}
	n := 1
	for _, v := range shape {
		n *= v
	}
	if n == 0 {
		return Dataset{Shape: shape}, nil
	}
	vals, err := d.Read()
	if err != nil {
		return Dataset{}, err
	}
	if len(vals) != n {
		return Dataset{}, fmt.Errorf("%d values for shape %v", len(vals), shape)
	}
	data := make([]float32, n)
	for i, v := range vals {
		data[i] = float32(v)
	}
	return Dataset{Data: data, Shape: shape}, nil
}

// Write writes the datasets as float32 into a new file at path (an
// existing one is replaced), named names[i], as Caffe's HDF5Output does.
func Write(path string, names []string, sets []Dataset) (err error) {
	if len(names) != len(sets) {
		return fmt.Errorf("HDF5 file %s: %d names for %d datasets", path, len(names), len(sets))
	}
	fw, err := hdf5.CreateForWrite(path, hdf5.CreateTruncate)
	if err != nil {
		return fmt.Errorf("HDF5 file %s: %w", path, err)
	}
	defer func() {
		if cerr := fw.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("HDF5 file %s: %w", path, cerr))
		}
	}()
	for i, s := range sets {
		n := 1
		dims := make([]uint64, len(s.Shape))
		for k, v := range s.Shape {
			dims[k] = uint64(v)
			n *= v
		}
		if n != len(s.Data) || n == 0 {
			return fmt.Errorf("HDF5 file %s: dataset %q: %d values for shape %v", path, names[i], len(s.Data), s.Shape)
		}
		dw, err := fw.CreateDataset("/"+strings.TrimPrefix(names[i], "/"), hdf5.Float32, dims)
		if err != nil {
			return fmt.Errorf("HDF5 file %s: dataset %q: %w", path, names[i], err)
		}
		if err := dw.Write(s.Data); err != nil {
			return fmt.Errorf("HDF5 file %s: dataset %q: %w", path, names[i], err)
		}
	}
	return nil
}
