// Package blob holds Caffe's N-dimensional array: data and gradient of one
// tensor, in float32 (training) or float64 (reference and gradient checks).
package blob

import "fmt"

// Float is the element type a blob, layer or net computes in.
type Float interface{ ~float32 | ~float64 }

// MaxAxes is the largest number of axes a blob may have, as in Caffe.
const MaxAxes = 32

// Blob is a shaped tensor with its gradient. Storage is allocated lazily on
// the first call to Data or Diff, so shape inference over large nets costs
// no memory.
type Blob[T Float] struct {
	shape []int
	count int
	data  []T
	diff  []T
}

// New returns a blob of the given shape.
func New[T Float](shape ...int) *Blob[T] {
	b := &Blob[T]{}
	b.Reshape(shape...)
	return b
}

// Reshape changes the shape, keeping storage when it is large enough.
// It panics only on a negative dimension, which is a programming error in a
// layer: layers validate user-supplied shapes before calling it.
func (b *Blob[T]) Reshape(shape ...int) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("blob: negative dimension in shape %v", shape))
		}
		n *= d
	}
	b.shape = append(b.shape[:0], shape...)
	b.count = n
}

// ReshapeLike gives b the shape of other.
func (b *Blob[T]) ReshapeLike(other *Blob[T]) { b.Reshape(other.shape...) }

// Shape returns the dimensions. The caller must not modify the slice.
func (b *Blob[T]) Shape() []int { return b.shape }

// NumAxes returns the number of dimensions.
func (b *Blob[T]) NumAxes() int { return len(b.shape) }

// Dim returns the size of axis i; negative i counts from the end.
func (b *Blob[T]) Dim(i int) int {
	if i < 0 {
		i += len(b.shape)
	}
	return b.shape[i]
}

// Count returns the number of elements.
func (b *Blob[T]) Count() int { return b.count }

// CountRange returns the product of dimensions [start, end).
func (b *Blob[T]) CountRange(start, end int) int {
	n := 1
	for i := start; i < end; i++ {
		n *= b.shape[i]
	}
	return n
}

// CountFrom returns the product of dimensions from start to the last axis.
func (b *Blob[T]) CountFrom(start int) int { return b.CountRange(start, len(b.shape)) }

// CanonicalAxis maps a possibly negative axis index onto [0, NumAxes).
func (b *Blob[T]) CanonicalAxis(axis int) (int, error) {
	n := len(b.shape)
	if axis < -n || axis >= n {
		return 0, fmt.Errorf("axis %d out of range for %d-D blob with shape %v", axis, n, b.shape)
	}
	if axis < 0 {
		axis += n
	}
	return axis, nil
}

// LegacyShape returns dimension i of the 4-D (num, channels, height, width)
// view that old Caffe layers use; missing axes count as 1.
func (b *Blob[T]) LegacyShape(i int) int {
	if i >= len(b.shape) || i < -len(b.shape) {
		return 1
	}
	return b.Dim(i)
}

// Data returns the values, allocating them on first use.
func (b *Blob[T]) Data() []T {
	if cap(b.data) < b.count {
		nd := make([]T, b.count)
		copy(nd, b.data)
		b.data = nd
	}
	return b.data[:b.count]
}

// Diff returns the gradient, allocating it on first use.
func (b *Blob[T]) Diff() []T {
	if cap(b.diff) < b.count {
		nd := make([]T, b.count)
		copy(nd, b.diff)
		b.diff = nd
	}
	return b.diff[:b.count]
}

// Allocated reports whether the data storage exists (for memory accounting).
func (b *Blob[T]) Allocated() bool { return b.data != nil }

// ShareData makes b use other's data storage; shapes must have equal counts.
func (b *Blob[T]) ShareData(other *Blob[T]) error {
	if b.count != other.count {
		return fmt.Errorf("share data: count %d != %d", b.count, other.count)
	}
	b.data = other.Data()
	return nil
}

// ShareDiff makes b use other's gradient storage; shapes must have equal counts.
func (b *Blob[T]) ShareDiff(other *Blob[T]) error {
	if b.count != other.count {
		return fmt.Errorf("share diff: count %d != %d", b.count, other.count)
	}
	b.diff = other.Diff()
	return nil
}

// ZeroDiff sets the gradient to zero.
func (b *Blob[T]) ZeroDiff() { clear(b.Diff()) }

// ShapeEquals reports whether two shapes are identical.
func ShapeEquals(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ShapeString formats a shape as Caffe logs it: "64 1 28 28 (50176)".
func ShapeString(shape []int) string {
	s, n := "", 1
	for _, d := range shape {
		s += fmt.Sprintf("%d ", d)
		n *= d
	}
	return fmt.Sprintf("%s(%d)", s, n)
}
