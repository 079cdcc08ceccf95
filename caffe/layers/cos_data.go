package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// cosData is CaffeOnSpark's CoSData layer: a data layer fed by a
// layer.BatchSource whose tops are declared in cos_data_param, one `top`
// entry per top blob (a DataFrame column). Each top has the shape
// (batch_size, channels, height, width) cut to 1+sample_num_axes axes, using
// out_channels/out_height/out_width where set (the shape after the top's
// transform); a transposed top is (channels, batch_size).
type cosData[T blob.Float] struct {
	noBlobs[T]
	name   string
	shapes [][]int
	src    layer.BatchSource[T]
}

func newCoSData[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetCosDataParam()
	if p == nil {
		return nil, fmt.Errorf("CoSData needs cos_data_param")
	}
	if len(p.GetTop()) != len(ctx.Param.GetTop()) {
		return nil, fmt.Errorf("cos_data_param declares %d tops, the layer has %d", len(p.GetTop()), len(ctx.Param.GetTop()))
	}
	batch := int(p.GetBatchSize())
	if batch <= 0 {
		return nil, fmt.Errorf("cos_data_param batch_size must be positive, got %d", batch)
	}
	l := &cosData[T]{name: ctx.Param.GetName()}
	for i, t := range p.GetTop() {
		s, err := cosTopShape(batch, t)
		if err != nil {
			return nil, fmt.Errorf("cos_data_param top %d (%q): %w", i, t.GetName(), err)
		}
		l.shapes = append(l.shapes, s)
	}
	return l, nil
}

func cosTopShape(batch int, t *caffepb.CoSDataParameter_TopBlob) ([]int, error) {
	pick := func(out, in uint32) int {
		if out != 0 {
			return int(out)
		}
		return int(in)
	}
	c := pick(t.GetOutChannels(), t.GetChannels())
	h := pick(t.GetOutHeight(), t.GetHeight())
	w := pick(t.GetOutWidth(), t.GetWidth())
	axes := int(t.GetSampleNumAxes())
	if axes > 3 {
		return nil, fmt.Errorf("sample_num_axes %d: at most 3", axes)
	}
	if t.GetTranspose() {
		if axes != 1 {
			return nil, fmt.Errorf("transpose needs sample_num_axes 1, got %d", axes)
		}
		return []int{c, batch}, nil
	}
	full := []int{batch, c, h, w}
	for _, d := range full[1 : 1+axes] {
		if d <= 0 {
			return nil, fmt.Errorf("dimensions %v: channels, height and width used by sample_num_axes %d must be positive", full[1:], axes)
		}
	}
	return full[:1+axes], nil
}

// BlobCounts implements layer.BlobCounts: no bottoms, at least one top.
func (l *cosData[T]) BlobCounts() (minBottom, maxBottom, minTop, maxTop int) {
	return 0, 0, 1, -1
}

// SetSource attaches the source Forward pulls batches from.
func (l *cosData[T]) SetSource(src layer.BatchSource[T]) { l.src = src }

func (l *cosData[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if len(bottom) != 0 || len(top) != len(l.shapes) {
		return fmt.Errorf("takes no bottoms and %d tops, got %d and %d", len(l.shapes), len(bottom), len(top))
	}
	return nil
}

func (l *cosData[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	for i, s := range l.shapes {
		top[i].Reshape(s...)
	}
	return nil
}

func (l *cosData[T]) Forward(bottom, top []*blob.Blob[T]) error {
	if l.src == nil {
		return fmt.Errorf("CoSData %q: %w", l.name, ErrNoSource)
	}
	if err := l.src.Next(top); err != nil {
		return fmt.Errorf("CoSData %q: next batch: %w", l.name, err)
	}
	return nil
}

// Backward does nothing: the layer has no bottoms.
func (l *cosData[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	return nil
}
