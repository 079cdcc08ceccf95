package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// euclideanLoss is Σ (a - b)² / (2·N) over two bottoms of equal count per
// example; both bottoms receive gradients.
type euclideanLoss[T blob.Float] struct {
	counts
	noBlobs[T]
	diff []T
	num  int
}

func newEuclideanLoss[T blob.Float](layer.Context) (layer.Layer[T], error) {
	return &euclideanLoss[T]{counts: counts{2, 2, 1, 1}}, nil
}

// IsLoss marks the top as a loss.
func (l *euclideanLoss[T]) IsLoss() {}

// AllowForceBackward allows gradients to both bottoms, as in Caffe.
func (l *euclideanLoss[T]) AllowForceBackward(int) bool { return true }

func (l *euclideanLoss[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *euclideanLoss[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if err := checkLabelNum(bottom); err != nil {
		return err
	}
	if a, b := bottom[0].CountFrom(1), bottom[1].CountFrom(1); a != b {
		return fmt.Errorf("inputs must have the same count per example: %d (shape %v) vs %d (shape %v)", a, bottom[0].Shape(), b, bottom[1].Shape())
	}
	l.num = bottom[0].Dim(0)
	if n := bottom[0].Count(); cap(l.diff) < n {
		l.diff = make([]T, n)
	} else {
		l.diff = l.diff[:n]
	}
	lossTop(top[0])
	return nil
}

func (l *euclideanLoss[T]) Forward(bottom, top []*blob.Blob[T]) error {
	a, b := bottom[0].HostData(), bottom[1].HostData()
	var s T
	for i := range l.diff {
		d := a[i] - b[i]
		l.diff[i] = d
		s += d * d
	}
	top[0].Data()[0] = s / T(l.num) / 2
	return nil
}

func (l *euclideanLoss[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	for i, sign := range []T{1, -1} {
		if !propagateDown[i] {
			continue
		}
		alpha := sign * top[0].HostDiff()[0] / T(l.num)
		dx := bottom[i].Diff()
		for k, d := range l.diff {
			dx[k] = alpha * d
		}
	}
	return nil
}
