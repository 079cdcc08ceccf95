package layers

import (
	"errors"
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
)

// ErrNoBackward is returned by layers without a gradient (Accuracy, ArgMax,
// Threshold...) when asked to propagate to a bottom.
var ErrNoBackward = errors.New("layer has no gradient with respect to its inputs")

// counts is embedded by layers to declare their bottom and top counts
// (layer.BlobCounts); -1 means unlimited.
type counts struct{ minB, maxB, minT, maxT int }

// BlobCounts implements layer.BlobCounts.
func (c counts) BlobCounts() (minBottom, maxBottom, minTop, maxTop int) {
	return c.minB, c.maxB, c.minT, c.maxT
}

// check reports a bottom or top count outside the declared range.
func (c counts) check(bottom, top int) error {
	if bottom < c.minB || (c.maxB >= 0 && bottom > c.maxB) {
		return fmt.Errorf("takes %s bottoms, got %d", rangeString(c.minB, c.maxB), bottom)
	}
	if top < c.minT || (c.maxT >= 0 && top > c.maxT) {
		return fmt.Errorf("takes %s tops, got %d", rangeString(c.minT, c.maxT), top)
	}
	return nil
}

func rangeString(lo, hi int) string {
	switch {
	case lo == hi:
		return fmt.Sprint(lo)
	case hi < 0:
		return fmt.Sprintf("at least %d", lo)
	}
	return fmt.Sprintf("%d to %d", lo, hi)
}

// noBlobs is embedded by layers without parameters.
type noBlobs[T blob.Float] struct{}

// Blobs returns nil: the layer has no parameters.
func (noBlobs[T]) Blobs() []*blob.Blob[T] { return nil }

// neuron is the shape logic of elementwise layers: one bottom, one top of
// the same shape (possibly the same blob, in place).
type neuron[T blob.Float] struct {
	counts
	noBlobs[T]
}

func newNeuron[T blob.Float]() neuron[T] { return neuron[T]{counts: counts{1, 1, 1, 1}} }

// Setup checks the blob counts.
func (n neuron[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return n.check(len(bottom), len(top))
}

// Reshape gives the top the bottom's shape.
func (neuron[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if top[0] != bottom[0] {
		top[0].ReshapeLike(bottom[0])
	}
	return nil
}

// lossTop shapes a loss layer's first top as a scalar (no axes), as Caffe does.
func lossTop[T blob.Float](top *blob.Blob[T]) { top.Reshape() }

// LabelError is a label outside [0, Classes): Pos is its index in the label
// blob (for one label per sample, the sample's position in the batch), so
// a caller that knows which rows made the batch can name the row.
type LabelError struct {
	Value   float64
	Pos     int
	Classes int
}

func (e *LabelError) Error() string {
	return fmt.Sprintf("label %v at position %d out of range [0, %d)", e.Value, e.Pos, e.Classes)
}

// labelAt converts a label value to a class index as Caffe does
// (truncating toward zero), reporting whether it is the ignore label and
// checking that any other label lies in [0, n).
func labelAt[T blob.Float](v T, pos, n int, hasIgnore bool, ignore int) (int, bool, error) {
	f := float64(v)
	if math.IsNaN(f) || f <= -1 || f >= float64(n) {
		if hasIgnore && !math.IsNaN(f) && int(f) == ignore {
			return int(f), true, nil
		}
		return 0, false, &LabelError{Value: f, Pos: pos, Classes: n}
	}
	l := int(f)
	if hasIgnore && l == ignore {
		return l, true, nil
	}
	if l < 0 || l >= n {
		return 0, false, &LabelError{Value: f, Pos: pos, Classes: n}
	}
	return l, false, nil
}

// sized returns buf with length n, reallocating only when it is too small.
// Layers size activation-sized scratch with it at the start of Forward, not
// in Reshape, so that building a net (goexec inspect) allocates no
// activation memory.
func sized[E any](buf []E, n int) []E {
	if cap(buf) < n {
		return make([]E, n)
	}
	return buf[:n]
}

// sameShape reports an error when two blobs differ in shape.
func sameShape[T blob.Float](what string, a, b *blob.Blob[T]) error {
	if !blob.ShapeEquals(a.Shape(), b.Shape()) {
		return fmt.Errorf("%s: shape %s differs from %s", what, blob.ShapeString(b.Shape()), blob.ShapeString(a.Shape()))
	}
	return nil
}

// noPropagate returns ErrNoBackward if any bottom is asked for a gradient.
func noPropagate(layerType string, propagateDown []bool) error {
	for i, p := range propagateDown {
		if p {
			return fmt.Errorf("%s: bottom %d: %w", layerType, i, ErrNoBackward)
		}
	}
	return nil
}

// errInPlace is returned by layers whose gradient needs the original input
// when the net asks them to compute in place.
func errInPlace(typ string) error {
	return fmt.Errorf("%s cannot compute in place (top and bottom are the same blob)", typ)
}

// paramProp is embedded by layers with parameters to skip the gradients
// the net does not want (lr_mult 0); it implements the net's
// ParamPropagator. All gradients are computed by default.
type paramProp struct{ skip []bool }

// SetParamPropagateDown says whether the gradient of parameter blob i is wanted.
func (p *paramProp) SetParamPropagateDown(i int, propagate bool) {
	for len(p.skip) <= i {
		p.skip = append(p.skip, false)
	}
	p.skip[i] = !propagate
}

// wants reports whether the gradient of parameter blob i is wanted.
func (p *paramProp) wants(i int) bool { return i >= len(p.skip) || !p.skip[i] }
