package arrowio

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

func TestRawImageZeroCopy(t *testing.T) {
	mem := checkedMem(t)
	const c, h, w = 1, 4, 3
	mk := func(first, rows int) arrow.RecordBatch {
		return makeRecord(t, mem, rows,
			int32Col("label", func(r int) int32 { return int32((first + r) % 10) }),
			binaryCol("data", func(r int) []byte { return rawImage(first+r, c*h*w) }),
			int32Col("channels", func(int) int32 { return c }),
			int32Col("height", func(int) int32 { return h }),
			int32Col("width", func(int) int32 { return w }),
		)
	}
	data := stream(t, mem, mk(0, 5), mk(5, 3))
	// Shape left open: the dimension columns fill it in.
	ds := read(t, mem, data, RawImageSpec("data", "label", 0, 0, 0))
	defer ds.Release()
	if ds.Len() != 8 {
		t.Fatalf("Len = %d, want 8", ds.Len())
	}
	if got := ds.Fields()[0].Shape; len(got) != 3 || got[0] != c || got[1] != h || got[2] != w {
		t.Fatalf("data shape %v, want [%d %d %d]", got, c, h, w)
	}
	if ds.ZeroCopyBytes() != 8*c*h*w {
		t.Errorf("ZeroCopyBytes = %d, want %d (images used in place)", ds.ZeroCopyBytes(), 8*c*h*w)
	}
	// Bytes counts the kept batches: pixels, labels and the dimension columns.
	if min := int64(8*c*h*w + 8*4*4); ds.Bytes() < min || ds.Bytes() > 4*min {
		t.Errorf("Bytes = %d, want about %d", ds.Bytes(), min)
	}
	for i := 0; i < 8; i++ {
		u8, _ := ds.sample(0, i)
		if !bytes.Equal(u8, rawImage(i, c*h*w)) {
			t.Fatalf("row %d pixels %v, want %v", i, u8, rawImage(i, c*h*w))
		}
		_, lab := ds.sample(1, i)
		if lab[0] != float32(i%10) {
			t.Fatalf("row %d label %v, want %d", i, lab[0], i%10)
		}
	}
}

func TestRawImageListUint8AndWrongSize(t *testing.T) {
	mem := checkedMem(t)
	u8list := testCol{"data", arrow.ListOf(arrow.PrimitiveTypes.Uint8), func(b array.Builder, r int) {
		lb := b.(*array.ListBuilder)
		lb.Append(true)
		n := 6
		if r == 3 {
			n = 5 // one short
		}
		lb.ValueBuilder().(*array.Uint8Builder).AppendValues(rawImage(r, n), nil)
	}}
	rec := makeRecord(t, mem, 3, u8list, int32Col("label", func(r int) int32 { return int32(r) }))
	ds := read(t, mem, stream(t, mem, rec), RawImageSpec("data", "label", 1, 2, 3))
	for i := 0; i < 3; i++ {
		if u8, _ := ds.sample(0, i); !bytes.Equal(u8, rawImage(i, 6)) {
			t.Errorf("row %d: %v", i, u8)
		}
	}
	if ds.ZeroCopyBytes() != 18 {
		t.Errorf("list<uint8> rows not used in place: ZeroCopyBytes %d", ds.ZeroCopyBytes())
	}
	ds.Release()

	rec = makeRecord(t, mem, 4, u8list, int32Col("label", func(r int) int32 { return int32(r) }))
	_, err := ReadStream(context.Background(), bytes.NewReader(stream(t, mem, rec)), mem, RawImageSpec("data", "label", 1, 2, 3))
	if err == nil || !strings.Contains(err.Error(), "row 3") || !strings.Contains(err.Error(), "5 bytes") {
		t.Fatalf("short image: err = %v, want one naming row 3 and its 5 bytes", err)
	}
}

func TestFloatArrays(t *testing.T) {
	mem := checkedMem(t)
	vals := func(r int) []float32 { return []float32{float32(r), -float32(r) / 2, 1e-3 * float32(r), 7, 8, 9} }
	shapeCol := testCol{"shape", arrow.ListOf(arrow.PrimitiveTypes.Int32), func(b array.Builder, r int) {
		lb := b.(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Int32Builder).AppendValues([]int32{2, 3}, nil)
	}}
	rec := makeRecord(t, mem, 4, float32ListCol("x", vals), shapeCol, testCol{"y", arrow.PrimitiveTypes.Float64, func(b array.Builder, r int) {
		b.(*array.Float64Builder).Append(0.5 * float64(r))
	}})
	ds := read(t, mem, stream(t, mem, rec), FloatArraySpec("x", "shape", "y", nil))
	if got := ds.Fields()[0].Shape; len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Errorf("shape %v, want [2 3] from the shape column", got)
	}
	if ds.ZeroCopyBytes() != 4*6*4 {
		t.Errorf("list<float32> not used in place: ZeroCopyBytes %d", ds.ZeroCopyBytes())
	}
	for i := 0; i < 4; i++ {
		_, f := ds.sample(0, i)
		for j, v := range vals(i) {
			if f[j] != v {
				t.Fatalf("row %d element %d = %v, want %v", i, j, f[j], v)
			}
		}
		if _, l := ds.sample(1, i); l[0] != 0.5*float32(i) {
			t.Errorf("row %d label %v", i, l[0])
		}
	}
	ds.Release()

	// fixed_size_list<float64> is converted, and the declared shape is used.
	fsl := testCol{"x", arrow.FixedSizeListOf(4, arrow.PrimitiveTypes.Float64), func(b array.Builder, r int) {
		lb := b.(*array.FixedSizeListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Float64Builder).AppendValues([]float64{float64(r), 1, 2, 3}, nil)
	}}
	rec = makeRecord(t, mem, 3, fsl, int32Col("y", func(r int) int32 { return int32(r) }))
	ds = read(t, mem, stream(t, mem, rec), FloatArraySpec("x", "", "y", []int{1, 2, 2}))
	if got := ds.Fields()[0].Shape; len(got) != 3 || got[1] != 2 {
		t.Errorf("shape %v, want [1 2 2]", got)
	}
	if ds.ZeroCopyBytes() != 0 {
		t.Errorf("float64 values cannot be viewed as float32, ZeroCopyBytes %d", ds.ZeroCopyBytes())
	}
	if _, f := ds.sample(0, 2); f[0] != 2 || f[3] != 3 {
		t.Errorf("row 2 = %v", f)
	}
	ds.Release()

	// A row of another length is an error naming the row.
	rec = makeRecord(t, mem, 3, float32ListCol("x", func(r int) []float32 { return make([]float32, 3+r/2) }),
		int32Col("y", func(r int) int32 { return 0 }))
	_, err := ReadStream(context.Background(), bytes.NewReader(stream(t, mem, rec)), mem, FloatArraySpec("x", "", "y", nil))
	if err == nil || !strings.Contains(err.Error(), "row 2") {
		t.Fatalf("ragged rows: err = %v, want one naming row 2", err)
	}
}

func TestLabels(t *testing.T) {
	mem := checkedMem(t)
	mk := func(labels []string) []byte {
		return stream(t, mem, makeRecord(t, mem, len(labels),
			binaryCol("data", func(r int) []byte { return rawImage(r, 4) }),
			stringCol("label", func(r int) string { return labels[r] })))
	}
	spec := RawImageSpec("data", "label", 1, 2, 2)
	ds := read(t, mem, mk([]string{"3", " 7", "2.5", "-1", "1e2"}), spec)
	want := []float32{3, 7, 2.5, -1, 100}
	for i, w := range want {
		if _, l := ds.sample(1, i); l[0] != w {
			t.Errorf("label %d = %v, want %v", i, l[0], w)
		}
	}
	ds.Release()

	for _, tc := range []struct {
		labels []string
		row    string
		value  string
	}{
		{[]string{"1", "2", "seven"}, "row 2", `"seven"`},
		{[]string{"NaN"}, "row 0", `"NaN"`},
		{[]string{"0", ""}, "row 1", `""`},
	} {
		_, err := ReadStream(context.Background(), bytes.NewReader(mk(tc.labels)), mem, spec)
		if err == nil || !strings.Contains(err.Error(), tc.row) || !strings.Contains(err.Error(), tc.value) || !strings.Contains(err.Error(), `"label"`) {
			t.Errorf("labels %q: err = %v, want one naming column \"label\", %s and %s", tc.labels, err, tc.row, tc.value)
		}
	}

	// Rows count from the start of the partition, across batches; a null
	// label is an error too.
	b1 := makeRecord(t, mem, 2, binaryCol("data", func(r int) []byte { return rawImage(r, 4) }), int32Col("label", func(r int) int32 { return 1 }))
	b2 := makeRecord(t, mem, 2, binaryCol("data", func(r int) []byte { return rawImage(r, 4) }),
		testCol{"label", arrow.PrimitiveTypes.Int32, func(b array.Builder, r int) {
			if r == 1 {
				b.AppendNull()
			} else {
				b.(*array.Int32Builder).Append(1)
			}
		}})
	_, err := ReadStream(context.Background(), bytes.NewReader(stream(t, mem, b1, b2)), mem, spec)
	if err == nil || !strings.Contains(err.Error(), "row 3") || !strings.Contains(err.Error(), "null") {
		t.Errorf("null label in second batch: err = %v, want one naming row 3 and null", err)
	}

	// A label float32 cannot hold exactly is refused rather than rounded.
	big := makeRecord(t, mem, 1, binaryCol("data", func(r int) []byte { return rawImage(r, 4) }),
		testCol{"label", arrow.PrimitiveTypes.Int64, func(b array.Builder, r int) { b.(*array.Int64Builder).Append(1<<24 + 1) }})
	_, err = ReadStream(context.Background(), bytes.NewReader(stream(t, mem, big)), mem, spec)
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(1<<24+1)) {
		t.Errorf("label 2^24+1: err = %v", err)
	}
}

func TestEncodedImages(t *testing.T) {
	mem := checkedMem(t)
	const h, w, rows = 5, 4, 9
	// Rows alternate gray PNG, color PNG and color JPEG.
	enc := func(r int) []byte {
		switch r % 3 {
		case 0:
			return encodePNG(t, testImage(r, h, w, true))
		case 1:
			return encodePNG(t, testImage(r, h, w, false))
		}
		return encodeJPEG(t, testImage(r, h, w, true))
	}
	rec := makeRecord(t, mem, rows, binaryCol("img", enc), int32Col("label", func(r int) int32 { return int32(r) }))
	data := stream(t, mem, rec)

	// As color (BGR planes).
	ds, err := ReadStream(context.Background(), bytes.NewReader(data), mem, EncodedImageSpec("img", "label", 3, 0, 0), WithWorkers(3))
	if err != nil {
		t.Fatal(err)
	}
	if got := ds.Fields()[0].Shape; got[0] != 3 || got[1] != h || got[2] != w {
		t.Fatalf("shape %v", got)
	}
	for r := 0; r < rows; r++ {
		u8, _ := ds.sample(0, r)
		for i := 0; i < h*w; i++ {
			p := pixel(r, i)
			var b, g, rr byte = p, p, p
			if r%3 == 1 {
				b, g, rr = p+200, p+100, p
			}
			tol := 0
			if r%3 == 2 {
				tol = 3 // JPEG at quality 100
			}
			for c, want := range []byte{b, g, rr} {
				if d := int(u8[c*h*w+i]) - int(want); d < -tol || d > tol {
					t.Fatalf("row %d channel %d pixel %d = %d, want %d±%d", r, c, i, u8[c*h*w+i], want, tol)
				}
			}
		}
	}
	ds.Release()

	// As grayscale: color rows convert with OpenCV's weights.
	ds, err = ReadStream(context.Background(), bytes.NewReader(data), mem, EncodedImageSpec("img", "label", 1, h, w))
	if err != nil {
		t.Fatal(err)
	}
	u8, _ := ds.sample(0, 1)
	p := float64(pixel(1, 0))
	want := 0.299*p + 0.587*(p+100) + 0.114*(p+200)
	if math.Abs(float64(u8[0])-want) > 1 {
		t.Errorf("gray of color pixel = %d, want %.1f", u8[0], want)
	}
	ds.Release()

	// A declared size the images do not have is an error naming the row,
	// unless resizing.
	_, err = ReadStream(context.Background(), bytes.NewReader(data), mem, EncodedImageSpec("img", "label", 1, 8, 8))
	if err == nil || !strings.Contains(err.Error(), "row 0") || !strings.Contains(err.Error(), "5×4") {
		t.Errorf("wrong size: err = %v", err)
	}
	spec := EncodedImageSpec("img", "label", 1, 10, 8)
	spec.Fields[0].Resize = true
	ds = read(t, mem, data, spec)
	if u8, _ := ds.sample(0, 0); len(u8) != 80 {
		t.Errorf("resized sample has %d bytes, want 80", len(u8))
	}
	ds.Release()

	// Bytes that are no image are an error naming the row.
	bad := makeRecord(t, mem, 3, binaryCol("img", func(r int) []byte {
		if r == 2 {
			return []byte("not an image")
		}
		return enc(r)
	}), int32Col("label", func(r int) int32 { return 0 }))
	_, err = ReadStream(context.Background(), bytes.NewReader(stream(t, mem, bad)), mem, EncodedImageSpec("img", "label", 1, 0, 0))
	if err == nil || !strings.Contains(err.Error(), "row 2") || !strings.Contains(err.Error(), "unknown image format") {
		t.Errorf("garbage image: err = %v", err)
	}
	// A truncated PNG too.
	bad = makeRecord(t, mem, 2, binaryCol("img", func(r int) []byte { b := enc(0); return b[:len(b)/(r+1)] }),
		int32Col("label", func(r int) int32 { return 0 }))
	_, err = ReadStream(context.Background(), bytes.NewReader(stream(t, mem, bad)), mem, EncodedImageSpec("img", "label", 1, 0, 0))
	if err == nil || !strings.Contains(err.Error(), "row 1") {
		t.Errorf("truncated PNG: err = %v", err)
	}
}

func TestImageDataFrame(t *testing.T) {
	mem := checkedMem(t)
	const h, w = 3, 4
	// CaffeOnSpark's schema: id, label (string), channels, height, width,
	// encoded, data. Odd rows are PNG, even rows raw.
	boolCol := testCol{"encoded", arrow.FixedWidthTypes.Boolean, func(b array.Builder, r int) { b.(*array.BooleanBuilder).Append(r%2 == 1) }}
	rec := makeRecord(t, mem, 6,
		stringCol("id", func(r int) string { return "img" + strconv.Itoa(r) }),
		stringCol("label", func(r int) string { return strconv.Itoa(r % 10) }),
		int32Col("channels", func(int) int32 { return 1 }),
		int32Col("height", func(int) int32 { return h }),
		int32Col("width", func(int) int32 { return w }),
		boolCol,
		binaryCol("data", func(r int) []byte {
			if r%2 == 1 {
				return encodePNG(t, testImage(r, h, w, true))
			}
			return rawImage(r, h*w)
		}))
	ds := read(t, mem, stream(t, mem, rec), ImageDataFrameSpec(1, h, w, false, false))
	defer ds.Release()
	for r := 0; r < 6; r++ {
		u8, _ := ds.sample(0, r)
		if !bytes.Equal(u8, rawImage(r, h*w)) {
			t.Errorf("row %d = %v, want %v", r, u8, rawImage(r, h*w))
		}
		if _, l := ds.sample(1, r); l[0] != float32(r) {
			t.Errorf("row %d label %v", r, l[0])
		}
	}

	// Only the required columns: image_encoded from the layer applies.
	rec = makeRecord(t, mem, 2, stringCol("label", func(r int) string { return "1" }),
		binaryCol("data", func(r int) []byte { return encodePNG(t, testImage(r, h, w, true)) }))
	ds2 := read(t, mem, stream(t, mem, rec), ImageDataFrameSpec(1, h, w, true, false))
	if u8, _ := ds2.sample(0, 1); !bytes.Equal(u8, rawImage(1, h*w)) {
		t.Errorf("encoded default: %v", u8)
	}
	ds2.Release()

	// A height column that disagrees with the decoded image is an error,
	// never a silently skipped row as in CaffeOnSpark.
	rec = makeRecord(t, mem, 2, stringCol("label", func(r int) string { return "1" }),
		int32Col("height", func(r int) int32 { return int32(h + r) }),
		binaryCol("data", func(r int) []byte { return encodePNG(t, testImage(r, h, w, true)) }))
	_, err := ReadStream(context.Background(), bytes.NewReader(stream(t, mem, rec)), mem, ImageDataFrameSpec(1, h, w, true, false))
	if err == nil || !strings.Contains(err.Error(), "row 1") {
		t.Errorf("height mismatch: err = %v", err)
	}
}

func TestCoSDataFrameSource(t *testing.T) {
	mem := checkedMem(t)
	const h, w = 2, 3
	dimType := arrow.StructOf(
		arrow.Field{Name: "image", Type: arrow.BinaryTypes.Binary},
		arrow.Field{Name: "height", Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: "width", Type: arrow.PrimitiveTypes.Int32})
	rec := makeRecord(t, mem, 4,
		stringCol("s", func(r int) string { return strconv.Itoa(r) }),
		int32Col("i", func(r int) int32 { return int32(10 * r) }),
		testCol{"f", arrow.PrimitiveTypes.Float32, func(b array.Builder, r int) { b.(*array.Float32Builder).Append(float32(r) + 0.25) }},
		testCol{"ia", arrow.ListOf(arrow.PrimitiveTypes.Int32), func(b array.Builder, r int) {
			lb := b.(*array.ListBuilder)
			lb.Append(true)
			lb.ValueBuilder().(*array.Int32Builder).AppendValues([]int32{int32(r), int32(r + 1), int32(r + 2)}, nil)
		}},
		float32ListCol("fa", func(r int) []float32 { return []float32{float32(r), 2 * float32(r)} }),
		binaryCol("raw", func(r int) []byte { return rawImage(r, h*w) }),
		binaryCol("enc", func(r int) []byte { return encodePNG(t, testImage(r, h, w, true)) }),
		testCol{"dim", dimType, func(b array.Builder, r int) {
			sb := b.(*array.StructBuilder)
			sb.Append(true)
			sb.FieldBuilder(0).(*array.BinaryBuilder).Append(encodePNG(t, testImage(r, h, w, false)))
			sb.FieldBuilder(1).(*array.Int32Builder).Append(h)
			sb.FieldBuilder(2).(*array.Int32Builder).Append(w)
		}},
	)
	spec, err := CoSDataSpec([]CoSTop{
		{Name: "s", Type: CoSString, Channels: 1, Height: 1, Width: 1},
		{Name: "i", Type: CoSInt},
		{Name: "f", Type: CoSFloat},
		{Name: "ia", Type: CoSIntArray, Channels: 3, SampleNumAxes: 1, Transpose: true},
		{Name: "fa", Type: CoSFloatArray, Channels: 2, SampleNumAxes: 1},
		{Name: "raw", Type: CoSRawImage, Channels: 1, Height: h, Width: w, Transform: &Transform{Scale: 0.5}},
		{Name: "enc", Type: CoSEncodedImage, Channels: 1, Height: h, Width: w},
		{Name: "dim", Type: CoSEncodedImageWithDim, Channels: 3, Height: h, Width: w},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	ds := read(t, mem, stream(t, mem, rec), spec)
	defer ds.Release()
	s, err := NewSampler[float32](ds, spec, SamplerOptions{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tops := newTops[float32](s, len(spec.Fields))
	if err := s.Next(tops); err != nil {
		t.Fatal(err)
	}
	if got := tops[3].Shape(); got[0] != 3 || got[1] != 4 {
		t.Errorf("transposed INT_ARRAY top shape %v, want [3 4]", got)
	}
	for r := 0; r < 4; r++ {
		check := func(top int, idx int, want float32) {
			t.Helper()
			if got := tops[top].Data()[idx]; got != want {
				t.Errorf("top %q sample %d index %d = %v, want %v", spec.Fields[top].Name, r, idx, got, want)
			}
		}
		check(0, r, float32(r))
		check(1, r, float32(10*r))
		check(2, r, float32(r)+0.25)
		for j := 0; j < 3; j++ {
			check(3, j*4+r, float32(r+j)) // (size, batch) layout
		}
		check(4, 2*r+1, 2*float32(r))
		for i := 0; i < h*w; i++ {
			check(5, r*h*w+i, 0.5*float32(pixel(r, i)))
			check(6, r*h*w+i, float32(pixel(r, i)))
			// BGR planes of the color image.
			check(7, r*3*h*w+i, float32(pixel(r, i)+200))
			check(7, r*3*h*w+2*h*w+i, float32(pixel(r, i)))
		}
	}

	if _, err := CoSDataSpec([]CoSTop{{Name: "x", Type: CoSFloatArray, Channels: 2, Height: 2, Transpose: true}}, false); err == nil {
		t.Error("transpose with 3 sample axes accepted")
	}
	if _, err := CoSDataSpec([]CoSTop{{Name: "x", Type: 42}}, false); err == nil || !strings.Contains(err.Error(), "unknown data type 42") {
		t.Errorf("unknown type: %v", err)
	}
}

func TestMissingColumnAndWrongType(t *testing.T) {
	mem := checkedMem(t)
	rec := makeRecord(t, mem, 2, binaryCol("pixels", func(r int) []byte { return rawImage(r, 4) }), stringCol("label", func(int) string { return "1" }))
	data := stream(t, mem, rec)
	_, err := ReadStream(context.Background(), bytes.NewReader(data), mem, RawImageSpec("data", "label", 1, 2, 2))
	if err == nil || !strings.Contains(err.Error(), `missing column "data"`) || !strings.Contains(err.Error(), "pixels") {
		t.Errorf("missing column: %v", err)
	}
	_, err = ReadStream(context.Background(), bytes.NewReader(data), mem, FloatArraySpec("pixels", "", "label", nil))
	if err == nil || !strings.Contains(err.Error(), "not a list") {
		t.Errorf("binary as float array: %v", err)
	}
}

func TestZeroCopySlicedRecord(t *testing.T) {
	// A sliced batch (offset into its buffers) is still read correctly.
	mem := checkedMem(t)
	rec := makeRecord(t, mem, 6, float32ListCol("x", func(r int) []float32 { return []float32{float32(r), 1} }), int32Col("y", func(r int) int32 { return int32(r) }))
	sl := rec.NewSlice(2, 5)
	rec.Release()
	b, err := NewBuilder(mem, FloatArraySpec("x", "", "y", nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(context.Background(), sl); err != nil {
		t.Fatal(err)
	}
	sl.Release()
	ds, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Release()
	for i := 0; i < 3; i++ {
		if _, f := ds.sample(0, i); f[0] != float32(i+2) {
			t.Errorf("row %d = %v, want %d", i, f, i+2)
		}
		if _, l := ds.sample(1, i); l[0] != float32(i+2) {
			t.Errorf("label %d = %v", i, l)
		}
	}
}

func TestBuilderRelease(t *testing.T) {
	mem := checkedMem(t)
	b, err := NewBuilder(mem, RawImageSpec("data", "label", 1, 2, 2))
	if err != nil {
		t.Fatal(err)
	}
	rec := makeRecord(t, mem, 3, binaryCol("data", func(r int) []byte { return rawImage(r, 4) }), int32Col("label", func(r int) int32 { return 1 }))
	if err := b.Append(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	b.Release() // abandoned partition: everything returns to the allocator
	if _, err := NewBuilder(nil, RawImageSpec("data", "label", 1, 2, 2)); err == nil {
		t.Error("nil allocator accepted")
	}
}

// Spark writes array<byte> columns as list<int8> (Java's signed bytes);
// CaffeOnSpark's ENCODED_IMAGE_WITH_DIM struct holds its image that way.
func TestSparkSignedByteArrays(t *testing.T) {
	mem := checkedMem(t)
	const h, w = 3, 2
	signed := func(b []byte) []int8 {
		out := make([]int8, len(b))
		for i, v := range b {
			out[i] = int8(v)
		}
		return out
	}
	dimType := arrow.StructOf(
		arrow.Field{Name: "image", Type: arrow.ListOf(arrow.PrimitiveTypes.Int8)},
		arrow.Field{Name: "height", Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: "width", Type: arrow.PrimitiveTypes.Int32})
	rec := makeRecord(t, mem, 3,
		testCol{"raw", arrow.ListOf(arrow.PrimitiveTypes.Int8), func(b array.Builder, r int) {
			lb := b.(*array.ListBuilder)
			lb.Append(true)
			lb.ValueBuilder().(*array.Int8Builder).AppendValues(signed(rawImage(r+7, h*w)), nil)
		}},
		testCol{"dim", dimType, func(b array.Builder, r int) {
			sb := b.(*array.StructBuilder)
			sb.Append(true)
			lb := sb.FieldBuilder(0).(*array.ListBuilder)
			lb.Append(true)
			lb.ValueBuilder().(*array.Int8Builder).AppendValues(signed(encodePNG(t, testImage(r+7, h, w, true))), nil)
			sb.FieldBuilder(1).(*array.Int32Builder).Append(h)
			sb.FieldBuilder(2).(*array.Int32Builder).Append(w)
		}},
		stringCol("label", func(r int) string { return "1" }))
	spec, err := CoSDataSpec([]CoSTop{
		{Name: "raw", Type: CoSRawImage, Channels: 1, Height: h, Width: w},
		{Name: "dim", Type: CoSEncodedImageWithDim, Channels: 1, Height: h, Width: w},
		{Name: "label", Type: CoSString},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	ds := read(t, mem, stream(t, mem, rec), spec)
	defer ds.Release()
	if ds.ZeroCopyBytes() != 3*h*w {
		t.Errorf("list<int8> pixels not used in place: ZeroCopyBytes %d", ds.ZeroCopyBytes())
	}
	for r := 0; r < 3; r++ {
		for k := 0; k < 2; k++ {
			if u8, _ := ds.sample(k, r); !bytes.Equal(u8, rawImage(r+7, h*w)) {
				t.Errorf("top %d row %d = %v, want %v", k, r, u8, rawImage(r+7, h*w))
			}
		}
	}
}

func TestParallelDecodeAndCancel(t *testing.T) {
	mem := checkedMem(t)
	const rows = 300
	rec := makeRecord(t, mem, rows, binaryCol("img", func(r int) []byte { return encodePNG(t, testImage(r, 6, 5, r%2 == 0)) }),
		int32Col("label", func(r int) int32 { return int32(r) }))
	data := stream(t, mem, rec)
	spec := EncodedImageSpec("img", "label", 1, 6, 5)
	ds, err := ReadStream(context.Background(), bytes.NewReader(data), mem, spec, WithWorkers(8))
	if err != nil {
		t.Fatal(err)
	}
	for r := 0; r < rows; r += 2 { // the gray rows decode to their exact pixels
		if u8, _ := ds.sample(0, r); !bytes.Equal(u8, rawImage(r, 30)) {
			t.Fatalf("row %d decoded wrong", r)
		}
	}
	ds.Release()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ReadStream(ctx, bytes.NewReader(data), mem, spec, WithWorkers(8)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled decode: err = %v, want context.Canceled", err)
	}
}

// A bad row names its sample id (CaffeOnSpark's `id` column) as well as
// its row, counted across batches, since Spark's repartitioning moves rows.
func TestRowErrorNamesID(t *testing.T) {
	mem := checkedMem(t)
	mk := func(first int, bad int) arrow.RecordBatch {
		return makeRecord(t, mem, 3,
			stringCol("id", func(r int) string { return "img-" + strconv.Itoa(first+r) }),
			binaryCol("data", func(r int) []byte {
				if first+r == bad {
					return []byte("not an image")
				}
				return encodePNG(t, testImage(r, 2, 2, true))
			}),
			stringCol("label", func(r int) string {
				if first+r == 4 {
					return "seven"
				}
				return "1"
			}))
	}
	spec := ImageDataFrameSpec(1, 2, 2, true, false)
	for _, tc := range []struct {
		badImage int
		want     string
	}{
		{-1, `column "label" row 4 (id "img-4"): bad value "seven"`},
		{5, `column "data" row 5 (id "img-5"): decoding 12 bytes: unknown image format`},
	} {
		_, err := ReadStream(context.Background(), bytes.NewReader(stream(t, mem, mk(0, tc.badImage), mk(3, tc.badImage))), mem, spec)
		var re *RowError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &re) {
			t.Errorf("err = %v, want a *RowError saying %s", err, tc.want)
		}
	}
	// Without an id column the message is the row alone.
	_, err := ReadStream(context.Background(), bytes.NewReader(stream(t, mem, makeRecord(t, mem, 2,
		binaryCol("data", func(r int) []byte { return rawImage(r, 4) }),
		stringCol("label", func(r int) string { return []string{"1", "x"}[r] })))), mem, RawImageSpec("data", "label", 1, 2, 2))
	if err == nil || !strings.Contains(err.Error(), `column "label" row 1: bad value "x"`) {
		t.Errorf("no id column: err = %v", err)
	}
}

// TestSkipUnusable: with WithSkipUnusable, rows whose image does not decode
// or does not fit the field are dropped from every field and named by row
// and id; the other rows keep their order, pixels and labels. Without it
// the first such row fails the stream.
func TestSkipUnusable(t *testing.T) {
	mem := checkedMem(t)
	const h, w = 3, 4
	// Rows: 0 corrupt, 1 PNG, 2 raw, 3 PNG of the wrong size, 4 raw of the
	// wrong byte count, 5 PNG; a second batch of a corrupt row only.
	badRows := map[int]string{0: "decoding", 3: "is 4×4, the field wants 3×4", 4: "raw image has 11 bytes"}
	boolCol := testCol{"encoded", arrow.FixedWidthTypes.Boolean, func(b array.Builder, r int) { b.(*array.BooleanBuilder).Append(r != 2 && r != 4) }}
	mk := func() arrow.RecordBatch {
		return makeRecord(t, mem, 6,
			stringCol("id", func(r int) string { return "img" + strconv.Itoa(r) }),
			stringCol("label", func(r int) string { return strconv.Itoa(r) }),
			boolCol,
			binaryCol("data", func(r int) []byte {
				switch r {
				case 0:
					return []byte("\xff\xd8\xff truncated jpeg")
				case 2:
					return rawImage(r, h*w)
				case 3:
					return encodePNG(t, testImage(r, 4, w, true))
				case 4:
					return rawImage(r, h*w-1)
				}
				return encodePNG(t, testImage(r, h, w, true))
			}))
	}
	last := makeRecord(t, mem, 1, stringCol("id", func(int) string { return "img6" }), stringCol("label", func(int) string { return "6" }),
		testCol{"encoded", arrow.FixedWidthTypes.Boolean, func(b array.Builder, r int) { b.(*array.BooleanBuilder).Append(true) }},
		binaryCol("data", func(int) []byte { return []byte("not an image") }))
	data := stream(t, mem, mk(), last)
	spec := ImageDataFrameSpec(1, h, w, false, false)

	_, err := ReadStream(context.Background(), bytes.NewReader(data), mem, spec)
	if err == nil || !strings.Contains(err.Error(), `row 0 (id "img0")`) {
		t.Errorf("without skipping: err = %v, want row 0 named", err)
	}

	ds, err := ReadStream(context.Background(), bytes.NewReader(data), mem, spec, WithSkipUnusable(true))
	if err != nil {
		t.Fatalf("skipping: %v", err)
	}
	defer ds.Release()
	kept := []int{1, 2, 5}
	if ds.Len() != len(kept) {
		t.Fatalf("%d rows kept, want %d", ds.Len(), len(kept))
	}
	for j, r := range kept {
		u8, _ := ds.Sample(0, j)
		if !bytes.Equal(u8, rawImage(r, h*w)) {
			t.Errorf("kept row %d (source row %d) = %v, want %v", j, r, u8, rawImage(r, h*w))
		}
		if _, l := ds.Sample(1, j); l[0] != float32(r) {
			t.Errorf("kept row %d label %v, want %d", j, l[0], r)
		}
		if id := ds.SampleID(j); id != "img"+strconv.Itoa(r) {
			t.Errorf("kept row %d id %q", j, id)
		}
	}
	n, first := ds.Unusable()
	badRows[6] = "unknown image format"
	if n != len(badRows) || len(first) != len(badRows) {
		t.Fatalf("Unusable() = %d, %v; want %d rows", n, first, len(badRows))
	}
	for i, r := range []int{0, 3, 4, 6} {
		e := first[i]
		if e.Row != r || e.ID != "img"+strconv.Itoa(r) || !strings.Contains(e.Error(), badRows[r]) {
			t.Errorf("unusable %d = %v (row %d, id %q), want row %d saying %q", i, e, e.Row, e.ID, r, badRows[r])
		}
	}

	// A label that is no number still fails the stream.
	rec := makeRecord(t, mem, 2, stringCol("label", func(r int) string { return []string{"1", "x"}[r] }),
		binaryCol("data", func(r int) []byte { return encodePNG(t, testImage(r, h, w, true)) }))
	if _, err := ReadStream(context.Background(), bytes.NewReader(stream(t, mem, rec)), mem, ImageDataFrameSpec(1, h, w, true, false), WithSkipUnusable(true)); err == nil || !strings.Contains(err.Error(), `bad value "x"`) {
		t.Errorf("bad label with skipping: err = %v", err)
	}
}
