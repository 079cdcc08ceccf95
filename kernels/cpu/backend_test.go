package cpu

import (
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
