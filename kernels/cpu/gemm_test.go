package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// checkGemm runs gemm on one case and compares it with GemmRef in float64,
// including that C's padding columns (ldc > n) are left untouched.
func checkGemm(t *testing.T, name string, gemm func(bool, bool, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int),
	tA, tB bool, m, n, k int, alpha, beta float32, r *rand.Rand) {
	t.Helper()
	// Stored shapes with padded leading dimensions.
	ar, ac := m, k
	if tA {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB {
		br, bc = n, k
	}
	lda, ldb, ldc := ac+3, bc+1, n+2
	a := randSlice(r, max(ar*lda, 1))
	b := randSlice(r, max(br*ldb, 1))
	c := randSlice(r, max(m*ldc, 1))
	want := to64(c)
	GemmRef(tA, tB, m, n, k, float64(alpha), to64(a), lda, to64(b), ldb, float64(beta), want, ldc)
	gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	for i := 0; i < m; i++ {
		for j := 0; j < ldc; j++ {
			got, w := float64(c[i*ldc+j]), want[i*ldc+j]
			tol := 1e-4 * (1 + math.Abs(w)) * math.Sqrt(float64(k+1))
			if j >= n {
				tol = 0 // padding must be untouched
			}
			if math.Abs(got-w) > tol || math.IsNaN(got) {
				t.Fatalf("%s tA=%v tB=%v m=%d n=%d k=%d alpha=%v beta=%v: C[%d,%d] = %v, want %v", name, tA, tB, m, n, k, alpha, beta, i, j, got, w)
			}
		}
	}
}

func TestSgemmMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	shapes := [][3]int{
		{1, 1, 1}, {1, 1, 7}, {6, 32, 1}, {7, 33, 5}, {5, 31, 17}, {13, 17, 19},
		{20, 576, 25}, {50, 64, 500}, {64, 500, 800}, {97, 65, 257}, {3, 2100, 9},
		{130, 40, 300}, {1, 100, 1}, {100, 1, 3}, {2, 3, 0}, {9, 4160, 300},
		// 32-wide tiles eight rows at a time (sgemm8x32), with A in place
		// and packed (n ≥ 256), and a 4-row block left over.
		{8, 32, 3}, {13, 96, 19}, {21, 288, 7}, {75, 32, 1024}, {800, 32, 256},
	}
	for _, s := range shapes {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, ab := range [][2]float32{{1, 0}, {1, 1}, {0.5, -2}, {0, 0.5}} {
					checkGemm(t, "Sgemm", Sgemm, tA, tB, s[0], s[1], s[2], ab[0], ab[1], r)
					checkGemm(t, "SgemmSerial", SgemmSerial, tA, tB, s[0], s[1], s[2], ab[0], ab[1], r)
				}
			}
		}
	}
}

func TestSgemmBetaZeroOverwritesNaN(t *testing.T) {
	c := []float32{float32(math.NaN()), float32(math.Inf(1))}
	a := []float32{1, 2}
	b := []float32{3}
	Sgemm(false, false, 2, 1, 1, 1, a, 1, b, 1, 0, c, 1)
	if c[0] != 3 || c[1] != 6 {
		t.Fatalf("C = %v, want [3 6]", c)
	}
}

func TestGemmGenericDispatch(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	m, n, k := 9, 40, 11
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	c32 := make([]float32, m*n)
	Gemm(false, false, m, n, k, 1, a, k, b, n, 0, c32, n)
	c64 := make([]float64, m*n)
	Gemm(false, false, m, n, k, 1, to64(a), k, to64(b), n, 0, c64, n)
	c64s := make([]float64, m*n)
	GemmSerial(false, false, m, n, k, 1, to64(a), k, to64(b), n, 0, c64s, n)
	for i := range c32 {
		if math.Abs(float64(c32[i])-c64[i]) > 1e-4*(1+math.Abs(c64[i])) || c64[i] != c64s[i] {
			t.Fatalf("element %d: float32 %v, float64 %v, serial %v", i, c32[i], c64[i], c64s[i])
		}
	}
}

func TestMicroKernelMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var acc [mr * nr]float32
	for _, kb := range []int{1, 2, 7, 25, 256} {
		for _, cs := range []int{1, 3} {
			for _, cols := range []int{nr, 48, 33, 32, 20, 16, 7} {
				// Whole tiles (rows = mr, cols = nr or 32) go straight
				// into C, the others through acc: both with and without
				// overwrite.
				for _, ro := range []struct {
					rows      int
					overwrite bool
				}{{mr, false}, {mr, true}, {mr - 1, true}, {1, false}} {
					rows, overwrite := ro.rows, ro.overwrite
					ldb := nr + 9*(cs-1)/2 // packed (nr) and in place (a wider row)
					a, b := randSlice(r, (kb*cs+2)*mr), randSlice(r, (kb-1)*ldb+nr)
					offs := [mr]int{0, kb*cs + 1, 2*kb*cs + 1, 0}
					ldc := nr + 5
					c1 := randSlice(r, mr*ldc)
					c2 := append([]float32(nil), c1...)
					microKernel(kb, 0.5, a, &offs, cs, b, ldb, c1, ldc, rows, cols, overwrite, &acc)
					microKernelGo(kb, 0.5, a, &offs, cs, b, ldb, c2, ldc, rows, cols, overwrite)
					for i := range c1 {
						if d := math.Abs(float64(c1[i] - c2[i])); d > 1e-4*(1+math.Abs(float64(c2[i]))) {
							t.Fatalf("kb=%d cs=%d rows=%d cols=%d element %d: %v vs %v", kb, cs, rows, cols, i, c1[i], c2[i])
						}
					}
				}
			}
		}
	}
}

func TestGemmTileUse(t *testing.T) {
	for _, c := range []struct {
		m, n int
		want float64
	}{
		{4, 64, 1}, {8, 128, 1}, {25, 20, 500.0 / (28 * 32)}, {500, 50, 50.0 / 64}, {75, 32, 75.0 / 76},
		{4, 100, 100.0 / 128}, {4, 80, 80.0 / 96}, {0, 5, 0},
	} {
		if got := GemmTileUse(c.m, c.n); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("GemmTileUse(%d, %d) = %v, want %v", c.m, c.n, got, c.want)
		}
	}
}

func ExampleGemm() {
	a := []float64{1, 2, 3, 4} // 2×2
	b := []float64{5, 6, 7, 8} // 2×2
	c := make([]float64, 4)
	Gemm(false, true, 2, 2, 2, 1, a, 2, b, 2, 0, c, 2) // C = A·Bᵀ
	fmt.Println(c)
	// Output: [17 23 39 53]
}
