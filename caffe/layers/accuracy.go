package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// accuracy is the fraction of predictions whose label is among the top_k
// scores along accuracy_param.axis (ties with the label's score count
// against it, as in Caffe). An optional second top gets the accuracy of
// each class. Labels equal to ignore_label are skipped. It has no gradient.
type accuracy[T blob.Float] struct {
	counts
	noBlobs[T]
	topK                   int
	axisParam              int
	hasIgnore              bool
	ignore                 int
	outer, channels, inner int
	perClassHit, perClass  []int
}

func newAccuracy[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetAccuracyParam()
	l := &accuracy[T]{counts: counts{2, 2, 1, 2}, topK: int(p.GetTopK()), axisParam: int(p.GetAxis())}
	if p != nil && p.IgnoreLabel != nil {
		l.hasIgnore, l.ignore = true, int(p.GetIgnoreLabel())
	}
	if l.topK < 1 {
		return nil, fmt.Errorf("accuracy_param top_k must be at least 1, got %d", l.topK)
	}
	return l, nil
}

// AllowForceBackward refuses gradients to both bottoms.
func (l *accuracy[T]) AllowForceBackward(int) bool { return false }

func (l *accuracy[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *accuracy[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	axis, err := bottom[0].CanonicalAxis(l.axisParam)
	if err != nil {
		return err
	}
	l.outer, l.channels, l.inner = bottom[0].CountRange(0, axis), bottom[0].Dim(axis), bottom[0].CountFrom(axis+1)
	if l.topK > l.channels {
		return fmt.Errorf("top_k %d must not exceed the number of classes %d", l.topK, l.channels)
	}
	if n := bottom[1].Count(); n != l.outer*l.inner {
		return fmt.Errorf("label count %d must equal prediction count %d / classes %d", n, bottom[0].Count(), l.channels)
	}
	top[0].Reshape()
	if len(top) > 1 {
		top[1].Reshape(l.channels)
		l.perClassHit = make([]int, l.channels)
		l.perClass = make([]int, l.channels)
	}
	return nil
}

func (l *accuracy[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, label := bottom[0].HostData(), bottom[1].HostData()
	dim := l.channels * l.inner
	clear(l.perClassHit)
	clear(l.perClass)
	hits, count := 0, 0
	for o := 0; o < l.outer; o++ {
		for j := 0; j < l.inner; j++ {
			pos := o*l.inner + j
			c, ignored, err := labelAt(label[pos], pos, l.channels, l.hasIgnore, l.ignore)
			if err != nil {
				return err
			}
			if ignored {
				continue
			}
			if len(top) > 1 {
				l.perClass[c]++
			}
			xo := x[o*dim:]
			truth := xo[c*l.inner+j]
			better := -1        // the true class counts itself
			if truth != truth { // NaN: a diverged net is never right
				better = l.topK
			}
			for k := 0; k < l.channels && better < l.topK; k++ {
				// A NaN score of another class counts as beating the truth.
				if v := xo[k*l.inner+j]; v >= truth || v != v {
					better++
				}
			}
			if better < l.topK {
				hits++
				if len(top) > 1 {
					l.perClassHit[c]++
				}
			}
			count++
		}
	}
	acc := 0.0
	if count > 0 {
		acc = float64(hits) / float64(count)
	}
	top[0].Data()[0] = T(acc)
	if len(top) > 1 {
		pc := top[1].Data()
		for c := range pc {
			pc[c] = 0
			if l.perClass[c] > 0 {
				pc[c] = T(float64(l.perClassHit[c]) / float64(l.perClass[c]))
			}
		}
	}
	return nil
}

func (l *accuracy[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	return noPropagate("Accuracy", propagateDown)
}
