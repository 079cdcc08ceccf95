package data

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/gocaffe/gocaffe/caffe/blob"
)

// tiny returns 3 images of 2×3×3 whose pixel values encode image n, channel
// c, row y and column x as 60n + 20c + 3y + x.
func tiny() *Images {
	im := &Images{N: 3, C: 2, H: 3, W: 3, Pix: make([]uint8, 3*18), Labels: []float32{4, 5, 6}}
	for n := 0; n < 3; n++ {
		for c := 0; c < 2; c++ {
			for y := 0; y < 3; y++ {
				for x := 0; x < 3; x++ {
					im.Pix[((n*2+c)*3+y)*3+x] = uint8(60*n + 20*c + 3*y + x)
				}
			}
		}
	}
	return im
}

func TestSourceCenterCropMeanScaleAndWrap(t *testing.T) {
	tf := Transform{Scale: 0.5, CropSize: 2, MeanValue: []float64{1, 2}}
	s, err := NewSource[float64](tiny(), tf, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	data, label := blob.New[float64](2, 2, 2, 2), blob.New[float64](2)
	top := []*blob.Blob[float64]{data, label}
	if err := s.Next(top); err != nil {
		t.Fatal(err)
	}
	// Centre crop of 3×3 to 2×2 starts at (0,0) ((3-2)/2 = 0).
	want := []float64{
		(0 - 1) * .5, (1 - 1) * .5, (3 - 1) * .5, (4 - 1) * .5, // image 0, channel 0
		(20 - 2) * .5, (21 - 2) * .5, (23 - 2) * .5, (24 - 2) * .5, // channel 1
		(60 - 1) * .5, (61 - 1) * .5, (63 - 1) * .5, (64 - 1) * .5,
		(80 - 2) * .5, (81 - 2) * .5, (83 - 2) * .5, (84 - 2) * .5,
	}
	for i, w := range want {
		if data.Data()[i] != w {
			t.Fatalf("data[%d] = %g, want %g", i, data.Data()[i], w)
		}
	}
	if l := label.Data(); l[0] != 4 || l[1] != 5 {
		t.Fatalf("labels %v", l)
	}
	// The second batch wraps: images 2 and 0.
	if err := s.Next(top); err != nil {
		t.Fatal(err)
	}
	if l := label.Data(); l[0] != 6 || l[1] != 4 || s.Epoch() != 1 || s.Position() != 1 {
		t.Fatalf("after wrap: labels %v, epoch %d, pos %d", l, s.Epoch(), s.Position())
	}
}

func TestSourceRandomCropAndMirrorStayInImage(t *testing.T) {
	im := tiny()
	tf := Transform{CropSize: 2, Mirror: true}
	s, err := NewSource[float32](im, tf, true, 7)
	if err != nil {
		t.Fatal(err)
	}
	data := blob.New[float32](1, 2, 2, 2)
	seenMirror, seenOffsets := false, map[[2]int]bool{}
	for k := 0; k < 60; k++ {
		if err := s.Next([]*blob.Blob[float32]{data}); err != nil {
			t.Fatal(err)
		}
		d := data.Data()
		n := (k % 3)
		// Decode the crop from channel 0's values: v = 60n + 3y + x.
		v0, v1 := int(d[0])-60*n, int(d[1])-60*n
		if v1 == v0-1 {
			seenMirror = true
			v0 = v1
		} else if v1 != v0+1 {
			t.Fatalf("batch %d: row not contiguous: %v", k, d)
		}
		y, x := v0/3, v0%3
		if y > 1 || x > 1 {
			t.Fatalf("batch %d: crop offset (%d,%d) out of range", k, y, x)
		}
		seenOffsets[[2]int{y, x}] = true
		// Channel 1 is the same crop shifted by 20.
		if int(d[4]) != int(d[0])+20 {
			t.Fatalf("batch %d: channels cropped differently: %v", k, d)
		}
	}
	if !seenMirror || len(seenOffsets) != 4 {
		t.Errorf("60 random crops: mirror seen %v, %d of 4 offsets seen", seenMirror, len(seenOffsets))
	}
}

func TestSourceShapeChecks(t *testing.T) {
	if _, err := NewSource[float32](tiny(), Transform{CropSize: 4}, true, 0); err == nil {
		t.Error("crop larger than image accepted")
	}
	if _, err := NewSource[float32](tiny(), Transform{MeanValue: []float64{1, 2, 3}}, true, 0); err == nil {
		t.Error("3 mean values for 2 channels accepted")
	}
	s, _ := NewSource[float32](tiny(), Transform{}, true, 0)
	if err := s.Next([]*blob.Blob[float32]{blob.New[float32](2, 2, 2, 2)}); err == nil {
		t.Error("wrong top shape accepted")
	}
}

func writeParquet(t *testing.T, path string, rec arrow.Record) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestParquetBytesAndFloats(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	dir := t.TempDir()
	// Raw bytes with CaffeOnSpark's shape columns.
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "data", Type: arrow.BinaryTypes.Binary},
		{Name: "label", Type: arrow.PrimitiveTypes.Int64},
		{Name: "channels", Type: arrow.PrimitiveTypes.Int32},
		{Name: "height", Type: arrow.PrimitiveTypes.Int32},
		{Name: "width", Type: arrow.PrimitiveTypes.Int32},
	}, nil)
	b := array.NewRecordBuilder(mem, sch)
	b.Field(0).(*array.BinaryBuilder).AppendValues([][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}}, nil)
	b.Field(1).(*array.Int64Builder).AppendValues([]int64{3, 9}, nil)
	b.Field(2).(*array.Int32Builder).AppendValues([]int32{1, 1}, nil)
	b.Field(3).(*array.Int32Builder).AppendValues([]int32{2, 2}, nil)
	b.Field(4).(*array.Int32Builder).AppendValues([]int32{2, 2}, nil)
	rec := b.NewRecord()
	p1 := filepath.Join(dir, "bytes.parquet")
	writeParquet(t, p1, rec)
	rec.Release()
	b.Release()

	s, err := Open[float32](t.Context(), p1, Options{Transform: Transform{Scale: 2}})
	if err != nil {
		t.Fatal(err)
	}
	data, label := blob.New[float32](2, 1, 2, 2), blob.New[float32](2, 1, 1, 1)
	if err := s.Next([]*blob.Blob[float32]{data, label}); err != nil {
		t.Fatal(err)
	}
	for i, w := range []float32{2, 4, 6, 8, 10, 12, 14, 16} {
		if data.Data()[i] != w {
			t.Fatalf("data %v", data.Data())
		}
	}
	if l := label.Data(); l[0] != 3 || l[1] != 9 {
		t.Fatalf("labels %v", l)
	}

	// Float lists under other column names, shape from the spec.
	sch2 := arrow.NewSchema([]arrow.Field{
		{Name: "features", Type: arrow.ListOf(arrow.PrimitiveTypes.Float32)},
		{Name: "y", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b2 := array.NewRecordBuilder(mem, sch2)
	lb := b2.Field(0).(*array.ListBuilder)
	vb := lb.ValueBuilder().(*array.Float32Builder)
	lb.Append(true)
	vb.AppendValues([]float32{.5, 1.5, 2.5}, nil)
	b2.Field(1).(*array.Float64Builder).Append(1)
	rec2 := b2.NewRecord()
	p2 := filepath.Join(dir, "floats.parquet")
	writeParquet(t, p2, rec2)
	rec2.Release()
	b2.Release()
	im, err := Load(t.Context(), "parquet:"+p2+"?image=features&label=y&shape=3,1,1", [3]int{})
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 1 || im.C != 3 || im.Float[2] != 2.5 || im.Labels[0] != 1 {
		t.Fatalf("float parquet read as %+v", im)
	}
	// A list of uint8 (arrowio's other raw layout), shape from the hint.
	sch3 := arrow.NewSchema([]arrow.Field{
		{Name: "data", Type: arrow.ListOf(arrow.PrimitiveTypes.Uint8)},
		{Name: "label", Type: arrow.PrimitiveTypes.Int32},
	}, nil)
	b3 := array.NewRecordBuilder(mem, sch3)
	lb3 := b3.Field(0).(*array.ListBuilder)
	lb3.Append(true)
	lb3.ValueBuilder().(*array.Uint8Builder).AppendValues([]uint8{9, 8, 7, 6}, nil)
	b3.Field(1).(*array.Int32Builder).Append(2)
	rec3 := b3.NewRecord()
	p3 := filepath.Join(dir, "u8.parquet")
	writeParquet(t, p3, rec3)
	rec3.Release()
	b3.Release()
	im, err = Load(t.Context(), p3, [3]int{1, 2, 2})
	if err != nil {
		t.Fatal(err)
	}
	if im.Pix == nil || im.Pix[3] != 6 || im.Labels[0] != 2 {
		t.Fatalf("uint8-list parquet read as %+v", im)
	}
	if _, err := Load(t.Context(), "parquet:"+p2+"?image=features&label=y&shape=2,1,1", [3]int{}); err == nil {
		t.Error("wrong shape accepted")
	}
	if _, err := Load(t.Context(), "lmdb:/data/mnist_train_lmdb", [3]int{}); !errors.Is(err, ErrNotYet) {
		t.Errorf("lmdb: %v, want ErrNotYet", err)
	}
	mem.AssertSize(t, 0)
}

// grayPNG and grayJPEG encode a 1-row grayscale image.
func grayPNG(t *testing.T, pix ...uint8) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, &image.Gray{Pix: pix, Stride: len(pix), Rect: image.Rect(0, 0, len(pix), 1)}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func grayJPEG(t *testing.T, pix ...uint8) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, &image.Gray{Pix: pix, Stride: len(pix), Rect: image.Rect(0, 0, len(pix), 1)}, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// CaffeOnSpark's ImageDataFrame layout: string labels, an "encoded" flag
// per row; encoded rows (PNG, JPEG) decode with arrowio's decoder.
func TestParquetImageDataFrame(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "label", Type: arrow.BinaryTypes.String},
		{Name: "channels", Type: arrow.PrimitiveTypes.Int32},
		{Name: "height", Type: arrow.PrimitiveTypes.Int32},
		{Name: "width", Type: arrow.PrimitiveTypes.Int32},
		{Name: "encoded", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "data", Type: arrow.BinaryTypes.Binary},
	}, nil)
	write := func(path string, ids []string, encoded []bool, data [][]byte) {
		b := array.NewRecordBuilder(mem, sch)
		defer b.Release()
		n := len(ids)
		b.Field(0).(*array.StringBuilder).AppendValues(ids, nil)
		b.Field(1).(*array.StringBuilder).AppendValues([]string{"4", " 7", "1"}[:n], nil)
		b.Field(2).(*array.Int32Builder).AppendValues([]int32{1, 1, 1}[:n], nil)
		b.Field(3).(*array.Int32Builder).AppendValues([]int32{1, 1, 1}[:n], nil)
		b.Field(4).(*array.Int32Builder).AppendValues([]int32{2, 2, 2}[:n], nil)
		b.Field(5).(*array.BooleanBuilder).AppendValues(encoded, nil)
		b.Field(6).(*array.BinaryBuilder).AppendValues(data, nil)
		rec := b.NewRecord()
		defer rec.Release()
		writeParquet(t, path, rec)
	}
	dir := t.TempDir()
	raw, mixed, bad := filepath.Join(dir, "raw.parquet"), filepath.Join(dir, "mixed.parquet"), filepath.Join(dir, "bad.parquet")
	write(raw, []string{"a", "b"}, []bool{false, false}, [][]byte{{1, 2}, {3, 4}})
	write(mixed, []string{"a", "b", "c"}, []bool{false, true, true}, [][]byte{{1, 2}, grayPNG(t, 200, 50), grayJPEG(t, 128, 128)})
	write(bad, []string{"a", "b"}, []bool{false, true}, [][]byte{{1, 2}, {3, 4}})
	im, err := Load(t.Context(), raw, [3]int{})
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 2 || im.W != 2 || im.Labels[0] != 4 || im.Labels[1] != 7 || !bytes.Equal(im.Pix, []byte{1, 2, 3, 4}) {
		t.Errorf("ImageDataFrame read as %+v", im)
	}
	im, err = Load(t.Context(), mixed, [3]int{1, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 3 || im.C != 1 || im.H != 1 || im.W != 2 || !bytes.Equal(im.Pix[:4], []byte{1, 2, 200, 50}) ||
		im.Pix[4] < 126 || im.Pix[4] > 130 || im.Pix[5] < 126 || im.Pix[5] > 130 || im.Labels[2] != 1 {
		t.Errorf("raw, PNG and JPEG rows read as %+v", im)
	}
	_, err = Load(t.Context(), bad, [3]int{})
	if err == nil || !strings.Contains(err.Error(), `column "data" row 1 (id "b")`) || !strings.Contains(err.Error(), "unknown image format") {
		t.Errorf("bad encoded row: %v, want an error naming row 1, id b and the format", err)
	}
	// An encoded image of another size than the layer's is an error naming it.
	if _, err := Load(t.Context(), mixed, [3]int{1, 2, 2}); err == nil || !strings.Contains(err.Error(), "row 0") {
		t.Errorf("wrong layer shape: %v", err)
	}
}

// A directory of part files (as Spark writes a DataFrame) reads in name
// order; encoded=true marks PNG bytes in a file without an encoded column.
func TestParquetDirectoryAndEncodedOption(t *testing.T) {
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "label", Type: arrow.PrimitiveTypes.Int32},
		{Name: "data", Type: arrow.BinaryTypes.Binary},
	}, nil)
	dir := t.TempDir()
	for i, part := range []string{"part-00001.parquet", "part-00000.parquet"} {
		b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
		b.Field(0).(*array.Int32Builder).Append(int32(1 - i))
		b.Field(1).(*array.BinaryBuilder).Append(grayPNG(t, uint8(10*(1-i)), 5))
		rec := b.NewRecord()
		writeParquet(t, filepath.Join(dir, part), rec)
		rec.Release()
		b.Release()
	}
	if err := os.WriteFile(filepath.Join(dir, "_SUCCESS"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	im, err := Load(t.Context(), "parquet:"+dir+"?encoded=true", [3]int{1, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 2 || !bytes.Equal(im.Pix, []byte{0, 5, 10, 5}) || im.Labels[0] != 0 || im.Labels[1] != 1 {
		t.Errorf("directory read as %+v", im)
	}
	// Every Arrow buffer of the decoding is freed, on success and on error.
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	if im2, err := LoadParquet(t.Context(), dir, ParquetOptions{Hint: [3]int{1, 1, 2}, Encoded: true, Mem: mem}); err != nil || !bytes.Equal(im2.Pix, im.Pix) {
		t.Errorf("LoadParquet: %v, %+v", err, im2)
	}
	if _, err := LoadParquet(t.Context(), dir, ParquetOptions{Hint: [3]int{1, 2, 2}, Encoded: true, Mem: mem}); err == nil {
		t.Error("PNGs of 1×2 read as 2×2")
	}
	mem.AssertSize(t, 0)
	if _, err := Load(t.Context(), "parquet:"+dir, [3]int{1, 1, 2}); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("PNG bytes read as raw pixels: %v", err)
	}
	if _, err := Load(t.Context(), "parquet:"+dir+"?encoded=maybe", [3]int{}); err == nil || !strings.Contains(err.Error(), "encoded=maybe") {
		t.Errorf("encoded=maybe: %v", err)
	}
	if _, err := Load(t.Context(), "parquet:"+t.TempDir(), [3]int{}); err == nil || !strings.Contains(err.Error(), "no .parquet files") {
		t.Errorf("empty directory: %v", err)
	}
}
