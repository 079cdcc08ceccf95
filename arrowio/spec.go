package arrowio

import (
	"fmt"
	"slices"
)

// Kind says how one column's value in a row becomes one sample's numbers.
type Kind int

const (
	// Scalar is one number per row: an integer, float or numeric string
	// column (labels; CoSData's STRING, INT and FLOAT tops).
	Scalar Kind = iota
	// Array is a numeric array per row: list, large_list or fixed_size_list
	// of any integer or float type (float-array schemas; CoSData's
	// INT_ARRAY and FLOAT_ARRAY tops). list<float32> is used in place.
	Array
	// RawImage is uint8 pixels per row in C×H×W order: binary,
	// fixed_size_binary, or a list of uint8 (MNIST-style schemas; CoSData's
	// RAW_IMAGE). Used in place when every row has the same size.
	RawImage
	// EncodedImage is PNG or JPEG bytes per row, decoded in parallel
	// (encoded-image schemas; CoSData's ENCODED_IMAGE).
	EncodedImage
	// EncodedImageWithDim is a struct column {image: binary, height: int,
	// width: int} of encoded bytes whose decoded size must match
	// (CoSData's ENCODED_IMAGE_WITH_DIM).
	EncodedImageWithDim
	// Image is raw or encoded bytes per row, chosen by the field's
	// EncodedColumn when present, else by Encoded (CaffeOnSpark's
	// ImageDataFrame).
	Image
)

func (k Kind) String() string {
	switch k {
	case Scalar:
		return "scalar"
	case Array:
		return "array"
	case RawImage:
		return "raw image"
	case EncodedImage:
		return "encoded image"
	case EncodedImageWithDim:
		return "encoded image with dim"
	case Image:
		return "image"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

func (k Kind) isImage() bool { return k >= RawImage }

// Field describes one top of a data layer: which column feeds it and how.
type Field struct {
	// Name is the top's name, used in messages; Column when empty.
	Name string
	// Column is the Arrow column holding the values.
	Column string
	// Kind says how a row's value is read.
	Kind Kind
	// Shape is the per-sample shape before transformation (C, H, W for
	// images; any shape for arrays). Zero dimensions are taken from the
	// data (the dimension columns, the decoded image, or the first row).
	// Every sample of a field must end up with the same shape; a row that
	// differs is an error naming the row, unless Resize is set for images.
	Shape []int
	// ShapeColumn optionally names a list<int> column giving each row's
	// array shape (Array fields); the row's values must match it.
	ShapeColumn string
	// ChannelsColumn, HeightColumn and WidthColumn optionally name integer
	// columns with each row's image dimensions (image fields). They are
	// used when present in the schema; a zero or null value means unknown.
	ChannelsColumn, HeightColumn, WidthColumn string
	// EncodedColumn optionally names a boolean column saying whether a
	// row's bytes are encoded (Image fields); used when present.
	EncodedColumn string
	// Encoded is the default for Image fields without an encoded column.
	Encoded bool
	// Resize resamples images (bilinear) whose height or width differs
	// from Shape, as CaffeOnSpark's -resize does.
	Resize bool
	// Transpose lays a batch of 1-D arrays out as (size, batch) instead of
	// (batch, size), as CoSData's transpose does.
	Transpose bool
	// Transform is applied when a batch is filled; nil means none.
	Transform *Transform
}

func (f *Field) name() string {
	if f.Name != "" {
		return f.Name
	}
	return f.Column
}

// Spec describes how record batches become samples: one Field per top of
// the data layer, in top order.
type Spec struct {
	Fields []Field
}

// Validate checks the spec without looking at data.
func (s Spec) Validate() error {
	if len(s.Fields) == 0 {
		return fmt.Errorf("arrowio spec: no fields")
	}
	for i, f := range s.Fields {
		if f.Column == "" {
			return fmt.Errorf("arrowio spec: field %d (%q): no column", i, f.Name)
		}
		if f.Kind < Scalar || f.Kind > Image {
			return fmt.Errorf("arrowio spec: field %q: unknown kind %d", f.name(), int(f.Kind))
		}
		for _, d := range f.Shape {
			if d < 0 {
				return fmt.Errorf("arrowio spec: field %q: negative dimension in shape %v", f.name(), f.Shape)
			}
		}
		if f.Kind.isImage() && len(f.Shape) != 0 && len(f.Shape) != 3 {
			return fmt.Errorf("arrowio spec: field %q: image shape %v must be (channels, height, width)", f.name(), f.Shape)
		}
		if f.Resize && (!f.Kind.isImage() || len(f.Shape) != 3 || f.Shape[1] == 0 || f.Shape[2] == 0) {
			return fmt.Errorf("arrowio spec: field %q: resize needs an image field with a known height and width", f.name())
		}
		if f.Transpose && f.Kind != Array && f.Kind != Scalar {
			return fmt.Errorf("arrowio spec: field %q: transpose applies only to array fields", f.name())
		}
		if f.Transform != nil {
			if err := f.Transform.validate(); err != nil {
				return fmt.Errorf("arrowio spec: field %q: %w", f.name(), err)
			}
		}
	}
	return nil
}

// EncodedImageSpec is the encoded-image schema: PNG or JPEG bytes in
// imageCol and a label (integer, float or numeric string) in labelCol. The
// images decode to channels×height×width (channels 1: grayscale, 3: BGR,
// 0: as stored; zero height/width: as stored, all rows alike).
func EncodedImageSpec(imageCol, labelCol string, channels, height, width int) Spec {
	return Spec{Fields: []Field{
		{Name: "data", Column: imageCol, Kind: EncodedImage, Shape: []int{channels, height, width}},
		{Name: "label", Column: labelCol, Kind: Scalar},
	}}
}

// FloatArraySpec is the float-array schema: a numeric list column, an
// optional list<int> shape column (empty for none) and a label column.
// shape may be nil (each sample is then 1-D with the first row's length).
func FloatArraySpec(dataCol, shapeCol, labelCol string, shape []int) Spec {
	return Spec{Fields: []Field{
		{Name: "data", Column: dataCol, Kind: Array, Shape: slices.Clone(shape), ShapeColumn: shapeCol},
		{Name: "label", Column: labelCol, Kind: Scalar},
	}}
}

// RawImageSpec is the MNIST-style schema: uint8 pixels (binary or
// list<uint8>) in dataCol, a label, and optional integer columns named
// channels, height and width; the given dimensions fill in what they lack.
func RawImageSpec(dataCol, labelCol string, channels, height, width int) Spec {
	return Spec{Fields: []Field{
		{Name: "data", Column: dataCol, Kind: RawImage, Shape: []int{channels, height, width},
			ChannelsColumn: "channels", HeightColumn: "height", WidthColumn: "width"},
		{Name: "label", Column: labelCol, Kind: Scalar},
	}}
}

// ImageDataFrameSpec is CaffeOnSpark's ImageDataFrame schema: required
// `label` (string) and `data` (binary), optional `id`, `channels`,
// `height`, `width` and `encoded`. channels, height and width are the
// MemoryData layer's; encoded is its image_encoded (the default when a row
// has no `encoded` column); resize is CaffeOnSpark's -resize.
func ImageDataFrameSpec(channels, height, width int, encoded, resize bool) Spec {
	return Spec{Fields: []Field{
		{Name: "data", Column: "data", Kind: Image, Shape: []int{channels, height, width},
			ChannelsColumn: "channels", HeightColumn: "height", WidthColumn: "width",
			EncodedColumn: "encoded", Encoded: encoded, Resize: resize},
		{Name: "label", Column: "label", Kind: Scalar},
	}}
}

// CoSType is a CoSData top's data type (caffe.CoSDataParameter.DataType;
// the values are the proto's enum numbers).
type CoSType int

// CoSData top types, numbered as in Yahoo Caffe's caffe.proto.
const (
	CoSString              CoSType = 0
	CoSInt                 CoSType = 1
	CoSFloat               CoSType = 2
	CoSIntArray            CoSType = 3
	CoSFloatArray          CoSType = 4
	CoSEncodedImage        CoSType = 5
	CoSRawImage            CoSType = 6
	CoSEncodedImageWithDim CoSType = 7
)

// CoSTop is one top of a CoSData layer (caffe.CoSDataParameter.TopBlob),
// the fields GoCaffe reads; zero SampleNumAxes means the proto default 3.
type CoSTop struct {
	Name                    string
	Type                    CoSType
	Channels, Height, Width int
	SampleNumAxes           int
	Transpose               bool
	Transform               *Transform
}

// CoSDataSpec maps a CoSData layer's tops onto fields, as CaffeOnSpark's
// DataFrameSource does: one column per top, named like the top; the
// sample shape is (channels, height, width) cut to sample_num_axes.
// resize is CaffeOnSpark's -resize.
func CoSDataSpec(tops []CoSTop, resize bool) (Spec, error) {
	var s Spec
	for _, t := range tops {
		axes := t.SampleNumAxes
		if axes == 0 {
			axes = 3
		}
		if axes < 0 || axes > 3 {
			return Spec{}, fmt.Errorf("CoSData top %q: sample_num_axes %d not in 1..3", t.Name, axes)
		}
		if t.Transpose && axes != 1 {
			return Spec{}, fmt.Errorf("CoSData top %q: transpose needs sample_num_axes 1, have %d", t.Name, axes)
		}
		shape := []int{t.Channels, t.Height, t.Width}[:axes]
		f := Field{Name: t.Name, Column: t.Name, Shape: shape, Transpose: t.Transpose, Transform: t.Transform}
		switch t.Type {
		case CoSString, CoSInt, CoSFloat:
			f.Kind = Scalar
		case CoSIntArray, CoSFloatArray:
			f.Kind = Array
		case CoSRawImage, CoSEncodedImage, CoSEncodedImageWithDim:
			if axes != 3 {
				return Spec{}, fmt.Errorf("CoSData top %q: image tops need sample_num_axes 3, have %d", t.Name, axes)
			}
			f.Kind = map[CoSType]Kind{CoSRawImage: RawImage, CoSEncodedImage: EncodedImage, CoSEncodedImageWithDim: EncodedImageWithDim}[t.Type]
			f.Resize = resize && t.Height > 0 && t.Width > 0
		default:
			return Spec{}, fmt.Errorf("CoSData top %q: unknown data type %d", t.Name, int(t.Type))
		}
		s.Fields = append(s.Fields, f)
	}
	return s, s.Validate()
}
