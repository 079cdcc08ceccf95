package net

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// BlobProtoShape returns the shape a BlobProto records: its shape field, or
// the legacy (num, channels, height, width) where any of those is set.
func BlobProtoShape(bp *caffepb.BlobProto) []int {
	if bp.Num != nil || bp.Channels != nil || bp.Height != nil || bp.Width != nil {
		return []int{int(bp.GetNum()), int(bp.GetChannels()), int(bp.GetHeight()), int(bp.GetWidth())}
	}
	var s []int
	for _, d := range bp.GetShape().GetDim() {
		s = append(s, int(d))
	}
	return s
}

// protoShapeMatches applies Caffe's Blob::ShapeEquals(BlobProto): a legacy
// 4-D proto matches a blob of at most 4 axes whose legacy shape agrees.
func protoShapeMatches(shape []int, bp *caffepb.BlobProto) bool {
	if bp.Num != nil || bp.Channels != nil || bp.Height != nil || bp.Width != nil {
		if len(shape) > 4 {
			return false
		}
		legacy := func(i int) int {
			if i < -len(shape) {
				return 1
			}
			return shape[len(shape)+i]
		}
		return legacy(-4) == int(bp.GetNum()) && legacy(-3) == int(bp.GetChannels()) &&
			legacy(-2) == int(bp.GetHeight()) && legacy(-1) == int(bp.GetWidth())
	}
	return blob.ShapeEquals(shape, BlobProtoShape(bp))
}

// copyFromProto copies bp's values (data, or double_data) into b.
func copyFromProto[T blob.Float](b *blob.Blob[T], bp *caffepb.BlobProto) error {
	d := b.Data()
	switch {
	case len(bp.GetDoubleData()) > 0:
		if len(bp.GetDoubleData()) != len(d) {
			return fmt.Errorf("%d double_data values for %d elements", len(bp.GetDoubleData()), len(d))
		}
		for i, v := range bp.GetDoubleData() {
			d[i] = T(v)
		}
	default:
		if len(bp.GetData()) != len(d) {
			return fmt.Errorf("%d data values for %d elements", len(bp.GetData()), len(d))
		}
		for i, v := range bp.GetData() {
			d[i] = T(v)
		}
	}
	return nil
}

// CopyTrainedLayersFrom copies weights from a trained net (a .caffemodel's
// NetParameter, `layer` form) into the layers of the same name, as Caffe
// does: source layers the net lacks are ignored; a layer's blob count and
// every blob's shape must match, and a mismatch is an error naming the
// layer, the blob, the expected shape and the shape found.
func (n *Net[T]) CopyTrainedLayersFrom(trained *caffepb.NetParameter) error {
	if len(trained.GetLayers()) > 0 && len(trained.GetLayer()) == 0 {
		return fmt.Errorf("weights %q use the legacy V1 `layers` form; upgrade them (caffe/prototxt) first", trained.GetName())
	}
	for _, src := range trained.GetLayer() {
		i := n.LayerIndex(src.GetName())
		if i < 0 {
			continue
		}
		target := n.layers[i].Blobs()
		if len(target) != len(src.GetBlobs()) {
			return fmt.Errorf("layer %q: %w: the net has %d parameter blobs, the weights have %d",
				src.GetName(), ErrIncompatible, len(target), len(src.GetBlobs()))
		}
		for j, b := range target {
			bp := src.GetBlobs()[j]
			if !protoShapeMatches(b.Shape(), bp) {
				return fmt.Errorf("layer %q: blob %d: %w: expected shape %s, found %s (rename the layer to learn it from scratch)",
					src.GetName(), j, ErrIncompatible, blob.ShapeString(b.Shape()), blob.ShapeString(BlobProtoShape(bp)))
			}
			if err := copyFromProto(b, bp); err != nil {
				return fmt.Errorf("layer %q: blob %d: %w: %w", src.GetName(), j, ErrIncompatible, err)
			}
		}
	}
	return nil
}

// ShareTrainedLayersWith makes this net's parameter blobs use the storage of
// the layers of the same name in other (a test net sharing the train net's
// weights, as Caffe's solver does). Layers other lacks keep their own.
func (n *Net[T]) ShareTrainedLayersWith(other *Net[T]) error {
	for si, src := range other.layers {
		name := other.graph.Layers[si].GetName()
		i := n.LayerIndex(name)
		if i < 0 {
			continue
		}
		target, source := n.layers[i].Blobs(), src.Blobs()
		if len(target) != len(source) {
			return fmt.Errorf("layer %q: %w: %d parameter blobs here, %d in the source net", name, ErrIncompatible, len(target), len(source))
		}
		for j, b := range target {
			if !blob.ShapeEquals(b.Shape(), source[j].Shape()) {
				return fmt.Errorf("layer %q: blob %d: %w: shape %s here, %s in the source net",
					name, j, ErrIncompatible, blob.ShapeString(b.Shape()), blob.ShapeString(source[j].Shape()))
			}
			if err := b.ShareData(source[j]); err != nil {
				return fmt.Errorf("layer %q: blob %d: %w", name, j, err)
			}
		}
	}
	return nil
}

// ToProto returns the net as a .caffemodel writes it (Caffe's
// Net::ToProto): every layer's definition with its blobs, each with its
// shape and values (float data for float32 nets, double_data for float64),
// and the gradients too if writeDiff.
func (n *Net[T]) ToProto(writeDiff bool) *caffepb.NetParameter {
	out := &caffepb.NetParameter{Name: proto.String(n.graph.Name)}
	for i, lp := range n.graph.Layers {
		c := proto.CloneOf(lp)
		c.Blobs = nil
		for _, b := range n.layers[i].Blobs() {
			c.Blobs = append(c.Blobs, blobToProto(b, writeDiff))
		}
		out.Layer = append(out.Layer, c)
	}
	return out
}

func blobToProto[T blob.Float](b *blob.Blob[T], writeDiff bool) *caffepb.BlobProto {
	bp := &caffepb.BlobProto{Shape: &caffepb.BlobShape{}}
	for _, d := range b.Shape() {
		bp.Shape.Dim = append(bp.Shape.Dim, int64(d))
	}
	_, double := any(T(0)).(float64)
	conv := func(src []T) ([]float32, []float64) {
		if double {
			o := make([]float64, len(src))
			for i, v := range src {
				o[i] = float64(v)
			}
			return nil, o
		}
		o := make([]float32, len(src))
		for i, v := range src {
			o[i] = float32(v)
		}
		return o, nil
	}
	bp.Data, bp.DoubleData = conv(b.Data())
	if writeDiff {
		bp.Diff, bp.DoubleDiff = conv(b.Diff())
	}
	return bp
}
