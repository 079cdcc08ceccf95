package arrowio

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// checkedMem returns a checked allocator that fails the test if anything
// is still allocated when the test ends.
func checkedMem(t testing.TB) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// column builders: each appends one value per row.
type colFn func(b array.Builder, row int)

type testCol struct {
	name string
	typ  arrow.DataType
	fn   colFn
}

// makeRecord builds a record batch of rows rows from the column functions.
func makeRecord(t testing.TB, mem memory.Allocator, rows int, cols ...testCol) arrow.RecordBatch {
	t.Helper()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.typ, Nullable: true}
	}
	rb := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer rb.Release()
	for r := 0; r < rows; r++ {
		for i, c := range cols {
			c.fn(rb.Field(i), r)
		}
	}
	return rb.NewRecordBatch()
}

// stream writes the batches as one Arrow IPC stream and releases them.
func stream(t testing.TB, mem memory.Allocator, recs ...arrow.RecordBatch) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(recs[0].Schema()), ipc.WithAllocator(mem))
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatalf("ipc write: %v", err)
		}
		r.Release()
	}
	if err := w.Close(); err != nil {
		t.Fatalf("ipc close: %v", err)
	}
	return buf.Bytes()
}

// read decodes an IPC stream, failing the test on error.
func read(t testing.TB, mem memory.Allocator, data []byte, spec Spec) *Dataset {
	t.Helper()
	ds, err := ReadStream(context.Background(), bytes.NewReader(data), mem, spec)
	if err != nil {
		t.Fatalf("ReadStream: %v", err)
	}
	return ds
}

func int32Col(name string, f func(row int) int32) testCol {
	return testCol{name, arrow.PrimitiveTypes.Int32, func(b array.Builder, r int) { b.(*array.Int32Builder).Append(f(r)) }}
}

func stringCol(name string, f func(row int) string) testCol {
	return testCol{name, arrow.BinaryTypes.String, func(b array.Builder, r int) { b.(*array.StringBuilder).Append(f(r)) }}
}

func binaryCol(name string, f func(row int) []byte) testCol {
	return testCol{name, arrow.BinaryTypes.Binary, func(b array.Builder, r int) { b.(*array.BinaryBuilder).Append(f(r)) }}
}

func float32ListCol(name string, f func(row int) []float32) testCol {
	return testCol{name, arrow.ListOf(arrow.PrimitiveTypes.Float32), func(b array.Builder, r int) {
		lb := b.(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Float32Builder).AppendValues(f(r), nil)
	}}
}

// pixel returns a deterministic test pixel value.
func pixel(row, i int) byte { return byte(row*31 + i*7) }

func rawImage(row, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = pixel(row, i)
	}
	return b
}

// testImage returns an h×w image: gray when gray, else NRGBA with distinct
// channel values, with known per-pixel values.
func testImage(row, h, w int, gray bool) image.Image {
	if gray {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for i := range g.Pix {
			g.Pix[i] = pixel(row, i)
		}
		return g
	}
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			m.SetNRGBA(x, y, color.NRGBA{R: pixel(row, i), G: pixel(row, i) + 100, B: pixel(row, i) + 200, A: 255})
		}
	}
	return m
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
