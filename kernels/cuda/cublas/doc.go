// Package cublas loads NVIDIA's cuBLAS at run time when the node has it
// (dlopen; goexec never links it and the jar does not carry it) and calls
// its GEMMs on the CUDA backend's stream. Where goexec looks, in order:
// the setting GOCAFFE_CUBLAS (a library path, or "off"), the library path
// (libcublas.so.13, .so.12, .so, as the dynamic loader finds them), then
// the lib folders of NVIDIA's pip wheels (site-packages/nvidia/cublas/lib,
// nvidia/cu13/lib, nvidia/cu12/lib) under each python3 on PATH and the
// usual prefixes. Everything but the search order builds only with the
// build tag `cuda`.
package cublas
