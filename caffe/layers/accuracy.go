package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// accuracy is the fraction of predictions whose label is among the top_k
// scores along accuracy_param.axis (ties with the label's score count
// against it, as in Caffe). An optional second top gets the accuracy of
// each class. Labels equal to ignore_label are skipped. It has no gradient.
// The labels are checked on the host (Stage); the count runs on the
// layer's backend.
type accuracy[T blob.Float] struct {
	counts
	noBlobs[T]
	topK                   int
	axisParam              int
	hasIgnore              bool
	ignore                 int
	outer, channels, inner int
	be                     kernels.Backend[T]
	cls                    []int32        // class per position, -1 where ignored (host)
	clsDev                 kernels.IntVec // cls in the backend's memory
	staged                 bool           // Stage has sent this batch's classes
	perClassTop            bool           // a second top gets the accuracy per class
}

func newAccuracy[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetAccuracyParam()
	l := &accuracy[T]{counts: counts{2, 2, 1, 2}, topK: int(p.GetTopK()), axisParam: int(p.GetAxis()), be: layer.Backend[T](ctx)}
	if p != nil && p.IgnoreLabel != nil {
		l.hasIgnore, l.ignore = true, int(p.GetIgnoreLabel())
	}
	if l.topK < 1 {
		return nil, fmt.Errorf("accuracy_param top_k must be at least 1, got %d", l.topK)
	}
	return l, nil
}

// AllowForceBackward refuses gradients to both bottoms.
func (l *accuracy[T]) AllowForceBackward(int) bool { return false }

func (l *accuracy[T]) Setup(bottom, top []*blob.Blob[T]) error {
	return l.check(len(bottom), len(top))
}

func (l *accuracy[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	axis, err := bottom[0].CanonicalAxis(l.axisParam)
	if err != nil {
		return err
	}
	l.outer, l.channels, l.inner = bottom[0].CountRange(0, axis), bottom[0].Dim(axis), bottom[0].CountFrom(axis+1)
	if l.topK > l.channels {
		return fmt.Errorf("top_k %d must not exceed the number of classes %d", l.topK, l.channels)
	}
	if n := bottom[1].Count(); n != l.outer*l.inner {
		return fmt.Errorf("label count %d must equal prediction count %d / classes %d", n, bottom[0].Count(), l.channels)
	}
	top[0].Reshape()
	l.perClassTop = len(top) > 1
	if len(top) > 1 {
		top[1].Reshape(l.channels)
	}
	return nil
}

var _ layer.Stager[float32] = (*accuracy[float32])(nil)

// Stage checks the labels (on the host, where the data layers write them)
// and sends each position's class, -1 where ignored, to the backend's
// memory: the host part of Forward (layer.Stager).
func (l *accuracy[T]) Stage(bottom, top []*blob.Blob[T]) error {
	n := l.outer * l.inner
	if l.clsDev.Len() != n {
		l.cls, l.clsDev = make([]int32, n), l.be.AllocInts(n)
	}
	for pos, v := range bottom[1].HostData()[:n] {
		c, ignored, err := labelAt(v, pos, l.channels, l.hasIgnore, l.ignore)
		if err != nil {
			return err
		}
		if ignored {
			c = -1
		}
		l.cls[pos] = int32(c)
	}
	l.be.UploadInts(l.clsDev, l.cls)
	l.staged = true
	return nil
}

// Unstage forgets a staged batch.
func (l *accuracy[T]) Unstage() { l.staged = false }

// Replayable: the device work depends on the batch only through the staged
// classes.
func (l *accuracy[T]) Replayable() bool { return true }

// Forward counts on the backend; the accuracy stays in the top's memory
// until the caller reads it (with the loss, once per display interval).
func (l *accuracy[T]) Forward(bottom, top []*blob.Blob[T]) error {
	if !l.staged {
		if err := l.Stage(bottom, top); err != nil {
			return err
		}
	}
	l.staged = false
	be := l.be
	var perClass kernels.Vec[T]
	if len(top) > 1 {
		perClass = top[1].MutableDataOn(be)
	}
	be.AccuracyForward(bottom[0].DataOn(be), l.clsDev, l.outer, l.channels, l.inner, l.topK, top[0].MutableDataOn(be), perClass)
	return nil
}

func (l *accuracy[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	return noPropagate("Accuracy", propagateDown)
}
