package network

// ReLUFuser is a layer that can apply the in-place ReLU after it in its
// own forward pass (the convolution and inner product on a backend with a
// fused bias+ReLU kernel); it reports whether it will.
type ReLUFuser interface {
	FuseReLU(slope float64) bool
}

// WithoutFusion keeps every layer's forward pass its own (no bias+ReLU
// fusion): the reference the fused net is tested against.
func WithoutFusion() Option { return func(o *options) { o.noFusion = true } }

// fuseReLUs fuses each in-place ReLU (bottom = top = the one top of the
// layer before it) into that layer when it can: the ReLU's forward pass is
// then skipped (its backward pass runs as before, reading the output as
// Caffe's in-place ReLU does). It returns the fused ReLUs' indices.
func (n *Net[T]) fuseReLUs() []int {
	var fused []int
	n.fusedFwd = make([]bool, len(n.layers))
	g := n.graph
	for i := 1; i < len(g.Layers); i++ {
		lp := g.Layers[i]
		if lp.GetType() != "ReLU" || len(g.Bottoms[i]) != 1 || len(g.Tops[i]) != 1 || g.Bottoms[i][0] != g.Tops[i][0] {
			continue
		}
		if len(g.Tops[i-1]) != 1 || g.Tops[i-1][0] != g.Bottoms[i][0] {
			continue
		}
		f, ok := n.layers[i-1].(ReLUFuser)
		if !ok || !f.FuseReLU(float64(lp.GetReluParam().GetNegativeSlope())) {
			continue
		}
		n.fusedFwd[i] = true
		fused = append(fused, i)
	}
	return fused
}

// FusedForward reports whether layer i's forward pass is done by the layer
// before it (an in-place ReLU fused into a convolution or inner product).
func (n *Net[T]) FusedForward(i int) bool { return i < len(n.fusedFwd) && n.fusedFwd[i] }
