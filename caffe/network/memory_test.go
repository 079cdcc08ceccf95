package network

import (
	"runtime"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
)

// The estimate from batch 1 and 2 equals the built net's own count, and a
// batch of 10⁹ is estimated without allocating its activations.
func TestEstimateMemory(t *testing.T) {
	reg, err := layers.Standard()
	if err != nil {
		t.Fatal(err)
	}
	param, err := prototxt.ParseNetFile("../../examples/lenet_train_test.prototxt")
	if err != nil {
		t.Fatal(err)
	}
	for _, phase := range []caffepb.Phase{caffepb.Phase_TRAIN, caffepb.Phase_TEST} {
		state := &caffepb.NetState{Phase: phase.Enum()}
		est, err := EstimateMemory(param, state, reg)
		if err != nil {
			t.Fatal(err)
		}
		n, err := New[float32](param, state, reg, WithoutFillers())
		if err != nil {
			t.Fatal(err)
		}
		st := n.Stats()
		if est.Activations != st.Activations || est.Params != st.Params {
			t.Errorf("%v: estimated %d activations, %d params; built net has %d, %d", phase, est.Activations, est.Params, st.Activations, st.Params)
		}
		if want := map[caffepb.Phase]int{caffepb.Phase_TRAIN: 64, caffepb.Phase_TEST: 100}[phase]; est.Batch != want {
			t.Errorf("%v: batch %d, want %d", phase, est.Batch, want)
		}
	}
	big := proto.CloneOf(param)
	SetBatch(big, 1_000_000_000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	est, err := EstimateMemory(big, &caffepb.NetState{Phase: caffepb.Phase_TRAIN.Enum()}, reg)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := EstimateMemory(param, &caffepb.NetState{Phase: caffepb.Phase_TRAIN.Enum()}, reg)
	if want := (small.Activations - 1) / 64 * 1_000_000_000; est.Activations < want {
		t.Errorf("batch 1e9: %d activations, want about %d", est.Activations, want)
	}
	if est.Largest[0].Name != "conv1" || est.Largest[0].Shape[0] != 1_000_000_000 {
		t.Errorf("largest blob %+v, want conv1 at batch 1e9", est.Largest[0])
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("estimating batch 1e9 allocated %d bytes", grew)
	}
}

// TestEstimateMemoryAllocatesNoParams: estimating a net whose parameters
// are large (an inner product of 4·10⁷ values, 160 MB) allocates none of
// them: not through the zero fillers, not through the contiguous parameter
// and gradient buffers, so that a net too large for the machine is refused
// by the memory check instead of crashing the estimate.
func TestEstimateMemoryAllocatesNoParams(t *testing.T) {
	reg, err := layers.Standard()
	if err != nil {
		t.Fatal(err)
	}
	param, err := prototxt.ParseNet("big", []byte(`name: "big"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 4 dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y"
        inner_product_param { num_output: 10000000 weight_filler { type: "gaussian" std: 0.1 } } }`))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	est, err := EstimateMemory(param, &caffepb.NetState{Phase: caffepb.Phase_TRAIN.Enum()}, reg)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if est.Params != 40_000_000 {
		t.Errorf("estimated %d params, want 40000000", est.Params)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("estimating a net of 160 MB of params allocated %d bytes", grew)
	}
}
