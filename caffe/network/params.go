package network

import (
	"fmt"
	"strconv"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// ParamRef names one parameter blob: its layer and its index there.
type ParamRef struct{ Layer, Index int }

// ParamTable is the result of Caffe's parameter sharing by ParamSpec name.
// Net param ids number every layer's blobs in order; learnable params are
// the owned ones.
type ParamTable struct {
	// Refs maps a net param id to its layer and index.
	Refs []ParamRef
	// Names are display names: the ParamSpec name, or the index in the layer.
	Names []string
	// Owners maps a net param id to the id of the param it shares, or -1
	// where it owns its storage.
	Owners []int
	// LearnableOf maps a net param id to its learnable param index.
	LearnableOf []int
	// Learnable maps a learnable index to the owning net param id.
	Learnable []int
	// LrMult and DecayMult hold each learnable param's multipliers.
	LrMult, DecayMult []float64
	// NeedsBackward holds, per layer and param blob, whether lr_mult != 0.
	NeedsBackward [][]bool
}

// ShareParams applies Caffe's parameter-sharing rules to a graph whose
// layers have the given param blob shapes (shapes[layer][blob]). A param
// named in a ParamSpec that an earlier param already has is shared with it:
// its shape must equal the owner's (STRICT, the default) or its count must
// (PERMISSIVE); lr_mult and decay_mult, where both set them, must agree.
// More ParamSpecs than blobs in a layer is an error.
func ShareParams(g *Graph, shapes [][][]int) (*ParamTable, error) {
	t := &ParamTable{}
	byName := map[string]int{}
	hasLr, hasDecay := []bool{}, []bool{}
	for li, lp := range g.Layers {
		specs := lp.GetParam()
		if len(specs) > len(shapes[li]) {
			return nil, fmt.Errorf("layer %q: %d param specs for %d parameter blobs", lp.GetName(), len(specs), len(shapes[li]))
		}
		needs := make([]bool, len(shapes[li]))
		for pi := range shapes[li] {
			var spec *caffepb.ParamSpec
			if pi < len(specs) {
				spec = specs[pi]
			}
			needs[pi] = spec.GetLrMult() != 0 // nil spec: default lr_mult 1
			id := len(t.Refs)
			name := spec.GetName()
			t.Refs = append(t.Refs, ParamRef{li, pi})
			if name != "" {
				t.Names = append(t.Names, name)
			} else {
				t.Names = append(t.Names, strconv.Itoa(pi))
			}
			owner, shared := byName[name]
			if name == "" || !shared {
				if name != "" {
					byName[name] = id
				}
				t.Owners = append(t.Owners, -1)
				t.LearnableOf = append(t.LearnableOf, len(t.Learnable))
				t.Learnable = append(t.Learnable, id)
				hasLr = append(hasLr, spec != nil && spec.LrMult != nil)
				hasDecay = append(hasDecay, spec != nil && spec.DecayMult != nil)
				t.LrMult = append(t.LrMult, float64(spec.GetLrMult()))
				t.DecayMult = append(t.DecayMult, float64(spec.GetDecayMult()))
				continue
			}
			oref := t.Refs[owner]
			ownerLayer := g.Layers[oref.Layer].GetName()
			os, ts := shapes[oref.Layer][oref.Index], shapes[li][pi]
			if spec.GetShareMode() == caffepb.ParamSpec_PERMISSIVE {
				if count(os) != count(ts) {
					return nil, fmt.Errorf("layer %q: cannot share param %q owned by layer %q: count mismatch: owner shape %s, sharing layer shape %s",
						lp.GetName(), name, ownerLayer, blob.ShapeString(os), blob.ShapeString(ts))
				}
			} else if !blob.ShapeEquals(os, ts) {
				return nil, fmt.Errorf("layer %q: cannot share param %q owned by layer %q: shape mismatch: owner shape %s, sharing layer expects %s",
					lp.GetName(), name, ownerLayer, blob.ShapeString(os), blob.ShapeString(ts))
			}
			l := t.LearnableOf[owner]
			t.Owners = append(t.Owners, owner)
			t.LearnableOf = append(t.LearnableOf, l)
			if spec.LrMult != nil {
				if hasLr[l] && float64(spec.GetLrMult()) != t.LrMult[l] {
					return nil, fmt.Errorf("layer %q: shared param %q has lr_mult %g, owner layer %q has %g", lp.GetName(), name, spec.GetLrMult(), ownerLayer, t.LrMult[l])
				}
				hasLr[l], t.LrMult[l] = true, float64(spec.GetLrMult())
			}
			if spec.DecayMult != nil {
				if hasDecay[l] && float64(spec.GetDecayMult()) != t.DecayMult[l] {
					return nil, fmt.Errorf("layer %q: shared param %q has decay_mult %g, owner layer %q has %g", lp.GetName(), name, spec.GetDecayMult(), ownerLayer, t.DecayMult[l])
				}
				hasDecay[l], t.DecayMult[l] = true, float64(spec.GetDecayMult())
			}
		}
		t.NeedsBackward = append(t.NeedsBackward, needs)
	}
	return t, nil
}

func count(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
