package network

import (
	"testing"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// TestFlatDiffsIsTheGradBuffer: after FlatDiffs, the net's own gradient
// buffer (GradBuffer, ClearParamDiffs) is the flat buffer, so clearing the
// gradients clears what backward and the all-reduce use.
func TestFlatDiffsIsTheGradBuffer(t *testing.T) {
	c := netCases[1]
	n, err := New[float64](parseTestNet(t, c), &caffepb.NetState{Phase: c.phase.Enum()}, standard(t), WithoutFillers())
	if err != nil {
		t.Fatal(err)
	}
	buf, err := n.FlatDiffs(1)
	if err != nil {
		t.Fatal(err)
	}
	g := n.GradBuffer()
	if len(g) != len(buf)-1 || &g[0] != &buf[0] {
		t.Fatalf("GradBuffer (%d elements) is not the flat buffer (%d + 1)", len(g), len(buf)-1)
	}
	for _, p := range n.LearnableParams() {
		p.Diff()[0] = 7
	}
	n.ClearParamDiffs()
	for i, p := range n.LearnableParams() {
		if v := p.Diff()[0]; v != 0 {
			t.Errorf("param %d: diff %g after ClearParamDiffs", i, v)
		}
	}
}
