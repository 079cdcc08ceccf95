//go:build !(goexperiment.simd && amd64)

package cpu

// zeroUpper does nothing: without GOEXPERIMENT=simd only the assembly
// kernels use AVX, and they end with VZEROUPPER.
func zeroUpper() {}
