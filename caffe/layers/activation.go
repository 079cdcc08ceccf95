package layers

import (
	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// activation is an elementwise neuron whose backward pass needs only its
// output: Sigmoid (y = 1 / (1 + exp(-x))) and TanH (y = tanh(x)). It works
// in place, on the layer's backend.
type activation[T blob.Float] struct {
	neuron[T]
	be   kernels.Backend[T]
	kind kernels.Activation
}

// newActivation returns the factory of the activation layer kind.
func newActivation[T blob.Float](kind kernels.Activation) func(layer.Context) (layer.Layer[T], error) {
	return func(ctx layer.Context) (layer.Layer[T], error) {
		return &activation[T]{neuron: newNeuron[T](), be: layer.Backend[T](ctx), kind: kind}, nil
	}
}

func (l *activation[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x := bottom[0].DataOn(l.be)
	l.be.ActivationForward(l.kind, x, top[0].MutableDataOn(l.be).Slice(0, x.Len()))
	return nil
}

func (l *activation[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	y := top[0].DataOn(l.be)
	n := y.Len()
	l.be.ActivationBackward(l.kind, y, top[0].DiffOn(l.be).Slice(0, n), bottom[0].MutableDiffOn(l.be).Slice(0, n))
	return nil
}
