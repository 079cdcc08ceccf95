package network

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

func state(phase caffepb.Phase, level int32, stages ...string) *caffepb.NetState {
	return &caffepb.NetState{Phase: phase.Enum(), Level: proto.Int32(level), Stage: stages}
}

func TestStateMeetsRule(t *testing.T) {
	train, test := caffepb.Phase_TRAIN, caffepb.Phase_TEST
	cases := []struct {
		name  string
		state *caffepb.NetState
		rule  *caffepb.NetStateRule
		want  bool
	}{
		{"empty rule", state(train, 0), &caffepb.NetStateRule{}, true},
		{"phase match", state(train, 0), &caffepb.NetStateRule{Phase: train.Enum()}, true},
		{"phase differs", state(test, 0), &caffepb.NetStateRule{Phase: train.Enum()}, false},
		{"min level met", state(test, 2), &caffepb.NetStateRule{MinLevel: proto.Int32(2)}, true},
		{"below min level", state(test, 1), &caffepb.NetStateRule{MinLevel: proto.Int32(2)}, false},
		{"max level met", state(test, 2), &caffepb.NetStateRule{MaxLevel: proto.Int32(2)}, true},
		{"above max level", state(test, 3), &caffepb.NetStateRule{MaxLevel: proto.Int32(2)}, false},
		{"negative level", state(test, -1), &caffepb.NetStateRule{MinLevel: proto.Int32(0)}, false},
		{"all stages present", state(train, 0, "a", "b"), &caffepb.NetStateRule{Stage: []string{"b", "a"}}, true},
		{"a stage missing", state(train, 0, "a"), &caffepb.NetStateRule{Stage: []string{"a", "b"}}, false},
		{"not_stage absent", state(train, 0, "a"), &caffepb.NetStateRule{NotStage: []string{"b"}}, true},
		{"not_stage present", state(train, 0, "a", "b"), &caffepb.NetStateRule{NotStage: []string{"b"}}, false},
	}
	for _, c := range cases {
		if got := StateMeetsRule(c.state, c.rule); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

const filterNet = `
name: "filter"
state { stage: "net-stage" }
layer { name: "always" type: "Input" top: "x" }
layer { name: "train_only" type: "Input" top: "t" include { phase: TRAIN } }
layer { name: "test_only" type: "Input" top: "t" include { phase: TEST } }
layer { name: "not_test" type: "Input" top: "n" exclude { phase: TEST } }
layer { name: "either" type: "Input" top: "e" include { phase: TEST } include { stage: "deploy" } }
layer { name: "level2" type: "Input" top: "l" include { min_level: 2 } }
layer { name: "netstage" type: "Input" top: "s" include { stage: "net-stage" } }
`

func layerNames(p *caffepb.NetParameter) []string {
	var out []string
	for _, l := range p.GetLayer() {
		out = append(out, l.GetName())
	}
	return out
}

func TestFilter(t *testing.T) {
	p := parseNet(t, filterNet)
	cases := []struct {
		state *caffepb.NetState
		want  []string
	}{
		{state(caffepb.Phase_TRAIN, 0), []string{"always", "train_only", "not_test", "netstage"}},
		{state(caffepb.Phase_TEST, 0), []string{"always", "test_only", "either", "netstage"}},
		{state(caffepb.Phase_TRAIN, 2, "deploy"), []string{"always", "train_only", "not_test", "either", "level2", "netstage"}},
	}
	for _, c := range cases {
		f, err := Prepare(p, c.state)
		if err != nil {
			t.Fatal(err)
		}
		if got := layerNames(f); !slices.Equal(got, c.want) {
			t.Errorf("state %v: layers %v, want %v", c.state, got, c.want)
		}
		for _, l := range f.GetLayer() {
			if l.GetPhase() != c.state.GetPhase() {
				t.Errorf("layer %q phase %v, want the net's %v", l.GetName(), l.GetPhase(), c.state.GetPhase())
			}
		}
	}
	// The net's own state applies where the caller's does not override it:
	// with no state given the phase defaults to TEST and the stage comes
	// from the net.
	f, err := Prepare(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := layerNames(f), []string{"always", "test_only", "either", "netstage"}; !slices.Equal(got, want) {
		t.Errorf("nil state: layers %v, want %v", got, want)
	}
}

func TestFilterIncludeAndExcludeIsError(t *testing.T) {
	p := parseNet(t, `layer { name: "both" type: "Input" top: "x" include { phase: TRAIN } exclude { phase: TEST } }`)
	_, err := Prepare(p, state(caffepb.Phase_TRAIN, 0))
	if err == nil || !strings.Contains(err.Error(), `"both"`) {
		t.Fatalf("got %v, want an error naming layer \"both\"", err)
	}
}

func TestUpgradeInputs(t *testing.T) {
	p := parseNet(t, `name: "dep" input: "data" input_dim: 10 input_dim: 3 input_dim: 227 input_dim: 227
		layer { name: "r" type: "ReLU" bottom: "data" top: "data" }`)
	u, err := UpgradeInputs(p)
	if err != nil {
		t.Fatal(err)
	}
	in := u.GetLayer()[0]
	if in.GetType() != "Input" || !slices.Equal(in.GetTop(), []string{"data"}) ||
		!slices.Equal(in.GetInputParam().GetShape()[0].GetDim(), []int64{10, 3, 227, 227}) {
		t.Errorf("upgraded input layer: %v", in)
	}
	if len(u.GetInput()) != 0 || len(u.GetInputDim()) != 0 {
		t.Errorf("legacy input fields left: %v", u)
	}
	bad := parseNet(t, `input: "data" input_dim: 10 input_dim: 3`)
	if _, err := UpgradeInputs(bad); err == nil {
		t.Error("2 input_dim for one input: no error")
	}
}

func TestInsertSplitsNaming(t *testing.T) {
	p := parseNet(t, `
layer { name: "data" type: "Input" top: "data" top: "label" }
layer { name: "a" type: "ReLU" bottom: "data" top: "a" }
layer { name: "b" type: "ReLU" bottom: "data" top: "b" }
layer { name: "c" type: "X" bottom: "data" bottom: "label" bottom: "a" }
layer { name: "d" type: "X" bottom: "b" }`)
	s, err := InsertSplits(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"data", "data_data_0_split", "a", "b", "c", "d"}
	if got := layerNames(s); !slices.Equal(got, want) {
		t.Fatalf("layers %v, want %v", got, want)
	}
	split := s.GetLayer()[1]
	if split.GetType() != "Split" || !slices.Equal(split.GetBottom(), []string{"data"}) ||
		!slices.Equal(split.GetTop(), []string{"data_data_0_split_0", "data_data_0_split_1", "data_data_0_split_2"}) {
		t.Errorf("split layer: %v", split)
	}
	for i, want := range [][]string{{"data_data_0_split_0"}, {"data_data_0_split_1"}, {"data_data_0_split_2", "label", "a"}} {
		if got := s.GetLayer()[i+2].GetBottom(); !slices.Equal(got, want) {
			t.Errorf("layer %q bottoms %v, want %v", s.GetLayer()[i+2].GetName(), got, want)
		}
	}
	// The input is not modified.
	if p.GetLayer()[1].GetBottom()[0] != "data" || len(p.GetLayer()) != 5 {
		t.Error("InsertSplits modified its input")
	}
}

func TestInsertSplitsLossWeight(t *testing.T) {
	// A top used as a loss and as a bottom: the split carries the loss on
	// its first output, the consumer gets the second.
	p := parseNet(t, `
layer { name: "data" type: "Input" top: "x" }
layer { name: "l" type: "EuclideanLoss" bottom: "x" bottom: "x" top: "loss" loss_weight: 2 }
layer { name: "after" type: "ReLU" bottom: "loss" top: "z" }`)
	s, err := InsertSplits(p)
	if err != nil {
		t.Fatal(err)
	}
	got := layerNames(s)
	want := []string{"data", "x_data_0_split", "l", "loss_l_0_split", "after"}
	if !slices.Equal(got, want) {
		t.Fatalf("layers %v, want %v", got, want)
	}
	l, split, after := s.GetLayer()[2], s.GetLayer()[3], s.GetLayer()[4]
	if len(l.GetLossWeight()) != 0 {
		t.Errorf("producer keeps loss_weight %v", l.GetLossWeight())
	}
	if !slices.Equal(split.GetLossWeight(), []float32{2, 0}) {
		t.Errorf("split loss weights %v, want [2 0]", split.GetLossWeight())
	}
	if !slices.Equal(after.GetBottom(), []string{"loss_l_0_split_1"}) {
		t.Errorf("consumer bottoms %v", after.GetBottom())
	}
	if !slices.Equal(l.GetBottom(), []string{"x_data_0_split_0", "x_data_0_split_1"}) {
		t.Errorf("loss bottoms %v", l.GetBottom())
	}
}

func TestMissingBottom(t *testing.T) {
	p := parseNet(t, `name: "m"
layer { name: "data" type: "Input" top: "data" }
layer { name: "conv" type: "ReLU" bottom: "dta" top: "conv" }`)
	_, err := Build(p, nil, nil)
	var mb *MissingBottomError
	if !errors.As(err, &mb) || mb.Layer != "conv" || mb.Blob != "dta" {
		t.Fatalf("got %v, want a MissingBottomError for layer conv, blob dta", err)
	}
	if !strings.Contains(err.Error(), `"conv"`) || !strings.Contains(err.Error(), `"dta"`) {
		t.Errorf("error %q does not name the layer and the blob", err)
	}
}

func TestDuplicateTop(t *testing.T) {
	p := parseNet(t, `
layer { name: "a" type: "Input" top: "x" }
layer { name: "b" type: "Input" top: "x" }`)
	_, err := Build(p, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `"b"`) || !strings.Contains(err.Error(), `"x"`) {
		t.Fatalf("got %v, want an error naming layer b and blob x", err)
	}
}

func TestWireInPlaceAndOutputs(t *testing.T) {
	p := parseNet(t, `
layer { name: "data" type: "Input" top: "x" top: "label" }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "h" }
layer { name: "relu" type: "ReLU" bottom: "h" top: "h" }
layer { name: "loss" type: "EuclideanLoss" bottom: "h" bottom: "label" top: "loss" }
layer { name: "z" type: "ReLU" bottom: "label2" top: "q" include { phase: TRAIN } }`)
	g, err := Build(p, state(caffepb.Phase_TEST, 0), func(typ string) bool { return typ == "EuclideanLoss" })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.BlobNames, []string{"x", "label", "h", "loss"}) {
		t.Errorf("blobs %v", g.BlobNames)
	}
	if g.Tops[2][0] != g.Bottoms[2][0] {
		t.Error("in-place ReLU got a new blob")
	}
	if !slices.Equal(g.Outputs, []int{3}) {
		t.Errorf("outputs %v, want [3] (loss)", g.Outputs)
	}
	if !slices.Equal(g.Inputs, []int{0, 1}) {
		t.Errorf("inputs %v", g.Inputs)
	}
	if !slices.Equal(g.Layers[3].GetLossWeight(), []float32{1}) {
		t.Errorf("default loss weight %v", g.Layers[3].GetLossWeight())
	}
}

func TestLossWeightsCount(t *testing.T) {
	lp := &caffepb.LayerParameter{Name: proto.String("l"), Top: []string{"a", "b"}, LossWeight: []float32{1}}
	if _, err := LossWeights(lp); err == nil {
		t.Error("1 loss_weight for 2 tops: no error")
	}
	lp.LossWeight = nil
	SetDefaultLossWeights(lp)
	if w, err := LossWeights(lp); err != nil || !slices.Equal(w, []float32{1, 0}) {
		t.Errorf("default weights %v, %v; want [1 0]", w, err)
	}
}

func TestPropagateDownCount(t *testing.T) {
	p := parseNet(t, `
layer { name: "data" type: "Input" top: "x" top: "y" }
layer { name: "l" type: "EuclideanLoss" bottom: "x" bottom: "y" top: "loss" propagate_down: true }`)
	if _, err := Build(p, nil, nil); err == nil || !strings.Contains(err.Error(), `"l"`) {
		t.Fatalf("got %v, want an error naming layer l", err)
	}
}
