package network

// LayerInfo is what the backward analysis needs to know about one built
// layer.
type LayerInfo struct {
	// LossWeights holds one weight per top (zero: not a loss).
	LossWeights []float32
	// ParamNeedsBackward holds, per parameter blob, whether its lr_mult is
	// non-zero.
	ParamNeedsBackward []bool
	// AllowForceBackward says whether force_backward may reach a bottom
	// (nil: every bottom). See layer.ForceBackwardGate.
	AllowForceBackward func(bottom int) bool
}

// BackwardPlan says which layers run Backward and toward which bottoms.
type BackwardPlan struct {
	// Layer holds, per layer, whether its Backward runs.
	Layer []bool
	// Bottom holds, per layer and bottom, the propagate_down flag passed
	// to Backward.
	Bottom [][]bool
	// Blob holds, per blob id, whether some layer computes its gradient.
	Blob []bool
	// Params holds, per layer and parameter blob, whether its gradient is
	// wanted.
	Params [][]bool
}

// PlanBackward runs Caffe's backward analysis over g (Net::Init): a layer
// needs backward when a bottom blob needs it or a param has a non-zero
// lr_mult; explicit propagate_down entries override the bottom flags; then,
// from the last layer back, layers that contribute to no loss and layers
// all of whose tops skip backpropagation are switched off; finally
// force_backward switches every layer on and every bottom whose layer
// allows it.
func PlanBackward(g *Graph, info []LayerInfo) BackwardPlan {
	n := len(g.Layers)
	p := BackwardPlan{
		Layer:  make([]bool, n),
		Bottom: make([][]bool, n),
		Blob:   make([]bool, len(g.BlobNames)),
		Params: make([][]bool, n),
	}
	for li, lp := range g.Layers {
		need := false
		pd := lp.GetPropagateDown()
		p.Bottom[li] = make([]bool, len(g.Bottoms[li]))
		for bi, id := range g.Bottoms[li] {
			need = need || p.Blob[id]
			if len(pd) > 0 {
				p.Bottom[li][bi] = pd[bi]
			} else {
				p.Bottom[li][bi] = p.Blob[id]
			}
		}
		p.Params[li] = append([]bool(nil), info[li].ParamNeedsBackward...)
		for _, b := range info[li].ParamNeedsBackward {
			need = need || b
		}
		p.Layer[li] = need
		if need {
			for _, id := range g.Tops[li] {
				p.Blob[id] = true
			}
		}
	}
	underLoss := map[string]bool{}
	skip := map[string]bool{}
	for li := n - 1; li >= 0; li-- {
		contributes, skipDown := false, true
		for ti, id := range g.Tops[li] {
			name := g.BlobNames[id]
			if (ti < len(info[li].LossWeights) && info[li].LossWeights[ti] != 0) || underLoss[name] {
				contributes = true
			}
			if !skip[name] {
				skipDown = false
			}
			if contributes && !skipDown {
				break
			}
		}
		if p.Layer[li] && skipDown {
			p.Layer[li] = false
			for bi := range p.Bottom[li] {
				p.Bottom[li][bi] = false
			}
		}
		if !contributes {
			p.Layer[li] = false
		}
		for bi, id := range g.Bottoms[li] {
			name := g.BlobNames[id]
			if contributes {
				underLoss[name] = true
			} else {
				p.Bottom[li][bi] = false
			}
			if !p.Bottom[li][bi] {
				skip[name] = true
			}
		}
	}
	if g.ForceBackward {
		for li := range g.Layers {
			p.Layer[li] = true
			for bi, id := range g.Bottoms[li] {
				allow := info[li].AllowForceBackward == nil || info[li].AllowForceBackward(bi)
				p.Bottom[li][bi] = p.Bottom[li][bi] || allow
				p.Blob[id] = p.Blob[id] || p.Bottom[li][bi]
			}
			for pi := range p.Params[li] {
				p.Params[li][pi] = true
			}
		}
	}
	return p
}
