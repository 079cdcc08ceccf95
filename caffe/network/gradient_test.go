package network

import (
	"math"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
)

// gradNet exercises, with the real layers: a split (ip feeds the accuracy
// and the loss), a label split, an in-place layer, a non-default loss
// weight and force_backward down to the data.
const gradNet = `
name: "gradnet"
force_backward: true
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 3 dim: 2 dim: 6 dim: 6 } shape { dim: 3 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 3 kernel_size: 3 weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "tanh" type: "TanH" bottom: "pool" top: "pool" }
layer { name: "ip" type: "InnerProduct" bottom: "pool" top: "ip"
        inner_product_param { num_output: 4 weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc" }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" loss_weight: 2 }
`

func buildGradNet[T blob.Float](t *testing.T) *Net[T] {
	t.Helper()
	p, err := prototxt.ParseNet("gradnet.prototxt", []byte(gradNet))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New[T](p, &caffepb.NetState{Phase: caffepb.Phase_TRAIN.Enum()}, standard(t), WithSeed(5))
	if err != nil {
		t.Fatal(err)
	}
	rng := layertest.NewRand(3)
	layertest.FillGaussian(n.BlobByName("data"), rng, 0, 1)
	copy(n.BlobByName("label").Data(), []T{0, 3, 1})
	return n
}

// TestNetGradientWithRealLayers checks the whole net's parameter and data
// gradients against central finite differences of its loss, in float64.
func TestNetGradientWithRealLayers(t *testing.T) {
	n := buildGradNet[float64](t)
	n.ClearParamDiffs()
	loss, err := n.ForwardBackward()
	if err != nil {
		t.Fatal(err)
	}
	if loss <= 0 {
		t.Fatalf("loss %v", loss)
	}
	// The reported loss is twice the softmax loss (loss_weight 2).
	if got := n.BlobByName("loss").Data()[0]; math.Abs(loss-2*got) > 1e-12 {
		t.Errorf("net loss %v, 2 × loss blob %v", loss, 2*got)
	}
	f := func() float64 {
		l, err := n.Forward()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	check := func(what string, data, diff []float64) {
		grad := append([]float64(nil), diff...)
		const h = 1e-5
		for k := range data {
			old := data[k]
			data[k] = old + h
			up := f()
			data[k] = old - h
			down := f()
			data[k] = old
			num := (up - down) / (2 * h)
			if math.Abs(grad[k]-num) > 1e-6*max(1, math.Abs(num)) {
				t.Errorf("%s[%d]: gradient %v, numeric %v", what, k, grad[k], num)
			}
		}
	}
	for i, p := range n.LearnableParams() {
		check(n.LearnableParamNames()[i], p.Data(), p.Diff())
	}
	data := n.BlobByName("data")
	check("data", data.Data(), data.Diff())
}

// TestNetFloat32MatchesFloat64 runs the same net in both precisions.
func TestNetFloat32MatchesFloat64(t *testing.T) {
	n64 := buildGradNet[float64](t)
	n32 := buildGradNet[float32](t)
	for i, p := range n64.LearnableParams() {
		layertest.CopyData(n32.LearnableParams()[i], p)
	}
	layertest.CopyData(n32.BlobByName("data"), n64.BlobByName("data"))
	n64.ClearParamDiffs()
	n32.ClearParamDiffs()
	l64, err := n64.ForwardBackward()
	if err != nil {
		t.Fatal(err)
	}
	l32, err := n32.ForwardBackward()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(l32)-l64) > 1e-5*max(1, math.Abs(l64)) {
		t.Errorf("loss float32 %v, float64 %v", l32, l64)
	}
	for i, p := range n64.LearnableParams() {
		for k, v := range p.Diff() {
			if g := float64(n32.LearnableParams()[i].Diff()[k]); math.Abs(g-v) > 1e-4*max(1, math.Abs(v)) {
				t.Fatalf("%s diff[%d]: float32 %v, float64 %v", n64.LearnableParamNames()[i], k, g, v)
			}
		}
	}
}
