package network

import (
	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// ReLUFuser is a layer that can apply the in-place ReLU after it in its
// own forward pass (the convolution and inner product on a backend with a
// fused bias+ReLU kernel); it reports whether it will.
type ReLUFuser interface {
	FuseReLU(slope float64) bool
}

// WithoutFusion keeps every layer's forward pass its own (no bias+ReLU or
// softmax+loss+accuracy fusion): the reference the fused net is tested
// against.
func WithoutFusion() Option { return func(o *options) { o.noFusion = true } }

// fuseReLUs fuses each in-place ReLU (bottom = top = the one top of the
// layer before it) into that layer when it can: the ReLU's forward pass is
// then skipped (its backward pass runs as before, reading the output as
// Caffe's in-place ReLU does). It returns the fused ReLUs' indices.
func (n *Net[T]) fuseReLUs() []int {
	var fused []int
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

// AccuracyFuser is a loss layer that can compute an Accuracy layer's
// output in its own forward pass (SoftmaxWithLoss on a backend with the
// fused softmax+loss+accuracy kernel), given the Accuracy layer and its
// top; it reports whether it will.
type AccuracyFuser[T blob.Float] interface {
	FuseAccuracy(acc layer.Layer[T], top *blob.Blob[T]) bool
}

// fuseAccuracies fuses each Accuracy layer into a SoftmaxWithLoss layer
// that reads the same scores and labels (through Split layers: the same
// source blob) when the loss layer can; the Accuracy layer's forward pass
// is then skipped. Only an Accuracy with one top that no layer reads is
// fused (its value is then written later in the pass, by the loss layer).
func (n *Net[T]) fuseAccuracies() []int {
	g := n.graph
	src := map[int]int{} // a Split top → the blob it copies
	read := map[int]bool{}
	for i, lp := range g.Layers {
		if lp.GetType() == "Split" && len(g.Bottoms[i]) == 1 {
			for _, t := range g.Tops[i] {
				src[t] = g.Bottoms[i][0]
			}
		}
		for _, b := range g.Bottoms[i] {
			read[b] = true
		}
	}
	origin := func(b int) int {
		for {
			s, ok := src[b]
			if !ok {
				return b
			}
			b = s
		}
	}
	var fused []int
	taken := map[int]bool{}
	for j, lp := range g.Layers {
		if lp.GetType() != "Accuracy" || len(g.Bottoms[j]) != 2 || len(g.Tops[j]) != 1 || read[g.Tops[j][0]] {
			continue
		}
		for i, lq := range g.Layers {
			if lq.GetType() != "SoftmaxWithLoss" || taken[i] || len(g.Bottoms[i]) != 2 ||
				origin(g.Bottoms[i][0]) != origin(g.Bottoms[j][0]) || origin(g.Bottoms[i][1]) != origin(g.Bottoms[j][1]) {
				continue
			}
			f, ok := n.layers[i].(AccuracyFuser[T])
			if !ok || !f.FuseAccuracy(n.layers[j], n.tops[j][0]) {
				continue
			}
			taken[i], n.fusedFwd[j] = true, true
			fused = append(fused, j)
			break
		}
	}
	return fused
}
