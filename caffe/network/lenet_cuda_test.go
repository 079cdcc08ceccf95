//go:build cuda

package network

import (
	"testing"

	"github.com/gocaffe/gocaffe/kernels/cuda"
)

// TestLeNetNumericsOnCUDA runs LeNet's golden numerics (forward, backward,
// float64) on the GPU: the CUDA backend's layers must give the CPU's
// numbers to the golden file's tolerance.
func TestLeNetNumericsOnCUDA(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	checkLeNetGolden(t, lenetNumerics(t, WithDevice(g)))
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
}
