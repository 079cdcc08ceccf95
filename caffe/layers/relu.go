package layers

import (
	"github.com/gocaffe/gocaffe/kernels"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// reLU computes y = max(x, 0) + negative_slope·min(x, 0) (leaky when the
// slope is nonzero). It works in place.
type reLU[T blob.Float] struct {
	neuron[T]
	be    kernels.Backend[T]
	slope T
}

func newReLU[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &reLU[T]{neuron: newNeuron[T](), be: layer.Backend[T](ctx), slope: T(ctx.Param.GetReluParam().GetNegativeSlope())}, nil
}

func (l *reLU[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x := bottom[0].DataOn(l.be)
	l.be.ReLUForward(x, top[0].MutableDataOn(l.be).Slice(0, x.Len()), l.slope)
	return nil
}

// Backward: dx = dy where x > 0, dy·slope elsewhere. It reads the bottom
// data, which in place holds the output; its sign matches the input's for
// a nonnegative slope, as in Caffe.
func (l *reLU[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	x := bottom[0].DataOn(l.be)
	n := x.Len()
	l.be.ReLUBackward(x, top[0].DiffOn(l.be).Slice(0, n), bottom[0].MutableDiffOn(l.be).Slice(0, n), l.slope)
	return nil
}
