// Package graph binds the few CUDA driver calls that gorgonia.org/cu
// lacks: stream capture and the instantiation and launch of CUDA graphs.
// It builds only with the build tag `cuda`.
package graph
