package layers

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels/cpu"
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
	scale          []T // the base of the power, per element
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
	l.scaleN = b.Count() // allocated by Forward
	return nil
}

// acrossWindow returns the channels [lo, hi) normalizing channel c.
func (l *lrn[T]) acrossWindow(c int) (int, int) {
	lo := c - l.prePad
	return max(lo, 0), min(lo+l.size, l.c)
}

// spatialWindow returns the rows or columns [lo, hi) around i in [0, n).
func (l *lrn[T]) spatialWindow(i, n int) (int, int) {
	return max(i-l.prePad, 0), min(i+l.prePad+1, n)
}

func (l *lrn[T]) Forward(bottom, top []*blob.Blob[T]) error {
	l.scale = sized(l.scale, l.scaleN)
	x, y := bottom[0].Data(), top[0].Data()
	negBeta := -l.beta
	plane := l.h * l.w
	if l.region == caffepb.LRNParameter_ACROSS_CHANNELS {
		aos := T(l.alpha / float64(l.size))
		img := l.c * plane
		cpu.Parallel(l.num, func(_, lo, hi int) {
			for n := lo; n < hi; n++ {
				xn, yn, sn := x[n*img:(n+1)*img], y[n*img:(n+1)*img], l.scale[n*img:(n+1)*img]
				for c := 0; c < l.c; c++ {
					s := sn[c*plane : (c+1)*plane]
					for i := range s {
						s[i] = T(l.k)
					}
					c0, c1 := l.acrossWindow(c)
					for cc := c0; cc < c1; cc++ {
						for i, v := range xn[cc*plane : (cc+1)*plane] {
							s[i] += aos * v * v
						}
					}
					yc, xc := yn[c*plane:(c+1)*plane], xn[c*plane:(c+1)*plane]
					for i, sv := range s {
						yc[i] = xc[i] * T(math.Pow(float64(sv), negBeta))
					}
				}
			}
		})
		return nil
	}
	aos := T(l.alpha / float64(l.size*l.size))
	cpu.Parallel(l.num*l.c, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			xp, yp, sp := x[p*plane:(p+1)*plane], y[p*plane:(p+1)*plane], l.scale[p*plane:(p+1)*plane]
			for r := 0; r < l.h; r++ {
				r0, r1 := l.spatialWindow(r, l.h)
				for q := 0; q < l.w; q++ {
					q0, q1 := l.spatialWindow(q, l.w)
					var sum T
					for rr := r0; rr < r1; rr++ {
						for _, v := range xp[rr*l.w+q0 : rr*l.w+q1] {
							sum += v * v
						}
					}
					i := r*l.w + q
					sp[i] = 1 + aos*sum
					yp[i] = xp[i] * T(math.Pow(float64(sp[i]), negBeta))
				}
			}
		}
	})
	return nil
}

func (l *lrn[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	x, y, dy, dx := bottom[0].Data(), top[0].Data(), top[0].Diff(), bottom[0].Diff()
	negBeta := -l.beta
	plane := l.h * l.w
	if l.region == caffepb.LRNParameter_ACROSS_CHANNELS {
		cr := T(2 * l.alpha * l.beta / float64(l.size))
		img := l.c * plane
		cpu.Parallel(l.num, func(_, lo, hi int) {
			ratio := make([]T, img) // dy·y/scale for one image
			acc := make([]T, plane)
			for n := lo; n < hi; n++ {
				o := n * img
				for i := range ratio {
					ratio[i] = dy[o+i] * y[o+i] / l.scale[o+i]
				}
				for c := 0; c < l.c; c++ {
					clear(acc)
					c0, c1 := l.acrossWindow(c)
					for cc := c0; cc < c1; cc++ {
						cpu.Axpy(1, ratio[cc*plane:(cc+1)*plane], acc)
					}
					b := o + c*plane
					for i := 0; i < plane; i++ {
						dx[b+i] = dy[b+i]*T(math.Pow(float64(l.scale[b+i]), negBeta)) - cr*x[b+i]*acc[i]
					}
				}
			}
		})
		return nil
	}
	cr := T(2 * l.alpha * l.beta / float64(l.size*l.size))
	cpu.Parallel(l.num*l.c, func(_, lo, hi int) {
		ratio := make([]T, plane)
		for p := lo; p < hi; p++ {
			o := p * plane
			for i := range ratio {
				ratio[i] = dy[o+i] * y[o+i] / l.scale[o+i]
			}
			for r := 0; r < l.h; r++ {
				r0, r1 := l.spatialWindow(r, l.h)
				for q := 0; q < l.w; q++ {
					q0, q1 := l.spatialWindow(q, l.w)
					var sum T
					for rr := r0; rr < r1; rr++ {
						for _, v := range ratio[rr*l.w+q0 : rr*l.w+q1] {
							sum += v
						}
					}
					i := o + r*l.w + q
					dx[i] = dy[i]*T(math.Pow(float64(l.scale[i]), negBeta)) - cr*x[i]*sum
				}
			}
		}
	})
	return nil
}
