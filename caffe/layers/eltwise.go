package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// eltwise combines same-shaped bottoms elementwise: SUM (with one coeff
// per bottom), PROD or MAX (first maximum wins ties), all on the
// layer's backend. MAX's argmax is allocated by the first Forward (building
// a net allocates no activations).
type eltwise[T blob.Float] struct {
	counts
	noBlobs[T]
	op      caffepb.EltwiseParameter_EltwiseOp
	coeff   []T
	stable  bool
	argmax  kernels.IntVec // MAX: the bottom of each maximum, in be's memory
	argmaxN int            // argmax's allocated length
	be      kernels.Backend[T]
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
	return nil
}

func (l *eltwise[T]) Forward(bottom, top []*blob.Blob[T]) error {
	be := l.be
	n := bottom[0].Count()
	y := top[0].MutableDataOn(be).Slice(0, n)
	x := func(k int) kernels.Vec[T] { return bottom[k].DataOn(be).Slice(0, n) }
	switch l.op {
	case caffepb.EltwiseParameter_SUM:
		be.Fill(y, 0)
		for k := range bottom {
			be.Axpy(l.coeff[k], x(k), y)
		}
	case caffepb.EltwiseParameter_PROD:
		be.Mul(x(0), x(1), y)
		for k := 2; k < len(bottom); k++ {
			be.Mul(y, x(k), y)
		}
	case caffepb.EltwiseParameter_MAX:
		if l.argmaxN < n {
			l.argmax, l.argmaxN = be.AllocInts(n), n
		}
		mask := l.argmax.Slice(0, n)
		for k := range bottom {
			be.EltwiseMax(x(k), y, mask, k)
		}
	default:
		return fmt.Errorf("unknown eltwise operation %v", l.op)
	}
	return nil
}

func (l *eltwise[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	be := l.be
	n := bottom[0].Count()
	dy := top[0].DiffOn(be).Slice(0, n)
	for k, b := range bottom {
		if !propagateDown[k] {
			continue
		}
		dx := b.MutableDiffOn(be).Slice(0, n)
		switch l.op {
		case caffepb.EltwiseParameter_SUM:
			be.Copy(dx, dy)
			if c := l.coeff[k]; c != 1 {
				be.Scal(c, dx)
			}
		case caffepb.EltwiseParameter_PROD:
			if l.stable {
				first := true
				for j, o := range bottom {
					if j == k {
						continue
					}
					od := o.DataOn(be).Slice(0, n)
					if first {
						be.Copy(dx, od)
						first = false
					} else {
						be.Mul(dx, od, dx)
					}
				}
			} else {
				be.Div(top[0].DataOn(be).Slice(0, n), b.DataOn(be).Slice(0, n), dx)
			}
			be.Mul(dx, dy, dx)
		case caffepb.EltwiseParameter_MAX:
			be.MaskSelect(dy, l.argmax.Slice(0, n), k, dx)
		}
	}
	return nil
}
