package layers

import (
	"math"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
)

func TestBiasForward(t *testing.T) {
	x := seq(2, 3, 2)
	// Two-bottom form, axis 1: bias (3) broadcast.
	b := blobOf([]int{3}, 10, 20, 30)
	_, top := forward(t, `type: "Bias"`, bl(x, b), 1)
	layertest.Near(t, "bias", top[0].Data(), []float64{10, 11, 22, 23, 34, 35, 16, 17, 28, 29, 40, 41}, 0)
	// One-bottom form, constant filler, num_axes -1 (bias over axes 1..2).
	l, top := forward(t, `type: "Bias" bias_param { num_axes: -1 filler { type: "constant" value: 0.5 } }`, bl(x), 1)
	if s := l.Blobs()[0].Shape(); !blob.ShapeEquals(s, []int{3, 2}) {
		t.Errorf("bias blob shape %v, want [3 2]", s)
	}
	layertest.Near(t, "bias constant", top[0].Data()[:3], []float64{0.5, 1.5, 2.5}, 0)
	// Scalar bias (num_axes 0).
	l, _ = forward(t, `type: "Bias" bias_param { num_axes: 0 }`, bl(x), 1)
	if l.Blobs()[0].NumAxes() != 0 {
		t.Errorf("num_axes 0 bias shape %v, want scalar", l.Blobs()[0].Shape())
	}
}

func TestBiasGradientPrecision(t *testing.T) {
	rf := ` filler { type: "gaussian" }`
	for _, c := range []struct {
		text string
		b    []*blob.Blob[float64]
	}{
		{`type: "Bias" bias_param {` + rf + ` }`, bl(gauss(1, 2, 3, 4))},
		{`type: "Bias" bias_param { axis: 0 num_axes: 2` + rf + ` }`, bl(gauss(1, 2, 3, 4))},
		{`type: "Bias" bias_param { num_axes: 0` + rf + ` }`, bl(gauss(1, 2, 3, 4))},
		{`type: "Bias" bias_param { axis: -1` + rf + ` }`, bl(gauss(1, 2, 3, 4))},
		{`type: "Bias"`, bl(gauss(1, 2, 3, 4), gauss(2, 3, 4))},
		{`type: "Bias" bias_param { axis: 0 }`, bl(gauss(1, 2, 3, 4), gauss(2, 2))},
	} {
		gradCheck(t, layertest.Checker{}, c.text, c.b, 1)
		precision(t, layertest.Precision{}, c.text, c.b, 1)
	}
	wantErr(t, "bias mismatch", setupErr(t, `type: "Bias"`, bl(gauss(1, 2, 3), gauss(2, 4)), 1), "does not match")
	wantErr(t, "bias past end", setupErr(t, `type: "Bias" bias_param { axis: 1 num_axes: 3 }`, bl(gauss(1, 2, 3)), 1), "extends past")
}

func TestScaleForward(t *testing.T) {
	x := seq(2, 3, 2)
	s := blobOf([]int{3}, 1, 2, -1)
	_, top := forward(t, `type: "Scale"`, bl(x, s), 1)
	layertest.Near(t, "scale", top[0].Data(), []float64{0, 1, 4, 6, -4, -5, 6, 7, 16, 18, -10, -11}, 0)
	// Default filler 1 and bias 0: the identity; blobs [scale, bias].
	l, top := forward(t, `type: "Scale" scale_param { bias_term: true }`, bl(x), 1)
	layertest.Near(t, "scale identity", top[0].Data(), x.Data(), 0)
	if len(l.Blobs()) != 2 || !blob.ShapeEquals(l.Blobs()[0].Shape(), []int{3}) || !blob.ShapeEquals(l.Blobs()[1].Shape(), []int{3}) {
		t.Errorf("scale blobs %d, want scale and bias of shape [3]", len(l.Blobs()))
	}
	// Two-bottom form with bias: y = x·s + b; blobs [bias].
	l, top = setup(t, `type: "Scale" scale_param { bias_term: true bias_filler { type: "constant" value: 100 } }`, bl(x, s), 1)
	if len(l.Blobs()) != 1 {
		t.Fatalf("two-bottom scale has %d blobs, want 1 (bias)", len(l.Blobs()))
	}
	if err := l.Forward(bl(x, s), top); err != nil {
		t.Fatal(err)
	}
	layertest.Near(t, "scale+bias", top[0].Data()[:4], []float64{100, 101, 104, 106}, 0)
}

func TestScaleGradientPrecision(t *testing.T) {
	rf := ` filler { type: "gaussian" } bias_filler { type: "gaussian" }`
	for _, c := range []struct {
		text string
		b    []*blob.Blob[float64]
	}{
		{`type: "Scale" scale_param {` + rf + ` }`, bl(gauss(1, 2, 3, 4))},
		{`type: "Scale" scale_param { bias_term: true` + rf + ` }`, bl(gauss(1, 2, 3, 4))},
		{`type: "Scale" scale_param { axis: 0 num_axes: -1 bias_term: true` + rf + ` }`, bl(gauss(1, 2, 3, 4))},
		{`type: "Scale" scale_param { num_axes: 0` + rf + ` }`, bl(gauss(1, 2, 3, 4))},
		{`type: "Scale"`, bl(gauss(1, 2, 3, 4), gauss(2, 3, 4))},
		{`type: "Scale" scale_param { bias_term: true` + rf + ` }`, bl(gauss(1, 2, 3, 4), gauss(2, 3))},
		{`type: "Scale"`, bl(gauss(1, 2, 3, 4), gauss(2))}, // scalar-like [] shape below
	} {
		if len(c.b) == 2 && c.b[1].Count() == 1 {
			c.b[1].Reshape() // a 0-axis scale broadcasts over everything
		}
		gradCheck(t, layertest.Checker{}, c.text, c.b, 1)
		precision(t, layertest.Precision{}, c.text, c.b, 1)
	}
	// In place gives the same gradients as out of place.
	text := `type: "Scale" scale_param { bias_term: true` + rf + ` }`
	x1, x2, dy := gauss(3, 2, 3, 2), gauss(3, 2, 3, 2), gauss(4, 2, 3, 2)
	l1, top1 := forward(t, text, bl(x1), 1)
	copy(top1[0].Diff(), dy.Data())
	if err := l1.Backward(top1, []bool{true}, bl(x1)); err != nil {
		t.Fatal(err)
	}
	l2 := build[float64](t, text)
	if err := layertest.SetupReshape(l2, bl(x2), bl(x2)); err != nil {
		t.Fatal(err)
	}
	if err := l2.Forward(bl(x2), bl(x2)); err != nil {
		t.Fatal(err)
	}
	layertest.Near(t, "in place forward", x2.Data(), top1[0].Data(), 1e-15)
	copy(x2.Diff(), dy.Data())
	if err := l2.Backward(bl(x2), []bool{true}, bl(x2)); err != nil {
		t.Fatal(err)
	}
	layertest.Near(t, "in place dx", x2.Diff(), x1.Diff(), 1e-15)
	layertest.Near(t, "in place dscale", l2.Blobs()[0].Diff(), l1.Blobs()[0].Diff(), 1e-15)
	layertest.Near(t, "in place dbias", l2.Blobs()[1].Diff(), l1.Blobs()[1].Diff(), 1e-15)
	wantErr(t, "scale mismatch", setupErr(t, `type: "Scale"`, bl(gauss(1, 2, 3), gauss(2, 2)), 1), "does not match")
}

func TestBatchNormForward(t *testing.T) {
	// (N=2, C=2, W=2): channel 0 holds 1,3,5,7 and channel 1 holds 2,4,2,4.
	x := blobOf([]int{2, 2, 2}, 1, 3, 2, 4, 5, 7, 2, 4)
	l, top := forward(t, `type: "BatchNorm" batch_norm_param { eps: 0 }`, bl(x), 1)
	s := math.Sqrt(5) // population std of 1,3,5,7
	layertest.Near(t, "bn train", top[0].Data(), []float64{-3 / s, -1 / s, -1, 1, 1 / s, 3 / s, -1, 1}, 1e-7)
	b := l.Blobs()
	layertest.Near(t, "running mean", b[0].Data(), []float64{4, 3}, 1e-7)
	layertest.Near(t, "running var (unbiased)", b[1].Data(), []float64{20. / 3, 4. / 3}, 1e-6)
	layertest.Near(t, "scale factor", b[2].Data(), []float64{1}, 0)
	if err := l.Forward(bl(x), top); err != nil {
		t.Fatal(err)
	}
	// Second pass: mean + 0.999·mean, factor 1·0.999 + 1.
	layertest.Near(t, "running mean 2", b[0].Data(), []float64{4 + 0.999*4, 3 + 0.999*3}, 1e-6)
	layertest.Near(t, "scale factor 2", b[2].Data(), []float64{1.999}, 1e-6)

	// Global statistics (TEST default): mean = blob0/factor, var = blob1/factor.
	g, gtop := setup(t, `type: "BatchNorm" batch_norm_param { eps: 0 }`, bl(x), 1, opts{phase: caffepb.Phase_TEST})
	copy(g.Blobs()[0].Data(), []float64{2, 4})
	copy(g.Blobs()[1].Data(), []float64{8, 2}) // mean (1, 2), variance (4, 1)
	g.Blobs()[2].Data()[0] = 2
	if err := g.Forward(bl(x), gtop); err != nil {
		t.Fatal(err)
	}
	layertest.Near(t, "bn global", gtop[0].Data(), []float64{0, 1, 0, 2, 2, 3, 0, 2}, 1e-7)
	if lr := parse(t, `type: "BatchNorm"`); len(lr.Param) != 0 {
		t.Fatal("parse helper shares state")
	}
}

func TestBatchNormGradientPrecision(t *testing.T) {
	for _, c := range []struct {
		text  string
		phase caffepb.Phase
		shape []int
	}{
		{`type: "BatchNorm"`, caffepb.Phase_TRAIN, []int{3, 2, 2, 3}},
		{`type: "BatchNorm"`, caffepb.Phase_TRAIN, []int{5, 3}},
		{`type: "BatchNorm" batch_norm_param { use_global_stats: true }`, caffepb.Phase_TRAIN, []int{3, 2, 2, 3}},
		{`type: "BatchNorm"`, caffepb.Phase_TEST, []int{3, 2, 4}},
	} {
		o := opts{phase: c.phase}
		l := build[float64](t, c.text, o)
		x := gauss(1, c.shape...)
		top := layertest.Tops[float64](1)
		if err := layertest.SetupReshape(l, bl(x), top); err != nil {
			t.Fatal(err)
		}
		// Stored statistics for the global mode.
		layertest.FillUniform(l.Blobs()[0], rnd(2), -1, 1)
		layertest.FillUniform(l.Blobs()[1], rnd(3), 0.5, 2)
		l.Blobs()[2].Data()[0] = 1.5
		layertest.Checker{NoParams: true}.CheckPrepared(t, l, bl(x), top)
		precision(t, layertest.Precision{Tol: 2e-4}, c.text, bl(gauss(4, c.shape...)), 1, o)
	}
	// Statistics are frozen: the layer definition gets lr_mult 0.
	p := parse(t, `type: "BatchNorm"`)
	if _, err := newBatchNorm[float32](ctxFor(p)); err != nil {
		t.Fatal(err)
	}
	if len(p.Param) != 3 || p.Param[0].GetLrMult() != 0 || p.Param[2].LrMult == nil {
		t.Errorf("BatchNorm params %v, want three with lr_mult 0", p.Param)
	}
	_, err := tryBuild[float32](t, `type: "BatchNorm" param { lr_mult: 1 }`)
	wantErr(t, "learned stats", err, "lr_mult")
}
