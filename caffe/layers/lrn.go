package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// lrn is Caffe's local response normalization over (N, C, H, W).
//
// ACROSS_CHANNELS: y = x · (k + α/n · Σ x²)^-β, the sum over the n channels
// centred on x's channel (clipped at the ends).
//
// WITHIN_CHANNEL: y = x · (1 + α/n² · Σ x²)^-β, the sum over the n×n
// spatial window centred on x (clipped at the borders; k is not used).
// Caffe builds this from split, power, average pooling (pad (n-1)/2,
// which always divides by n²), power and eltwise layers; it is computed
// directly here with the same numerics.
type lrn[T blob.Float] struct {
	scaleN int // length of scale, set by Reshape
	counts
	noBlobs[T]
	region         caffepb.LRNParameter_NormRegion
	size, prePad   int
	alpha, beta, k float64
	num, c, h, w   int
	scale          kernels.Vec[T] // the base of the power, per element
	be             kernels.Backend[T]
}

func newLRN[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetLrnParam()
	l := &lrn[T]{
		counts: counts{1, 1, 1, 1},
		region: p.GetNormRegion(),
		size:   int(p.GetLocalSize()),
		alpha:  float64(p.GetAlpha()),
		beta:   float64(p.GetBeta()),
		k:      float64(p.GetK()),
		be:     layer.Backend[T](ctx),
	}
	if l.size%2 != 1 {
		return nil, fmt.Errorf("LRN supports only odd local_size, got %d", l.size)
	}
	l.prePad = (l.size - 1) / 2
	switch l.region {
	case caffepb.LRNParameter_ACROSS_CHANNELS, caffepb.LRNParameter_WITHIN_CHANNEL:
	default:
		return nil, fmt.Errorf("unknown norm_region %v", l.region)
	}
	return l, nil
}

func (l *lrn[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *lrn[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	b := bottom[0]
	if b.NumAxes() != 4 {
		return fmt.Errorf("bottom shape %v: LRN needs 4 axes (num, channels, height, width)", b.Shape())
	}
	if top[0] == b {
		return errInPlace("LRN")
	}
	l.num, l.c, l.h, l.w = b.Dim(0), b.Dim(1), b.Dim(2), b.Dim(3)
	top[0].ReshapeLike(b)
	l.scaleN = b.Count() // allocated by Forward: building a net (goexec inspect) allocates no activations
	return nil
}

func (l *lrn[T]) geom() kernels.LRNGeom {
	return kernels.LRNGeom{Across: l.region == caffepb.LRNParameter_ACROSS_CHANNELS, N: l.num, C: l.c, H: l.h, W: l.w,
		Size: l.size, Alpha: l.alpha, Beta: l.beta, K: l.k}
}

func (l *lrn[T]) Forward(bottom, top []*blob.Blob[T]) error {
	if l.scale.Len() < l.scaleN {
		l.scale = l.be.Alloc(l.scaleN)
	}
	l.scale = l.scale.Slice(0, l.scaleN)
	l.be.LRNForward(bottom[0].DataOn(l.be), l.scale, top[0].MutableDataOn(l.be), l.geom())
	return nil
}

func (l *lrn[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	be := l.be
	be.LRNBackward(bottom[0].DataOn(be), top[0].DataOn(be), l.scale, top[0].DiffOn(be), bottom[0].MutableDiffOn(be), l.geom())
	return nil
}
