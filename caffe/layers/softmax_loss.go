package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// softmaxWithLoss computes the multinomial logistic loss of the softmax of
// its first bottom (softmax_param.axis) against integer labels, with
// loss_param's ignore_label and normalization. An optional second top
// receives the probabilities.
type softmaxWithLoss[T blob.Float] struct {
	counts
	noBlobs[T]
	lossBase
	axisParam              int
	outer, channels, inner int
	prob                   *blob.Blob[T]
	valid                  int
	be                     kernels.Backend[T]
	cls                    []int32        // class per position, -1 where ignored (host)
	clsDev                 kernels.IntVec // cls in the backend's memory
	staged                 bool           // Stage has sent this batch's classes (see layer.Stager)
	// accTop is the top of the Accuracy layer fused into this one
	// (FuseAccuracy), with its top_k; nil when none.
	accTop  *blob.Blob[T]
	accTopK int
}

// softmaxLossBackend is a backend with softmax, loss and accuracy in one
// pass (the CUDA one): topK 0 computes no accuracy.
type softmaxLossBackend[T blob.Float] interface {
	SoftmaxLossAccuracy(x, prob kernels.Vec[T], cls kernels.IntVec, outer, channels, inner int, normalizer float64, loss kernels.Vec[T], topK int, acc kernels.Vec[T])
}

// fusedSoftmaxMax is the most scores (outer·channels·inner) the one-block
// fused softmax+loss pass takes without an accuracy: one thread per
// position walks its channels, which is fast for LeNet's and CIFAR-10's
// 10 classes and slow for 1000 (AlexNet b256: 0.67 ms in one block, where
// the separate softmax runs a warp per row).
const fusedSoftmaxMax = 1 << 14

// fusedAccuracyMax is the most positions up to which an Accuracy layer is
// fused (its one block then takes a few positions per thread).
const fusedAccuracyMax = 1 << 16

// FuseAccuracy makes this layer compute acc's accuracy into top in its own
// forward pass (caffe/network asks when both read the same scores and
// labels; the Accuracy layer then skips its forward pass): only on a
// backend with the fused pass, with the same axis and ignore_label, one
// top, and a batch of at most fusedAccuracyMax positions. Call it after
// Reshape.
func (l *softmaxWithLoss[T]) FuseAccuracy(acc layer.Layer[T], top *blob.Blob[T]) bool {
	a, ok := acc.(*accuracy[T])
	if _, fb := l.be.(softmaxLossBackend[T]); !ok || !fb || a.perClassTop {
		return false
	}
	if a.outer != l.outer || a.channels != l.channels || a.inner != l.inner || l.outer*l.inner > fusedAccuracyMax ||
		a.hasIgnore != l.hasIgnore || (a.hasIgnore && a.ignore != l.ignore) {
		return false
	}
	l.accTop, l.accTopK = top, a.topK
	return true
}

var _ layer.Stager[float32] = (*softmaxWithLoss[float32])(nil)

// Stage checks the labels and sends the classes to the backend's memory:
// the host part of Forward, which a recorded iteration runs before each
// replay (layer.Stager).
func (l *softmaxWithLoss[T]) Stage(bottom, top []*blob.Blob[T]) error {
	if n := l.outer * l.inner; l.clsDev.Len() != n {
		l.cls, l.clsDev = make([]int32, n), l.be.AllocInts(n)
	}
	valid, err := l.classes(bottom[1].HostData())
	if err != nil {
		return err
	}
	l.valid, l.staged = valid, true
	return nil
}

// Unstage forgets a staged batch.
func (l *softmaxWithLoss[T]) Unstage() { l.staged = false }

// Replayable: the device work depends on the batch only through the
// staged classes, except that VALID normalization with an ignore_label
// divides by the batch's count of labelled positions.
func (l *softmaxWithLoss[T]) Replayable() bool {
	return !(l.hasIgnore && l.norm == caffepb.LossParameter_VALID)
}

func newSoftmaxWithLoss[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	return &softmaxWithLoss[T]{
		counts:    counts{2, 2, 1, 2},
		lossBase:  newLossBase(ctx.Param, caffepb.LossParameter_VALID),
		axisParam: int(ctx.Param.GetSoftmaxParam().GetAxis()),
		prob:      blob.New[T](),
		be:        layer.Backend[T](ctx),
	}, nil
}

func (l *softmaxWithLoss[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *softmaxWithLoss[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if err := checkLabelNum(bottom); err != nil {
		return err
	}
	axis, err := bottom[0].CanonicalAxis(l.axisParam)
	if err != nil {
		return err
	}
	l.outer, l.channels, l.inner = bottom[0].CountRange(0, axis), bottom[0].Dim(axis), bottom[0].CountFrom(axis+1)
	if n := bottom[1].Count(); n != l.outer*l.inner {
		return fmt.Errorf("label count %d must equal prediction count %d / channels %d (N*H*W for axis 1)", n, bottom[0].Count(), l.channels)
	}
	l.prob.ReshapeLike(bottom[0])
	lossTop(top[0]) // cls and clsDev are sized by Forward: building a net allocates no activations
	if len(top) > 1 {
		top[1].ReshapeLike(bottom[0])
	}
	return nil
}

// classes checks the labels (on the host, where the data layers write
// them) and sends each position's class, -1 where ignored, to the device.
func (l *softmaxWithLoss[T]) classes(label []T) (valid int, err error) {
	for pos, v := range label[:l.outer*l.inner] {
		c, ignored, err := labelAt(v, pos, l.channels, l.hasIgnore, l.ignore)
		if err != nil {
			return 0, err
		}
		if ignored {
			l.cls[pos] = -1
			continue
		}
		l.cls[pos] = int32(c)
		valid++
	}
	l.be.UploadInts(l.clsDev, l.cls)
	return valid, nil
}

func (l *softmaxWithLoss[T]) Forward(bottom, top []*blob.Blob[T]) error {
	if !l.staged {
		if err := l.Stage(bottom, top); err != nil {
			return err
		}
	}
	l.staged = false
	be, valid := l.be, l.valid
	prob := l.prob.MutableDataOn(be)
	if fb, ok := be.(softmaxLossBackend[T]); ok && (l.accTop != nil || l.outer*l.channels*l.inner <= fusedSoftmaxMax) {
		var acc kernels.Vec[T]
		topK := 0
		if l.accTop != nil {
			acc, topK = l.accTop.MutableDataOn(be), l.accTopK
		}
		fb.SoftmaxLossAccuracy(bottom[0].DataOn(be), prob, l.clsDev, l.outer, l.channels, l.inner, l.normalizer(l.outer, l.inner, valid),
			top[0].MutableDataOn(be), topK, acc)
	} else {
		be.SoftmaxForward(bottom[0].DataOn(be), prob, l.outer, l.channels, l.inner)
		be.SoftmaxLossForward(prob, l.clsDev, l.outer, l.channels, l.inner, l.normalizer(l.outer, l.inner, valid), top[0].MutableDataOn(be))
	}
	if len(top) > 1 {
		be.Copy(top[1].MutableDataOn(be), prob)
	}
	return nil
}

func (l *softmaxWithLoss[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if err := labelGradientError("SoftmaxWithLoss", propagateDown, 1); err != nil {
		return err
	}
	if !propagateDown[0] {
		return nil
	}
	// The loss weight, which the net seeds on the host.
	scale := top[0].HostDiff()[0] / T(l.normalizer(l.outer, l.inner, l.valid))
	l.be.SoftmaxLossBackward(l.prob.DataOn(l.be), l.clsDev, l.outer, l.channels, l.inner, scale, bottom[0].MutableDiffOn(l.be))
	return nil
}
