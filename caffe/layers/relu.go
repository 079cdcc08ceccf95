package layers

import (
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// reLU computes y = max(x, 0) + negative_slope·min(x, 0) (leaky when the
// slope is nonzero). It works in place.
type reLU[T blob.Float] struct {
	neuron[T]
	slope T
}

func newReLU[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &reLU[T]{neuron: newNeuron[T](), slope: T(ctx.Param.GetReluParam().GetNegativeSlope())}, nil
}

// Forward is branchless: the sign of activations is unpredictable, and a
// mispredicted branch per element costs several times the arithmetic.
func (l *reLU[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].Data(), top[0].Data()
	y = y[:len(x)]
	s := l.slope
	for i, v := range x {
		y[i] = max(v, 0) + s*min(v, 0)
	}
	return nil
}

// Backward: dx = dy where x > 0, dy·slope elsewhere. It reads the bottom
// data, which in place holds the output; its sign matches the input's for
// a nonnegative slope, as in Caffe.
func (l *reLU[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	x, dy, dx := bottom[0].Data(), top[0].Diff(), bottom[0].Diff()
	dy = dy[:len(x)]
	dx = dx[:len(x)]
	switch xs := any(x).(type) {
	case []float32:
		reluBackward32(xs, any(dy).([]float32), any(dx).([]float32), float32(l.slope))
	case []float64:
		reluBackward64(xs, any(dy).([]float64), any(dx).([]float64), float64(l.slope))
	default:
		for i, v := range x {
			if v > 0 {
				dx[i] = dy[i]
			} else {
				dx[i] = dy[i] * l.slope
			}
		}
	}
	return nil
}

// reluBackward32 selects without branches: from the bits b of x, the sign
// bit of (-b) & ^b is set exactly when x > 0 (it excludes ±0 and negatives).
func reluBackward32(x, dy, dx []float32, s float32) {
	dy = dy[:len(x)]
	dx = dx[:len(x)]
	for i, v := range x {
		b := int32(math.Float32bits(v))
		pos := uint32(((-b) & ^b) >> 31)                     // all ones when x > 0
		f := math.Float32frombits(pos & math.Float32bits(1)) // 1 or 0
		dx[i] = dy[i] * (s + (1-s)*f)
	}
}

func reluBackward64(x, dy, dx []float64, s float64) {
	dy = dy[:len(x)]
	dx = dx[:len(x)]
	for i, v := range x {
		b := int64(math.Float64bits(v))
		pos := uint64(((-b) & ^b) >> 63)
		f := math.Float64frombits(pos & math.Float64bits(1))
		dx[i] = dy[i] * (s + (1-s)*f)
	}
}
