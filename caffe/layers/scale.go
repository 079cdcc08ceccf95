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

// scale multiplies its first bottom by a factor broadcast along axes
// [axis, axis+num_axes): a learned blob (default filler constant 1) or the
// second bottom. With bias_term it then adds a learned bias of the same
// shape. Blobs are [scale, bias] in the one-bottom form and [bias] in the
// two-bottom form, as in Caffe. It works in place.
type scale[T blob.Float] struct {
	counts
	paramProp
	ctx   layer.Context
	p     *caffepb.ScaleParameter
	s     *blob.Blob[T] // learned scale (one-bottom form)
	b     *blob.Blob[T] // learned bias (bias_term)
	bc    broadcast
	saved *blob.Blob[T] // input copy when in place
	be    kernels.Backend[T]
}

func newScale[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetScaleParam()
	if p.GetNumAxes() < -1 {
		return nil, fmt.Errorf("scale_param num_axes must be >= -1, got %d", p.GetNumAxes())
	}
	return &scale[T]{counts: counts{1, 2, 1, 1}, ctx: ctx, p: p, be: layer.Backend[T](ctx)}, nil
}

func (l *scale[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	axis := int(l.p.GetAxis())
	numAxes := int(l.p.GetNumAxes())
	if len(bottom) == 1 {
		s, err := paramBlob[T](bottom[0], axis, numAxes, "scale")
		if err != nil {
			return err
		}
		fp := l.p.GetFiller()
		if fp == nil {
			fp = &caffepb.FillerParameter{Type: proto.String("constant"), Value: proto.Float32(1)}
		}
		if err := filler.Fill(fp, l.ctx.Rand, s); err != nil {
			return fmt.Errorf("scale filler: %w", err)
		}
		l.s = s
	} else {
		numAxes = bottom[1].NumAxes()
	}
	if l.p.GetBiasTerm() {
		b, err := paramBlob[T](bottom[0], axis, numAxes, "bias")
		if err != nil {
			return err
		}
		if err := filler.Fill(l.p.GetBiasFiller(), l.ctx.Rand, b); err != nil {
			return fmt.Errorf("bias filler: %w", err)
		}
		l.b = b
	}
	return nil
}

func (l *scale[T]) factor(bottom []*blob.Blob[T]) *blob.Blob[T] {
	if len(bottom) > 1 {
		return bottom[1]
	}
	return l.s
}

func (l *scale[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	bc, err := broadcastOver(bottom[0], l.factor(bottom), int(l.p.GetAxis()), "scale")
	if err != nil {
		return err
	}
	if l.b != nil && l.b.Count() != bc.dim {
		return fmt.Errorf("bias has %d values, scale %d", l.b.Count(), bc.dim)
	}
	l.bc = bc
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

func (l *scale[T]) Blobs() []*blob.Blob[T] {
	var bs []*blob.Blob[T]
	if l.s != nil {
		bs = append(bs, l.s)
	}
	if l.b != nil {
		bs = append(bs, l.b)
	}
	return bs
}

func (l *scale[T]) Forward(bottom, top []*blob.Blob[T]) error {
	be, bc := l.be, l.bc
	x := bottom[0].DataOn(be)
	if top[0] == bottom[0] {
		be.Copy(l.saved.MutableDataOn(be), x)
	}
	y := top[0].MutableDataOn(be)
	be.ScaleChannels(x, l.factor(bottom).DataOn(be), y, bc.outer, bc.dim, bc.inner)
	if l.b != nil {
		be.AddBias(y, l.b.DataOn(be), bc.outer, bc.dim, bc.inner)
	}
	return nil
}

func (l *scale[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	be, bc := l.be, l.bc
	dy := top[0].DiffOn(be)
	// Parameter gradients first: in place, dx overwrites dy.
	biasIndex := 1 // blobs are [scale, bias], or [bias] with two bottoms
	if l.s == nil {
		biasIndex = 0
	}
	if l.b != nil && l.wants(biasIndex) {
		be.BiasGrad(dy, l.b.MutableDiffOn(be), bc.outer, bc.dim, bc.inner)
	}
	x := bottom[0].DataOn(be)
	if top[0] == bottom[0] {
		x = l.saved.DataOn(be)
	}
	fromBottom := len(bottom) > 1
	if (fromBottom && propagateDown[1]) || (!fromBottom && l.wants(0)) {
		var ds kernels.Vec[T]
		if fromBottom {
			ds = bottom[1].MutableDiffOn(be)
			be.Fill(ds, 0)
		} else {
			ds = l.s.MutableDiffOn(be)
		}
		be.ChannelDot(dy, x, ds, bc.outer, bc.dim, bc.inner)
	}
	if propagateDown[0] {
		be.ScaleChannels(dy, l.factor(bottom).DataOn(be), bottom[0].MutableDiffOn(be), bc.outer, bc.dim, bc.inner)
	}
	return nil
}
