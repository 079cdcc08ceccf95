package solver

import (
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/network"
)

// MemoryNeed is the memory training a solver's nets needs, in float32.
type MemoryNeed struct {
	Bytes      int64
	ParamBytes int64              // of Bytes, the parameters with their gradients and update history
	Batch      int                // the train net's batch size
	Largest    []network.BlobSize // the largest activation blobs over all nets
}

// EstimateMemory estimates, from shapes alone (see network.EstimateMemory),
// what New and training will allocate: the train net's parameters with
// their gradients and update history, its activations with their
// gradients, and (unless noTests) each test net's activations. Layer
// scratch buffers are not counted.
func EstimateMemory(sp *caffepb.SolverParameter, reg *layer.Registry, noTests bool) (MemoryNeed, error) {
	m, err := ParseMethod(sp.GetType())
	if err != nil {
		return MemoryNeed{}, err
	}
	trainParam, testParams, err := netParams(sp)
	if err != nil {
		return MemoryNeed{}, err
	}
	trainState := proto.CloneOf(sp.GetTrainState())
	if trainState == nil {
		trainState = &caffepb.NetState{}
	}
	trainState.Phase = caffepb.Phase_TRAIN.Enum()
	tr, err := network.EstimateMemory(trainParam, trainState, reg)
	if err != nil {
		return MemoryNeed{}, fmt.Errorf("train net: %w", err)
	}
	const f32 = 4
	params := f32 * tr.Params * int64(2+m.HistorySets())
	need := MemoryNeed{Batch: tr.Batch, Largest: tr.Largest, ParamBytes: params,
		Bytes: params + f32*2*tr.Activations}
	if noTests {
		testParams = nil
	}
	for i, tp := range testParams {
		st := &caffepb.NetState{}
		if i < len(sp.GetTestState()) {
			st = proto.CloneOf(sp.GetTestState()[i])
		}
		st.Phase = caffepb.Phase_TEST.Enum()
		te, err := network.EstimateMemory(tp, st, reg)
		if err != nil {
			return MemoryNeed{}, fmt.Errorf("test net #%d: %w", i, err)
		}
		need.Bytes += f32 * te.Activations
		need.Largest = append(need.Largest, te.Largest...)
	}
	sort.SliceStable(need.Largest, func(i, j int) bool { return need.Largest[i].Values > need.Largest[j].Values })
	need.Largest = need.Largest[:min(3, len(need.Largest))]
	return need, nil
}
