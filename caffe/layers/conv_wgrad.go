package layers

import "github.com/gocaffe/gocaffe/kernels"

// The host convolution's weight gradient by Winograd F(4,3)
// (kernels.WinogradConv's WinogradWeightGrad), a pass of its own after the
// data gradient: the batch goes in one fixed chunk of images per worker,
// each summing its images' gradients in the transformed domain (36
// matrices of num_output×channels per group); the chunks are added in
// order and transformed into the weight diff once per pass. Fixed chunks,
// not the data gradient's pieces of a few images: a piece's sums are 4×
// the direct path's accumulator, and adding 16 of them (ResNet-50's batch
// of 16 on two cores) cost what the transform saved.

// winogradWeightBudget bounds the chunks' transformed sums, in elements
// (64 MiB of float32): 36·num_output·channels a chunk, too much for
// VGG's 256- and 512-channel layers on many cores, which keep the direct
// path.
const winogradWeightBudget = 16 << 20

// winogradWeightTile is the output tile of the Winograd weight gradient
// for this shape and chunks chunks of images: 4 (F(4,3)), or 0 for the
// direct path (ConvWeightsT or the columns and a GEMM). Under the rule
// and auto it takes F(4,3) where its forward does, at output planes of
// winograd4RuleMinPlane positions and more (BenchmarkConv3x3WeightGrad,
// one image a core on the development VM's AVX2: 1.2–1.3× the direct
// path at 64×56², 128×28² and 96×28², 0.4–0.25× at 256×14² and 512×7²,
// whose tiles are too few for the GEMMs' long side); forced winograd4
// takes it at any plane, the other forced routes never.
func (l *convolution[T]) winogradWeightTile(chunks int) int {
	wc := l.winograd()
	rt, ok := l.be.(kernels.ConvRouter)
	if wc == nil || !ok {
		return 0
	}
	mode, err := rt.ConvRouteMode()
	if err != nil {
		return 0 // the passes report the setting's error
	}
	switch mode {
	case kernels.RouteRule, kernels.RouteAuto:
		if l.colH*l.colW < winograd4RuleMinPlane {
			return 0
		}
	case kernels.RouteWinograd4:
	default:
		return 0
	}
	G := l.spec.group
	if chunks*G*wc.WinogradWeightGradLen(4, l.outC/G, l.imC/G) > winogradWeightBudget {
		return 0
	}
	return 4
}

// winogradWeights adds the weight gradient of the batch (bottom data x,
// top diff dy) by Winograd with tiles of m×m to the weight diff.
func (l *convolution[T]) winogradWeights(m int, x, dy kernels.Vec[T], workers int) {
	G := l.spec.group
	n := G * l.winograd().WinogradWeightGradLen(m, l.outC/G, l.imC/G)
	chunks := max(1, min(workers, l.num))
	for len(l.wgAcc) < chunks {
		l.wgAcc = append(l.wgAcc, kernels.Vec[T]{})
	}
	for p := 0; p < chunks; p++ {
		l.wgAcc[p] = l.sized(l.wgAcc[p], n, false)
	}
	inDim, outDim := l.imC*l.imH*l.imW, l.outC*l.colH*l.colW
	l.be.ParallelN(chunks, l.num, func(p, lo, hi int) {
		l.be.Fill(l.wgAcc[p], 0)
		for i := lo; i < hi; i++ {
			l.winogradWeightImage(m, x.Slice(i*inDim, (i+1)*inDim), dy.Slice(i*outDim, (i+1)*outDim), l.wgAcc[p])
		}
	})
	l.finishWinogradWeights(m, chunks, workers)
}

// winogradWeightImage adds one image's weight gradient (input x, top
// diff dy) to the transformed sums acc, group by group.
func (l *convolution[T]) winogradWeightImage(m int, x, dy, acc kernels.Vec[T]) {
	wc := l.winograd()
	G := l.spec.group
	cg, og := l.imC/G, l.outC/G
	hw, sp := l.imH*l.imW, l.colH*l.colW
	n := wc.WinogradWeightGradLen(m, og, cg)
	g := l.spec.geom
	for gr := 0; gr < G; gr++ {
		wc.WinogradWeightGrad(m, x.Slice(gr*cg*hw, (gr+1)*cg*hw), cg, l.imH, l.imW, g.ph, g.pw,
			dy.Slice(gr*og*sp, (gr+1)*og*sp), og, l.colH, l.colW, acc.Slice(gr*n, (gr+1)*n))
	}
}

// finishWinogradWeights adds the chunks' transformed sums in order and
// their gradient to the weight diff.
func (l *convolution[T]) finishWinogradWeights(m, chunks, workers int) {
	wc := l.winograd()
	acc := l.sumPieces(l.wgAcc, chunks, workers)
	G := l.spec.group
	cg, og := l.imC/G, l.outC/G
	n := wc.WinogradWeightGradLen(m, og, cg)
	dw := l.weight.MutableDiffOn(l.be)
	for gr := 0; gr < G; gr++ {
		wc.WinogradWeightFinish(m, acc.Slice(gr*n, (gr+1)*n), og, cg, dw.Slice(gr*og*cg*9, (gr+1)*og*cg*9))
	}
}
