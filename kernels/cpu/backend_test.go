package cpu

import (
	"math"
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
