package layers

import (
	"math"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
	"google.golang.org/protobuf/proto"
)

func TestArgMax(t *testing.T) {
	x := blobOf([]int{2, 4}, 1, 5, 3, 5, 0, -1, 2, 1)
	_, top := forward(t, `type: "ArgMax"`, bl(x), 1)
	if !blob.ShapeEquals(top[0].Shape(), []int{2, 1, 1}) {
		t.Errorf("argmax shape %v, want [2 1 1]", top[0].Shape())
	}
	// Row 0 ties 5 at indices 1 and 3: the larger index wins, as in Caffe.
	layertest.Near(t, "argmax", top[0].Data(), []float64{3, 2}, 0)
	_, top = forward(t, `type: "ArgMax" argmax_param { top_k: 2 out_max_val: true }`, bl(x), 1)
	if !blob.ShapeEquals(top[0].Shape(), []int{2, 2, 2}) {
		t.Errorf("argmax out_max_val shape %v, want [2 2 2]", top[0].Shape())
	}
	layertest.Near(t, "argmax top2 + values", top[0].Data(), []float64{3, 1, 5, 5, 2, 3, 2, 1}, 0)
	// Along axis 0 of (2, 3): per column.
	y := blobOf([]int{2, 3}, 1, 9, 3, 4, 2, 6)
	_, top = forward(t, `type: "ArgMax" argmax_param { axis: 0 }`, bl(y), 1)
	layertest.Near(t, "argmax axis 0", top[0].Data(), []float64{1, 0, 1}, 0)
	_, top = forward(t, `type: "ArgMax" argmax_param { axis: 1 out_max_val: true top_k: 2 }`, bl(y), 1)
	layertest.Near(t, "argmax axis 1 values", top[0].Data(), []float64{9, 3, 6, 4}, 0)
	precision(t, layertest.Precision{NoBackward: true}, `type: "ArgMax" argmax_param { top_k: 3 out_max_val: true }`, bl(gauss(1, 3, 2, 4)), 1)
	precision(t, layertest.Precision{NoBackward: true}, `type: "ArgMax" argmax_param { axis: 1 top_k: 2 }`, bl(gauss(1, 3, 4, 2)), 1)
	l, top := setup(t, `type: "ArgMax"`, bl(x), 1)
	wantErr(t, "argmax backward", l.Backward(top, []bool{true}, bl(x)), "no gradient")
	wantErr(t, "top_k too big", setupErr(t, `type: "ArgMax" argmax_param { top_k: 5 }`, bl(x), 1), "top_k")
}

func TestCrop(t *testing.T) {
	a := seq(1, 2, 4, 4)
	ref := blob.New[float64](1, 1, 2, 3)
	_, top := forward(t, `type: "Crop" crop_param { offset: 1 }`, bl(a, ref), 1)
	if !blob.ShapeEquals(top[0].Shape(), []int{1, 2, 2, 3}) {
		t.Errorf("crop shape %v, want [1 2 2 3]", top[0].Shape())
	}
	layertest.Near(t, "crop", top[0].Data(), []float64{5, 6, 7, 9, 10, 11, 21, 22, 23, 25, 26, 27}, 0)
	_, top = forward(t, `type: "Crop" crop_param { axis: 1 offset: 1 offset: 2 offset: 0 }`, bl(a, ref), 1)
	layertest.Near(t, "crop per-axis", top[0].Data(), []float64{24, 25, 26, 28, 29, 30}, 0)
	for _, text := range []string{`type: "Crop" crop_param { offset: 1 }`, `type: "Crop" crop_param { axis: 1 offset: 1 offset: 0 offset: 1 }`} {
		mk := func(s uint64) []*blob.Blob[float64] { return bl(gauss(s, 2, 3, 4, 5), blob.New[float64](2, 2, 3, 3)) }
		gradCheck(t, layertest.Checker{Bottoms: []int{0}}, text, mk(1), 1)
		precision(t, layertest.Precision{PropagateDown: []bool{true, false}}, text, mk(2), 1)
	}
	wantErr(t, "crop out of bounds", setupErr(t, `type: "Crop" crop_param { offset: 3 }`, bl(a, ref), 1), "out of bounds")
	wantErr(t, "crop offsets", setupErr(t, `type: "Crop" crop_param { offset: 1 offset: 1 offset: 1 }`, bl(a, ref), 1), "offsets")
}

func TestEmbed(t *testing.T) {
	text := `type: "Embed" embed_param { num_output: 2 input_dim: 3 bias_term: true
	  weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }`
	idx := blobOf([]int{2, 2}, 2, 0, 1, 2)
	l, top := setup(t, text, bl(idx), 1)
	copy(l.Blobs()[0].Data(), []float64{1, 2, 3, 4, 5, 6})
	copy(l.Blobs()[1].Data(), []float64{10, 20})
	if err := l.Forward(bl(idx), top); err != nil {
		t.Fatal(err)
	}
	if !blob.ShapeEquals(top[0].Shape(), []int{2, 2, 2}) {
		t.Errorf("embed shape %v", top[0].Shape())
	}
	layertest.Near(t, "embed", top[0].Data(), []float64{15, 26, 11, 22, 13, 24, 15, 26}, 0)
	mk := func(s uint64) []*blob.Blob[float64] { return bl(layertest.Labels[float64](rnd(s), 3, 4, 2)) }
	gradCheck(t, layertest.Checker{NoBottoms: true}, text, mk(1), 1)
	precision(t, layertest.Precision{PropagateDown: []bool{false}}, text, mk(2), 1)
	wantErr(t, "embed index", l.Forward(bl(blobOf([]int{2, 2}, 0, 3, 0, 0)), top), "index 3 at position 1")
	wantErr(t, "embed fraction", l.Forward(bl(blobOf([]int{2, 2}, 0, 0.5, 0, 0)), top), "index 0.5")
	wantErr(t, "embed input grad", l.Backward(top, []bool{true}, bl(idx)), "indices")
	_, err := tryBuild[float32](t, `type: "Embed" embed_param { num_output: 2 }`)
	wantErr(t, "no input_dim", err, "input_dim")
}

func TestTile(t *testing.T) {
	x := seq(2, 2)
	_, top := forward(t, `type: "Tile" tile_param { tiles: 3 }`, bl(x), 1)
	layertest.Near(t, "tile axis 1", top[0].Data(), []float64{0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3}, 0)
	_, top = forward(t, `type: "Tile" tile_param { axis: 0 tiles: 2 }`, bl(x), 1)
	layertest.Near(t, "tile axis 0", top[0].Data(), []float64{0, 1, 2, 3, 0, 1, 2, 3}, 0)
	for _, text := range []string{`type: "Tile" tile_param { tiles: 3 }`, `type: "Tile" tile_param { axis: -1 tiles: 2 }`} {
		gradCheck(t, layertest.Checker{}, text, bl(gauss(1, 2, 3, 2)), 1)
		precision(t, layertest.Precision{}, text, bl(gauss(2, 2, 3, 2)), 1)
	}
	_, err := tryBuild[float32](t, `type: "Tile"`)
	wantErr(t, "no tiles", err, "tiles")
}

func TestReduction(t *testing.T) {
	x := blobOf([]int{2, 3}, 1, -2, 3, 0, 4, -1)
	for _, c := range []struct {
		param string
		want  []float64
		shape []int
	}{
		{"", []float64{5}, []int{}},
		{"reduction_param { axis: 1 }", []float64{2, 3}, []int{2}},
		{"reduction_param { axis: 1 operation: ASUM }", []float64{6, 5}, []int{2}},
		{"reduction_param { axis: 1 operation: SUMSQ coeff: 2 }", []float64{28, 34}, []int{2}},
		{"reduction_param { axis: -1 operation: MEAN }", []float64{2. / 3, 1}, []int{2}},
	} {
		_, top := forward(t, `type: "Reduction" `+c.param, bl(x), 1)
		layertest.Near(t, c.param, top[0].Data(), c.want, 1e-12)
		if !blob.ShapeEquals(top[0].Shape(), c.shape) {
			t.Errorf("%s: shape %v, want %v", c.param, top[0].Shape(), c.shape)
		}
	}
	for _, op := range []string{"SUM", "ASUM", "SUMSQ", "MEAN"} {
		text := `type: "Reduction" reduction_param { axis: 1 coeff: 0.5 operation: ` + op + ` }`
		gradCheck(t, layertest.Checker{}, text, bl(awayFrom(1, 0.05, []float64{0}, 2, 3, 2)), 1)
		precision(t, layertest.Precision{}, text, bl(gauss(2, 2, 3, 2)), 1)
	}
}

func TestClipSwishErrors(t *testing.T) {
	// Prototext enforces the required max; a hand-built parameter may lack it.
	p := &caffepb.LayerParameter{Type: proto.String("Clip"), ClipParam: &caffepb.ClipParameter{Min: proto.Float32(1)}}
	_, err := newClip[float32](ctxFor(p))
	wantErr(t, "clip without max", err, "required")
	_, err = tryBuild[float32](t, `type: "Clip" clip_param { min: 1 max: 0 }`)
	wantErr(t, "clip min > max", err, "exceeds")
	x := gauss(1, 3)
	wantErr(t, "swish in place", build[float64](t, `type: "Swish"`).Setup(bl(x), bl(x)), "in place")
}

func TestMVN(t *testing.T) {
	// (N=1, C=2, W=4): channel 0 is 1,2,3,4 (mean 2.5, std sqrt(1.25)),
	// channel 1 is 5,5,5,5.
	x := blobOf([]int{1, 2, 4}, 1, 2, 3, 4, 5, 5, 5, 5)
	s := math.Sqrt(1.25)
	_, top := forward(t, `type: "MVN" mvn_param { eps: 0 }`, bl(x), 1)
	layertest.Near(t, "mvn", top[0].Data()[:4], []float64{-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s}, 1e-12)
	_, top = forward(t, `type: "MVN" mvn_param { normalize_variance: false }`, bl(x), 1)
	layertest.Near(t, "mvn mean only", top[0].Data(), []float64{-1.5, -0.5, 0.5, 1.5, 0, 0, 0, 0}, 1e-12)
	_, top = forward(t, `type: "MVN" mvn_param { normalize_variance: false across_channels: true }`, bl(x), 1)
	layertest.Near(t, "mvn across", top[0].Data(), []float64{-2.75, -1.75, -0.75, 0.25, 1.25, 1.25, 1.25, 1.25}, 1e-12)
	for _, param := range []string{"", "mvn_param { normalize_variance: false }", "mvn_param { across_channels: true }"} {
		text := `type: "MVN" ` + param
		gradCheck(t, layertest.Checker{}, text, bl(gauss(1, 2, 3, 2, 2)), 1)
		precision(t, layertest.Precision{}, text, bl(gauss(2, 2, 3, 2, 2)), 1)
	}
}

func TestParameter(t *testing.T) {
	text := `type: "Parameter" parameter_param { shape { dim: 2 dim: 3 } }`
	l, top := setup(t, text, nil, 1)
	if !blob.ShapeEquals(top[0].Shape(), []int{2, 3}) || !blob.ShapeEquals(l.Blobs()[0].Shape(), []int{2, 3}) {
		t.Fatalf("shapes %v %v, want [2 3]", top[0].Shape(), l.Blobs()[0].Shape())
	}
	copy(l.Blobs()[0].Data(), []float64{1, 2, 3, 4, 5, 6})
	if err := l.Forward(nil, top); err != nil {
		t.Fatal(err)
	}
	layertest.Near(t, "parameter top", top[0].Data(), []float64{1, 2, 3, 4, 5, 6}, 0)
	gradCheck(t, layertest.Checker{}, text, nil, 1)
	precision(t, layertest.Precision{}, text, nil, 1)
	wantErr(t, "parameter with bottom", setupErr(t, text, bl(gauss(1, 2)), 1), "bottoms")
}
