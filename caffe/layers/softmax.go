package layers

import (
	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// softmax normalises exp(x) over one axis (softmax_param.axis, default 1).
// It works in place.
type softmax[T blob.Float] struct {
	counts
	noBlobs[T]
	be        kernels.Backend[T]
	axisParam int
	outer     int // count before the axis
	channels  int // size of the axis
	inner     int // count after the axis
}

func newSoftmax[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &softmax[T]{counts: counts{1, 1, 1, 1}, be: layer.Backend[T](ctx), axisParam: int(ctx.Param.GetSoftmaxParam().GetAxis())}, nil
}

func (l *softmax[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *softmax[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	axis, err := bottom[0].CanonicalAxis(l.axisParam)
	if err != nil {
		return err
	}
	l.outer, l.channels, l.inner = bottom[0].CountRange(0, axis), bottom[0].Dim(axis), bottom[0].CountFrom(axis+1)
	if top[0] != bottom[0] {
		top[0].ReshapeLike(bottom[0])
	}
	return nil
}

func (l *softmax[T]) Forward(bottom, top []*blob.Blob[T]) error {
	l.be.SoftmaxForward(bottom[0].DataOn(l.be), top[0].MutableDataOn(l.be), l.outer, l.channels, l.inner)
	return nil
}

// Backward: dx = (dy - Σ_c dy·y) · y, per position.
func (l *softmax[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	be := l.be
	be.SoftmaxBackward(top[0].DataOn(be), top[0].DiffOn(be), bottom[0].MutableDiffOn(be), l.outer, l.channels, l.inner)
	return nil
}

// softmaxForward writes softmax(x) over the middle axis of an
// (outer, channels, inner) array into y on the host (the loss layers).
func softmaxForward[T blob.Float](x, y []T, outer, channels, inner int) {
	layer.HostBackend[T]().SoftmaxForward(kernels.HostVec(x), kernels.HostVec(y), outer, channels, inner)
}
