package network

import (
	"math"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// TestFlatDiffsKeepGradients lays LeNet's gradients out in one buffer and
// checks that backward writes exactly the gradients it writes without the
// layout, each at its offset in the buffer, with the spare tail untouched.
func TestFlatDiffsKeepGradients(t *testing.T) {
	c := netCases[1]
	build := func() *Net[float64] {
		n, err := New[float64](parseTestNet(t, c), &caffepb.NetState{Phase: c.phase.Enum()}, standard(t), WithoutFillers())
		if err != nil {
			t.Fatal(err)
		}
		for pi, p := range n.LearnableParams() {
			for i := range p.Data() {
				p.Data()[i] = math.Sin(float64(i)*0.3+float64(pi)) / 10
			}
		}
		if err := n.SetSource("mnist", waveSource{}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ref, flat := build(), build()
	for _, p := range flat.LearnableParams() {
		p.Diff()[0] = 42 // kept by the layout, then cleared below
	}
	buf, err := flat.FlatDiffs(1)
	if err != nil {
		t.Fatal(err)
	}
	if buf[0] != 42 {
		t.Errorf("buf[0] = %g: the layout dropped the existing gradient", buf[0])
	}
	buf[len(buf)-1] = -7
	for _, n := range []*Net[float64]{ref, flat} {
		n.ClearParamDiffs()
		if _, err := n.ForwardBackward(); err != nil {
			t.Fatal(err)
		}
	}
	o := 0
	for i, p := range ref.LearnableParams() {
		q := flat.LearnableParams()[i]
		for j, v := range p.Diff() {
			if q.Diff()[j] != v || buf[o+j] != v {
				t.Fatalf("param %d element %d: gradient %g, flat %g, buffer %g", i, j, v, q.Diff()[j], buf[o+j])
			}
		}
		o += p.Count()
	}
	if o != len(buf)-1 || buf[o] != -7 {
		t.Errorf("buffer of %d for %d gradients; spare %g, want -7", len(buf), o, buf[o])
	}
}

func TestFlatDiffsSharedParams(t *testing.T) {
	n, err := New[float64](parseNet(t, siamese), nil, fakeRegistry(t), WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	buf, err := n.FlatDiffs(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(buf) != 12 {
		t.Fatalf("buffer of %d, want 12 (shared counted once)", len(buf))
	}
	wa, wb := n.Layers()[1].Blobs()[0], n.Layers()[2].Blobs()[0]
	if &wa.Diff()[0] != &buf[0] || &wb.Diff()[0] != &buf[0] {
		t.Fatal("the sharing layer's gradient does not follow its owner into the buffer")
	}
}
