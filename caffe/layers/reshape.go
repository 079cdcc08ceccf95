package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// reshape changes the shape of axes [axis, axis+num_axes) of its bottom to
// reshape_param.shape, where 0 copies the bottom's dimension and one -1 is
// inferred. Top and bottom share data and diff.
type reshape[T blob.Float] struct {
	counts
	noBlobs[T]
	dims          []int
	axis, numAxes int
	inferred      int // index in dims of the -1, or -1
}

func newReshape[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetReshapeParam()
	l := &reshape[T]{counts: counts{1, 1, 1, 1}, axis: int(p.GetAxis()), numAxes: int(p.GetNumAxes()), inferred: -1}
	for i, d := range p.GetShape().GetDim() {
		switch {
		case d == -1:
			if l.inferred >= 0 {
				return nil, fmt.Errorf("reshape_param shape has more than one -1 (dims %d and %d)", l.inferred, i)
			}
			l.inferred = i
		case d < -1:
			return nil, fmt.Errorf("reshape_param shape dim %d is %d; use a positive size, 0 (copy) or -1 (infer)", i, d)
		}
		l.dims = append(l.dims, int(d))
	}
	if l.numAxes < -1 {
		return nil, fmt.Errorf("reshape_param num_axes must be >= -1, got %d", l.numAxes)
	}
	return l, nil
}

func (l *reshape[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	if top[0] == bottom[0] {
		return errInPlace("Reshape")
	}
	return nil
}

func (l *reshape[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	b := bottom[0]
	n := b.NumAxes()
	// Caffe's axis rule: the range [start, end] is inclusive of n (axis may
	// point one past the last axis to append dimensions).
	start := l.axis
	if start < 0 {
		start += n + 1
	}
	if start < 0 || start > n {
		return fmt.Errorf("reshape axis %d out of range for %d-D bottom", l.axis, n)
	}
	end := n
	if l.numAxes >= 0 {
		end = start + l.numAxes
		if end > n {
			return fmt.Errorf("reshape axis %d + num_axes %d exceed the bottom's %d axes", start, l.numAxes, n)
		}
	}
	shape := append([]int{}, b.Shape()[:start]...)
	for i, d := range l.dims {
		if d == 0 {
			if start+i >= n {
				return fmt.Errorf("reshape dim %d is 0 (copy) but the bottom has no axis %d", i, start+i)
			}
			d = b.Dim(start + i)
		}
		shape = append(shape, d)
	}
	shape = append(shape, b.Shape()[end:]...)
	if l.inferred >= 0 {
		k := start + l.inferred
		known := 1
		for i, d := range shape {
			if i != k {
				known *= d
			}
		}
		if known == 0 || b.Count()%known != 0 {
			return fmt.Errorf("reshape cannot infer dimension %d: %d elements do not divide into the other dims %v", l.inferred, b.Count(), shape)
		}
		shape[k] = b.Count() / known
	}
	return shareReshaped(b, top[0], shape)
}

// Forward does nothing: top shares the bottom's data.
func (l *reshape[T]) Forward(bottom, top []*blob.Blob[T]) error { return nil }

// Backward does nothing: top shares the bottom's diff.
func (l *reshape[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	return nil
}
