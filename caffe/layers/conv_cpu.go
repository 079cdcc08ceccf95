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
func (l *convBase[T]) reduceAccParallel(pieces, workers int) {
	n := l.weight.Count()
	acc := l.wAcc[0]
	chunks := max(1, min(workers, n/1024))
	l.be.ParallelN(chunks, n, func(_, lo, hi int) {
		dst := acc.Slice(lo, hi)
		for p := 1; p < pieces; p++ {
			l.be.Axpy(1, l.wAcc[p].Slice(lo, hi), dst)
		}
	})
	if l.bias != nil {
		db := l.bias.MutableDiffOn(l.be)
		for p := 1; p < pieces; p++ {
			l.be.Axpy(1, l.bAcc[p], db)
		}
	}
	G := l.spec.group
	oc := l.outC / G
	dw := l.weight.MutableDiffOn(l.be)
	for g := 0; g < G; g++ {
		k := oc * l.kdim
		l.be.AddTrans(acc.Slice(g*k, (g+1)*k), l.kdim, oc, dw.Slice(g*k, (g+1)*k))
	}
}

// transposeWeights returns Wᵀ per group (kdim×oc each, row-major), once
// per Backward: the data gradient Wᵀ·dY then reads its A operand along
// rows, where a transposed W made the SGEMM gather W's columns (800 values
// 3.2 KB apart for CIFAR-10's conv2) into its packed A for every image.
func (l *convolution[T]) transposeWeights(w kernels.Vec[T]) kernels.Vec[T] {
	n := l.weight.Count()
	if l.wT.Len() < n {
		l.wT = l.be.Alloc(n)
	}
	wT := l.wT.Slice(0, n)
	l.be.Fill(wT, 0)
	G := l.spec.group
	oc := l.outC / G
	k := oc * l.kdim
	for g := 0; g < G; g++ {
		l.be.AddTrans(w.Slice(g*k, (g+1)*k), oc, l.kdim, wT.Slice(g*k, (g+1)*k))
	}
	return wT
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
