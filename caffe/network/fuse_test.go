package network

import (
	"bytes"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/cpu"
)

// fusingBackend is the CPU backend with a fused bias+ReLU pass (bias, then
// ReLU in place, as the CUDA kernel does in one launch), counting its
// calls: the net's ReLU fusion on a machine without a GPU.
type fusingBackend[T kernels.Float] struct {
	kernels.Backend[T]
	calls *int
}

func (b fusingBackend[T]) AddBiasReLU(y, bias kernels.Vec[T], outer, channels, inner int, slope T) {
	*b.calls++
	b.AddBias(y, bias, outer, channels, inner)
	b.ReLUForward(y, y, slope)
}

type fusingDevice struct{ calls int }

func (d *fusingDevice) Name() string   { return "cpu-fused" }
func (d *fusingDevice) Engine() string { return cpu.Device.Engine() }
func (d *fusingDevice) Float32() kernels.Backend[float32] {
	return fusingBackend[float32]{cpu.Backend[float32](), &d.calls}
}
func (d *fusingDevice) Float64() kernels.Backend[float64] {
	return fusingBackend[float64]{cpu.Backend[float64](), &d.calls}
}

// TestReLUFusion checks the fusion's wiring on LeNet: on the CPU backend
// nothing fuses; on a backend with the fused pass the in-place relu1 after
// ip1 fuses into it (ip1 calls the fused pass, relu1's forward is
// skipped), and forward and backward give exactly the unfused numbers.
func TestReLUFusion(t *testing.T) {
	c := netCases[1]
	n, err := New[float64](parseTestNet(t, c), &caffepb.NetState{Phase: c.phase.Enum()}, standard(t), WithoutFillers())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n.layers {
		if n.FusedForward(i) {
			t.Fatalf("layer %q fused on the CPU backend, which has no fused pass", n.graph.Layers[i].GetName())
		}
	}

	d := &fusingDevice{}
	n, err = New[float64](parseTestNet(t, c), &caffepb.NetState{Phase: c.phase.Enum()}, standard(t), WithoutFillers(), WithDevice(d))
	if err != nil {
		t.Fatal(err)
	}
	var fused []string
	for i := range n.layers {
		if n.FusedForward(i) {
			fused = append(fused, n.graph.Layers[i].GetName())
		}
	}
	if len(fused) != 1 || fused[0] != "relu1" {
		t.Fatalf("fused %q, want [relu1] (LeNet's one ReLU, in place after ip1)", fused)
	}

	d.calls = 0
	withFusion := lenetNumerics(t, WithDevice(d))
	if d.calls != 1 {
		t.Fatalf("the fused bias+ReLU pass ran %d times in one forward pass, want 1", d.calls)
	}
	without := lenetNumerics(t, WithDevice(d), WithoutFusion())
	if !bytes.Equal(withFusion, without) {
		t.Fatalf("fused net differs from the unfused one:\n%s\nunfused:\n%s", withFusion, without)
	}
	checkLeNetGolden(t, withFusion)
}
