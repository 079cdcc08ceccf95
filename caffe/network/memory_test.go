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
