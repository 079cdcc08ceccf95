package modelio

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// LayerBlobs indexes a model's stored blobs by layer name. Layers without
// blobs are left out. When two layers share a name the later one wins, as
// when Caffe copies them in order. Call it on an upgraded net (ReadCaffemodel
// upgrades).
func LayerBlobs(net *caffepb.NetParameter) map[string][]*caffepb.BlobProto {
	m := make(map[string][]*caffepb.BlobProto, len(net.GetLayer()))
	for _, l := range net.GetLayer() {
		if len(l.Blobs) > 0 {
			m[l.GetName()] = l.Blobs
		}
	}
	return m
}

// BlobCountError says a model holds a different number of blobs for a layer
// than the net's layer has.
type BlobCountError struct {
	Layer     string
	Want, Got int // the net's count, the model's count
}

func (e *BlobCountError) Error() string {
	return fmt.Sprintf("layer %q: the net's layer has %d parameter blobs, the model has %d", e.Layer, e.Want, e.Got)
}

// ShapeMismatchError says a stored blob does not fit the net's blob.
type ShapeMismatchError struct {
	Layer string
	// Index is the blob's position in the layer (0 weights, 1 bias, ...).
	Index int
	// Want is the net's shape; Got the model's (for legacy blobs the 4-D
	// num, channels, height, width).
	Want, Got []int
	// Legacy is set when the model's blob uses the 4-D legacy fields; then
	// Want is compared right-aligned and padded with 1s, as Caffe does.
	Legacy bool
}

func (e *ShapeMismatchError) Error() string {
	legacy := ""
	if e.Legacy {
		legacy = " (legacy num/channels/height/width)"
	}
	return fmt.Sprintf("layer %q: blob %d: shape mismatch: the net expects %s, the model has %s%s",
		e.Layer, e.Index, shapeString(e.Want), shapeString(e.Got), legacy)
}

// shapeString formats a shape as Caffe logs it: "20 1 5 5 (500)".
func shapeString(s []int) string {
	var b strings.Builder
	n := 1
	for _, d := range s {
		b.WriteString(strconv.Itoa(d))
		b.WriteByte(' ')
		n *= d
	}
	fmt.Fprintf(&b, "(%d)", n)
	return b.String()
}

// IsLegacyShape reports whether p gives its shape in the 4-D legacy fields.
func IsLegacyShape(p *caffepb.BlobProto) bool {
	return p.Num != nil || p.Channels != nil || p.Height != nil || p.Width != nil
}

// ProtoShape returns a stored blob's shape: shape.dim, or for legacy blobs
// (num, channels, height, width).
func ProtoShape(p *caffepb.BlobProto) []int {
	if IsLegacyShape(p) {
		return []int{int(p.GetNum()), int(p.GetChannels()), int(p.GetHeight()), int(p.GetWidth())}
	}
	s := make([]int, len(p.GetShape().GetDim()))
	for i, d := range p.GetShape().GetDim() {
		s[i] = int(d)
	}
	return s
}

// ShapeMatches reports whether stored blob p fits a blob of shape want, as
// Caffe's Blob::ShapeEquals: legacy 4-D blobs match when want has at most 4
// axes and, padded with leading 1s to 4 axes, equals (num, channels,
// height, width); other blobs must have exactly shape want.
func ShapeMatches(want []int, p *caffepb.BlobProto) bool {
	if IsLegacyShape(p) {
		if len(want) > 4 {
			return false
		}
		legacy := [4]int{1, 1, 1, 1}
		copy(legacy[4-len(want):], want)
		return legacy == [4]int{int(p.GetNum()), int(p.GetChannels()), int(p.GetHeight()), int(p.GetWidth())}
	}
	dims := p.GetShape().GetDim()
	if len(dims) != len(want) {
		return false
	}
	for i, d := range dims {
		if int64(want[i]) != d {
			return false
		}
	}
	return true
}

// CopyBlobs copies one layer's stored blobs into the net's blobs, as
// Caffe's Net::CopyTrainedLayersFrom does for a layer: the counts must
// match (*BlobCountError) and every shape must match (*ShapeMismatchError,
// see ShapeMatches). Values come from double_data when present, else data,
// converted to T; a stored blob whose value count differs from its shape is
// an error too. Nothing is copied unless every blob fits.
func CopyBlobs[T blob.Float](layer string, dst []*blob.Blob[T], src []*caffepb.BlobProto) error {
	if len(dst) != len(src) {
		return &BlobCountError{Layer: layer, Want: len(dst), Got: len(src)}
	}
	for i, p := range src {
		if !ShapeMatches(dst[i].Shape(), p) {
			return &ShapeMismatchError{Layer: layer, Index: i, Want: append([]int(nil), dst[i].Shape()...), Got: ProtoShape(p), Legacy: IsLegacyShape(p)}
		}
		if n := valueCount(p); n != dst[i].Count() {
			return fmt.Errorf("layer %q: blob %d: the model stores %d values for shape %s", layer, i, n, shapeString(dst[i].Shape()))
		}
	}
	for i, p := range src {
		copyValues(dst[i].Data(), p)
	}
	return nil
}

func valueCount(p *caffepb.BlobProto) int {
	if len(p.DoubleData) > 0 {
		return len(p.DoubleData)
	}
	return len(p.Data)
}

func copyValues[T blob.Float](dst []T, p *caffepb.BlobProto) {
	if len(p.DoubleData) > 0 {
		for i, v := range p.DoubleData {
			dst[i] = T(v)
		}
		return
	}
	for i, v := range p.Data {
		dst[i] = T(v)
	}
}

// BlobFromProto returns a new blob with p's shape and values (data, or
// double_data when present), converted to T; with diff, also the stored
// diff (diff or double_diff) when there is one. Like Caffe's
// Blob::FromProto it checks the value counts against the shape.
func BlobFromProto[T blob.Float](p *caffepb.BlobProto, diff bool) (*blob.Blob[T], error) {
	shape := ProtoShape(p)
	if len(shape) > blob.MaxAxes {
		return nil, fmt.Errorf("blob shape %v has more than %d axes", shape, blob.MaxAxes)
	}
	n := valueCount(p)
	count := 1
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("blob shape %v has a negative dimension", shape)
		}
		if d != 0 && count > n/d+1 {
			return nil, fmt.Errorf("blob of shape %v stores only %d values", shape, n)
		}
		count *= d
	}
	if n != count {
		return nil, fmt.Errorf("blob of shape %s stores %d values", shapeString(shape), n)
	}
	b := blob.New[T](shape...)
	copyValues(b.Data(), p)
	if diff && (len(p.DoubleDiff) > 0 || len(p.Diff) > 0) {
		d := b.Diff()
		switch {
		case len(p.DoubleDiff) == len(d):
			for i, v := range p.DoubleDiff {
				d[i] = T(v)
			}
		case len(p.Diff) == len(d):
			for i, v := range p.Diff {
				d[i] = T(v)
			}
		default:
			return nil, fmt.Errorf("blob of shape %s stores %d diff values", shapeString(shape), max(len(p.Diff), len(p.DoubleDiff)))
		}
	}
	return b, nil
}

// BlobToProto stores b as Caffe's Blob::ToProto does: the shape, then the
// values in data (float32 blobs) or double_data (float64 blobs), and with
// diff also the gradient.
func BlobToProto[T blob.Float](b *blob.Blob[T], diff bool) *caffepb.BlobProto {
	p := &caffepb.BlobProto{Shape: &caffepb.BlobShape{Dim: make([]int64, b.NumAxes())}}
	for i, d := range b.Shape() {
		p.Shape.Dim[i] = int64(d)
	}
	switch any(*new(T)).(type) {
	case float32:
		p.Data = toFloat32(b.Data())
		if diff {
			p.Diff = toFloat32(b.Diff())
		}
	default:
		p.DoubleData = toFloat64(b.Data())
		if diff {
			p.DoubleDiff = toFloat64(b.Diff())
		}
	}
	return p
}

func toFloat32[T blob.Float](s []T) []float32 {
	out := make([]float32, len(s))
	for i, v := range s {
		out[i] = float32(v)
	}
	return out
}

func toFloat64[T blob.Float](s []T) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}
