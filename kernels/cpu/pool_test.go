package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestMaxPool2x2PlaneMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{0, 1, 4, 5, 12, 16, 17, 40} {
		const rows, ldo = 3, 50
		w := 2*n + 1
		x := randSlice(r, 2*rows*w)
		// Ties, NaN and values at or below -FLT_MAX exercise the strict,
		// ordered comparison.
		if n > 3 {
			x[0], x[1], x[w], x[w+1] = 2, 2, 2, 2
			x[2], x[3], x[w+2], x[w+3] = float32(math.NaN()), 1, float32(math.Inf(-1)), 1
			x[4], x[5], x[w+4], x[w+5] = -math.MaxFloat32, float32(math.Inf(-1)), -math.MaxFloat32, -math.MaxFloat32
		}
		out, idx := make([]float32, rows*ldo), make([]int32, rows*ldo)
		wantOut, wantIdx := make([]float32, rows*ldo), make([]int32, rows*ldo)
		MaxPool2x2Plane(x, w, out, idx, ldo, rows, n)
		maxPool2x2PlaneGo(x, w, wantOut, wantIdx, ldo, rows, n)
		for o := range out {
			if out[o] != wantOut[o] || idx[o] != wantIdx[o] {
				t.Fatalf("n=%d output %d: (%v, %d), want (%v, %d)", n, o, out[o], idx[o], wantOut[o], wantIdx[o])
			}
		}
		if n > 3 && (idx[0] != 0 || idx[1] != 3 || idx[2] != -1) {
			t.Fatalf("n=%d: special windows gave %v, want [0 3 -1 ...]", n, idx[:3])
		}
		if n > 0 && (idx[ldo] != int32(2*w) && idx[ldo] != int32(2*w+1) && idx[ldo] != int32(3*w) && idx[ldo] != int32(3*w+1)) {
			t.Fatalf("n=%d: second output row's first index %d is outside its window", n, idx[ldo])
		}
	}
}

func TestMaxPoolRowMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, stride := range []int{1, 2, 3} {
		for _, kw := range []int{1, 2, 3, 5} {
			for _, n := range []int{1, 7, 16, 17, 33} {
				nrows := 3
				rows := make([][]float32, nrows)
				base := make([]int32, nrows)
				for i := range rows {
					rows[i] = randSlice(r, (n-1)*stride+kw)
					base[i] = int32(1000 * i)
				}
				rows[0][0], rows[1][0] = 5, 5 // a tie: the first wins
				if len(rows[2]) > 1 {
					rows[2][1] = float32(math.NaN())
				}
				out, idx := make([]float32, n), make([]int32, n)
				wOut, wIdx := make([]float32, n), make([]int32, n)
				MaxPoolRow(rows, base, kw, stride, out, idx)
				maxPoolRowGo(rows, base, kw, stride, wOut, wIdx)
				for o := range out {
					if out[o] != wOut[o] || idx[o] != wIdx[o] {
						t.Fatalf("stride %d kw %d n %d output %d: (%v, %d), want (%v, %d)", stride, kw, n, o, out[o], idx[o], wOut[o], wIdx[o])
					}
				}
				if idx[0] != 0 {
					t.Fatalf("stride %d kw %d n %d: tie went to index %d, want 0", stride, kw, n, idx[0])
				}
			}
		}
	}
}
