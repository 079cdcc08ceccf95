package arrowio

import (
	"context"
	"errors"
	"fmt"
	"image"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/gocaffe/gocaffe/caffe/imgcodec"
)

// decodeField decodes field f of rec. shape is the field's resolved shape
// (nil while unknown); it returns the data, whether it views rec's
// buffers, and the resolved shape.
func (b *Builder) decodeField(ctx context.Context, rec arrow.RecordBatch, f *Field, shape []int) (fieldData, bool, []int, error) {
	arr, ok := column(rec, f.Column)
	if !ok {
		return fieldData{}, false, nil, fmt.Errorf("missing column %q (have: %s)", f.Column, columnNames(rec))
	}
	if err := validate(arr); err != nil {
		return fieldData{}, false, nil, fmt.Errorf("column %q: invalid array: %w", f.Column, err)
	}
	rows := int(rec.NumRows())
	if arr.Len() < rows {
		return fieldData{}, false, nil, fmt.Errorf("column %q has %d rows, batch has %d", f.Column, arr.Len(), rows)
	}
	switch f.Kind {
	case Scalar:
		fd, err := b.decodeScalar(f, arr, rows)
		return fd, false, shape, err
	case Array:
		return b.decodeArray(rec, f, arr, rows, shape)
	case Image:
		// ImageDataFrame's data column may also hold numeric arrays.
		if l, ok := asList(arr); ok && l.values.DataType().ID() != arrow.UINT8 && l.values.DataType().ID() != arrow.INT8 {
			return b.decodeArray(rec, f, arr, rows, shape)
		}
		return b.decodeImages(ctx, rec, f, arr, rows, shape)
	default:
		return b.decodeImages(ctx, rec, f, arr, rows, shape)
	}
}

// newF32 allocates owned float32 storage for n values.
func (b *Builder) newF32(n int) fieldData {
	buf := memory.NewResizableBuffer(b.mem)
	buf.Resize(4 * n)
	return fieldData{f32: arrow.Float32Traits.CastFromBytes(buf.Bytes())[:n], buf: buf}
}

// newU8 allocates owned byte storage for n values.
func (b *Builder) newU8(n int) fieldData {
	buf := memory.NewResizableBuffer(b.mem)
	buf.Resize(n)
	return fieldData{u8: buf.Bytes()[:n], buf: buf}
}

func (b *Builder) decodeScalar(f *Field, arr arrow.Array, rows int) (fieldData, error) {
	read, err := newNumericReader(arr)
	if err != nil {
		return fieldData{}, fmt.Errorf("column %q: %w", f.Column, err)
	}
	fd := b.newF32(rows)
	for i := 0; i < rows; i++ {
		v, text, err := read(i)
		var f32 float32
		if err == nil {
			f32, err = toFloat32(v)
		}
		if err != nil {
			fd.buf.Release()
			return fieldData{}, &RowError{Column: f.Column, Row: b.in + i, Err: fmt.Errorf("bad value %s: %w", text, err)}
		}
		fd.f32[i] = f32
	}
	return fd, nil
}

// resolveShape merges a field's declared shape (zeros unknown) with the
// shape the data shows.
func resolveShape(declared, got []int) ([]int, error) {
	if len(declared) == 0 {
		return slices.Clone(got), nil
	}
	if len(declared) == len(got) {
		out := slices.Clone(declared)
		for i := range out {
			if out[i] == 0 {
				out[i] = got[i]
			} else if out[i] != got[i] {
				return nil, fmt.Errorf("shape %v does not match declared %v", got, declared)
			}
		}
		return out, nil
	}
	if slices.Contains(declared, 0) {
		return nil, fmt.Errorf("cannot fill unknown dimensions of %v from data shape %v", declared, got)
	}
	if prod(declared) != prod(got) {
		return nil, fmt.Errorf("data shape %v (%d values) does not fit declared %v (%d values)", got, prod(got), declared, prod(declared))
	}
	return slices.Clone(declared), nil
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func (b *Builder) decodeArray(rec arrow.RecordBatch, f *Field, arr arrow.Array, rows int, shape []int) (fieldData, bool, []int, error) {
	l, ok := asList(arr)
	if !ok {
		return fieldData{}, false, nil, fmt.Errorf("column %q: type %s is not a list", f.Column, arr.DataType())
	}
	var shapeCol listColumn
	var shapeVals numericReader
	if f.ShapeColumn != "" {
		sa, ok := column(rec, f.ShapeColumn)
		if !ok {
			return fieldData{}, false, nil, fmt.Errorf("missing shape column %q (have: %s)", f.ShapeColumn, columnNames(rec))
		}
		if err := validate(sa); err != nil {
			return fieldData{}, false, nil, fmt.Errorf("column %q: invalid array: %w", f.ShapeColumn, err)
		}
		if shapeCol, ok = asList(sa); !ok || sa.Len() < rows {
			return fieldData{}, false, nil, fmt.Errorf("shape column %q: type %s is not a list of integers", f.ShapeColumn, sa.DataType())
		}
		var err error
		if shapeVals, err = newNumericReader(shapeCol.values); err != nil {
			return fieldData{}, false, nil, fmt.Errorf("shape column %q: %w", f.ShapeColumn, err)
		}
	}
	rowShape := func(i, n int) ([]int, error) {
		if shapeVals == nil || shapeCol.arr.IsNull(i) {
			return []int{n}, nil
		}
		s, e, err := shapeCol.rangeOf(i)
		if err != nil {
			return nil, err
		}
		out := make([]int, 0, e-s)
		for j := s; j < e; j++ {
			v, text, err := shapeVals(j)
			if err != nil || v < 0 || v != float64(int(v)) {
				return nil, fmt.Errorf("bad shape value %s in column %q", text, f.ShapeColumn)
			}
			out = append(out, int(v))
		}
		if prod(out) != n {
			return nil, fmt.Errorf("shape %v holds %d values, row has %d", out, prod(out), n)
		}
		return out, nil
	}
	// Check every row's length and shape first.
	for i := 0; i < rows; i++ {
		if arr.IsNull(i) {
			return fieldData{}, false, nil, &RowError{Column: f.Column, Row: b.in + i, Err: ErrNull}
		}
		s, e, err := l.rangeOf(i)
		if err != nil {
			return fieldData{}, false, nil, &RowError{Column: f.Column, Row: b.in + i, Err: err}
		}
		rs, err := rowShape(i, e-s)
		if err != nil {
			return fieldData{}, false, nil, &RowError{Column: f.Column, Row: b.in + i, Err: err}
		}
		if shape == nil {
			if shape, err = resolveShape(f.Shape, rs); err != nil {
				return fieldData{}, false, nil, &RowError{Column: f.Column, Row: b.in + i, Err: err}
			}
		}
		if e-s != prod(shape) || (len(rs) == len(shape) && !slices.Equal(rs, shape)) {
			return fieldData{}, false, nil, &RowError{Column: f.Column, Row: b.in + i, Err: fmt.Errorf("sample shape %v differs from the field's %v", rs, shape)}
		}
	}
	size := prod(shape)
	if f32, ok := l.values.(*array.Float32); ok && f32.NullN() == 0 {
		vs := f32.Float32Values()
		view, ok := contiguous(rows, size, func(i int) ([]float32, error) {
			s, e, err := l.rangeOf(i)
			if err != nil {
				return nil, err
			}
			return vs[s:e], nil
		})
		if ok {
			return fieldData{f32: view}, true, shape, nil
		}
	}
	read, err := newNumericReader(l.values)
	if err != nil {
		return fieldData{}, false, nil, fmt.Errorf("column %q elements: %w", f.Column, err)
	}
	fd := b.newF32(rows * size)
	for i := 0; i < rows; i++ {
		s, _, _ := l.rangeOf(i)
		for j := 0; j < size; j++ {
			v, text, err := read(s + j)
			var x float32
			if err == nil {
				x, err = toFloat32(v)
			}
			if err != nil {
				fd.buf.Release()
				return fieldData{}, false, nil, &RowError{Column: f.Column, Row: b.in + i, Err: fmt.Errorf("element %d: bad value %s: %w", j, text, err)}
			}
			fd.f32[i*size+j] = x
		}
	}
	return fd, false, shape, nil
}

// imageRows reads the bytes, declared dimensions and encoding of each row
// of an image field.
type imageRows struct {
	bytes          byteColumn
	channels, h, w numericReader
	encoded        func(i int) bool
	column         string
	firstRow       int
}

func optionalDim(rec arrow.RecordBatch, name string) (numericReader, error) {
	if name == "" {
		return nil, nil
	}
	a, ok := column(rec, name)
	if !ok {
		return nil, nil
	}
	r, err := newNumericReader(a)
	if err != nil {
		return nil, fmt.Errorf("dimension column %q: %w", name, err)
	}
	return r, nil
}

func newImageRows(rec arrow.RecordBatch, f *Field, arr arrow.Array) (*imageRows, error) {
	ir := &imageRows{column: f.Column}
	var err error
	data := arr
	if f.Kind == EncodedImageWithDim {
		st, ok := arr.(*array.Struct)
		if !ok {
			return nil, fmt.Errorf("column %q: type %s is not a struct<image, height, width>", f.Column, arr.DataType())
		}
		child := func(name string) (arrow.Array, error) {
			idx, ok := st.DataType().(*arrow.StructType).FieldIdx(name)
			if !ok {
				return nil, fmt.Errorf("column %q: struct has no field %q", f.Column, name)
			}
			return st.Field(idx), nil
		}
		if data, err = child("image"); err != nil {
			return nil, err
		}
		for _, d := range []struct {
			name string
			dst  *numericReader
		}{{"height", &ir.h}, {"width", &ir.w}} {
			a, err := child(d.name)
			if err != nil {
				return nil, err
			}
			if *d.dst, err = newNumericReader(a); err != nil {
				return nil, fmt.Errorf("column %q field %q: %w", f.Column, d.name, err)
			}
		}
		isNull := st.IsNull
		img := data
		ir.bytes.isNull = func(i int) bool { return isNull(i) || img.IsNull(i) }
	} else {
		if ir.channels, err = optionalDim(rec, f.ChannelsColumn); err != nil {
			return nil, err
		}
		if ir.h, err = optionalDim(rec, f.HeightColumn); err != nil {
			return nil, err
		}
		if ir.w, err = optionalDim(rec, f.WidthColumn); err != nil {
			return nil, err
		}
	}
	bc, err := newByteColumn(data)
	if err != nil {
		return nil, fmt.Errorf("column %q: %w", f.Column, err)
	}
	if ir.bytes.isNull == nil {
		ir.bytes.isNull = bc.isNull
	}
	ir.bytes.get = bc.get
	switch f.Kind {
	case RawImage:
		ir.encoded = func(int) bool { return false }
	case EncodedImage, EncodedImageWithDim:
		ir.encoded = func(int) bool { return true }
	case Image:
		def := f.Encoded
		ir.encoded = func(int) bool { return def }
		if f.EncodedColumn != "" {
			if a, ok := column(rec, f.EncodedColumn); ok {
				ba, ok := a.(*array.Boolean)
				if !ok {
					return nil, fmt.Errorf("encoded column %q: type %s is not boolean", f.EncodedColumn, a.DataType())
				}
				ir.encoded = func(i int) bool {
					if ba.IsNull(i) {
						return def
					}
					return ba.Value(i)
				}
			}
		}
	}
	return ir, nil
}

// dim reads an optional dimension; null, absent or zero mean unknown (0).
func dim(r numericReader, i int) (int, error) {
	if r == nil {
		return 0, nil
	}
	v, text, err := r(i)
	if errors.Is(err, ErrNull) {
		return 0, nil
	}
	if err != nil || v < 0 || v != float64(int(v)) {
		return 0, fmt.Errorf("bad dimension %s", text)
	}
	return int(v), nil
}

// row is one image row before it is written out.
type imageRow struct {
	raw     []byte      // raw pixels (C×H×W)
	img     image.Image // decoded image
	c, h, w int
}

// load reads row i (decoding it when encoded); want is the field's shape
// so far, zeros unknown.
func (ir *imageRows) load(i int, want []int) (imageRow, error) {
	if ir.bytes.isNull(i) {
		return imageRow{}, ErrNull
	}
	data, err := ir.bytes.get(i)
	if err != nil {
		return imageRow{}, err
	}
	var r imageRow
	if r.c, err = dim(ir.channels, i); err != nil {
		return imageRow{}, err
	}
	if r.h, err = dim(ir.h, i); err != nil {
		return imageRow{}, err
	}
	if r.w, err = dim(ir.w, i); err != nil {
		return imageRow{}, err
	}
	if ir.encoded(i) {
		img, err := imgcodec.Decode(data)
		if err != nil {
			return imageRow{}, fmt.Errorf("decoding %d bytes: %w", len(data), err)
		}
		bnd := img.Bounds()
		if (r.h > 0 && r.h != bnd.Dy()) || (r.w > 0 && r.w != bnd.Dx()) {
			return imageRow{}, fmt.Errorf("decoded image is %d×%d, the row says %d×%d", bnd.Dy(), bnd.Dx(), r.h, r.w)
		}
		r.img, r.h, r.w = img, bnd.Dy(), bnd.Dx()
		r.c = imgcodec.Channels(img, want[0])
		return r, nil
	}
	if r.c == 0 {
		r.c = want[0]
	}
	if r.h == 0 {
		r.h = want[1]
	}
	if r.w == 0 {
		r.w = want[2]
	}
	if r.c == 0 || r.h == 0 || r.w == 0 {
		return imageRow{}, fmt.Errorf("raw image of %d bytes with unknown dimensions %d×%d×%d (set channels, height and width)", len(data), r.c, r.h, r.w)
	}
	if len(data) != r.c*r.h*r.w {
		return imageRow{}, fmt.Errorf("raw image has %d bytes, %d×%d×%d needs %d", len(data), r.c, r.h, r.w, r.c*r.h*r.w)
	}
	r.raw = data
	return r, nil
}

// write stores row r into dst as shape (C, H, W), resizing when allowed.
func (r imageRow) write(dst []byte, shape []int, resize bool) error {
	c, h, w := shape[0], shape[1], shape[2]
	if r.c != c {
		return fmt.Errorf("image has %d channels, the field wants %d", r.c, c)
	}
	if (r.h != h || r.w != w) && !resize {
		return fmt.Errorf("image is %d×%d, the field wants %d×%d (CaffeOnSpark's -resize resamples)", r.h, r.w, h, w)
	}
	src := r.raw
	if r.img != nil {
		if r.h == h && r.w == w {
			imgcodec.WriteCHW(dst, r.img, c)
			return nil
		}
		src = make([]byte, c*r.h*r.w)
		imgcodec.WriteCHW(src, r.img, c)
	}
	imgcodec.ResizeCHW(dst, h, w, src, c, r.h, r.w)
	return nil
}

func (b *Builder) decodeImages(ctx context.Context, rec arrow.RecordBatch, f *Field, arr arrow.Array, rows int, shape []int) (fieldData, bool, []int, error) {
	ir, err := newImageRows(rec, f, arr)
	if err != nil {
		return fieldData{}, false, nil, err
	}
	rowErr := func(i int, err error) error {
		return &RowError{Column: f.Column, Row: b.in + i, Err: err}
	}
	if rows == 0 {
		return fieldData{}, false, shape, nil
	}
	want := shape
	if want == nil {
		want = make([]int, 3)
		copy(want, f.Shape)
	}
	// With b.skip, a row whose image does not load or does not fit the
	// field is recorded in b.bad (by row of this batch) instead of failing
	// the batch; Append then drops it from every field.
	skip := func(i int, err error) bool {
		if !b.skip {
			return false
		}
		b.badMu.Lock()
		if _, seen := b.bad[i]; !seen {
			b.bad[i] = rowErr(i, err).(*RowError)
		}
		b.badMu.Unlock()
		return true
	}
	var first *imageRow
	firstRow := 0
	if shape == nil {
		// The first usable row fixes what the spec left open.
		for ; firstRow < rows; firstRow++ {
			r, err := ir.load(firstRow, want)
			if err != nil {
				if skip(firstRow, err) {
					continue
				}
				return fieldData{}, false, nil, rowErr(firstRow, err)
			}
			got := []int{r.c, r.h, r.w}
			if f.Resize {
				got[1], got[2] = want[1], want[2]
			}
			if shape, err = resolveShape(want, got); err != nil {
				if skip(firstRow, err) {
					continue
				}
				return fieldData{}, false, nil, rowErr(firstRow, err)
			}
			first = &r
			break
		}
		if shape == nil { // every row unusable
			return fieldData{}, false, nil, nil
		}
	}
	size := prod(shape)
	// Raw rows of the field's exact shape, laid end to end, are used in place.
	allRaw := true
	for i := 0; i < rows && allRaw; i++ {
		allRaw = !ir.encoded(i)
	}
	if allRaw {
		view, ok := contiguous(rows, size, ir.bytes.get)
		if ok {
			for i := 0; i < rows; i++ {
				r, err := ir.load(i, shape)
				if err == nil && (r.c != shape[0] || r.h != shape[1] || r.w != shape[2]) {
					err = fmt.Errorf("image is %d×%d×%d, the field wants %d×%d×%d", r.c, r.h, r.w, shape[0], shape[1], shape[2])
				}
				if err != nil && !skip(i, err) {
					return fieldData{}, false, nil, rowErr(i, err)
				}
			}
			return fieldData{u8: view}, true, shape, nil
		}
	}
	fd := b.newU8(rows * size)
	err = parallelFor(ctx, rows, b.workers, func(i int) error {
		if i < firstRow {
			return nil // unusable, recorded above
		}
		var r imageRow
		if i == firstRow && first != nil {
			r = *first
		} else {
			var err error
			if r, err = ir.load(i, shape); err != nil {
				if skip(i, err) {
					return nil
				}
				return rowErr(i, err)
			}
		}
		if err := r.write(fd.u8[i*size:(i+1)*size], shape, f.Resize); err != nil {
			if skip(i, err) {
				return nil
			}
			return rowErr(i, err)
		}
		return nil
	})
	if err != nil {
		fd.buf.Release()
		return fieldData{}, false, nil, err
	}
	return fd, false, shape, nil
}
