package layers

import (
	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// split gives one bottom to several consumers: every top shares the
// bottom's data, and Backward sums the tops' diffs. Nets insert it where a
// blob feeds more than one layer. On a device the tops share the
// bottom's device memory too, and the sum runs on the backend.
type split[T blob.Float] struct {
	counts
	noBlobs[T]
	be kernels.Backend[T]
}

func newSplit[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &split[T]{counts: counts{1, 1, 1, -1}, be: layer.Backend[T](ctx)}, nil
}

func (l *split[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	for _, t := range top {
		if t == bottom[0] {
			return errInPlace("Split")
		}
	}
	return nil
}

func (l *split[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	for _, t := range top {
		t.ReshapeLike(bottom[0])
		if err := t.ShareData(bottom[0]); err != nil {
			return err
		}
	}
	return nil
}

// Forward does nothing: the tops share the bottom's data.
func (l *split[T]) Forward(bottom, top []*blob.Blob[T]) error { return nil }

func (l *split[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	be := l.be
	dx := bottom[0].MutableDiffOn(be)
	n := dx.Len()
	be.Copy(dx, top[0].DiffOn(be).Slice(0, n))
	for _, t := range top[1:] {
		be.Axpy(1, t.DiffOn(be).Slice(0, n), dx)
	}
	return nil
}
