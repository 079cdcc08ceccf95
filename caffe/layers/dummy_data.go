package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/filler"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// dummyData produces tops of fixed shapes filled by fillers: constant
// fillers once at Setup, random ones again on every Forward (as Caffe).
type dummyData[T blob.Float] struct {
	counts
	noBlobs[T]
	ctx     layer.Context
	fillers []filler.Filler[T]
	refill  []bool
}

func newDummyData[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &dummyData[T]{counts: counts{0, 0, 1, -1}, ctx: ctx}, nil
}

func (l *dummyData[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	p := l.ctx.Param.GetDummyDataParam()
	nTop := len(top)
	pick := func(n, i int) int {
		if n == 1 {
			return 0
		}
		return i
	}
	nf := len(p.GetDataFiller())
	if nf != 0 && nf != 1 && nf != nTop {
		return fmt.Errorf("dummy_data_param has %d data_fillers for %d tops; give 0, 1 or one per top", nf, nTop)
	}
	shapes := make([][]int, nTop)
	if len(p.GetNum()) > 0 {
		if len(p.GetShape()) > 0 {
			return fmt.Errorf("dummy_data_param: give either shape or num/channels/height/width, not both")
		}
		legacy := [][]uint32{p.GetNum(), p.GetChannels(), p.GetHeight(), p.GetWidth()}
		for k, v := range legacy {
			if len(v) != 1 && len(v) != nTop {
				return fmt.Errorf("dummy_data_param: legacy dimension %d has %d values for %d tops", k, len(v), nTop)
			}
		}
		for i := range shapes {
			for _, v := range legacy {
				shapes[i] = append(shapes[i], int(v[pick(len(v), i)]))
			}
		}
	} else {
		ns := len(p.GetShape())
		if ns != 1 && ns != nTop {
			return fmt.Errorf("dummy_data_param has %d shapes for %d tops; give 1 or one per top", ns, nTop)
		}
		for i := range shapes {
			s, err := blobShape(p.GetShape()[pick(ns, i)])
			if err != nil {
				return fmt.Errorf("dummy_data_param shape %d: %w", i, err)
			}
			shapes[i] = s
		}
	}
	l.fillers = make([]filler.Filler[T], nTop)
	l.refill = make([]bool, nTop)
	for i, t := range top {
		var fp *caffepb.FillerParameter
		if nf > 0 {
			fp = p.GetDataFiller()[pick(nf, i)]
		}
		f, err := filler.New[T](fp, l.ctx.Rand)
		if err != nil {
			return fmt.Errorf("data_filler %d: %w", i, err)
		}
		l.fillers[i] = f
		l.refill[i] = fp.GetType() != "constant"
		t.Reshape(shapes[i]...)
		if t.Count() > 0 {
			if err := f.Fill(t); err != nil {
				return fmt.Errorf("top %d: %w", i, err)
			}
		}
	}
	return nil
}

// Reshape keeps the configured shapes.
func (l *dummyData[T]) Reshape(bottom, top []*blob.Blob[T]) error { return nil }

func (l *dummyData[T]) Forward(bottom, top []*blob.Blob[T]) error {
	for i, t := range top {
		if l.refill[i] && t.Count() > 0 {
			if err := l.fillers[i].Fill(t); err != nil {
				return fmt.Errorf("top %d: %w", i, err)
			}
		}
	}
	return nil
}

// Backward does nothing: the layer has no bottoms.
func (l *dummyData[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	return nil
}
