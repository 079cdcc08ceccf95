package layers

import (
	"fmt"
	"math/rand/v2"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// dropout zeroes each input with probability dropout_ratio at train time
// and scales the survivors by 1/(1 - ratio), so at test time it is the
// identity (Caffe's "inverted" dropout). It works in place.
//
// Its mask is drawn where the backend computes, by a counter-based
// generator (kernels.DropoutMask) from a key of 64 bits that each pass
// takes from the layer's random source: the host draws one number per
// pass, not one per element, and a device draws the mask in the kernel
// that applies it. The key goes to the backend's memory in Stage, so an
// iteration recorded on a device (a CUDA graph) replays with a fresh mask.
type dropout[T blob.Float] struct {
	neuron[T]
	train  bool
	ratio  float64
	scale  T
	thr    uint32 // kernels.DropThreshold(ratio)
	rng    *rand.Rand
	be     kernels.Backend[T]
	mask   *blob.Blob[T]  // scale where an input is kept, 0 where dropped
	key    kernels.IntVec // this pass's key, in the backend's memory
	keyBuf [2]int32       // its host copy (a field: no allocation per pass)
	staged bool           // Stage has sent this pass's key (see layer.Stager)
}

func newDropout[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	r := float64(ctx.Param.GetDropoutParam().GetDropoutRatio())
	if r < 0 || r >= 1 {
		return nil, fmt.Errorf("dropout_ratio must be in [0, 1), got %g", r)
	}
	train := ctx.Phase == caffepb.Phase_TRAIN
	if train && ctx.Rand == nil {
		return nil, fmt.Errorf("dropout needs a random source at train time")
	}
	return &dropout[T]{neuron: newNeuron[T](), train: train, ratio: r, scale: T(1 / (1 - r)),
		thr: kernels.DropThreshold(r), rng: ctx.Rand, be: layer.Backend[T](ctx), mask: blob.New[T]()}, nil
}

func (l *dropout[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if err := l.neuron.Reshape(bottom, top); err != nil {
		return err
	}
	l.mask.ReshapeLike(bottom[0])
	return nil
}

// sendKey draws this pass's key and puts it in the backend's memory.
func (l *dropout[T]) sendKey() {
	if l.key.Len() == 0 {
		l.key = l.be.AllocInts(2)
	}
	l.keyBuf = kernels.DropoutKey(l.rng.Uint64())
	l.be.UploadInts(l.key, l.keyBuf[:])
}

// Stage sends the next pass's key (at train time; at test time Dropout
// draws nothing).
func (l *dropout[T]) Stage(bottom, top []*blob.Blob[T]) error {
	if l.train {
		l.sendKey()
		l.staged = true
	}
	return nil
}

// Unstage forgets a staged key.
func (l *dropout[T]) Unstage() { l.staged = false }

// Replayable: the device work depends on the pass only through the key.
func (l *dropout[T]) Replayable() bool { return true }

func (l *dropout[T]) Forward(bottom, top []*blob.Blob[T]) error {
	be := l.be
	x := bottom[0].DataOn(be)
	y := top[0].MutableDataOn(be).Slice(0, x.Len())
	if !l.train {
		if top[0] != bottom[0] {
			be.Copy(y, x)
		}
		return nil
	}
	if !l.staged {
		l.sendKey()
	}
	l.staged = false
	be.DropoutForward(x, y, l.mask.MutableDataOn(be).Slice(0, x.Len()), l.key, l.thr, l.scale)
	return nil
}
func (l *dropout[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	be := l.be
	dx := bottom[0].MutableDiffOn(be)
	dy := top[0].DiffOn(be).Slice(0, dx.Len())
	if !l.train {
		if top[0] != bottom[0] {
			be.Copy(dx, dy)
		}
		return nil
	}
	be.Mul(dy, l.mask.DataOn(be).Slice(0, dx.Len()), dx)
	return nil
}
