package cpu

import (
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

func TestVectorOpsMatchGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100, 1000} {
		x, y := randSlice(r, n), randSlice(r, n)
		x64, y64 := to64(x), to64(y)

		ya := append([]float32(nil), y...)
		Axpy(float32(0.75), x, ya)
		ya64 := append([]float64(nil), y64...)
		Axpy(0.75, x64, ya64)
		for i := range ya {
			if math.Abs(float64(ya[i])-ya64[i]) > 1e-5*(1+math.Abs(ya64[i])) {
				t.Fatalf("Axpy n=%d [%d]: %v vs %v", n, i, ya[i], ya64[i])
			}
		}

		xs := append([]float32(nil), x...)
		Scal(float32(-1.5), xs)
		for i := range xs {
			if want := -1.5 * x64[i]; math.Abs(float64(xs[i])-want) > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("Scal n=%d [%d]: %v vs %v", n, i, xs[i], want)
			}
		}

		d32, d64 := Dot(x, y), Dot(x64, y64)
		if math.Abs(float64(d32)-d64) > 1e-4*(1+math.Abs(d64))*math.Sqrt(float64(n+1)) {
			t.Fatalf("Dot n=%d: %v vs %v", n, d32, d64)
		}

		if s32, s64 := Sum(x), Sum(x64); math.Abs(float64(s32)-s64) > 1e-4*(1+math.Abs(s64))*math.Sqrt(float64(n+1)) {
			t.Fatalf("Sum n=%d: %v vs %v", n, s32, s64)
		}
		xh := append([]float32(nil), x...)
		Shift(float32(0.25), xh)
		for i := range xh {
			if want := x64[i] + 0.25; math.Abs(float64(xh[i])-want) > 1e-6*(1+math.Abs(want)) {
				t.Fatalf("Shift n=%d [%d]: %v vs %v", n, i, xh[i], want)
			}
		}

		yb := append([]float64(nil), y64...)
		Axpby(2, x64, 3, yb)
		for i := range yb {
			if want := 2*x64[i] + 3*y64[i]; math.Abs(yb[i]-want) > 1e-12*(1+math.Abs(want)) {
				t.Fatalf("Axpby n=%d [%d]: %v vs %v", n, i, yb[i], want)
			}
		}
	}
}

func TestParallelCoversRangeOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 10, 1001} {
		for _, w := range []int{1, 2, 3, 8} {
			for _, grain := range []int{0, 1, 3, 64, 5000} {
				splits := map[string]func(fn func(worker, lo, hi int)){
					"ParallelN":       func(fn func(int, int, int)) { ParallelN(w, n, fn) },
					"ParallelDynamic": func(fn func(int, int, int)) { ParallelDynamic(w, n, grain, fn) },
				}
				for name, split := range splits {
					hits := make([]int32, n)
					split(func(worker, lo, hi int) {
						if worker < 0 || worker >= max(min(w, n), 1) {
							t.Errorf("%s: worker %d out of range for w=%d n=%d", name, worker, w, n)
						}
						if lo >= hi {
							t.Errorf("%s: empty piece [%d, %d)", name, lo, hi)
						}
						for i := lo; i < hi; i++ {
							atomic.AddInt32(&hits[i], 1)
						}
					})
					for i, h := range hits {
						if h != 1 {
							t.Fatalf("%s n=%d w=%d grain=%d: index %d visited %d times", name, n, w, grain, i, h)
						}
					}
				}
			}
		}
	}
	// Parallel covers its range too.
	hits := make([]int32, 777)
	Parallel(len(hits), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			atomic.AddInt32(&hits[i], 1)
		}
	})
	for i, h := range hits {
		if h != 1 {
			t.Fatalf("Parallel: index %d visited %d times", i, h)
		}
	}
}

func TestCopyAndAddRows(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, cols := range []int{0, 1, 8, 15, 16, 17, 24, 32, 40} {
		rows, lds, ldd := 5, cols+3, cols+2
		src := randSlice(r, rows*lds)
		dst := randSlice(r, rows*ldd)
		orig := append([]float32(nil), dst...)
		CopyRows(dst, ldd, src, lds, rows, cols)
		for y := 0; y < rows; y++ {
			for x := 0; x < ldd; x++ {
				want := orig[y*ldd+x]
				if x < cols {
					want = src[y*lds+x]
				}
				if dst[y*ldd+x] != want {
					t.Fatalf("CopyRows cols=%d (%d,%d) = %v, want %v", cols, y, x, dst[y*ldd+x], want)
				}
			}
		}
		copy(dst, orig)
		AddRows(dst, ldd, src, lds, rows, cols)
		d64 := to64(orig)
		AddRows(d64, ldd, to64(src), lds, rows, cols)
		for i := range dst {
			if float64(dst[i]) != float64(float32(d64[i])) {
				t.Fatalf("AddRows cols=%d [%d] = %v, want %v", cols, i, dst[i], d64[i])
			}
		}
	}
}

func TestSGDMomentumMatchesRef(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{0, 1, 15, 16, 33, 1000} {
		for _, norm := range []float32{1, 0.5} {
			diff, data, hist := randSlice(r, n), randSlice(r, n), randSlice(r, n)
			d2, w2, h2 := append([]float32(nil), diff...), append([]float32(nil), data...), append([]float32(nil), hist...)
			SGDMomentum(diff, data, hist, norm, 5e-4, 0.01, 0.9)
			SGDMomentumRef(d2, w2, h2, norm, 5e-4, 0.01, 0.9)
			for i := range diff {
				// Same operations in the same order, no fused multiply-add:
				// the results agree exactly.
				if diff[i] != d2[i] || data[i] != w2[i] || hist[i] != h2[i] {
					t.Fatalf("n=%d norm=%v element %d: (%v %v %v), want (%v %v %v)", n, norm, i, diff[i], data[i], hist[i], d2[i], w2[i], h2[i])
				}
			}
		}
	}
}

// TestAddRowSums checks the per-row sums (a bias gradient's channels)
// against float64 sums, at widths below, at and around the vector sizes,
// and that they add to what out held; float64 takes the generic path.
func TestAddRowSums(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, cols := range []int{1, 5, 8, 9, 15, 16, 17, 31, 32, 33, 48, 64, 100, 576, 1024} {
		for _, rows := range []int{1, 3, 8, 50} {
			x := randSlice(r, rows*cols)
			out := randSlice(r, rows)
			out64 := to64(out)
			want := make([]float64, rows)
			for i := range want {
				want[i] = float64(out[i])
				for _, v := range x[i*cols : (i+1)*cols] {
					want[i] += float64(v)
				}
			}
			AddRowSums(x, cols, out)
			AddRowSums(to64(x), cols, out64)
			for i, w := range want {
				if math.Abs(float64(out[i])-w) > 1e-5*(math.Sqrt(float64(cols))+math.Abs(w)) {
					t.Fatalf("float32, cols %d rows %d: row %d sum %v, want %v", cols, rows, i, out[i], w)
				}
				if math.Abs(out64[i]-w) > 1e-12*float64(cols) {
					t.Fatalf("float64, cols %d rows %d: row %d sum %v, want %v", cols, rows, i, out64[i], w)
				}
			}
		}
	}
}
