// Package kernels holds the math behind GoCaffe's layers.
//
// Backend (backend.go) is the interface layers and solvers compute through,
// over Vecs of one device's memory; a Device hands out its backends, and a
// net picks one Device for all its layers. The doc comment at the top of
// backend.go states the rules a device backend relies on.
//
// Subpackages:
//   - cpu: the CPU Device (cpu.Device) and its kernels.
//     float32 fast paths (packed, blocked SGEMM with AVX-512 or
//     AVX2 + FMA micro-kernels when built with GOEXPERIMENT=simd, chosen at
//     startup from the CPU's features, parallel over all cores) beside plain
//     generic references used for float64 and as test oracles.
//     GOCAFFE_CPU_LEVEL=avx2|generic lowers the level, for tests.
//     Convolutions run im2col + GEMM, implicit products or Winograd
//     F(2,3), per shape by a fixed rule (GOCAFFE_CPU_CONV=rule, the
//     default), as measured (auto) or forced.
//   - simdev: a counting device for tests whose memory is apart from the
//     host, so that a layer that bypasses the blobs' sync or the backend
//     gives wrong numbers there.
//
// Every fast kernel has a readable reference next to it, and the tests
// compare the two on awkward shapes.
package kernels
