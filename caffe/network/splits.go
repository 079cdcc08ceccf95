package network

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// SplitLayerName is the name Caffe gives the Split layer it inserts after
// top topIndex (named blobName) of layer layerName.
func SplitLayerName(layerName, blobName string, topIndex int) string {
	return fmt.Sprintf("%s_%s_%d_split", blobName, layerName, topIndex)
}

// SplitBlobName is the name of output splitIndex of that Split layer.
func SplitBlobName(layerName, blobName string, topIndex, splitIndex int) string {
	return fmt.Sprintf("%s_%s_%d_split_%d", blobName, layerName, topIndex, splitIndex)
}

type topRef struct{ layer, top int }

// MissingBottomError reports a bottom blob that no earlier layer produces.
type MissingBottomError struct {
	Layer       string
	Blob        string
	BottomIndex int
}

func (e *MissingBottomError) Error() string {
	return fmt.Sprintf("layer %q: unknown bottom blob %q (bottom index %d): no earlier layer produces it", e.Layer, e.Blob, e.BottomIndex)
}

// InsertSplits returns a copy of param in which every top consumed by more
// than one layer (a use as a loss, with a non-zero loss_weight, counts as
// a consumer) feeds a Split layer whose outputs go to the consumers one
// each, as Caffe's InsertSplits does, with Caffe's names
// (`<blob>_<layer>_<i>_split` and `..._split_<k>`). Where the split top
// carries a loss, the Split layer takes the loss weight on its first
// output and the producing layer's loss_weight is cleared.
func InsertSplits(param *caffepb.NetParameter) (*caffepb.NetParameter, error) {
	out, _, err := insertSplits(param)
	return out, err
}

// insertSplits is InsertSplits that also returns, per output layer, the
// index of the input layer it copies (-1 for an inserted Split).
func insertSplits(param *caffepb.NetParameter) (*caffepb.NetParameter, []int, error) {
	var origin []int
	layers := param.GetLayer()
	lastTop := map[string]topRef{}
	source := map[topRef]topRef{} // (layer, bottom) -> producing (layer, top)
	consumers := map[topRef]int{}
	lossWeight := map[topRef]float32{}
	for i, lp := range layers {
		for j, b := range lp.GetBottom() {
			src, ok := lastTop[b]
			if !ok {
				return nil, nil, &MissingBottomError{Layer: lp.GetName(), Blob: b, BottomIndex: j}
			}
			source[topRef{i, j}] = src
			consumers[src]++
		}
		for j, t := range lp.GetTop() {
			lastTop[t] = topRef{i, j}
		}
		for j := 0; j < min(len(lp.GetLossWeight()), len(lp.GetTop())); j++ {
			ref := lastTop[lp.GetTop()[j]]
			lossWeight[ref] = lp.GetLossWeight()[j]
			if lossWeight[ref] != 0 {
				consumers[ref]++
			}
		}
	}
	out := proto.CloneOf(param)
	out.Layer = nil
	nextSplit := map[topRef]int{}
	for i, orig := range layers {
		lp := proto.CloneOf(orig)
		out.Layer = append(out.Layer, lp)
		origin = append(origin, i)
		for j := range lp.GetBottom() {
			src := source[topRef{i, j}]
			if consumers[src] > 1 {
				lp.Bottom[j] = SplitBlobName(layers[src.layer].GetName(), lp.Bottom[j], src.top, nextSplit[src])
				nextSplit[src]++
			}
		}
		for j, t := range lp.GetTop() {
			ref := topRef{i, j}
			n := consumers[ref]
			if n <= 1 {
				continue
			}
			w := lossWeight[ref]
			split := &caffepb.LayerParameter{
				Name:   proto.String(SplitLayerName(lp.GetName(), t, j)),
				Type:   proto.String("Split"),
				Bottom: []string{t},
			}
			for k := range n {
				split.Top = append(split.Top, SplitBlobName(lp.GetName(), t, j, k))
				if w != 0 {
					if k == 0 {
						split.LossWeight = append(split.LossWeight, w)
					} else {
						split.LossWeight = append(split.LossWeight, 0)
					}
				}
			}
			if w != 0 {
				lp.LossWeight = nil
				nextSplit[ref]++
			}
			out.Layer = append(out.Layer, split)
			origin = append(origin, -1)
		}
	}
	return out, origin, nil
}
