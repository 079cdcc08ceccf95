package layers

import (
	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// threshold computes y = 1 if x > threshold, else 0. It has no gradient.
type threshold[T blob.Float] struct {
	neuron[T]
	t T
}

func newThreshold[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &threshold[T]{neuron: newNeuron[T](), t: T(ctx.Param.GetThresholdParam().GetThreshold())}, nil
}

func (l *threshold[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	y = y[:len(x)]
	for i, v := range x {
		if v > l.t {
			y[i] = 1
		} else {
			y[i] = 0
		}
	}
	return nil
}

func (l *threshold[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	return noPropagate("Threshold", propagateDown)
}
