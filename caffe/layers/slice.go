package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// slice cuts its bottom along slice_param.axis (or the legacy slice_dim)
// into its tops, at slice_point or into equal parts.
type slice[T blob.Float] struct {
	counts
	noBlobs[T]
	axisParam int
	points    []int
	axis      int
	outer     int
	inner     int
}

func newSlice[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetSliceParam()
	axis := int(p.GetAxis())
	if p != nil && p.SliceDim != nil {
		if p.Axis != nil {
			return nil, fmt.Errorf("slice_param: give either axis or slice_dim, not both")
		}
		axis = int(p.GetSliceDim())
	}
	l := &slice[T]{counts: counts{1, 1, 1, -1}, axisParam: axis}
	for _, s := range p.GetSlicePoint() {
		l.points = append(l.points, int(s))
	}
	return l, nil
}

func (l *slice[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	if len(l.points) > 0 && len(l.points) != len(top)-1 {
		return fmt.Errorf("%d slice_points need %d tops, got %d", len(l.points), len(l.points)+1, len(top))
	}
	return nil
}

func (l *slice[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	b := bottom[0]
	axis, err := b.CanonicalAxis(l.axisParam)
	if err != nil {
		return fmt.Errorf("slice axis: %w", err)
	}
	l.axis = axis
	dim := b.Dim(axis)
	sizes := make([]int, len(top))
	if len(l.points) > 0 {
		prev := 0
		for i, p := range l.points {
			if p <= prev || p >= dim {
				return fmt.Errorf("slice_point %d (%d) must be increasing and within (0, %d)", i, p, dim)
			}
			sizes[i] = p - prev
			prev = p
		}
		sizes[len(top)-1] = dim - prev
	} else {
		if dim%len(top) != 0 {
			return fmt.Errorf("axis %d of size %d does not split evenly into %d tops", axis, dim, len(top))
		}
		for i := range sizes {
			sizes[i] = dim / len(top)
		}
	}
	l.outer, l.inner = b.CountRange(0, axis), b.CountFrom(axis+1)
	shape := append([]int{}, b.Shape()...)
	for i, t := range top {
		shape[axis] = sizes[i]
		t.Reshape(shape...)
	}
	return nil
}

func (l *slice[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x := bottom[0].HostData()
	botAxis := bottom[0].Dim(l.axis) * l.inner
	off := 0
	for _, t := range top {
		y := t.Data()
		n := t.Dim(l.axis) * l.inner
		for o := 0; o < l.outer; o++ {
			copy(y[o*n:(o+1)*n], x[o*botAxis+off:o*botAxis+off+n])
		}
		off += n
	}
	return nil
}

func (l *slice[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	dx := bottom[0].Diff()
	botAxis := bottom[0].Dim(l.axis) * l.inner
	off := 0
	for _, t := range top {
		dy := t.Diff()
		n := t.Dim(l.axis) * l.inner
		for o := 0; o < l.outer; o++ {
			copy(dx[o*botAxis+off:o*botAxis+off+n], dy[o*n:(o+1)*n])
		}
		off += n
	}
	return nil
}
