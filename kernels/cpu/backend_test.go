package cpu

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/kernels"
)

// The CPU device hands out backends that satisfy the interface for both
// element types, and kernels.For picks the right one.
func TestDeviceBackends(t *testing.T) {
	var _ kernels.Backend[float32] = backend[float32]{}
	var _ kernels.Backend[float64] = backend[float64]{}
	if got := kernels.For[float32](Device).Device().Name(); got != "cpu" {
		t.Fatalf("float32 backend device %q, want cpu", got)
	}
	b := kernels.For[float64](Device)
	x := kernels.HostVec([]float64{1, 2, 3, 4})
	y := kernels.HostVec([]float64{1, 1, 1, 1})
	b.Axpy(2, x.Slice(1, 3), y.Slice(0, 2))
	if got := y.Host(); got[0] != 5 || got[1] != 7 || got[2] != 1 {
		t.Fatalf("Axpy over slices gave %v, want [5 7 1 1]", got)
	}
	b.AddBias(y, kernels.HostVec([]float64{10, 20}), 1, 2, 2)
	if got := y.Host(); got[0] != 15 || got[1] != 17 || got[2] != 21 || got[3] != 21 {
		t.Fatalf("AddBias gave %v, want [15 17 21 21]", got)
	}
}

// TestReLUBackwardEdges checks the branchless gradient selection on the
// values where bit tricks could go wrong.
func TestReLUBackwardEdges(t *testing.T) {
	xs := []float64{0, math.Copysign(0, -1), 5e-324, -5e-324, 1e-45, -1e-45, 1, -1, math.Inf(1), math.Inf(-1), math.MaxFloat32, -math.MaxFloat32}
	const s = 0.25
	want := func(v float64) float64 {
		if v > 0 {
			return 3
		}
		return 3 * s
	}
	x64, dy64, dx64 := make([]float64, len(xs)), make([]float64, len(xs)), make([]float64, len(xs))
	x32, dy32, dx32 := make([]float32, len(xs)), make([]float32, len(xs)), make([]float32, len(xs))
	for i, v := range xs {
		x64[i], dy64[i] = v, 3
		x32[i], dy32[i] = float32(v), 3
	}
	reluBackward64(x64, dy64, dx64, s)
	reluBackward32(x32, dy32, dx32, s)
	for i, v := range xs {
		if dx64[i] != want(v) {
			t.Errorf("float64 x=%g: dx %g, want %g", v, dx64[i], want(v))
		}
		if w := want(float64(float32(v))); float64(dx32[i]) != w {
			t.Errorf("float32 x=%g: dx %g, want %g", float32(v), dx32[i], w)
		}
	}
}

// TestGemmBatched checks the strided batched GEMM against a float64
// reference at odd shapes, every transposition, a shared a (strideA 0)
// and c matrices with gaps between them, in both element types.
func TestGemmBatched(t *testing.T) {
	testGemmBatched[float32](t, 1e-5)
	testGemmBatched[float64](t, 1e-12)
}

func testGemmBatched[T Float](t *testing.T, tol float64) {
	b := Backend[T]()
	for _, s := range [][4]int{{1, 1, 1, 1}, {5, 7, 13, 3}, {37, 29, 65, 4}, {20, 25, 576, 9}} {
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
			a, bb, c := make([]T, batch*sa+max(m, k)*lda), make([]T, batch*sb), make([]T, batch*sc)
			for i := range a {
				a[i] = T(math.Sin(float64(i) * 0.37))
			}
			for i := range bb {
				bb[i] = T(math.Cos(float64(i) * 0.21))
			}
			for i := range c {
				c[i] = T(math.Sin(float64(i)*0.13 + 1))
			}
			ref := make([]float64, len(c))
			for i := range c {
				ref[i] = float64(c[i])
			}
			const alpha, beta = 0.7, -0.3
			for p := 0; p < batch; p++ {
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						var sum float64
						for l := 0; l < k; l++ {
							av := a[p*sa+i*lda+l]
							if ta {
								av = a[p*sa+l*lda+i]
							}
							bv := bb[p*sb+l*ldb+j]
							if tb {
								bv = bb[p*sb+j*ldb+l]
							}
							sum += float64(av) * float64(bv)
						}
						o := p*sc + i*ldc + j
						ref[o] = alpha*sum + beta*ref[o]
					}
				}
			}
			b.GemmBatched(ta, tb, batch, m, n, k, alpha, kernels.HostVec(a), lda, sa, kernels.HostVec(bb), ldb, sb, beta, kernels.HostVec(c), ldc, sc)
			var num, den float64
			for i := range c {
				d := float64(c[i]) - ref[i]
				num += d * d
				den += ref[i] * ref[i]
			}
			if e := math.Sqrt(num / den); !(e <= tol) {
				t.Errorf("GemmBatched %T batch %d m %d n %d k %d ta=%v tb=%v shared a=%v: relative error %g > %g", alpha, batch, m, n, k, ta, tb, shared, e, tol)
			}
		}
	}
}

// TestSReLUMatchesScalar checks the vector ReLU in both directions
// against the scalar loops, value for value, at lengths around the
// 8- and 16-lane widths, over the edge values of TestReLUBackwardEdges,
// NaN and random values, with slopes 0 and 0.1.
func TestSReLUMatchesScalar(t *testing.T) {
	edges := []float32{0, float32(math.Copysign(0, -1)), 1e-45, -1e-45, 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, -math.MaxFloat32, float32(math.NaN())}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range []float32{0, 0.1} {
		for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 33, 100} {
			x, dy := make([]float32, n), make([]float32, n)
			for i := range x {
				x[i], dy[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
				if i < len(edges) {
					x[(i*5)%n] = edges[i]
				}
			}
			want, got := make([]float32, n), make([]float32, n)
			reluForward(x, want, s)
			SReLU(x, got, s)
			for i := range x {
				// -0 and +0 both pass; NaN must stay NaN.
				if got[i] != want[i] && !(got[i] != got[i] && want[i] != want[i]) {
					t.Errorf("s=%g n=%d: SReLU(%g) = %g, want %g", s, n, x[i], got[i], want[i])
				}
			}
			reluBackward32(x, dy, want, s)
			SReLUBackward(x, dy, got, s)
			for i := range x {
				if x[i] != x[i] {
					continue // the scalar loop reads NaN's bits; either product is a choice
				}
				if got[i] != want[i] {
					t.Errorf("s=%g n=%d: SReLUBackward(x=%g, dy=%g) = %g, want %g", s, n, x[i], dy[i], got[i], want[i])
				}
			}
		}
	}
}

// TestParallelElemsCoversRangeOnce runs ParallelElems at 1 to 32 workers
// (goexec.threads may set GOMAXPROCS up to 32 on a 2-core machine too)
// over lengths around the grain, and checks that every index is visited
// exactly once.
func TestParallelElemsCoversRangeOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 3, 8, 16, 32} {
		runtime.GOMAXPROCS(procs)
		for _, n := range []int{0, 1, 100, 2*elemGrain - 1, 2 * elemGrain, 5*elemGrain + 3, 40 * elemGrain} {
			seen := make([]int32, n)
			ParallelElems(n, elemGrain, func(lo, hi int) {
				if lo >= hi || hi-lo < min(n, elemGrain)/2 {
					t.Errorf("procs %d n %d: piece [%d, %d) under half the grain", procs, n, lo, hi)
				}
				for i := lo; i < hi; i++ {
					seen[i]++ // pieces are disjoint: no data race
				}
			})
			for i, c := range seen {
				if c != 1 {
					t.Fatalf("procs %d n %d: index %d visited %d times", procs, n, i, c)
				}
			}
		}
	}
}

func TestBackendRoutes(t *testing.T) {
	var _ kernels.ConvRouter = backend[float32]{}
	var _ kernels.WinogradConv[float64] = backend[float64]{}
}

// TestConvRouteSetting checks GOCAFFE_CPU_CONV's values, that a wrong one
// is reported with the setting's name, and that a device keeps routes per
// shape and pass apart from another device's.
func TestConvRouteSetting(t *testing.T) {
	for v, want := range map[string]kernels.ConvRoute{"": kernels.RouteRule, "rule": kernels.RouteRule, "auto": kernels.RouteAuto, "gemm": kernels.RouteGemm,
		"Implicit": kernels.RouteImplicit, " winograd ": kernels.RouteWinograd} {
		t.Setenv(ConvRouteSetting, v)
		got, err := kernels.For[float32](NewDevice()).(kernels.ConvRouter).ConvRouteMode()
		if err != nil || got != want {
			t.Errorf("%s=%q: %v, %v; want %v", ConvRouteSetting, v, got, err, want)
		}
	}
	t.Setenv(ConvRouteSetting, "fastest")
	d := NewDevice()
	if _, err := kernels.For[float64](d).(kernels.ConvRouter).ConvRouteMode(); err == nil ||
		!strings.Contains(err.Error(), ConvRouteSetting) || !strings.Contains(err.Error(), "fastest") {
		t.Errorf("mode error %v, want one naming %s and the value", err, ConvRouteSetting)
	}
	if m, err := kernels.For[float32](NewDevice(WithConvRoute(kernels.RouteGemm))).(kernels.ConvRouter).ConvRouteMode(); err != nil || m != kernels.RouteGemm {
		t.Errorf("WithConvRoute(gemm): %v, %v", m, err)
	}
	k := kernels.ConvRouteKey{Shape: kernels.ConvShape{N: 2, C: 3}, Pass: kernels.PassData}
	r := kernels.For[float32](d).(kernels.ConvRouter)
	r.SetConvRoute(k, kernels.RouteWinograd, nil)
	if got, ok := r.ConvRoute(k); !ok || got != kernels.RouteWinograd {
		t.Errorf("kept %v, %v", got, ok)
	}
	if _, ok := r.ConvRoute(kernels.ConvRouteKey{Shape: k.Shape}); ok {
		t.Errorf("forward pass has the data pass's route")
	}
	if _, ok := kernels.For[float32](NewDevice()).(kernels.ConvRouter).ConvRoute(k); ok {
		t.Errorf("a new device has another device's route")
	}
}
