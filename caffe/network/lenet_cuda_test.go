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
	g.D.UseDNN(false) // GoCaffe's own convolution kernels; cuDNN's are the next test's
	checkLeNetGolden(t, lenetNumerics(t, WithDevice(g)))
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestLeNetNumericsOnCUDNN is TestLeNetNumericsOnCUDA with the
// convolutions on cuDNN (float64), which must be the ones that ran.
func TestLeNetNumericsOnCUDNN(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	if !g.D.UseDNN(true) {
		t.Skipf("cuDNN not loaded, cuDNN test skipped: %s", g.D.DNN())
	}
	before := g.D.DNNCalls()
	checkLeNetGolden(t, lenetNumerics(t, WithDevice(g)))
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	if n := g.D.DNNCalls() - before; n < 4 {
		t.Fatalf("%d cuDNN calls: LeNet's two convolutions did not run on cuDNN forward and backward", n)
	}
}
