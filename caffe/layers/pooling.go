package layers

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels/cpu"
)

// pooling is Caffe's Pooling layer over (N, C, H, W): MAX (with the argmax
// as an optional second top), AVE and STOCHASTIC, global_pooling, and
// Caffe's output size rule (round_mode CEIL by default; with padding the
// last window must start inside the image). Planes are spread over all
// cores.
//
//	top (N, C, H_out, W_out), H_out = ceil((H + 2·pad - kernel) / stride) + 1
type pooling[T blob.Float] struct {
	maskN                  int // length of mask, set by Reshape
	ctx                    layer.Context
	method                 caffepb.PoolingParameter_PoolMethod
	round                  caffepb.PoolingParameter_RoundMode
	global                 bool
	kh, kw, sh, sw, ph, pw int
	chans, h, w, oh, ow    int
	num                    int
	mask                   []int32 // argmax (MAX without a mask top) or sampled index (STOCHASTIC)
}

func newPooling[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetPoolingParam()
	l := &pooling[T]{ctx: ctx, method: p.GetPool(), round: p.GetRoundMode(), global: p.GetGlobalPooling()}
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
	if (l.method == caffepb.PoolingParameter_MAX && len(top) == 1) || l.method == caffepb.PoolingParameter_STOCHASTIC {
		l.maskN = n // allocated by Forward
	}
	return nil
}

// poolGeom is the pooling window geometry, passed by value to the plane
// kernels so its fields live in registers.
type poolGeom struct{ h, w, oh, ow, kh, kw, sh, sw, ph, pw int }

func (l *pooling[T]) geom() poolGeom {
	return poolGeom{l.h, l.w, l.oh, l.ow, l.kh, l.kw, l.sh, l.sw, l.ph, l.pw}
}

// poolMaxPlane max-pools one plane, recording each output's argmax (-1 for
// an empty or all-below -FLT_MAX window), scanning windows row by row with
// a strict comparison as Caffe does.
func poolMaxPlane[T blob.Float](g poolGeom, xp, yp []T, mask []int32) {
	yp, mask = yp[:g.oh*g.ow], mask[:g.oh*g.ow]
	// Interior 2×2 windows of stride 2 (LeNet's pooling) in one call per
	// plane; what Caffe's round-up rule adds past them goes below.
	rows2, cols2 := 0, 0
	if g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 {
		rows2, cols2 = min(g.oh, g.h/2), min(g.ow, g.w/2)
		if x32, ok := any(xp).([]float32); ok {
			cpu.MaxPool2x2Plane(x32, g.w, any(yp).([]float32), mask, g.ow, rows2, cols2)
		} else {
			cpu.MaxPool2x2PlaneRef(xp, g.w, yp, mask, g.ow, rows2, cols2)
		}
	}
	for oy := 0; oy < g.oh; oy++ {
		h0 := oy*g.sh - g.ph
		h1 := min(h0+g.kh, g.h)
		h0 = max(h0, 0)
		yr, mr := yp[oy*g.ow:(oy+1)*g.ow], mask[oy*g.ow:(oy+1)*g.ow]
		ox := 0
		if oy < rows2 {
			ox = cols2
		}
		if xp32, ok := any(xp).([]float32); ok && ox == 0 && h1 > h0 {
			// Windows fully inside the columns, vectorized over outputs.
			lo := (g.pw + g.sw - 1) / g.sw
			hi := min(g.ow, (g.w+g.pw-g.kw)/g.sw+1)
			if hi > lo {
				var rows [8][]float32
				var bases [8]int32
				if h1-h0 <= len(rows) {
					c0 := lo*g.sw - g.pw
					for iy := h0; iy < h1; iy++ {
						rows[iy-h0] = xp32[iy*g.w+c0 : (iy+1)*g.w]
						bases[iy-h0] = int32(iy*g.w + c0)
					}
					cpu.MaxPoolRow(rows[:h1-h0], bases[:h1-h0], g.kw, g.sw, any(yr[lo:hi]).([]float32), mr[lo:hi])
					poolMaxScalar(g, xp, yr, mr, h0, h1, 0, lo)
					ox = hi
				}
			}
		}
		poolMaxScalar(g, xp, yr, mr, h0, h1, ox, g.ow)
	}
}

// poolMaxScalar max-pools outputs [ox0, ox1) of one output row whose
// windows cover input rows [h0, h1).
func poolMaxScalar[T blob.Float](g poolGeom, xp, yr []T, mr []int32, h0, h1, ox0, ox1 int) {
	for ox := ox0; ox < ox1; ox++ {
		w0 := ox*g.sw - g.pw
		w1 := min(w0+g.kw, g.w)
		w0 = max(w0, 0)
		best, arg := T(-math.MaxFloat32), -1
		for iy := h0; iy < h1; iy++ {
			row := xp[iy*g.w : iy*g.w+w1]
			for ix := w0; ix < w1; ix++ {
				if row[ix] > best {
					best, arg = row[ix], iy*g.w+ix
				}
			}
		}
		yr[ox], mr[ox] = best, int32(arg)
	}
}

// window returns the input rows [h0, h1) and columns [w0, w1) of output
// (y, x), clipped to the image.
func (l *pooling[T]) window(y, x int) (h0, h1, w0, w1 int) {
	h0, w0 = y*l.sh-l.ph, x*l.sw-l.pw
	h1, w1 = min(h0+l.kh, l.h), min(w0+l.kw, l.w)
	return max(h0, 0), h1, max(w0, 0), w1
}

// aveSize is Caffe's divisor for average pooling: the window clipped to the
// padded image, so padding counts.
func (l *pooling[T]) aveSize(y, x int) int {
	h0, w0 := y*l.sh-l.ph, x*l.sw-l.pw
	h1, w1 := min(h0+l.kh, l.h+l.ph), min(w0+l.kw, l.w+l.pw)
	return (h1 - h0) * (w1 - w0)
}

func (l *pooling[T]) Forward(bottom, top []*blob.Blob[T]) error {
	l.mask = sized(l.mask, l.maskN)
	x, y := bottom[0].Data(), top[0].Data()
	planes, in, out := l.num*l.chans, l.h*l.w, l.oh*l.ow
	switch l.method {
	case caffepb.PoolingParameter_MAX:
		var topMask []T
		if len(top) > 1 {
			topMask = top[1].Data()
		}
		g := l.geom()
		cpu.Parallel(planes, func(_, lo, hi int) {
			idx := make([]int32, out)
			for p := lo; p < hi; p++ {
				mp := idx
				if topMask == nil {
					mp = l.mask[p*out : (p+1)*out]
				}
				poolMaxPlane(g, x[p*in:(p+1)*in], y[p*out:(p+1)*out], mp)
				if topMask != nil {
					tm := topMask[p*out : (p+1)*out]
					for i, v := range mp {
						tm[i] = T(v)
					}
				}
			}
		})
	case caffepb.PoolingParameter_AVE:
		cpu.Parallel(planes, func(_, lo, hi int) {
			for p := lo; p < hi; p++ {
				xp, yp := x[p*in:(p+1)*in], y[p*out:(p+1)*out]
				for oy := 0; oy < l.oh; oy++ {
					for ox := 0; ox < l.ow; ox++ {
						h0, h1, w0, w1 := l.window(oy, ox)
						var s T
						for iy := h0; iy < h1; iy++ {
							for _, v := range xp[iy*l.w+w0 : iy*l.w+w1] {
								s += v
							}
						}
						yp[oy*l.ow+ox] = s / T(l.aveSize(oy, ox))
					}
				}
			}
		})
	case caffepb.PoolingParameter_STOCHASTIC:
		if l.ctx.Phase == caffepb.Phase_TRAIN {
			return l.stochasticTrain(x, y)
		}
		cpu.Parallel(planes, func(_, lo, hi int) {
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
				l.mask[p*out+o] = int32(arg)
			}
		}
	}
	return nil
}

func (l *pooling[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	dy, dx := top[0].Diff(), bottom[0].Diff()
	planes, in, out := l.num*l.chans, l.h*l.w, l.oh*l.ow
	switch l.method {
	case caffepb.PoolingParameter_MAX, caffepb.PoolingParameter_STOCHASTIC:
		if l.method == caffepb.PoolingParameter_STOCHASTIC && l.ctx.Phase != caffepb.Phase_TRAIN {
			return fmt.Errorf("STOCHASTIC pooling has no gradient at TEST")
		}
		var topMask []T
		if l.method == caffepb.PoolingParameter_MAX && len(top) > 1 {
			topMask = top[1].Data()
		}
		cpu.Parallel(planes, func(_, lo, hi int) {
			for p := lo; p < hi; p++ {
				dxp, dyp := dx[p*in:(p+1)*in], dy[p*out:(p+1)*out]
				clear(dxp)
				for o, g := range dyp {
					var arg int
					if topMask != nil {
						arg = int(topMask[p*out+o])
					} else {
						arg = int(l.mask[p*out+o])
					}
					if arg >= 0 && arg < in {
						dxp[arg] += g
					}
				}
			}
		})
	case caffepb.PoolingParameter_AVE:
		cpu.Parallel(planes, func(_, lo, hi int) {
			for p := lo; p < hi; p++ {
				dxp, dyp := dx[p*in:(p+1)*in], dy[p*out:(p+1)*out]
				clear(dxp)
				for oy := 0; oy < l.oh; oy++ {
					for ox := 0; ox < l.ow; ox++ {
						h0, h1, w0, w1 := l.window(oy, ox)
						g := dyp[oy*l.ow+ox] / T(l.aveSize(oy, ox))
						for iy := h0; iy < h1; iy++ {
							row := dxp[iy*l.w+w0 : iy*l.w+w1]
							for i := range row {
								row[i] += g
							}
						}
					}
				}
			}
		})
	}
	return nil
}
