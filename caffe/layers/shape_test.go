package layers

import (
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
)

func seq(shape ...int) *blob.Blob[float64] {
	b := blob.New[float64](shape...)
	for i := range b.Data() {
		b.Data()[i] = float64(i)
	}
	return b
}

func TestSplit(t *testing.T) {
	x := seq(2, 3)
	_, top := forward(t, `type: "Split"`, bl(x), 3)
	for i, tp := range top {
		layertest.Near(t, "split top", tp.Data(), x.Data(), 0)
		if !blob.ShapeEquals(tp.Shape(), x.Shape()) {
			t.Errorf("top %d shape %v", i, tp.Shape())
		}
	}
	gradCheck(t, layertest.Checker{}, `type: "Split"`, bl(gauss(1, 2, 3, 4)), 3)
	precision(t, layertest.Precision{}, `type: "Split"`, bl(gauss(2, 2, 3)), 2)
	wantErr(t, "split no top", setupErr(t, `type: "Split"`, bl(x), 0), "tops")
}

func TestFlatten(t *testing.T) {
	x := seq(2, 3, 4, 5)
	for _, c := range []struct {
		param string
		want  []int
	}{
		{"", []int{2, 60}},
		{"flatten_param { axis: 2 }", []int{2, 3, 20}},
		{"flatten_param { axis: 1 end_axis: 2 }", []int{2, 12, 5}},
		{"flatten_param { axis: 0 end_axis: -2 }", []int{24, 5}},
	} {
		_, top := forward(t, `type: "Flatten" `+c.param, bl(x), 1)
		if !blob.ShapeEquals(top[0].Shape(), c.want) {
			t.Errorf("%s: shape %v, want %v", c.param, top[0].Shape(), c.want)
		}
		layertest.Near(t, "flatten data", top[0].Data(), x.Data(), 0)
	}
	gradCheck(t, layertest.Checker{}, `type: "Flatten"`, bl(gauss(1, 2, 3, 2)), 1)
	precision(t, layertest.Precision{}, `type: "Flatten"`, bl(gauss(1, 2, 3, 2)), 1)
	wantErr(t, "flatten end before start", setupErr(t, `type: "Flatten" flatten_param { axis: 2 end_axis: 1 }`, bl(x), 1), "before")
	wantErr(t, "flatten in place", build[float64](t, `type: "Flatten"`).Setup(bl(x), bl(x)), "in place")
}

func TestReshape(t *testing.T) {
	x := seq(2, 3, 4)
	for _, c := range []struct {
		param string
		want  []int
	}{
		{"reshape_param { shape { dim: 6 dim: 4 } }", []int{6, 4}},
		{"reshape_param { shape { dim: 0 dim: -1 } }", []int{2, 12}},
		{"reshape_param { shape { dim: -1 dim: 2 dim: 0 } }", []int{3, 2, 4}},
		{"reshape_param { shape { dim: -1 dim: 1 } axis: 1 num_axes: 1 }", []int{2, 3, 1, 4}},
		{"reshape_param { shape { dim: 1 } axis: -1 num_axes: 0 }", []int{2, 3, 4, 1}},
		{"reshape_param { shape { dim: 1 } axis: 0 num_axes: 0 }", []int{1, 2, 3, 4}},
		{"reshape_param { shape { } axis: 1 num_axes: 0 }", []int{2, 3, 4}},
	} {
		_, top := forward(t, `type: "Reshape" `+c.param, bl(x), 1)
		if !blob.ShapeEquals(top[0].Shape(), c.want) {
			t.Errorf("%s: shape %v, want %v", c.param, top[0].Shape(), c.want)
		}
		layertest.Near(t, "reshape data", top[0].Data(), x.Data(), 0)
	}
	text := `type: "Reshape" reshape_param { shape { dim: -1 dim: 3 } }`
	gradCheck(t, layertest.Checker{}, text, bl(gauss(1, 2, 3, 2)), 1)
	precision(t, layertest.Precision{}, text, bl(gauss(1, 2, 3, 2)), 1)
	wantErr(t, "bad count", setupErr(t, `type: "Reshape" reshape_param { shape { dim: 5 } }`, bl(x), 1), "elements")
	wantErr(t, "not divisible", setupErr(t, `type: "Reshape" reshape_param { shape { dim: 5 dim: -1 } }`, bl(x), 1), "infer")
	_, err := tryBuild[float64](t, `type: "Reshape" reshape_param { shape { dim: -1 dim: -1 } }`)
	wantErr(t, "two -1", err, "more than one -1")
	_, err = tryBuild[float64](t, `type: "Reshape" reshape_param { shape { dim: -3 } }`)
	wantErr(t, "-3", err, "-3")
}

func TestConcat(t *testing.T) {
	a, b := seq(2, 1, 2), blobOf([]int{2, 2, 2}, 10, 11, 12, 13, 14, 15, 16, 17)
	_, top := forward(t, `type: "Concat"`, bl(a, b), 1)
	if !blob.ShapeEquals(top[0].Shape(), []int{2, 3, 2}) {
		t.Errorf("concat shape %v", top[0].Shape())
	}
	layertest.Near(t, "concat axis 1", top[0].Data(), []float64{0, 1, 10, 11, 12, 13, 2, 3, 14, 15, 16, 17}, 0)
	c := seq(2, 2)
	_, top = forward(t, `type: "Concat" concat_param { concat_dim: 0 }`, bl(c, c), 1)
	layertest.Near(t, "concat_dim 0", top[0].Data(), []float64{0, 1, 2, 3, 0, 1, 2, 3}, 0)
	for _, text := range []string{`type: "Concat"`, `type: "Concat" concat_param { axis: -1 }`} {
		gradCheck(t, layertest.Checker{}, text, bl(gauss(1, 2, 3, 2), gauss(2, 2, 3, 2), gauss(3, 2, 3, 2)), 1)
		precision(t, layertest.Precision{}, text, bl(gauss(1, 2, 3, 2), gauss(2, 2, 3, 2)), 1)
	}
	wantErr(t, "concat mismatch", setupErr(t, `type: "Concat"`, bl(seq(2, 3), seq(3, 3)), 1), "differs")
	wantErr(t, "concat axes", setupErr(t, `type: "Concat"`, bl(seq(2, 3), seq(2, 3, 1)), 1), "axes")
}

func TestSlice(t *testing.T) {
	x := seq(2, 4)
	_, top := forward(t, `type: "Slice" slice_param { axis: 1 slice_point: 1 slice_point: 3 }`, bl(x), 3)
	layertest.Near(t, "slice 0", top[0].Data(), []float64{0, 4}, 0)
	layertest.Near(t, "slice 1", top[1].Data(), []float64{1, 2, 5, 6}, 0)
	layertest.Near(t, "slice 2", top[2].Data(), []float64{3, 7}, 0)
	_, top = forward(t, `type: "Slice" slice_param { slice_dim: 0 }`, bl(x), 2)
	layertest.Near(t, "slice even 1", top[1].Data(), []float64{4, 5, 6, 7}, 0)
	for _, text := range []string{`type: "Slice" slice_param { slice_point: 1 }`, `type: "Slice" slice_param { axis: 2 }`} {
		gradCheck(t, layertest.Checker{}, text, bl(gauss(1, 2, 3, 4)), 2)
		precision(t, layertest.Precision{}, text, bl(gauss(1, 2, 3, 4)), 2)
	}
	wantErr(t, "uneven", setupErr(t, `type: "Slice"`, bl(seq(2, 3)), 2), "evenly")
	wantErr(t, "points vs tops", setupErr(t, `type: "Slice" slice_param { slice_point: 1 }`, bl(seq(2, 3)), 3), "slice_points")
	wantErr(t, "decreasing", setupErr(t, `type: "Slice" slice_param { slice_point: 2 slice_point: 1 }`, bl(seq(2, 3)), 3), "increasing")
}

func TestEltwise(t *testing.T) {
	a := blobOf([]int{4}, 1, -2, 3, 0.5)
	b := blobOf([]int{4}, 2, 2, -1, 0.5)
	c := blobOf([]int{4}, 0, 5, 1, 0.25)
	for _, tc := range []struct {
		param string
		want  []float64
	}{
		{"", []float64{3, 5, 3, 1.25}},
		{"eltwise_param { operation: SUM coeff: 1 coeff: -1 coeff: 2 }", []float64{-1, 6, 6, 0.5}},
		{"eltwise_param { operation: PROD }", []float64{0, -20, -3, 0.0625}},
		{"eltwise_param { operation: MAX }", []float64{2, 5, 3, 0.5}},
	} {
		_, top := forward(t, `type: "Eltwise" `+tc.param, bl(a, b, c), 1)
		layertest.Near(t, tc.param, top[0].Data(), tc.want, 0)
	}
	// MAX: ties go to the first bottom.
	l, top := forward(t, `type: "Eltwise" eltwise_param { operation: MAX }`, bl(a, b, c), 1)
	for i := range top[0].Diff() {
		top[0].Diff()[i] = 1
	}
	if err := l.Backward(top, []bool{true, true, true}, bl(a, b, c)); err != nil {
		t.Fatal(err)
	}
	layertest.Near(t, "max grad a", a.Diff(), []float64{0, 0, 1, 1}, 0)
	layertest.Near(t, "max grad b", b.Diff(), []float64{1, 0, 0, 0}, 0)
	layertest.Near(t, "max grad c", c.Diff(), []float64{0, 1, 0, 0}, 0)

	for _, param := range []string{"", "eltwise_param { coeff: 0.5 coeff: -2 coeff: 3 }",
		"eltwise_param { operation: PROD }", "eltwise_param { operation: PROD stable_prod_grad: false }",
		"eltwise_param { operation: MAX }"} {
		text := `type: "Eltwise" ` + param
		in := func(s uint64) []*blob.Blob[float64] {
			// Values well apart so MAX has no kink within the step.
			bs := bl(blob.New[float64](2, 3, 4), blob.New[float64](2, 3, 4), blob.New[float64](2, 3, 4))
			r := rnd(s)
			for i := range bs[0].Data() {
				p := r.Perm(3)
				for k := range bs {
					bs[k].Data()[i] = float64(p[k]-1)*0.7 + 0.2 + 0.05*r.Float64()
				}
			}
			return bs
		}
		gradCheck(t, layertest.Checker{}, text, in(1), 1)
		precision(t, layertest.Precision{}, text, in(2), 1)
	}
	_, err := tryBuild[float32](t, `type: "Eltwise" eltwise_param { operation: MAX coeff: 1 coeff: 2 }`)
	wantErr(t, "coeff with MAX", err, "coeff")
	wantErr(t, "coeff count", setupErr(t, `type: "Eltwise" eltwise_param { coeff: 1 }`, bl(a, b), 1), "coeffs")
	wantErr(t, "shape mismatch", setupErr(t, `type: "Eltwise"`, bl(a, seq(2, 2)), 1), "shape")
	wantErr(t, "one bottom", setupErr(t, `type: "Eltwise"`, bl(a), 1), "bottoms")
}

func TestSilence(t *testing.T) {
	x, y := gauss(1, 3), gauss(2, 2)
	l, top := forward(t, `type: "Silence"`, bl(x, y), 0)
	x.Diff()[0], y.Diff()[0] = 5, 5
	if err := l.Backward(top, []bool{true, false}, bl(x, y)); err != nil {
		t.Fatal(err)
	}
	if x.Diff()[0] != 0 || y.Diff()[0] != 5 {
		t.Errorf("silence backward: diffs %v %v, want 0 (propagated) and 5 (untouched)", x.Diff()[0], y.Diff()[0])
	}
	wantErr(t, "silence with top", setupErr(t, `type: "Silence"`, bl(x), 1), "tops")
}
