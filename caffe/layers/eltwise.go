package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// eltwise combines same-shaped bottoms elementwise: SUM (with one coeff
// per bottom), PROD or MAX (first maximum wins ties).
type eltwise[T blob.Float] struct {
	counts
	noBlobs[T]
	op     caffepb.EltwiseParameter_EltwiseOp
	coeff  []T
	stable bool
	argmax []int32
	be     kernels.Backend[T]
}

func newEltwise[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetEltwiseParam()
	l := &eltwise[T]{counts: counts{2, -1, 1, 1}, op: p.GetOperation(), stable: p.GetStableProdGrad(), be: layer.Backend[T](ctx)}
	if len(p.GetCoeff()) > 0 && l.op != caffepb.EltwiseParameter_SUM {
		return nil, fmt.Errorf("eltwise_param coeff applies only to SUM, not %v", l.op)
	}
	for _, c := range p.GetCoeff() {
		l.coeff = append(l.coeff, T(c))
	}
	return l, nil
}

func (l *eltwise[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	if len(l.coeff) == 0 {
		for range bottom {
			l.coeff = append(l.coeff, 1)
		}
	}
	if len(l.coeff) != len(bottom) {
		return fmt.Errorf("eltwise_param has %d coeffs for %d bottoms", len(l.coeff), len(bottom))
	}
	return nil
}

func (l *eltwise[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	for i, b := range bottom[1:] {
		if err := sameShape(fmt.Sprintf("eltwise bottom %d", i+1), bottom[0], b); err != nil {
			return err
		}
	}
	if top[0] != bottom[0] {
		top[0].ReshapeLike(bottom[0])
	}
	if l.op == caffepb.EltwiseParameter_MAX {
		n := bottom[0].Count()
		if cap(l.argmax) < n {
			l.argmax = make([]int32, n)
		}
		l.argmax = l.argmax[:n]
	}
	return nil
}

func (l *eltwise[T]) Forward(bottom, top []*blob.Blob[T]) error {
	if l.op == caffepb.EltwiseParameter_SUM {
		// On the backend; PROD and MAX compute on the host below.
		be := l.be
		y := top[0].MutableDataOn(be)
		be.Fill(y, 0)
		for k, b := range bottom {
			be.Axpy(l.coeff[k], b.DataOn(be), y)
		}
		return nil
	}
	y := top[0].Data()
	x0 := bottom[0].HostData()
	y = y[:len(x0)]
	switch l.op {
	case caffepb.EltwiseParameter_PROD:
		x1 := bottom[1].HostData()
		for i := range y {
			y[i] = x0[i] * x1[i]
		}
		for _, b := range bottom[2:] {
			for i, v := range b.Data()[:len(y)] {
				y[i] *= v
			}
		}
	case caffepb.EltwiseParameter_SUM:
		c := l.coeff[0]
		for i, v := range x0 {
			y[i] = c * v
		}
		for k, b := range bottom[1:] {
			c := l.coeff[k+1]
			for i, v := range b.Data()[:len(y)] {
				y[i] += c * v
			}
		}
	case caffepb.EltwiseParameter_MAX:
		x1 := bottom[1].HostData()
		for i := range y {
			if x1[i] > x0[i] {
				y[i], l.argmax[i] = x1[i], 1
			} else {
				y[i], l.argmax[i] = x0[i], 0
			}
		}
		for k, b := range bottom[2:] {
			for i, v := range b.Data()[:len(y)] {
				if v > y[i] {
					y[i], l.argmax[i] = v, int32(k+2)
				}
			}
		}
	default:
		return fmt.Errorf("unknown eltwise operation %v", l.op)
	}
	return nil
}

func (l *eltwise[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if l.op == caffepb.EltwiseParameter_SUM {
		be := l.be
		dy := top[0].DiffOn(be)
		for k, b := range bottom {
			if propagateDown[k] {
				dx := b.MutableDiffOn(be)
				be.Copy(dx, dy)
				if c := l.coeff[k]; c != 1 {
					be.Scal(c, dx)
				}
			}
		}
		return nil
	}
	y, dy := top[0].HostData(), top[0].HostDiff()
	for k, b := range bottom {
		if !propagateDown[k] {
			continue
		}
		dx := b.Diff()
		x := b.Data()
		switch l.op {
		case caffepb.EltwiseParameter_PROD:
			if l.stable {
				first := true
				for j, o := range bottom {
					if j == k {
						continue
					}
					od := o.Data()
					if first {
						copy(dx, od)
						first = false
					} else {
						for i := range dx {
							dx[i] *= od[i]
						}
					}
				}
			} else {
				for i := range dx {
					dx[i] = y[i] / x[i]
				}
			}
			for i := range dx {
				dx[i] *= dy[i]
			}
		case caffepb.EltwiseParameter_SUM:
			c := l.coeff[k]
			for i := range dx {
				dx[i] = c * dy[i]
			}
		case caffepb.EltwiseParameter_MAX:
			for i := range dx {
				if int(l.argmax[i]) == k {
					dx[i] = dy[i]
				} else {
					dx[i] = 0
				}
			}
		}
	}
	return nil
}
