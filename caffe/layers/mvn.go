package layers

import (
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// mvn subtracts the mean of each example's channel (or of the whole
// example, across_channels) and, with normalize_variance, divides by the
// standard deviation plus eps.
type mvn[T blob.Float] struct {
	neuron[T]
	normVar bool
	across  bool
	eps     float64
	num     int
	dim     int
	scale   []T // 1/(std + eps) per row
}

func newMVN[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetMvnParam()
	return &mvn[T]{neuron: newNeuron[T](), normVar: p.GetNormalizeVariance(), across: p.GetAcrossChannels(), eps: float64(p.GetEps())}, nil
}

func (l *mvn[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	b := bottom[0]
	l.num = b.LegacyShape(0)
	if !l.across {
		l.num *= b.LegacyShape(1)
	}
	l.dim = 0
	if l.num > 0 {
		l.dim = b.Count() / l.num
	}
	l.scale = make([]T, l.num)
	return l.neuron.Reshape(bottom, top)
}

func (l *mvn[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	d := l.dim
	for r := 0; r < l.num; r++ {
		xr, yr := x[r*d:(r+1)*d], y[r*d:(r+1)*d]
		var s, s2 float64
		for _, v := range xr {
			s += float64(v)
			s2 += float64(v) * float64(v)
		}
		mean := s / float64(d)
		sc := 1.0
		if l.normVar {
			variance := max(s2/float64(d)-mean*mean, 0)
			sc = 1 / (math.Sqrt(variance) + l.eps)
		}
		l.scale[r] = T(sc)
		m, k := T(mean), T(sc)
		for i, v := range xr {
			yr[i] = (v - m) * k
		}
	}
	return nil
}

// Backward is Caffe's: dx = (dy - mean(dy) - y·mean(dy·y)) / (std + eps)
// with normalize_variance, dx = dy - mean(dy) without.
func (l *mvn[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	y, dy, dx := top[0].HostData(), top[0].HostDiff(), bottom[0].Diff()
	d := l.dim
	n := T(d)
	for r := 0; r < l.num; r++ {
		yr, dyr, dxr := y[r*d:(r+1)*d], dy[r*d:(r+1)*d], dx[r*d:(r+1)*d]
		var sdy, sdyy T
		for i := range dyr {
			sdy += dyr[i]
			sdyy += dyr[i] * yr[i]
		}
		if !l.normVar {
			for i := range dxr {
				dxr[i] = dyr[i] - sdy/n
			}
			continue
		}
		k := l.scale[r]
		for i := range dxr {
			dxr[i] = (dyr[i] - sdy/n - yr[i]*sdyy/n) * k
		}
	}
	return nil
}
