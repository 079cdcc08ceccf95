package layers

import (
	"time"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// convolution is Caffe's Convolution layer for 2 spatial axes. On a host
// backend images are spread over all cores, each pass of a shape on one
// route (conv_route.go): im2col and GEMM per image, implicit products
// (kernels.ImplicitConv) that read the image in place, or Winograd F(2,3)
// or F(4,3) for 3×3 stride-1 kernels (kernels.WinogradConv; F(4,3) for the
// weight gradient too, conv_wgrad.go); on a device backend one
// im2col and one batched GEMM per group over the whole batch. It supports pad, stride, dilation, group,
// bias_term and axis; several bottoms share the weights, each with its
// own top.
//
//	top (N, num_output, H_out, W_out) = conv(bottom (N, C, H, W), weight (num_output, C/group, kh, kw)) + bias
type convolution[T blob.Float] struct {
	convBase[T]
	wT    kernels.Vec[T]   // Wᵀ (transposeWeights) or the flipped Wf (flipWeights) for the data gradient
	fPack kernels.Vec[T]   // Wf packed for the implicit product (packFlipped)
	fcols []kernels.Vec[T] // per-worker columns of the flipped data gradient
	// wgPack and wgFPack are W and Wf transformed for Winograd (packWinograd).
	wgPack, wgFPack kernels.Vec[T]
	wgAcc           []kernels.Vec[T] // per-piece transformed weight-gradient sums (conv_wgrad.go)
	routing         convRouting      // the routes of the current shape (routeFor)
}

// flipBuffers sizes the per-worker columns of the flipped data gradient.
func (l *convolution[T]) flipBuffers(workers int) {
	for len(l.fcols) < workers {
		l.fcols = append(l.fcols, kernels.Vec[T]{})
	}
	for w := 0; w < workers; w++ {
		l.fcols[w] = l.sized(l.fcols[w], l.flipColLen(), false)
	}
}

func newConvolution[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	b, err := newConvBase[T](ctx, false)
	if err != nil {
		return nil, err
	}
	return &convolution[T]{convBase: b}, nil
}

// FuseReLU applies the in-place ReLU that follows the layer in its bias
// pass (caffe/network asks; the ReLU layer then skips its forward pass):
// only on a backend with a fused bias+ReLU pass, which takes the batched
// path, and with a bias.
func (l *convolution[T]) FuseReLU(slope float64) bool {
	return l.batched() && l.relu.fuse(l.be, l.bias != nil, slope)
}

func (l *convolution[T]) Forward(bottom, top []*blob.Blob[T]) error {
	if l.batched() {
		l.forwardBatched(bottom, top)
		return nil
	}
	be := l.be
	w := l.weight.DataOn(be)
	var bias kernels.Vec[T]
	if l.bias != nil {
		bias = l.bias.DataOn(be)
	}
	inDim, outDim, plane := l.imC*l.imH*l.imW, l.outC*l.colH*l.colW, l.colH*l.colW
	workers := be.Workers(l.num)
	l.buffers(workers, 0)
	x0, y0 := bottom[0].DataOn(be), top[0].MutableDataOn(be)
	route, err := l.routeFor(kernels.PassForward, func(r kernels.ConvRoute) time.Duration {
		return l.timePass(workers, func() { l.prepForward(r, w) }, func(wk, n int) {
			l.forwardImage(r, w, x0.Slice(n*inDim, (n+1)*inDim), y0.Slice(n*outDim, (n+1)*outDim), l.cols[wk])
		})
	})
	if err != nil {
		return l.routeError(err)
	}
	l.prepForward(route, w)
	// With implicit products the weight gradient reads the image in
	// place: no columns are kept for Backward.
	cache := false
	if l.implicit() == nil && route == kernels.RouteGemm {
		_, cache = l.cachedCols(0, true, len(bottom))
	}
	for i := range bottom {
		x, y := bottom[i].DataOn(be), top[i].MutableDataOn(be)
		be.ParallelDynamic(workers, l.num, convGrain(l.num, workers), func(wk, lo, hi int) {
			col := l.cols[wk]
			for n := lo; n < hi; n++ {
				if cache {
					col, _ = l.cachedCols(n, true, 1)
				}
				yn := y.Slice(n*outDim, (n+1)*outDim)
				l.forwardImage(route, w, x.Slice(n*inDim, (n+1)*inDim), yn, col)
				if l.bias != nil {
					be.AddBias(yn, bias, 1, l.outC, plane)
				}
			}
		})
	}
	l.cacheOK = cache
	return nil
}

func (l *convolution[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if l.batched() {
		l.backwardBatched(top, propagateDown, bottom)
		return nil
	}
	be := l.be
	w := l.weight.DataOn(be)
	inDim, outDim, plane := l.imC*l.imH*l.imW, l.outC*l.colH*l.colW, l.colH*l.colW
	workers := be.Workers(l.num)
	// Each piece of images accumulates into its own buffers, summed in
	// piece order: the same result whichever core takes which piece.
	grain := convGrain(l.num, workers)
	if workers <= 1 {
		// ParallelDynamic then hands all images to one call: one piece.
		grain = max(1, l.num)
	}
	pieces := (l.num + grain - 1) / grain
	wgm := l.winogradWeightTile(max(1, min(workers, l.num)))
	for i := range top {
		l.buffers(workers, 0)
		l.accBuffers(pieces)
		x, dy := bottom[i].DataOn(be), top[i].DiffOn(be)
		prop := propagateDown[i]
		var dx kernels.Vec[T]
		if prop {
			dx = bottom[i].MutableDiffOn(be)
		}
		// The weight gradient over the whole batch at once from the cached
		// columns, when the per-image GEMM would waste its tiles.
		batchWeights := false
		if _, ok := l.cachedCols(0, false, len(bottom)); ok && wgm == 0 && l.ntWeightsPay() {
			batchWeights = true
		}
		var route kernels.ConvRoute
		if prop {
			var err error
			route, err = l.routeFor(kernels.PassData, func(r kernels.ConvRoute) time.Duration {
				return l.timePass(workers, func() { l.prepData(r, w, workers) }, func(wk, n int) {
					l.dataImage(r, dy.Slice(n*outDim, (n+1)*outDim), dx.Slice(n*inDim, (n+1)*inDim), wk)
				})
			})
			if err != nil {
				return l.routeError(err)
			}
			l.prepData(route, w, workers)
		}
		be.ParallelDynamic(workers, l.num, grain, func(wk, lo, hi int) {
			col := l.cols[wk]
			// The piece's first image overwrites its weight accumulator
			// (beta 0), which then needs no zeroing pass.
			l.zeroAcc(lo/grain, batchWeights)
			dw, db := l.accFor(lo / grain)
			for n := lo; n < hi; n++ {
				dyn := dy.Slice(n*outDim, (n+1)*outDim)
				if l.bias != nil {
					be.BiasGrad(dyn, db, 1, l.outC, plane)
				}
				var beta T
				if n > lo {
					beta = 1
				}
				switch cc, ok := l.cachedCols(n, false, len(bottom)); {
				case batchWeights, wgm > 0: // after the loop
				case ok:
					l.gemmWeightsCols(cc, dyn, dw, beta)
				default:
					l.gemmWeights(x.Slice(n*inDim, (n+1)*inDim), dyn, dw, col, beta)
				}
				if prop {
					l.dataImage(route, dyn, dx.Slice(n*inDim, (n+1)*inDim), wk)
				}
			}
		})
		l.reduceAccParallel(pieces, workers, wgm == 0)
		if batchWeights {
			l.ntWeights(dy)
		}
		if wgm > 0 {
			l.winogradWeights(wgm, x, dy, workers)
		}
	}
	return nil
}
