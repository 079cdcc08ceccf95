package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
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
	{"lenet_ip1_fwd_b512_512x500x800", false, true, 512, 500, 800},
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
				for b.Loop() {
					v.f(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
