package layers

import (
	"fmt"
	"math/rand/v2"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// dropout zeroes each input with probability dropout_ratio at train time
// and scales the survivors by 1/(1 - ratio), so at test time it is the
// identity (Caffe's "inverted" dropout). It works in place.
type dropout[T blob.Float] struct {
	neuron[T]
	train bool
	ratio float64
	scale T
	rng   *rand.Rand
	be    kernels.Backend[T]
	// mask holds scale where an input is kept and 0 where it is dropped,
	// drawn on the host and used by the backend.
	mask *blob.Blob[T]
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
	return &dropout[T]{neuron: newNeuron[T](), train: train, ratio: r, scale: T(1 / (1 - r)), rng: ctx.Rand, be: layer.Backend[T](ctx), mask: blob.New[T]()}, nil
}

func (l *dropout[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if err := l.neuron.Reshape(bottom, top); err != nil {
		return err
	}
	l.mask.ReshapeLike(bottom[0])
	return nil
}

func (l *dropout[T]) Forward(bottom, top []*blob.Blob[T]) error {
	be := l.be
	x := bottom[0].DataOn(be)
	y := top[0].MutableDataOn(be).Slice(0, x.Len())
	if !l.train {
		if top[0] != bottom[0] {
			be.Copy(y, x)
		}
		return nil
	}
	m := l.mask.MutableHostData()[:x.Len()]
	for i := range m {
		if l.rng.Float64() >= l.ratio {
			m[i] = l.scale
		} else {
			m[i] = 0
		}
	}
	be.Mul(x, l.mask.DataOn(be).Slice(0, x.Len()), y)
	return nil
}

func (l *dropout[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	be := l.be
	dx := bottom[0].MutableDiffOn(be)
	dy := top[0].DiffOn(be).Slice(0, dx.Len())
	if !l.train {
		if top[0] != bottom[0] {
			be.Copy(dx, dy)
		}
		return nil
	}
	be.Mul(dy, l.mask.DataOn(be).Slice(0, dx.Len()), dx)
	return nil
}
