package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// parameter exposes a learned blob of parameter_param.shape as its top
// (zero until weights are loaded, as in Caffe). The top shares the blob's
// data; Backward adds the top's diff into the blob's.
type parameter[T blob.Float] struct {
	counts
	shape []int
	p     *blob.Blob[T]
}

func newParameter[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	s, err := blobShape(ctx.Param.GetParameterParam().GetShape())
	if err != nil {
		return nil, fmt.Errorf("parameter_param shape: %w", err)
	}
	return &parameter[T]{counts: counts{0, 0, 1, 1}, shape: s}, nil
}

func (l *parameter[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	l.p = blob.New[T](l.shape...)
	clear(l.p.Data())
	return nil
}

func (l *parameter[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	top[0].Reshape(l.shape...)
	return top[0].ShareData(l.p)
}

func (l *parameter[T]) Blobs() []*blob.Blob[T] { return []*blob.Blob[T]{l.p} }

// Forward does nothing: the top shares the parameter's data.
func (l *parameter[T]) Forward(bottom, top []*blob.Blob[T]) error { return nil }

func (l *parameter[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	dp := l.p.Diff()
	for i, g := range top[0].Diff()[:len(dp)] {
		dp[i] += g
	}
	return nil
}
