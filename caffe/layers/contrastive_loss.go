package layers

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// contrastiveLoss compares feature pairs a, b (N, C...) with a similarity
// label y (N): similar pairs (y != 0) cost d², dissimilar ones
// max(margin - d, 0)² (or max(margin - d², 0) with legacy_version), all
// over 2N, where d = ‖a - b‖.
type contrastiveLoss[T blob.Float] struct {
	counts
	noBlobs[T]
	margin float64
	legacy bool
	num    int
	dim    int
	diff   []T
	distSq []float64
}

func newContrastiveLoss[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetContrastiveLossParam()
	return &contrastiveLoss[T]{counts: counts{3, 3, 1, 1}, margin: float64(p.GetMargin()), legacy: p.GetLegacyVersion()}, nil
}

// IsLoss marks the top as a loss.
func (l *contrastiveLoss[T]) IsLoss() {}

// AllowForceBackward refuses gradients to the similarity label.
func (l *contrastiveLoss[T]) AllowForceBackward(i int) bool { return i != 2 }

func (l *contrastiveLoss[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *contrastiveLoss[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if err := sameShape("contrastive bottom 1", bottom[0], bottom[1]); err != nil {
		return err
	}
	if bottom[0].NumAxes() < 1 {
		return fmt.Errorf("contrastive loss needs features with a batch axis, got shape %v", bottom[0].Shape())
	}
	l.num = bottom[0].Dim(0)
	l.dim = bottom[0].CountFrom(1)
	if bottom[2].Count() != l.num {
		return fmt.Errorf("need one similarity label per pair: %d labels for %d pairs", bottom[2].Count(), l.num)
	}
	if n := bottom[0].Count(); cap(l.diff) < n {
		l.diff = make([]T, n)
	} else {
		l.diff = l.diff[:n]
	}
	l.distSq = make([]float64, l.num)
	lossTop(top[0])
	return nil
}

func (l *contrastiveLoss[T]) Forward(bottom, top []*blob.Blob[T]) error {
	a, b, y := bottom[0].HostData(), bottom[1].HostData(), bottom[2].HostData()
	var loss float64
	for i := 0; i < l.num; i++ {
		var d2 T
		for k := i * l.dim; k < (i+1)*l.dim; k++ {
			d := a[k] - b[k]
			l.diff[k] = d
			d2 += d * d
		}
		l.distSq[i] = float64(d2)
		switch {
		case int(y[i]) != 0:
			loss += float64(d2)
		case l.legacy:
			loss += math.Max(l.margin-float64(d2), 0)
		default:
			m := math.Max(l.margin-math.Sqrt(float64(d2)), 0)
			loss += m * m
		}
	}
	top[0].Data()[0] = T(loss / float64(l.num) / 2)
	return nil
}

func (l *contrastiveLoss[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if len(propagateDown) > 2 && propagateDown[2] {
		return fmt.Errorf("ContrastiveLoss cannot backpropagate to bottom 2 (similarity labels)")
	}
	y := bottom[2].HostData()
	for i, sign := range []float64{1, -1} {
		if !propagateDown[i] {
			continue
		}
		alpha := sign * float64(top[0].HostDiff()[0]) / float64(l.num)
		dx := bottom[i].Diff()
		for j := 0; j < l.num; j++ {
			var coef float64
			switch {
			case int(y[j]) != 0:
				coef = alpha
			case l.legacy:
				if l.margin-l.distSq[j] > 0 {
					coef = -alpha
				}
			default:
				dist := math.Sqrt(l.distSq[j])
				if m := l.margin - dist; m > 0 {
					coef = -alpha * m / (dist + 1e-4)
				}
			}
			c := T(coef)
			for k := j * l.dim; k < (j+1)*l.dim; k++ {
				dx[k] = c * l.diff[k]
			}
		}
	}
	return nil
}
