package layers

import (
	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/kernels"
)

// biasReLUBackend is a backend with a fused bias+ReLU pass (the CUDA one):
// y = relu(y + bias[c]) with ReLU's negative slope, in one kernel.
type biasReLUBackend[T blob.Float] interface {
	AddBiasReLU(y, bias kernels.Vec[T], outer, channels, inner int, slope T)
}

// reluFusion is the in-place ReLU that a convolution or an inner product
// applies in its own bias pass when the net fused the ReLU after it
// (caffe/network: FuseReLU); the ReLU layer then skips its forward pass
// and keeps its backward pass, which reads the output as Caffe's does.
type reluFusion[T blob.Float] struct {
	on    bool
	slope T
}

// fuse turns the fusion on when the backend has the fused pass and the
// layer adds a bias; it reports whether it did.
func (f *reluFusion[T]) fuse(be kernels.Backend[T], hasBias bool, slope float64) bool {
	if _, ok := be.(biasReLUBackend[T]); !ok || !hasBias {
		return false
	}
	f.on, f.slope = true, T(slope)
	return true
}

// addBias is be.AddBias, followed by the fused ReLU when on.
func (f *reluFusion[T]) addBias(be kernels.Backend[T], y, bias kernels.Vec[T], outer, channels, inner int) {
	if f.on {
		be.(biasReLUBackend[T]).AddBiasReLU(y, bias, outer, channels, inner, f.slope)
		return
	}
	be.AddBias(y, bias, outer, channels, inner)
}
