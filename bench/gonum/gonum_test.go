// Package gonum compares GoCaffe's SGEMM (kernels/cpu) with gonum's pure-Go
// BLAS Sgemm on the shapes LeNet and CIFAR-10 quick run. It is a separate
// module so the main module does not depend on gonum.
//
//	cd bench/gonum && GOEXPERIMENT=simd go test -bench . -benchtime 200x
package gonum

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gocaffe/gocaffe/kernels/cpu"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

var shapes = []struct {
	name    string
	tA, tB  bool
	m, n, k int
}{
	{"lenet_conv1_fwd_20x576x25", false, false, 20, 576, 25},
	{"lenet_conv2_fwd_50x64x500", false, false, 50, 64, 500},
	{"lenet_conv2_wgradT_500x50x64", false, true, 500, 50, 64},
	{"lenet_conv2_dgrad_500x64x50", true, false, 500, 64, 50},
	{"lenet_ip1_fwd_b64_64x500x800", false, true, 64, 500, 800},
	{"lenet_ip1_fwd_b512_512x500x800", false, true, 512, 500, 800},
	{"cifar_conv2_fwd_32x256x800", false, false, 32, 256, 800},
	{"square_512", false, false, 512, 512, 512},
}

func rnd(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// TestSameResult checks that both libraries agree, so the benchmark
// compares equal work.
func TestSameResult(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range shapes[:5] {
		a, b := rnd(r, s.m*s.k), rnd(r, s.k*s.n)
		lda, ldb := s.k, s.n
		if s.tA {
			lda = s.m
		}
		if s.tB {
			ldb = s.k
		}
		c1, c2 := make([]float32, s.m*s.n), make([]float32, s.m*s.n)
		cpu.Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, c1, s.n)
		gonum.Implementation{}.Sgemm(trans(s.tA), trans(s.tB), s.m, s.n, s.k, 1, a, lda, b, ldb, 0, c2, s.n)
		for i := range c1 {
			if d := c1[i] - c2[i]; d > 1e-3 || d < -1e-3 {
				t.Fatalf("%s: element %d: %v vs gonum %v", s.name, i, c1[i], c2[i])
			}
		}
	}
}

func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range shapes {
		a, bb, c := rnd(r, s.m*s.k), rnd(r, s.k*s.n), rnd(r, s.m*s.n)
		lda, ldb := s.k, s.n
		if s.tA {
			lda = s.m
		}
		if s.tB {
			ldb = s.k
		}
		flops := 2 * float64(s.m*s.n*s.k)
		b.Run(fmt.Sprintf("%s/gocaffe", s.name), func(b *testing.B) {
			for b.Loop() {
				cpu.Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("%s/gonum", s.name), func(b *testing.B) {
			impl := gonum.Implementation{}
			for b.Loop() {
				impl.Sgemm(trans(s.tA), trans(s.tB), s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
