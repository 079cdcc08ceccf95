package network

import (
	"fmt"
	"sort"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// Graph is a net's wiring after filtering and split insertion: layers in
// execution order and, for each, the ids of its bottom and top blobs.
// In-place layers use the same blob id for a bottom and the top at the
// same index.
type Graph struct {
	// Name is the net's name.
	Name string
	// Phase is the phase the graph was built for.
	Phase caffepb.Phase
	// Layers are the layer definitions in execution order, split layers
	// included; each has its phase set.
	Layers []*caffepb.LayerParameter
	// BlobNames holds one name per blob id.
	BlobNames []string
	// Bottoms and Tops hold, per layer, blob ids.
	Bottoms, Tops [][]int
	// Inputs are the top blobs of Input layers, in order.
	Inputs []int
	// Outputs are the blobs no layer consumes, sorted by name as Caffe
	// lists them.
	Outputs []int
	// ForceBackward is the net's force_backward flag.
	ForceBackward bool
}

// Prepare returns the net to build for state: legacy inputs upgraded to an
// Input layer, layers filtered by their include/exclude rules, and every
// layer's phase set (a layer's own phase wins).
func Prepare(param *caffepb.NetParameter, state *caffepb.NetState) (*caffepb.NetParameter, error) {
	if len(param.GetLayers()) > 0 && len(param.GetLayer()) == 0 {
		return nil, fmt.Errorf("net %q uses the legacy V1 `layers` form; upgrade it (caffe/prototxt) before building", param.GetName())
	}
	st := EffectiveState(param, state)
	up, err := UpgradeInputs(param)
	if err != nil {
		return nil, err
	}
	f, err := Filter(up, st)
	if err != nil {
		return nil, fmt.Errorf("net %q: %w", param.GetName(), err)
	}
	for _, lp := range f.Layer {
		if lp.Phase == nil {
			lp.Phase = st.Phase
			if lp.Phase == nil {
				lp.Phase = caffepb.Phase_TEST.Enum()
			}
		}
	}
	return f, nil
}

// SetDefaultLossWeights gives a loss layer without loss_weight entries a
// weight of 1 on its first top and 0 on the others (Caffe's LossLayer).
func SetDefaultLossWeights(lp *caffepb.LayerParameter) {
	if len(lp.GetLossWeight()) > 0 || len(lp.GetTop()) == 0 {
		return
	}
	lp.LossWeight = make([]float32, len(lp.GetTop()))
	lp.LossWeight[0] = 1
}

// LossWeights returns one loss weight per top of lp: its loss_weight
// entries, or zeros where it has none. Any other number of entries than
// tops is an error, as in Caffe.
func LossWeights(lp *caffepb.LayerParameter) ([]float32, error) {
	w := make([]float32, len(lp.GetTop()))
	if n := len(lp.GetLossWeight()); n > 0 {
		if n != len(w) {
			return nil, fmt.Errorf("layer %q: %d loss_weight entries for %d tops: give none or one per top", lp.GetName(), n, len(w))
		}
		copy(w, lp.GetLossWeight())
	}
	return w, nil
}

// Wire inserts splits into a prepared net and connects bottoms and tops.
// A bottom no earlier layer produces is a *MissingBottomError; a top name
// produced twice (other than in place) is an error.
func Wire(prepared *caffepb.NetParameter) (*Graph, error) {
	g, _, err := wire(prepared)
	return g, err
}

func wire(prepared *caffepb.NetParameter) (*Graph, []int, error) {
	split, origin, err := insertSplits(prepared)
	if err != nil {
		return nil, nil, fmt.Errorf("net %q: %w", prepared.GetName(), err)
	}
	g := &Graph{
		Name:          split.GetName(),
		Phase:         split.GetState().GetPhase(),
		Layers:        split.GetLayer(),
		ForceBackward: split.GetForceBackward(),
	}
	index := map[string]int{}
	available := map[string]bool{}
	for _, lp := range g.Layers {
		if lp.Phase == nil {
			lp.Phase = g.Phase.Enum()
		}
	}
	for _, lp := range g.Layers {
		if n := len(lp.GetPropagateDown()); n > 0 && n != len(lp.GetBottom()) {
			return nil, nil, fmt.Errorf("net %q: layer %q: %d propagate_down entries for %d bottoms: give none or one per bottom", g.Name, lp.GetName(), n, len(lp.GetBottom()))
		}
		var bottoms, tops []int
		for bi, b := range lp.GetBottom() {
			if !available[b] {
				return nil, nil, fmt.Errorf("net %q: %w", g.Name, &MissingBottomError{Layer: lp.GetName(), Blob: b, BottomIndex: bi})
			}
			bottoms = append(bottoms, index[b])
			delete(available, b)
		}
		for ti, t := range lp.GetTop() {
			switch id, seen := index[t]; {
			case ti < len(lp.GetBottom()) && lp.GetBottom()[ti] == t:
				tops = append(tops, id) // in place
			case seen:
				return nil, nil, fmt.Errorf("net %q: layer %q: top blob %q is produced by more than one layer", g.Name, lp.GetName(), t)
			default:
				index[t] = len(g.BlobNames)
				tops = append(tops, len(g.BlobNames))
				g.BlobNames = append(g.BlobNames, t)
			}
			available[t] = true
			if lp.GetType() == "Input" {
				g.Inputs = append(g.Inputs, index[t])
			}
		}
		g.Bottoms = append(g.Bottoms, bottoms)
		g.Tops = append(g.Tops, tops)
	}
	names := make([]string, 0, len(available))
	for n := range available {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g.Outputs = append(g.Outputs, index[n])
	}
	return g, origin, nil
}

// Build prepares param for state and wires it; isLoss (may be nil) says
// which layer types are loss layers, whose default loss weight is 1.
func Build(param *caffepb.NetParameter, state *caffepb.NetState, isLoss func(typ string) bool) (*Graph, error) {
	p, err := Prepare(param, state)
	if err != nil {
		return nil, err
	}
	if isLoss != nil {
		for _, lp := range p.Layer {
			if isLoss(lp.GetType()) {
				SetDefaultLossWeights(lp)
			}
		}
	}
	return Wire(p)
}

// BlobIndex returns the id of the blob called name, or -1.
func (g *Graph) BlobIndex(name string) int {
	for i, n := range g.BlobNames {
		if n == name {
			return i
		}
	}
	return -1
}
