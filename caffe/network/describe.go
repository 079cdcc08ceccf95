package network

import (
	"fmt"
	"io"
	"strings"
)

// Stats sums a net's size.
type Stats struct {
	// Params counts parameter values (shared ones once), as a .caffemodel
	// stores them: BatchNorm statistics included.
	Params int64
	// Trainable counts the parameter values a solver changes (lr_mult != 0).
	Trainable int64
	// Activations counts the values of all activation blobs (in-place
	// tops counted once).
	Activations int64
}

// Stats returns the net's parameter and activation counts.
func (n *Net[T]) Stats() Stats {
	var s Stats
	for l, id := range n.table.Learnable {
		c := int64(n.params[id].Count())
		s.Params += c
		if n.table.LrMult[l] != 0 {
			s.Trainable += c
		}
	}
	for _, b := range n.blobs {
		s.Activations += int64(b.Count())
	}
	return s
}

// LayerParamCount returns the number of parameter values layer i owns
// (blobs it shares with an earlier layer are not counted).
func (n *Net[T]) LayerParamCount(i int) int64 {
	var c int64
	for id, ref := range n.table.Refs {
		if ref.Layer == i && n.table.Owners[id] < 0 {
			c += int64(n.params[id].Count())
		}
	}
	return c
}

// LayerActivationCount returns the number of values in the top blobs layer
// i creates (in-place tops belong to the layer that created the blob).
func (n *Net[T]) LayerActivationCount(i int) int64 {
	var c int64
	for ti, id := range n.graph.Tops[i] {
		if ti < len(n.graph.Bottoms[i]) && n.graph.Bottoms[i][ti] == id {
			continue
		}
		c += int64(n.blobs[id].Count())
	}
	return c
}

// Describe writes a stable text description of the net: each layer with
// its bottoms, tops and shapes, parameter shapes and sharing, loss weights
// and backward flags; then the outputs and totals. Golden tests compare it.
func (n *Net[T]) Describe(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "net %q phase %s\n", n.graph.Name, n.graph.Phase)
	for i, lp := range n.graph.Layers {
		fmt.Fprintf(&b, "layer %d %q type %s", i, lp.GetName(), lp.GetType())
		if n.plan.Layer[i] {
			b.WriteString(" backward")
		}
		b.WriteString("\n")
		for bi, id := range n.graph.Bottoms[i] {
			fmt.Fprintf(&b, "  bottom %s", n.graph.BlobNames[id])
			if n.plan.Bottom[i][bi] {
				b.WriteString(" propagate_down")
			}
			b.WriteString("\n")
		}
		for ti, id := range n.graph.Tops[i] {
			fmt.Fprintf(&b, "  top %s [%s]", n.graph.BlobNames[id], dims(n.blobs[id].Shape()))
			if ti < len(n.graph.Bottoms[i]) && n.graph.Bottoms[i][ti] == id {
				b.WriteString(" in-place")
			}
			if w := n.loss[i][ti]; w != 0 {
				fmt.Fprintf(&b, " loss_weight %g", w)
			}
			b.WriteString("\n")
		}
		for id, ref := range n.table.Refs {
			if ref.Layer != i {
				continue
			}
			fmt.Fprintf(&b, "  param %s [%s]", n.table.Names[id], dims(n.params[id].Shape()))
			l := n.table.LearnableOf[id]
			if o := n.table.Owners[id]; o >= 0 {
				oref := n.table.Refs[o]
				fmt.Fprintf(&b, " shared with %q param %d", n.graph.Layers[oref.Layer].GetName(), oref.Index)
			} else {
				fmt.Fprintf(&b, " lr_mult %g decay_mult %g", n.table.LrMult[l], n.table.DecayMult[l])
			}
			b.WriteString("\n")
		}
	}
	fmt.Fprintf(&b, "outputs %s\n", strings.Join(n.OutputBlobNames(), " "))
	s := n.Stats()
	fmt.Fprintf(&b, "params %d trainable %d activations %d\n", s.Params, s.Trainable, s.Activations)
	_, err := io.WriteString(w, b.String())
	return err
}

func dims(shape []int) string {
	p := make([]string, len(shape))
	for i, d := range shape {
		p[i] = fmt.Sprint(d)
	}
	return strings.Join(p, " ")
}
