package layers

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
)

// convCase is one convolution configuration for the tests.
type convCase struct {
	param       string // convolution_param body
	n, c, h, w  int
	numOut, grp int
	g           convGeom
	bias        bool
}

func convCases() []convCase {
	return []convCase{
		{"num_output: 3 kernel_size: 3", 2, 2, 5, 6, 3, 1, convGeom{3, 3, 1, 1, 0, 0, 1, 1}, true},
		{"num_output: 4 kernel_size: 3 stride: 2 pad: 1", 2, 3, 7, 6, 4, 1, convGeom{3, 3, 2, 2, 1, 1, 1, 1}, true},
		{"num_output: 2 kernel_h: 2 kernel_w: 3 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 0 bias_term: false", 1, 2, 5, 7, 2, 1, convGeom{2, 3, 1, 2, 1, 0, 1, 1}, false},
		{"num_output: 4 kernel_size: 3 dilation: 2 pad: 2 group: 2", 2, 4, 6, 6, 4, 2, convGeom{3, 3, 1, 1, 2, 2, 2, 2}, true},
		{"num_output: 3 kernel_size: 1", 2, 4, 3, 3, 3, 1, convGeom{1, 1, 1, 1, 0, 0, 1, 1}, true},
		{"num_output: 6 kernel_size: 1 group: 3", 2, 3, 2, 4, 6, 3, convGeom{1, 1, 1, 1, 0, 0, 1, 1}, true},
		// Few weights over long columns: the batched weight gradient
		// (ntWeightsPay), also per group.
		{"num_output: 3 kernel_size: 3", 2, 2, 18, 18, 3, 1, convGeom{3, 3, 1, 1, 0, 0, 1, 1}, true},
		{"num_output: 4 kernel_size: 3 pad: 1 group: 2", 2, 4, 16, 16, 4, 2, convGeom{3, 3, 1, 1, 1, 1, 1, 1}, true},
	}
}

func (c convCase) text(typ string) string {
	return fmt.Sprintf(`type: %q convolution_param { %s weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 } }`, typ, c.param)
}

// naiveConv computes a convolution straight from its definition.
func naiveConv(x []float64, n, c, h, w int, wt, bias []float64, numOut, grp int, g convGeom) ([]float64, int, int) {
	oh, ow := g.out(h, w)
	y := make([]float64, n*numOut*oh*ow)
	cg, og := c/grp, numOut/grp
	for b := 0; b < n; b++ {
		for o := 0; o < numOut; o++ {
			gi := o / og
			for yy := 0; yy < oh; yy++ {
				for xx := 0; xx < ow; xx++ {
					s := 0.0
					if bias != nil {
						s = bias[o]
					}
					for ci := 0; ci < cg; ci++ {
						ch := gi*cg + ci
						for ki := 0; ki < g.kh; ki++ {
							for kj := 0; kj < g.kw; kj++ {
								iy, ix := yy*g.sh-g.ph+ki*g.dh, xx*g.sw-g.pw+kj*g.dw
								if iy < 0 || iy >= h || ix < 0 || ix >= w {
									continue
								}
								s += wt[((o*cg+ci)*g.kh+ki)*g.kw+kj] * x[((b*c+ch)*h+iy)*w+ix]
							}
						}
					}
					y[((b*numOut+o)*oh+yy)*ow+xx] = s
				}
			}
		}
	}
	return y, oh, ow
}

func TestConvolutionMatchesDefinition(t *testing.T) {
	for i, cc := range convCases() {
		x := gauss(uint64(10+i), cc.n, cc.c, cc.h, cc.w)
		l, top := forward(t, cc.text("Convolution"), bl(x), 1)
		var bias []float64
		if cc.bias {
			bias = l.Blobs()[1].Data()
		}
		want, oh, ow := naiveConv(x.Data(), cc.n, cc.c, cc.h, cc.w, l.Blobs()[0].Data(), bias, cc.numOut, cc.grp, cc.g)
		if got := top[0].Shape(); !blob.ShapeEquals(got, []int{cc.n, cc.numOut, oh, ow}) {
			t.Fatalf("case %d: top shape %v, want %v", i, got, []int{cc.n, cc.numOut, oh, ow})
		}
		layertest.Near(t, fmt.Sprintf("case %d top", i), top[0].Data(), want, 1e-12)
	}
}

func TestConvolutionHandComputed(t *testing.T) {
	// 1×1×3×3 input, 2×2 kernel of ones, bias 1: sums of 2×2 windows + 1.
	x := blobOf([]int{1, 1, 3, 3}, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	_, top := forward(t, `type: "Convolution" convolution_param { num_output: 1 kernel_size: 2
		weight_filler { type: "constant" value: 1 } bias_filler { type: "constant" value: 1 } }`, bl(x), 1)
	layertest.Near(t, "top", top[0].Data(), []float64{13, 17, 25, 29}, 0)
	// Padding 1, stride 2 on the same input: windows at corners.
	_, top = forward(t, `type: "Convolution" convolution_param { num_output: 1 kernel_size: 2 pad: 1 stride: 2
		weight_filler { type: "constant" value: 1 } }`, bl(x), 1)
	layertest.Near(t, "padded top", top[0].Data(), []float64{1, 5, 11, 28}, 0)
}

func TestConvolutionBatchedWeightGradientChoice(t *testing.T) {
	for _, c := range []struct {
		text        string
		x           *blob.Blob[float64]
		wantBatched bool
	}{
		{`type: "Convolution" convolution_param { num_output: 20 kernel_size: 5 }`, gauss(1, 2, 1, 28, 28), true},   // LeNet conv1
		{`type: "Convolution" convolution_param { num_output: 50 kernel_size: 5 }`, gauss(2, 2, 20, 12, 12), false}, // LeNet conv2
		{convCases()[6].text("Convolution"), gauss(3, 2, 2, 18, 18), true},
		{convCases()[7].text("Convolution"), gauss(4, 2, 4, 16, 16), true},
		{convCases()[0].text("Convolution"), gauss(5, 2, 2, 5, 6), false},
	} {
		l, _ := forward(t, c.text, bl(c.x), 1)
		if got := l.(*convolution[float64]).ntWeightsPay(); got != c.wantBatched {
			t.Errorf("%s on %v: batched weight gradient %v, want %v", c.text, c.x.Shape(), got, c.wantBatched)
		}
	}
}

func TestConvolutionGradient(t *testing.T) {
	for i, cc := range convCases() {
		x := gauss(uint64(20+i), cc.n, cc.c, cc.h, cc.w)
		gradCheck(t, layertest.Checker{Seed: uint64(i)}, cc.text("Convolution"), bl(x), 1)
	}
}

func TestConvolutionPrecision(t *testing.T) {
	for i, cc := range convCases() {
		x := gauss(uint64(30+i), cc.n, cc.c, cc.h, cc.w)
		precision(t, layertest.Precision{Seed: uint64(i)}, cc.text("Convolution"), bl(x), 1)
	}
	// A LeNet-sized case, so the float32 fast GEMM runs full tiles.
	x := gauss(40, 3, 20, 12, 12)
	precision(t, layertest.Precision{Seed: 9}, `type: "Convolution" convolution_param { num_output: 50 kernel_size: 5
		weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.1 } }`, bl(x), 1)
	// CIFAR-10 quick's conv2 window on fewer channels, over enough images
	// for several accumulator pieces per core: the padded unit-stride
	// im2col/col2im, whole 4×32 and 4×64 tiles, the parallel reduction.
	x = gauss(41, 11, 6, 16, 16)
	precision(t, layertest.Precision{Seed: 10}, `type: "Convolution" convolution_param { num_output: 32 pad: 2 kernel_size: 5
		weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.1 } }`, bl(x), 1)
	// Columns of at least implicitForwardMin rows, so that on a backend
	// with implicit products the forward pass and the flipped data
	// gradient run them too (the weight gradient does at any size): same
	// padding, groups with output channels short of a 32-wide tile, and a
	// stride (col2im's data gradient).
	for i, param := range []string{
		"num_output: 32 pad: 2 kernel_size: 5",
		"num_output: 34 pad: 2 kernel_size: 5 group: 2",
		"num_output: 40 pad: 1 kernel_size: 5 stride: 2",
	} {
		c := 12
		if i == 1 {
			c = 24
		}
		x = gauss(uint64(42+i), 5, c, 10, 9)
		precision(t, layertest.Precision{Seed: uint64(11 + i)}, `type: "Convolution" convolution_param { `+param+`
			weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.1 } }`, bl(x), 1)
	}
}

// TestConvolutionPrecisionManyWorkers runs a CIFAR-10-sized convolution
// (32 channels in and out, 5×5 pad 2: 25,600 weights, so the weight
// transposes split over the cores too) and a ReLU over 2^17 values (split
// over the cores) against the float64 reference at 3, 16 and 32 workers:
// goexec.threads may set up to 32 on any machine, and with more workers
// than images most pieces hold one image.
func TestConvolutionPrecisionManyWorkers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{3, 16, 32} {
		runtime.GOMAXPROCS(procs)
		x := gauss(uint64(50+procs), 5, 32, 9, 9)
		precision(t, layertest.Precision{Seed: uint64(procs)}, `type: "Convolution" convolution_param { num_output: 32 pad: 2 kernel_size: 5
			weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.1 } }`, bl(x), 1)
		precision(t, layertest.Precision{Seed: uint64(procs)}, `type: "ReLU" relu_param { negative_slope: 0.1 }`, bl(gauss(uint64(60+procs), 4, 32, 32, 32)), 1)
	}
}

// TestConvolutionGradientAfterFewerWorkers runs Backward at 4 workers
// and then at 1 on the same layer: the second gradient must not pick up
// the per-piece accumulators the first run left behind (with one worker
// every image goes to piece 0).
func TestConvolutionGradientAfterFewerWorkers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	text := `type: "Convolution" convolution_param { num_output: 6 pad: 1 kernel_size: 3
		weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 } }`
	x := gauss(70, 12, 3, 9, 9)
	runtime.GOMAXPROCS(4)
	l, top := forward(t, text, bl(x), 1)
	copy(top[0].Diff(), gauss(71, top[0].Shape()...).Data())
	grads := func() []float64 {
		for _, b := range l.Blobs() {
			clear(b.Diff())
		}
		if err := l.Forward(bl(x), top); err != nil {
			t.Fatal(err)
		}
		if err := l.Backward(top, []bool{true}, bl(x)); err != nil {
			t.Fatal(err)
		}
		var g []float64
		for _, b := range l.Blobs() {
			g = append(g, b.Diff()...)
		}
		return g
	}
	want := grads()
	runtime.GOMAXPROCS(1)
	got := grads()
	for i := range want {
		if d := math.Abs(got[i] - want[i]); d > 1e-9*(1+math.Abs(want[i])) {
			t.Fatalf("parameter gradient %d at 1 worker after 4: %g, want %g", i, got[i], want[i])
		}
	}
}

func TestConvolutionTwoBottomsShareWeights(t *testing.T) {
	text := convCases()[1].text("Convolution")
	x1, x2 := gauss(50, 2, 3, 7, 6), gauss(51, 2, 3, 7, 6)
	l, top := forward(t, text, bl(x1, x2), 2)
	_, single := forward(t, text, bl(x2), 1) // same seed: same weights
	layertest.Near(t, "second top", top[1].Data(), single[0].Data(), 1e-12)
	gradCheck(t, layertest.Checker{}, text, bl(x1, x2), 2)
	_ = l
}

func TestConvolutionAxis(t *testing.T) {
	// axis 2: (A, B, C, H, W) with channels at 2 and num = A·B.
	x := gauss(60, 2, 2, 3, 5, 5)
	text := `type: "Convolution" convolution_param { num_output: 2 kernel_size: 3 axis: 2 weight_filler { type: "gaussian" std: 1 } }`
	l, top := forward(t, text, bl(x), 1)
	if want := []int{2, 2, 2, 3, 3}; !blob.ShapeEquals(top[0].Shape(), want) {
		t.Fatalf("top shape %v, want %v", top[0].Shape(), want)
	}
	want, _, _ := naiveConv(x.Data(), 4, 3, 5, 5, l.Blobs()[0].Data(), l.Blobs()[1].Data(), 2, 1, convGeom{3, 3, 1, 1, 0, 0, 1, 1})
	layertest.Near(t, "top", top[0].Data(), want, 1e-12)
}

func TestConvolutionErrors(t *testing.T) {
	x4 := gauss(1, 1, 4, 5, 5)
	for _, c := range []struct{ text, want string }{
		{`type: "Convolution" convolution_param { num_output: 2 }`, "kernel is required"},
		{`type: "Convolution" convolution_param { num_output: 2 kernel_size: 3 kernel_h: 3 kernel_w: 3 }`, "not both"},
		{`type: "Convolution" convolution_param { num_output: 2 kernel_h: 3 }`, "together"},
		{`type: "Convolution" convolution_param { num_output: 2 kernel_size: 3 kernel_size: 3 kernel_size: 3 }`, "only 2-D"},
		{`type: "Convolution" convolution_param { num_output: 3 kernel_size: 3 group: 2 }`, "multiple of group"},
		{`type: "Convolution" convolution_param { num_output: 2 kernel_size: 3 group: 3 }`, "multiple of group"},
		{`type: "Convolution" convolution_param { num_output: 0 kernel_size: 3 }`, "num_output"},
		{`type: "Convolution" convolution_param { num_output: 2 kernel_size: 0 }`, "nonzero"},
		{`type: "Convolution" convolution_param { num_output: 2 kernel_size: 7 }`, "empty output"},
	} {
		wantErr(t, c.text, setupErr(t, c.text, bl(x4), 1), c.want)
	}
	x5 := gauss(2, 1, 2, 3, 5, 5)
	text := `type: "Convolution" convolution_param { num_output: 2 kernel_size: 3 }`
	wantErr(t, "3 spatial axes", setupErr(t, text, bl(x5), 1), "only 2-D")
}

// TestDeconvolutionIsAdjoint checks <deconv(x), y> = <x, conv(y)> for a
// deconvolution and a convolution sharing weights, without bias.
func TestDeconvolutionIsAdjoint(t *testing.T) {
	for i, cc := range convCases() {
		if cc.grp > 1 && cc.c != cc.numOut {
			continue
		}
		param := cc.param + " bias_term: false"
		if !cc.bias {
			param = cc.param
		}
		conv := convCase{param: param}
		cl, ctop := setup(t, conv.text("Convolution"), bl(gauss(1, cc.n, cc.c, cc.h, cc.w)), 1)
		y := ctop[0] // conv output shape (n, numOut, oh, ow)
		// Deconvolution from numOut channels back to c channels.
		dparam := fmt.Sprintf("%s", param)
		dparam = replaceNumOutput(dparam, cc.c)
		dl, dtop := setup(t, convCase{param: dparam}.text("Deconvolution"), bl(y), 1)
		copy(dl.Blobs()[0].Data(), cl.Blobs()[0].Data())
		yv := gauss(uint64(70+i), y.Shape()...)
		copy(y.Data(), yv.Data())
		if err := dl.Forward(bl(y), dtop); err != nil {
			t.Fatal(err)
		}
		if !blob.ShapeEquals(dtop[0].Shape(), []int{cc.n, cc.c, cc.h, cc.w}) && cc.g.sh == 1 {
			t.Fatalf("case %d: deconv shape %v, want %v", i, dtop[0].Shape(), []int{cc.n, cc.c, cc.h, cc.w})
		}
		x := gauss(uint64(80+i), dtop[0].Shape()...)
		cl2, ctop2 := setup(t, conv.text("Convolution"), bl(x), 1)
		copy(cl2.Blobs()[0].Data(), cl.Blobs()[0].Data())
		if err := cl2.Forward(bl(x), ctop2); err != nil {
			t.Fatal(err)
		}
		lhs, rhs := dot(dtop[0].Data(), x.Data()), dot(y.Data(), ctop2[0].Data())
		if math.Abs(lhs-rhs) > 1e-9*(1+math.Abs(lhs)) {
			t.Errorf("case %d: <deconv(y), x> = %v, <y, conv(x)> = %v", i, lhs, rhs)
		}
	}
}

func replaceNumOutput(param string, n int) string {
	var rest string
	var old int
	if _, err := fmt.Sscanf(param, "num_output: %d", &old); err != nil {
		return param
	}
	rest = param[len(fmt.Sprintf("num_output: %d", old)):]
	return fmt.Sprintf("num_output: %d%s", n, rest)
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func TestDeconvolutionShapeAndHandComputed(t *testing.T) {
	// 1×1×2×2 input, 2×2 kernel of ones, stride 2: each pixel spreads to a
	// 2×2 block.
	x := blobOf([]int{1, 1, 2, 2}, 1, 2, 3, 4)
	_, top := forward(t, `type: "Deconvolution" convolution_param { num_output: 1 kernel_size: 2 stride: 2
		weight_filler { type: "constant" value: 1 } bias_filler { type: "constant" value: 0.5 } }`, bl(x), 1)
	if want := []int{1, 1, 4, 4}; !blob.ShapeEquals(top[0].Shape(), want) {
		t.Fatalf("shape %v, want %v", top[0].Shape(), want)
	}
	layertest.Near(t, "top", top[0].Data(), []float64{
		1.5, 1.5, 2.5, 2.5,
		1.5, 1.5, 2.5, 2.5,
		3.5, 3.5, 4.5, 4.5,
		3.5, 3.5, 4.5, 4.5}, 0)
}

func TestDeconvolutionGradientAndPrecision(t *testing.T) {
	for i, cc := range convCases() {
		x := gauss(uint64(90+i), cc.n, cc.c, cc.h, cc.w)
		gradCheck(t, layertest.Checker{Seed: uint64(i)}, cc.text("Deconvolution"), bl(x), 1)
		precision(t, layertest.Precision{Seed: uint64(i)}, cc.text("Deconvolution"), bl(gauss(uint64(95+i), cc.n, cc.c, cc.h, cc.w)), 1)
	}
}

// TestConvolutionFlippedDataGradient forces the flipped data gradient
// (conv(dY, flip(W)ᵀ), see flippedDataGrad) at stride-1 shapes the size
// rule gives col2im, and at odd ones: unpadded, asymmetric kernels and
// pads, a pad of kernel-1 (the flipped padding 0), groups, one-row images.
// The same-padded shapes of convCases and the precision tests take it
// without forcing.
func TestConvolutionFlippedDataGradient(t *testing.T) {
	defer func(m int) { flipMode = m }(flipMode)
	flipMode = flipAlways
	cases := []convCase{
		{"num_output: 3 kernel_size: 3", 2, 2, 5, 6, 3, 1, convGeom{3, 3, 1, 1, 0, 0, 1, 1}, true},
		{"num_output: 4 kernel_h: 3 kernel_w: 5 pad_h: 1 pad_w: 3 group: 2", 2, 4, 7, 9, 4, 2, convGeom{3, 5, 1, 1, 1, 3, 1, 1}, true},
		{"num_output: 2 kernel_h: 2 kernel_w: 3 pad_h: 1 pad_w: 0 bias_term: false", 3, 3, 5, 7, 2, 1, convGeom{2, 3, 1, 1, 1, 0, 1, 1}, false},
		{"num_output: 5 kernel_size: 3 pad: 2", 1, 2, 4, 4, 5, 1, convGeom{3, 3, 1, 1, 2, 2, 1, 1}, true},
		{"num_output: 3 kernel_h: 1 kernel_w: 3 pad_h: 0 pad_w: 1", 2, 3, 1, 8, 3, 1, convGeom{1, 3, 1, 1, 0, 1, 1, 1}, true},
	}
	for i, cc := range cases {
		x := gauss(uint64(70+i), cc.n, cc.c, cc.h, cc.w)
		gradCheck(t, layertest.Checker{Seed: uint64(70 + i)}, cc.text("Convolution"), bl(x), 1)
		precision(t, layertest.Precision{Seed: uint64(80 + i)}, cc.text("Convolution"), bl(x), 1)
	}
}

func TestConvolutionFlippedDataGradientChoice(t *testing.T) {
	for _, c := range []struct {
		param       string
		c, h, w     int
		wantFlipped bool
	}{
		{"num_output: 32 kernel_size: 5 pad: 2", 32, 16, 16, true}, // CIFAR-10 quick's conv2: same size
		{"num_output: 64 kernel_size: 3 pad: 1", 64, 56, 56, true}, // ResNet-50's 3×3
		{"num_output: 50 kernel_size: 5", 20, 12, 12, false},       // LeNet's conv2: 8×8 from 12×12
		{"num_output: 8 kernel_size: 3 stride: 2 pad: 1", 4, 9, 9, false},
		{"num_output: 8 kernel_size: 3 dilation: 2 pad: 2", 4, 9, 9, false},
		{"num_output: 8 kernel_size: 1", 4, 9, 9, false}, // 1×1: no im2col either way
	} {
		l, _ := forward(t, fmt.Sprintf(`type: "Convolution" convolution_param { %s }`, c.param), bl(gauss(1, 1, c.c, c.h, c.w)), 1)
		if got := l.(*convolution[float64]).flippedDataGrad(); got != c.wantFlipped {
			t.Errorf("%s on %d×%d×%d: flippedDataGrad %v, want %v", c.param, c.c, c.h, c.w, got, c.wantFlipped)
		}
	}
}
