package layers

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// argMax outputs the indices of the top_k largest values along
// argmax_param.axis or, without an axis, over each example flattened (then
// shaped (N, 1, top_k), or (N, 2, top_k) with out_max_val holding indices
// then values). With an axis and out_max_val it outputs the values. Ties
// rank the larger index first, as Caffe's sort of (value, index) pairs. It
// has no gradient.
type argMax[T blob.Float] struct {
	counts
	noBlobs[T]
	outMax  bool
	topK    int
	hasAxis bool
	axisP   int
	axis    int
	pairs   []argPair[T]
}

type argPair[T blob.Float] struct {
	v T
	i int
}

func newArgMax[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetArgmaxParam()
	l := &argMax[T]{counts: counts{1, 1, 1, 1}, outMax: p.GetOutMaxVal(), topK: int(p.GetTopK()),
		hasAxis: p != nil && p.Axis != nil, axisP: int(p.GetAxis())}
	if l.topK < 1 {
		return nil, fmt.Errorf("argmax_param top_k must be at least 1, got %d", l.topK)
	}
	return l, nil
}

func (l *argMax[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *argMax[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	b := bottom[0]
	var shape []int
	if l.hasAxis {
		axis, err := b.CanonicalAxis(l.axisP)
		if err != nil {
			return fmt.Errorf("argmax axis: %w", err)
		}
		l.axis = axis
		if l.topK > b.Dim(axis) {
			return fmt.Errorf("top_k %d exceeds axis %d of size %d", l.topK, axis, b.Dim(axis))
		}
		shape = append(shape, b.Shape()...)
		shape[axis] = l.topK
	} else {
		if b.NumAxes() == 0 {
			return fmt.Errorf("argmax needs a bottom with a batch axis")
		}
		if l.topK > b.CountFrom(1) {
			return fmt.Errorf("top_k %d exceeds the %d values per example", l.topK, b.CountFrom(1))
		}
		shape = make([]int, max(b.NumAxes(), 3))
		for i := range shape {
			shape[i] = 1
		}
		shape[0], shape[2] = b.Dim(0), l.topK
		if l.outMax {
			shape[1] = 2
		}
	}
	top[0].Reshape(shape...)
	return nil
}

func (l *argMax[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	dim, stride := bottom[0].CountFrom(1), 1
	if l.hasAxis {
		dim = bottom[0].Dim(l.axis)
		stride = bottom[0].CountFrom(l.axis) / dim
	}
	if cap(l.pairs) < dim {
		l.pairs = make([]argPair[T], dim)
	}
	ps := l.pairs[:dim]
	k := l.topK
	num := bottom[0].Count() / dim
	for i := 0; i < num; i++ {
		base := i/stride*dim*stride + i%stride
		for j := range ps {
			ps[j] = argPair[T]{x[base+j*stride], j}
		}
		slices.SortFunc(ps, byValueThenIndexDesc[T])
		out := i/stride*k*stride + i%stride
		for j := 0; j < k; j++ {
			switch {
			case l.hasAxis && l.outMax:
				y[out+j*stride] = ps[j].v
			case l.outMax:
				y[2*i*k+j] = T(ps[j].i)
				y[2*i*k+k+j] = ps[j].v
			default:
				y[out+j*stride] = T(ps[j].i)
			}
		}
	}
	return nil
}

func (l *argMax[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	return noPropagate("ArgMax", propagateDown)
}

// byValueThenIndexDesc orders pairs by value, then index, both descending.
func byValueThenIndexDesc[T blob.Float](a, b argPair[T]) int {
	if c := cmp.Compare(b.v, a.v); c != 0 {
		return c
	}
	return cmp.Compare(b.i, a.i)
}
