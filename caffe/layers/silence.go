package layers

import (
	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// silence consumes blobs nobody else uses, so the net does not report them
// as outputs. Its bottoms get zero gradient.
type silence[T blob.Float] struct {
	counts
	noBlobs[T]
}

func newSilence[T blob.Float](layer.Context) (layer.Layer[T], error) {
	return &silence[T]{counts: counts{1, -1, 0, 0}}, nil
}

func (l *silence[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *silence[T]) Reshape(bottom, top []*blob.Blob[T]) error { return nil }

func (l *silence[T]) Forward(bottom, top []*blob.Blob[T]) error { return nil }

func (l *silence[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	for i, b := range bottom {
		if propagateDown[i] {
			clear(b.Diff())
		}
	}
	return nil
}
