package layers

import (
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// eLU computes y = x for x > 0, alpha·(exp(x) - 1) otherwise.
type eLU[T blob.Float] struct {
	neuron[T]
	alpha T
}

func newELU[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &eLU[T]{neuron: newNeuron[T](), alpha: T(ctx.Param.GetEluParam().GetAlpha())}, nil
}

func (l *eLU[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	y = y[:len(x)]
	for i, v := range x {
		if v > 0 {
			y[i] = v
		} else {
			y[i] = l.alpha * T(math.Expm1(float64(v)))
		}
	}
	return nil
}

// Backward uses y + alpha for the negative side, from the top data, and
// the input's sign from the bottom data (the output's sign in place, which
// is the same for alpha > 0).
func (l *eLU[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	x, y, dy, dx := bottom[0].HostData(), top[0].HostData(), top[0].HostDiff(), bottom[0].Diff()
	y = y[:len(x)]
	dy = dy[:len(x)]
	dx = dx[:len(x)]
	for i, v := range x {
		if v > 0 {
			dx[i] = dy[i]
		} else {
			dx[i] = dy[i] * (y[i] + l.alpha)
		}
	}
	return nil
}
