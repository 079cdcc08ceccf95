package layers

import (
	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// sigmoid computes y = 1 / (1 + exp(-x)). It works in place, on the layer's backend.
type sigmoid[T blob.Float] struct {
	neuron[T]
	be kernels.Backend[T]
}

func newSigmoid[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &sigmoid[T]{neuron: newNeuron[T](), be: layer.Backend[T](ctx)}, nil
}

func (l *sigmoid[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x := bottom[0].DataOn(l.be)
	l.be.ActivationForward(kernels.Sigmoid, x, top[0].MutableDataOn(l.be).Slice(0, x.Len()))
	return nil
}

func (l *sigmoid[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	y := top[0].DataOn(l.be)
	n := y.Len()
	l.be.ActivationBackward(kernels.Sigmoid, y, top[0].DiffOn(l.be).Slice(0, n), bottom[0].MutableDiffOn(l.be).Slice(0, n))
	return nil
}
