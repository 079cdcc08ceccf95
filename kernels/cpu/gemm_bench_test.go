package cpu

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// gemmShapes are the products LeNet and CIFAR-10 quick run (per image for
// convolutions, per batch for inner products), plus a square reference.
var gemmShapes = []struct {
	name    string
	tA, tB  bool
	m, n, k int
}{
	{"lenet_conv1_fwd_20x576x25", false, false, 20, 576, 25},
	{"lenet_conv2_fwd_50x64x500", false, false, 50, 64, 500},
	{"lenet_conv2_wgrad_50x500x64", false, true, 50, 500, 64},
	{"lenet_conv2_dgrad_500x64x50", true, false, 500, 64, 50},
	{"lenet_conv2_wgradT_500x50x64", false, true, 500, 50, 64},
	{"lenet_conv1_wgradT_25x20x576", false, true, 25, 20, 576},
	{"lenet_conv1_wgrad_20x25x576", false, true, 20, 25, 576},
	{"lenet_ip1_fwd_b64_64x500x800", false, true, 64, 500, 800},
	{"lenet_ip1_wgrad_b64_500x800x64", true, false, 500, 800, 64},
	{"lenet_ip1_dgrad_b64_64x800x500", false, false, 64, 800, 500},
	{"lenet_ip1_fwd_b512_512x500x800", false, true, 512, 500, 800},
	{"lenet_ip1_wgrad_b512_500x800x512", true, false, 500, 800, 512},
	{"lenet_ip1_dgrad_b512_512x800x500", false, false, 512, 800, 500},
	{"cifar_conv2_fwd_32x256x800", false, false, 32, 256, 800},
	// Batched convolution: the column matrices of all 64 images side by side.
	{"lenet_conv1_fwd_b64_20x36864x25", false, false, 20, 36864, 25},
	{"lenet_conv1_wgrad_b64_20x25x36864", false, true, 20, 25, 36864},
	{"lenet_conv2_fwd_b64_50x4096x500", false, false, 50, 4096, 500},
	{"lenet_conv2_wgrad_b64_50x500x4096", false, true, 50, 500, 4096},
	{"lenet_conv2_dgrad_b64_500x4096x50", true, false, 500, 4096, 50},
	{"square_512", false, false, 512, 512, 512},
}

func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range gemmShapes {
		a := randSlice(r, s.m*s.k)
		bb := randSlice(r, s.k*s.n)
		c := randSlice(r, s.m*s.n)
		lda, ldb := s.k, s.n
		if s.tA {
			lda = s.m
		}
		if s.tB {
			ldb = s.k
		}
		for _, v := range []struct {
			name string
			f    func(bool, bool, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int)
		}{{"parallel", Sgemm}, {"serial", SgemmSerial}} {
			b.Run(fmt.Sprintf("%s/%s", s.name, v.name), func(b *testing.B) {
				flops := 2 * float64(s.m*s.n*s.k)
				t0 := cpuNow()
				for b.Loop() {
					v.f(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				// Per CPU-second: steadier than wall time on a shared machine.
				b.ReportMetric(flops*float64(b.N)/(cpuNow()-t0).Seconds()/1e9, "cpu-GFLOP/s")
			})
		}
	}
}

// BenchmarkConvWeightGrad compares two ways to compute a convolution's
// weight gradient over a batch: a GEMM per image into the transposed
// gradient (the per-image path) and one GemmNTSum over the batch. Serial,
// with CPU-time GFLOP/s, so other load on the machine matters less.
func BenchmarkConvWeightGrad(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, s := range []struct {
		name              string
		batch, oc, kd, sp int
	}{{"lenet_conv1_b64", 64, 20, 25, 576}, {"cifar_conv1_b100", 100, 32, 75, 1024}, {"cifar_conv3_b100", 100, 64, 800, 64}, {"lenet_conv2_b64", 64, 50, 500, 64}, {"cifar_conv2_b100", 100, 32, 800, 256}} {
		dy := randSlice(r, s.batch*s.oc*s.sp)
		col := randSlice(r, s.batch*s.kd*s.sp)
		dw := make([]float32, s.oc*s.kd)
		flops := 2 * float64(s.batch*s.oc*s.kd*s.sp)
		b.Run(s.name+"/per_image_gemm", func(b *testing.B) {
			t0 := cpuNow()
			for b.Loop() {
				for n := 0; n < s.batch; n++ {
					SgemmSerial(false, true, s.kd, s.oc, s.sp, 1, col[n*s.kd*s.sp:], s.sp, dy[n*s.oc*s.sp:], s.sp, 1, dw, s.oc)
				}
			}
			b.ReportMetric(flops*float64(b.N)/(cpuNow()-t0).Seconds()/1e9, "cpu-GFLOP/s")
		})
		b.Run(s.name+"/nt_sum", func(b *testing.B) {
			t0 := cpuNow()
			for b.Loop() {
				ntBlock(s.batch, s.oc, s.kd, s.sp, dy, s.sp, s.oc*s.sp, col, s.sp, s.kd*s.sp, dw, s.kd)
			}
			b.ReportMetric(flops*float64(b.N)/(cpuNow()-t0).Seconds()/1e9, "cpu-GFLOP/s")
		})
	}
}

// cpuNow is the process's user+system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
