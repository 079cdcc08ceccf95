package layers

import (
	"fmt"
	"math/rand/v2"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// dropout zeroes each input with probability dropout_ratio at train time
// and scales the survivors by 1/(1 - ratio), so at test time it is the
// identity (Caffe's "inverted" dropout). It works in place.
type dropout[T blob.Float] struct {
	neuron[T]
	maskN int // length of mask, set by Reshape
	train bool
	ratio float64
	scale T
	rng   *rand.Rand
	mask  []bool
}

func newDropout[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	r := float64(ctx.Param.GetDropoutParam().GetDropoutRatio())
	if r < 0 || r >= 1 {
		return nil, fmt.Errorf("dropout_ratio must be in [0, 1), got %g", r)
	}
	train := ctx.Phase == caffepb.Phase_TRAIN
	if train && ctx.Rand == nil {
		return nil, fmt.Errorf("dropout needs a random source at train time")
	}
	return &dropout[T]{neuron: newNeuron[T](), train: train, ratio: r, scale: T(1 / (1 - r)), rng: ctx.Rand}, nil
}

func (l *dropout[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if err := l.neuron.Reshape(bottom, top); err != nil {
		return err
	}
	l.maskN = bottom[0].Count() // allocated by Forward
	return nil
}

func (l *dropout[T]) Forward(bottom, top []*blob.Blob[T]) error {
	l.mask = sized(l.mask, l.maskN)
	x, y := bottom[0].Data(), top[0].Data()
	y = y[:len(x)]
	if !l.train {
		copy(y, x)
		return nil
	}
	m := l.mask[:len(x)]
	for i, v := range x {
		keep := l.rng.Float64() >= l.ratio
		m[i] = keep
		if keep {
			y[i] = v * l.scale
		} else {
			y[i] = 0
		}
	}
	return nil
}

func (l *dropout[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	dy, dx := top[0].Diff(), bottom[0].Diff()
	dy = dy[:len(dx)]
	if !l.train {
		copy(dx, dy)
		return nil
	}
	m := l.mask[:len(dx)]
	for i := range dx {
		if m[i] {
			dx[i] = dy[i] * l.scale
		} else {
			dx[i] = 0
		}
	}
	return nil
}
