package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/filler"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// innerProduct is Caffe's InnerProduct (fully connected) layer: the bottom
// is flattened from axis on into K features per row, M rows.
//
//	top (M, N) = bottom (M, K) · Wᵀ + bias, W (N, K); with transpose, W (K, N) and top = bottom · W
type innerProduct[T blob.Float] struct {
	counts
	ctx       layer.Context
	be        kernels.Backend[T]
	numOut    int
	biasTerm  bool
	transpose bool
	axisParam int
	axis      int
	m, k      int
	weight    *blob.Blob[T]
	bias      *blob.Blob[T]
	relu      reluFusion[T] // the in-place ReLU fused into the bias pass (FuseReLU)
}

func newInnerProduct[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetInnerProductParam()
	if p == nil {
		return nil, fmt.Errorf("inner_product_param is required")
	}
	if p.GetNumOutput() == 0 {
		return nil, fmt.Errorf("num_output must be positive")
	}
	return &innerProduct[T]{
		counts:    counts{1, 1, 1, 1},
		ctx:       ctx,
		be:        layer.Backend[T](ctx),
		numOut:    int(p.GetNumOutput()),
		biasTerm:  p.GetBiasTerm(),
		transpose: p.GetTranspose(),
		axisParam: int(p.GetAxis()),
	}, nil
}

func (l *innerProduct[T]) Blobs() []*blob.Blob[T] {
	if l.bias != nil {
		return []*blob.Blob[T]{l.weight, l.bias}
	}
	return []*blob.Blob[T]{l.weight}
}

func (l *innerProduct[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	ax, err := bottom[0].CanonicalAxis(l.axisParam)
	if err != nil {
		return fmt.Errorf("axis: %w", err)
	}
	l.axis = ax
	l.k = bottom[0].CountFrom(ax)
	if l.transpose {
		l.weight = blob.New[T](l.k, l.numOut)
	} else {
		l.weight = blob.New[T](l.numOut, l.k)
	}
	p := l.ctx.Param.GetInnerProductParam()
	if err := filler.Fill(p.GetWeightFiller(), l.ctx.Rand, l.weight); err != nil {
		return fmt.Errorf("weight filler: %w", err)
	}
	if l.biasTerm {
		l.bias = blob.New[T](l.numOut)
		if err := filler.Fill(p.GetBiasFiller(), l.ctx.Rand, l.bias); err != nil {
			return fmt.Errorf("bias filler: %w", err)
		}
	}
	return nil
}

func (l *innerProduct[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	b := bottom[0]
	ax, err := b.CanonicalAxis(l.axisParam)
	if err != nil {
		return fmt.Errorf("axis: %w", err)
	}
	if k := b.CountFrom(ax); k != l.k {
		return fmt.Errorf("bottom shape %v has %d features from axis %d, the weights expect %d", b.Shape(), k, ax, l.k)
	}
	if top[0] == b {
		return fmt.Errorf("InnerProduct cannot compute in place")
	}
	l.axis = ax
	l.m = b.CountRange(0, ax)
	shape := append(append([]int(nil), b.Shape()[:ax]...), l.numOut)
	top[0].Reshape(shape...)
	return nil
}

func (l *innerProduct[T]) Forward(bottom, top []*blob.Blob[T]) error {
	be := l.be
	x, y, w := bottom[0].DataOn(be), top[0].MutableDataOn(be), l.weight.DataOn(be)
	m, n, k := l.m, l.numOut, l.k
	if l.transpose {
		be.Gemm(false, false, m, n, k, 1, x, k, w, n, 0, y, n)
	} else {
		be.Gemm(false, true, m, n, k, 1, x, k, w, k, 0, y, n)
	}
	if l.bias != nil {
		l.relu.addBias(be, y, l.bias.DataOn(be), m, n, 1)
	}
	return nil
}

// FuseReLU applies the in-place ReLU that follows the layer in its bias
// pass (caffe/network asks; the ReLU layer then skips its forward pass):
// only on a backend with a fused bias+ReLU pass, and with a bias.
func (l *innerProduct[T]) FuseReLU(slope float64) bool {
	return l.relu.fuse(l.be, l.bias != nil, slope)
}

func (l *innerProduct[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	be := l.be
	x, dy, w := bottom[0].DataOn(be), top[0].DiffOn(be), l.weight.DataOn(be)
	m, n, k := l.m, l.numOut, l.k
	dw := l.weight.MutableDiffOn(be)
	var db kernels.Vec[T]
	if l.bias != nil {
		db = l.bias.MutableDiffOn(be)
	}
	// The parameter gradients run beside the bottom diff (on a GPU, a
	// second stream): the layers below need only the latter.
	kernels.Beside(be.Device(), func() {
		if l.transpose {
			be.Gemm(true, false, k, n, m, 1, x, k, dy, n, 1, dw, n) // dW (K×N) += xᵀ·dy
		} else {
			be.Gemm(true, false, n, k, m, 1, dy, n, x, k, 1, dw, k) // dW (N×K) += dyᵀ·x
		}
		if l.bias != nil {
			be.BiasGrad(dy, db, m, n, 1)
		}
	})
	if propagateDown[0] {
		dx := bottom[0].MutableDiffOn(be)
		if l.transpose {
			be.Gemm(false, true, m, k, n, 1, dy, n, w, n, 0, dx, k)
		} else {
			be.Gemm(false, false, m, k, n, 1, dy, n, w, k, 0, dx, k)
		}
	}
	return nil
}
