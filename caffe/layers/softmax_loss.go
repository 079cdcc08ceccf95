package layers

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// softmaxWithLoss computes the multinomial logistic loss of the softmax of
// its first bottom (softmax_param.axis) against integer labels, with
// loss_param's ignore_label and normalization. An optional second top
// receives the probabilities.
type softmaxWithLoss[T blob.Float] struct {
	counts
	noBlobs[T]
	lossBase
	axisParam              int
	outer, channels, inner int
	prob                   *blob.Blob[T]
	valid                  int
}

func newSoftmaxWithLoss[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &softmaxWithLoss[T]{
		counts:    counts{2, 2, 1, 2},
		lossBase:  newLossBase(ctx.Param, caffepb.LossParameter_VALID),
		axisParam: int(ctx.Param.GetSoftmaxParam().GetAxis()),
		prob:      blob.New[T](),
	}, nil
}

func (l *softmaxWithLoss[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *softmaxWithLoss[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if err := checkLabelNum(bottom); err != nil {
		return err
	}
	axis, err := bottom[0].CanonicalAxis(l.axisParam)
	if err != nil {
		return err
	}
	l.outer, l.channels, l.inner = bottom[0].CountRange(0, axis), bottom[0].Dim(axis), bottom[0].CountFrom(axis+1)
	if n := bottom[1].Count(); n != l.outer*l.inner {
		return fmt.Errorf("label count %d must equal prediction count %d / channels %d (N*H*W for axis 1)", n, bottom[0].Count(), l.channels)
	}
	l.prob.ReshapeLike(bottom[0])
	lossTop(top[0])
	if len(top) > 1 {
		top[1].ReshapeLike(bottom[0])
	}
	return nil
}

func (l *softmaxWithLoss[T]) Forward(bottom, top []*blob.Blob[T]) error {
	prob := l.prob.Data()
	softmaxForward(bottom[0].Data(), prob, l.outer, l.channels, l.inner)
	label := bottom[1].Data()
	dim := l.channels * l.inner
	var loss float64
	valid := 0
	for o := 0; o < l.outer; o++ {
		for j := 0; j < l.inner; j++ {
			pos := o*l.inner + j
			c, ignored, err := labelAt(label[pos], pos, l.channels, l.hasIgnore, l.ignore)
			if err != nil {
				return err
			}
			if ignored {
				continue
			}
			p := float64(prob[o*dim+c*l.inner+j])
			loss -= math.Log(max(p, fltMin))
			valid++
		}
	}
	l.valid = valid
	top[0].Data()[0] = T(loss / l.normalizer(l.outer, l.inner, valid))
	if len(top) > 1 {
		copy(top[1].Data(), prob)
	}
	return nil
}

func (l *softmaxWithLoss[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if err := labelGradientError("SoftmaxWithLoss", propagateDown, 1); err != nil {
		return err
	}
	if !propagateDown[0] {
		return nil
	}
	dx, prob, label := bottom[0].Diff(), l.prob.Data(), bottom[1].Data()
	copy(dx, prob)
	dim := l.channels * l.inner
	for o := 0; o < l.outer; o++ {
		for j := 0; j < l.inner; j++ {
			pos := o*l.inner + j
			c, ignored, err := labelAt(label[pos], pos, l.channels, l.hasIgnore, l.ignore)
			if err != nil {
				return err
			}
			if ignored {
				for k := 0; k < l.channels; k++ {
					dx[o*dim+k*l.inner+j] = 0
				}
				continue
			}
			dx[o*dim+c*l.inner+j]--
		}
	}
	scale := top[0].Diff()[0] / T(l.normalizer(l.outer, l.inner, l.valid))
	for i := range dx {
		dx[i] *= scale
	}
	return nil
}
