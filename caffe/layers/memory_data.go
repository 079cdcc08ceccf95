package layers

import (
	"errors"
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// ErrNoSource is returned by a fed data layer's Forward before a source is
// attached.
var ErrNoSource = errors.New("no batch source attached (the net or training loop must call SetSource)")

// memoryData is Caffe's MemoryData layer, fed by a layer.BatchSource: tops
// data (batch_size, channels, height, width) and, optionally, label
// (batch_size). With transform_param.crop_size the data top is
// (batch_size, channels, crop_size, crop_size): the source crops, as Caffe's
// data layers do (the Spark-fed sources' samplers; a Caffe Data layer read
// through Spark is rewritten into this layer). CaffeOnSpark's source/source_class fields name the source;
// the net or training loop resolves them and attaches it with SetSource.
type memoryData[T blob.Float] struct {
	counts
	noBlobs[T]
	name  string
	typ   string // layer type for messages: MemoryData, Data
	shape [4]int
	src   layer.BatchSource[T]
}

func newMemoryData[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetMemoryDataParam()
	l := &memoryData[T]{counts: counts{0, 0, 1, 2}, name: ctx.Param.GetName(), typ: "MemoryData",
		shape: [4]int{int(p.GetBatchSize()), int(p.GetChannels()), int(p.GetHeight()), int(p.GetWidth())}}
	for i, what := range []string{"batch_size", "channels", "height", "width"} {
		if l.shape[i] <= 0 {
			return nil, fmt.Errorf("memory_data_param %s must be positive, got %d", what, l.shape[i])
		}
	}
	if c := int(ctx.Param.GetTransformParam().GetCropSize()); c > 0 {
		if c > l.shape[2] || c > l.shape[3] {
			return nil, fmt.Errorf("transform_param.crop_size %d is larger than the %d×%d images", c, l.shape[2], l.shape[3])
		}
		l.shape[2], l.shape[3] = c, c
	}
	return l, nil
}

// SetSource attaches the source Forward pulls batches from.
func (l *memoryData[T]) SetSource(src layer.BatchSource[T]) { l.src = src }

func (l *memoryData[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *memoryData[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	top[0].Reshape(l.shape[:]...)
	if len(top) > 1 {
		top[1].Reshape(l.shape[0])
	}
	return nil
}

func (l *memoryData[T]) Forward(bottom, top []*blob.Blob[T]) error {
	if l.src == nil {
		return fmt.Errorf("%s %q: %w", l.typ, l.name, ErrNoSource)
	}
	if err := l.src.Next(top); err != nil {
		return fmt.Errorf("%s %q: next batch: %w", l.typ, l.name, err)
	}
	return nil
}

// Backward does nothing: the layer has no bottoms.
func (l *memoryData[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	return nil
}
