package caffepb_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// Spot checks of field numbers that binary compatibility depends on, in
// particular the CaffeOnSpark fork's extensions.
func TestFieldNumbers(t *testing.T) {
	cases := []struct {
		msg   proto.Message
		field string
		num   protoreflect.FieldNumber
	}{
		{&caffepb.NetParameter{}, "layer", 100},
		{&caffepb.NetParameter{}, "layers", 2},
		{&caffepb.LayerParameter{}, "source_class", 10001},
		{&caffepb.LayerParameter{}, "cos_data_param", 10010},
		{&caffepb.LayerParameter{}, "convolution_param", 106},
		{&caffepb.MemoryDataParameter{}, "share_in_parallel", 10000},
		{&caffepb.MemoryDataParameter{}, "source", 10001},
		{&caffepb.MemoryDataParameter{}, "dataframe_column_select", 10002},
		{&caffepb.MemoryDataParameter{}, "image_encoded", 10003},
		{&caffepb.MemoryDataParameter{}, "dataframe_format", 10004},
		{&caffepb.BlobProto{}, "double_data", 8},
		{&caffepb.SolverState{}, "current_step", 4},
		{&caffepb.V1LayerParameter{}, "layer", 1},
		{&caffepb.CoSDataParameter_TopBlob{}, "transpose", 11},
	}
	for _, c := range cases {
		fd := c.msg.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(c.field))
		if fd == nil {
			t.Errorf("%s has no field %s", c.msg.ProtoReflect().Descriptor().FullName(), c.field)
			continue
		}
		if fd.Number() != c.num {
			t.Errorf("%s.%s = %d, want %d", c.msg.ProtoReflect().Descriptor().FullName(), c.field, fd.Number(), c.num)
		}
	}
}

func TestDefaults(t *testing.T) {
	var sp caffepb.SolverParameter
	if sp.GetType() != "SGD" || sp.GetRmsDecay() != 0.99 || sp.GetRandomSeed() != -1 || sp.GetSolverMode() != caffepb.SolverParameter_GPU {
		t.Errorf("solver defaults: type %q rms_decay %v random_seed %d mode %v", sp.GetType(), sp.GetRmsDecay(), sp.GetRandomSeed(), sp.GetSolverMode())
	}
	var md caffepb.MemoryDataParameter
	if !md.GetShareInParallel() || md.GetDataframeFormat() != "parquet" {
		t.Errorf("memory data defaults: share_in_parallel %v dataframe_format %q", md.GetShareInParallel(), md.GetDataframeFormat())
	}
	var top caffepb.CoSDataParameter_TopBlob
	if top.GetSampleNumAxes() != 3 {
		t.Errorf("TopBlob.sample_num_axes default %d, want 3", top.GetSampleNumAxes())
	}
	var ns caffepb.NetState
	if ns.GetPhase() != caffepb.Phase_TEST {
		t.Errorf("NetState.phase default %v, want TEST", ns.GetPhase())
	}
}
