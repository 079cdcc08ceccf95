package layers

import (
	"math"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
)

func TestSoftmaxForward(t *testing.T) {
	// Shape (1, 3, 2): softmax over axis 1 for each of the 2 positions.
	x := blobOf([]int{1, 3, 2}, 1, 0, 2, 0, 3, 1000)
	_, top := forward(t, `type: "Softmax"`, bl(x), 1)
	s := math.Exp(1) + math.Exp(2) + math.Exp(3)
	want := []float64{math.Exp(1) / s, 0, math.Exp(2) / s, 0, math.Exp(3) / s, 1}
	layertest.Near(t, "softmax", top[0].Data(), want, 1e-12)
	// axis -1 on a (2, 2) blob.
	x = blobOf([]int{2, 2}, 0, math.Log(3), 5, 5)
	_, top = forward(t, `type: "Softmax" softmax_param { axis: -1 }`, bl(x), 1)
	layertest.Near(t, "softmax axis -1", top[0].Data(), []float64{0.25, 0.75, 0.5, 0.5}, 1e-12)
}

func TestSoftmaxGradientPrecision(t *testing.T) {
	for _, text := range []string{`type: "Softmax"`, `type: "Softmax" softmax_param { axis: 2 }`} {
		gradCheck(t, layertest.Checker{}, text, bl(gauss(1, 2, 4, 3, 2)), 1)
		precision(t, layertest.Precision{}, text, bl(gauss(2, 2, 4, 3, 2)), 1)
	}
	wantErr(t, "softmax bad axis", setupErr(t, `type: "Softmax" softmax_param { axis: 4 }`, bl(gauss(1, 2, 3)), 1), "axis")
}

func TestSoftmaxWithLossForward(t *testing.T) {
	// Row 0: probabilities 1/6, 2/6, 3/6, label 2: loss ln 2.
	// Row 1: uniform, label 0: loss ln 3.
	x := blobOf([]int{2, 3}, 0, math.Log(2), math.Log(3), 7, 7, 7)
	lab := blobOf([]int{2}, 2, 0)
	ln2, ln3 := math.Ln2, math.Log(3)
	for _, c := range []struct {
		param string
		want  float64
	}{
		{"", (ln2 + ln3) / 2},
		{"loss_param { normalization: FULL }", (ln2 + ln3) / 2},
		{"loss_param { normalization: NONE }", ln2 + ln3},
		{"loss_param { normalization: BATCH_SIZE }", (ln2 + ln3) / 2},
		{"loss_param { ignore_label: 0 }", ln2},
		{"loss_param { ignore_label: 0 normalization: FULL }", ln2 / 2},
		{"loss_param { ignore_label: 0 normalize: false }", ln2 / 2},
		{"loss_param { ignore_label: 0 normalize: true }", ln2},
		{"loss_param { ignore_label: 2 normalization: NONE }", ln3},
	} {
		_, top := forward(t, `type: "SoftmaxWithLoss" `+c.param, bl(x, lab), 2)
		layertest.Near(t, c.param, top[0].Data(), []float64{c.want}, 1e-12)
		if top[0].NumAxes() != 0 {
			t.Errorf("loss top shape %v, want scalar", top[0].Shape())
		}
		layertest.Near(t, "prob", top[1].Data(), []float64{1. / 6, 2. / 6, 3. / 6, 1. / 3, 1. / 3, 1. / 3}, 1e-12)
	}
	// Spatial: (N=1, C=2, H=1, W=2); BATCH_SIZE divides by N only.
	x = blobOf([]int{1, 2, 1, 2}, 0, 0, math.Log(3), 0)
	lab = blobOf([]int{1, 1, 1, 2}, 1, 0)
	_, top := forward(t, `type: "SoftmaxWithLoss" loss_param { normalization: BATCH_SIZE }`, bl(x, lab), 1)
	layertest.Near(t, "spatial", top[0].Data(), []float64{-math.Log(0.75) + ln2}, 1e-12)
	l := build[float64](t, `type: "SoftmaxWithLoss"`)
	if _, ok := l.(layer.LossLayer); !ok {
		t.Error("SoftmaxWithLoss does not implement layer.LossLayer")
	}
	if g, ok := l.(layer.ForceBackwardGate); !ok || g.AllowForceBackward(1) || !g.AllowForceBackward(0) {
		t.Error("SoftmaxWithLoss must allow force_backward to bottom 0 only")
	}
}

func lossBottoms(seed uint64, classes int, ignore float64, shape ...int) []*blob.Blob[float64] {
	x := gauss(seed, shape...)
	lshape := append([]int{shape[0]}, shape[2:]...)
	lab := layertest.Labels[float64](rnd(seed+1), classes, lshape...)
	if ignore >= 0 {
		lab.Data()[0] = ignore
	}
	return bl(x, lab)
}

func TestSoftmaxWithLossGradientPrecision(t *testing.T) {
	for _, param := range []string{
		"",
		"loss_param { ignore_label: 1 }",
		"loss_param { ignore_label: 1 normalization: FULL }",
		"loss_param { normalization: BATCH_SIZE }",
		"loss_param { normalization: NONE }",
	} {
		text := `type: "SoftmaxWithLoss" ` + param
		c := layertest.Checker{Bottoms: []int{0}, Tops: []int{0}}
		gradCheck(t, c, text, lossBottoms(1, 4, 1, 2, 4, 2, 3), 1)
		gradCheck(t, c, text, lossBottoms(1, 4, 1, 2, 4, 2, 3), 2)
		precision(t, layertest.Precision{PropagateDown: []bool{true, false}}, text, lossBottoms(3, 4, 1, 3, 4, 2), 2)
	}
	// Loss weight: the top diff scales the gradient.
	b := lossBottoms(5, 3, -1, 2, 3)
	l, top := forward(t, `type: "SoftmaxWithLoss"`, b, 1)
	top[0].Diff()[0] = 1
	if err := l.Backward(top, []bool{true, false}, b); err != nil {
		t.Fatal(err)
	}
	g1 := append([]float64(nil), b[0].Diff()...)
	top[0].Diff()[0] = 3
	if err := l.Backward(top, []bool{true, false}, b); err != nil {
		t.Fatal(err)
	}
	for i := range g1 {
		g1[i] *= 3
	}
	layertest.Near(t, "loss weight 3", b[0].Diff(), g1, 1e-12)
}

func TestSoftmaxWithLossErrors(t *testing.T) {
	x := gauss(1, 2, 3)
	bad := blobOf([]int{2}, 0, 3)
	l, top := setup(t, `type: "SoftmaxWithLoss"`, bl(x, bad), 1)
	wantErr(t, "label 3 of 3 classes", l.Forward(bl(x, bad), top), "label 3 at position 1")
	neg := blobOf([]int{2}, -1, 0)
	wantErr(t, "label -1", l.Forward(bl(x, neg), top), "label -1 at position 0")
	// -1 is fine when it is the ignore label.
	l, top = setup(t, `type: "SoftmaxWithLoss" loss_param { ignore_label: -1 }`, bl(x, neg), 1)
	if err := l.Forward(bl(x, neg), top); err != nil {
		t.Errorf("ignored label -1: %v", err)
	}
	wantErr(t, "backward to labels", l.Backward(top, []bool{true, true}, bl(x, neg)), "labels")
	wantErr(t, "label count", setupErr(t, `type: "SoftmaxWithLoss"`, bl(gauss(1, 2, 3, 2), blobOf([]int{2}, 0, 0)), 1), "label count")
	wantErr(t, "label num", setupErr(t, `type: "SoftmaxWithLoss"`, bl(x, blobOf([]int{3}, 0, 0, 0)), 1), "first dimension")
	wantErr(t, "one bottom", setupErr(t, `type: "SoftmaxWithLoss"`, bl(x), 1), "bottoms")
}

func TestAccuracy(t *testing.T) {
	// 4 examples, 3 classes.
	x := blobOf([]int{4, 3},
		0.1, 0.7, 0.2, // label 1: top-1 hit
		0.5, 0.3, 0.2, // label 1: top-2 hit only
		0.2, 0.2, 0.6, // label 0: tie with class 1 at rank 2: top-2 miss, top-3 hit
		0.3, 0.3, 0.4) // label 2: hit
	lab := blobOf([]int{4}, 1, 1, 0, 2)
	for _, c := range []struct {
		param    string
		want     float64
		perClass []float64
	}{
		{"", 0.5, []float64{0, 0.5, 1}},
		{"accuracy_param { top_k: 2 }", 0.75, []float64{0, 1, 1}},
		{"accuracy_param { top_k: 3 }", 1, []float64{1, 1, 1}},
		{"accuracy_param { ignore_label: 1 }", 0.5, []float64{0, 0, 1}},
	} {
		_, top := forward(t, `type: "Accuracy" `+c.param, bl(x, lab), 2)
		layertest.Near(t, "accuracy "+c.param, top[0].Data(), []float64{c.want}, 1e-12)
		layertest.Near(t, "per class "+c.param, top[1].Data(), c.perClass, 1e-12)
	}
	// Spatial with axis 1: (N=1, C=2, W=3).
	x = blobOf([]int{1, 2, 3}, 1, 0, 5, 0, 1, 4)
	lab = blobOf([]int{1, 3}, 0, 0, 0)
	_, top := forward(t, `type: "Accuracy"`, bl(x, lab), 1)
	layertest.Near(t, "spatial accuracy", top[0].Data(), []float64{2. / 3}, 1e-12)
	precision(t, layertest.Precision{NoBackward: true}, `type: "Accuracy" accuracy_param { top_k: 2 }`, lossBottoms(3, 5, -1, 6, 5), 2)

	l, top := setup(t, `type: "Accuracy"`, bl(x, lab), 1)
	wantErr(t, "accuracy backward", l.Backward(top, []bool{true, false}, bl(x, lab)), "no gradient")
	wantErr(t, "accuracy bad label", l.Forward(bl(x, blobOf([]int{1, 3}, 0, 2, 0)), top), "label 2 at position 1")
	wantErr(t, "top_k too big", setupErr(t, `type: "Accuracy" accuracy_param { top_k: 3 }`, bl(x, lab), 1), "top_k")
	_, err := tryBuild[float32](t, `type: "Accuracy" accuracy_param { top_k: 0 }`)
	wantErr(t, "top_k 0", err, "top_k")
}

// A net whose scores went NaN is never right: NaN truths and NaN rivals
// both count as misses (a NaN compares false, which used to score 1.0).
func TestAccuracyNaN(t *testing.T) {
	nan := math.NaN()
	x := blobOf([]int{3, 3},
		nan, nan, nan, // label 1: all NaN
		0.1, 0.7, nan, // label 1: a NaN rival
		0.1, 0.7, 0.2) // label 1: a plain hit
	lab := blobOf([]int{3}, 1, 1, 1)
	_, top := forward(t, `type: "Accuracy"`, bl(x, lab), 1)
	layertest.Near(t, "accuracy over NaN scores", top[0].Data(), []float64{1. / 3}, 1e-12)
}
