package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestMaxPool2x2MatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{0, 1, 5, 16, 17, 40} {
		r0, r1 := randSlice(r, 2*n+1), randSlice(r, 2*n)
		// Ties, NaN and values at or below -FLT_MAX exercise the strict,
		// ordered comparison.
		if n > 3 {
			r0[0], r0[1], r1[0], r1[1] = 2, 2, 2, 2
			r0[2], r0[3], r1[2], r1[3] = float32(math.NaN()), 1, float32(math.Inf(-1)), 1
			r0[4], r0[5], r1[4], r1[5] = -math.MaxFloat32, float32(math.Inf(-1)), -math.MaxFloat32, -math.MaxFloat32
		}
		out, idx := make([]float32, n), make([]int32, n)
		wantOut, wantIdx := make([]float32, n), make([]int32, n)
		MaxPool2x2(r0, r1, out, idx, 100, 200)
		maxPool2x2Go(r0, r1, wantOut, wantIdx, 100, 200)
		for o := range out {
			if out[o] != wantOut[o] || idx[o] != wantIdx[o] {
				t.Fatalf("n=%d output %d: (%v, %d), want (%v, %d)", n, o, out[o], idx[o], wantOut[o], wantIdx[o])
			}
		}
		if n > 3 && (idx[0] != 100 || idx[1] != 103 || idx[2] != -1) {
			t.Fatalf("n=%d: special windows gave %v, want [100 103 -1 ...]", n, idx[:3])
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
