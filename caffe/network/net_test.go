package network

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

const tinyNet = `
name: "tiny"
layer { name: "data" type: "Input" top: "x" top: "y"
        input_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 2 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "x" top: "h"
        param { lr_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
        inner_product_param { num_output: 4 weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "relu1" type: "ReLU" bottom: "h" top: "h" }
layer { name: "ip2" type: "InnerProduct" bottom: "h" top: "out"
        inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "constant" value: 0.2 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "out" bottom: "y" top: "loss" loss_weight: 0.5 }
`

// constSource fills tops with fixed values.
type constSource[T blob.Float] struct {
	vals  [][]T
	calls int
}

func (s *constSource[T]) Next(top []*blob.Blob[T]) error {
	s.calls++
	for i, t := range top {
		copy(t.Data(), s.vals[i])
	}
	return nil
}

func newTiny(t *testing.T, text string, opts ...Option) *Net[float64] {
	t.Helper()
	n, err := New[float64](parseNet(t, text), nil, fakeRegistry(t), append([]Option{WithSeed(7)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	src := &constSource[float64]{vals: [][]float64{{0.5, -1, 2, 1.5, 0.3, -0.7}, {1, -1, 0.5, 2}}}
	if err := n.SetSource("data", src); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNetShapesAreLazy(t *testing.T) {
	n := newTiny(t, tinyNet)
	want := map[string][]int{"x": {2, 3}, "y": {2, 2}, "h": {2, 4}, "out": {2, 2}, "loss": {}}
	for name, shape := range want {
		b := n.BlobByName(name)
		if b == nil {
			t.Fatalf("no blob %q", name)
		}
		if !blob.ShapeEquals(b.Shape(), shape) {
			t.Errorf("blob %q shape %v, want %v", name, b.Shape(), shape)
		}
		if b.Allocated() {
			t.Errorf("blob %q allocated by shape inference", name)
		}
	}
	if n.BlobByName("nope") != nil {
		t.Error("BlobByName of an unknown blob is not nil")
	}
	if got := n.LayerNames(); !slices.Equal(got, []string{"data", "ip1", "relu1", "ip2", "loss"}) {
		t.Errorf("layers %v", got)
	}
	if got := n.OutputBlobNames(); !slices.Equal(got, []string{"loss"}) {
		t.Errorf("outputs %v", got)
	}
	if got := n.OutputLossWeights(); !slices.Equal(got, []float32{0.5}) {
		t.Errorf("output loss weights %v", got)
	}
	if got := n.FedLayers(); !slices.Equal(got, []string{"data"}) {
		t.Errorf("fed layers %v", got)
	}
	if s := n.Stats(); s.Params != 3*4+4+4*2+2 || s.Activations != 6+4+8+4+1 {
		t.Errorf("stats %+v", s)
	}
	if got, want := n.ParamLrMults(), []float64{1, 2, 1, 1}; !slices.Equal(got, want) {
		t.Errorf("lr mults %v, want %v", got, want)
	}
	if got, want := n.ParamDecayMults(), []float64{1, 0, 1, 1}; !slices.Equal(got, want) {
		t.Errorf("decay mults %v, want %v", got, want)
	}
	if err := n.SetSource("ip1", &constSource[float64]{}); err == nil {
		t.Error("SetSource on a non-data layer: no error")
	}
	if err := n.SetSource("nope", &constSource[float64]{}); err == nil {
		t.Error("SetSource on a missing layer: no error")
	}
}

// lossOf recomputes the tiny net's loss by hand from its parameters.
func lossOf(n *Net[float64]) float64 {
	x := []float64{0.5, -1, 2, 1.5, 0.3, -0.7}
	y := []float64{1, -1, 0.5, 2}
	p := n.LearnableParams()
	w1, b1, w2, b2 := p[0].Data(), p[1].Data(), p[2].Data(), p[3].Data()
	var loss float64
	for i := range 2 {
		h := make([]float64, 4)
		for j := range 4 {
			h[j] = b1[j]
			for c := range 3 {
				h[j] += w1[j*3+c] * x[i*3+c]
			}
			h[j] = max(h[j], 0)
		}
		for j := range 2 {
			o := b2[j]
			for c := range 4 {
				o += w2[j*4+c] * h[c]
			}
			d := o - y[i*2+j]
			loss += d * d / 2
		}
	}
	return 0.5 * loss
}

func TestNetForwardBackwardGradient(t *testing.T) {
	n := newTiny(t, tinyNet)
	n.ClearParamDiffs()
	loss, err := n.ForwardBackward()
	if err != nil {
		t.Fatal(err)
	}
	if want := lossOf(n); math.Abs(loss-want) > 1e-12 {
		t.Fatalf("loss %v, want %v", loss, want)
	}
	// Finite differences on every parameter value.
	const h = 1e-6
	for pi, p := range n.LearnableParams() {
		d := p.Data()
		for k := range d {
			old := d[k]
			d[k] = old + h
			up := lossOf(n)
			d[k] = old - h
			down := lossOf(n)
			d[k] = old
			num := (up - down) / (2 * h)
			if got := p.Diff()[k]; math.Abs(got-num) > 1e-6*max(1, math.Abs(num)) {
				t.Errorf("param %d[%d]: gradient %v, numeric %v", pi, k, got, num)
			}
		}
	}
	// Gradients accumulate until cleared.
	g := slices.Clone(n.LearnableParams()[0].Diff())
	if err := n.Backward(); err != nil {
		t.Fatal(err)
	}
	for k, v := range n.LearnableParams()[0].Diff() {
		if math.Abs(v-2*g[k]) > 1e-12 {
			t.Fatalf("second Backward: diff %v, want %v", v, 2*g[k])
		}
	}
	n.ClearParamDiffs()
	for _, v := range n.LearnableParams()[0].Diff() {
		if v != 0 {
			t.Fatal("ClearParamDiffs left a non-zero gradient")
		}
	}
}

func TestNetBackwardPlan(t *testing.T) {
	n := newTiny(t, tinyNet)
	want := []bool{false, true, true, true, true}
	for i, w := range want {
		if n.LayerNeedsBackward(i) != w {
			t.Errorf("layer %q needs backward %v, want %v", n.LayerNames()[i], !w, w)
		}
	}
	if got := n.BottomNeedsBackward(1); !slices.Equal(got, []bool{false}) {
		t.Errorf("ip1 propagate_down %v: the data needs no gradient", got)
	}
	if got := n.BottomNeedsBackward(4); !slices.Equal(got, []bool{true, false}) {
		t.Errorf("loss propagate_down %v, want [true false]", got)
	}

	// Frozen first layer (lr_mult 0): it needs no backward, and neither does
	// the data.
	frozen := strings.Replace(tinyNet, `param { lr_mult: 1 } param { lr_mult: 2 decay_mult: 0 }`, `param { lr_mult: 0 } param { lr_mult: 0 }`, 1)
	n = newTiny(t, frozen)
	if n.LayerNeedsBackward(1) {
		t.Error("frozen ip1 needs backward")
	}
	if !n.LayerNeedsBackward(3) || !slices.Equal(n.BottomNeedsBackward(3), []bool{false}) {
		t.Errorf("ip2: backward %v propagate_down %v; want true, [false]", n.LayerNeedsBackward(3), n.BottomNeedsBackward(3))
	}

	// No loss: nothing runs backward.
	noLoss := strings.Replace(tinyNet, `loss_weight: 0.5`, `loss_weight: 0`, 1)
	n = newTiny(t, noLoss)
	for i := range n.Layers() {
		if n.LayerNeedsBackward(i) {
			t.Errorf("layer %q needs backward in a net without loss", n.LayerNames()[i])
		}
	}

	// force_backward reaches the data but not the labels (ForceBackwardGate).
	n = newTiny(t, "force_backward: true\n"+noLoss)
	for i := range n.Layers() {
		if !n.LayerNeedsBackward(i) {
			t.Errorf("force_backward: layer %q does not need backward", n.LayerNames()[i])
		}
	}
	if got := n.BottomNeedsBackward(1); !slices.Equal(got, []bool{true}) {
		t.Errorf("force_backward: ip1 propagate_down %v", got)
	}
	if got := n.BottomNeedsBackward(4); !slices.Equal(got, []bool{true, false}) {
		t.Errorf("force_backward: loss propagate_down %v, want [true false]", got)
	}

	// An explicit propagate_down: false on the loss stops everything below.
	pd := strings.Replace(tinyNet, `loss_weight: 0.5`, `loss_weight: 0.5 propagate_down: false propagate_down: false`, 1)
	n = newTiny(t, pd)
	for i := range 4 {
		if n.LayerNeedsBackward(i) {
			t.Errorf("propagate_down false: layer %q needs backward", n.LayerNames()[i])
		}
	}
}

const siamese = `
name: "siamese"
layer { name: "data" type: "Input" top: "a" top: "b" input_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 3 } } }
layer { name: "ip_a" type: "InnerProduct" bottom: "a" top: "fa"
        param { name: "w" lr_mult: 1 } param { name: "bias" lr_mult: 2 }
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 } } }
layer { name: "ip_b" type: "InnerProduct" bottom: "b" top: "fb"
        param { name: "w" } param { name: "bias" }
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "fa" bottom: "fb" top: "loss" }
`

func TestSharedParams(t *testing.T) {
	n, err := New[float64](parseNet(t, siamese), nil, fakeRegistry(t), WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(n.LearnableParams()); got != 2 {
		t.Fatalf("%d learnable params, want 2 (shared)", got)
	}
	if got := n.ParamLrMults(); !slices.Equal(got, []float64{1, 2}) {
		t.Errorf("lr mults %v: the owner's", got)
	}
	if got := n.LearnableParamNames(); !slices.Equal(got, []string{"ip_a/w", "ip_a/bias"}) {
		t.Errorf("names %v", got)
	}
	wa, wb := n.Layers()[1].Blobs()[0], n.Layers()[2].Blobs()[0]
	if &wa.Data()[0] != &wb.Data()[0] || &wa.Diff()[0] != &wb.Diff()[0] {
		t.Fatal("shared weights do not share storage")
	}
	if s := n.Stats(); s.Params != 12 {
		t.Errorf("params %d, want 12 (shared counted once)", s.Params)
	}
	if n.LayerParamCount(1) != 12 || n.LayerParamCount(2) != 0 {
		t.Errorf("layer param counts %d %d", n.LayerParamCount(1), n.LayerParamCount(2))
	}
	// Both branches add into the shared gradient: with equal inputs the
	// loss and its gradient are zero, so use different ones.
	src := &constSource[float64]{vals: [][]float64{{1, 2, 3, 4, 5, 6}, {0, 1, 0, -1, 0, 1}}}
	if err := n.SetSource("data", src); err != nil {
		t.Fatal(err)
	}
	n.ClearParamDiffs()
	if _, err := n.ForwardBackward(); err != nil {
		t.Fatal(err)
	}
	// d loss / d bias = Σ (fa−fb)·(+1) + (fa−fb)·(−1) = 0 for shared biases.
	for _, v := range n.LearnableParams()[1].Diff() {
		if math.Abs(v) > 1e-12 {
			t.Fatalf("shared bias gradient %v, want 0 (the branches cancel)", v)
		}
	}
}

func TestSharedParamErrors(t *testing.T) {
	cases := []struct{ name, from, to, want string }{
		{"shape", `shape { dim: 2 dim: 3 } shape { dim: 2 dim: 3 }`, `shape { dim: 2 dim: 3 } shape { dim: 2 dim: 4 }`, "shape mismatch"},
		{"lr_mult", `param { name: "w" } param { name: "bias" }`, `param { name: "w" lr_mult: 3 } param { name: "bias" }`, "lr_mult"},
		{"too many specs", `param { name: "w" } param { name: "bias" }`, `param { name: "w" } param { name: "bias" } param { }`, "3 param specs"},
	}
	for _, c := range cases {
		text := strings.Replace(siamese, c.from, c.to, 1)
		if text == siamese {
			t.Fatalf("%s: replacement did not apply", c.name)
		}
		_, err := New[float64](parseNet(t, text), nil, fakeRegistry(t), WithSeed(1))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `"ip_b"`) {
			t.Errorf("%s: got %v, want an error naming ip_b and %q", c.name, err, c.want)
		}
	}
	// Permissive sharing checks counts only: 3x4 weights shared with 4x3 ones.
	text := strings.Replace(siamese, `param { name: "w" } param { name: "bias" }`, `param { name: "w" share_mode: PERMISSIVE } param { name: "bias" }`, 1)
	if _, err := New[float64](parseNet(t, text), nil, fakeRegistry(t)); err != nil {
		t.Errorf("permissive sharing of equal shapes: %v", err)
	}
	text = strings.Replace(text, `shape { dim: 2 dim: 3 } shape { dim: 2 dim: 3 }`, `shape { dim: 2 dim: 3 } shape { dim: 2 dim: 4 }`, 1)
	if _, err := New[float64](parseNet(t, text), nil, fakeRegistry(t)); err == nil || !strings.Contains(err.Error(), "count mismatch") {
		t.Errorf("permissive sharing of different counts: got %v, want a count mismatch", err)
	}
}

func TestUnknownLayerType(t *testing.T) {
	text := strings.Replace(tinyNet, `type: "ReLU"`, `type: "ReLu"`, 1)
	_, err := New[float32](parseNet(t, text), nil, fakeRegistry(t))
	var ut *layer.UnknownTypeError
	if !errors.As(err, &ut) || ut.Type != "ReLu" || ut.Layer != "relu1" {
		t.Fatalf("got %v, want an UnknownTypeError for ReLu in relu1", err)
	}
	if !strings.Contains(err.Error(), "ReLU") || !strings.Contains(err.Error(), "InnerProduct") {
		t.Errorf("error %q does not list the known types", err)
	}
}

func TestBlobCountsChecked(t *testing.T) {
	text := strings.Replace(tinyNet, `bottom: "h" top: "h" }`, `bottom: "h" bottom: "x" top: "h" }`, 1)
	_, err := New[float32](parseNet(t, text), nil, fakeRegistry(t))
	if err == nil || !strings.Contains(err.Error(), `"relu1"`) || !strings.Contains(err.Error(), "bottom") {
		t.Fatalf("got %v, want a bottom-count error naming relu1", err)
	}
}

func TestDefaultLossWeightAndSplitOfLossTop(t *testing.T) {
	// The loss top is also consumed by another layer: with the default
	// weight of 1 a split is inserted and carries the loss.
	text := `
layer { name: "data" type: "Input" top: "x" top: "y" input_param { shape { dim: 2 } shape { dim: 2 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "x" bottom: "y" top: "loss" }
layer { name: "r" type: "ReLU" bottom: "loss" top: "r" }`
	n, err := New[float64](parseNet(t, text), nil, fakeRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := n.LayerNames(); !slices.Equal(got, []string{"data", "loss", "loss_loss_0_split", "r"}) {
		t.Fatalf("layers %v", got)
	}
	if got := n.TopLossWeights(2); !slices.Equal(got, []float32{1, 0}) {
		t.Errorf("split loss weights %v, want [1 0]", got)
	}
	if got := n.TopLossWeights(1); !slices.Equal(got, []float32{0}) {
		t.Errorf("loss layer keeps loss weight %v", got)
	}
	if err := n.SetSource("data", &constSource[float64]{vals: [][]float64{{3, 1}, {1, 1}}}); err != nil {
		t.Fatal(err)
	}
	loss, err := n.Forward()
	if err != nil {
		t.Fatal(err)
	}
	if loss != 2 {
		t.Errorf("loss %v, want 2", loss)
	}
}

func TestReshapeAfterInputChange(t *testing.T) {
	n := newTiny(t, tinyNet)
	in := n.LayerByName("data").(*fakeInput[float64]).p.GetInputParam()
	in.Shape[0].Dim[0], in.Shape[1].Dim[0] = 5, 5
	if err := n.Reshape(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]int{"x": {5, 3}, "h": {5, 4}, "out": {5, 2}} {
		if got := n.BlobByName(name).Shape(); !blob.ShapeEquals(got, want) {
			t.Errorf("after Reshape: %s shape %v, want %v", name, got, want)
		}
	}
	in.Shape[0].Dim[0] = 4
	if err := n.Reshape(); err == nil {
		// fakeLoss checks label count against data count: 4x2 vs 5x2.
		t.Fatal("reshape with mismatched label count: no error")
	} else if !strings.Contains(err.Error(), `"loss"`) {
		t.Errorf("error %q does not name the layer", err)
	}
}

func TestHooks(t *testing.T) {
	n := newTiny(t, tinyNet)
	var fwd, bwd []int
	n.SetHooks(Hooks{
		AfterForward:  func(i int) { fwd = append(fwd, i) },
		AfterBackward: func(i int) { bwd = append(bwd, i) },
	})
	if _, err := n.ForwardBackward(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fwd, []int{0, 1, 2, 3, 4}) || !slices.Equal(bwd, []int{4, 3, 2, 1}) {
		t.Errorf("forward hooks %v, backward hooks %v", fwd, bwd)
	}
}

func TestPhaseAndSeed(t *testing.T) {
	a, err := New[float32](parseNet(t, tinyNet), &caffepb.NetState{Phase: caffepb.Phase_TRAIN.Enum()}, fakeRegistry(t), WithSeed(3))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New[float32](parseNet(t, tinyNet), nil, fakeRegistry(t), WithSeed(3))
	if err != nil {
		t.Fatal(err)
	}
	if a.Phase() != caffepb.Phase_TRAIN || b.Phase() != caffepb.Phase_TEST {
		t.Errorf("phases %v %v", a.Phase(), b.Phase())
	}
	if !slices.Equal(a.LearnableParams()[0].Data(), b.LearnableParams()[0].Data()) {
		t.Error("same seed, same layer name: different weights")
	}
	c, err := New[float32](parseNet(t, tinyNet), nil, fakeRegistry(t), WithSeed(4))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a.LearnableParams()[0].Data(), c.LearnableParams()[0].Data()) {
		t.Error("different seeds: same weights")
	}
	if slices.Equal(a.LearnableParams()[0].Data()[:8], a.LearnableParams()[2].Data()) {
		t.Error("two layers drew the same weights")
	}
	z, err := New[float32](parseNet(t, tinyNet), nil, fakeRegistry(t), WithoutFillers())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range z.LearnableParams() {
		for _, v := range p.Data() {
			if v != 0 {
				t.Fatal("WithoutFillers: non-zero weight")
			}
		}
	}
}

// TestHugeTopRefused: a shape whose element count overflows (four axes of a
// million) is refused naming the layer, the top and the shape, when the net
// is built and when a reshape makes it, instead of a wrapped count that
// later allocations panic on.
func TestHugeTopRefused(t *testing.T) {
	huge := `shape { dim: 1000000 dim: 1000000 dim: 1000000 dim: 1000000 }`
	text := strings.Replace(tinyNet, `shape { dim: 2 dim: 3 }`, huge, 1)
	_, err := New[float32](parseNet(t, text), nil, fakeRegistry(t))
	if err == nil || !containsAll(err.Error(), `"data"`, `"x"`, "[1000000 1000000 1000000 1000000]") {
		t.Fatalf("got %v, want an error naming layer data, top x and its shape", err)
	}
	n := newTiny(t, tinyNet)
	in := n.LayerByName("data").(*fakeInput[float64]).p.GetInputParam()
	in.Shape[0].Dim = []int64{1000000, 1000000, 1000000, 1000000}
	if err := n.Reshape(); err == nil || !containsAll(err.Error(), `"data"`, `"x"`, "[1000000 1000000 1000000 1000000]") {
		t.Fatalf("reshape: got %v, want an error naming layer data, top x and its shape", err)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// closingSource is a constSource that holds something open.
type closingSource struct {
	constSource[float64]
	closed int
	err    error
}

func (s *closingSource) Close() error { s.closed++; return s.err }

// TestCloseSources: CloseSources closes each attached source that is an
// io.Closer once (a source without Close is skipped), names the layer in
// its error, and closes nothing on a second call.
func TestCloseSources(t *testing.T) {
	n := newTiny(t, tinyNet) // a constSource, without Close
	if err := n.CloseSources(); err != nil {
		t.Fatalf("no closer attached: %v", err)
	}
	src := &closingSource{err: errors.New("disk gone")}
	if err := n.SetSource("data", src); err != nil {
		t.Fatal(err)
	}
	err := n.CloseSources()
	if src.closed != 1 || err == nil || !strings.Contains(err.Error(), `layer "data"`) || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("closed %d times, error %v; want once, naming layer data and the cause", src.closed, err)
	}
	if err := n.CloseSources(); err != nil || src.closed != 1 {
		t.Fatalf("second CloseSources: error %v, source closed %d times", err, src.closed)
	}
}
