package layers

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// pooling is Caffe's Pooling layer over (N, C, H, W): MAX (with the argmax
// as an optional second top), AVE and STOCHASTIC, global_pooling, and
// Caffe's output size rule (round_mode CEIL by default; with padding the
// last window must start inside the image). Planes are spread over all
// cores.
//
//	top (N, C, H_out, W_out), H_out = ceil((H + 2·pad - kernel) / stride) + 1
type pooling[T blob.Float] struct {
	maskN                  int // length of mask (MAX), set by Reshape
	ctx                    layer.Context
	method                 caffepb.PoolingParameter_PoolMethod
	round                  caffepb.PoolingParameter_RoundMode
	global                 bool
	kh, kw, sh, sw, ph, pw int
	chans, h, w, oh, ow    int
	num                    int
	be                     kernels.Backend[T] // the net's device
	run                    kernels.Backend[T] // be, or the CPU for STOCHASTIC and a mask top
	mask                   kernels.IntVec     // argmax (MAX) in run's memory
	smask                  []int32            // sampled index (STOCHASTIC, host)
}

func newPooling[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetPoolingParam()
	l := &pooling[T]{ctx: ctx, be: layer.Backend[T](ctx), method: p.GetPool(), round: p.GetRoundMode(), global: p.GetGlobalPooling()}
	hasKernel := p.KernelSize != nil
	if l.global {
		if p.KernelSize != nil || p.KernelH != nil || p.KernelW != nil {
			return nil, fmt.Errorf("with global_pooling the kernel size cannot be given")
		}
	} else {
		hw := p.KernelH != nil && p.KernelW != nil
		if hasKernel == hw {
			if hasKernel {
				return nil, fmt.Errorf("give kernel_size or kernel_h and kernel_w, not both")
			}
			return nil, fmt.Errorf("kernel_size (or both kernel_h and kernel_w) is required")
		}
		if hasKernel {
			l.kh, l.kw = int(p.GetKernelSize()), int(p.GetKernelSize())
		} else {
			l.kh, l.kw = int(p.GetKernelH()), int(p.GetKernelW())
		}
		if l.kh <= 0 || l.kw <= 0 {
			return nil, fmt.Errorf("kernel dimensions must be nonzero, got %dx%d", l.kh, l.kw)
		}
	}
	if (p.PadH != nil) != (p.PadW != nil) || (p.PadH != nil && p.Pad != nil) {
		return nil, fmt.Errorf("give pad or pad_h and pad_w")
	}
	if (p.StrideH != nil) != (p.StrideW != nil) || (p.StrideH != nil && p.Stride != nil) {
		return nil, fmt.Errorf("give stride or stride_h and stride_w")
	}
	if p.PadH != nil {
		l.ph, l.pw = int(p.GetPadH()), int(p.GetPadW())
	} else {
		l.ph, l.pw = int(p.GetPad()), int(p.GetPad())
	}
	if p.StrideH != nil {
		l.sh, l.sw = int(p.GetStrideH()), int(p.GetStrideW())
	} else {
		l.sh, l.sw = int(p.GetStride()), int(p.GetStride())
	}
	if l.sh <= 0 || l.sw <= 0 {
		return nil, fmt.Errorf("stride must be nonzero, got %dx%d", l.sh, l.sw)
	}
	if l.global && (l.ph != 0 || l.pw != 0 || l.sh != 1 || l.sw != 1) {
		return nil, fmt.Errorf("with global_pooling only pad 0 and stride 1 are allowed")
	}
	switch l.method {
	case caffepb.PoolingParameter_MAX, caffepb.PoolingParameter_AVE:
	case caffepb.PoolingParameter_STOCHASTIC:
		if l.ph != 0 || l.pw != 0 {
			return nil, fmt.Errorf("padding is implemented only for MAX and AVE pooling")
		}
		if ctx.Phase == caffepb.Phase_TRAIN && ctx.Rand == nil {
			return nil, fmt.Errorf("STOCHASTIC pooling at TRAIN needs a random source")
		}
	default:
		return nil, fmt.Errorf("unknown pooling method %v", l.method)
	}
	if !l.global && (l.ph >= l.kh || l.pw >= l.kw) {
		return nil, fmt.Errorf("pad %dx%d must be smaller than the kernel %dx%d", l.ph, l.pw, l.kh, l.kw)
	}
	if l.round != caffepb.PoolingParameter_CEIL && l.round != caffepb.PoolingParameter_FLOOR {
		return nil, fmt.Errorf("unknown round_mode %v", l.round)
	}
	return l, nil
}

// BlobCounts implements layer.BlobCounts: MAX may output its argmax as a
// second top.
func (l *pooling[T]) BlobCounts() (int, int, int, int) {
	if l.method == caffepb.PoolingParameter_MAX {
		return 1, 1, 1, 2
	}
	return 1, 1, 1, 1
}

func (l *pooling[T]) Blobs() []*blob.Blob[T] { return nil }

func (l *pooling[T]) Setup(bottom, top []*blob.Blob[T]) error {
	minB, maxB, minT, maxT := l.BlobCounts()
	if err := (counts{minB, maxB, minT, maxT}).check(len(bottom), len(top)); err != nil {
		return err
	}
	return nil
}

// poolOut is Caffe's pooled size along one axis, with the pad clipping rule.
func poolOut(in, k, s, p int, ceil bool) int {
	num := in + 2*p - k
	var o int
	if ceil {
		o = int(math.Ceil(float64(num)/float64(s))) + 1
	} else {
		o = int(math.Floor(float64(num)/float64(s))) + 1
	}
	// With padding, the last window must start strictly inside the image.
	if p > 0 && (o-1)*s >= in+p {
		o--
	}
	return o
}

func (l *pooling[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	b := bottom[0]
	if b.NumAxes() != 4 {
		return fmt.Errorf("bottom shape %v: pooling needs 4 axes (num, channels, height, width)", b.Shape())
	}
	for i, t := range top {
		if t == b {
			return fmt.Errorf("top %d is the bottom: pooling cannot compute in place", i)
		}
	}
	l.num, l.chans, l.h, l.w = b.Dim(0), b.Dim(1), b.Dim(2), b.Dim(3)
	if l.global {
		l.kh, l.kw = l.h, l.w
	}
	ceil := l.round == caffepb.PoolingParameter_CEIL
	l.oh = poolOut(l.h, l.kh, l.sh, l.ph, ceil)
	l.ow = poolOut(l.w, l.kw, l.sw, l.pw, ceil)
	if l.oh <= 0 || l.ow <= 0 {
		return fmt.Errorf("bottom shape %v is smaller than the %dx%d kernel", b.Shape(), l.kh, l.kw)
	}
	for _, t := range top {
		t.Reshape(l.num, l.chans, l.oh, l.ow)
	}
	n := l.num * l.chans * l.oh * l.ow
	// STOCHASTIC sampling and a mask top (argmax as T values) are host
	// code; the rest runs on the net's device.
	l.run = l.be
	if l.method == caffepb.PoolingParameter_STOCHASTIC || len(top) > 1 {
		l.run = layer.HostBackend[T]()
	}
	switch l.method {
	case caffepb.PoolingParameter_MAX:
		l.maskN = n // allocated by Forward: building a net (goexec inspect) allocates no activations
	case caffepb.PoolingParameter_STOCHASTIC:
		if cap(l.smask) < n {
			l.smask = make([]int32, n)
		}
		l.smask = l.smask[:n]
	}
	return nil
}

func (l *pooling[T]) geom() kernels.PoolGeom {
	return kernels.PoolGeom{H: l.h, W: l.w, OH: l.oh, OW: l.ow, KH: l.kh, KW: l.kw, SH: l.sh, SW: l.sw, PH: l.ph, PW: l.pw}
}

// window returns the input rows [h0, h1) and columns [w0, w1) of output
// (y, x), clipped to the image.
func (l *pooling[T]) window(y, x int) (h0, h1, w0, w1 int) {
	h0, w0 = y*l.sh-l.ph, x*l.sw-l.pw
	h1, w1 = min(h0+l.kh, l.h), min(w0+l.kw, l.w)
	return max(h0, 0), h1, max(w0, 0), w1
}

func (l *pooling[T]) Forward(bottom, top []*blob.Blob[T]) error {
	if l.method == caffepb.PoolingParameter_MAX {
		if l.mask.Len() < l.maskN {
			l.mask = l.run.AllocInts(l.maskN)
		}
		l.mask = l.mask.Slice(0, l.maskN)
	}
	run, g := l.run, l.geom()
	planes, in, out := l.num*l.chans, l.h*l.w, l.oh*l.ow
	switch l.method {
	case caffepb.PoolingParameter_MAX:
		run.MaxPoolForward(bottom[0].DataOn(run), planes, g, top[0].MutableDataOn(run), l.mask)
		if len(top) > 1 {
			tm := top[1].MutableHostData()
			for i, v := range l.mask.Host() {
				tm[i] = T(v)
			}
		}
	case caffepb.PoolingParameter_AVE:
		run.AvePoolForward(bottom[0].DataOn(run), planes, g, top[0].MutableDataOn(run))
	case caffepb.PoolingParameter_STOCHASTIC:
		x, y := bottom[0].HostData(), top[0].MutableHostData()
		if l.ctx.Phase == caffepb.Phase_TRAIN {
			return l.stochasticTrain(x, y)
		}
		run.Parallel(planes, func(_, lo, hi int) {
			for p := lo; p < hi; p++ {
				xp, yp := x[p*in:(p+1)*in], y[p*out:(p+1)*out]
				for oy := 0; oy < l.oh; oy++ {
					for ox := 0; ox < l.ow; ox++ {
						h0, h1, w0, w1 := l.window(oy, ox)
						var s, sq T
						for iy := h0; iy < h1; iy++ {
							for _, v := range xp[iy*l.w+w0 : iy*l.w+w1] {
								s += v
								sq += v * v
							}
						}
						var v T
						if s > 0 {
							v = sq / s
						}
						yp[oy*l.ow+ox] = v
					}
				}
			}
		})
	}
	return nil
}

// stochasticTrain samples one input per window with probability
// proportional to its (nonnegative) value, as Caffe's GPU kernel does.
func (l *pooling[T]) stochasticTrain(x, y []T) error {
	planes, in, out := l.num*l.chans, l.h*l.w, l.oh*l.ow
	for p := 0; p < planes; p++ {
		xp, yp := x[p*in:(p+1)*in], y[p*out:(p+1)*out]
		for oy := 0; oy < l.oh; oy++ {
			for ox := 0; ox < l.ow; ox++ {
				h0, h1, w0, w1 := l.window(oy, ox)
				var s T
				for iy := h0; iy < h1; iy++ {
					for _, v := range xp[iy*l.w+w0 : iy*l.w+w1] {
						if v < 0 {
							return fmt.Errorf("STOCHASTIC pooling needs nonnegative inputs, got %v", v)
						}
						s += v
					}
				}
				thres := T(l.ctx.Rand.Float64()) * s
				arg := h0*l.w + w0
				var c T
			search:
				for iy := h0; iy < h1; iy++ {
					for ix := w0; ix < w1; ix++ {
						c += xp[iy*l.w+ix]
						if c >= thres {
							arg = iy*l.w + ix
							break search
						}
					}
				}
				o := oy*l.ow + ox
				yp[o] = xp[arg]
				l.smask[p*out+o] = int32(arg)
			}
		}
	}
	return nil
}

func (l *pooling[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	run, g := l.run, l.geom()
	planes := l.num * l.chans
	switch l.method {
	case caffepb.PoolingParameter_MAX:
		if len(top) > 1 {
			m := l.mask.Host()
			for i, v := range top[1].HostData() {
				m[i] = int32(v)
			}
		}
		run.MaxPoolBackward(top[0].DiffOn(run), l.mask, planes, g, bottom[0].MutableDiffOn(run))
	case caffepb.PoolingParameter_STOCHASTIC:
		if l.ctx.Phase != caffepb.Phase_TRAIN {
			return fmt.Errorf("STOCHASTIC pooling has no gradient at TEST")
		}
		run.MaxPoolBackward(top[0].DiffOn(run), kernels.HostInts(l.smask), planes, g, bottom[0].MutableDiffOn(run))
	case caffepb.PoolingParameter_AVE:
		run.AvePoolBackward(top[0].DiffOn(run), planes, g, bottom[0].MutableDiffOn(run))
	}
	return nil
}
