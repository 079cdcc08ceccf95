package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// hingeLoss is the one-vs-all hinge loss of scores (N, K...) against
// integer labels: Σ max(0, 1 - t·x) with t = +1 for the label and -1
// otherwise, summed (L1) or squared (L2), divided by N.
type hingeLoss[T blob.Float] struct {
	counts
	noBlobs[T]
	lossBase
	l2       bool
	num, dim int
	margin   []T // max(0, 1 - t·x), kept for Backward
}

func newHingeLoss[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	n := ctx.Param.GetHingeLossParam().GetNorm()
	if n != caffepb.HingeLossParameter_L1 && n != caffepb.HingeLossParameter_L2 {
		return nil, fmt.Errorf("unknown hinge_loss_param norm %v", n)
	}
	return &hingeLoss[T]{counts: counts{2, 2, 1, 1}, l2: n == caffepb.HingeLossParameter_L2}, nil
}

func (l *hingeLoss[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *hingeLoss[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if err := checkLabelNum(bottom); err != nil {
		return err
	}
	l.num = bottom[0].Dim(0)
	l.dim = bottom[0].Count() / max(l.num, 1)
	if bottom[1].Count() != l.num {
		return fmt.Errorf("need one label per example: %d labels for %d examples", bottom[1].Count(), l.num)
	}
	if n := bottom[0].Count(); cap(l.margin) < n {
		l.margin = make([]T, n)
	} else {
		l.margin = l.margin[:n]
	}
	lossTop(top[0])
	return nil
}

func (l *hingeLoss[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, label := bottom[0].HostData(), bottom[1].HostData()
	var loss T
	for i := 0; i < l.num; i++ {
		c, _, err := labelAt(label[i], i, l.dim, false, 0)
		if err != nil {
			return err
		}
		for j := 0; j < l.dim; j++ {
			k := i*l.dim + j
			v := 1 + x[k]
			if j == c {
				v = 1 - x[k]
			}
			v = max(v, 0)
			l.margin[k] = v
			if l.l2 {
				loss += v * v
			} else {
				loss += v
			}
		}
	}
	top[0].Data()[0] = loss / T(l.num)
	return nil
}

func (l *hingeLoss[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if err := labelGradientError("HingeLoss", propagateDown, 1); err != nil {
		return err
	}
	if !propagateDown[0] {
		return nil
	}
	label, dx := bottom[1].HostData(), bottom[0].Diff()
	w := top[0].HostDiff()[0] / T(l.num)
	for i := 0; i < l.num; i++ {
		c := int(label[i])
		for j := 0; j < l.dim; j++ {
			k := i*l.dim + j
			m := l.margin[k]
			var g T
			switch {
			case l.l2:
				g = 2 * m
			case m > 0:
				g = 1
			}
			if j == c {
				g = -g
			}
			dx[k] = g * w
		}
	}
	return nil
}
