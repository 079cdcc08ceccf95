// Package blob holds Caffe's N-dimensional array: data and gradient of one
// tensor, in float32 (training) or float64 (reference and gradient checks).
package blob

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/kernels"
)

// Float is the element type a blob, layer or net computes in.
type Float interface{ ~float32 | ~float64 }

// MaxAxes is the largest number of axes a blob may have, as in Caffe.
const MaxAxes = 32

// MaxCount is the most elements a blob may have: its data and gradient in
// float64 stay countable in bytes. A larger shape (a prototxt's mistake)
// would wrap Count around.
const MaxCount = math.MaxInt / 16

// CheckCount reports a shape with more than MaxCount elements.
func CheckCount(shape []int) error {
	c := 1
	for _, d := range shape {
		if d != 0 && c > MaxCount/d {
			return fmt.Errorf("shape %v has more than %d elements", shape, MaxCount)
		}
		c *= d
	}
	return nil
}

// Blob is a shaped tensor with its gradient. Storage is allocated lazily on
// the first access, so shape inference over large nets costs no memory.
//
// Data and gradient each live in a Synced memory: a host slice and, once a
// device backend touched it, a device copy, with a head that says which is
// current (Caffe's SyncedMemory). Read accessors (HostData, DataOn) copy
// only when the other side is ahead; mutable ones (MutableHostData,
// MutableDataOn) also mark the other side stale.
type Blob[T Float] struct {
	shape []int
	count int
	data  *Synced[T]
	diff  *Synced[T]
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

func (b *Blob[T]) dataMem() *Synced[T] {
	if b.data == nil {
		b.data = &Synced[T]{}
	}
	return b.data
}

func (b *Blob[T]) diffMem() *Synced[T] {
	if b.diff == nil {
		b.diff = &Synced[T]{}
	}
	return b.diff
}

// Data returns the values on the host for reading and writing (the same
// as MutableHostData); prefer HostData where the caller only reads.
func (b *Blob[T]) Data() []T { return b.dataMem().MutableHost(b.count) }

// Diff returns the gradient on the host for reading and writing (the same
// as MutableHostDiff); prefer HostDiff where the caller only reads.
func (b *Blob[T]) Diff() []T { return b.diffMem().MutableHost(b.count) }

// HostData returns the values on the host for reading only: it downloads
// them once if a device wrote them last, and leaves the device copy valid.
func (b *Blob[T]) HostData() []T { return b.dataMem().Host(b.count) }

// MutableHostData returns the values on the host for writing: a device
// copy becomes stale.
func (b *Blob[T]) MutableHostData() []T { return b.dataMem().MutableHost(b.count) }

// HostDiff returns the gradient on the host for reading only.
func (b *Blob[T]) HostDiff() []T { return b.diffMem().Host(b.count) }

// MutableHostDiff returns the gradient on the host for writing.
func (b *Blob[T]) MutableHostDiff() []T { return b.diffMem().MutableHost(b.count) }

// DataOn returns the values in be's memory for reading only.
func (b *Blob[T]) DataOn(be kernels.Memory[T]) kernels.Vec[T] { return b.dataMem().On(be, b.count) }

// MutableDataOn returns the values in be's memory for writing: the host
// copy becomes stale.
func (b *Blob[T]) MutableDataOn(be kernels.Memory[T]) kernels.Vec[T] {
	return b.dataMem().MutableOn(be, b.count)
}

// DiffOn returns the gradient in be's memory for reading only.
func (b *Blob[T]) DiffOn(be kernels.Memory[T]) kernels.Vec[T] { return b.diffMem().On(be, b.count) }

// MutableDiffOn returns the gradient in be's memory for writing.
func (b *Blob[T]) MutableDiffOn(be kernels.Memory[T]) kernels.Vec[T] {
	return b.diffMem().MutableOn(be, b.count)
}

// DataMem and DiffMem return the blob's memories (for sync-state checks
// and for the net's contiguous parameter buffers).
func (b *Blob[T]) DataMem() *Synced[T] { return b.dataMem() }
func (b *Blob[T]) DiffMem() *Synced[T] { return b.diffMem() }

// Allocated reports whether the data storage exists (for memory accounting).
func (b *Blob[T]) Allocated() bool { return b.data != nil && b.data.allocated() }

// ShareData makes b use other's data memory (host and device copies and
// their sync state); shapes must have equal counts.
func (b *Blob[T]) ShareData(other *Blob[T]) error {
	if b.count != other.count {
		return fmt.Errorf("share data: count %d != %d", b.count, other.count)
	}
	b.data = other.dataMem()
	b.data.reserve(b.count)
	return nil
}

// ShareDiff makes b use other's gradient memory; shapes must have equal counts.
func (b *Blob[T]) ShareDiff(other *Blob[T]) error {
	if b.count != other.count {
		return fmt.Errorf("share diff: count %d != %d", b.count, other.count)
	}
	b.diff = other.diffMem()
	b.diff.reserve(b.count)
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
