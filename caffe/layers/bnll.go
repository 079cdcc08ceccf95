package layers

import (
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// bnll computes the binomial normal log likelihood y = log(1 + exp(x)),
// in Caffe's overflow-safe form.
type bnll[T blob.Float] struct{ neuron[T] }

func newBNLL[T blob.Float](layer.Context) (layer.Layer[T], error) {
	return &bnll[T]{newNeuron[T]()}, nil
}

func (l *bnll[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.neuron.Setup(bottom, top); err != nil {
		return err
	}
	if top[0] == bottom[0] {
		return errInPlace("BNLL")
	}
	return nil
}

func (l *bnll[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	y = y[:len(x)]
	for i, v := range x {
		f := float64(v)
		if f > 0 {
			y[i] = T(f + math.Log1p(math.Exp(-f)))
		} else {
			y[i] = T(math.Log1p(math.Exp(f)))
		}
	}
	return nil
}

// bnllThreshold caps exp's argument in Backward, as Caffe's kBNLL_THRESHOLD.
const bnllThreshold = 50

func (l *bnll[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	x, dy, dx := bottom[0].HostData(), top[0].HostDiff(), bottom[0].Diff()
	dy = dy[:len(x)]
	dx = dx[:len(x)]
	for i, v := range x {
		e := math.Exp(math.Min(float64(v), bnllThreshold))
		dx[i] = dy[i] * T(e/(e+1))
	}
	return nil
}
