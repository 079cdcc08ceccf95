package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestGemmNTSumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, s := range []struct{ batch, m, n, k int }{
		{1, 1, 1, 1}, {3, 4, 2, 16}, {2, 5, 3, 17}, {4, 20, 25, 40}, {3, 50, 37, 64}, {2, 7, 200, 33},
		{64, 20, 25, 576}, // LeNet conv1's weight gradient at batch 64
	} {
		t.Run(fmt.Sprintf("%dx%dx%dx%d", s.batch, s.m, s.n, s.k), func(t *testing.T) {
			// Padded strides: rows and batch items are not contiguous.
			lda, ldb, ldc := s.k+3, s.k+1, s.n+2
			sa, sb := s.m*lda+5, s.n*ldb+7
			a, b := randSlice(r, s.batch*sa), randSlice(r, s.batch*sb)
			c := randSlice(r, s.m*ldc)
			want := make([]float64, len(c))
			for i, v := range c {
				want[i] = float64(v)
			}
			a64, b64 := make([]float64, len(a)), make([]float64, len(b))
			for i, v := range a {
				a64[i] = float64(v)
			}
			for i, v := range b {
				b64[i] = float64(v)
			}
			GemmNTSumRef(s.batch, s.m, s.n, s.k, a64, lda, sa, b64, ldb, sb, want, ldc)
			GemmNTSum(s.batch, s.m, s.n, s.k, a, lda, sa, b, ldb, sb, c, ldc)
			tol := 1e-5 * math.Sqrt(float64(s.batch*s.k))
			for i := 0; i < s.m; i++ {
				for j := 0; j < ldc; j++ {
					got, w := float64(c[i*ldc+j]), want[i*ldc+j]
					if j >= s.n {
						// Padding between rows is left alone.
						if got != w {
							t.Fatalf("C[%d][%d] (padding) changed: %v, want %v", i, j, got, w)
						}
						continue
					}
					if math.Abs(got-w) > tol*(1+math.Abs(w)) {
						t.Fatalf("C[%d][%d] = %v, want %v", i, j, got, w)
					}
				}
			}
		})
	}
}
