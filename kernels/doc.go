// Package kernels holds the math behind GoCaffe's layers.
//
// Subpackages:
//   - cpu: float32 fast paths (packed, blocked SGEMM with AVX-512 or
//     AVX2 + FMA micro-kernels when built with GOEXPERIMENT=simd, chosen at
//     startup from the CPU's features, parallel over all cores) beside plain
//     generic references used for float64 and as test oracles.
//     GOCAFFE_CPU_LEVEL=avx2|generic lowers the level, for tests.
//
// Every fast kernel has a readable reference next to it, and the tests
// compare the two on awkward shapes.
package kernels
