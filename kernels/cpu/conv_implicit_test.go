package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gocaffe/gocaffe/kernels"
)

// implicitShapes are convolutions (c, h, w, oc, window) for the implicit
// products: CIFAR-10 quick's and LeNet's layers, and odd ones (rows and
// columns of C not whole tiles, strides, dilation, no padding, one
// output column).
var implicitShapes = []implicitShape{
	{3, 32, 32, 32, unitGeom(5, 2)},
	{32, 16, 16, 32, unitGeom(5, 2)},
	{32, 8, 8, 64, unitGeom(5, 2)},
	{1, 28, 28, 20, unitGeom(5, 0)},
	{20, 12, 12, 50, unitGeom(5, 0)},
	{3, 7, 9, 5, unitGeom(3, 1)},
	{5, 11, 6, 33, kernels.ConvGeom{KH: 3, KW: 2, SH: 2, SW: 3, PH: 1, PW: 2, DH: 1, DW: 1}},
	{2, 9, 10, 70, kernels.ConvGeom{KH: 2, KW: 3, SH: 1, SW: 1, PH: 0, PW: 1, DH: 2, DW: 3}},
	{4, 5, 1, 8, kernels.ConvGeom{KH: 3, KW: 1, SH: 1, SW: 1, PH: 1, PW: 0, DH: 1, DW: 1}},
}

type implicitShape struct {
	c, h, w, oc int
	g           kernels.ConvGeom
}

// dims are the output's height and width, the columns' rows (c·kh·kw) and
// the output positions.
func (s implicitShape) dims() (oh, ow, kdim, sp int) {
	g := s.g
	oh = (s.h+2*g.PH-(g.DH*(g.KH-1)+1))/g.SH + 1
	ow = (s.w+2*g.PW-(g.DW*(g.KW-1)+1))/g.SW + 1
	return oh, ow, s.c * g.KH * g.KW, oh * ow
}

func unitGeom(k, pad int) kernels.ConvGeom {
	return kernels.ConvGeom{KH: k, KW: k, SH: 1, SW: 1, PH: pad, PW: pad, DH: 1, DW: 1}
}

// TestConvWeightsTMatchesReference checks the implicit weight gradient
// against im2col by definition and GemmRef in float64, overwriting (beta
// 0, over NaN) and adding (beta 1, and a scaling beta), leaving C's
// padding columns alone.
func TestConvWeightsTMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range implicitShapes {
		g := s.g
		oh, ow, kdim, sp := s.dims()
		im := randSlice(r, s.c*s.h*s.w)
		dy := randSlice(r, s.oc*sp)
		col := im2colNaive(to64(im), s.c, s.h, s.w, g, oh, ow)
		for _, beta := range []float32{0, 1, 0.5} {
			name := fmt.Sprintf("c%d %dx%d oc%d %+v beta %v", s.c, s.h, s.w, s.oc, g, beta)
			ldc := s.oc + 3
			dwT := randSlice(r, kdim*ldc)
			if beta == 0 {
				for i := range dwT {
					dwT[i] = float32(math.NaN())
				}
			}
			want := to64(dwT)
			if beta == 0 {
				clear(want)
			}
			GemmRef(false, true, kdim, s.oc, sp, 1, col, sp, to64(dy), sp, float64(beta), want, ldc)
			convWeightsT(im, s.c, s.h, s.w, g, oh, ow, dy, s.oc, dwT, ldc, beta)
			for i := 0; i < kdim; i++ {
				for j := 0; j < ldc; j++ {
					got, w := float64(dwT[i*ldc+j]), want[i*ldc+j]
					tol := 1e-4 * (1 + math.Abs(w)) * math.Sqrt(float64(sp))
					if j >= s.oc {
						if beta == 0 {
							continue // NaN padding, untouched
						}
						tol = 0
					}
					if math.Abs(got-w) > tol || math.IsNaN(got) {
						t.Fatalf("%s: dwT[%d,%d] = %v, want %v", name, i, j, got, w)
					}
				}
			}
		}
	}
}

// TestConvForwardMatchesReference checks the implicit forward product
// against im2col by definition and GemmRef in float64, over stale values
// in the output.
func TestConvForwardMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, s := range implicitShapes {
		g := s.g
		oh, ow, kdim, sp := s.dims()
		im := randSlice(r, s.c*s.h*s.w)
		w := randSlice(r, s.oc*kdim)
		col := im2colNaive(to64(im), s.c, s.h, s.w, g, oh, ow)
		want := make([]float64, s.oc*sp)
		GemmRef(false, false, s.oc, sp, kdim, 1, to64(w), kdim, col, sp, 0, want, sp)
		packed := make([]float32, ConvPackLen(s.oc, kdim))
		packT32(w, kdim, s.oc, kdim, packed) // ConvPack on any level
		out := randSlice(r, s.oc*sp+5)
		for i := range out {
			out[i] = float32(math.NaN())
		}
		convForward(im, s.c, s.h, s.w, g, oh, ow, packed, s.oc, out)
		for i, w := range want {
			got := float64(out[i])
			if tol := 1e-4 * (1 + math.Abs(w)) * math.Sqrt(float64(kdim)); math.Abs(got-w) > tol || math.IsNaN(got) {
				t.Fatalf("c%d %dx%d oc%d %+v: out[%d] = %v, want %v", s.c, s.h, s.w, s.oc, g, i, got, w)
			}
		}
		for i, v := range out[s.oc*sp:] {
			if !math.IsNaN(float64(v)) {
				t.Fatalf("c%d %dx%d oc%d %+v: out[%d] past the output written", s.c, s.h, s.w, s.oc, g, s.oc*sp+i)
			}
		}
	}
}

// BenchmarkConvForward times one image's forward product at CIFAR-10
// quick's and LeNet's shapes, implicit beside Im2col and a GEMM.
func BenchmarkConvForward(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, s := range implicitShapes[:5] {
		g := s.g
		oh, ow, kdim, sp := s.dims()
		im := randSlice(r, s.c*s.h*s.w)
		w := randSlice(r, s.oc*kdim)
		out := make([]float32, s.oc*sp)
		col := make([]float32, kdim*sp)
		packed := make([]float32, ConvPackLen(s.oc, kdim))
		packT32(w, kdim, s.oc, kdim, packed) // ConvPack on any level
		name := fmt.Sprintf("c%d_%dx%d_oc%d_k%d", s.c, s.h, s.w, s.oc, g.KH)
		b.Run(name+"/implicit", func(b *testing.B) {
			for b.Loop() {
				convForward(im, s.c, s.h, s.w, g, oh, ow, packed, s.oc, out)
			}
		})
		b.Run(name+"/im2col", func(b *testing.B) {
			for b.Loop() {
				Im2col(im, s.c, s.h, s.w, g, oh, ow, col)
				SgemmSerial(false, false, s.oc, sp, kdim, 1, w, kdim, col, sp, 0, out, sp)
			}
		})
	}
}

// BenchmarkConvWeightsT times one image's weight gradient at CIFAR-10
// quick's and LeNet's shapes, implicit beside Im2col and a GEMM.
func BenchmarkConvWeightsT(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, s := range implicitShapes[:5] {
		g := s.g
		oh, ow, kdim, sp := s.dims()
		im := randSlice(r, s.c*s.h*s.w)
		dy := randSlice(r, s.oc*sp)
		dwT := make([]float32, kdim*s.oc)
		col := make([]float32, kdim*sp)
		name := fmt.Sprintf("c%d_%dx%d_oc%d_k%d", s.c, s.h, s.w, s.oc, g.KH)
		b.Run(name+"/implicit", func(b *testing.B) {
			for b.Loop() {
				convWeightsT(im, s.c, s.h, s.w, g, oh, ow, dy, s.oc, dwT, s.oc, 1)
			}
		})
		b.Run(name+"/im2col", func(b *testing.B) {
			for b.Loop() {
				Im2col(im, s.c, s.h, s.w, g, oh, ow, col)
				SgemmSerial(false, true, kdim, s.oc, sp, 1, col, sp, dy, sp, 1, dwT, s.oc)
			}
		})
	}
}

// TestSegKernelMatchesGo checks the level's implicit tile (segKernel)
// against kernelSegGo at the same tile shape: one and several segments,
// one-step segments, strided A, a tile at a sliver's end (the second half
// where tiles are 16 wide), and adding.
func TestSegKernelMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	tr, tc := segTile()
	if got := ImplicitConv[float32](); got != (KernelLevel() >= LevelAVX2) {
		t.Fatalf("level %v: ImplicitConv = %v", KernelLevel(), got)
	}
	for _, tt := range []struct {
		nseg, seglen, acs int
		last              bool
	}{
		{1, 1, 1, false}, {1, 5, 1, false}, {3, 5, 2, true}, {7, 1, 1, false}, {4, 32, 1, true}, {2, 13, 3, false},
	} {
		a := randSlice(r, 4096)
		var aoff [segRows]int
		for i := 1; i < tr; i++ {
			aoff[i] = 4 * (aoff[i-1]/4 + 1 + r.IntN(40))
		}
		segB := make([]int, tt.nseg)
		for s := range segB {
			segB[s] = 4 * r.IntN(1024)
		}
		k := tt.nseg * tt.seglen
		b := randSlice(r, k*segCols)
		if tt.last {
			b = b[segCols-tc:]
		}
		for _, add := range []bool{false, true} {
			ldc := tc + 5
			c := randSlice(r, tr*ldc)
			want := append([]float32(nil), c...)
			kernelSegGo(tr, tc, tt.seglen, a, 7, &aoff, tt.acs, segB, b, want, ldc, add)
			segKernel(tt.seglen, a, 7, &aoff, tt.acs, segB, b, c, ldc, add)
			for i, w := range want {
				if d := math.Abs(float64(c[i] - w)); d > 1e-4*(1+math.Abs(float64(w)))*math.Sqrt(float64(k)) {
					t.Fatalf("%v tile %d×%d %+v add %v: c[%d] = %v, want %v", KernelLevel(), tr, tc, tt, add, i, c[i], w)
				}
			}
		}
	}
}

// TestTranspose16MatchesGo checks the level's transpose16 against
// transpose16Go, with row strides past the block's width.
func TestTranspose16MatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	const ld, ldd = 21, 19
	src := randSlice(r, 15*ld+16)
	got, want := randSlice(r, 15*ldd+16), make([]float32, 15*ldd+16)
	copy(want, got)
	transpose16(src, ld, got, ldd)
	transpose16Go(src, ld, want, ldd)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v: dst[%d] = %v, want %v", KernelLevel(), i, got[i], want[i])
		}
	}
}
