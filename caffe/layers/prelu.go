package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/filler"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
	"google.golang.org/protobuf/proto"
)

// pReLU computes y = max(x, 0) + a_c·min(x, 0) with a learned slope per
// channel (axis 1), or one slope for all when channel_shared. It works in
// place (keeping a copy of the input for Backward).
type pReLU[T blob.Float] struct {
	counts
	paramProp
	ctx    layer.Context
	shared bool
	slope  *blob.Blob[T]
	saved  *blob.Blob[T] // input copy when in place
	chans  int
	dim    int // elements per channel
}

func newPReLU[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &pReLU[T]{counts: counts{1, 1, 1, 1}, ctx: ctx, shared: ctx.Param.GetPreluParam().GetChannelShared()}, nil
}

func (l *pReLU[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	if bottom[0].NumAxes() < 2 {
		return fmt.Errorf("PReLU needs a bottom with at least 2 axes, got shape %v", bottom[0].Shape())
	}
	if l.shared {
		l.slope = blob.New[T]() // Caffe's shape: no axes, one value
	} else {
		l.slope = blob.New[T](bottom[0].Dim(1))
	}
	fp := l.ctx.Param.GetPreluParam().GetFiller()
	if fp == nil {
		fp = &caffepb.FillerParameter{Type: proto.String("constant"), Value: proto.Float32(0.25)}
	}
	if err := filler.Fill(fp, l.ctx.Rand, l.slope); err != nil {
		return fmt.Errorf("slope filler: %w", err)
	}
	return nil
}

func (l *pReLU[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if bottom[0].NumAxes() < 2 {
		return fmt.Errorf("PReLU needs a bottom with at least 2 axes, got shape %v", bottom[0].Shape())
	}
	l.chans = bottom[0].Dim(1)
	if !l.shared && l.slope.Count() != l.chans {
		return fmt.Errorf("PReLU has %d slopes but the bottom has %d channels", l.slope.Count(), l.chans)
	}
	l.dim = bottom[0].CountFrom(2)
	if top[0] == bottom[0] {
		if l.saved == nil {
			l.saved = blob.New[T]()
		}
		l.saved.ReshapeLike(bottom[0])
	} else {
		top[0].ReshapeLike(bottom[0])
	}
	return nil
}

func (l *pReLU[T]) Blobs() []*blob.Blob[T] { return []*blob.Blob[T]{l.slope} }

// slopeOf returns the slope of the block of dim elements at block index k.
func (l *pReLU[T]) slopeOf(a []T, k int) T {
	if l.shared {
		return a[0]
	}
	return a[k%l.chans]
}

func (l *pReLU[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y, a := bottom[0].Data(), top[0].Data(), l.slope.Data()
	if top[0] == bottom[0] {
		copy(l.saved.Data(), x)
	}
	d := l.dim
	for k := 0; k*d < len(x); k++ {
		s := l.slopeOf(a, k)
		yb := y[k*d : (k+1)*d]
		for i, v := range x[k*d : (k+1)*d] {
			yb[i] = max(v, 0) + s*min(v, 0)
		}
	}
	return nil
}

func (l *pReLU[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	x := bottom[0].HostData()
	if top[0] == bottom[0] {
		x = l.saved.HostData()
	}
	dy, a, da := top[0].HostDiff(), l.slope.HostData(), l.slope.MutableHostDiff()
	d := l.dim
	// Slope gradient first: in place, dx overwrites dy.
	for k := 0; k*d < len(x) && l.wants(0); k++ {
		var g T
		dyb := dy[k*d : (k+1)*d]
		for i, v := range x[k*d : (k+1)*d] {
			g += dyb[i] * min(v, 0)
		}
		if l.shared {
			da[0] += g
		} else {
			da[k%l.chans] += g
		}
	}
	if !propagateDown[0] {
		return nil
	}
	dx, hb := bottom[0].MutableHostDiff(), layer.HostBackend[T]()
	for k := 0; k*d < len(x); k++ {
		xb, dyb, dxb, s := x[k*d:(k+1)*d], dy[k*d:(k+1)*d], dx[k*d:(k+1)*d], l.slopeOf(a, k)
		hb.ReLUBackward(kernels.HostVec(xb), kernels.HostVec(dyb), kernels.HostVec(dxb), s)
	}
	return nil
}
