package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// reduction reduces all axes from reduction_param.axis on to one value per
// leading index: SUM, ASUM (Σ|x|), SUMSQ (Σx²) or MEAN, times coeff. The
// top keeps the axes before axis (a scalar for axis 0).
type reduction[T blob.Float] struct {
	counts
	noBlobs[T]
	op       caffepb.ReductionParameter_ReductionOp
	axisP    int
	coeff    T
	num, dim int
}

func newReduction[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetReductionParam()
	switch p.GetOperation() {
	case caffepb.ReductionParameter_SUM, caffepb.ReductionParameter_ASUM,
		caffepb.ReductionParameter_SUMSQ, caffepb.ReductionParameter_MEAN:
	default:
		return nil, fmt.Errorf("unknown reduction_param operation %v", p.GetOperation())
	}
	return &reduction[T]{counts: counts{1, 1, 1, 1}, op: p.GetOperation(), axisP: int(p.GetAxis()), coeff: T(p.GetCoeff())}, nil
}

func (l *reduction[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	if top[0] == bottom[0] {
		return errInPlace("Reduction")
	}
	return nil
}

func (l *reduction[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	axis, err := bottom[0].CanonicalAxis(l.axisP)
	if err != nil {
		return fmt.Errorf("reduction axis: %w", err)
	}
	top[0].Reshape(bottom[0].Shape()[:axis]...)
	l.num, l.dim = bottom[0].CountRange(0, axis), bottom[0].CountFrom(axis)
	return nil
}

func (l *reduction[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	for i := 0; i < l.num; i++ {
		var s T
		for _, v := range x[i*l.dim : (i+1)*l.dim] {
			switch l.op {
			case caffepb.ReductionParameter_ASUM:
				if v < 0 {
					v = -v
				}
				s += v
			case caffepb.ReductionParameter_SUMSQ:
				s += v * v
			default:
				s += v
			}
		}
		if l.op == caffepb.ReductionParameter_MEAN {
			s /= T(l.dim)
		}
		y[i] = s * l.coeff
	}
	return nil
}

func (l *reduction[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	x, dx, dy := bottom[0].HostData(), bottom[0].Diff(), top[0].HostDiff()
	for i := 0; i < l.num; i++ {
		g := dy[i] * l.coeff
		if l.op == caffepb.ReductionParameter_MEAN {
			g /= T(l.dim)
		}
		off := i * l.dim
		for k, v := range x[off : off+l.dim] {
			switch l.op {
			case caffepb.ReductionParameter_ASUM:
				switch {
				case v > 0:
					dx[off+k] = g
				case v < 0:
					dx[off+k] = -g
				default:
					dx[off+k] = 0
				}
			case caffepb.ReductionParameter_SUMSQ:
				dx[off+k] = 2 * v * g
			default:
				dx[off+k] = g
			}
		}
	}
	return nil
}
