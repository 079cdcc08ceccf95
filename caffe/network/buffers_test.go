package network

import (
	"testing"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
)

const sharedNet = `
name: "shared"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "a" type: "InnerProduct" bottom: "x" top: "a"
  param { name: "w" lr_mult: 2 decay_mult: 0 } param { lr_mult: 3 }
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" } bias_filler { type: "constant" value: 0.5 } } }
layer { name: "b" type: "InnerProduct" bottom: "a" top: "b"
  param { name: "w" } param { lr_mult: 0 }
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" } } }
`

// Every learnable param's data and diff live in the net's two buffers, in
// learnable order; a shared param uses its owner's place; the fillers'
// values survive the move.
func TestParamBuffers(t *testing.T) {
	p, err := prototxt.ParseNet("shared.prototxt", []byte(sharedNet))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New[float64](p, &caffepb.NetState{Phase: caffepb.Phase_TRAIN.Enum()}, standard(t), WithSeed(3))
	if err != nil {
		t.Fatal(err)
	}
	segs := n.ParamSegments()
	lp := n.LearnableParams()
	if len(segs) != 3 || len(lp) != 3 {
		t.Fatalf("%d segments for %d learnable params, want 3 and 3 (w shared once)", len(segs), len(lp))
	}
	want := []ParamSegment{{0, 9, 2, 0}, {9, 3, 3, 1}, {12, 3, 0, 1}}
	for i, sg := range segs {
		if sg != want[i] {
			t.Errorf("segment %d: %+v, want %+v", i, sg, want[i])
		}
	}
	pb, gb := n.ParamBuffer(), n.GradBuffer()
	if len(pb) != 15 || len(gb) != 15 {
		t.Fatalf("buffers of %d and %d, want 15", len(pb), len(gb))
	}
	if pb[9] != 0.5 || pb[0] == 0 {
		t.Fatalf("filler values lost: bias %v, weight %v", pb[9], pb[0])
	}
	for i, sg := range segs {
		lp[i].Data()[sg.Count-1] = float64(100 + i)
		lp[i].Diff()[0] = float64(200 + i)
		if pb[sg.Offset+sg.Count-1] != float64(100+i) || gb[sg.Offset] != float64(200+i) {
			t.Fatalf("param %d is not stored in the buffers at %d", i, sg.Offset)
		}
	}
	// Layer b's weight is layer a's: the same place in the buffers.
	bw := n.LayerByName("b").Blobs()[0]
	gb[3] = 42
	if bw.Diff()[3] != 42 {
		t.Fatal("shared weight's diff is not in its owner's segment")
	}
	n.ClearParamDiffs()
	for i, v := range gb {
		if v != 0 {
			t.Fatalf("ClearParamDiffs left grad[%d] = %v", i, v)
		}
	}
	// FlatDiffs moves the gradients into a buffer with spare room; the
	// net's gradient buffer (what the solver updates from) moves with them.
	lp[1].Diff()[0] = 3
	flat, err := n.FlatDiffs(1)
	if err != nil {
		t.Fatal(err)
	}
	gb = n.GradBuffer()
	if len(flat) != 16 || len(gb) != 15 || &gb[0] != &flat[0] || gb[9] != 3 {
		t.Fatalf("after FlatDiffs(1): flat %d, grad buffer %d elements, aliased %v, grad[9] %v; want 16, 15, true, 3",
			len(flat), len(gb), &gb[0] == &flat[0], gb[9])
	}
	lp[2].Diff()[1] = 4
	if flat[13] != 4 || bw.Diff()[3] != flat[3] {
		t.Fatal("params' diffs are not in the flat buffer")
	}
}
