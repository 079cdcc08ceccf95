package layers

import (
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
)

// commonTypes are the layer types registry_common.go must provide.
var commonTypes = []string{
	"Input", "DummyData", "MemoryData", "ReLU", "PReLU", "ELU", "Sigmoid", "TanH", "AbsVal",
	"Power", "Exp", "Log", "BNLL", "Threshold", "Dropout", "BatchNorm", "Scale", "Bias",
	"Eltwise", "Concat", "Slice", "Split", "Flatten", "Reshape", "Crop", "Softmax",
	"SoftmaxWithLoss", "SigmoidCrossEntropyLoss", "EuclideanLoss", "HingeLoss",
	"ContrastiveLoss", "InfogainLoss", "MultinomialLogisticLoss", "Accuracy", "ArgMax",
	"Silence", "Embed", "Tile", "Reduction", "Clip", "Swish", "MVN", "Parameter", "LSTM", "RNN",
}

func TestCommonTypesRegistered(t *testing.T) {
	r, err := Standard()
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range commonTypes {
		if !r.Has(typ) {
			t.Errorf("layer type %q not registered", typ)
		}
	}
	_, err = layer.New[float32](r, layer.Context{Param: parse(t, `name: "x" type: "NoSuchLayer"`)})
	wantErr(t, "unknown type", err, "NoSuchLayer")
}

// TestLossLayersMarked checks the loss layers implement layer.LossLayer
// and the others do not.
func TestLossLayersMarked(t *testing.T) {
	loss := map[string]string{
		"SoftmaxWithLoss": "", "SigmoidCrossEntropyLoss": "", "EuclideanLoss": "", "HingeLoss": "",
		"ContrastiveLoss": "", "InfogainLoss": "", "MultinomialLogisticLoss": "",
	}
	for _, typ := range []string{"SoftmaxWithLoss", "SigmoidCrossEntropyLoss", "EuclideanLoss", "HingeLoss",
		"ContrastiveLoss", "InfogainLoss", "MultinomialLogisticLoss", "Softmax", "Accuracy", "ReLU"} {
		l := build[float32](t, `type: "`+typ+`"`)
		_, isLoss := l.(layer.LossLayer)
		_, want := loss[typ]
		if isLoss != want {
			t.Errorf("%s: LossLayer = %v, want %v", typ, isLoss, want)
		}
	}
}

// TestNoAllocationPerPass checks Forward and Backward of the common
// layers allocate nothing once set up.
func TestNoAllocationPerPass(t *testing.T) {
	x := func() *blob.Blob[float32] { return layertest.Gaussian[float32](rnd(1), 0, 1, 4, 3, 5, 5) }
	lab := func() *blob.Blob[float32] { return layertest.Labels[float32](rnd(2), 3, 4, 5, 5) }
	cases := []struct {
		text   string
		bottom []*blob.Blob[float32]
		nTop   int
		prop   []bool
	}{
		{`type: "ReLU"`, []*blob.Blob[float32]{x()}, 1, nil},
		{`type: "PReLU"`, []*blob.Blob[float32]{x()}, 1, nil},
		{`type: "Sigmoid"`, []*blob.Blob[float32]{x()}, 1, nil},
		{`type: "TanH"`, []*blob.Blob[float32]{x()}, 1, nil},
		{`type: "Dropout"`, []*blob.Blob[float32]{x()}, 1, nil},
		{`type: "BatchNorm"`, []*blob.Blob[float32]{x()}, 1, nil},
		{`type: "Scale" scale_param { bias_term: true }`, []*blob.Blob[float32]{x()}, 1, nil},
		{`type: "Eltwise" eltwise_param { operation: MAX }`, []*blob.Blob[float32]{x(), x()}, 1, nil},
		{`type: "Concat"`, []*blob.Blob[float32]{x(), x()}, 1, nil},
		{`type: "Slice"`, []*blob.Blob[float32]{x()}, 3, nil},
		{`type: "Split"`, []*blob.Blob[float32]{x()}, 2, nil},
		{`type: "Softmax"`, []*blob.Blob[float32]{x()}, 1, nil},
		{`type: "SoftmaxWithLoss"`, []*blob.Blob[float32]{x(), lab()}, 2, []bool{true, false}},
		{`type: "Accuracy" accuracy_param { top_k: 2 }`, []*blob.Blob[float32]{x(), lab()}, 2, []bool{false, false}},
		{`type: "ArgMax" argmax_param { top_k: 2 }`, []*blob.Blob[float32]{x()}, 1, []bool{false}},
		{`type: "Crop" crop_param { offset: 1 }`, []*blob.Blob[float32]{x(), blob.New[float32](4, 3, 3, 3)}, 1, []bool{true, false}},
		{`type: "Tile" tile_param { tiles: 2 }`, []*blob.Blob[float32]{x()}, 1, nil},
		{`type: "Reduction" reduction_param { axis: 1 }`, []*blob.Blob[float32]{x()}, 1, nil},
	}
	for _, c := range cases {
		l := build[float32](t, c.text, opts{phase: caffepb.Phase_TRAIN})
		top := layertest.Tops[float32](c.nTop)
		if err := layertest.SetupReshape(l, c.bottom, top); err != nil {
			t.Fatalf("%s: %v", c.text, err)
		}
		prop := c.prop
		if prop == nil {
			prop = make([]bool, len(c.bottom))
			for i := range prop {
				prop[i] = true
			}
		}
		for _, tp := range top {
			tp.Diff() // allocate once, as a net does
		}
		var err error
		allocs := testing.AllocsPerRun(5, func() {
			if e := l.Forward(c.bottom, top); e != nil {
				err = e
			}
			if e := l.Backward(top, prop, c.bottom); e != nil {
				err = e
			}
		})
		if err != nil {
			t.Fatalf("%s: %v", c.text, err)
		}
		if allocs > 0 {
			t.Errorf("%s: %.0f allocations per Forward+Backward, want 0", c.text, allocs)
		}
	}
}

// TestForceBackwardGates checks which bottoms each gated layer lets
// force_backward reach (labels, indices and flags never).
func TestForceBackwardGates(t *testing.T) {
	for _, c := range []struct {
		text  string
		allow []bool
	}{
		{`type: "SoftmaxWithLoss"`, []bool{true, false}},
		{`type: "SigmoidCrossEntropyLoss"`, []bool{true, false}},
		{`type: "HingeLoss"`, []bool{true, false}},
		{`type: "MultinomialLogisticLoss"`, []bool{true, false}},
		{`type: "InfogainLoss"`, []bool{true, false, false}},
		{`type: "EuclideanLoss"`, []bool{true, true}},
		{`type: "ContrastiveLoss"`, []bool{true, true, false}},
		{`type: "Accuracy"`, []bool{false, false}},
		{`type: "Crop"`, []bool{true, false}},
		{`type: "Embed" embed_param { num_output: 1 input_dim: 1 }`, []bool{false}},
		{`type: "LSTM" recurrent_param { num_output: 1 }`, []bool{true, false, true}},
		{`type: "RNN" recurrent_param { num_output: 1 }`, []bool{true, false, true}},
	} {
		g, ok := build[float32](t, c.text).(layer.ForceBackwardGate)
		if !ok {
			t.Errorf("%s: no ForceBackwardGate", c.text)
			continue
		}
		for i, want := range c.allow {
			if got := g.AllowForceBackward(i); got != want {
				t.Errorf("%s: AllowForceBackward(%d) = %v, want %v", c.text, i, got, want)
			}
		}
	}
}

// TestParamPropagateDown checks layers skip exactly the parameter
// gradients the net does not want, and still compute bottom gradients.
func TestParamPropagateDown(t *testing.T) {
	type propagator interface{ SetParamPropagateDown(int, bool) }
	for _, c := range []struct {
		text   string
		bottom func() []*blob.Blob[float64]
		prop   []bool
	}{
		{`type: "Scale" scale_param { bias_term: true }`, func() []*blob.Blob[float64] { return bl(gauss(1, 2, 3, 2)) }, []bool{true}},
		{`type: "Scale" scale_param { bias_term: true }`, func() []*blob.Blob[float64] { return bl(gauss(1, 2, 3, 2), gauss(2, 3)) }, []bool{true, true}},
		{`type: "Bias"`, func() []*blob.Blob[float64] { return bl(gauss(1, 2, 3, 2)) }, []bool{true}},
		{`type: "PReLU"`, func() []*blob.Blob[float64] { return bl(gauss(1, 2, 3, 2)) }, []bool{true}},
		{`type: "Embed" embed_param { num_output: 2 input_dim: 3 }`, func() []*blob.Blob[float64] { return bl(blobOf([]int{2}, 0, 2)) }, []bool{false}},
	} {
		for skip := range 2 {
			b := c.bottom()
			l, top := forward(t, c.text, b, 1)
			pp, ok := l.(propagator)
			if !ok {
				t.Fatalf("%s: no SetParamPropagateDown", c.text)
			}
			for i := range l.Blobs() {
				pp.SetParamPropagateDown(i, i%2 != skip)
				layertest.FillUniform(l.Blobs()[i], rnd(uint64(i)), 1, 2)
				for k := range l.Blobs()[i].Diff() {
					l.Blobs()[i].Diff()[k] = 7
				}
			}
			layertest.FillGaussian(top[0], rnd(9), 0, 1)
			copy(top[0].Diff(), top[0].Data())
			if err := l.Forward(b, top); err != nil {
				t.Fatal(err)
			}
			if err := l.Backward(top, c.prop, b); err != nil {
				t.Fatal(err)
			}
			for i, p := range l.Blobs() {
				untouched := true
				for _, v := range p.Diff() {
					untouched = untouched && v == 7
				}
				if want := i%2 == skip; untouched != want {
					t.Errorf("%s: param %d propagate=%v but diff untouched=%v", c.text, i, i%2 != skip, untouched)
				}
			}
		}
	}
}
