//go:build cuda

package network

import (
	"math"
	"testing"

	"github.com/gocaffe/gocaffe/kernels/cuda"
)

// TestSplitEltwiseReshapeOnCUDA runs the Split / Eltwise PROD and MAX /
// Flatten / Reshape net on the GPU in float64 and compares its loss and
// gradients with the CPU's; every layer but the input and the loss must
// be placed on the GPU.
func TestSplitEltwiseReshapeOnCUDA(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	wantLoss, wantDiffs, wantDx := forwardBackward(t, shapeEltwiseNet)
	loss, diffs, dx := forwardBackward(t, shapeEltwiseNet, WithDevice(g))
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	// float64 on both sides; the GPU's GEMMs and reductions sum in
	// another order than the CPU's.
	sameNumbers(t, 1e-10, loss, wantLoss, diffs, wantDiffs, dx, wantDx)
	placedOnDevice(t, shapeEltwiseNet, g, 3)
}

// TestAccuracyOnCUDA: the Accuracy layers (ties, a NaN score, ignored
// labels, per-class accuracy, top 2) count on the GPU what they count on
// the CPU, in float64.
func TestAccuracyOnCUDA(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	want := accuracies(t)
	got := accuracies(t, WithDevice(g))
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("accuracy output %d: %v on the GPU, %v on the CPU (all: %v, %v)", i, got[i], want[i], got, want)
		}
	}
}

// TestBatchNormOnCUDA: BatchNorm with batch statistics (in place) and
// global statistics on the GPU against the CPU in float64: one forward and
// backward pass, then the running statistics and scale factor after one
// and two forward passes.
func TestBatchNormOnCUDA(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	wantLoss, wantDiffs, wantDx := forwardBackward(t, batchNormNet)
	loss, diffs, dx := forwardBackward(t, batchNormNet, WithDevice(g))
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	sameNumbers(t, 1e-10, loss, wantLoss, diffs, wantDiffs, dx, wantDx)
	placedOnDevice(t, batchNormNet, g, 0)
	for passes := 1; passes <= 2; passes++ {
		want := batchNormStats(t, passes)
		got := batchNormStats(t, passes, WithDevice(g))
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-10*max(1, math.Abs(want[i])) {
				t.Fatalf("BatchNorm blob value %d after %d passes: %v on the GPU, %v on the CPU", i, passes, got[i], want[i])
			}
		}
	}
}

// TestMixedNetOnCUDA: the mixed net (InnerProduct, Eltwise SUM, ReLU,
// Concat, Dropout, TanH on the GPU; Reduction on the CPU) on the GPU
// against the CPU in float64.
func TestMixedNetOnCUDA(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	wantLoss, wantDiffs, wantDx := forwardBackward(t, mixedNet)
	loss, diffs, dx := forwardBackward(t, mixedNet, WithDevice(g))
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	sameNumbers(t, 1e-10, loss, wantLoss, diffs, wantDiffs, dx, wantDx)
}
