package layers

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// multinomialLogisticLoss is -Σ log(p[label]) / N over probabilities
// (N, K...) and one integer label per example; probabilities are floored
// at 1e-20 as in Caffe.
type multinomialLogisticLoss[T blob.Float] struct {
	counts
	noBlobs[T]
	lossBase
	num, dim int
}

func newMultinomialLogisticLoss[T blob.Float](layer.Context) (layer.Layer[T], error) {
	return &multinomialLogisticLoss[T]{counts: counts{2, 2, 1, 1}}, nil
}

func (l *multinomialLogisticLoss[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *multinomialLogisticLoss[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if err := checkLabelNum(bottom); err != nil {
		return err
	}
	l.num = bottom[0].Dim(0)
	l.dim = bottom[0].Count() / max(l.num, 1)
	if bottom[1].Count() != l.num {
		return fmt.Errorf("need one label per example: label shape %v for %d examples", bottom[1].Shape(), l.num)
	}
	lossTop(top[0])
	return nil
}

func (l *multinomialLogisticLoss[T]) Forward(bottom, top []*blob.Blob[T]) error {
	p, label := bottom[0].HostData(), bottom[1].HostData()
	var loss float64
	for i := 0; i < l.num; i++ {
		c, _, err := labelAt(label[i], i, l.dim, false, 0)
		if err != nil {
			return err
		}
		loss -= math.Log(math.Max(float64(p[i*l.dim+c]), logThreshold))
	}
	top[0].Data()[0] = T(loss / float64(l.num))
	return nil
}

func (l *multinomialLogisticLoss[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if err := labelGradientError("MultinomialLogisticLoss", propagateDown, 1); err != nil {
		return err
	}
	if !propagateDown[0] {
		return nil
	}
	p, label, dx := bottom[0].HostData(), bottom[1].HostData(), bottom[0].Diff()
	clear(dx)
	scale := -float64(top[0].HostDiff()[0]) / float64(l.num)
	for i := 0; i < l.num; i++ {
		k := i*l.dim + int(label[i])
		dx[k] = T(scale / math.Max(float64(p[k]), logThreshold))
	}
	return nil
}
