//go:build goexperiment.simd && amd64

package cpu

import (
	"math/rand/v2"
	"simd/archsimd"
	"testing"
)

// upperDirty is the XINUSE bits of the upper halves of YMM0-15 and
// ZMM0-15, the state that makes SSE instructions pay a transition.
const upperDirty = 1<<2 | 1<<6

// TestKernelsLeaveUpperClean checks, where the CPU reports it (XGETBV with
// ECX = 1), that every archsimd kernel returns with the vector registers'
// upper halves clean, at each kernel level: Go's scalar float code and
// struct copies after a kernel are SSE, and a dirty upper state made them
// (max pooling's Go loop, math.Pow) several times slower.
func TestKernelsLeaveUpperClean(t *testing.T) {
	if !hasAVX || cpuidD1()&4 == 0 {
		t.Skip("this CPU does not report XINUSE (XGETBV with ECX = 1)")
	}
	r := rand.New(rand.NewPCG(3, 4))
	x, y, z := randSlice(r, 1000), randSlice(r, 1000), randSlice(r, 1000)
	out, idx := make([]float32, 64), make([]int32, 64)
	rows := [][]float32{x[:40], x[40:80], x[80:120]}
	acc := new([mr * nr]float32)
	var offs [mr]int
	var offA [ntRows]int
	var offB [ntCols]int
	kernels := []struct {
		name string
		run  func()
	}{
		{"Saxpy", func() { Saxpy(0.5, x, y) }},
		{"Sscal", func() { Sscal(1, y) }},
		{"Sdot", func() { _ = Sdot(x, y) }},
		{"Sshift", func() { Sshift(0, y) }},
		{"Ssum", func() { _ = Ssum(x) }},
		{"SAddRowSums", func() { SAddRowSums(x, 40, y[:20]) }},
		{"MaxPool2x2Plane", func() { MaxPool2x2Plane(x, 40, out, idx, 16, 3, 16) }},
		{"SCopyRows", func() { SCopyRows(y, 24, x, 24, 10, 24) }},
		{"SCopyRows16", func() { SCopyRows(y, 24, x, 24, 10, 16) }},
		{"SAddRows", func() { SAddRows(y, 24, x, 24, 10, 24) }},
		{"SAddRows5", func() { SAddRows(y, 24, x, 24, 10, 5) }},
		{"MaxPoolRow", func() { MaxPoolRow(rows, []int32{0, 40, 80}, 3, 2, out[:15], idx[:15]) }},
		{"SGDMomentum", func() { SGDMomentum(z[:500], z[500:], y[:500], 1, 0, 0, 0.9) }},
		{"SReLU", func() { SReLU(x, y, 0) }},
		{"SReLUBackward", func() { SReLUBackward(x, y, z, 0) }},
		{"microKernel", func() { microKernel(8, 1, x, &offs, 1, y, 64, z, 64, 4, 40, true, acc) }},
		{"microKernel8x32", func() { microKernel8x32(8, 1, x, &offs, &[mr]int{8, 8, 8, 8}, 1, y, 32, z, 64, true) }},
		{"ntKernel", func() { _ = ntKernel(1, 16, x, offA, 16, y, offB, 16) }},
		{"WinogradForward2", func() {
			u := make([]float32, WinogradPackLen(2, 2, 2))
			WinogradPack(2, x[:36], 2, 2, u)
			WinogradForward(2, x[:2*37*5], 2, 5, 37, 1, 1, 5, 37, u, 2, z[:2*5*37])
		}},
		{"WinogradWeightGrad4", func() {
			acc := make([]float32, WinogradWeightGradLen(4, 2, 2))
			WinogradWeightGrad(4, x[:2*37*5], 2, 5, 37, 1, 1, y[:2*5*37], 2, 5, 37, acc)
			WinogradWeightFinish(4, acc, 2, 2, z[:36])
		}},
		{"WinogradForward4", func() {
			u := make([]float32, WinogradPackLen(4, 2, 2))
			WinogradPack(4, x[:36], 2, 2, u)
			WinogradForward(4, x[:2*37*5], 2, 5, 37, 1, 1, 5, 37, u, 2, z[:2*5*37])
		}},
	}
	for _, k := range kernels {
		k.run()
		if s := xinuse(); s&upperDirty != 0 {
			t.Errorf("%s returned with the upper vector state in use (XINUSE %#x)", k.name, s)
		}
	}
	// The check itself can fail: archsimd code without the clean-up leaves
	// the state dirty.
	x16 := [16]float32{1}
	var dirty [16]float32
	dirtyUpper(&x16, &dirty)
	if xinuse()&upperDirty == 0 && archsimd.X86.AVX512() {
		t.Errorf("XINUSE reported clean after an AVX-512 add without VZEROUPPER: the check cannot fail")
	}
	zeroUpper()
}

// dirtyUpper is an AVX-512 add with no clean-up after it.
//
//go:noinline
func dirtyUpper(a, b *[16]float32) {
	if archsimd.X86.AVX512() {
		archsimd.LoadFloat32x16(a).Add(archsimd.LoadFloat32x16(a)).Store(b)
	}
}
