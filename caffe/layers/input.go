package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// input declares the net's input blobs (deploy nets): its tops take the
// shapes of input_param (one shape for all, or one per top) and whatever
// data the caller writes into them.
type input[T blob.Float] struct {
	counts
	noBlobs[T]
	shapes []*caffepb.BlobShape
}

func newInput[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &input[T]{counts: counts{0, 0, 1, -1}, shapes: ctx.Param.GetInputParam().GetShape()}, nil
}

func (l *input[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	n := len(l.shapes)
	if n != 0 && n != 1 && n != len(top) {
		return fmt.Errorf("input_param has %d shapes for %d tops; give 0, 1 or one per top", n, len(top))
	}
	for i, t := range top {
		if n == 0 {
			continue
		}
		s := l.shapes[0]
		if n > 1 {
			s = l.shapes[i]
		}
		shape, err := blobShape(s)
		if err != nil {
			return fmt.Errorf("input_param shape %d: %w", i, err)
		}
		t.Reshape(shape...)
	}
	return nil
}

// Reshape keeps the tops' shapes: callers may reshape inputs themselves.
func (l *input[T]) Reshape(bottom, top []*blob.Blob[T]) error { return nil }

// Forward does nothing: the caller fills the tops.
func (l *input[T]) Forward(bottom, top []*blob.Blob[T]) error { return nil }

// Backward does nothing: an input has no bottoms.
func (l *input[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	return nil
}

// blobShape converts a BlobShape to dimensions, rejecting negative ones and
// more than blob.MaxAxes axes.
func blobShape(s *caffepb.BlobShape) ([]int, error) {
	dims := s.GetDim()
	if len(dims) > blob.MaxAxes {
		return nil, fmt.Errorf("%d axes exceed the maximum of %d", len(dims), blob.MaxAxes)
	}
	shape := make([]int, len(dims))
	for i, d := range dims {
		if d < 0 || d > 1<<31-1 {
			return nil, fmt.Errorf("dimension %d is %d", i, d)
		}
		shape[i] = int(d)
	}
	return shape, nil
}
