package layers

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// logLayer computes y = log_base(shift + scale·x); base -1 means e.
type logLayer[T blob.Float] struct {
	neuron[T]
	scale, shift, baseScale float64 // y = baseScale·ln(shift + scale·x)
}

func newLog[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetLogParam()
	base := float64(p.GetBase())
	bs := 1.0
	if base != -1 {
		if base <= 0 || base == 1 {
			return nil, fmt.Errorf("log_param base must be positive and not 1, or -1 (for e), got %g", base)
		}
		bs = 1 / math.Log(base)
	}
	return &logLayer[T]{neuron: newNeuron[T](), scale: float64(p.GetScale()), shift: float64(p.GetShift()), baseScale: bs}, nil
}

func (l *logLayer[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.neuron.Setup(bottom, top); err != nil {
		return err
	}
	if top[0] == bottom[0] {
		return errInPlace("Log")
	}
	return nil
}

func (l *logLayer[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	y = y[:len(x)]
	for i, v := range x {
		y[i] = T(l.baseScale * math.Log(l.shift+l.scale*float64(v)))
	}
	return nil
}

func (l *logLayer[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	x, dy, dx := bottom[0].HostData(), top[0].HostDiff(), bottom[0].Diff()
	dy = dy[:len(x)]
	dx = dx[:len(x)]
	k := l.scale * l.baseScale
	for i, v := range x {
		dx[i] = dy[i] * T(k/(l.shift+l.scale*float64(v)))
	}
	return nil
}
