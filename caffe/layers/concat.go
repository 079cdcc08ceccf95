package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// concat joins its bottoms along concat_param.axis (or the legacy
// concat_dim); all other dimensions must match.
type concat[T blob.Float] struct {
	counts
	noBlobs[T]
	axisParam int
	axis      int
	outer     int
	inner     int // count after the axis
	be        kernels.Backend[T]
}

func newConcat[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetConcatParam()
	axis := int(p.GetAxis())
	if p != nil && p.ConcatDim != nil {
		if p.Axis != nil {
			return nil, fmt.Errorf("concat_param: give either axis or concat_dim, not both")
		}
		axis = int(p.GetConcatDim())
	}
	return &concat[T]{counts: counts{1, -1, 1, 1}, axisParam: axis, be: layer.Backend[T](ctx)}, nil
}

func (l *concat[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *concat[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	b0 := bottom[0]
	axis, err := b0.CanonicalAxis(l.axisParam)
	if err != nil {
		return fmt.Errorf("concat axis: %w", err)
	}
	l.axis = axis
	shape := append([]int{}, b0.Shape()...)
	for i, b := range bottom[1:] {
		if b.NumAxes() != b0.NumAxes() {
			return fmt.Errorf("bottom %d has %d axes, bottom 0 has %d", i+1, b.NumAxes(), b0.NumAxes())
		}
		for j := range shape {
			if j != axis && b.Dim(j) != b0.Dim(j) {
				return fmt.Errorf("bottom %d shape %v differs from bottom 0 shape %v outside the concat axis %d", i+1, b.Shape(), b0.Shape(), axis)
			}
		}
		shape[axis] += b.Dim(axis)
	}
	l.outer, l.inner = b0.CountRange(0, axis), b0.CountFrom(axis+1)
	top[0].Reshape(shape...)
	return nil
}

func (l *concat[T]) Forward(bottom, top []*blob.Blob[T]) error {
	be := l.be
	y := top[0].MutableDataOn(be)
	topAxis := top[0].Dim(l.axis) * l.inner
	off := 0
	for _, b := range bottom {
		x := b.DataOn(be)
		n := b.Dim(l.axis) * l.inner
		for o := 0; o < l.outer; o++ {
			be.Copy(y.Slice(o*topAxis+off, o*topAxis+off+n), x.Slice(o*n, (o+1)*n))
		}
		off += n
	}
	return nil
}

func (l *concat[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	be := l.be
	dy := top[0].DiffOn(be)
	topAxis := top[0].Dim(l.axis) * l.inner
	off := 0
	for i, b := range bottom {
		n := b.Dim(l.axis) * l.inner
		if propagateDown[i] {
			dx := b.MutableDiffOn(be)
			for o := 0; o < l.outer; o++ {
				be.Copy(dx.Slice(o*n, (o+1)*n), dy.Slice(o*topAxis+off, o*topAxis+off+n))
			}
		}
		off += n
	}
	return nil
}
