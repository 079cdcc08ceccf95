package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// winogradShapes are 3×3 stride-1 convolutions (c, h, w, oc, pad) at odd
// sizes: odd heights and widths (a last tile half outside the output),
// every padding from 0 to 3, one-pixel outputs, and many input channels
// (long sums in the transformed domain).
var winogradShapes = []struct{ c, h, w, oc, pad int }{
	{3, 7, 5, 5, 0},
	{3, 7, 5, 5, 1},
	{3, 7, 5, 5, 2},
	{2, 4, 6, 3, 3},
	{1, 3, 3, 1, 0},
	{4, 1, 1, 2, 1},
	{5, 3, 9, 7, 0},
	{64, 9, 11, 7, 1},
	{256, 6, 5, 33, 1},
	{33, 14, 14, 40, 1},
	{160, 3, 4, 130, 1}, // more filters than WinogradPack transforms on one core
	{5, 19, 37, 6, 1},   // 19 tiles a row, the last row and column half outside
	{3, 16, 16, 4, 0},   // 7 tiles a row
}

// conv3x3Ref is the 3×3 stride-1 convolution by definition in float64:
// out (oc, oh, ow) = Σ_c,i,j w[k][c][i][j]·im[c][y+i-pad][x+j-pad].
func conv3x3Ref(im []float64, c, h, w, pad int, wt []float64, oc int) ([]float64, int, int) {
	oh, ow := h+2*pad-2, w+2*pad-2
	out := make([]float64, oc*oh*ow)
	for k := 0; k < oc; k++ {
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				var s float64
				for ch := 0; ch < c; ch++ {
					for i := 0; i < 3; i++ {
						for j := 0; j < 3; j++ {
							iy, ix := y+i-pad, x+j-pad
							if iy >= 0 && iy < h && ix >= 0 && ix < w {
								s += wt[((k*c+ch)*3+i)*3+j] * im[(ch*h+iy)*w+ix]
							}
						}
					}
				}
				out[(k*oh+y)*ow+x] = s
			}
		}
	}
	return out, oh, ow
}

// conv3x3DataGradRef is the gradient of conv3x3Ref by its image, by
// definition: dx[c][y+i-pad][x+j-pad] += w[k][c][i][j]·dy[k][y][x].
func conv3x3DataGradRef(dy []float64, c, h, w, pad int, wt []float64, oc int) []float64 {
	oh, ow := h+2*pad-2, w+2*pad-2
	dx := make([]float64, c*h*w)
	for k := 0; k < oc; k++ {
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				d := dy[(k*oh+y)*ow+x]
				for ch := 0; ch < c; ch++ {
					for i := 0; i < 3; i++ {
						for j := 0; j < 3; j++ {
							iy, ix := y+i-pad, x+j-pad
							if iy >= 0 && iy < h && ix >= 0 && ix < w {
								dx[(ch*h+iy)*w+ix] += wt[((k*c+ch)*3+i)*3+j] * d
							}
						}
					}
				}
			}
		}
	}
	return dx
}

// flip3x3 returns the data gradient's filters: wf[c][k][i][j] =
// w[k][c][2-i][2-j], a c×oc×3×3 tensor.
func flip3x3[T Float](w []T, oc, c int) []T {
	wf := make([]T, len(w))
	for k := 0; k < oc; k++ {
		for ch := 0; ch < c; ch++ {
			for t := 0; t < 9; t++ {
				wf[(ch*oc+k)*9+8-t] = w[(k*c+ch)*9+t]
			}
		}
	}
	return wf
}

// winogradTol is the float32 Winograd F(m,3) tolerance against float64:
// each output is a sum of 9·c products, its rounding error grows like
// √(9c), and the transforms multiply it by at most about 4 for F(2,3)
// (entries ±1, ±½, sums of up to 9 terms) and about 40 for F(4,3)
// (entries up to 8 in Aᵀ and 5 in Bᵀ, sums of up to 36 terms). An element
// may be off by 3e-6·k·√(9c)·(1+|want|); the relative error in the 2-norm
// must stay under winogradRelTol.
func winogradTol(m, c int, want float64) float64 {
	k := 4.0
	if m == 4 {
		k = 40
	}
	return 3e-6 * k * math.Sqrt(9*float64(c)) * (1 + math.Abs(want))
}

// winogradRelTol bounds the relative error of a whole output in the
// 2-norm: measured at 0.7e-7 to 5e-7 for F(2,3) at these shapes and
// 0.4e-7 to 2.6e-6 for F(4,3).
func winogradRelTol(m int) float64 {
	if m == 4 {
		return 1e-5
	}
	return 2e-6
}

// winogradTiles are the output tile sizes the kernels take: F(2,3) and
// F(4,3).
var winogradTiles = []int{2, 4}

// checkClose compares got with want elementwise (winogradTol for tiles of
// m) and by the relative error of the whole output, over NaN past the end
// of got.
func checkClose[T Float](t *testing.T, name string, m int, got []T, want []float64, c int) {
	t.Helper()
	var num, den float64
	for i, w := range want {
		g := float64(got[i])
		if math.IsNaN(g) || math.Abs(g-w) > winogradTol(m, c, w) {
			t.Fatalf("%s: [%d] = %v, want %v", name, i, g, w)
		}
		num += (g - w) * (g - w)
		den += w * w
	}
	rel := math.Sqrt(num / max(den, 1e-300))
	t.Logf("%s: relative error %.3g", name, rel)
	if tol := winogradRelTol(m); rel > tol {
		t.Fatalf("%s: relative error %.3g, want under %.3g", name, rel, tol)
	}
	for i, v := range got[len(want):] {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("%s: [%d] written past the output", name, len(want)+i)
		}
	}
}

// nanSlice is n NaNs followed by 3 more, to catch writes past the end.
func nanSlice[T Float](n int) []T {
	s := make([]T, n+3)
	for i := range s {
		s[i] = T(math.NaN())
	}
	return s
}

// TestWinogradForwardMatchesReference checks the float32 Winograd F(2,3)
// and F(4,3) forward convolutions against the float64 convolution by
// definition at odd shapes, on the kernel level in use, over NaN in the
// output.
func TestWinogradForwardMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, m := range winogradTiles {
		for _, s := range winogradShapes {
			name := fmt.Sprintf("F(%d,3) c%d %dx%d oc%d pad%d", m, s.c, s.h, s.w, s.oc, s.pad)
			im := randSlice(r, s.c*s.h*s.w)
			w := randSlice(r, s.oc*s.c*9)
			want, oh, ow := conv3x3Ref(to64(im), s.c, s.h, s.w, s.pad, to64(w), s.oc)
			u := make([]float32, WinogradPackLen(m, s.oc, s.c))
			WinogradPack(m, w, s.oc, s.c, u)
			out := nanSlice[float32](s.oc * oh * ow)
			WinogradForward(m, im, s.c, s.h, s.w, s.pad, s.pad, oh, ow, u, s.oc, out)
			checkClose(t, name, m, out, want, s.c)

			// float64 (the layers' gradient checks) to rounding.
			u64 := make([]float64, WinogradPackLen(m, s.oc, s.c))
			WinogradPack(m, to64(w), s.oc, s.c, u64)
			out64 := nanSlice[float64](s.oc * oh * ow)
			WinogradForward(m, to64(im), s.c, s.h, s.w, s.pad, s.pad, oh, ow, u64, s.oc, out64)
			for i, v := range want {
				if d := math.Abs(out64[i] - v); d > 1e-12*(1+math.Abs(v))*float64(9*s.c) || math.IsNaN(out64[i]) {
					t.Fatalf("%s float64: [%d] = %v, want %v", name, i, out64[i], v)
				}
			}
		}
	}
}

// TestWinogradDataGradMatchesReference checks the data gradient as the
// layer computes it on the Winograd kernel, a 3×3 convolution of dy with
// the flipped, transposed filters and padding 2-pad, against the float64
// gradient by definition.
func TestWinogradDataGradMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, m := range winogradTiles {
		for _, s := range winogradShapes {
			if s.pad > 2 {
				continue // the flipped form needs padding 2-pad ≥ 0
			}
			name := fmt.Sprintf("F(%d,3) c%d %dx%d oc%d pad%d", m, s.c, s.h, s.w, s.oc, s.pad)
			oh, ow := s.h+2*s.pad-2, s.w+2*s.pad-2
			dy := randSlice(r, s.oc*oh*ow)
			w := randSlice(r, s.oc*s.c*9)
			want := conv3x3DataGradRef(to64(dy), s.c, s.h, s.w, s.pad, to64(w), s.oc)
			u := make([]float32, WinogradPackLen(m, s.c, s.oc))
			WinogradPack(m, flip3x3(w, s.oc, s.c), s.c, s.oc, u)
			dx := nanSlice[float32](s.c * s.h * s.w)
			WinogradForward(m, dy, s.oc, oh, ow, 2-s.pad, 2-s.pad, s.h, s.w, u, s.c, dx)
			checkClose(t, name, m, dx, want, s.oc)
		}
	}
}

// winogradBenchShapes are 3×3 "same" convolutions of VGG-16, ResNet-50 and
// GoogLeNet (c = oc, h = w), one image.
var winogradBenchShapes = []struct{ c, hw int }{
	{64, 56}, {128, 28}, {256, 14}, {512, 7}, {96, 28},
}

// BenchmarkConv3x3 times one image's 3×3 stride-1 pad-1 forward
// convolution at VGG-16's, ResNet-50's and GoogLeNet's shapes on the
// four routes: Winograd F(2,3) and F(4,3), the implicit product (AVX2 and AVX-512
// levels) and Im2col with a GEMM. Both cores run images (b.RunParallel),
// so the figure is per image with the machine loaded as a batch loads it.
func BenchmarkConv3x3(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, s := range winogradBenchShapes {
		c, oc, h, w := s.c, s.c, s.hw, s.hw
		g := unitGeom(3, 1)
		kdim, sp := 9*c, h*w
		im := randSlice(r, c*h*w)
		wt := randSlice(r, oc*kdim)
		u := make([]float32, WinogradPackLen(2, oc, c))
		WinogradPack(2, wt, oc, c, u)
		u4 := make([]float32, WinogradPackLen(4, oc, c))
		WinogradPack(4, wt, oc, c, u4)
		packed := make([]float32, ConvPackLen(oc, kdim))
		packT32(wt, kdim, oc, kdim, packed)
		name := fmt.Sprintf("c%d_%dx%d", c, h, w)
		par := func(b *testing.B, fn func(out, col []float32)) {
			b.RunParallel(func(pb *testing.PB) {
				out := make([]float32, oc*sp)
				col := make([]float32, kdim*sp)
				for pb.Next() {
					fn(out, col)
				}
			})
		}
		b.Run(name+"/winograd", func(b *testing.B) {
			par(b, func(out, _ []float32) { WinogradForward(2, im, c, h, w, 1, 1, h, w, u, oc, out) })
		})
		b.Run(name+"/winograd4", func(b *testing.B) {
			par(b, func(out, _ []float32) { WinogradForward(4, im, c, h, w, 1, 1, h, w, u4, oc, out) })
		})
		if ImplicitConv[float32]() {
			b.Run(name+"/implicit", func(b *testing.B) {
				par(b, func(out, _ []float32) { convForward(im, c, h, w, g, h, w, packed, oc, out) })
			})
		}
		b.Run(name+"/im2col", func(b *testing.B) {
			par(b, func(out, col []float32) {
				Im2col(im, c, h, w, g, h, w, col)
				SgemmSerial(false, false, oc, sp, kdim, 1, wt, kdim, col, sp, 0, out, sp)
			})
		})
	}
}

// BenchmarkWinogradInput times the input transform of one image's 64
// channels of 56×56 (pad 1), alone.
func BenchmarkWinogradInput(b *testing.B) {
	const c, hw = 64, 56
	th, tw := (hw+1)/2, (hw+1)/2
	hp, wp := 2*th+2, 2*tw+2
	xp := randSlice(rand.New(rand.NewPCG(1, 2)), c*hp*wp)
	n := th * tw
	v := make([]float32, 16*c*n)
	for b.Loop() {
		for ch := 0; ch < c; ch++ {
			winogradInput(xp[ch*hp*wp:(ch+1)*hp*wp], wp, 0, th, tw, v[ch*n:], c*n)
		}
	}
}

// BenchmarkWinogradPack times the weight transforms of 128×128 3×3
// filters (ResNet-50's res3 layers), which run every pass.
func BenchmarkWinogradPack(b *testing.B) {
	const oc, c = 128, 128
	w := randSlice(rand.New(rand.NewPCG(5, 6)), oc*c*9)
	for _, m := range winogradTiles {
		u := make([]float32, WinogradPackLen(m, oc, c))
		b.Run(fmt.Sprintf("F(%d,3)", m), func(b *testing.B) {
			for b.Loop() {
				WinogradPack(m, w, oc, c, u)
			}
		})
	}
}

// conv3x3WeightGradRef is the gradient of conv3x3Ref by its filters, by
// definition: dw[k][c][i][j] = Σ_y,x dy[k][y][x]·im[c][y+i-pad][x+j-pad].
func conv3x3WeightGradRef(im []float64, c, h, w, pad int, dy []float64, oc int) []float64 {
	oh, ow := h+2*pad-2, w+2*pad-2
	dw := make([]float64, oc*c*9)
	for k := 0; k < oc; k++ {
		for ch := 0; ch < c; ch++ {
			for i := 0; i < 3; i++ {
				for j := 0; j < 3; j++ {
					var s float64
					for y := 0; y < oh; y++ {
						for x := 0; x < ow; x++ {
							iy, ix := y+i-pad, x+j-pad
							if iy >= 0 && iy < h && ix >= 0 && ix < w {
								s += dy[(k*oh+y)*ow+x] * im[(ch*h+iy)*w+ix]
							}
						}
					}
					dw[((k*c+ch)*3+i)*3+j] = s
				}
			}
		}
	}
	return dw
}

// TestWinogradWeightGradMatchesReference checks the float32 and float64
// Winograd weight gradients (F(2,3) and F(4,3)) of two images, added to
// a gradient that holds a value already, against the float64 gradient by
// definition at the odd shapes. The sums run over the output positions,
// so the bound scales with √(oh·ow) where the forward's scales with √c.
func TestWinogradWeightGradMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, m := range winogradTiles {
		for _, s := range winogradShapes {
			name := fmt.Sprintf("F(%d,3) c%d %dx%d oc%d pad%d", m, s.c, s.h, s.w, s.oc, s.pad)
			oh, ow := s.h+2*s.pad-2, s.w+2*s.pad-2
			want := make([]float64, s.oc*s.c*9)
			for i := range want {
				want[i] = 0.5
			}
			ims := [2][]float32{randSlice(r, s.c*s.h*s.w), randSlice(r, s.c*s.h*s.w)}
			dys := [2][]float32{randSlice(r, s.oc*oh*ow), randSlice(r, s.oc*oh*ow)}
			for n := range ims {
				for i, v := range conv3x3WeightGradRef(to64(ims[n]), s.c, s.h, s.w, s.pad, to64(dys[n]), s.oc) {
					want[i] += v
				}
			}
			acc := make([]float32, WinogradWeightGradLen(m, s.oc, s.c))
			acc64 := make([]float64, len(acc))
			for n := range ims {
				WinogradWeightGrad(m, ims[n], s.c, s.h, s.w, s.pad, s.pad, dys[n], s.oc, oh, ow, acc)
				WinogradWeightGrad(m, to64(ims[n]), s.c, s.h, s.w, s.pad, s.pad, to64(dys[n]), s.oc, oh, ow, acc64)
			}
			dw, dw64 := make([]float32, len(want)), make([]float64, len(want))
			for i := range dw {
				dw[i], dw64[i] = 0.5, 0.5
			}
			WinogradWeightFinish(m, acc, s.oc, s.c, dw)
			WinogradWeightFinish(m, acc64, s.oc, s.c, dw64)
			var num, den float64
			for i, w := range want {
				g := float64(dw[i])
				if tol := 3e-6 * 40 * math.Sqrt(float64(2*max(1, oh*ow))) * (1 + math.Abs(w)); math.IsNaN(g) || math.Abs(g-w) > tol {
					t.Fatalf("%s: dw[%d] = %v, want %v", name, i, g, w)
				}
				if d := math.Abs(dw64[i] - w); d > 1e-11*(1+math.Abs(w))*float64(max(1, oh*ow)) || math.IsNaN(dw64[i]) {
					t.Fatalf("%s float64: dw[%d] = %v, want %v", name, i, dw64[i], w)
				}
				num += (g - w) * (g - w)
				den += w * w
			}
			rel := math.Sqrt(num / max(den, 1e-300))
			t.Logf("%s: relative error %.3g", name, rel)
			if tol := winogradRelTol(m); rel > tol {
				t.Fatalf("%s: relative error %.3g, want under %.3g", name, rel, tol)
			}
		}
	}
}

// BenchmarkConv3x3WeightGrad times one image's 3×3 pad-1 weight gradient
// at the BenchmarkConv3x3 shapes: Winograd F(2,3) and F(4,3) (the sums,
// with the output transform once per four images, as a piece of a batch
// does) against the implicit ConvWeightsT (AVX2 and AVX-512 levels). Both
// cores run images.
func BenchmarkConv3x3WeightGrad(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, s := range winogradBenchShapes {
		c, oc, h, w := s.c, s.c, s.hw, s.hw
		im, dy := randSlice(r, c*h*w), randSlice(r, oc*h*w)
		name := fmt.Sprintf("c%d_%dx%d", c, h, w)
		for _, m := range winogradTiles {
			b.Run(fmt.Sprintf("%s/winograd%d", name, m), func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					acc := make([]float32, WinogradWeightGradLen(m, oc, c))
					dw := make([]float32, oc*c*9)
					for i := 0; pb.Next(); i++ {
						WinogradWeightGrad(m, im, c, h, w, 1, 1, dy, oc, h, w, acc)
						if i%4 == 3 {
							WinogradWeightFinish(m, acc, oc, c, dw)
							clear(acc)
						}
					}
				})
			})
		}
		if ImplicitConv[float32]() {
			b.Run(name+"/implicit", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					dwT := make([]float32, oc*c*9)
					for pb.Next() {
						ConvWeightsT(im, c, h, w, unitGeom(3, 1), h, w, dy, oc, dwT, oc, 1)
					}
				})
			})
		}
	}
}

// BenchmarkWinogradWeightFinish times the output transform of the
// weight gradient of 128×128 3×3 filters, which runs once a pass.
func BenchmarkWinogradWeightFinish(b *testing.B) {
	const oc, c = 128, 128
	r := rand.New(rand.NewPCG(11, 12))
	dw := make([]float32, oc*c*9)
	for _, m := range winogradTiles {
		acc := randSlice(r, WinogradWeightGradLen(m, oc, c))
		b.Run(fmt.Sprintf("F(%d,3)", m), func(b *testing.B) {
			for b.Loop() {
				WinogradWeightFinish(m, acc, oc, c, dw)
			}
		})
	}
}
