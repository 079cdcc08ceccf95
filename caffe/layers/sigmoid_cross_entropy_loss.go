package layers

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// sigmoidCrossEntropyLoss is the cross entropy of sigmoid(x) against
// targets in [0, 1] of the same count, with ignore_label and normalization
// (default BATCH_SIZE, as in Caffe).
type sigmoidCrossEntropyLoss[T blob.Float] struct {
	counts
	noBlobs[T]
	lossBase
	outer, inner int
	normalizer   float64
	sig          []T
}

func newSigmoidCrossEntropyLoss[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &sigmoidCrossEntropyLoss[T]{counts: counts{2, 2, 1, 1}, lossBase: newLossBase(ctx.Param, caffepb.LossParameter_BATCH_SIZE)}, nil
}

func (l *sigmoidCrossEntropyLoss[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *sigmoidCrossEntropyLoss[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if err := checkLabelNum(bottom); err != nil {
		return err
	}
	if bottom[0].Count() != bottom[1].Count() {
		return fmt.Errorf("input count %d and target count %d must be equal", bottom[0].Count(), bottom[1].Count())
	}
	l.outer, l.inner = bottom[0].Dim(0), bottom[0].CountFrom(1)
	if n := bottom[0].Count(); cap(l.sig) < n {
		l.sig = make([]T, n)
	} else {
		l.sig = l.sig[:n]
	}
	lossTop(top[0])
	return nil
}

func (l *sigmoidCrossEntropyLoss[T]) ignored(t T) bool {
	return l.hasIgnore && int(t) == l.ignore
}

func (l *sigmoidCrossEntropyLoss[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, tg := bottom[0].HostData(), bottom[1].HostData()
	var loss float64
	valid := 0
	for i, v := range x {
		f := float64(v)
		l.sig[i] = T(0.5*math.Tanh(0.5*f) + 0.5)
		if l.ignored(tg[i]) {
			continue
		}
		pos := 0.0
		if f >= 0 {
			pos = 1
		}
		loss -= f*(float64(tg[i])-pos) - math.Log1p(math.Exp(f-2*f*pos))
		valid++
	}
	l.normalizer = l.lossBase.normalizer(l.outer, l.inner, valid)
	top[0].Data()[0] = T(loss / l.normalizer)
	return nil
}

func (l *sigmoidCrossEntropyLoss[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if err := labelGradientError("SigmoidCrossEntropyLoss", propagateDown, 1); err != nil {
		return err
	}
	if !propagateDown[0] {
		return nil
	}
	tg, dx := bottom[1].HostData(), bottom[0].Diff()
	w := top[0].HostDiff()[0] / T(l.normalizer)
	for i, s := range l.sig {
		if l.ignored(tg[i]) {
			dx[i] = 0
		} else {
			dx[i] = (s - tg[i]) * w
		}
	}
	return nil
}
