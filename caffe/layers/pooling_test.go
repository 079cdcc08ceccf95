package layers

import (
	"fmt"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
)

// caffeSquareInput is Caffe's TestForwardSquare input: 2×2 planes of
// [1 2 5 2 3; 9 4 1 4 8; 1 2 5 2 3].
func caffeSquareInput() *blob.Blob[float64] {
	plane := []float64{1, 2, 5, 2, 3, 9, 4, 1, 4, 8, 1, 2, 5, 2, 3}
	b := blob.New[float64](2, 2, 3, 5)
	for i := 0; i < 4; i++ {
		copy(b.Data()[i*15:], plane)
	}
	return b
}

func repeat(plane []float64, times int) []float64 {
	var out []float64
	for i := 0; i < times; i++ {
		out = append(out, plane...)
	}
	return out
}

func TestPoolingMaxCaffeCase(t *testing.T) {
	text := `type: "Pooling" pooling_param { pool: MAX kernel_size: 2 stride: 1 }`
	for _, nTop := range []int{1, 2} {
		l, top := forward(t, text, bl(caffeSquareInput()), nTop)
		if want := []int{2, 2, 2, 4}; !blob.ShapeEquals(top[0].Shape(), want) {
			t.Fatalf("shape %v, want %v", top[0].Shape(), want)
		}
		layertest.Near(t, "max", top[0].Data(), repeat([]float64{9, 5, 5, 8, 9, 5, 5, 8}, 4), 0)
		if nTop == 2 {
			layertest.Near(t, "mask", top[1].Data(), repeat([]float64{5, 2, 2, 9, 5, 12, 12, 9}, 4), 0)
		}
		// Backward routes each top diff to its argmax.
		for i := range top[0].Diff() {
			top[0].Diff()[i] = 1
		}
		x := caffeSquareInput()
		if err := l.Backward(top, []bool{true}, bl(x)); err != nil {
			t.Fatal(err)
		}
		layertest.Near(t, "bottom diff", x.Diff(), repeat([]float64{0, 0, 2, 0, 0, 2, 0, 0, 0, 2, 0, 0, 2, 0, 0}, 4), 0)
	}
}

func TestPoolingMaxPaddedCaffeCase(t *testing.T) {
	x := blobOf([]int{1, 1, 3, 3}, 1, 2, 4, 2, 3, 2, 4, 2, 1)
	_, top := forward(t, `type: "Pooling" pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 2 }`, bl(x), 1)
	if want := []int{1, 1, 3, 3}; !blob.ShapeEquals(top[0].Shape(), want) {
		t.Fatalf("shape %v, want %v", top[0].Shape(), want)
	}
	layertest.Near(t, "max padded", top[0].Data(), []float64{1, 4, 4, 4, 4, 4, 4, 4, 1}, 0)
}

func TestPoolingAveCaffeCase(t *testing.T) {
	x := blobOf([]int{1, 1, 3, 3}, 2, 2, 2, 2, 2, 2, 2, 2, 2)
	_, top := forward(t, `type: "Pooling" pooling_param { pool: AVE kernel_size: 3 stride: 1 pad: 1 }`, bl(x), 1)
	a, b := 8.0/9, 4.0/3
	layertest.Near(t, "ave padded", top[0].Data(), []float64{a, b, a, b, 2, b, a, b, a}, 1e-15)
}

func TestPoolingOutputSize(t *testing.T) {
	for _, c := range []struct {
		in, k, s, p int
		ceil        bool
		want        int
	}{
		{24, 2, 2, 0, true, 12},  // LeNet
		{32, 3, 2, 0, true, 16},  // CIFAR-10 quick: ceil(29/2)+1
		{32, 3, 2, 0, false, 15}, // FLOOR
		{5, 2, 2, 0, true, 3},
		{3, 3, 2, 2, true, 3},
		{2, 2, 3, 1, true, 1}, // last window would start in the padding: clipped
		{7, 3, 3, 1, true, 3}, // ceil(6/3)+1 = 3, (3-1)*3 = 6 < 8 kept
	} {
		if got := poolOut(c.in, c.k, c.s, c.p, c.ceil); got != c.want {
			t.Errorf("poolOut(in %d, k %d, s %d, p %d, ceil %v) = %d, want %d", c.in, c.k, c.s, c.p, c.ceil, got, c.want)
		}
	}
	x := gauss(1, 1, 2, 32, 32)
	_, top := setup(t, `type: "Pooling" pooling_param { pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR }`, bl(x), 1)
	if want := []int{1, 2, 15, 15}; !blob.ShapeEquals(top[0].Shape(), want) {
		t.Errorf("FLOOR shape %v, want %v", top[0].Shape(), want)
	}
	_, top = setup(t, `type: "Pooling" pooling_param { pool: AVE global_pooling: true }`, bl(x), 1)
	if want := []int{1, 2, 1, 1}; !blob.ShapeEquals(top[0].Shape(), want) {
		t.Errorf("global shape %v, want %v", top[0].Shape(), want)
	}
}

// distinct returns data whose values differ pairwise by at least 0.05, so
// a finite-difference step never changes a window's argmax.
func distinct(seed uint64, shape ...int) *blob.Blob[float64] {
	b := blob.New[float64](shape...)
	d := b.Data()
	perm := rnd(seed).Perm(len(d))
	for i, p := range perm {
		d[i] = float64(p)*0.05 - float64(len(d))*0.025
	}
	return b
}

var poolingGradCases = []string{
	`pool: MAX kernel_size: 2 stride: 2`,
	`pool: MAX kernel_size: 3 stride: 2 pad: 1`,
	`pool: MAX kernel_h: 3 kernel_w: 2 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 0`,
	`pool: AVE kernel_size: 3 stride: 2`,
	`pool: AVE kernel_size: 3 stride: 1 pad: 1`,
	`pool: AVE kernel_h: 2 kernel_w: 3 stride: 2 pad_h: 1 pad_w: 2`,
	`pool: MAX global_pooling: true`,
	`pool: AVE global_pooling: true`,
	`pool: AVE kernel_size: 3 stride: 2 round_mode: FLOOR`,
}

func TestPoolingGradient(t *testing.T) {
	for i, p := range poolingGradCases {
		text := fmt.Sprintf(`type: "Pooling" pooling_param { %s }`, p)
		gradCheck(t, layertest.Checker{Seed: uint64(i)}, text, bl(distinct(uint64(i), 2, 3, 6, 7)), 1)
	}
	// MAX with the mask as a second top.
	gradCheck(t, layertest.Checker{Tops: []int{0}}, `type: "Pooling" pooling_param { pool: MAX kernel_size: 3 stride: 2 }`, bl(distinct(9, 2, 2, 7, 7)), 2)
}

func TestPoolingPrecision(t *testing.T) {
	for i, p := range poolingGradCases {
		text := fmt.Sprintf(`type: "Pooling" pooling_param { %s }`, p)
		precision(t, layertest.Precision{Seed: uint64(i)}, text, bl(distinct(uint64(i+20), 2, 3, 9, 8)), 1)
	}
	// Rows wide enough for the vectorized 2×2 kernel, odd width for its tail.
	precision(t, layertest.Precision{Seed: 5}, `type: "Pooling" pooling_param { pool: MAX kernel_size: 2 stride: 2 }`, bl(distinct(30, 2, 3, 6, 41)), 2)
	// CIFAR-10 quick's 3×3/2 windows on wide rows (vectorized interior,
	// clipped last column), and stride 1 with padding.
	precision(t, layertest.Precision{Seed: 6}, `type: "Pooling" pooling_param { pool: MAX kernel_size: 3 stride: 2 }`, bl(distinct(31, 2, 2, 9, 40)), 2)
	precision(t, layertest.Precision{Seed: 7}, `type: "Pooling" pooling_param { pool: MAX kernel_size: 3 stride: 1 pad: 1 }`, bl(distinct(32, 1, 2, 5, 37)), 2)
}

func TestPoolingStochastic(t *testing.T) {
	x := blobOf([]int{1, 1, 2, 4}, 1, 0, 2, 2, 3, 0, 0, 4)
	text := `type: "Pooling" pooling_param { pool: STOCHASTIC kernel_size: 2 stride: 2 }`
	// TEST: Σx²/Σx per window.
	_, top := forward(t, text, bl(x), 1, opts{phase: caffepb.Phase_TEST})
	layertest.Near(t, "stochastic test", top[0].Data(), []float64{10.0 / 4, 24.0 / 8}, 1e-15)
	// TRAIN: each output is one of its window's nonzero inputs, and the
	// gradient goes there.
	l, top := forward(t, text, bl(x), 1)
	windows := [][]float64{{1, 3}, {2, 2, 4}}
	for o, v := range top[0].Data() {
		ok := false
		for _, w := range windows[o] {
			ok = ok || v == w
		}
		if !ok {
			t.Errorf("output %d = %v, not a nonzero input of its window %v", o, v, windows[o])
		}
	}
	top[0].Diff()[0], top[0].Diff()[1] = 1, 10
	if err := l.Backward(top, []bool{true}, bl(x)); err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for i, g := range x.Diff() {
		if g != 0 && x.Data()[i] == 0 {
			t.Errorf("gradient %v at a zero input %d", g, i)
		}
		sum += g
	}
	if sum != 11 {
		t.Errorf("bottom diff sums to %v, want 11", sum)
	}
	neg := blobOf([]int{1, 1, 2, 2}, 1, -1, 0, 0)
	l2, top2 := setup(t, text, bl(neg), 1)
	wantErr(t, "negative input", l2.Forward(bl(neg), top2), "nonnegative")
}

func TestPoolingErrors(t *testing.T) {
	x := gauss(1, 1, 1, 5, 5)
	for _, c := range []struct{ text, want string }{
		{`type: "Pooling" pooling_param { pool: MAX }`, "required"},
		{`type: "Pooling" pooling_param { pool: MAX kernel_size: 2 kernel_h: 2 kernel_w: 2 }`, "not both"},
		{`type: "Pooling" pooling_param { pool: MAX global_pooling: true kernel_size: 2 }`, "global_pooling"},
		{`type: "Pooling" pooling_param { pool: MAX kernel_size: 2 pad: 2 }`, "smaller than the kernel"},
		{`type: "Pooling" pooling_param { pool: MAX kernel_size: 2 pad: 1 pad_h: 1 pad_w: 1 }`, "pad"},
		{`type: "Pooling" pooling_param { pool: STOCHASTIC kernel_size: 2 pad: 1 }`, "padding"},
		{`type: "Pooling" pooling_param { pool: MAX kernel_size: 6 }`, "smaller than"},
	} {
		wantErr(t, c.text, setupErr(t, c.text, bl(x), 1), c.want)
	}
	wantErr(t, "AVE with two tops", setupErr(t, `type: "Pooling" pooling_param { pool: AVE kernel_size: 2 }`, bl(x), 2), "tops")
	wantErr(t, "3-D bottom", setupErr(t, `type: "Pooling" pooling_param { pool: AVE kernel_size: 2 }`, bl(gauss(1, 2, 5, 5)), 1), "4 axes")
}
