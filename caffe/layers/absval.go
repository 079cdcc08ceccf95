package layers

import (
	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// absVal computes y = |x|; its gradient at 0 is 0, as Caffe's sign().
type absVal[T blob.Float] struct{ neuron[T] }

func newAbsVal[T blob.Float](layer.Context) (layer.Layer[T], error) {
	return &absVal[T]{newNeuron[T]()}, nil
}

func (l *absVal[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.neuron.Setup(bottom, top); err != nil {
		return err
	}
	if top[0] == bottom[0] {
		return errInPlace("AbsVal")
	}
	return nil
}

func (l *absVal[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	y = y[:len(x)]
	for i, v := range x {
		if v < 0 {
			v = -v
		}
		y[i] = v
	}
	return nil
}

func (l *absVal[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	x, dy, dx := bottom[0].HostData(), top[0].HostDiff(), bottom[0].Diff()
	dy = dy[:len(x)]
	dx = dx[:len(x)]
	for i, v := range x {
		switch {
		case v > 0:
			dx[i] = dy[i]
		case v < 0:
			dx[i] = -dy[i]
		default:
			dx[i] = 0
		}
	}
	return nil
}
