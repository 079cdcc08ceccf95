package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// clip bounds values to [clip_param.min, clip_param.max]; the gradient
// passes where the input lies within the bounds. It works in place.
type clip[T blob.Float] struct {
	neuron[T]
	lo, hi T
	pass   []bool // input within bounds, kept so in-place Backward is right
}

func newClip[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetClipParam()
	if p == nil || p.Min == nil || p.Max == nil {
		return nil, fmt.Errorf("clip_param min and max are required")
	}
	if p.GetMin() > p.GetMax() {
		return nil, fmt.Errorf("clip_param min %g exceeds max %g", p.GetMin(), p.GetMax())
	}
	return &clip[T]{neuron: newNeuron[T](), lo: T(p.GetMin()), hi: T(p.GetMax())}, nil
}

func (l *clip[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if n := bottom[0].Count(); cap(l.pass) < n {
		l.pass = make([]bool, n)
	} else {
		l.pass = l.pass[:n]
	}
	return l.neuron.Reshape(bottom, top)
}

func (l *clip[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	y = y[:len(x)]
	for i, v := range x {
		l.pass[i] = v >= l.lo && v <= l.hi
		y[i] = max(l.lo, min(v, l.hi))
	}
	return nil
}

// Backward passes the gradient where the input lay within the bounds.
func (l *clip[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	dy, dx := top[0].HostDiff(), bottom[0].Diff()
	dy = dy[:len(dx)]
	for i := range dx {
		if l.pass[i] {
			dx[i] = dy[i]
		} else {
			dx[i] = 0
		}
	}
	return nil
}
