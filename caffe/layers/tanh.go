package layers

import (
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// tanH computes y = tanh(x). It works in place.
type tanH[T blob.Float] struct{ neuron[T] }

func newTanH[T blob.Float](layer.Context) (layer.Layer[T], error) {
	return &tanH[T]{newNeuron[T]()}, nil
}

func (l *tanH[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	y = y[:len(x)]
	for i, v := range x {
		y[i] = T(math.Tanh(float64(v)))
	}
	return nil
}

func (l *tanH[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	y, dy, dx := top[0].HostData(), top[0].HostDiff(), bottom[0].Diff()
	dy = dy[:len(y)]
	dx = dx[:len(y)]
	for i, v := range y {
		dx[i] = dy[i] * (1 - v*v)
	}
	return nil
}
