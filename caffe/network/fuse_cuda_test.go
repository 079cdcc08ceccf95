//go:build cuda

package network

import (
	"bytes"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/kernels/cuda"
)

// TestReLUFusionOnCUDA runs LeNet's numerics on the GPU with relu1 fused
// into ip1 (the add_bias_relu kernel) and without: the two must agree
// exactly (one addition, then the slope, in both), and match the golden
// CPU numbers.
func TestReLUFusionOnCUDA(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	c := netCases[1]
	n, err := New[float32](parseTestNet(t, c), &caffepb.NetState{Phase: c.phase.Enum()}, standard(t), WithoutFillers(), WithDevice(g))
	if err != nil {
		t.Fatal(err)
	}
	for i, lp := range n.graph.Layers {
		if want := lp.GetName() == "relu1"; n.FusedForward(i) != want {
			t.Fatalf("layer %q fused: %v, want %v", lp.GetName(), n.FusedForward(i), want)
		}
	}
	fused := lenetNumerics(t, WithDevice(g))
	unfused := lenetNumerics(t, WithDevice(g), WithoutFusion())
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fused, unfused) {
		t.Fatalf("fused net differs from the unfused one on the GPU:\n%s\nunfused:\n%s", fused, unfused)
	}
	checkLeNetGolden(t, fused)
}
