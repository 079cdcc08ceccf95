package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// crop cuts its first bottom to the shape of the second on axes from
// crop_param.axis on, starting at crop_param.offset (one value for all
// axes or one per cropped axis). The second bottom only gives the shape.
type crop[T blob.Float] struct {
	counts
	noBlobs[T]
	axisP   int
	offsets []int
	off     []int // per axis of bottom 0
	sStride []int
	dStride []int
	idx     []int // walk's counter, kept to avoid allocating per pass
}

func newCrop[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetCropParam()
	l := &crop[T]{counts: counts{2, 2, 1, 1}, axisP: int(p.GetAxis())}
	for _, o := range p.GetOffset() {
		l.offsets = append(l.offsets, int(o))
	}
	return l, nil
}

// AllowForceBackward refuses gradients to the reference bottom.
func (l *crop[T]) AllowForceBackward(i int) bool { return i == 0 }

func (l *crop[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	axis, err := bottom[0].CanonicalAxis(l.axisP)
	if err != nil {
		return fmt.Errorf("crop axis: %w", err)
	}
	if len(l.offsets) > 1 && axis+len(l.offsets) != bottom[0].NumAxes() {
		return fmt.Errorf("crop_param has %d offsets; need 1 or one per axis from %d to %d", len(l.offsets), axis, bottom[0].NumAxes()-1)
	}
	return nil
}

func (l *crop[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	a, ref := bottom[0], bottom[1]
	axis, err := a.CanonicalAxis(l.axisP)
	if err != nil {
		return fmt.Errorf("crop axis: %w", err)
	}
	n := a.NumAxes()
	if ref.NumAxes() != n {
		return fmt.Errorf("crop bottoms must have the same number of axes: %v vs %v", a.Shape(), ref.Shape())
	}
	shape := append([]int{}, a.Shape()...)
	l.off = make([]int, n)
	for i := axis; i < n; i++ {
		o := 0
		switch {
		case len(l.offsets) == 1:
			o = l.offsets[0]
		case len(l.offsets) > 1:
			o = l.offsets[i-axis]
		}
		if a.Dim(i)-o < ref.Dim(i) {
			return fmt.Errorf("crop of axis %d is out of bounds: size %d at offset %d exceeds %d", i, ref.Dim(i), o, a.Dim(i))
		}
		shape[i] = ref.Dim(i)
		l.off[i] = o
	}
	top[0].Reshape(shape...)
	l.sStride, l.dStride, l.idx = make([]int, n), make([]int, n), make([]int, n)
	for i := 0; i < n; i++ {
		l.sStride[i] = a.CountFrom(i + 1)
		l.dStride[i] = top[0].CountFrom(i + 1)
	}
	return nil
}

// walk calls f(src, dst, len) for each innermost row of the crop window.
func (l *crop[T]) walk(shape []int, f func(src, dst, n int)) {
	n := len(shape)
	if n == 0 {
		f(0, 0, 1)
		return
	}
	idx := l.idx[:n-1]
	clear(idx)
	for {
		src, dst := l.off[n-1], 0
		for i, v := range idx {
			src += (v + l.off[i]) * l.sStride[i]
			dst += v * l.dStride[i]
		}
		f(src, dst, shape[n-1])
		i := n - 2
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < shape[i] {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return
		}
	}
}

func (l *crop[T]) Forward(bottom, top []*blob.Blob[T]) error {
	if top[0].Count() == 0 {
		return nil
	}
	x, y := bottom[0].HostData(), top[0].Data()
	l.walk(top[0].Shape(), func(s, d, n int) { copy(y[d:d+n], x[s:s+n]) })
	return nil
}

func (l *crop[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if propagateDown[1] {
		clear(bottom[1].Diff())
	}
	if !propagateDown[0] {
		return nil
	}
	dx, dy := bottom[0].Diff(), top[0].HostDiff()
	clear(dx)
	if top[0].Count() == 0 {
		return nil
	}
	l.walk(top[0].Shape(), func(s, d, n int) { copy(dx[s:s+n], dy[d:d+n]) })
	return nil
}
