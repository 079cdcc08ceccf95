// Package net builds Caffe nets: the layer graph for a NetState (include and
// exclude rules, in-place layers, automatic splits, shared parameters, loss
// weights, backward analysis) and the runtime Net that runs it forward and
// backward.
package network

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// EffectiveState returns the state a net is built for: the net's own state
// field, overridden field by field by state (as Caffe's solver merges its
// train_state/test_state into the net's state). Either may be nil; the
// default phase is TEST and the default level 0, as in caffe.proto.
func EffectiveState(param *caffepb.NetParameter, state *caffepb.NetState) *caffepb.NetState {
	out := &caffepb.NetState{}
	if s := param.GetState(); s != nil {
		proto.Merge(out, s)
	}
	if state != nil {
		proto.Merge(out, state)
	}
	return out
}

// StateMeetsRule reports whether state satisfies rule (Caffe's
// Net::StateMeetsRule): the phase must match where the rule sets one, the
// level must lie within [min_level, max_level], the state must hold every
// stage of the rule and none of its not_stages.
func StateMeetsRule(state *caffepb.NetState, rule *caffepb.NetStateRule) bool {
	if rule.Phase != nil && rule.GetPhase() != state.GetPhase() {
		return false
	}
	if rule.MinLevel != nil && state.GetLevel() < rule.GetMinLevel() {
		return false
	}
	if rule.MaxLevel != nil && state.GetLevel() > rule.GetMaxLevel() {
		return false
	}
	for _, s := range rule.GetStage() {
		if !slices.Contains(state.GetStage(), s) {
			return false
		}
	}
	for _, s := range rule.GetNotStage() {
		if slices.Contains(state.GetStage(), s) {
			return false
		}
	}
	return true
}

// Filter returns a copy of param holding only the layers that state
// includes (Caffe's Net::FilterNet). A layer without include rules is kept
// unless one of its exclude rules is met; a layer with include rules is kept
// only if one of them is met. A layer with both kinds of rule is an error.
// The copy's state is set to state.
func Filter(param *caffepb.NetParameter, state *caffepb.NetState) (*caffepb.NetParameter, error) {
	out := proto.CloneOf(param)
	out.Layer = nil
	out.State = proto.CloneOf(state)
	for i, lp := range param.GetLayer() {
		if len(lp.GetInclude()) > 0 && len(lp.GetExclude()) > 0 {
			return nil, fmt.Errorf("layer %q (#%d): specify either include rules or exclude rules, not both", lp.GetName(), i)
		}
		included := len(lp.GetInclude()) == 0
		for _, r := range lp.GetExclude() {
			if StateMeetsRule(state, r) {
				included = false
				break
			}
		}
		for _, r := range lp.GetInclude() {
			if StateMeetsRule(state, r) {
				included = true
				break
			}
		}
		if included {
			out.Layer = append(out.Layer, proto.CloneOf(lp))
		}
	}
	return out, nil
}

// UpgradeInputs turns the legacy net-level inputs (`input:` with
// `input_shape` or four `input_dim` per input) into a leading Input layer,
// as Caffe's UpgradeNetInput does. A net without them is returned as is.
func UpgradeInputs(param *caffepb.NetParameter) (*caffepb.NetParameter, error) {
	inputs := param.GetInput()
	if len(inputs) == 0 {
		return param, nil
	}
	shapes := param.GetInputShape()
	dims := param.GetInputDim()
	ip := &caffepb.InputParameter{}
	switch {
	case len(shapes) > 0:
		if len(shapes) != len(inputs) {
			return nil, fmt.Errorf("net %q: %d inputs but %d input_shape entries", param.GetName(), len(inputs), len(shapes))
		}
		for _, s := range shapes {
			ip.Shape = append(ip.Shape, proto.CloneOf(s))
		}
	case len(dims) > 0:
		if len(dims) != 4*len(inputs) {
			return nil, fmt.Errorf("net %q: %d inputs need %d input_dim entries, found %d", param.GetName(), len(inputs), 4*len(inputs), len(dims))
		}
		for i := range inputs {
			s := &caffepb.BlobShape{}
			for _, d := range dims[4*i : 4*i+4] {
				s.Dim = append(s.Dim, int64(d))
			}
			ip.Shape = append(ip.Shape, s)
		}
	default:
		return nil, fmt.Errorf("net %q: inputs %v have no input_shape or input_dim", param.GetName(), inputs)
	}
	out := proto.CloneOf(param)
	out.Input, out.InputShape, out.InputDim = nil, nil, nil
	in := &caffepb.LayerParameter{
		Name:       proto.String("input"),
		Type:       proto.String("Input"),
		Top:        slices.Clone(inputs),
		InputParam: ip,
	}
	out.Layer = append([]*caffepb.LayerParameter{in}, out.Layer...)
	return out, nil
}
