package layers

import "github.com/gocaffe/gocaffe/kernels"

// The host-memory (CPU) convolution's parameter-gradient bookkeeping: each
// piece of images accumulates into its own buffers, started by the core that
// takes the piece and summed over the cores by weight element, so that
// neither step runs on one core while the others wait (with 8 workers
// CIFAR-10's batch of 100 has 100 pieces of one image: see convGrain).

// accBuffers sizes the per-piece parameter-diff accumulators without
// zeroing them: the core that takes a piece zeroes them (zeroAcc) or its
// first weight GEMM overwrites them.
func (l *convBase[T]) accBuffers(pieces int) {
	for len(l.wAcc) < pieces {
		l.wAcc = append(l.wAcc, kernels.Vec[T]{})
		l.bAcc = append(l.bAcc, kernels.Vec[T]{})
	}
	for p := 0; p < pieces; p++ {
		l.wAcc[p] = l.sized(l.wAcc[p], l.weight.Count(), false)
		if l.bias != nil && p > 0 {
			l.bAcc[p] = l.sized(l.bAcc[p], l.bias.Count(), false)
		}
	}
}

// zeroAcc zeroes piece p's bias accumulator (piece 0 adds its bias
// gradient straight into the bias diff: see accFor), and its weight
// accumulator when weights is set (otherwise the piece's first weight
// GEMM overwrites it).
func (l *convBase[T]) zeroAcc(p int, weights bool) {
	if weights {
		l.be.Fill(l.wAcc[p], 0)
	}
	if l.bias != nil && p > 0 {
		l.be.Fill(l.bAcc[p], 0)
	}
}

// reduceAccParallel is reduceAcc with the sum over the pieces split over
// workers by weight element: every element still adds the pieces in piece
// order, so the gradient is the same whichever core sums which slice.
// Without weights only the bias accumulators are summed (the weight
// gradient went another way: see finishWinogradWeights).
func (l *convBase[T]) reduceAccParallel(pieces, workers int, weights bool) {
	if l.bias != nil {
		db := l.bias.MutableDiffOn(l.be)
		for p := 1; p < pieces; p++ {
			l.be.Axpy(1, l.bAcc[p], db)
		}
	}
	if !weights {
		return
	}
	acc := l.sumPieces(l.wAcc, pieces, workers)
	G := l.spec.group
	oc := l.outC / G
	dw := l.weight.MutableDiffOn(l.be)
	for g := 0; g < G; g++ {
		k := oc * l.kdim
		l.be.AddTrans(acc.Slice(g*k, (g+1)*k), l.kdim, oc, dw.Slice(g*k, (g+1)*k))
	}
}

// sumPieces adds accs[1:pieces] into accs[0], in piece order, split over
// workers by element, and returns accs[0].
func (l *convBase[T]) sumPieces(accs []kernels.Vec[T], pieces, workers int) kernels.Vec[T] {
	acc := accs[0]
	n := acc.Len()
	chunks := max(1, min(workers, n/1024))
	l.be.ParallelN(chunks, n, func(_, lo, hi int) {
		dst := acc.Slice(lo, hi)
		for p := 1; p < pieces; p++ {
			l.be.Axpy(1, accs[p].Slice(lo, hi), dst)
		}
	})
	return acc
}

// transposeWeights returns Wᵀ per group (kdim×oc each, row-major), once
// per Backward: the data gradient Wᵀ·dY then reads its A operand along
// rows, where a transposed W made the SGEMM gather W's columns (800 values
// 3.2 KB apart for CIFAR-10's conv2) into its packed A for every image.
func (l *convolution[T]) transposeWeights(w kernels.Vec[T]) kernels.Vec[T] {
	l.wT = l.sized(l.wT, l.weight.Count(), true)
	G := l.spec.group
	oc := l.outC / G
	k := oc * l.kdim
	for g := 0; g < G; g++ {
		l.be.AddTrans(w.Slice(g*k, (g+1)*k), oc, l.kdim, l.wT.Slice(g*k, (g+1)*k))
	}
	return l.wT
}

// gemmBackwardT is gemmBackward from the transposed weights.
func (l *convBase[T]) gemmBackwardT(out, wT, im, col kernels.Vec[T]) {
	G, sp := l.spec.group, l.colH*l.colW
	oc := l.outC / G
	if l.spec.geom.is1x1() {
		col = im
	}
	for g := 0; g < G; g++ {
		l.be.GemmSerial(false, false, l.kdim, sp, oc, 1, wT.From(g*oc*l.kdim), oc, out.From(g*oc*sp), sp, 0, col.From(g*l.kdim*sp), sp)
	}
	if !l.spec.geom.is1x1() {
		l.be.Col2im(col, l.imC, l.imH, l.imW, l.kgeom(), l.colH, l.colW, im)
	}
}

// flippedDataGrad reports whether the data gradient runs as a forward
// convolution of the top diff, dX = conv(dY, flip(W)ᵀ) with padding
// k-1-pad, instead of Wᵀ·dY and col2im. That holds for stride 1 and
// dilation 1; it pays when the padding keeps the image size ("same"
// convolutions: CIFAR-10's, GoogLeNet's, VGG's, ResNet's 3×3): the GEMM is
// then the forward's shape (long K = num_output·kh·kw, not K =
// num_output), with the same FLOPs, and col2im's scatter-add becomes
// im2col's copy. A smaller output than input (LeNet's unpadded 5×5) would
// make the padded top diff's columns mostly zeros, so those layers keep
// col2im. flipMode (tests and benchmarks) overrides the size rule.
func (l *convBase[T]) flippedDataGrad() bool {
	if !l.flippable() {
		return false
	}
	switch flipMode {
	case flipAlways:
		return true
	case flipNever:
		return false
	}
	return l.imH*l.imW <= l.colH*l.colW
}

// flippable reports whether the data gradient can run as a forward
// convolution of the top diff: stride 1, dilation 1, padding under the
// kernel's size, not 1×1 (see flippedDataGrad).
func (l *convBase[T]) flippable() bool {
	g := l.spec.geom
	return !l.deconv && !g.is1x1() && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.ph < g.kh && g.pw < g.kw
}

// flipMode lets tests reach the flipped data gradient at shapes the size
// rule leaves out (flipAlways), and benchmarks time col2im beside it
// (flipNever).
var flipMode = flipAuto

const (
	flipAuto = iota
	flipAlways
	flipNever
)

// flipGeom is the window of the flipped data gradient's im2col over the
// top diff: same kernel, stride 1, padding k-1-pad; its output is the
// bottom's size.
func (l *convBase[T]) flipGeom() kernels.ConvGeom {
	g := l.spec.geom
	return kernels.ConvGeom{KH: g.kh, KW: g.kw, SH: 1, SW: 1, PH: g.kh - 1 - g.ph, PW: g.kw - 1 - g.pw, DH: 1, DW: 1}
}

// flipWeights returns, per group, the (C/G)×(oc·kh·kw) matrix
// Wf[c][k,i,j] = W[k][c][kh-1-i][kw-1-j] (oc = num_output/G), once per
// Backward: the flipped data gradient's A operand, read along rows.
func (l *convolution[T]) flipWeights(w kernels.Vec[T]) kernels.Vec[T] {
	n := l.weight.Count()
	l.wT = l.sized(l.wT, n, false)
	wf := l.wT.Host()
	src := w.Host()[:n]
	g := l.spec.geom
	G := l.spec.group
	oc, cg, kk := l.outC/G, l.imC/G, g.kh*g.kw
	for gr := 0; gr < G; gr++ {
		base := gr * oc * cg * kk
		for k := 0; k < oc; k++ {
			for c := 0; c < cg; c++ {
				in := src[base+(k*cg+c)*kk : base+(k*cg+c+1)*kk]
				out := wf[base+c*oc*kk+k*kk : base+c*oc*kk+(k+1)*kk]
				for t := range in {
					out[kk-1-t] = in[t]
				}
			}
		}
	}
	return l.wT
}

// flipColLen is the length of one image's flipped-gradient columns: the
// top diff's channels·kh·kw rows of bottom-size planes.
func (l *convBase[T]) flipColLen() int {
	g := l.spec.geom
	return l.outC * g.kh * g.kw * l.imH * l.imW
}

// packFlipped packs each group's flipped weights wf (flipWeights) for the
// implicit forward product into l.fPack and returns the backend, or nil
// where the backend has no implicit products or the flipped kdim is under
// minKdim (implicitForwardMin for the fixed rule).
func (l *convolution[T]) packFlipped(wf kernels.Vec[T], minKdim int) kernels.ImplicitConv[T] {
	ic := l.implicit()
	G := l.spec.group
	oc, cg := l.outC/G, l.imC/G
	kdim := oc * l.spec.geom.kh * l.spec.geom.kw
	if ic == nil || kdim < minKdim {
		return nil
	}
	n := ic.ConvPackLen(cg, kdim)
	l.fPack = l.sized(l.fPack, G*n, false)
	for g := 0; g < G; g++ {
		ic.ConvPack(wf.Slice(g*cg*kdim, (g+1)*cg*kdim), cg, kdim, l.fPack.Slice(g*n, (g+1)*n))
	}
	return ic
}

// implicitBackwardFlipped is gemmBackwardFlipped on the implicit forward
// product, from the weights packFlipped packed: no columns of the top
// diff are laid out.
func (l *convolution[T]) implicitBackwardFlipped(ic kernels.ImplicitConv[T], out, im kernels.Vec[T]) {
	G, hw, sp := l.spec.group, l.imH*l.imW, l.colH*l.colW
	oc, cg := l.outC/G, l.imC/G
	kdim := oc * l.spec.geom.kh * l.spec.geom.kw
	n := ic.ConvPackLen(cg, kdim)
	for g := 0; g < G; g++ {
		ic.ConvForward(out.Slice(g*oc*sp, (g+1)*oc*sp), oc, l.colH, l.colW, l.flipGeom(), l.imH, l.imW,
			l.fPack.Slice(g*n, (g+1)*n), cg, im.Slice(g*cg*hw, (g+1)*cg*hw))
	}
}

// gemmBackwardFlipped overwrites im (one image's bottom diff) with
// conv(out, Wf) per group, through col (flipColLen elements).
func (l *convBase[T]) gemmBackwardFlipped(out, wf, im, col kernels.Vec[T]) {
	G, hw := l.spec.group, l.imH*l.imW
	oc, cg := l.outC/G, l.imC/G
	kdim := oc * l.spec.geom.kh * l.spec.geom.kw
	l.be.Im2col(out, l.outC, l.colH, l.colW, l.flipGeom(), l.imH, l.imW, col)
	for g := 0; g < G; g++ {
		l.be.GemmSerial(false, false, cg, hw, kdim, 1, wf.From(g*cg*kdim), kdim, col.From(g*kdim*hw), hw, 0, im.From(g*cg*hw), hw)
	}
}
