package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
	"google.golang.org/protobuf/proto"
)

// batchNorm normalises each channel (axis 1) to zero mean and unit
// variance, over the batch and spatial positions (training) or with the
// stored statistics (use_global_stats, the default at TEST). Its blobs are
// Caffe's: running mean (C), running variance (C) and the scale factor
// (1) both are divided by; they are not learned (lr_mult 0) and Backward
// writes no parameter diffs. It works in place, on the layer's backend.
type batchNorm[T blob.Float] struct {
	counts
	global   bool
	maf      float64
	eps      float64
	blobs    []*blob.Blob[T]
	channels int
	spatial  int // elements per channel per example
	num      int
	mean     *blob.Blob[T] // the mean used, per channel
	inv      *blob.Blob[T] // 1/sqrt(var + eps) per channel
	xnorm    *blob.Blob[T]
	be       kernels.Backend[T]
}

func newBatchNorm[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetBatchNormParam()
	l := &batchNorm[T]{counts: counts{1, 1, 1, 1}, maf: float64(p.GetMovingAverageFraction()), eps: float64(p.GetEps()),
		global: ctx.Phase == caffepb.Phase_TEST, be: layer.Backend[T](ctx)}
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
	l.mean, l.inv = blob.New[T](c), blob.New[T](c)
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
	be := l.be
	n := bottom[0].Count()
	run := func(i int) kernels.Vec[T] {
		if l.global {
			return l.blobs[i].DataOn(be)
		}
		return l.blobs[i].MutableDataOn(be)
	}
	be.BatchNormForward(bottom[0].DataOn(be).Slice(0, n), top[0].MutableDataOn(be).Slice(0, n), l.xnorm.MutableDataOn(be).Slice(0, n),
		l.num, l.channels, l.spatial, l.global, l.eps, l.maf,
		l.mean.MutableDataOn(be), l.inv.MutableDataOn(be), run(0), run(1), run(2))
	return nil
}

// Backward, for batch statistics: dx = (dy - mean(dy) - y·mean(dy·y)) / std,
// means per channel over batch and space; for global statistics dx = dy/std.
func (l *batchNorm[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	be := l.be
	n := bottom[0].Count()
	be.BatchNormBackward(top[0].DiffOn(be).Slice(0, n), l.xnorm.DataOn(be).Slice(0, n), l.inv.DataOn(be),
		bottom[0].MutableDiffOn(be).Slice(0, n), l.num, l.channels, l.spatial, l.global)
	return nil
}
