package layers

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"google.golang.org/protobuf/proto"
)

// batchNorm normalises each channel (axis 1) to zero mean and unit
// variance, over the batch and spatial positions (training) or with the
// stored statistics (use_global_stats, the default at TEST). Its blobs are
// Caffe's: running mean (C), running variance (C) and the scale factor
// (1) both are divided by; they are not learned (lr_mult 0) and Backward
// writes no parameter diffs. It works in place.
type batchNorm[T blob.Float] struct {
	counts
	global   bool
	maf      float64
	eps      float64
	blobs    []*blob.Blob[T]
	channels int
	spatial  int // elements per channel per example
	num      int
	mean     []T
	inv      []T // 1/sqrt(var + eps) per channel
	xnorm    *blob.Blob[T]
}

func newBatchNorm[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetBatchNormParam()
	l := &batchNorm[T]{counts: counts{1, 1, 1, 1}, maf: float64(p.GetMovingAverageFraction()), eps: float64(p.GetEps()),
		global: ctx.Phase == caffepb.Phase_TEST}
	if p != nil && p.UseGlobalStats != nil {
		l.global = p.GetUseGlobalStats()
	}
	// Caffe forces lr_mult 0 on the statistics so solvers leave them alone;
	// it writes the ParamSpecs into the layer definition the net reads.
	for i := 0; i < 3; i++ {
		if i < len(ctx.Param.Param) {
			if ctx.Param.Param[i].GetLrMult() != 0 {
				return nil, fmt.Errorf("BatchNorm statistics cannot be learned: param %d has lr_mult %g, want 0", i, ctx.Param.Param[i].GetLrMult())
			}
			continue
		}
		ctx.Param.Param = append(ctx.Param.Param, &caffepb.ParamSpec{LrMult: proto.Float32(0)})
	}
	return l, nil
}

func (l *batchNorm[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	c := 1
	if bottom[0].NumAxes() > 1 {
		c = bottom[0].Dim(1)
	}
	l.channels = c
	l.blobs = []*blob.Blob[T]{blob.New[T](c), blob.New[T](c), blob.New[T](1)}
	for _, b := range l.blobs {
		clear(b.Data())
	}
	l.mean, l.inv = make([]T, c), make([]T, c)
	l.xnorm = blob.New[T]()
	return nil
}

func (l *batchNorm[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	x := bottom[0]
	c := 1
	if x.NumAxes() > 1 {
		c = x.Dim(1)
	}
	if c != l.channels {
		return fmt.Errorf("BatchNorm was set up for %d channels, bottom has %d (shape %v)", l.channels, c, x.Shape())
	}
	if x.NumAxes() == 0 {
		return fmt.Errorf("BatchNorm needs a bottom with at least one axis")
	}
	l.num = x.Dim(0)
	l.spatial = x.CountFrom(2)
	if top[0] != x {
		top[0].ReshapeLike(x)
	}
	l.xnorm.ReshapeLike(x)
	return nil
}

func (l *batchNorm[T]) Blobs() []*blob.Blob[T] { return l.blobs }

func (l *batchNorm[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	n, c, sp := l.num, l.channels, l.spatial
	if l.global {
		f := float64(l.blobs[2].Data()[0])
		if f != 0 {
			f = 1 / f
		}
		for ch := 0; ch < c; ch++ {
			l.mean[ch] = T(f * float64(l.blobs[0].Data()[ch]))
			l.inv[ch] = T(1 / math.Sqrt(f*float64(l.blobs[1].Data()[ch])+l.eps))
		}
	} else {
		m := float64(n * sp)
		for ch := 0; ch < c; ch++ {
			var s float64
			for i := 0; i < n; i++ {
				for _, v := range x[(i*c+ch)*sp : (i*c+ch+1)*sp] {
					s += float64(v)
				}
			}
			mu := s / m
			var v2 float64
			for i := 0; i < n; i++ {
				for _, v := range x[(i*c+ch)*sp : (i*c+ch+1)*sp] {
					d := float64(v) - mu
					v2 += d * d
				}
			}
			variance := v2 / m
			l.mean[ch] = T(mu)
			l.inv[ch] = T(1 / math.Sqrt(variance+l.eps))
			// Running statistics, with Caffe's unbiased variance.
			corr := 1.0
			if m > 1 {
				corr = m / (m - 1)
			}
			rm, rv := l.blobs[0].Data(), l.blobs[1].Data()
			rm[ch] = T(mu + l.maf*float64(rm[ch]))
			rv[ch] = T(corr*variance + l.maf*float64(rv[ch]))
		}
		f := l.blobs[2].Data()
		f[0] = T(float64(f[0])*l.maf + 1)
	}
	xn := l.xnorm.Data()
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			mu, inv := l.mean[ch], l.inv[ch]
			off := (i*c + ch) * sp
			for k := off; k < off+sp; k++ {
				v := (x[k] - mu) * inv
				y[k] = v
				xn[k] = v
			}
		}
	}
	return nil
}

// Backward, for batch statistics: dx = (dy - mean(dy) - y·mean(dy·y)) / std,
// means per channel over batch and space; for global statistics dx = dy/std.
func (l *batchNorm[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	dy, dx, y := top[0].HostDiff(), bottom[0].Diff(), l.xnorm.Data()
	n, c, sp := l.num, l.channels, l.spatial
	if l.global {
		for i := 0; i < n; i++ {
			for ch := 0; ch < c; ch++ {
				inv := l.inv[ch]
				off := (i*c + ch) * sp
				for k := off; k < off+sp; k++ {
					dx[k] = dy[k] * inv
				}
			}
		}
		return nil
	}
	m := T(n * sp)
	for ch := 0; ch < c; ch++ {
		var sdy, sdyy T
		for i := 0; i < n; i++ {
			off := (i*c + ch) * sp
			for k := off; k < off+sp; k++ {
				sdy += dy[k]
				sdyy += dy[k] * y[k]
			}
		}
		mdy, mdyy, inv := sdy/m, sdyy/m, l.inv[ch]
		for i := 0; i < n; i++ {
			off := (i*c + ch) * sp
			for k := off; k < off+sp; k++ {
				dx[k] = (dy[k] - mdy - y[k]*mdyy) * inv
			}
		}
	}
	return nil
}
