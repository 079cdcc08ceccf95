package network

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/modelio"
)

// CopyTrainedLayersFrom copies weights from a trained net (a .caffemodel's
// NetParameter, `layer` form) into the layers of the same name, as Caffe
// does: source layers the net lacks are ignored; a layer's blob count and
// every blob's shape must match (modelio.CopyBlobs), and a mismatch is an
// error wrapping ErrIncompatible and a *modelio.ShapeMismatchError or
// *modelio.BlobCountError that names the layer, the blob, the expected
// shape and the shape found.
func (n *Net[T]) CopyTrainedLayersFrom(trained *caffepb.NetParameter) error {
	if len(trained.GetLayers()) > 0 && len(trained.GetLayer()) == 0 {
		return fmt.Errorf("weights %q use the legacy V1 `layers` form; upgrade them (caffe/prototxt) first", trained.GetName())
	}
	for _, src := range trained.GetLayer() {
		i := n.LayerIndex(src.GetName())
		if i < 0 {
			continue
		}
		if err := modelio.CopyBlobs(src.GetName(), n.layers[i].Blobs(), src.GetBlobs()); err != nil {
			return fmt.Errorf("%w: %w", ErrIncompatible, err)
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
			c.Blobs = append(c.Blobs, modelio.BlobToProto(b, writeDiff))
		}
		out.Layer = append(out.Layer, c)
	}
	return out
}
