//go:build goexperiment.simd && amd64

package cpu

import "simd/archsimd"

func hardwareLevel() Level {
	switch {
	case archsimd.X86.AVX512():
		return LevelAVX512
	case archsimd.X86.AVX2() && archsimd.X86.FMA():
		return LevelAVX2
	}
	return LevelGeneric
}

// setLevel switches the kernel level, for tests that run every path on one
// machine. It is not safe while kernels run.
func setLevel(l Level) {
	level = l
	hasAVX512 = l == LevelAVX512
	hasAVX2 = l >= LevelAVX2
}
