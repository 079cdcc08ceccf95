package layers

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
	"google.golang.org/protobuf/proto"
)

func lossOf(t *testing.T, text string, bottom []*blob.Blob[float64]) float64 {
	t.Helper()
	_, top := forward(t, text, bottom, 1)
	if top[0].NumAxes() != 0 {
		t.Errorf("%s: loss top shape %v, want scalar", text, top[0].Shape())
	}
	return top[0].Data()[0]
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %.12g, want %.12g", what, got, want)
	}
}

func TestSigmoidCrossEntropyLoss(t *testing.T) {
	x, tg := blobOf([]int{1, 2}, 0, 2), blobOf([]int{1, 2}, 1, 0)
	want := math.Ln2 + math.Log(1+math.E*math.E)
	near(t, "sce", lossOf(t, `type: "SigmoidCrossEntropyLoss"`, bl(x, tg)), want, 1e-12)
	x2, t2 := blobOf([]int{2, 1}, 0, 2), blobOf([]int{2, 1}, 1, 0)
	near(t, "sce batch 2", lossOf(t, `type: "SigmoidCrossEntropyLoss"`, bl(x2, t2)), want/2, 1e-12)
	near(t, "sce ignore", lossOf(t, `type: "SigmoidCrossEntropyLoss" loss_param { ignore_label: 0 normalization: VALID }`, bl(x2, t2)), math.Ln2, 1e-12)
	near(t, "sce large x", lossOf(t, `type: "SigmoidCrossEntropyLoss"`, bl(blobOf([]int{1, 1}, -800), blobOf([]int{1, 1}, 0))), 0, 1e-12)

	for _, param := range []string{"", "loss_param { normalization: FULL }", "loss_param { ignore_label: -1 normalization: VALID }"} {
		text := `type: "SigmoidCrossEntropyLoss" ` + param
		mk := func(s uint64) []*blob.Blob[float64] {
			x := gauss(s, 3, 4)
			tg := layertest.Uniform[float64](rnd(s+1), 0, 1, 3, 4)
			tg.Data()[2] = -1
			return bl(x, tg)
		}
		gradCheck(t, layertest.Checker{Bottoms: []int{0}}, text, mk(1), 1)
		precision(t, layertest.Precision{PropagateDown: []bool{true, false}}, text, mk(2), 1)
	}
	wantErr(t, "count mismatch", setupErr(t, `type: "SigmoidCrossEntropyLoss"`, bl(gauss(1, 2, 3), gauss(2, 2, 2)), 1), "count")
	l, top := forward(t, `type: "SigmoidCrossEntropyLoss"`, bl(x, tg), 1)
	wantErr(t, "sce label grad", l.Backward(top, []bool{true, true}, bl(x, tg)), "labels")
}

func TestEuclideanLoss(t *testing.T) {
	a, b := blobOf([]int{2, 2}, 1, 2, 3, 4), blobOf([]int{2, 2}, 0, 2, 5, 4)
	near(t, "euclidean", lossOf(t, `type: "EuclideanLoss"`, bl(a, b)), 1.25, 1e-12)
	gradCheck(t, layertest.Checker{}, `type: "EuclideanLoss"`, bl(gauss(1, 3, 2, 2), gauss(2, 3, 4)), 1)
	precision(t, layertest.Precision{}, `type: "EuclideanLoss"`, bl(gauss(3, 3, 4), gauss(4, 3, 4)), 1)
	wantErr(t, "euclidean count", setupErr(t, `type: "EuclideanLoss"`, bl(gauss(1, 2, 3), gauss(2, 2, 4)), 1), "same count")
	l := build[float64](t, `type: "EuclideanLoss"`)
	if g, ok := l.(layer.ForceBackwardGate); !ok || !g.AllowForceBackward(1) {
		t.Error("EuclideanLoss must allow gradients to both bottoms")
	}
	if _, ok := l.(layer.LossLayer); !ok {
		t.Error("EuclideanLoss is not a LossLayer")
	}
}

func TestHingeLoss(t *testing.T) {
	x := blobOf([]int{2, 3}, 1, -0.5, 2, 0.2, 0.3, -2)
	lab := blobOf([]int{2}, 2, 0)
	near(t, "hinge L1", lossOf(t, `type: "HingeLoss"`, bl(x, lab)), 2.3, 1e-12)
	near(t, "hinge L2", lossOf(t, `type: "HingeLoss" hinge_loss_param { norm: L2 }`, bl(x, lab)), 3.29, 1e-12)
	for _, param := range []string{"", "hinge_loss_param { norm: L2 }"} {
		text := `type: "HingeLoss" ` + param
		mk := func(s uint64) []*blob.Blob[float64] {
			x := awayFrom(s, 0.05, []float64{-1, 1}, 4, 5)
			return bl(x, layertest.Labels[float64](rnd(s+1), 5, 4))
		}
		gradCheck(t, layertest.Checker{Bottoms: []int{0}}, text, mk(1), 1)
		precision(t, layertest.Precision{PropagateDown: []bool{true, false}}, text, mk(2), 1)
	}
	l, top := setup(t, `type: "HingeLoss"`, bl(x, lab), 1)
	wantErr(t, "hinge label", l.Forward(bl(x, blobOf([]int{2}, 3, 0)), top), "label 3 at position 0")
	wantErr(t, "hinge label count", setupErr(t, `type: "HingeLoss"`, bl(x, blobOf([]int{2, 2}, 0, 0, 0, 0)), 1), "one label per example")
}

func TestContrastiveLoss(t *testing.T) {
	a, b := blobOf([]int{2, 2}, 0, 0, 1, 1), blobOf([]int{2, 2}, 3, 4, 1, 1.5)
	y := blobOf([]int{2}, 1, 0)
	near(t, "contrastive", lossOf(t, `type: "ContrastiveLoss"`, bl(a, b, y)), 6.3125, 1e-12)
	near(t, "contrastive legacy", lossOf(t, `type: "ContrastiveLoss" contrastive_loss_param { legacy_version: true }`, bl(a, b, y)), 6.4375, 1e-12)
	for _, param := range []string{"", "contrastive_loss_param { legacy_version: true margin: 2 }"} {
		text := `type: "ContrastiveLoss" ` + param
		mk := func(s uint64) []*blob.Blob[float64] {
			y := layertest.Labels[float64](rnd(s+2), 2, 6)
			return bl(layertest.Gaussian[float64](rnd(s), 0, 0.3, 6, 3), layertest.Gaussian[float64](rnd(s+1), 0, 0.3, 6, 3), y)
		}
		// The non-legacy gradient divides by d + 1e-4, as Caffe's does.
		gradCheck(t, layertest.Checker{Bottoms: []int{0, 1}, Threshold: 2e-3}, text, mk(1), 1)
		precision(t, layertest.Precision{PropagateDown: []bool{true, true, false}}, text, mk(2), 1)
	}
	l, top := forward(t, `type: "ContrastiveLoss"`, bl(a, b, y), 1)
	wantErr(t, "contrastive label grad", l.Backward(top, []bool{true, true, true}, bl(a, b, y)), "similarity")
	wantErr(t, "contrastive shapes", setupErr(t, `type: "ContrastiveLoss"`, bl(a, gauss(1, 2, 3), y), 1), "shape")
}

func TestMultinomialLogisticLoss(t *testing.T) {
	p := blobOf([]int{2, 3}, 0.2, 0.3, 0.5, 0.1, 0.6, 0.3)
	lab := blobOf([]int{2}, 2, 1)
	near(t, "mlogistic", lossOf(t, `type: "MultinomialLogisticLoss"`, bl(p, lab)), -(math.Log(0.5)+math.Log(0.6))/2, 1e-12)
	zero := blobOf([]int{1, 2}, 0, 1)
	near(t, "mlogistic floor", lossOf(t, `type: "MultinomialLogisticLoss"`, bl(zero, blobOf([]int{1}, 0))), -math.Log(1e-20), 1e-12)
	mk := func(s uint64) []*blob.Blob[float64] {
		return bl(layertest.Uniform[float64](rnd(s), 0.2, 1, 4, 5), layertest.Labels[float64](rnd(s+1), 5, 4))
	}
	gradCheck(t, layertest.Checker{Bottoms: []int{0}, Step: 1e-4}, `type: "MultinomialLogisticLoss"`, mk(1), 1)
	precision(t, layertest.Precision{PropagateDown: []bool{true, false}}, `type: "MultinomialLogisticLoss"`, mk(2), 1)
	l, top := setup(t, `type: "MultinomialLogisticLoss"`, bl(p, lab), 1)
	wantErr(t, "mlogistic label", l.Forward(bl(p, blobOf([]int{2}, 0, 7)), top), "label 7 at position 1")
}

func TestInfogainLoss(t *testing.T) {
	x := blobOf([]int{1, 2}, 0, 0)
	lab := blobOf([]int{1}, 0)
	h := blobOf([]int{2, 2}, 1, 0.5, 0, 2)
	near(t, "infogain", lossOf(t, `type: "InfogainLoss"`, bl(x, lab, h)), 1.5*math.Ln2, 1e-12)

	// With H = I it is SoftmaxWithLoss.
	in := lossBottoms(3, 4, -1, 3, 4, 2)
	eye := blob.New[float64](4, 4)
	for i := 0; i < 4; i++ {
		eye.Data()[i*5] = 1
	}
	near(t, "infogain identity", lossOf(t, `type: "InfogainLoss"`, bl(in[0], in[1], eye)),
		lossOf(t, `type: "SoftmaxWithLoss"`, in), 1e-12)

	// H from a BlobProto file.
	path := filepath.Join(t.TempDir(), "h.binaryproto")
	raw, err := proto.Marshal(&caffepb.BlobProto{Shape: &caffepb.BlobShape{Dim: []int64{1, 1, 2, 2}}, Data: []float32{1, 0.5, 0, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	near(t, "infogain file", lossOf(t, `type: "InfogainLoss" infogain_loss_param { source: "`+path+`" }`, bl(x, lab)), 1.5*math.Ln2, 1e-12)

	for _, param := range []string{"", "loss_param { ignore_label: 2 }", "loss_param { normalization: NONE }"} {
		text := `type: "InfogainLoss" ` + param
		mk := func(s uint64) []*blob.Blob[float64] {
			b := lossBottoms(s, 3, 2, 2, 3, 2)
			return append(b, layertest.Uniform[float64](rnd(s+9), 0, 1, 3, 3))
		}
		gradCheck(t, layertest.Checker{Bottoms: []int{0}, Tops: []int{0}}, text, mk(1), 2)
		precision(t, layertest.Precision{PropagateDown: []bool{true, false, false}}, text, mk(2), 2)
	}
	wantErr(t, "no matrix", setupErr(t, `type: "InfogainLoss"`, bl(x, lab), 1), "source")
	wantErr(t, "missing file", setupErr(t, `type: "InfogainLoss" infogain_loss_param { source: "/nonexistent/h" }`, bl(x, lab), 1), "/nonexistent/h")
	wantErr(t, "matrix size", setupErr(t, `type: "InfogainLoss"`, bl(x, lab, gauss(1, 3, 3)), 1), "2x2")
	l, top := forward(t, `type: "InfogainLoss"`, bl(x, lab, h), 1)
	wantErr(t, "infogain H grad", l.Backward(top, []bool{true, false, true}, bl(x, lab, h)), "bottom 2")
}
