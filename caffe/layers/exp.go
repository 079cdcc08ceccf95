package layers

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// expLayer computes y = base^(shift + scale·x); base -1 means e. It works in
// place.
type expLayer[T blob.Float] struct {
	neuron[T]
	inner, outer float64 // y = outer·exp(inner·x)
}

func newExp[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetExpParam()
	base, scale, shift := float64(p.GetBase()), float64(p.GetScale()), float64(p.GetShift())
	logBase := 1.0
	if base != -1 {
		if base <= 0 {
			return nil, fmt.Errorf("exp_param base must be positive or -1 (for e), got %g", base)
		}
		logBase = math.Log(base)
	}
	return &expLayer[T]{neuron: newNeuron[T](), inner: logBase * scale, outer: math.Exp(logBase * shift)}, nil
}

func (l *expLayer[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	y = y[:len(x)]
	for i, v := range x {
		y[i] = T(l.outer * math.Exp(l.inner*float64(v)))
	}
	return nil
}

func (l *expLayer[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	y, dy, dx := top[0].HostData(), top[0].HostDiff(), bottom[0].Diff()
	dy = dy[:len(y)]
	dx = dx[:len(y)]
	in := T(l.inner)
	for i, v := range y {
		dx[i] = dy[i] * v * in
	}
	return nil
}
