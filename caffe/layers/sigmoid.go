package layers

import (
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// sigmoid computes y = 1 / (1 + exp(-x)). It works in place.
type sigmoid[T blob.Float] struct{ neuron[T] }

func newSigmoid[T blob.Float](layer.Context) (layer.Layer[T], error) {
	return &sigmoid[T]{newNeuron[T]()}, nil
}

func (l *sigmoid[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	y = y[:len(x)]
	for i, v := range x {
		// Caffe's form, stable for large |x|.
		y[i] = T(0.5*math.Tanh(0.5*float64(v)) + 0.5)
	}
	return nil
}

func (l *sigmoid[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	y, dy, dx := top[0].HostData(), top[0].HostDiff(), bottom[0].Diff()
	dy = dy[:len(y)]
	dx = dx[:len(y)]
	for i, v := range y {
		dx[i] = dy[i] * v * (1 - v)
	}
	return nil
}
