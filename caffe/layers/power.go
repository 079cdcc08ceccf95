package layers

import (
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// power computes y = (shift + scale·x)^power.
type power[T blob.Float] struct {
	neuron[T]
	power, scale, shift float64
}

func newPower[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetPowerParam()
	return &power[T]{neuron: newNeuron[T](), power: float64(p.GetPower()), scale: float64(p.GetScale()), shift: float64(p.GetShift())}, nil
}

func (l *power[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.neuron.Setup(bottom, top); err != nil {
		return err
	}
	if top[0] == bottom[0] && l.power != 1 && l.scale*l.power != 0 {
		return errInPlace("Power")
	}
	return nil
}

func (l *power[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	y = y[:len(x)]
	sc, sh := T(l.scale), T(l.shift)
	switch l.power {
	case 1:
		for i, v := range x {
			y[i] = sh + sc*v
		}
	case 2:
		for i, v := range x {
			u := sh + sc*v
			y[i] = u * u
		}
	default:
		for i, v := range x {
			y[i] = T(math.Pow(float64(sh+sc*v), l.power))
		}
	}
	return nil
}

// Backward: dy/dx = scale·power·(shift + scale·x)^(power-1).
func (l *power[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	x, dy, dx := bottom[0].HostData(), top[0].HostDiff(), bottom[0].Diff()
	dy = dy[:len(x)]
	dx = dx[:len(x)]
	ds := T(l.scale * l.power)
	sc, sh := T(l.scale), T(l.shift)
	switch {
	case ds == 0:
		clear(dx)
	case l.power == 1:
		for i := range x {
			dx[i] = dy[i] * ds
		}
	case l.power == 2:
		for i, v := range x {
			dx[i] = dy[i] * ds * (sh + sc*v)
		}
	default:
		for i, v := range x {
			dx[i] = dy[i] * ds * T(math.Pow(float64(sh+sc*v), l.power-1))
		}
	}
	return nil
}
