package layers

import (
	"fmt"
	"math"
	"os"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"google.golang.org/protobuf/proto"
)

// infogainLoss is Caffe's infogain loss over the softmax of its first
// bottom (along infogain_loss_param.axis): -Σ_l H[label, l]·log(p_l),
// where the K×K matrix H is the third bottom or a BlobProto file
// (infogain_loss_param.source). ignore_label and normalization apply; an
// optional second top receives the probabilities.
type infogainLoss[T blob.Float] struct {
	counts
	noBlobs[T]
	lossBase
	ctx                    layer.Context
	axisParam              int
	outer, channels, inner int
	h                      []T // from the source file
	prob                   *blob.Blob[T]
	rowSum                 []T
	valid                  int
}

func newInfogainLoss[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	lp := ctx.Param.GetLossParam()
	if lp != nil && lp.Normalize != nil {
		return nil, fmt.Errorf("loss_param normalize is deprecated for InfogainLoss; use normalization")
	}
	return &infogainLoss[T]{counts: counts{2, 3, 1, 2}, lossBase: newLossBase(ctx.Param, caffepb.LossParameter_VALID),
		ctx: ctx, axisParam: int(ctx.Param.GetInfogainLossParam().GetAxis()), prob: blob.New[T]()}, nil
}

func (l *infogainLoss[T]) AllowForceBackward(i int) bool { return i == 0 }

func (l *infogainLoss[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	if len(bottom) == 3 {
		return nil
	}
	src := l.ctx.Param.GetInfogainLossParam().GetSource()
	if src == "" {
		return fmt.Errorf("InfogainLoss needs the matrix H as a third bottom or infogain_loss_param.source")
	}
	raw, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("infogain matrix: %w", err)
	}
	var bp caffepb.BlobProto
	if err := proto.Unmarshal(raw, &bp); err != nil {
		return fmt.Errorf("infogain matrix %s: %w", src, err)
	}
	if d := bp.GetDoubleData(); len(d) > 0 {
		for _, v := range d {
			l.h = append(l.h, T(v))
		}
	} else {
		for _, v := range bp.GetData() {
			l.h = append(l.h, T(v))
		}
	}
	return nil
}

func (l *infogainLoss[T]) matrix(bottom []*blob.Blob[T]) []T {
	if len(bottom) > 2 {
		return bottom[2].Data()
	}
	return l.h
}

func (l *infogainLoss[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if err := checkLabelNum(bottom); err != nil {
		return err
	}
	axis, err := bottom[0].CanonicalAxis(l.axisParam)
	if err != nil {
		return err
	}
	l.outer, l.channels, l.inner = bottom[0].CountRange(0, axis), bottom[0].Dim(axis), bottom[0].CountFrom(axis+1)
	if n := bottom[1].Count(); n != l.outer*l.inner {
		return fmt.Errorf("label count %d must equal prediction count %d / classes %d", n, bottom[0].Count(), l.channels)
	}
	k := l.channels
	if n := len(l.matrix(bottom)); n != k*k {
		return fmt.Errorf("infogain matrix has %d values, want %dx%d", n, k, k)
	}
	l.rowSum = make([]T, k)
	l.prob.ReshapeLike(bottom[0])
	lossTop(top[0])
	if len(top) > 1 {
		top[1].ReshapeLike(bottom[0])
	}
	return nil
}

func (l *infogainLoss[T]) Forward(bottom, top []*blob.Blob[T]) error {
	prob := l.prob.Data()
	softmaxForward(bottom[0].HostData(), prob, l.outer, l.channels, l.inner)
	h, label := l.matrix(bottom), bottom[1].HostData()
	k := l.channels
	var loss float64
	valid := 0
	for o := 0; o < l.outer; o++ {
		for j := 0; j < l.inner; j++ {
			pos := o*l.inner + j
			c, ignored, err := labelAt(label[pos], pos, k, l.hasIgnore, l.ignore)
			if err != nil {
				return err
			}
			if ignored {
				continue
			}
			for m := 0; m < k; m++ {
				p := float64(prob[(o*k+m)*l.inner+j])
				loss -= float64(h[c*k+m]) * math.Log(math.Max(p, logThreshold))
			}
			valid++
		}
	}
	l.valid = valid
	top[0].Data()[0] = T(loss / l.normalizer(l.outer, l.inner, valid))
	if len(top) > 1 {
		copy(top[1].Data(), prob)
	}
	return nil
}

// Backward: dx_l = p_l·Σ_m H[label, m] - H[label, l], scaled.
func (l *infogainLoss[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if err := labelGradientError("InfogainLoss", propagateDown, 1); err != nil {
		return err
	}
	if !propagateDown[0] {
		return nil
	}
	h, label, prob, dx := l.matrix(bottom), bottom[1].HostData(), l.prob.Data(), bottom[0].Diff()
	k := l.channels
	for r := 0; r < k; r++ {
		var s T
		for m := 0; m < k; m++ {
			s += h[r*k+m]
		}
		l.rowSum[r] = s
	}
	scale := top[0].HostDiff()[0] / T(l.normalizer(l.outer, l.inner, l.valid))
	for o := 0; o < l.outer; o++ {
		for j := 0; j < l.inner; j++ {
			pos := o*l.inner + j
			c, ignored, err := labelAt(label[pos], pos, k, l.hasIgnore, l.ignore)
			if err != nil {
				return err
			}
			for m := 0; m < k; m++ {
				i := (o*k+m)*l.inner + j
				if ignored {
					dx[i] = 0
				} else {
					dx[i] = (prob[i]*l.rowSum[c] - h[c*k+m]) * scale
				}
			}
		}
	}
	return nil
}
