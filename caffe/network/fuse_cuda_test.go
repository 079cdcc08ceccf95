//go:build cuda

package network

import (
	"bytes"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/kernels/cuda"
	"github.com/gocaffe/gocaffe/kernels/cuda/cudnn"
)

// TestFusionOnCUDA runs LeNet's TEST-net numerics on the GPU with relu1
// fused into ip1 (add_bias_relu) and the accuracy into the loss
// (softmax_loss_acc), and without: the two must agree exactly (the same
// operations in the same order; the accuracy counted as the CPU counts),
// and match the golden CPU numbers.
func TestFusionOnCUDA(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	// Bit-for-bit agreement needs convolutions that repeat bit for bit: the
	// default choice may take cuDNN algorithms that sum with atomics (the
	// 14:31 UTC device call saw conv1's weight gradient differ in its last
	// bits between the two nets).
	g.D.SetDNNChoice(cudnn.Deterministic)
	c := netCases[1]
	n, err := New[float32](parseTestNet(t, c), &caffepb.NetState{Phase: c.phase.Enum()}, standard(t), WithoutFillers(), WithDevice(g))
	if err != nil {
		t.Fatal(err)
	}
	for i, lp := range n.graph.Layers {
		if want := lp.GetName() == "relu1" || lp.GetName() == "accuracy"; n.FusedForward(i) != want {
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
