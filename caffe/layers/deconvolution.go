package layers

import (
	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// deconvolution is Caffe's Deconvolution layer (the transpose of
// Convolution, with convolution_param) for 2 spatial axes: its forward is
// a convolution's backward pass and vice versa.
//
//	top (N, num_output, H_out, W_out), H_out = stride·(H-1) + dilation·(kh-1) + 1 - 2·pad
//	weight (C, num_output/group, kh, kw)
type deconvolution[T blob.Float] struct{ convBase[T] }

func newDeconvolution[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	b, err := newConvBase[T](ctx, true)
	if err != nil {
		return nil, err
	}
	return &deconvolution[T]{b}, nil
}

func (l *deconvolution[T]) Forward(bottom, top []*blob.Blob[T]) error {
	be := l.be
	w := l.weight.DataOn(be)
	var bias kernels.Vec[T]
	if l.bias != nil {
		bias = l.bias.DataOn(be)
	}
	inDim, outDim, plane := l.outC*l.colH*l.colW, l.imC*l.imH*l.imW, l.imH*l.imW
	workers := be.Workers(l.num)
	l.buffers(workers, 0)
	for i := range bottom {
		x, y := bottom[i].DataOn(be), top[i].MutableDataOn(be)
		be.ParallelN(workers, l.num, func(wk, lo, hi int) {
			col := l.cols[wk]
			for n := lo; n < hi; n++ {
				yn := y.Slice(n*outDim, (n+1)*outDim)
				l.gemmBackward(x.Slice(n*inDim, (n+1)*inDim), w, yn, col)
				if l.bias != nil {
					be.AddBias(yn, bias, 1, l.imC, plane)
				}
			}
		})
	}
	return nil
}

func (l *deconvolution[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	be := l.be
	w := l.weight.DataOn(be)
	inDim, outDim, plane := l.outC*l.colH*l.colW, l.imC*l.imH*l.imW, l.imH*l.imW
	workers := be.Workers(l.num)
	for i := range top {
		l.buffers(workers, workers)
		x, dy := bottom[i].DataOn(be), top[i].DiffOn(be)
		prop := propagateDown[i]
		var dx kernels.Vec[T]
		if prop {
			dx = bottom[i].MutableDiffOn(be)
		}
		be.ParallelN(workers, l.num, func(wk, lo, hi int) {
			col := l.cols[wk]
			dw, db := l.accFor(wk)
			for n := lo; n < hi; n++ {
				dyn := dy.Slice(n*outDim, (n+1)*outDim)
				if l.bias != nil {
					be.BiasGrad(dyn, db, 1, l.imC, plane)
				}
				l.gemmWeights(dyn, x.Slice(n*inDim, (n+1)*inDim), dw, col, 1)
				if prop {
					l.gemmForward(dyn, w, dx.Slice(n*inDim, (n+1)*inDim), col)
				}
			}
		})
		l.reduceAcc(workers)
	}
	return nil
}
