package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gocaffe/gocaffe/kernels"
)

// im2colNaive is Im2col by its definition, one value at a time, in float64.
func im2colNaive(im []float64, c, h, w int, g kernels.ConvGeom, oh, ow int) []float64 {
	col := make([]float64, c*g.KH*g.KW*oh*ow)
	r := 0
	for ch := 0; ch < c; ch++ {
		for ki := 0; ki < g.KH; ki++ {
			for kj := 0; kj < g.KW; kj++ {
				for y := 0; y < oh; y++ {
					for x := 0; x < ow; x++ {
						iy, ix := y*g.SH-g.PH+ki*g.DH, x*g.SW-g.PW+kj*g.DW
						if iy >= 0 && iy < h && ix >= 0 && ix < w {
							col[(r*oh+y)*ow+x] = im[(ch*h+iy)*w+ix]
						}
					}
				}
				r++
			}
		}
	}
	return col
}

// col2imNaive is the adjoint of im2colNaive: each column value is added
// to the pixel it was read from.
func col2imNaive(col []float64, c, h, w int, g kernels.ConvGeom, oh, ow int) []float64 {
	im := make([]float64, c*h*w)
	r := 0
	for ch := 0; ch < c; ch++ {
		for ki := 0; ki < g.KH; ki++ {
			for kj := 0; kj < g.KW; kj++ {
				for y := 0; y < oh; y++ {
					for x := 0; x < ow; x++ {
						iy, ix := y*g.SH-g.PH+ki*g.DH, x*g.SW-g.PW+kj*g.DW
						if iy >= 0 && iy < h && ix >= 0 && ix < w {
							im[(ch*h+iy)*w+ix] += col[(r*oh+y)*ow+x]
						}
					}
				}
				r++
			}
		}
	}
	return im
}

// TestIm2colCol2imMatchReference checks Im2col and Col2im in float32 (the
// unit-stride block-copy path and the general one) against the float64
// definitions, at the nets' shapes and odd ones: output rows of whole
// vectors (8, 16, 24, 32) and not, with and without padding, strides and
// dilations. Stale values in the outputs must be overwritten.
func TestIm2colCol2imMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	cases := []struct {
		c, h, w int
		g       kernels.ConvGeom
	}{
		{1, 28, 28, kernels.ConvGeom{KH: 5, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1}},                // LeNet conv1 (ow 24)
		{20, 12, 12, kernels.ConvGeom{KH: 5, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1}},               // LeNet conv2 (ow 8)
		{3, 32, 32, kernels.ConvGeom{KH: 5, KW: 5, SH: 1, SW: 1, PH: 2, PW: 2, DH: 1, DW: 1}},  // CIFAR conv1 (ow 32)
		{32, 16, 16, kernels.ConvGeom{KH: 5, KW: 5, SH: 1, SW: 1, PH: 2, PW: 2, DH: 1, DW: 1}}, // CIFAR conv2 (ow 16)
		{5, 8, 8, kernels.ConvGeom{KH: 5, KW: 5, SH: 1, SW: 1, PH: 2, PW: 2, DH: 1, DW: 1}},    // CIFAR conv3 (ow 8)
		{3, 7, 9, kernels.ConvGeom{KH: 3, KW: 2, SH: 1, SW: 1, PH: 1, PW: 0, DH: 1, DW: 1}},    // odd, uneven padding
		{2, 11, 13, kernels.ConvGeom{KH: 3, KW: 3, SH: 1, SW: 1, PH: 3, PW: 1, DH: 1, DW: 1}},  // pad beyond the window
		{2, 9, 10, kernels.ConvGeom{KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1, DH: 1, DW: 1}},   // stride 2
		{2, 9, 10, kernels.ConvGeom{KH: 3, KW: 3, SH: 1, SW: 1, PH: 2, PW: 2, DH: 2, DW: 2}},   // dilation
		{1, 4, 5, kernels.ConvGeom{KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1}},                  // 1×1
		{3, 6, 37, kernels.ConvGeom{KH: 2, KW: 3, SH: 1, SW: 1, PH: 0, PW: 1, DH: 1, DW: 1}},   // ow 37
		{2, 6, 14, kernels.ConvGeom{KH: 2, KW: 5, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1}},   // padded row of 16, h 6
		{3, 5, 5, kernels.ConvGeom{KH: 3, KW: 3, SH: 1, SW: 1, DH: 1, DW: 1}},                  // h 5, oh 3
	}
	for _, tc := range cases {
		g := tc.g
		oh := (tc.h+2*g.PH-(g.DH*(g.KH-1)+1))/g.SH + 1
		ow := (tc.w+2*g.PW-(g.DW*(g.KW-1)+1))/g.SW + 1
		im := randSlice(r, tc.c*tc.h*tc.w)
		n := tc.c * g.KH * g.KW * oh * ow
		col := randSlice(r, n) // stale values
		Im2col(im, tc.c, tc.h, tc.w, g, oh, ow, col)
		want := im2colNaive(to64(im), tc.c, tc.h, tc.w, g, oh, ow)
		for i, v := range want {
			if float64(col[i]) != v {
				t.Fatalf("Im2col %+v c=%d %dx%d: col[%d] = %v, want %v", g, tc.c, tc.h, tc.w, i, col[i], v)
			}
		}
		dcol := randSlice(r, n)
		dim := randSlice(r, tc.c*tc.h*tc.w) // stale values
		Col2im(dcol, tc.c, tc.h, tc.w, g, oh, ow, dim)
		wantIm := col2imNaive(to64(dcol), tc.c, tc.h, tc.w, g, oh, ow)
		for i, v := range wantIm {
			if math.Abs(float64(dim[i])-v) > 1e-5*(1+math.Abs(v)) {
				t.Fatalf("Col2im %+v c=%d %dx%d: im[%d] = %v, want %v", g, tc.c, tc.h, tc.w, i, dim[i], v)
			}
		}
	}
}

// BenchmarkCol2im times Col2im on one image at LeNet's conv2 (20 channels
// of 12×12, 5×5 window) and CIFAR-10 quick's conv3 (32 of 8×8, pad 2).
func BenchmarkCol2im(b *testing.B) {
	for _, bc := range []struct {
		name    string
		c, h, w int
		g       kernels.ConvGeom
	}{
		{"lenet-conv2", 20, 12, 12, kernels.ConvGeom{KH: 5, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1}},
		{"cifar-conv3", 32, 8, 8, kernels.ConvGeom{KH: 5, KW: 5, SH: 1, SW: 1, PH: 2, PW: 2, DH: 1, DW: 1}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := bc.g
			oh := bc.h + 2*g.PH - g.KH + 1
			ow := bc.w + 2*g.PW - g.KW + 1
			r := rand.New(rand.NewPCG(1, 2))
			col := randSlice(r, bc.c*g.KH*g.KW*oh*ow)
			im := make([]float32, bc.c*bc.h*bc.w)
			for b.Loop() {
				Col2im(col, bc.c, bc.h, bc.w, g, oh, ow, im)
			}
		})
	}
}

// TestCopyAddRowsMatchGo checks SCopyRows and SAddRows at every width up
// to 40 (whole vectors, one and two masked parts, the scalar loop) against
// the Go loops; values outside the block must stay as they were.
func TestCopyAddRowsMatchGo(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	const rows, lds, ldd = 3, 43, 45
	for cols := 1; cols <= 40; cols++ {
		src := randSlice(r, rows*lds)
		dst := randSlice(r, rows*ldd)
		want := append([]float32(nil), dst...)
		SCopyRows(dst, ldd, src, lds, rows, cols)
		copyRowsGo(want, ldd, src, lds, rows, cols)
		for i := range dst {
			if dst[i] != want[i] {
				t.Fatalf("SCopyRows cols=%d: dst[%d] = %v, want %v", cols, i, dst[i], want[i])
			}
		}
		SAddRows(dst, ldd, src, lds, rows, cols)
		addRowsGo(want, ldd, src, lds, rows, cols)
		for i := range dst {
			if dst[i] != want[i] {
				t.Fatalf("SAddRows cols=%d: dst[%d] = %v, want %v", cols, i, dst[i], want[i])
			}
		}
	}
}
