package layers

import (
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// swish computes y = x·sigmoid(beta·x).
type swish[T blob.Float] struct {
	neuron[T]
	beta T
	sig  []T
}

func newSwish[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &swish[T]{neuron: newNeuron[T](), beta: T(ctx.Param.GetSwishParam().GetBeta())}, nil
}

func (l *swish[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.neuron.Setup(bottom, top); err != nil {
		return err
	}
	if top[0] == bottom[0] {
		return errInPlace("Swish")
	}
	return nil
}

func (l *swish[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if n := bottom[0].Count(); cap(l.sig) < n {
		l.sig = make([]T, n)
	} else {
		l.sig = l.sig[:n]
	}
	return l.neuron.Reshape(bottom, top)
}

func (l *swish[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	y = y[:len(x)]
	for i, v := range x {
		s := T(0.5*math.Tanh(0.5*float64(l.beta*v)) + 0.5)
		l.sig[i] = s
		y[i] = v * s
	}
	return nil
}

// Backward: dy/dx = beta·y + s·(1 - beta·y), with s = sigmoid(beta·x).
func (l *swish[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	y, dy, dx := top[0].HostData(), top[0].HostDiff(), bottom[0].Diff()
	dy = dy[:len(dx)]
	for i := range dx {
		by := l.beta * y[i]
		dx[i] = dy[i] * (by + l.sig[i]*(1-by))
	}
	return nil
}
