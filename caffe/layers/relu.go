package layers

import (
	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// reLU computes y = max(x, 0) + negative_slope·min(x, 0) (leaky when the
// slope is nonzero). It works in place.
type reLU[T blob.Float] struct {
	neuron[T]
	slope T
}

func newReLU[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &reLU[T]{neuron: newNeuron[T](), slope: T(ctx.Param.GetReluParam().GetNegativeSlope())}, nil
}

func (l *reLU[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].Data(), top[0].Data()
	y = y[:len(x)]
	s := l.slope
	for i, v := range x {
		if v > 0 {
			y[i] = v
		} else {
			y[i] = v * s
		}
	}
	return nil
}

// Backward reads the bottom data, which in place holds the output; its sign
// matches the input's for a nonnegative slope, as in Caffe.
func (l *reLU[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	x, dy, dx := bottom[0].Data(), top[0].Diff(), bottom[0].Diff()
	dy = dy[:len(x)]
	dx = dx[:len(x)]
	s := l.slope
	for i, v := range x {
		if v > 0 {
			dx[i] = dy[i]
		} else {
			dx[i] = dy[i] * s
		}
	}
	return nil
}
