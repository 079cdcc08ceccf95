package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/filler"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// bias adds a bias broadcast along axes [axis, axis+num_axes) of its first
// bottom: a learned blob, or the second bottom when there are two. It
// works in place.
type bias[T blob.Float] struct {
	counts
	paramProp
	ctx     layer.Context
	axis    int
	numAxes int
	fp      *caffepb.FillerParameter
	b       *blob.Blob[T] // learned bias (one-bottom form)
	bc      broadcast
	be      kernels.Backend[T]
}

// broadcast is the (outer, dim, inner) view of a blob against a
// parameter spanning its middle axes.
type broadcast struct{ outer, dim, inner int }

func newBias[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetBiasParam()
	l := &bias[T]{counts: counts{1, 2, 1, 1}, ctx: ctx, be: layer.Backend[T](ctx), axis: int(p.GetAxis()), numAxes: int(p.GetNumAxes()), fp: p.GetFiller()}
	if l.numAxes < -1 {
		return nil, fmt.Errorf("bias_param num_axes must be >= -1, got %d", l.numAxes)
	}
	return l, nil
}

func (l *bias[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	if len(bottom) == 2 {
		return nil
	}
	b, err := paramBlob[T](bottom[0], l.axis, l.numAxes, "bias")
	if err != nil {
		return err
	}
	if err := filler.Fill(l.fp, l.ctx.Rand, b); err != nil {
		return fmt.Errorf("bias filler: %w", err)
	}
	l.b = b
	return nil
}

// paramBlob creates a blob shaped like axes [axis, axis+numAxes) of x
// (numAxes -1: to the end).
func paramBlob[T blob.Float](x *blob.Blob[T], axisParam, numAxes int, what string) (*blob.Blob[T], error) {
	axis, err := x.CanonicalAxis(axisParam)
	if err != nil {
		return nil, fmt.Errorf("%s axis: %w", what, err)
	}
	end := x.NumAxes()
	if numAxes >= 0 {
		end = axis + numAxes
		if end > x.NumAxes() {
			return nil, fmt.Errorf("%s blob's shape extends past bottom shape %v when applied from axis %d with num_axes %d", what, x.Shape(), axis, numAxes)
		}
	}
	return blob.New[T](x.Shape()[axis:end]...), nil
}

// broadcastOver checks that p's shape matches x's axes from axisParam
// (axis 0 when p is a scalar) and returns the broadcast view.
func broadcastOver[T blob.Float](x, p *blob.Blob[T], axisParam int, what string) (broadcast, error) {
	axis := 0
	if p.NumAxes() > 0 {
		a, err := x.CanonicalAxis(axisParam)
		if err != nil {
			return broadcast{}, fmt.Errorf("%s axis: %w", what, err)
		}
		axis = a
	}
	if axis+p.NumAxes() > x.NumAxes() {
		return broadcast{}, fmt.Errorf("%s shape %v extends past bottom shape %v from axis %d", what, p.Shape(), x.Shape(), axis)
	}
	for i := 0; i < p.NumAxes(); i++ {
		if x.Dim(axis+i) != p.Dim(i) {
			return broadcast{}, fmt.Errorf("%s shape %v does not match bottom shape %v at axis %d", what, p.Shape(), x.Shape(), axis+i)
		}
	}
	return broadcast{outer: x.CountRange(0, axis), dim: p.Count(), inner: x.CountFrom(axis + p.NumAxes())}, nil
}

func (l *bias[T]) param(bottom []*blob.Blob[T]) *blob.Blob[T] {
	if len(bottom) > 1 {
		return bottom[1]
	}
	return l.b
}

func (l *bias[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	bc, err := broadcastOver(bottom[0], l.param(bottom), l.axis, "bias")
	if err != nil {
		return err
	}
	l.bc = bc
	if top[0] != bottom[0] {
		top[0].ReshapeLike(bottom[0])
	}
	return nil
}

func (l *bias[T]) Blobs() []*blob.Blob[T] {
	if l.b == nil {
		return nil
	}
	return []*blob.Blob[T]{l.b}
}

func (l *bias[T]) Forward(bottom, top []*blob.Blob[T]) error {
	be, bc := l.be, l.bc
	x, y := bottom[0].DataOn(be), top[0].MutableDataOn(be)
	if top[0] != bottom[0] {
		be.Copy(y, x)
	}
	be.AddBias(y, l.param(bottom).DataOn(be), bc.outer, bc.dim, bc.inner)
	return nil
}

func (l *bias[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	be, bc := l.be, l.bc
	dy := top[0].DiffOn(be)
	// Parameter gradient first: in place, dx overwrites dy.
	if len(bottom) > 1 {
		if propagateDown[1] {
			db := bottom[1].MutableDiffOn(be)
			be.Fill(db, 0)
			be.BiasGrad(dy, db, bc.outer, bc.dim, bc.inner)
		}
	} else if l.wants(0) {
		be.BiasGrad(dy, l.b.MutableDiffOn(be), bc.outer, bc.dim, bc.inner)
	}
	if propagateDown[0] && bottom[0] != top[0] {
		be.Copy(bottom[0].MutableDiffOn(be), dy)
	}
	return nil
}
