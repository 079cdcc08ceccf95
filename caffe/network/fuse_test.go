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

// SoftmaxLossAccuracy is the CPU's softmax and loss, then the top-k
// accuracy of x on the host, counted as the Accuracy layer counts.
func (b fusingBackend[T]) SoftmaxLossAccuracy(x, prob kernels.Vec[T], cls kernels.IntVec, outer, channels, inner int, normalizer float64, loss kernels.Vec[T], topK int, acc kernels.Vec[T]) {
	*b.calls++
	b.SoftmaxForward(x, prob, outer, channels, inner)
	b.SoftmaxLossForward(prob, cls, outer, channels, inner, normalizer, loss)
	if topK == 0 {
		return
	}
	xs, cs := x.Host(), cls.Host()
	hits, count := 0, 0
	for o := 0; o < outer; o++ {
		for j := 0; j < inner; j++ {
			c := int(cs[o*inner+j])
			if c < 0 {
				continue
			}
			count++
			truth, better := xs[(o*channels+c)*inner+j], -1
			for k := 0; k < channels; k++ {
				if v := xs[(o*channels+k)*inner+j]; v >= truth || v != v {
					better++
				}
			}
			if better < topK {
				hits++
			}
		}
	}
	acc.Host()[0] = T(float64(hits) / float64(max(count, 1)))
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

// TestFusion checks the fusions' wiring on LeNet's TEST net: on the CPU
// backend nothing fuses; on a backend with the fused passes the in-place
// relu1 fuses into ip1 and the accuracy (reading ip2 and the label through
// Split layers) into the loss (ip1 and the loss call the fused passes,
// relu1's and the accuracy's forward passes are skipped), and forward and
// backward give exactly the unfused numbers.
func TestFusion(t *testing.T) {
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
	if len(fused) != 2 || fused[0] != "relu1" || fused[1] != "accuracy" {
		t.Fatalf("fused %q, want [relu1 accuracy] (LeNet's one ReLU, in place after ip1, and its accuracy beside the loss)", fused)
	}

	d.calls = 0
	withFusion := lenetNumerics(t, WithDevice(d))
	if d.calls != 2 {
		t.Fatalf("the fused passes ran %d times in one forward pass, want 2 (bias+ReLU, softmax+loss+accuracy)", d.calls)
	}
	without := lenetNumerics(t, WithDevice(d), WithoutFusion())
	if !bytes.Equal(withFusion, without) {
		t.Fatalf("fused net differs from the unfused one:\n%s\nunfused:\n%s", withFusion, without)
	}
	checkLeNetGolden(t, withFusion)
}
