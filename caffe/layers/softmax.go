package layers

import (
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// softmax normalises exp(x) over one axis (softmax_param.axis, default 1).
// It works in place.
type softmax[T blob.Float] struct {
	counts
	noBlobs[T]
	axisParam int
	outer     int // count before the axis
	channels  int // size of the axis
	inner     int // count after the axis
}

func newSoftmax[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &softmax[T]{counts: counts{1, 1, 1, 1}, axisParam: int(ctx.Param.GetSoftmaxParam().GetAxis())}, nil
}

func (l *softmax[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *softmax[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	axis, err := bottom[0].CanonicalAxis(l.axisParam)
	if err != nil {
		return err
	}
	l.outer, l.channels, l.inner = bottom[0].CountRange(0, axis), bottom[0].Dim(axis), bottom[0].CountFrom(axis+1)
	if top[0] != bottom[0] {
		top[0].ReshapeLike(bottom[0])
	}
	return nil
}

func (l *softmax[T]) Forward(bottom, top []*blob.Blob[T]) error {
	softmaxForward(bottom[0].Data(), top[0].Data(), l.outer, l.channels, l.inner)
	return nil
}

// softmaxForward writes softmax(x) over the middle axis of an
// (outer, channels, inner) array into y; x and y may be the same slice.
func softmaxForward[T blob.Float](x, y []T, outer, channels, inner int) {
	dim := channels * inner
	for o := 0; o < outer; o++ {
		xo, yo := x[o*dim:(o+1)*dim], y[o*dim:(o+1)*dim]
		for j := 0; j < inner; j++ {
			m := xo[j]
			for c := 1; c < channels; c++ {
				m = max(m, xo[c*inner+j])
			}
			var sum T
			for c := 0; c < channels; c++ {
				e := T(math.Exp(float64(xo[c*inner+j] - m)))
				yo[c*inner+j] = e
				sum += e
			}
			for c := 0; c < channels; c++ {
				yo[c*inner+j] /= sum
			}
		}
	}
}

// Backward: dx = (dy - Σ_c dy·y) · y, per position.
func (l *softmax[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	y, dy, dx := top[0].Data(), top[0].Diff(), bottom[0].Diff()
	dim := l.channels * l.inner
	for o := 0; o < l.outer; o++ {
		yo, dyo, dxo := y[o*dim:(o+1)*dim], dy[o*dim:(o+1)*dim], dx[o*dim:(o+1)*dim]
		for j := 0; j < l.inner; j++ {
			var dot T
			for c := 0; c < l.channels; c++ {
				k := c*l.inner + j
				dot += dyo[k] * yo[k]
			}
			for c := 0; c < l.channels; c++ {
				k := c*l.inner + j
				dxo[k] = (dyo[k] - dot) * yo[k]
			}
		}
	}
	return nil
}
