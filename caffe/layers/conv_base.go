package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/filler"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// convGeom is the 2-D window of a convolution: kernel, stride, padding and
// dilation per spatial axis (height, width).
type convGeom struct {
	kh, kw, sh, sw, ph, pw, dh, dw int
}

// out returns the output size of a convolution over an h×w image.
func (g convGeom) out(h, w int) (int, int) {
	return (h+2*g.ph-(g.dh*(g.kh-1)+1))/g.sh + 1, (w+2*g.pw-(g.dw*(g.kw-1)+1))/g.sw + 1
}

// deconvOut returns the output size of a deconvolution of an h×w image.
func (g convGeom) deconvOut(h, w int) (int, int) {
	return g.sh*(h-1) + g.dh*(g.kh-1) + 1 - 2*g.ph, g.sw*(w-1) + g.dw*(g.kw-1) + 1 - 2*g.pw
}

// is1x1 reports whether im2col is the identity (1×1 kernel, stride 1, no pad).
func (g convGeom) is1x1() bool {
	return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0
}

// convSpec is a checked ConvolutionParameter.
type convSpec struct {
	numOutput, group int
	biasTerm         bool
	axis             int
	geom             convGeom
	weightFiller     *caffepb.FillerParameter
	biasFiller       *caffepb.FillerParameter
}

// convPair resolves one of Caffe's repeated-or-_h/_w fields into (h, w):
// hw set means the _h/_w form; list has 0, 1 or 2 values; def is used when
// neither is given.
func convPair(name string, list []uint32, hSet, wSet bool, h, w uint32, def int, required bool) (int, int, error) {
	if hSet || wSet {
		if !(hSet && wSet) {
			return 0, 0, fmt.Errorf("%s_h and %s_w must be given together", name, name)
		}
		if len(list) != 0 {
			return 0, 0, fmt.Errorf("give either %s or %s_h and %s_w, not both", name, name, name)
		}
		return int(h), int(w), nil
	}
	switch len(list) {
	case 0:
		if required {
			return 0, 0, fmt.Errorf("%s is required", name)
		}
		return def, def, nil
	case 1:
		return int(list[0]), int(list[0]), nil
	case 2:
		return int(list[0]), int(list[1]), nil
	}
	return 0, 0, fmt.Errorf("%s has %d values: only 2-D convolution is implemented (give 1 or 2 values)", name, len(list))
}

// parseConvSpec checks a ConvolutionParameter as Caffe's
// BaseConvolutionLayer does, for 2 spatial axes.
func parseConvSpec(p *caffepb.ConvolutionParameter) (convSpec, error) {
	var s convSpec
	var g convGeom
	var err error
	if p == nil {
		return s, fmt.Errorf("convolution_param is required")
	}
	if g.kh, g.kw, err = convPair("kernel", p.GetKernelSize(), p.KernelH != nil, p.KernelW != nil, p.GetKernelH(), p.GetKernelW(), 0, true); err != nil {
		return s, err
	}
	if g.sh, g.sw, err = convPair("stride", p.GetStride(), p.StrideH != nil, p.StrideW != nil, p.GetStrideH(), p.GetStrideW(), 1, false); err != nil {
		return s, err
	}
	if g.ph, g.pw, err = convPair("pad", p.GetPad(), p.PadH != nil, p.PadW != nil, p.GetPadH(), p.GetPadW(), 0, false); err != nil {
		return s, err
	}
	if g.dh, g.dw, err = convPair("dilation", p.GetDilation(), false, false, 0, 0, 1, false); err != nil {
		return s, err
	}
	if g.kh <= 0 || g.kw <= 0 {
		return s, fmt.Errorf("kernel dimensions must be nonzero, got %dx%d", g.kh, g.kw)
	}
	if g.sh <= 0 || g.sw <= 0 {
		return s, fmt.Errorf("stride dimensions must be nonzero, got %dx%d", g.sh, g.sw)
	}
	if g.dh <= 0 || g.dw <= 0 {
		return s, fmt.Errorf("dilation must be nonzero, got %dx%d", g.dh, g.dw)
	}
	s.geom = g
	s.numOutput = int(p.GetNumOutput())
	if s.numOutput <= 0 {
		return s, fmt.Errorf("num_output must be positive, got %d", s.numOutput)
	}
	s.group = int(p.GetGroup())
	if s.group <= 0 {
		return s, fmt.Errorf("group must be positive, got %d", s.group)
	}
	if s.numOutput%s.group != 0 {
		return s, fmt.Errorf("num_output %d is not a multiple of group %d", s.numOutput, s.group)
	}
	s.biasTerm = p.GetBiasTerm()
	s.axis = int(p.GetAxis())
	s.weightFiller, s.biasFiller = p.GetWeightFiller(), p.GetBiasFiller()
	return s, nil
}

// convBase holds what Convolution and Deconvolution share: parameters,
// weights, and the per-image GEMM passes over im2col buffers.
//
// The "image" side is what im2col reads: the bottom of a convolution, the
// top of a deconvolution. The "output" side is what the weights produce
// from columns: the top of a convolution, the bottom of a deconvolution.
type convBase[T blob.Float] struct {
	counts
	ctx    layer.Context
	be     kernels.Backend[T]
	spec   convSpec
	deconv bool
	weight *blob.Blob[T]
	bias   *blob.Blob[T]
	chAxis int // canonical channel axis
	num    int // images (product of axes before the channel axis)
	chans  int // bottom channels
	imC    int // image-side channels
	imH    int // image-side height
	imW    int
	outC   int // output-side channels (conv_out_channels)
	colH   int // spatial size of the columns (the convolution's output)
	colW   int
	kdim   int // columns per group: imC/group·kh·kw
	cols   []kernels.Vec[T]
	// colCache keeps every image's im2col columns from the last Forward
	// (single bottom, within colCacheMax) so Backward need not redo them.
	colCache kernels.Vec[T]
	cacheOK  bool
	wPack    kernels.Vec[T]   // the weights packed for the implicit forward product (packWeights)
	wAcc     []kernels.Vec[T] // per-worker weight-diff accumulators, transposed per group (kdim×oc)
	bAcc     []kernels.Vec[T] // per-worker bias-diff accumulators (worker ≥ 1)
	biasLen  int
	// relu is the in-place ReLU fused into the bias pass (Convolution on
	// a backend with AddBiasReLU; see FuseReLU).
	relu reluFusion[T]
}

func newConvBase[T blob.Float](ctx layer.Context, deconv bool) (convBase[T], error) {
	s, err := parseConvSpec(ctx.Param.GetConvolutionParam())
	if err != nil {
		return convBase[T]{}, err
	}
	// Caffe takes any number of bottoms, each with its own top.
	return convBase[T]{counts: counts{1, -1, 1, -1}, ctx: ctx, be: layer.Backend[T](ctx), spec: s, deconv: deconv}, nil
}

// Blobs returns the weights and, with bias_term, the bias.
func (l *convBase[T]) Blobs() []*blob.Blob[T] {
	if l.bias != nil {
		return []*blob.Blob[T]{l.weight, l.bias}
	}
	return []*blob.Blob[T]{l.weight}
}

// Setup checks the bottoms against the parameters and fills the weights.
func (l *convBase[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	if len(bottom) != len(top) {
		return fmt.Errorf("needs one top per bottom, got %d bottoms and %d tops", len(bottom), len(top))
	}
	ax, err := bottom[0].CanonicalAxis(l.spec.axis)
	if err != nil {
		return fmt.Errorf("axis: %w", err)
	}
	l.chAxis = ax
	if sp := bottom[0].NumAxes() - ax - 1; sp != 2 {
		return fmt.Errorf("bottom shape %v has %d spatial axes after channel axis %d: only 2-D convolution is implemented", bottom[0].Shape(), sp, ax)
	}
	l.chans = bottom[0].Dim(ax)
	if l.chans%l.spec.group != 0 {
		return fmt.Errorf("bottom channels %d are not a multiple of group %d", l.chans, l.spec.group)
	}
	g := l.spec.geom
	outC, inC := l.spec.numOutput, l.chans
	if l.deconv {
		outC, inC = l.chans, l.spec.numOutput
	}
	l.weight = blob.New[T](outC, inC/l.spec.group, g.kh, g.kw)
	if err := filler.Fill(l.spec.weightFiller, l.ctx.Rand, l.weight); err != nil {
		return fmt.Errorf("weight filler: %w", err)
	}
	if l.spec.biasTerm {
		l.bias = blob.New[T](l.spec.numOutput)
		if err := filler.Fill(l.spec.biasFiller, l.ctx.Rand, l.bias); err != nil {
			return fmt.Errorf("bias filler: %w", err)
		}
	}
	return nil
}

// Reshape shapes the tops and the column buffers.
func (l *convBase[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	b0 := bottom[0]
	if b0.NumAxes() != l.chAxis+3 {
		return fmt.Errorf("bottom shape %v: number of axes may not change (want %d)", b0.Shape(), l.chAxis+3)
	}
	if c := b0.Dim(l.chAxis); c != l.chans {
		return fmt.Errorf("bottom shape %v has %d channels, the weights expect %d", b0.Shape(), c, l.chans)
	}
	for i, b := range bottom[1:] {
		if !blob.ShapeEquals(b.Shape(), b0.Shape()) {
			return fmt.Errorf("bottom %d shape %v differs from bottom 0 shape %v", i+1, b.Shape(), b0.Shape())
		}
	}
	for i, t := range top {
		for j, b := range bottom {
			if t == b {
				return fmt.Errorf("top %d is bottom %d: convolution cannot compute in place", i, j)
			}
		}
	}
	g := l.spec.geom
	l.num = b0.CountRange(0, l.chAxis)
	h, w := b0.Dim(l.chAxis+1), b0.Dim(l.chAxis+2)
	var oh, ow int
	if l.deconv {
		oh, ow = g.deconvOut(h, w)
		l.imC, l.imH, l.imW = l.spec.numOutput, oh, ow
		l.outC, l.colH, l.colW = l.chans, h, w
	} else {
		oh, ow = g.out(h, w)
		l.imC, l.imH, l.imW = l.chans, h, w
		l.outC, l.colH, l.colW = l.spec.numOutput, oh, ow
	}
	if oh <= 0 || ow <= 0 {
		return fmt.Errorf("bottom shape %v gives an empty output (%dx%d) for kernel %dx%d, stride %dx%d, pad %dx%d, dilation %dx%d",
			b0.Shape(), oh, ow, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw)
	}
	l.cacheOK = false
	shape := append([]int(nil), b0.Shape()[:l.chAxis]...)
	shape = append(shape, l.spec.numOutput, oh, ow)
	for _, t := range top {
		t.Reshape(shape...)
	}
	l.kdim = l.imC / l.spec.group * g.kh * g.kw
	l.biasLen = l.colH * l.colW
	if l.deconv {
		l.biasLen = l.imH * l.imW
	}
	return nil
}

// colCacheMax bounds the column cache, in elements (16 MiB of float32):
// LeNet at batch 64 (0.9M and 2M) keeps its columns; CIFAR-10 quick's
// conv2 at batch 100 (20M) and LeNet at batch 512 (7.4M, 16M) redo im2col
// in Backward instead. Columns that large go out to memory and come back:
// on 2 loaded Xeon cores the CIFAR-10 quick step took 156 CPU-ms redoing
// im2col into a per-worker buffer that stays in L2, 189 with the cache.
const colCacheMax = 1 << 22

// kgeom is the window in the backend's terms.
func (l *convBase[T]) kgeom() kernels.ConvGeom {
	g := l.spec.geom
	return kernels.ConvGeom{KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, PH: g.ph, PW: g.pw, DH: g.dh, DW: g.dw}
}

// cachedCols returns image n's cached columns, sizing the cache for a
// Forward over a single bottom when it fits; ok is false otherwise.
func (l *convBase[T]) cachedCols(n int, forward bool, bottoms int) (kernels.Vec[T], bool) {
	colLen := l.kdim * l.spec.group * l.colH * l.colW
	if l.deconv || bottoms != 1 || l.num == 0 || l.spec.geom.is1x1() || colLen*l.num > colCacheMax {
		return kernels.Vec[T]{}, false
	}
	if forward {
		if l.colCache.Len() < colLen*l.num {
			l.colCache = l.be.Alloc(colLen * l.num)
		}
	} else if !l.cacheOK {
		return kernels.Vec[T]{}, false
	}
	return l.colCache.Slice(n*colLen, (n+1)*colLen), true
}

// buffers sizes the per-worker column buffers and zeroes accs
// parameter-diff accumulators (none when accs is 0): one per fixed share
// of the images, summed in share order by reduceAcc, so that a gradient
// does not depend on which core took which share.
func (l *convBase[T]) buffers(workers, accs int) {
	colLen := l.kdim * l.spec.group * l.colH * l.colW
	for len(l.cols) < workers {
		l.cols = append(l.cols, kernels.Vec[T]{})
	}
	for w := 0; w < workers; w++ {
		l.cols[w] = l.sized(l.cols[w], colLen, false)
	}
	for len(l.wAcc) < accs {
		l.wAcc = append(l.wAcc, kernels.Vec[T]{})
		l.bAcc = append(l.bAcc, kernels.Vec[T]{})
	}
	for w := 0; w < accs; w++ {
		l.wAcc[w] = l.sized(l.wAcc[w], l.weight.Count(), true)
		if l.bias != nil && w > 0 {
			l.bAcc[w] = l.sized(l.bAcc[w], l.bias.Count(), true)
		}
	}
}

// sized returns n elements of v, reallocated when v is shorter, zeroed
// when zero is set.
func (l *convBase[T]) sized(v kernels.Vec[T], n int, zero bool) kernels.Vec[T] {
	if v.Len() < n {
		return l.be.Alloc(n)
	}
	v = v.Slice(0, n)
	if zero {
		l.be.Fill(v, 0)
	}
	return v
}

// im2col writes the columns of one image-side image into col, unless the
// convolution is 1×1 (then the image is its own column matrix).
func (l *convBase[T]) im2col(im, col kernels.Vec[T]) kernels.Vec[T] {
	if l.spec.geom.is1x1() {
		return im
	}
	l.be.Im2col(im, l.imC, l.imH, l.imW, l.kgeom(), l.colH, l.colW, col)
	return col
}

// gemmForward computes out = W·im2col(im) for one image (overwriting out).
func (l *convBase[T]) gemmForward(im, w, out, col kernels.Vec[T]) {
	col = l.im2col(im, col)
	l.gemmCols(w, col, out)
}

// gemmCols computes out = W·col per group.
func (l *convBase[T]) gemmCols(w, col, out kernels.Vec[T]) {
	G, sp := l.spec.group, l.colH*l.colW
	oc := l.outC / G
	for g := 0; g < G; g++ {
		l.be.GemmSerial(false, false, oc, sp, l.kdim, 1, w.From(g*oc*l.kdim), l.kdim, col.From(g*l.kdim*sp), sp, 0, out.From(g*oc*sp), sp)
	}
}

// gemmBackward computes im = col2im(Wᵀ·out) for one image (overwriting im).
func (l *convBase[T]) gemmBackward(out, w, im, col kernels.Vec[T]) {
	G, sp := l.spec.group, l.colH*l.colW
	oc := l.outC / G
	if l.spec.geom.is1x1() {
		col = im
	}
	for g := 0; g < G; g++ {
		l.be.GemmSerial(true, false, l.kdim, sp, oc, 1, w.From(g*oc*l.kdim), l.kdim, out.From(g*oc*sp), sp, 0, col.From(g*l.kdim*sp), sp)
	}
	if !l.spec.geom.is1x1() {
		l.be.Col2im(col, l.imC, l.imH, l.imW, l.kgeom(), l.colH, l.colW, im)
	}
}

// gemmWeights adds (out·im2col(im)ᵀ)ᵀ into beta·dwT for one image: read
// from the image in place where the backend can (see implicit), else
// through im2col's columns.
func (l *convBase[T]) gemmWeights(im, out, dwT, col kernels.Vec[T], beta T) {
	ic := l.implicit()
	if ic == nil {
		l.gemmWeightsCols(l.im2col(im, col), out, dwT, beta)
		return
	}
	G, sp := l.spec.group, l.colH*l.colW
	oc, cg := l.outC/G, l.imC/G
	inG := cg * l.imH * l.imW
	for g := 0; g < G; g++ {
		ic.ConvWeightsT(im.Slice(g*inG, (g+1)*inG), cg, l.imH, l.imW, l.kgeom(), l.colH, l.colW,
			out.Slice(g*oc*sp, (g+1)*oc*sp), oc, dwT.From(g*oc*l.kdim), oc, beta)
	}
}

// implicit returns the backend's implicit convolution products (which
// read the columns from the image in place, with no im2col pass), or nil
// where it has none that run, or the convolution is 1×1 (the image is
// its own columns).
func (l *convBase[T]) implicit() kernels.ImplicitConv[T] {
	ic, ok := l.be.(kernels.ImplicitConv[T])
	if !ok || !ic.ImplicitConv() || l.spec.geom.is1x1() {
		return nil
	}
	return ic
}

// implicitForwardMin is the smallest kdim (C/group·kh·kw) whose forward
// pass runs implicitly. For one image on the development VM's Xeon
// (BenchmarkConvForward in kernels/cpu, µs, implicit against im2col and a
// GEMM): CIFAR-10 quick's conv2 (kdim 800) 94 against 164, conv3 (800)
// 52 against 67, LeNet's conv2 (500) 31 against 34, CIFAR-10's conv1
// (75) 49 against 60 (the whole layer at batch 100: 2.83 against 3.19
// ms); LeNet's conv1 (25, 20 outputs in a 32-wide tile) 14 against 9:
// short columns are cheap to lay out, and the implicit product writes its
// output transposed, then transposes it.
const implicitForwardMin = 64

// packWeights packs each group's weights for the implicit forward
// product into l.wPack and returns the backend, or nil (leaving wPack
// alone) where the backend has no implicit products or kdim is under
// minKdim (implicitForwardMin for the fixed rule).
func (l *convBase[T]) packWeights(w kernels.Vec[T], minKdim int) kernels.ImplicitConv[T] {
	ic := l.implicit()
	if ic == nil || l.kdim < minKdim {
		return nil
	}
	G := l.spec.group
	oc := l.outC / G
	n := ic.ConvPackLen(oc, l.kdim)
	l.wPack = l.sized(l.wPack, G*n, false)
	for g := 0; g < G; g++ {
		ic.ConvPack(w.Slice(g*oc*l.kdim, (g+1)*oc*l.kdim), oc, l.kdim, l.wPack.Slice(g*n, (g+1)*n))
	}
	return ic
}

// implicitForward overwrites out with W·im2col(im) for one image, per
// group, from the weights packWeights packed.
func (l *convBase[T]) implicitForward(ic kernels.ImplicitConv[T], im, out kernels.Vec[T]) {
	G, sp := l.spec.group, l.colH*l.colW
	oc, cg := l.outC/G, l.imC/G
	inG, n := cg*l.imH*l.imW, ic.ConvPackLen(oc, l.kdim)
	for g := 0; g < G; g++ {
		ic.ConvForward(im.Slice(g*inG, (g+1)*inG), cg, l.imH, l.imW, l.kgeom(), l.colH, l.colW,
			l.wPack.Slice(g*n, (g+1)*n), oc, out.Slice(g*oc*sp, (g+1)*oc*sp))
	}
}

// gemmWeightsCols sets dwT = (out·colᵀ)ᵀ + beta·dwT = col·outᵀ + beta·dwT
// (per group kdim×oc) for one image's columns: beta 0 starts an
// accumulator without zeroing it first, beta 1 adds. Accumulating the transposed weight gradient
// lets the GEMM read the large column matrix in place and transpose only
// the small top diff.
func (l *convBase[T]) gemmWeightsCols(col, out, dwT kernels.Vec[T], beta T) {
	G, sp := l.spec.group, l.colH*l.colW
	oc := l.outC / G
	for g := 0; g < G; g++ {
		l.be.GemmSerial(false, true, l.kdim, oc, sp, 1, col.From(g*l.kdim*sp), sp, out.From(g*oc*sp), sp, beta, dwT.From(g*oc*l.kdim), oc)
	}
}

// convGrain is how many images a worker takes at a time: about eight
// pieces per worker, so that one slowed by other load does fewer and the
// last round leaves few cores idle (CIFAR-10's 100 images on 8 workers:
// 100 pieces, 13 rounds where 12.5 would be even; at 4 pieces a worker
// it was 34 pieces of 3, 15 images' time where 12.5 would be even).
func convGrain(num, workers int) int {
	return max(1, num/(8*workers))
}

// ntWeightsPay reports whether the batched weight gradient (GemmNTSum
// over the cached columns) beats a GEMM per image: when the per-image
// kdim×oc product would be mostly tile padding in the SGEMM, as for LeNet's
// conv1 (25×20 in 28×32), and each image's columns are long enough to
// amortize the kernel's lane sums.
func (l *convBase[T]) ntWeightsPay() bool {
	oc, sp := l.outC/l.spec.group, l.colH*l.colW
	return sp >= 256 && l.be.GemmTileUse(l.kdim, oc) < 0.7
}

// ntWeights adds the weight gradient of the whole batch, dW += Σ_n dY_n ·
// col_nᵀ per group, from the cached columns straight into the weight diff.
func (l *convBase[T]) ntWeights(dy kernels.Vec[T]) {
	G, sp := l.spec.group, l.colH*l.colW
	oc := l.outC / G
	outDim, colLen := l.outC*sp, l.kdim*G*sp
	dw := l.weight.MutableDiffOn(l.be)
	for g := 0; g < G; g++ {
		l.be.GemmNTSum(l.num, oc, l.kdim, sp, dy.From(g*oc*sp), sp, outDim, l.colCache.From(g*l.kdim*sp), sp, colLen,
			dw.From(g*oc*l.kdim), l.kdim)
	}
}

// reduceAcc adds the private parameter-diff accumulators (of the image
// shares, or of the workers) into the parameter diffs.
func (l *convBase[T]) reduceAcc(accs int) {
	G := l.spec.group
	oc := l.outC / G
	dw := l.weight.MutableDiffOn(l.be)
	// Sum the accumulators in order (contiguous, vectorized), then add
	// the transposed total once.
	acc := l.wAcc[0]
	for w := 1; w < accs; w++ {
		l.be.Axpy(1, l.wAcc[w], acc)
		if l.bias != nil {
			l.be.Axpy(1, l.bAcc[w], l.bias.MutableDiffOn(l.be))
		}
	}
	for g := 0; g < G; g++ {
		n := oc * l.kdim
		l.be.AddTrans(acc.Slice(g*n, (g+1)*n), l.kdim, oc, dw.Slice(g*n, (g+1)*n))
	}
}

// accFor returns the transposed weight-diff and the bias-diff Vecs
// worker w accumulates into (db's Len is 0 without a bias).
func (l *convBase[T]) accFor(w int) (dwT, db kernels.Vec[T]) {
	if w == 0 {
		if l.bias != nil {
			db = l.bias.MutableDiffOn(l.be)
		}
		return l.wAcc[0], db
	}
	return l.wAcc[w], l.bAcc[w]
}

// batchColMax bounds the batched column buffer of a device convolution,
// in elements (1 GiB of float32); a larger batch goes in chunks of images.
const batchColMax = 1 << 28

// batched reports whether the convolution runs over the whole batch at
// once: on a device backend (not host memory), where a kernel launch per
// image would cost more than the arithmetic of LeNet-sized images.
func (l *convBase[T]) batched() bool {
	return !l.be.HostMemory() && !l.deconv
}

// batchChunk is how many images one batched pass takes, and the column
// buffer for it (the image itself for a 1×1 convolution: then the buffer
// is unused).
func (l *convBase[T]) batchChunk() (int, kernels.Vec[T]) {
	colLen := l.kdim * l.spec.group * l.colH * l.colW
	nb := max(1, min(l.num, batchColMax/max(colLen, 1)))
	if l.spec.geom.is1x1() {
		return l.num, kernels.Vec[T]{}
	}
	if l.colCache.Len() < nb*colLen {
		l.colCache = l.be.Alloc(nb * colLen)
	}
	return nb, l.colCache.Slice(0, nb*colLen)
}

// batchIm2col writes the columns of images [lo, hi) of x into col, image
// after image: im2col over the images' channels taken as one image of
// (hi-lo)·C channels, one launch. A 1×1 convolution returns the images.
func (l *convBase[T]) batchIm2col(x kernels.Vec[T], lo, hi int, col kernels.Vec[T]) kernels.Vec[T] {
	inDim := l.imC * l.imH * l.imW
	im := x.Slice(lo*inDim, hi*inDim)
	if l.spec.geom.is1x1() {
		return im
	}
	l.be.Im2col(im, (hi-lo)*l.imC, l.imH, l.imW, l.kgeom(), l.colH, l.colW, col)
	return col.Slice(0, (hi-lo)*l.kdim*l.spec.group*l.colH*l.colW)
}

// libraryConv is the backend's library convolution (cuDNN) for this
// layer's shape, or nil: the backend has none, does not use it now, or
// has no algorithm for the shape (then Im2col and the GEMMs run).
func (l *convBase[T]) libraryConv() kernels.ConvPlan[T] {
	cv, ok := l.be.(kernels.Convolver[T])
	if !ok || l.deconv || l.num == 0 {
		return nil
	}
	p, _ := cv.ConvPlan(kernels.ConvShape{N: l.num, C: l.imC, H: l.imH, W: l.imW, K: l.outC, Groups: l.spec.group,
		OH: l.colH, OW: l.colW, Geom: l.kgeom()})
	return p
}

// forwardBatched computes top = W·im2col(bottom) + bias with one im2col,
// one batched GEMM per group and one bias pass per chunk of images, and
// keeps the columns for Backward when one chunk holds the whole batch.
func (l *convBase[T]) forwardBatched(bottom, top []*blob.Blob[T]) {
	be := l.be
	G, sp := l.spec.group, l.colH*l.colW
	oc := l.outC / G
	outDim, colLen := l.outC*sp, l.kdim*G*sp
	w := l.weight.DataOn(be)
	if p := l.libraryConv(); p != nil {
		for i := range bottom {
			y := top[i].MutableDataOn(be)
			p.Forward(bottom[i].DataOn(be), w, y)
			if l.bias != nil {
				l.relu.addBias(be, y, l.bias.DataOn(be), l.num, l.outC, sp)
			}
		}
		l.cacheOK = false
		return
	}
	nb, buf := l.batchChunk()
	for i := range bottom {
		x, y := bottom[i].DataOn(be), top[i].MutableDataOn(be)
		for lo := 0; lo < l.num; lo += nb {
			hi := min(lo+nb, l.num)
			col := l.batchIm2col(x, lo, hi, buf)
			yc := y.Slice(lo*outDim, hi*outDim)
			for g := 0; g < G; g++ {
				be.GemmBatched(false, false, hi-lo, oc, sp, l.kdim, 1, w.From(g*oc*l.kdim), l.kdim, 0,
					col.From(g*l.kdim*sp), sp, colLen, 0, yc.From(g*oc*sp), sp, outDim)
			}
			if l.bias != nil {
				l.relu.addBias(be, yc, l.bias.DataOn(be), hi-lo, l.outC, sp)
			}
		}
	}
	l.cacheOK = len(bottom) == 1 && nb >= l.num && !l.spec.geom.is1x1()
}

// backwardBatched adds the weight and bias gradients of the batch (one
// GemmNTSum per group over the columns, one bias pass) and overwrites the
// bottom diffs with col2im(Wᵀ·dY) (one batched GEMM per group, one
// col2im), chunk by chunk.
func (l *convBase[T]) backwardBatched(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) {
	be := l.be
	G, sp := l.spec.group, l.colH*l.colW
	oc := l.outC / G
	inDim, outDim, colLen := l.imC*l.imH*l.imW, l.outC*sp, l.kdim*G*sp
	w := l.weight.DataOn(be)
	dw := l.weight.MutableDiffOn(be)
	if p := l.libraryConv(); p != nil {
		var db kernels.Vec[T]
		if l.bias != nil {
			db = l.bias.MutableDiffOn(be)
		}
		for i := range top {
			x, dy := bottom[i].DataOn(be), top[i].DiffOn(be)
			// The parameter gradients run beside the bottom diff (on a
			// GPU, a second stream): the layers below need only the
			// latter. No buffer is shared: the device keeps workspaces
			// per stream.
			kernels.Beside(be.Device(), func() {
				if l.bias != nil {
					be.BiasGrad(dy, db, l.num, l.outC, sp)
				}
				p.BackwardFilter(x, dy, dw)
			})
			if propagateDown[i] {
				p.BackwardData(dy, w, bottom[i].MutableDiffOn(be))
			}
		}
		l.cacheOK = false
		return
	}
	cached := l.cacheOK
	nb, buf := l.batchChunk()
	for i := range top {
		x, dy := bottom[i].DataOn(be), top[i].DiffOn(be)
		if l.bias != nil {
			be.BiasGrad(dy, l.bias.MutableDiffOn(be), l.num, l.outC, sp)
		}
		var dx kernels.Vec[T]
		if propagateDown[i] {
			dx = bottom[i].MutableDiffOn(be)
		}
		for lo := 0; lo < l.num; lo += nb {
			hi := min(lo+nb, l.num)
			var col kernels.Vec[T]
			if cached {
				col = buf.Slice(0, (hi-lo)*colLen)
			} else {
				col = l.batchIm2col(x, lo, hi, buf)
			}
			dyc := dy.Slice(lo*outDim, hi*outDim)
			for g := 0; g < G; g++ {
				be.GemmNTSum(hi-lo, oc, l.kdim, sp, dyc.From(g*oc*sp), sp, outDim, col.From(g*l.kdim*sp), sp, colLen,
					dw.From(g*oc*l.kdim), l.kdim)
			}
			if !propagateDown[i] {
				continue
			}
			// The column gradient overwrites the columns (or, 1×1, is
			// the bottom diff itself).
			dxc := dx.Slice(lo*inDim, hi*inDim)
			dcol := buf.Slice(0, min(buf.Len(), (hi-lo)*colLen))
			if l.spec.geom.is1x1() {
				dcol = dxc
			}
			for g := 0; g < G; g++ {
				be.GemmBatched(true, false, hi-lo, l.kdim, sp, oc, 1, w.From(g*oc*l.kdim), l.kdim, 0,
					dyc.From(g*oc*sp), sp, outDim, 0, dcol.From(g*l.kdim*sp), sp, colLen)
			}
			if !l.spec.geom.is1x1() {
				be.Col2im(dcol, (hi-lo)*l.imC, l.imH, l.imW, l.kgeom(), l.colH, l.colW, dxc)
			}
		}
		cached = false // the columns now hold gradients
	}
	l.cacheOK = false
}
