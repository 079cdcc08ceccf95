// Package kernels holds the math behind GoCaffe's layers.
//
// Subpackages:
//   - cpu: float32 fast paths (packed, blocked SGEMM with an AVX-512
//     micro-kernel when built with GOEXPERIMENT=simd, parallel over all
//     cores) beside plain generic references used for float64 and as test
//     oracles.
//
// Every fast kernel has a readable reference next to it, and the tests
// compare the two on awkward shapes.
package kernels
