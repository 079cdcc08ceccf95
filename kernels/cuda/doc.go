// Package cuda is GoCaffe's CUDA backend: kernels written in CUDA C++
// (src/*.cu, one file per op family), compiled by nvcc into fatbins with
// SASS for sm_80 and sm_90 and PTX for compute_90 (`make cuda-kernels`),
// embedded in the binary and loaded through the driver API
// (gorgonia.org/cu). A GPU node needs only the NVIDIA driver.
//
// The package builds only with the build tag `cuda` (`make goexec-cuda`);
// the default build of GoCaffe is CPU-only and does not contain it.
package cuda
