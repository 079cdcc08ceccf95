package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// flatten merges axes [axis, end_axis] of its bottom into one. Top and
// bottom share data and diff, so Forward and Backward cost nothing.
type flatten[T blob.Float] struct {
	counts
	noBlobs[T]
	axis, endAxis int
}

func newFlatten[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetFlattenParam()
	return &flatten[T]{counts: counts{1, 1, 1, 1}, axis: int(p.GetAxis()), endAxis: int(p.GetEndAxis())}, nil
}

func (l *flatten[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	if top[0] == bottom[0] {
		return errInPlace("Flatten")
	}
	return nil
}

func (l *flatten[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	b := bottom[0]
	start, err := b.CanonicalAxis(l.axis)
	if err != nil {
		return fmt.Errorf("flatten axis: %w", err)
	}
	end, err := b.CanonicalAxis(l.endAxis)
	if err != nil {
		return fmt.Errorf("flatten end_axis: %w", err)
	}
	if end < start {
		return fmt.Errorf("flatten end_axis %d comes before axis %d", end, start)
	}
	shape := append([]int{}, b.Shape()[:start]...)
	shape = append(shape, b.CountRange(start, end+1))
	shape = append(shape, b.Shape()[end+1:]...)
	return shareReshaped(bottom[0], top[0], shape)
}

// shareReshaped gives top the shape and bottom's data and diff storage.
func shareReshaped[T blob.Float](bottom, top *blob.Blob[T], shape []int) error {
	top.Reshape(shape...)
	if top.Count() != bottom.Count() {
		return fmt.Errorf("output shape %v has %d elements, input %v has %d", shape, top.Count(), bottom.Shape(), bottom.Count())
	}
	if err := top.ShareData(bottom); err != nil {
		return err
	}
	return top.ShareDiff(bottom)
}

// Forward does nothing: top shares the bottom's data.
func (l *flatten[T]) Forward(bottom, top []*blob.Blob[T]) error { return nil }

// Backward does nothing: top shares the bottom's diff.
func (l *flatten[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	return nil
}
