//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"unsafe"
)

// dev is the GPU the tests run on; nil when the machine has none (then
// every test skips with noGPU as its reason).
var (
	dev   *Device
	noGPU string
)

func TestMain(m *testing.M) {
	var err error
	if dev, err = Open(0); err != nil {
		noGPU = fmt.Sprintf("no usable CUDA device, GPU tests skipped: %v", err)
		fmt.Fprintln(os.Stderr, "kernels/cuda:", noGPU)
	} else {
		fmt.Fprintf(os.Stderr, "kernels/cuda: testing on %s (%s), driver %d\n", dev.Name(), dev.Model(), DriverVersion())
	}
	os.Exit(m.Run())
}

func need(t *testing.T) {
	t.Helper()
	if dev == nil {
		t.Skip(noGPU)
	}
}

// up copies x to new device memory; the test frees it at cleanup.
func up[T Float](t *testing.T, x []T) Ptr {
	t.Helper()
	p, err := dev.Alloc(len(x)*Size[T]() + 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Free(p) })
	if len(x) > 0 {
		if err := dev.Upload(p, unsafe.Pointer(&x[0]), len(x)*Size[T]()); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// upInt32 copies int32 values (classes, masks) to new device memory; the
// test frees it at cleanup.
func upInt32(t *testing.T, x []int32) Ptr {
	t.Helper()
	p, err := dev.Alloc(4*len(x) + 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Free(p) })
	if len(x) > 0 {
		if err := dev.Upload(p, unsafe.Pointer(&x[0]), 4*len(x)); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// poisoned is n NaNs on the device: an output slot the kernel must write.
func poisoned[T Float](t *testing.T, n int) Ptr {
	x := make([]T, n)
	for i := range x {
		x[i] = T(math.NaN())
	}
	return up(t, x)
}

func down[T Float](t *testing.T, p Ptr, n int) []T {
	t.Helper()
	x := make([]T, n)
	if n > 0 {
		if err := dev.Download(unsafe.Pointer(&x[0]), p, n*Size[T]()); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

func randn[T Float](r *rand.Rand, n int) []T {
	x := make([]T, n)
	for i := range x {
		x[i] = T(r.NormFloat64())
	}
	return x
}

func f64s[T Float](x []T) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// tol is the relative error a result of type T may have against the
// float64 reference: ‖out − ref‖ / ‖ref‖.
func tol[T Float]() float64 {
	if isF64[T]() {
		return 1e-12
	}
	return 1e-5
}

func check[T Float](t *testing.T, what string, got []T, want []float64) {
	t.Helper()
	checkTol(t, what, got, want, tol[T]())
}

// checkTol is check with tolerance tl; it returns the relative error.
func checkTol[T Float](t *testing.T, what string, got []T, want []float64, tl float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var num, den float64
	for i, g := range got {
		if math.IsNaN(float64(g)) {
			t.Fatalf("%s: element %d is NaN (not written?)", what, i)
		}
		d := float64(g) - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	if den == 0 {
		den = 1
	}
	e := math.Sqrt(num / den)
	if e > tl {
		t.Fatalf("%s: relative error %.3g > %.3g", what, e, tl)
	}
	return e
}

// forTypes runs a kernel test in float32 and float64, as subtests, on
// the GPU (skipping without one).
func forTypes(t *testing.T, f32, f64 func(*testing.T)) {
	need(t)
	t.Run("float32", f32)
	t.Run("float64", f64)
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// gemmMode is one way the device computes GEMMs: cuBLAS or GoCaffe's own
// kernels, with or without TF32 tensor cores for float32.
type gemmMode struct {
	name       string
	blas, tf32 bool
}

var gemmModes = []gemmMode{{"own", false, false}, {"cuBLAS", true, false}, {"own TF32", false, true}, {"cuBLAS TF32", true, true}}

// tf32Tol is the relative error a TF32 GEMM may have (inputs rounded to
// 10-bit mantissas, 2^-11 each); tf32Min is the least error its largest
// case must show, so that a GEMM still running in full fp32 fails.
const tf32Tol, tf32Min = 3e-3, 1e-5

// inGemmModes runs fn for float32 and float64 in every GEMM mode (a mode
// without cuBLAS on this node skips with the loader's line), restoring
// the device's defaults after each.
func inGemmModes(t *testing.T, f32 func(*testing.T, gemmMode), f64 func(*testing.T, gemmMode)) {
	need(t)
	for _, m := range gemmModes {
		t.Run(m.name, func(t *testing.T) {
			t.Cleanup(func() { dev.UseBLAS(true); ok(t, dev.SetTF32(false)) })
			if dev.UseBLAS(m.blas) != m.blas {
				t.Skip(dev.BLAS())
			}
			ok(t, dev.SetTF32(m.tf32))
			f32(t, m)
			f64(t, m) // float64 never uses TF32: the mode's flag must not change it
		})
	}
}

// gemmTol is the tolerance of T's GEMMs in mode m.
func gemmTol[T Float](m gemmMode) float64 {
	if m.tf32 && !isF64[T]() {
		return tf32Tol
	}
	return tol[T]()
}

// tf32Check fails GoCaffe's float32 TF32 kernel when its largest error
// stayed at fp32's (the GEMMs did not take the TF32 path). cuBLAS in TF32
// mode is not held to it: it may pick an fp32 kernel (for unaligned
// leading dimensions, say), which is allowed.
func tf32Check[T Float](t *testing.T, m gemmMode, worst float64) {
	t.Helper()
	if m.tf32 && !m.blas && !isF64[T]() && worst < tf32Min {
		t.Fatalf("TF32 on, yet the worst relative error is %.3g < %.3g: the GEMMs ran in full fp32", worst, tf32Min)
	}
}

// TestGemm checks GemmBatchSum (batch 1: a plain GEMM, cuBLAS when used;
// batch 3 and 50: GoCaffe's summing kernel, split over the batch and not)
// in every GEMM mode.
func TestGemm(t *testing.T) {
	inGemmModes(t, testGemm[float32], testGemm[float64])
}

func testGemm[T Float](t *testing.T, mode gemmMode) {
	worst := 0.0
	r := rand.New(rand.NewPCG(1, 2))
	o := Ops[T]{dev}
	type gemmCase struct {
		s       [3]int
		batch   int
		noSplit bool // one gemm launch looping over the batch, not gemm_split + gemm_split_sum
	}
	var cases []gemmCase
	for _, s := range [][3]int{{1, 1, 1}, {37, 53, 29}, {64, 64, 16}, {130, 70, 300}, {5, 200, 3}, {500, 10, 800}, {33, 20, 1000}, {64, 100, 997}} {
		cases = append(cases, gemmCase{s, 1, false}, gemmCase{s, 3, false}, gemmCase{s, 3, true})
	}
	// Splits of unequal image counts (50 images over 44 splits on an H100).
	cases = append(cases, gemmCase{[3]int{130, 70, 30}, 50, false})
	t.Cleanup(func() { dev.noSplit = false })
	// A plain GEMM with few tiles and a long k runs as a sum over slices of
	// k (gemmKSplits): {500, 10, 800} in 10, {130, 70, 300} in 4,
	// {33, 20, 1000} in 10; 997 is prime and runs whole.
	for _, tc := range cases {
		s, batch := tc.s, tc.batch
		dev.noSplit = tc.noSplit
		for tr := 0; tr < 4; tr++ {
			ta, tb := tr&1 != 0, tr&2 != 0
			m, n, k := s[0], s[1], s[2]
			// op(a) m×k: stored m×k (lda = k+3) or k×m (lda = m+1).
			ar, ac := m, k+3
			if ta {
				ar, ac = k, m+1
			}
			br, bc := k, n+2
			if tb {
				br, bc = n, k+5
			}
			a, b := randn[T](r, batch*ar*ac), randn[T](r, batch*br*bc)
			c := randn[T](r, m*(n+1))
			alpha, beta := T(0.7), T(-0.3)
			ref := f64s(c)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					var s float64
					for p := 0; p < batch; p++ {
						ap, bp := a[p*ar*ac:], b[p*br*bc:]
						for l := 0; l < k; l++ {
							var av, bv T
							if ta {
								av = ap[l*ac+i]
							} else {
								av = ap[i*ac+l]
							}
							if tb {
								bv = bp[j*bc+l]
							} else {
								bv = bp[l*bc+j]
							}
							s += float64(av) * float64(bv)
						}
					}
					ref[i*(n+1)+j] = float64(alpha)*s + float64(beta)*ref[i*(n+1)+j]
				}
			}
			dc := up(t, c)
			ok(t, o.GemmBatchSum(ta, tb, batch, m, n, k, alpha, up(t, a), ac, ar*ac, up(t, b), bc, br*bc, beta, dc, n+1))
			worst = max(worst, checkTol(t, fmt.Sprintf("gemm %T %v ta=%v tb=%v batch %d (splits %d)", alpha, s, ta, tb, batch, dev.gemmSplits(batch, m, n, Size[T]())), down[T](t, dc, len(c)), ref, gemmTol[T](mode)))
		}
	}
	tf32Check[T](t, mode, worst)
	// beta = 0 overwrites NaN.
	dc := poisoned[T](t, 6)
	ok(t, o.Gemm(false, false, 2, 3, 1, 1, up(t, []T{1, 2}), 1, up(t, []T{1, 2, 3}), 3, 0, dc, 3))
	check(t, "gemm beta 0", down[T](t, dc, 6), []float64{1, 2, 3, 2, 4, 6})
}

func TestIm2col(t *testing.T) {
	forTypes(t, testIm2col[float32], testIm2col[float64])
}

func testIm2col[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	o := Ops[T]{dev}
	for _, tc := range []struct {
		c, h, w int
		g       Geom
	}{
		{1, 28, 28, Geom{5, 5, 1, 1, 0, 0, 1, 1}},
		{3, 7, 9, Geom{3, 3, 2, 2, 1, 1, 1, 1}},
		{2, 11, 6, Geom{3, 2, 1, 2, 2, 1, 2, 1}},
		{5, 13, 13, Geom{1, 1, 1, 1, 0, 0, 1, 1}},
	} {
		g := tc.g
		oh := (tc.h+2*g.PH-(g.DH*(g.KH-1)+1))/g.SH + 1
		ow := (tc.w+2*g.PW-(g.DW*(g.KW-1)+1))/g.SW + 1
		im := randn[T](r, tc.c*tc.h*tc.w)
		ncol := tc.c * g.KH * g.KW * oh * ow
		ref := make([]float64, ncol)
		for ch := 0; ch < tc.c; ch++ {
			for ky := 0; ky < g.KH; ky++ {
				for kx := 0; kx < g.KW; kx++ {
					row := (ch*g.KH+ky)*g.KW + kx
					for oy := 0; oy < oh; oy++ {
						for ox := 0; ox < ow; ox++ {
							y, x := oy*g.SH-g.PH+ky*g.DH, ox*g.SW-g.PW+kx*g.DW
							if y >= 0 && x >= 0 && y < tc.h && x < tc.w {
								ref[row*oh*ow+oy*ow+ox] = float64(im[(ch*tc.h+y)*tc.w+x])
							}
						}
					}
				}
			}
		}
		col := poisoned[T](t, ncol)
		ok(t, o.Im2col(up(t, im), tc.c, tc.h, tc.w, g, oh, ow, col))
		check(t, fmt.Sprintf("im2col %+v", tc), down[T](t, col, ncol), ref)

		// col2im is the adjoint: <im2col(x), y> = <x, col2im(y)>, and
		// its result equals the scatter-add reference.
		cy := randn[T](r, ncol)
		refIm := make([]float64, len(im))
		for ch := 0; ch < tc.c; ch++ {
			for ky := 0; ky < g.KH; ky++ {
				for kx := 0; kx < g.KW; kx++ {
					row := (ch*g.KH+ky)*g.KW + kx
					for oy := 0; oy < oh; oy++ {
						for ox := 0; ox < ow; ox++ {
							y, x := oy*g.SH-g.PH+ky*g.DH, ox*g.SW-g.PW+kx*g.DW
							if y >= 0 && x >= 0 && y < tc.h && x < tc.w {
								refIm[(ch*tc.h+y)*tc.w+x] += float64(cy[row*oh*ow+oy*ow+ox])
							}
						}
					}
				}
			}
		}
		dim := poisoned[T](t, len(im))
		ok(t, o.Col2im(up(t, cy), tc.c, tc.h, tc.w, g, oh, ow, dim))
		check(t, fmt.Sprintf("col2im %+v", tc), down[T](t, dim, len(im)), refIm)
	}
}

func TestElementwise(t *testing.T) {
	forTypes(t, testElementwise[float32], testElementwise[float64])
}

func testElementwise[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	o := Ops[T]{dev}
	for _, n := range []int{1, 255, 257, 100003} {
		x, y := randn[T](r, n), randn[T](r, n)
		dx, dy := up(t, x), up(t, y)
		want := f64s(y)
		ok(t, o.Axpy(n, 0.5, dx, dy))
		for i := range want {
			want[i] += 0.5 * float64(x[i])
		}
		ok(t, o.Axpby(n, -2, dx, 0.25, dy))
		for i := range want {
			want[i] = -2*float64(x[i]) + 0.25*want[i]
		}
		ok(t, o.Scal(n, 3, dy))
		ok(t, o.Shift(n, -1, dy))
		for i := range want {
			want[i] = want[i]*3 - 1
		}
		ok(t, o.Mul(n, dy, dx, dy))
		for i := range want {
			want[i] *= float64(x[i])
		}
		check(t, fmt.Sprintf("axpy/axpby/scal/shift/mul %d", n), down[T](t, dy, n), want)

		var dot, sum float64
		for i := range want {
			dot += want[i] * float64(x[i])
			sum += want[i]
		}
		got, err := o.Dot(n, dy, dx)
		ok(t, err)
		check(t, "dot", []T{got}, []float64{dot})
		got, err = o.Dot(n, dy, 0)
		ok(t, err)
		check(t, "sum", []T{got}, []float64{sum})

		f := poisoned[T](t, n)
		ok(t, o.Fill(f, n, 2.5))
		ok(t, o.Copy(dx, f, n))
		w := make([]float64, n)
		for i := range w {
			w[i] = 2.5
		}
		check(t, "fill/copy", down[T](t, dx, n), w)
	}
}

func TestBiasReLU(t *testing.T) {
	forTypes(t, testBiasReLU[float32], testBiasReLU[float64])
}

func testBiasReLU[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	o := Ops[T]{dev}
	for _, s := range [][3]int{{1, 1, 1}, {3, 7, 5}, {64, 20, 576}, {9, 500, 1}, {37, 3, 100}} {
		outer, ch, inner := s[0], s[1], s[2]
		n := outer * ch * inner
		y, bias := randn[T](r, n), randn[T](r, ch)
		want := f64s(y)
		for i := range want {
			want[i] += float64(bias[(i/inner)%ch])
		}
		dy := up(t, y)
		ok(t, o.AddBias(dy, up(t, bias), outer, ch, inner))
		check(t, fmt.Sprintf("add_bias %v", s), down[T](t, dy, n), want)

		db0 := randn[T](r, ch)
		wdb := f64s(db0)
		for i, v := range y {
			wdb[(i/inner)%ch] += float64(v)
		}
		for _, noSplit := range []bool{false, true} {
			dev.noSplit = noSplit
			db := up(t, db0)
			ok(t, o.BiasGrad(up(t, y), db, outer, ch, inner))
			dev.noSplit = false
			check(t, fmt.Sprintf("bias_grad %v (splits %d)", s, dev.biasSplits(outer, ch, inner)), down[T](t, db, ch), wdb)
		}

		for _, slope := range []T{0, 0.1} {
			x, g := randn[T](r, n), randn[T](r, n)
			wy, wdx := make([]float64, n), make([]float64, n)
			for i := range x {
				if x[i] > 0 {
					wy[i], wdx[i] = float64(x[i]), float64(g[i])
				} else {
					wy[i], wdx[i] = float64(slope)*float64(x[i]), float64(slope)*float64(g[i])
				}
			}
			dxp, out, gd := up(t, x), poisoned[T](t, n), poisoned[T](t, n)
			ok(t, o.ReLUForward(n, dxp, out, slope))
			ok(t, o.ReLUBackward(n, dxp, up(t, g), gd, slope))
			check(t, "relu fwd", down[T](t, out, n), wy)
			check(t, "relu bwd", down[T](t, gd, n), wdx)

			// add_bias_relu in place equals add_bias then relu_fwd in
			// place, bit for bit.
			fused, unfused, bp := up(t, x), up(t, x), up(t, bias)
			ok(t, o.AddBiasReLU(fused, bp, outer, ch, inner, slope))
			ok(t, o.AddBias(unfused, bp, outer, ch, inner))
			ok(t, o.ReLUForward(n, unfused, unfused, slope))
			fv, uv := down[T](t, fused, n), down[T](t, unfused, n)
			for i := range fv {
				if fv[i] != uv[i] {
					t.Fatalf("add_bias_relu %v slope %g: element %d is %g, add_bias then relu_fwd give %g", s, float64(slope), i, fv[i], uv[i])
				}
			}
			wf := make([]float64, n)
			for i := range x {
				v := float64(x[i]) + float64(bias[(i/inner)%ch])
				if v <= 0 {
					v *= float64(slope)
				}
				wf[i] = v
			}
			check(t, fmt.Sprintf("add_bias_relu %v slope %g", s, float64(slope)), fv, wf)
		}
	}
}

func TestPooling(t *testing.T) {
	forTypes(t, testPooling[float32], testPooling[float64])
}

func testPooling[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	o := Ops[T]{dev}
	for _, g := range []Pool{
		{H: 24, W: 24, KH: 2, KW: 2, SH: 2, SW: 2},               // LeNet
		{H: 32, W: 32, KH: 3, KW: 3, SH: 2, SW: 2},               // CIFAR-10 quick (ceil mode)
		{H: 7, W: 9, KH: 3, KW: 2, SH: 2, SW: 1, PH: 1, PW: 1},   // odd, padded
		{H: 13, W: 13, KH: 3, KW: 3, SH: 2, SW: 2, PH: 0, PW: 0}, // AlexNet
		{H: 5, W: 5, KH: 5, KW: 5, SH: 1, SW: 1},                 // global
		{H: 25, W: 23, KH: 2, KW: 2, SH: 2, SW: 2},               // tiling windows, the last ones clipped
		{H: 12, W: 9, KH: 3, KW: 3, SH: 3, SW: 3},                // tiling 3×3
	} {
		// Caffe's output size: ceil((h + 2p − k)/s) + 1, the last window
		// starting inside the padded plane.
		g.OH = int(math.Ceil(float64(g.H+2*g.PH-g.KH)/float64(g.SH))) + 1
		g.OW = int(math.Ceil(float64(g.W+2*g.PW-g.KW)/float64(g.SW))) + 1
		if g.PH > 0 && (g.OH-1)*g.SH >= g.H+g.PH {
			g.OH--
		}
		if g.PW > 0 && (g.OW-1)*g.SW >= g.W+g.PW {
			g.OW--
		}
		planes := 6
		x := randn[T](r, planes*g.H*g.W)
		dy := randn[T](r, planes*g.OH*g.OW)
		wy := make([]float64, planes*g.OH*g.OW)
		wa := make([]float64, len(wy))
		wdx := make([]float64, len(x))
		wda := make([]float64, len(x))
		for p := 0; p < planes; p++ {
			for oy := 0; oy < g.OH; oy++ {
				for ox := 0; ox < g.OW; ox++ {
					o := (p*g.OH+oy)*g.OW + ox
					y0, x0 := oy*g.SH-g.PH, ox*g.SW-g.PW
					y1, x1 := min(y0+g.KH, g.H+g.PH), min(x0+g.KW, g.W+g.PW)
					size := float64((y1 - y0) * (x1 - x0))
					y1, x1 = min(y1, g.H), min(x1, g.W)
					y0, x0 = max(y0, 0), max(x0, 0)
					best, arg := -math.MaxFloat32, -1
					var s float64
					for yy := y0; yy < y1; yy++ {
						for xx := x0; xx < x1; xx++ {
							v := float64(x[(p*g.H+yy)*g.W+xx])
							s += v
							if v > best {
								best, arg = v, yy*g.W+xx
							}
						}
					}
					wy[o], wa[o] = best, s/size
					if arg >= 0 {
						wdx[p*g.H*g.W+arg] += float64(dy[o])
					}
					for yy := y0; yy < y1; yy++ {
						for xx := x0; xx < x1; xx++ {
							wda[(p*g.H+yy)*g.W+xx] += float64(dy[o]) / size
						}
					}
				}
			}
		}
		dx, y := up(t, x), poisoned[T](t, len(wy))
		mask, err := dev.Alloc(4 * len(wy))
		ok(t, err)
		t.Cleanup(func() { dev.Free(mask) })
		ok(t, o.MaxPoolForward(dx, planes, g, y, mask))
		check(t, fmt.Sprintf("maxpool fwd %+v", g), down[T](t, y, len(wy)), wy)
		gx := poisoned[T](t, len(x))
		ok(t, o.MaxPoolBackward(up(t, dy), mask, planes, g, gx))
		check(t, fmt.Sprintf("maxpool bwd %+v", g), down[T](t, gx, len(x)), wdx)
		ok(t, o.AvePoolForward(dx, planes, g, y))
		check(t, fmt.Sprintf("avepool fwd %+v", g), down[T](t, y, len(wy)), wa)
		gx = poisoned[T](t, len(x))
		ok(t, o.AvePoolBackward(up(t, dy), planes, g, gx))
		check(t, fmt.Sprintf("avepool bwd %+v", g), down[T](t, gx, len(x)), wda)
	}
}

func TestSoftmaxLossAccuracy(t *testing.T) {
	forTypes(t, testSoftmax[float32], testSoftmax[float64])
}

func testSoftmax[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	o := Ops[T]{dev}
	for _, s := range [][3]int{{64, 10, 1}, {3, 7, 5}, {1, 1000, 1}, {100, 10, 1}} {
		outer, ch, inner := s[0], s[1], s[2]
		n := outer * ch * inner
		x := randn[T](r, n)
		for i := range x {
			x[i] *= 4
		}
		label := make([]T, outer*inner)
		for i := range label {
			label[i] = T(r.IntN(ch))
		}
		ignore := -1
		if inner > 1 {
			ignore = int(label[0]) // some positions ignored
		}
		prob := make([]float64, n)
		for o := 0; o < outer; o++ {
			for in := 0; in < inner; in++ {
				m := math.Inf(-1)
				for c := 0; c < ch; c++ {
					m = math.Max(m, float64(x[(o*ch+c)*inner+in]))
				}
				var z float64
				for c := 0; c < ch; c++ {
					z += math.Exp(float64(x[(o*ch+c)*inner+in]) - m)
				}
				for c := 0; c < ch; c++ {
					prob[(o*ch+c)*inner+in] = math.Exp(float64(x[(o*ch+c)*inner+in])-m) / z
				}
			}
		}
		dx, dp := up(t, x), poisoned[T](t, n)
		ok(t, o.SoftmaxForward(dx, dp, outer, ch, inner))
		check(t, fmt.Sprintf("softmax fwd %v", s), down[T](t, dp, n), prob)

		g := randn[T](r, n)
		wg := make([]float64, n)
		for o := 0; o < outer; o++ {
			for in := 0; in < inner; in++ {
				var d float64
				for c := 0; c < ch; c++ {
					i := (o*ch+c)*inner + in
					d += float64(g[i]) * prob[i]
				}
				for c := 0; c < ch; c++ {
					i := (o*ch+c)*inner + in
					wg[i] = (float64(g[i]) - d) * prob[i]
				}
			}
		}
		dg := up(t, g)
		ok(t, o.SoftmaxBackward(dp, dg, dg, outer, ch, inner)) // in place
		check(t, fmt.Sprintf("softmax bwd %v", s), down[T](t, dg, n), wg)

		var loss float64
		var count, hits int
		wdx := make([]float64, n)
		for o := 0; o < outer; o++ {
			for in := 0; in < inner; in++ {
				l := int(label[o*inner+in])
				if l == ignore {
					continue
				}
				count++
				loss -= math.Log(math.Max(prob[(o*ch+l)*inner+in], 1.175494351e-38))
				above := 0
				for c := 0; c < ch; c++ {
					i := (o*ch+c)*inner + in
					v := 0.0
					if c == l {
						v = 1
					}
					wdx[i] = (prob[i] - v) * 0.5
					if c != l && x[i] >= x[(o*ch+l)*inner+in] { // Caffe's rule: a tie counts against
						above++
					}
				}
				if above < 1 {
					hits++
				}
			}
		}
		cls := make([]int32, len(label)) // the int32 classes the kernels take, −1 where ignored
		for i, l := range label {
			cls[i] = int32(l)
			if int(l) == ignore {
				cls[i] = -1
			}
		}
		dcls := upInt32(t, cls)
		lossP, gx := poisoned[T](t, 1), poisoned[T](t, n)
		ok(t, o.SoftmaxLossForward(dp, dcls, outer, ch, inner, float64(count), lossP))
		ok(t, o.SoftmaxLossBackward(dp, dcls, outer, ch, inner, 0.5, gx))
		check(t, fmt.Sprintf("softmax loss %v", s), down[T](t, lossP, 1), []float64{loss / float64(count)})
		check(t, fmt.Sprintf("softmax loss grad %v", s), down[T](t, gx, n), wdx)
		acc := poisoned[T](t, 1)
		ok(t, o.AccuracyCls(dx, dcls, outer, ch, inner, 1, acc, 0))
		check(t, fmt.Sprintf("accuracy %v", s), down[T](t, acc, 1), []float64{float64(hits) / float64(count)})
	}
}

func TestSGDMomentum(t *testing.T) {
	forTypes(t, testSGD[float32], testSGD[float64])
}

func testSGD[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	o := Ops[T]{dev}
	n := 431080 // LeNet's parameters
	diff, data, hist := randn[T](r, n), randn[T](r, n), randn[T](r, n)
	norm, decay, lr, mom := T(1), T(0.0005), T(0.01), T(0.9)
	wd, wh := make([]float64, n), make([]float64, n)
	for i := range diff {
		g := float64(norm)*float64(diff[i]) + float64(decay)*float64(data[i])
		h := float64(lr)*g + float64(mom)*float64(hist[i])
		wh[i], wd[i] = h, float64(data[i])-h
	}
	dd, dw, dh := up(t, diff), up(t, data), up(t, hist)
	ok(t, o.SGDMomentum(n, dd, dw, dh, norm, decay, lr, mom))
	check(t, "sgd data", down[T](t, dw, n), wd)
	check(t, "sgd hist", down[T](t, dh, n), wh)
	check(t, "sgd diff", down[T](t, dd, n), wh)
}

// TestGraphReplay captures y = 2·(y + x) and replays it: the graph must
// give what running the operations directly gives, at each replay.
func TestGraphReplay(t *testing.T) {
	need(t)
	r := rand.New(rand.NewPCG(15, 16))
	o := Ops[float32]{dev}
	n := 1000
	x, y := randn[float32](r, n), randn[float32](r, n)
	dx, dy := up(t, x), up(t, y)
	g, err := dev.Capture(func() error {
		if err := o.Axpy(n, 1, dx, dy); err != nil {
			return err
		}
		return o.Scal(n, 2, dy)
	})
	ok(t, err)
	defer g.Destroy()
	if g.Nodes() != 2 {
		t.Fatalf("graph has %d nodes, want 2", g.Nodes())
	}
	// Capture ran nothing.
	check(t, "after capture", down[float32](t, dy, n), f64s(y))
	want := f64s(y)
	for rep := 0; rep < 3; rep++ {
		ok(t, g.Launch())
		for i := range want {
			want[i] = 2 * (want[i] + float64(x[i]))
		}
		check(t, fmt.Sprintf("replay %d", rep), down[float32](t, dy, n), want)
	}
}

// TestGemmBatched checks the strided batched GEMM (one matrix of c per
// grid z) against a float64 reference at odd shapes, every transposition,
// with a shared a (strideA 0) and gaps between the c matrices, which must
// keep their values.
func TestGemmBatched(t *testing.T) {
	inGemmModes(t, testGemmBatched[float32], testGemmBatched[float64])
}

func testGemmBatched[T Float](t *testing.T, mode gemmMode) {
	worst := 0.0
	r := rand.New(rand.NewPCG(3, 4))
	o := Ops[T]{dev}
	for _, s := range [][4]int{{1, 1, 1, 1}, {5, 37, 53, 29}, {3, 130, 70, 65}, {64, 20, 576, 25}} {
		batch, m, n, k := s[0], s[1], s[2], s[3]
		for tr := 0; tr < 8; tr++ {
			ta, tb, shared := tr&1 != 0, tr&2 != 0, tr&4 != 0
			lda, ldb, ldc := k+1, n+2, n+3
			if ta {
				lda = m + 1
			}
			if tb {
				ldb = k + 2
			}
			sa, sb, sc := max(m, k)*lda+3, max(n, k)*ldb+1, m*ldc+5
			if shared {
				sa = 0
			}
			a, b, c := randn[T](r, batch*sa+max(m, k)*lda), randn[T](r, batch*sb), randn[T](r, batch*sc)
			alpha, beta := T(0.7), T(-0.3)
			ref := f64s(c)
			for p := 0; p < batch; p++ {
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						var sum float64
						for l := 0; l < k; l++ {
							av := a[p*sa+i*lda+l]
							if ta {
								av = a[p*sa+l*lda+i]
							}
							bv := b[p*sb+l*ldb+j]
							if tb {
								bv = b[p*sb+j*ldb+l]
							}
							sum += float64(av) * float64(bv)
						}
						o := p*sc + i*ldc + j
						ref[o] = float64(alpha)*sum + float64(beta)*ref[o]
					}
				}
			}
			dc := up(t, c)
			ok(t, o.GemmBatched(ta, tb, batch, m, n, k, alpha, up(t, a), lda, sa, up(t, b), ldb, sb, beta, dc, ldc, sc))
			worst = max(worst, checkTol(t, fmt.Sprintf("gemm_batched %T %v ta=%v tb=%v shared a=%v", alpha, s, ta, tb, shared), down[T](t, dc, len(c)), ref, gemmTol[T](mode)))
		}
	}
	tf32Check[T](t, mode, worst)
}

// Uploads return before their copy runs: the source may be overwritten at
// once, more uploads than there are slots land in order, and an upload
// while the stream records a graph is refused (the capture fails, and the
// stream works on).
func TestUploadAsync(t *testing.T) {
	need(t)
	n := 1 << 16
	p := up(t, make([]float32, 8*n))
	src := make([]float32, n)
	for k := 0; k < 8; k++ {
		for i := range src {
			src[i] = float32(k*n + i)
		}
		ok(t, dev.Upload(At[float32](p, k*n), unsafe.Pointer(&src[0]), 4*n))
	}
	clear(src)
	for i, v := range down[float32](t, p, 8*n) {
		if v != float32(i) {
			t.Fatalf("element %d is %g after the uploads, want %d", i, v, i)
		}
	}
	if _, err := dev.Capture(func() error { return dev.Upload(p, unsafe.Pointer(&src[0]), 4) }); err == nil {
		t.Fatal("an upload while capturing was accepted")
	}
	ok(t, dev.Upload(p, unsafe.Pointer(&src[0]), 4))
	if v := down[float32](t, p, 1)[0]; v != 0 {
		t.Fatalf("upload after a failed capture: %g, want 0", v)
	}
}

// TestSoftmaxLossAccFused checks the fused softmax_loss_acc against
// softmax_fwd then softmax_loss_fwd (bit for bit: the same operations in
// the same order) and the accuracy against the host's count, with ties
// (scores on a coarse grid), a NaN score, ignored positions (class −1),
// top-1 and top-3, and more positions than the block has threads.
func TestSoftmaxLossAccFused(t *testing.T) {
	forTypes(t, testSoftmaxLossAcc[float32], testSoftmaxLossAcc[float64])
}

func testSoftmaxLossAcc[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	o := Ops[T]{dev}
	for _, s := range [][3]int{{64, 10, 1}, {3, 7, 5}, {1, 1000, 1}, {300, 10, 1}, {2, 5, 700}} {
		outer, ch, inner := s[0], s[1], s[2]
		n, npos := outer*ch*inner, outer*inner
		x := randn[T](r, n)
		for i := range x {
			x[i] = T(math.Round(float64(x[i])*2) / 2) // ties
		}
		x[n/2] = T(math.NaN())
		cls := make([]int32, npos)
		for i := range cls {
			cls[i] = int32(r.IntN(ch))
			if i%7 == 3 {
				cls[i] = -1
			}
		}
		dcls := upInt32(t, cls)
		dx := up(t, x)
		norm := float64(npos) + 0.5
		for _, topK := range []int{0, 1, 3} {
			// The unfused reference on the device.
			p1, l1 := poisoned[T](t, n), poisoned[T](t, 1)
			ok(t, o.SoftmaxForward(dx, p1, outer, ch, inner))
			ok(t, o.SoftmaxLossForward(p1, dcls, outer, ch, inner, norm, l1))
			p2, l2, acc := poisoned[T](t, n), poisoned[T](t, 1), poisoned[T](t, 1)
			ok(t, o.SoftmaxLossAccuracy(dx, p2, dcls, outer, ch, inner, norm, l2, topK, acc))
			what := fmt.Sprintf("softmax_loss_acc %T %v top %d", x[0], s, topK)
			g2, g1 := down[T](t, p2, n), down[T](t, p1, n)
			for i := range g2 {
				if g2[i] != g1[i] && !(g2[i] != g2[i] && g1[i] != g1[i]) {
					t.Fatalf("%s: prob[%d] = %g, softmax_fwd gives %g", what, i, g2[i], g1[i])
				}
			}
			if a, b := down[T](t, l2, 1)[0], down[T](t, l1, 1)[0]; a != b && !(a != a && b != b) {
				t.Fatalf("%s: loss %g, softmax_loss_fwd gives %g", what, a, b)
			}
			got := down[T](t, acc, 1)[0]
			if topK == 0 {
				if !math.IsNaN(float64(got)) {
					t.Fatalf("%s: accuracy written (%g) without top_k", what, got)
				}
				continue
			}
			hits, count := 0, 0
			for i, c := range cls {
				if c < 0 {
					continue
				}
				count++
				oo, in := i/inner, i%inner
				truth, better := x[(oo*ch+int(c))*inner+in], -1
				if truth != truth {
					better = topK
				}
				for k := 0; k < ch; k++ {
					if v := x[(oo*ch+k)*inner+in]; v >= truth || v != v {
						better++
					}
				}
				if better < topK {
					hits++
				}
			}
			if want := T(float64(hits) / float64(count)); got != want {
				t.Fatalf("%s: accuracy %g, want %g (%d of %d)", what, got, want, hits, count)
			}
		}
	}
}

// MaxPoolBackward's thread-per-window kernel is for windows that tile the
// plane, and only those.
func TestPoolTiles(t *testing.T) {
	for _, c := range []struct {
		g    Pool
		want bool
	}{
		{Pool{H: 24, W: 24, OH: 12, OW: 12, KH: 2, KW: 2, SH: 2, SW: 2}, true},
		{Pool{H: 25, W: 23, OH: 13, OW: 12, KH: 2, KW: 2, SH: 2, SW: 2}, true},
		{Pool{H: 25, W: 24, OH: 12, OW: 12, KH: 2, KW: 2, SH: 2, SW: 2}, false}, // floor mode: the last row in no window
		{Pool{H: 32, W: 32, OH: 16, OW: 16, KH: 3, KW: 3, SH: 2, SW: 2}, false}, // overlapping
		{Pool{H: 24, W: 24, OH: 13, OW: 13, KH: 2, KW: 2, SH: 2, SW: 2, PH: 1, PW: 1}, false},
	} {
		if got := c.g.tiles(); got != c.want {
			t.Errorf("%+v: tiles() = %v, want %v", c.g, got, c.want)
		}
	}
}

// Reductions over more than one block's share (AlexNet's 61 M weights)
// spread over up to 256 blocks and sum their partial sums in block order:
// the CPU's value within float rounding, the same bits on every run, and
// the count of finished blocks back at zero for the next launch.
func TestGridReductions(t *testing.T) {
	need(t)
	o := Ops[float32]{dev}
	for _, n := range []int{1, 65535, 65537, 3_000_001, 40_000_000} {
		r := rand.New(rand.NewPCG(uint64(n), 3))
		x := make([]float32, n)
		var sum, sq float64
		for i := range x {
			x[i] = float32(r.NormFloat64())
			sum += float64(x[i])
			sq += float64(x[i]) * float64(x[i])
		}
		px := up(t, x)
		first, err := o.Dot(n, px, 0)
		ok(t, err)
		again, err := o.Dot(n, px, 0)
		ok(t, err)
		if math.Abs(float64(first)-sum) > 1e-5*(sq+1) || first != again {
			t.Errorf("n=%d: sum %v then %v, want %v (float64)", n, first, again, sum)
		}
		ok(t, o.SumSq(n, px, dev.scratch))
		var got float64
		ok(t, dev.Download(unsafe.Pointer(&got), dev.scratch, 8))
		if math.Abs(got-sq) > 1e-9*sq {
			t.Errorf("n=%d: sum of squares %v, want %v", n, got, sq)
		}
	}
	var count uint32
	ok(t, dev.Download(unsafe.Pointer(&count), dev.redCount, 4))
	if count != 0 {
		t.Errorf("the reduction's block count is %d after the launches, want 0", count)
	}
}
