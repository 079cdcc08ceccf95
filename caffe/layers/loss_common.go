package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// lossBase holds what Caffe's LossLayer shares: the loss_param settings and
// the layer.LossLayer and layer.ForceBackwardGate markers (labels, the
// second bottom, never take a gradient).
type lossBase struct {
	hasIgnore bool
	ignore    int
	norm      caffepb.LossParameter_NormalizationMode
}

// IsLoss marks the layer's first top as a loss (default loss_weight 1).
func (lossBase) IsLoss() {}

// AllowForceBackward refuses gradients to the label bottom.
func (lossBase) AllowForceBackward(i int) bool { return i != 1 }

// newLossBase reads loss_param; legacyDefault is the mode used when neither
// normalization nor normalize is set (VALID for most layers, BATCH_SIZE
// for SigmoidCrossEntropyLoss, as in Caffe).
func newLossBase(p *caffepb.LayerParameter, legacyDefault caffepb.LossParameter_NormalizationMode) lossBase {
	lp := p.GetLossParam()
	b := lossBase{norm: lp.GetNormalization()}
	if lp != nil && lp.IgnoreLabel != nil {
		b.hasIgnore, b.ignore = true, int(lp.GetIgnoreLabel())
	}
	switch {
	case lp != nil && lp.Normalization != nil:
	case lp != nil && lp.Normalize != nil:
		if lp.GetNormalize() {
			b.norm = caffepb.LossParameter_VALID
		} else {
			b.norm = caffepb.LossParameter_BATCH_SIZE
		}
	default:
		b.norm = legacyDefault
	}
	return b
}

// normalizer returns what the summed loss is divided by: at least 1.
// valid < 0 means the count of valid predictions is unknown.
func (b lossBase) normalizer(outer, inner, valid int) float64 {
	var n float64
	switch b.norm {
	case caffepb.LossParameter_FULL:
		n = float64(outer * inner)
	case caffepb.LossParameter_VALID:
		if valid < 0 {
			n = float64(outer * inner)
		} else {
			n = float64(valid)
		}
	case caffepb.LossParameter_BATCH_SIZE:
		n = float64(outer)
	default: // NONE
		n = 1
	}
	return max(n, 1)
}

// checkLabelNum checks Caffe's LossLayer rule: prediction and label share
// the first dimension.
func checkLabelNum[T blob.Float](bottom []*blob.Blob[T]) error {
	if bottom[0].NumAxes() == 0 || bottom[1].NumAxes() == 0 {
		return fmt.Errorf("data and label need at least one axis, got shapes %v and %v", bottom[0].Shape(), bottom[1].Shape())
	}
	if bottom[0].Dim(0) != bottom[1].Dim(0) {
		return fmt.Errorf("data (shape %v) and label (shape %v) must have the same first dimension", bottom[0].Shape(), bottom[1].Shape())
	}
	return nil
}

// labelGradientError is Caffe's refusal to backpropagate to labels.
func labelGradientError(typ string, propagateDown []bool, from int) error {
	for i := from; i < len(propagateDown); i++ {
		if propagateDown[i] {
			return fmt.Errorf("%s cannot backpropagate to bottom %d (labels)", typ, i)
		}
	}
	return nil
}

// fltMin is C's FLT_MIN, the floor Caffe puts under probabilities before
// taking their log in SoftmaxWithLoss.
const fltMin = 0x1p-126

// logThreshold is Caffe's kLOG_THRESHOLD, the floor of probabilities in
// MultinomialLogisticLoss and InfogainLoss.
const logThreshold = 1e-20
