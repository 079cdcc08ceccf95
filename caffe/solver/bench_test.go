package solver

import (
	"syscall"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// BenchmarkSGDUpdateLeNet times the fused SGD+L2 update over LeNet's 431,080
// parameters.
func BenchmarkSGDUpdateLeNet(b *testing.B) {
	const n = 431080
	diff, data, hist := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range diff {
		diff[i], data[i] = float32(i%7)*1e-3, float32(i%5)*1e-2
	}
	be := layer.HostBackend[float32]()
	for b.Loop() {
		be.SGDMomentum(kernels.HostVec(diff), kernels.HostVec(data), kernels.HostVec(hist), 1, 5e-4, 0.01, 0.9)
	}
}

// BenchmarkAdamUpdateLeNet times the generic path (Adam) over the same size.
func BenchmarkAdamUpdateLeNet(b *testing.B) {
	const n = 431080
	diff, m, v := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range diff {
		diff[i] = float32(i%7) * 1e-3
	}
	h := Hyper{Momentum: 0.9, Momentum2: 0.999, Delta: 1e-8}
	for b.Loop() {
		ComputeUpdate(Adam, h, 0.001, 10, diff, [][]float32{m, v})
	}
}

// BenchmarkCheckFiniteLeNet times the per-iteration divergence check over
// LeNet's 431,080 parameter gradients (the finite case: one dot-product pass).
func BenchmarkCheckFiniteLeNet(b *testing.B) {
	ps := []*blob.Blob[float32]{blob.New[float32](431080)}
	for i, d := 0, ps[0].Diff(); i < len(d); i++ {
		d[i] = float32(i%7) * 1e-3
	}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	for b.Loop() {
		if s := gradSumSq(ps); !isFinite(s) {
			b.Fatal(s)
		}
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := (ru1.Utime.Nano() + ru1.Stime.Nano()) - (ru0.Utime.Nano() + ru0.Stime.Nano())
	b.ReportMetric(float64(cpu)/1e3/float64(b.N), "cpu-µs/op") // the machine may be shared: CPU time, not wall
}
