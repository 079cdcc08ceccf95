package layers

import (
	"math"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
)

// neuronCase is an elementwise layer with hand-computed outputs.
type neuronCase struct {
	name  string
	text  string
	in    []float64
	want  []float64
	kinks []float64 // inputs where the function is not smooth
	pos   bool      // inputs must be positive (Log)
	inPl  bool      // supports in-place computation
}

func neuronCases() []neuronCase {
	e := math.E
	return []neuronCase{
		{name: "ReLU", text: `type: "ReLU"`, in: []float64{-2, -0.5, 0, 0.5, 3},
			want: []float64{0, 0, 0, 0.5, 3}, kinks: []float64{0}, inPl: true},
		{name: "LeakyReLU", text: `type: "ReLU" relu_param { negative_slope: 0.1 }`, in: []float64{-2, -0.5, 0.5, 3},
			want: []float64{-0.2, -0.05, 0.5, 3}, kinks: []float64{0}, inPl: true},
		{name: "ELU", text: `type: "ELU" elu_param { alpha: 0.5 }`, in: []float64{-1, 0, 2},
			want: []float64{0.5 * (1/e - 1), 0, 2}, kinks: []float64{0}, inPl: true},
		{name: "Sigmoid", text: `type: "Sigmoid"`, in: []float64{-1, 0, 2},
			want: []float64{1 / (1 + e), 0.5, 1 / (1 + 1/(e*e))}, inPl: true},
		{name: "TanH", text: `type: "TanH"`, in: []float64{-1, 0, 0.5},
			want: []float64{(1/e - e) / (1/e + e), 0, (e - 1) / (e + 1)}, inPl: true},
		{name: "AbsVal", text: `type: "AbsVal"`, in: []float64{-2, 0, 1.5},
			want: []float64{2, 0, 1.5}, kinks: []float64{0}},
		{name: "Power", text: `type: "Power" power_param { power: 3 scale: 2 shift: 1 }`, in: []float64{-1, 0, 0.5},
			want: []float64{-1, 1, 8}},
		{name: "PowerSquare", text: `type: "Power" power_param { power: 2 scale: -1 shift: 0.5 }`, in: []float64{-1, 0, 0.5},
			want: []float64{2.25, 0.25, 0}},
		{name: "PowerLinear", text: `type: "Power" power_param { power: 1 scale: 3 shift: -1 }`, in: []float64{-1, 2},
			want: []float64{-4, 5}, inPl: true},
		{name: "PowerHalf", text: `type: "Power" power_param { power: 0.5 scale: 1 shift: 3 }`, in: []float64{1, 6},
			want: []float64{2, 3}},
		{name: "Exp", text: `type: "Exp"`, in: []float64{-1, 0, 1},
			want: []float64{1 / e, 1, e}, inPl: true},
		{name: "Exp2", text: `type: "Exp" exp_param { base: 2 scale: 0.5 shift: 1 }`, in: []float64{-2, 0, 2},
			want: []float64{1, 2, 4}, inPl: true},
		{name: "Log", text: `type: "Log"`, in: []float64{1, e, 0.5},
			want: []float64{0, 1, -math.Ln2}, pos: true},
		{name: "Log10", text: `type: "Log" log_param { base: 10 scale: 2 shift: 1 }`, in: []float64{4.5, 49.5},
			want: []float64{1, 2}, pos: true},
		{name: "Clip", text: `type: "Clip" clip_param { min: -1 max: 2 }`, in: []float64{-3, -0.5, 1, 2.5},
			want: []float64{-1, -0.5, 1, 2}, kinks: []float64{-1, 2}, inPl: true},
		{name: "Swish", text: `type: "Swish" swish_param { beta: 2 }`, in: []float64{-1, 0, 0.5},
			want: []float64{-1 / (1 + e*e), 0, 0.5 / (1 + 1/e)}},
		{name: "BNLL", text: `type: "BNLL"`, in: []float64{-100, 0, 1, 100},
			want: []float64{math.Exp(-100), math.Ln2, math.Log(1 + e), 100}},
	}
}

func TestNeuronForward(t *testing.T) {
	for _, c := range neuronCases() {
		t.Run(c.name, func(t *testing.T) {
			x := blobOf([]int{len(c.in)}, c.in...)
			_, top := forward(t, c.text, bl(x), 1)
			// Parameters are float32 in the schema, hence the tolerance.
			layertest.Near(t, c.name, top[0].Data(), c.want, 1e-7)
			if c.inPl {
				y := blobOf([]int{len(c.in)}, c.in...)
				l := build[float64](t, c.text)
				if err := layertest.SetupReshape(l, bl(y), bl(y)); err != nil {
					t.Fatal(err)
				}
				if err := l.Forward(bl(y), bl(y)); err != nil {
					t.Fatal(err)
				}
				layertest.Near(t, c.name+" in place", y.Data(), c.want, 1e-7)
			}
		})
	}
}

func neuronInput(c neuronCase, seed uint64) *blob.Blob[float64] {
	x := awayFrom(seed, 0.05, c.kinks, 2, 3, 4, 5)
	if c.pos {
		for i, v := range x.Data() {
			x.Data()[i] = math.Abs(v) + 0.5
		}
	}
	return x
}

func TestNeuronGradient(t *testing.T) {
	for _, c := range neuronCases() {
		t.Run(c.name, func(t *testing.T) {
			gradCheck(t, layertest.Checker{}, c.text, bl(neuronInput(c, 1)), 1)
		})
	}
}

func TestNeuronPrecision(t *testing.T) {
	for _, c := range neuronCases() {
		t.Run(c.name, func(t *testing.T) {
			precision(t, layertest.Precision{}, c.text, bl(neuronInput(c, 2)), 1)
		})
	}
}

// TestNeuronInPlaceBackward checks in-place layers give the same gradient
// as out of place.
func TestNeuronInPlaceBackward(t *testing.T) {
	for _, c := range neuronCases() {
		if !c.inPl {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			x := neuronInput(c, 3)
			dy := gauss(4, x.Shape()...)
			l, top := forward(t, c.text, bl(x), 1)
			copy(top[0].Diff(), dy.Data())
			if err := l.Backward(top, []bool{true}, bl(x)); err != nil {
				t.Fatal(err)
			}
			want := append([]float64(nil), x.Diff()...)
			y := neuronInput(c, 3)
			li := build[float64](t, c.text)
			if err := layertest.SetupReshape(li, bl(y), bl(y)); err != nil {
				t.Fatal(err)
			}
			if err := li.Forward(bl(y), bl(y)); err != nil {
				t.Fatal(err)
			}
			copy(y.Diff(), dy.Data())
			if err := li.Backward(bl(y), []bool{true}, bl(y)); err != nil {
				t.Fatal(err)
			}
			layertest.Near(t, c.name, y.Diff(), want, 1e-12)
		})
	}
}

func TestNeuronErrors(t *testing.T) {
	x := gauss(1, 2, 3)
	wantErr(t, "two bottoms", setupErr(t, `type: "ReLU"`, bl(x, x), 1), "bottoms")
	wantErr(t, "no top", setupErr(t, `type: "Sigmoid"`, bl(x), 0), "tops")
	for _, typ := range []string{"AbsVal", "Log", "BNLL"} {
		l := build[float64](t, `type: "`+typ+`"`)
		wantErr(t, typ+" in place", l.Setup(bl(x), bl(x)), "in place")
	}
	_, err := tryBuild[float32](t, `type: "Exp" exp_param { base: -2 }`)
	wantErr(t, "exp base", err, "base")
	_, err = tryBuild[float32](t, `type: "Log" log_param { base: 1 }`)
	wantErr(t, "log base", err, "base")
}

func TestThreshold(t *testing.T) {
	x := blobOf([]int{5}, -1, 0.2, 0.3, 0.31, 5)
	l, top := forward(t, `type: "Threshold" threshold_param { threshold: 0.3 }`, bl(x), 1)
	layertest.Near(t, "threshold", top[0].Data(), []float64{0, 0, 0, 1, 1}, 0)
	wantErr(t, "threshold backward", l.Backward(top, []bool{true}, bl(x)), "no gradient")
	if err := l.Backward(top, []bool{false}, bl(x)); err != nil {
		t.Errorf("backward without propagation: %v", err)
	}
	precision(t, layertest.Precision{NoBackward: true}, `type: "Threshold" threshold_param { threshold: 0.1 }`, bl(gauss(5, 3, 4)), 1)
}

func TestPReLU(t *testing.T) {
	x := blobOf([]int{1, 2, 2}, -1, 2, -3, 4)
	text := `type: "PReLU" prelu_param { filler { type: "constant" value: 0.5 } }`
	l, top := forward(t, text, bl(x), 1)
	layertest.Near(t, "prelu", top[0].Data(), []float64{-0.5, 2, -1.5, 4}, 0)
	if s := l.Blobs()[0].Shape(); !blob.ShapeEquals(s, []int{2}) {
		t.Errorf("slope shape %v, want [2]", s)
	}
	// Default filler 0.25; channel_shared gives Caffe's 0-axis blob.
	l, top = forward(t, `type: "PReLU" prelu_param { channel_shared: true }`, bl(x), 1)
	layertest.Near(t, "prelu shared", top[0].Data(), []float64{-0.25, 2, -0.75, 4}, 0)
	if s := l.Blobs()[0]; s.NumAxes() != 0 || s.Count() != 1 {
		t.Errorf("shared slope shape %v, want scalar", s.Shape())
	}
	for _, shared := range []string{"", " channel_shared: true"} {
		txt := `type: "PReLU" prelu_param { filler { type: "uniform" min: 0.1 max: 0.6 }` + shared + ` }`
		gradCheck(t, layertest.Checker{}, txt, bl(awayFrom(6, 0.05, []float64{0}, 2, 3, 4)), 1)
		precision(t, layertest.Precision{}, txt, bl(gauss(7, 2, 3, 4)), 1)
	}
	// In place gives the same result and gradient.
	in := awayFrom(8, 0.05, []float64{0}, 2, 3, 2)
	l1, top1 := forward(t, text, bl(in), 1)
	dy := gauss(9, 2, 3, 2)
	copy(top1[0].Diff(), dy.Data())
	if err := l1.Backward(top1, []bool{true}, bl(in)); err != nil {
		t.Fatal(err)
	}
	ip := awayFrom(8, 0.05, []float64{0}, 2, 3, 2)
	l2 := build[float64](t, text)
	if err := layertest.SetupReshape(l2, bl(ip), bl(ip)); err != nil {
		t.Fatal(err)
	}
	if err := l2.Forward(bl(ip), bl(ip)); err != nil {
		t.Fatal(err)
	}
	layertest.Near(t, "prelu in place forward", ip.Data(), top1[0].Data(), 0)
	copy(ip.Diff(), dy.Data())
	if err := l2.Backward(bl(ip), []bool{true}, bl(ip)); err != nil {
		t.Fatal(err)
	}
	layertest.Near(t, "prelu in place dx", ip.Diff(), in.Diff(), 1e-15)
	layertest.Near(t, "prelu in place dslope", l2.Blobs()[0].Diff(), l1.Blobs()[0].Diff(), 1e-15)
	wantErr(t, "prelu 1-D", setupErr(t, text, bl(gauss(1, 4)), 1), "2 axes")
}

func TestDropout(t *testing.T) {
	x := gauss(10, 40, 50)
	text := `type: "Dropout" dropout_param { dropout_ratio: 0.3 }`
	_, top := forward(t, text, bl(x), 1)
	zeros := 0
	for i, v := range top[0].Data() {
		switch {
		case v == 0:
			zeros++
		case math.Abs(v-x.Data()[i]/0.7) > 1e-6*math.Abs(v):
			t.Fatalf("kept value %v, want %v scaled by 1/0.7", v, x.Data()[i])
		}
	}
	if frac := float64(zeros) / 2000; math.Abs(frac-0.3) > 0.04 {
		t.Errorf("dropped %.3f of inputs, want 0.3", frac)
	}
	_, top = forward(t, text, bl(x), 1, opts{phase: caffepb.Phase_TEST})
	layertest.Near(t, "dropout at test", top[0].Data(), x.Data(), 0)

	// Gradient: reseed before every forward so each pass draws one mask.
	src := newReseedable(11)
	c := layertest.Checker{BeforeForward: src.reset}
	gradCheck(t, c, text, bl(gauss(12, 3, 4)), 1, opts{phase: caffepb.Phase_TRAIN, rng: src.rng})
	gradCheck(t, layertest.Checker{}, text, bl(gauss(12, 3, 4)), 1, opts{phase: caffepb.Phase_TEST})
	s32, s64 := newReseedable(13), newReseedable(13)
	l32 := build[float32](t, text, opts{rng: s32.rng})
	l64 := build[float64](t, text, opts{rng: s64.rng})
	layertest.Precision{BeforeForward32: s32.reset, BeforeForward64: s64.reset}.Check(t, l32, l64, bl(gauss(14, 5, 6)), 1)

	_, err := tryBuild[float32](t, `type: "Dropout" dropout_param { dropout_ratio: 1 }`)
	wantErr(t, "ratio 1", err, "dropout_ratio")
}
