package layers

import (
	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// Host-slice forms of the backend's operations, for layers that compute on
// the host whatever the net's device (the CPU fallback: LSTM, RNN).

// hostGemm is the CPU backend's Gemm over host slices.
func hostGemm[T blob.Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	layer.HostBackend[T]().Gemm(transA, transB, m, n, k, alpha, kernels.HostVec(a), lda, kernels.HostVec(b), ldb, beta, kernels.HostVec(c), ldc)
}
