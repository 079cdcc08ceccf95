package cpu

import (
	"math"
	"runtime"

	"github.com/gocaffe/gocaffe/kernels"
)

// Device is the CPU: its backends compute on host slices over all cores,
// float32 through the fast kernels of this package and float64 through
// their generic references. Its convolution routes follow ConvRouteSetting.
var Device kernels.Device = NewDevice()

type device struct {
	f32 backend[float32]
	f64 backend[float64]
}

func (device) Name() string                         { return "cpu" }
func (device) Engine() string                       { return "CAFFE" }
func (d *device) Float32() kernels.Backend[float32] { return d.f32 }
func (d *device) Float64() kernels.Backend[float64] { return d.f64 }

// Backend returns Device's backend computing in T.
func Backend[T Float]() kernels.Backend[T] { return kernels.For[T](Device) }

// backend implements kernels.Backend on host slices. Every method
// forwards to this package's kernels, which pick the float32 fast path.
// routes keeps the convolution routes chosen per shape (nil in a bare
// backend[T]{}: nothing is kept, and every convolution measures).
type backend[T Float] struct {
	routes *convRoutes
}

func (backend[T]) Device() kernels.Device { return Device }
func (backend[T]) HostMemory() bool       { return true }
func (backend[T]) Alloc(n int) kernels.Vec[T] {
	return kernels.HostVec(make([]T, n))
}
func (backend[T]) AllocInts(n int) kernels.IntVec { return kernels.HostInts(make([]int32, n)) }
func (backend[T]) Upload(dst kernels.Vec[T], src []T) {
	copy(dst.Host()[:len(src)], src)
}
func (backend[T]) Download(dst []T, src kernels.Vec[T]) {
	copy(dst[:src.Len()], src.Host())
}

func (backend[T]) UploadInts(dst kernels.IntVec, src []int32) { copy(dst.Host()[:len(src)], src) }

func (backend[T]) Workers(n int) int                           { return Workers(n) }
func (backend[T]) Parallel(n int, fn func(worker, lo, hi int)) { Parallel(n, fn) }
func (backend[T]) ParallelDynamic(workers, n, grain int, fn func(worker, lo, hi int)) {
	ParallelDynamic(workers, n, grain, fn)
}
func (backend[T]) ParallelN(workers, n int, fn func(chunk, lo, hi int)) { ParallelN(workers, n, fn) }

func (backend[T]) Gemm(transA, transB bool, m, n, k int, alpha T, a kernels.Vec[T], lda int, b kernels.Vec[T], ldb int, beta T, c kernels.Vec[T], ldc int) {
	Gemm(transA, transB, m, n, k, alpha, a.Host(), lda, b.Host(), ldb, beta, c.Host(), ldc)
}

func (backend[T]) GemmSerial(transA, transB bool, m, n, k int, alpha T, a kernels.Vec[T], lda int, b kernels.Vec[T], ldb int, beta T, c kernels.Vec[T], ldc int) {
	GemmSerial(transA, transB, m, n, k, alpha, a.Host(), lda, b.Host(), ldb, beta, c.Host(), ldc)
}

func (backend[T]) GemmNTSum(batch, m, n, k int, a kernels.Vec[T], lda, strideA int, b kernels.Vec[T], ldb, strideB int, c kernels.Vec[T], ldc int) {
	GemmNTSum(batch, m, n, k, a.Host(), lda, strideA, b.Host(), ldb, strideB, c.Host(), ldc)
}

// GemmBatched spreads the batch's matrices over the cores, one serial GEMM
// each.
func (backend[T]) GemmBatched(transA, transB bool, batch, m, n, k int, alpha T, a kernels.Vec[T], lda, strideA int, b kernels.Vec[T], ldb, strideB int, beta T, c kernels.Vec[T], ldc, strideC int) {
	if batch <= 0 || m == 0 || n == 0 {
		return
	}
	ah, bh, ch := a.Host(), b.Host(), c.Host()
	Parallel(batch, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			GemmSerial(transA, transB, m, n, k, alpha, ah[p*strideA:], lda, bh[p*strideB:], ldb, beta, ch[p*strideC:], ldc)
		}
	})
}

func (backend[T]) GemmTileUse(m, n int) float64 { return GemmTileUse(m, n) }

func (backend[T]) Im2col(im kernels.Vec[T], c, h, w int, g kernels.ConvGeom, oh, ow int, col kernels.Vec[T]) {
	Im2col(im.Host(), c, h, w, g, oh, ow, col.Host())
}

func (backend[T]) Col2im(col kernels.Vec[T], c, h, w int, g kernels.ConvGeom, oh, ow int, im kernels.Vec[T]) {
	Col2im(col.Host(), c, h, w, g, oh, ow, im.Host())
}

func (backend[T]) Copy(dst, src kernels.Vec[T])      { copy(dst.Host(), src.Host()) }
func (backend[T]) Fill(x kernels.Vec[T], v T)        { Fill(x.Host(), v) }
func (backend[T]) Axpy(alpha T, x, y kernels.Vec[T]) { Axpy(alpha, x.Host(), y.Host()) }
func (backend[T]) Axpby(alpha T, x kernels.Vec[T], beta T, y kernels.Vec[T]) {
	Axpby(alpha, x.Host(), beta, y.Host())
}
func (backend[T]) Scal(alpha T, x kernels.Vec[T])  { Scal(alpha, x.Host()) }
func (backend[T]) Shift(alpha T, x kernels.Vec[T]) { Shift(alpha, x.Host()) }
func (backend[T]) Mul(a, b, y kernels.Vec[T]) {
	av, bv, yv := a.Host(), b.Host(), y.Host()
	bv, yv = bv[:len(av)], yv[:len(av)]
	for i, v := range av {
		yv[i] = v * bv[i]
	}
}
func (backend[T]) DropoutForward(x, y, mask kernels.Vec[T], key kernels.IntVec, threshold uint32, scale T) {
	k := key.Host()
	kk := [2]uint32{uint32(k[0]), uint32(k[1])}
	xv := x.Host()
	yv, mv := y.Host()[:len(xv)], mask.Host()[:len(xv)]
	groups := (len(xv) + 3) / 4 // of 4 elements: one Philox draw each
	if groups < 4096 {
		dropoutGroups(xv, yv, mv, 0, groups, kk, threshold, scale)
		return
	}
	Parallel(groups, func(_, lo, hi int) { dropoutGroups(xv, yv, mv, lo, hi, kk, threshold, scale) })
}

// dropoutGroups is DropoutForward over groups [lo, hi) of 4 elements.
func dropoutGroups[T Float](x, y, mask []T, lo, hi int, key [2]uint32, threshold uint32, scale T) {
	a, b := 4*lo, min(4*hi, len(x))
	kernels.DropoutMask(mask[a:b], a, key, threshold, scale)
	for i := a; i < b; i++ {
		y[i] = x[i] * mask[i]
	}
}

func (backend[T]) Div(a, b, y kernels.Vec[T]) {
	av, bv, yv := a.Host(), b.Host(), y.Host()
	bv, yv = bv[:len(av)], yv[:len(av)]
	for i, v := range av {
		yv[i] = v / bv[i]
	}
}
func (backend[T]) EltwiseMax(x, y kernels.Vec[T], mask kernels.IntVec, k int) {
	xv, yv := x.Host(), y.Host()
	yv, m := yv[:len(xv)], mask.Host()[:len(xv)]
	if k == 0 {
		copy(yv, xv)
		clear(m)
		return
	}
	for i, v := range xv {
		if v > yv[i] {
			yv[i], m[i] = v, int32(k)
		}
	}
}
func (backend[T]) MaskSelect(dy kernels.Vec[T], mask kernels.IntVec, k int, dx kernels.Vec[T]) {
	dv, m, xv := dy.Host(), mask.Host(), dx.Host()
	m, xv = m[:len(dv)], xv[:len(dv)]
	for i, v := range dv {
		if m[i] == int32(k) {
			xv[i] = v
		} else {
			xv[i] = 0
		}
	}
}
func (backend[T]) Dot(x, y kernels.Vec[T]) T { return Dot(x.Host(), y.Host()) }

func (backend[T]) BatchNormForward(x, y, xnorm kernels.Vec[T], num, channels, spatial int, global bool, eps, maf float64, mean, inv, runMean, runVar, factor kernels.Vec[T]) {
	xv, yv, xn := x.Host(), y.Host(), xnorm.Host()
	mv, iv, rm, rv, fv := mean.Host(), inv.Host(), runMean.Host(), runVar.Host(), factor.Host()
	n, c, sp := num, channels, spatial
	if global {
		f := float64(fv[0])
		if f != 0 {
			f = 1 / f
		}
		for ch := 0; ch < c; ch++ {
			mv[ch] = T(f * float64(rm[ch]))
			iv[ch] = T(1 / math.Sqrt(f*float64(rv[ch])+eps))
		}
	} else {
		m := float64(n * sp)
		for ch := 0; ch < c; ch++ {
			var s float64
			for i := 0; i < n; i++ {
				for _, v := range xv[(i*c+ch)*sp : (i*c+ch+1)*sp] {
					s += float64(v)
				}
			}
			mu := s / m
			var v2 float64
			for i := 0; i < n; i++ {
				for _, v := range xv[(i*c+ch)*sp : (i*c+ch+1)*sp] {
					d := float64(v) - mu
					v2 += d * d
				}
			}
			variance := v2 / m
			mv[ch] = T(mu)
			iv[ch] = T(1 / math.Sqrt(variance+eps))
			// Running statistics, with Caffe's unbiased variance.
			corr := 1.0
			if m > 1 {
				corr = m / (m - 1)
			}
			rm[ch] = T(mu + maf*float64(rm[ch]))
			rv[ch] = T(corr*variance + maf*float64(rv[ch]))
		}
		fv[0] = T(float64(fv[0])*maf + 1)
	}
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			mu, in := mv[ch], iv[ch]
			off := (i*c + ch) * sp
			for k := off; k < off+sp; k++ {
				v := (xv[k] - mu) * in
				yv[k] = v
				xn[k] = v
			}
		}
	}
}

func (backend[T]) BatchNormBackward(dy, xnorm, inv, dx kernels.Vec[T], num, channels, spatial int, global bool) {
	dyv, y, iv, dxv := dy.Host(), xnorm.Host(), inv.Host(), dx.Host()
	n, c, sp := num, channels, spatial
	if global {
		for i := 0; i < n; i++ {
			for ch := 0; ch < c; ch++ {
				in := iv[ch]
				off := (i*c + ch) * sp
				for k := off; k < off+sp; k++ {
					dxv[k] = dyv[k] * in
				}
			}
		}
		return
	}
	m := T(n * sp)
	for ch := 0; ch < c; ch++ {
		var sdy, sdyy T
		for i := 0; i < n; i++ {
			off := (i*c + ch) * sp
			for k := off; k < off+sp; k++ {
				sdy += dyv[k]
				sdyy += dyv[k] * y[k]
			}
		}
		mdy, mdyy, in := sdy/m, sdyy/m, iv[ch]
		for i := 0; i < n; i++ {
			off := (i*c + ch) * sp
			for k := off; k < off+sp; k++ {
				dxv[k] = (dyv[k] - mdy - y[k]*mdyy) * in
			}
		}
	}
}

func (backend[T]) ActivationForward(a kernels.Activation, x, y kernels.Vec[T]) {
	xv := x.Host()
	yv := y.Host()[:len(xv)]
	switch a {
	case kernels.Sigmoid:
		for i, v := range xv {
			yv[i] = T(0.5*math.Tanh(0.5*float64(v)) + 0.5)
		}
	case kernels.TanH:
		for i, v := range xv {
			yv[i] = T(math.Tanh(float64(v)))
		}
	}
}

func (backend[T]) ActivationBackward(a kernels.Activation, y, dy, dx kernels.Vec[T]) {
	yv := y.Host()
	dyv, dxv := dy.Host()[:len(yv)], dx.Host()[:len(yv)]
	switch a {
	case kernels.Sigmoid:
		for i, v := range yv {
			dxv[i] = dyv[i] * v * (1 - v)
		}
	case kernels.TanH:
		for i, v := range yv {
			dxv[i] = dyv[i] * (1 - v*v)
		}
	}
}

func (backend[T]) AccuracyForward(x kernels.Vec[T], cls kernels.IntVec, outer, channels, inner, topK int, acc, perClass kernels.Vec[T]) {
	xv, cv, pc := x.Host(), cls.Host(), perClass.Host()
	var hitC, cntC []int
	if len(pc) > 0 {
		hitC, cntC = make([]int, channels), make([]int, channels)
	}
	hits, count := 0, 0
	for pos, c := range cv[:outer*inner] {
		if c < 0 {
			continue
		}
		o, j := pos/inner, pos%inner
		xo := xv[o*channels*inner+j:]
		truth := xo[int(c)*inner]
		better := -1        // the true class counts itself
		if truth != truth { // NaN: a diverged net is never right
			better = topK
		}
		for k := 0; k < channels && better < topK; k++ {
			if v := xo[k*inner]; v >= truth || v != v {
				better++
			}
		}
		hit := better < topK
		if hit {
			hits++
		}
		count++
		if cntC != nil {
			cntC[c]++
			if hit {
				hitC[c]++
			}
		}
	}
	a := 0.0
	if count > 0 {
		a = float64(hits) / float64(count)
	}
	acc.Host()[0] = T(a)
	for c := range pc[:min(len(pc), channels)] {
		pc[c] = 0
		if cntC[c] > 0 {
			pc[c] = T(float64(hitC[c]) / float64(cntC[c]))
		}
	}
}
func (backend[T]) Sum(x kernels.Vec[T]) T { return Sum(x.Host()) }
func (backend[T]) SumTo(x, dst kernels.Vec[T]) {
	dst.Host()[0] = Sum(x.Host())
}

// AddBias adds per row (inner 1, as InnerProduct) with Axpy and per plane
// with Shift (as Convolution), the two sums the layers computed before.
func (backend[T]) AddBias(y, bias kernels.Vec[T], outer, channels, inner int) {
	yv, b := y.Host(), bias.Host()[:channels]
	dim := channels * inner
	for o := 0; o < outer; o++ {
		yo := yv[o*dim : (o+1)*dim]
		if inner == 1 {
			Axpy(1, b, yo)
			continue
		}
		for c, bc := range b {
			Shift(bc, yo[c*inner:(c+1)*inner])
		}
	}
}

// BiasGrad sums rows with Axpy (inner 1) and planes with Sum.
func (backend[T]) BiasGrad(dy, db kernels.Vec[T], outer, channels, inner int) {
	d, b := dy.Host(), db.Host()[:channels]
	dim := channels * inner
	for o := 0; o < outer; o++ {
		do := d[o*dim : (o+1)*dim]
		if inner == 1 {
			Axpy(1, do, b)
			continue
		}
		AddRowSums(do, inner, b)
	}
}

func (backend[T]) ScaleChannels(x, s, y kernels.Vec[T], outer, channels, inner int) {
	xv, sv, yv := x.Host(), s.Host(), y.Host()
	i := 0
	for o := 0; o < outer; o++ {
		for c := 0; c < channels; c++ {
			v := sv[c]
			for k := 0; k < inner; k++ {
				yv[i] = xv[i] * v
				i++
			}
		}
	}
}

func (backend[T]) ChannelDot(a, b, d kernels.Vec[T], outer, channels, inner int) {
	av, bv, dv := a.Host(), b.Host(), d.Host()
	i := 0
	for o := 0; o < outer; o++ {
		for c := 0; c < channels; c++ {
			var sum T
			for k := 0; k < inner; k++ {
				sum += av[i] * bv[i]
				i++
			}
			dv[c] += sum
		}
	}
}

// AddTrans splits b's rows over the cores when the matrix is large (a
// convolution's weights, transposed twice per Backward): each piece reads
// a column band of a and writes its own rows of b.
func (backend[T]) AddTrans(a kernels.Vec[T], rows, cols int, b kernels.Vec[T]) {
	av, bv := a.Host(), b.Host()
	if rows*cols < 2*transGrain || runtime.GOMAXPROCS(0) == 1 || rows == 0 {
		addTrans(av, rows, cols, bv, 0, cols)
		return
	}
	ParallelElems(cols, max(1, transGrain/rows), func(lo, hi int) { addTrans(av, rows, cols, bv, lo, hi) })
}

// transGrain is AddTrans's smallest parallel piece, in elements: its
// strided reads cost several times an elementwise loop's.
const transGrain = 1 << 13

// addTrans adds aᵀ's rows [lo, hi) into b's.
func addTrans[T Float](av []T, rows, cols int, bv []T, lo, hi int) {
	for i := lo; i < hi; i++ {
		row := bv[i*rows : (i+1)*rows]
		for p := range row {
			row[p] += av[p*cols+i]
		}
	}
}

// ReLUForward is branchless: the sign of activations is unpredictable, and
// a mispredicted branch per element costs several times the arithmetic.
// Both directions split large blobs over the cores (ParallelElems): a
// ReLU over a whole batch's activations is memory-bound work that a single
// core would do while the others wait at the next layer. Small blobs run
// inline, without the closure (no allocation per pass).
func (backend[T]) ReLUForward(x, y kernels.Vec[T], s T) {
	xv := x.Host()
	yv := y.Host()[:len(xv)]
	if x32, ok := any(xv).([]float32); ok {
		y32, s32 := any(yv).([]float32), float32(s)
		if !elemsParallel(len(xv)) {
			SReLU(x32, y32, s32)
			return
		}
		ParallelElems(len(xv), elemGrain, func(lo, hi int) { SReLU(x32[lo:hi], y32[lo:hi], s32) })
		return
	}
	reluForward(xv, yv, s)
}

func reluForward[T Float](x, y []T, s T) {
	zeroUpper()
	y = y[:len(x)]
	for i, v := range x {
		y[i] = max(v, 0) + s*min(v, 0)
	}
}

func (backend[T]) ReLUBackward(x, dy, dx kernels.Vec[T], s T) {
	xv := x.Host()
	switch xs := any(xv).(type) {
	case []float32:
		d, g := any(dy.Host()).([]float32), any(dx.Host()).([]float32)
		if !elemsParallel(len(xs)) {
			SReLUBackward(xs, d, g, float32(s))
			return
		}
		ParallelElems(len(xs), elemGrain, func(lo, hi int) {
			SReLUBackward(xs[lo:hi], d[lo:hi], g[lo:hi], float32(s))
		})
	case []float64:
		d, g := any(dy.Host()).([]float64), any(dx.Host()).([]float64)
		if !elemsParallel(len(xs)) {
			reluBackward64(xs, d, g, float64(s))
			return
		}
		ParallelElems(len(xs), elemGrain, func(lo, hi int) {
			reluBackward64(xs[lo:hi], d[lo:hi], g[lo:hi], float64(s))
		})
	}
}

// reluBackward32 selects without branches: from the bits b of x, the sign
// bit of (-b) & ^b is set exactly when x > 0 (it excludes ±0 and negatives).
func reluBackward32(x, dy, dx []float32, s float32) {
	zeroUpper()
	dy = dy[:len(x)]
	dx = dx[:len(x)]
	for i, v := range x {
		b := int32(math.Float32bits(v))
		pos := uint32(((-b) & ^b) >> 31)                     // all ones when x > 0
		f := math.Float32frombits(pos & math.Float32bits(1)) // 1 or 0
		dx[i] = dy[i] * (s + (1-s)*f)
	}
}

func reluBackward64(x, dy, dx []float64, s float64) {
	zeroUpper()
	dy = dy[:len(x)]
	dx = dx[:len(x)]
	for i, v := range x {
		b := int64(math.Float64bits(v))
		pos := uint64(((-b) & ^b) >> 63)
		f := math.Float64frombits(pos & math.Float64bits(1))
		dx[i] = dy[i] * (s + (1-s)*f)
	}
}

func (backend[T]) MaxPoolForward(x kernels.Vec[T], planes int, g kernels.PoolGeom, y kernels.Vec[T], mask kernels.IntVec) {
	xv, yv, mv := x.Host(), y.Host(), mask.Host()
	in, out := g.H*g.W, g.OH*g.OW
	Parallel(planes, func(_, lo, hi int) {
		zeroUpper()
		for p := lo; p < hi; p++ {
			MaxPoolPlane(g, xv[p*in:(p+1)*in], yv[p*out:(p+1)*out], mv[p*out:(p+1)*out])
		}
	})
}

func (backend[T]) MaxPoolBackward(dy kernels.Vec[T], mask kernels.IntVec, planes int, g kernels.PoolGeom, dx kernels.Vec[T]) {
	dyv, dxv, mv := dy.Host(), dx.Host(), mask.Host()
	in, out := g.H*g.W, g.OH*g.OW
	Parallel(planes, func(_, lo, hi int) {
		zeroUpper()
		// LeNet's 2×2 windows by selection where a kernel has their rows.
		if dy32, ok := any(dyv).([]float32); ok {
			lo = maxPoolBackward2x2(g, dy32, mv, any(dxv).([]float32), lo, hi)
		}
		for p := lo; p < hi; p++ {
			maxPoolBackwardPlane(dyv[p*out:(p+1)*out], mv[p*out:(p+1)*out], dxv[p*in:(p+1)*in])
		}
	})
}

// maxPoolBackward2x2 runs the selecting gradient kernels of 2×2 max
// pooling of stride 2 over planes lo..hi-1 where one has the plane's shape
// (LeNet's pool1 and pool2 on AVX-512), and returns the first plane left
// to the scatter.
func maxPoolBackward2x2(g kernels.PoolGeom, dy []float32, mask []int32, dx []float32, lo, hi int) int {
	if g.KH != 2 || g.KW != 2 || g.SH != 2 || g.SW != 2 || g.PH != 0 || g.PW != 0 || g.H != 2*g.OH || g.W != 2*g.OW {
		return lo
	}
	in, out := g.H*g.W, g.OH*g.OW
	switch g.W {
	case 24:
		for ; lo < hi; lo++ {
			if !maxPoolBackward2x2Cols12(dy[lo*out:(lo+1)*out], mask[lo*out:(lo+1)*out], dx[lo*in:(lo+1)*in], g.OH) {
				break
			}
		}
	case 8:
		for ; lo < hi; lo++ {
			if !maxPoolBackward2x2Rows4(dy[lo*out:(lo+1)*out], mask[lo*out:(lo+1)*out], dx[lo*in:(lo+1)*in], g.OH) {
				break
			}
		}
	}
	return lo
}

// maxPoolBackwardPlane overwrites one plane's bottom diff dx with the top
// diff dy added at the argmax indices in mask (those outside the plane,
// -1 for a window with no input, are skipped). A plain function of its
// own slices: inside MaxPoolBackward's closure the loop reloaded the
// plane's bounds and offsets from the stack every element.
func maxPoolBackwardPlane[T Float](dy []T, mask []int32, dx []T) {
	clear(dx)
	mask = mask[:len(dy)]
	n := uint(len(dx))
	for o, d := range dy {
		if arg := uint(mask[o]); arg < n { // a negative index wraps past n
			dx[arg] += d
		}
	}
}

func (backend[T]) AvePoolForward(x kernels.Vec[T], planes int, g kernels.PoolGeom, y kernels.Vec[T]) {
	xv, yv := x.Host(), y.Host()
	in, out := g.H*g.W, g.OH*g.OW
	div := AvePoolDivisors[T](g)
	Parallel(planes, func(_, lo, hi int) {
		rs := make([]T, g.W)
		for p := lo; p < hi; p++ {
			AvePoolPlane(g, xv[p*in:(p+1)*in], yv[p*out:(p+1)*out], rs, div)
		}
	})
}

func (backend[T]) AvePoolBackward(dy kernels.Vec[T], planes int, g kernels.PoolGeom, dx kernels.Vec[T]) {
	dyv, dxv := dy.Host(), dx.Host()
	in, out := g.H*g.W, g.OH*g.OW
	div := AvePoolDivisors[T](g)
	Parallel(planes, func(_, lo, hi int) {
		rd := make([]T, g.W)
		for p := lo; p < hi; p++ {
			AvePoolPlaneBackward(g, dyv[p*out:(p+1)*out], dxv[p*in:(p+1)*in], rd, div)
		}
	})
}

func (backend[T]) SoftmaxForward(x, y kernels.Vec[T], outer, channels, inner int) {
	SoftmaxForward(x.Host(), y.Host(), outer, channels, inner)
}

func (backend[T]) SoftmaxBackward(y, dy, dx kernels.Vec[T], outer, channels, inner int) {
	zeroUpper()
	yv, dyv, dxv := y.Host(), dy.Host(), dx.Host()
	dim := channels * inner
	for o := 0; o < outer; o++ {
		yo, dyo, dxo := yv[o*dim:(o+1)*dim], dyv[o*dim:(o+1)*dim], dxv[o*dim:(o+1)*dim]
		for j := 0; j < inner; j++ {
			var dot T
			for c := 0; c < channels; c++ {
				k := c*inner + j
				dot += dyo[k] * yo[k]
			}
			for c := 0; c < channels; c++ {
				k := c*inner + j
				dxo[k] = (dyo[k] - dot) * yo[k]
			}
		}
	}
}

func (backend[T]) LRNForward(x, scale, y kernels.Vec[T], g kernels.LRNGeom) {
	lrnForward(x.Host(), scale.Host(), y.Host(), g)
}

func (backend[T]) LRNBackward(x, y, scale, dy, dx kernels.Vec[T], g kernels.LRNGeom) {
	lrnBackward(x.Host(), y.Host(), scale.Host(), dy.Host(), dx.Host(), g)
}

// fltMin is C's FLT_MIN, the floor Caffe puts under probabilities.
const fltMin = 0x1p-126

func (backend[T]) SoftmaxLossForward(prob kernels.Vec[T], cls kernels.IntVec, outer, channels, inner int, normalizer float64, loss kernels.Vec[T]) {
	zeroUpper()
	p, c := prob.Host(), cls.Host()
	dim := channels * inner
	var sum float64
	for o := 0; o < outer; o++ {
		for j := 0; j < inner; j++ {
			k := c[o*inner+j]
			if k < 0 {
				continue
			}
			sum -= math.Log(max(float64(p[o*dim+int(k)*inner+j]), fltMin))
		}
	}
	loss.Host()[0] = T(sum / normalizer)
}

func (backend[T]) SoftmaxLossBackward(prob kernels.Vec[T], cls kernels.IntVec, outer, channels, inner int, scale T, dx kernels.Vec[T]) {
	zeroUpper()
	p, c, d := prob.Host(), cls.Host(), dx.Host()
	copy(d, p)
	dim := channels * inner
	for o := 0; o < outer; o++ {
		for j := 0; j < inner; j++ {
			k := c[o*inner+j]
			if k < 0 {
				for ch := 0; ch < channels; ch++ {
					d[o*dim+ch*inner+j] = 0
				}
				continue
			}
			d[o*dim+int(k)*inner+j]--
		}
	}
	for i := range d {
		d[i] *= scale
	}
}

func (backend[T]) SGDMomentum(diff, data, hist kernels.Vec[T], norm, decay, lr, mom T) {
	d, w, h := diff.Host(), data.Host(), hist.Host()
	if d32, ok := any(d).([]float32); ok {
		SGDMomentum(d32, any(w).([]float32), any(h).([]float32), float32(norm), float32(decay), float32(lr), float32(mom))
		return
	}
	SGDMomentumRef(d, w, h, norm, decay, lr, mom)
}

// SoftmaxForward writes softmax(x) over the middle axis of an
// (outer, channels, inner) array into y; x and y may be the same slice.
func SoftmaxForward[T Float](x, y []T, outer, channels, inner int) {
	zeroUpper()
	dim := channels * inner
	for o := 0; o < outer; o++ {
		xo, yo := x[o*dim:(o+1)*dim], y[o*dim:(o+1)*dim]
		for j := 0; j < inner; j++ {
			m := xo[j]
			for c := 1; c < channels; c++ {
				m = max(m, xo[c*inner+j])
			}
			var sum T
			for c := 0; c < channels; c++ {
				e := T(math.Exp(float64(xo[c*inner+j] - m)))
				yo[c*inner+j] = e
				sum += e
			}
			for c := 0; c < channels; c++ {
				yo[c*inner+j] /= sum
			}
		}
	}
}

// SolverUpdate is the reference of a solver step over flat buffers (see
// kernels.SolverRule), one element at a time in T as caffe/solver's
// ApplyUpdate computes it; the gradient norm for clipping is summed in
// float64.
func (backend[T]) SolverUpdate(r kernels.SolverRule, offs kernels.IntVec, mults kernels.Vec[T], diff, data, hist0, hist1 kernels.Vec[T]) {
	zeroUpper()
	o, m := offs.Host(), mults.Host()
	d, w, h0, h1 := diff.Host(), data.Host(), hist0.Host(), hist1.Host()
	var clip T = 1
	if r.Clip >= 0 {
		var s float64
		for _, v := range d {
			s += float64(v) * float64(v)
		}
		if n := math.Sqrt(s); n > r.Clip {
			clip = T(r.Clip / n)
		}
	}
	mom, mom2, delta, rms := T(r.Momentum), T(r.Momentum2), T(r.Delta), T(r.RMSDecay)
	sqrt := func(x T) T { return T(math.Sqrt(float64(x))) }
	for s := 0; s+1 < len(o); s++ {
		lr := T(r.Rate * float64(m[2*s]))
		decay := T(r.WeightDecay * float64(m[2*s+1]))
		for i := int(o[s]); i < int(o[s+1]); i++ {
			g := d[i]
			if clip != 1 {
				g *= clip
			}
			if r.Norm != 1 {
				g *= T(r.Norm)
			}
			if decay != 0 {
				switch {
				case !r.L1:
					g += decay * w[i]
				case w[i] > 0:
					g += decay
				case w[i] < 0:
					g -= decay
				}
			}
			var u T
			switch r.Method {
			case kernels.UpdateSGD:
				u = lr*g + mom*h0[i]
				h0[i] = u
			case kernels.UpdateNesterov:
				prev := h0[i]
				v := lr*g + mom*prev
				h0[i] = v
				u = (1+mom)*v - mom*prev
			case kernels.UpdateAdaGrad:
				sq := h0[i] + g*g
				h0[i] = sq
				u = lr * (g / (sqrt(sq) + delta))
			case kernels.UpdateRMSProp:
				sq := (1-rms)*(g*g) + rms*h0[i]
				h0[i] = sq
				u = lr * (g / (sqrt(sq) + delta))
			case kernels.UpdateAdaDelta:
				sg := (1-mom)*(g*g) + mom*h0[i]
				h0[i] = sg
				v := g * sqrt((h1[i]+delta)/(sg+delta))
				h1[i] = (1-mom)*(v*v) + mom*h1[i]
				u = lr * v
			case kernels.UpdateAdam:
				mm := (1-mom)*g + mom*h0[i]
				vv := (1-mom2)*(g*g) + mom2*h1[i]
				h0[i], h1[i] = mm, vv
				u = (lr * T(r.AdamCorr)) * (mm / (sqrt(vv) + delta))
			}
			d[i] = u
			w[i] -= u
		}
	}
}

// ImplicitConv reports whether the implicit convolution products run:
// float32 on the AVX-512 or AVX2 kernels.
func (backend[T]) ImplicitConv() bool { return ImplicitConv[T]() }

func (backend[T]) ConvWeightsT(im kernels.Vec[T], c, h, w int, g kernels.ConvGeom, oh, ow int, dy kernels.Vec[T], oc int, dwT kernels.Vec[T], ldc int, beta T) {
	ConvWeightsT(im.Host(), c, h, w, g, oh, ow, dy.Host(), oc, dwT.Host(), ldc, beta)
}

func (backend[T]) ConvPackLen(oc, kdim int) int { return ConvPackLen(oc, kdim) }

func (backend[T]) ConvPack(w kernels.Vec[T], oc, kdim int, packed kernels.Vec[T]) {
	ConvPack(w.Host(), oc, kdim, packed.Host())
}

func (backend[T]) ConvForward(im kernels.Vec[T], c, h, w int, g kernels.ConvGeom, oh, ow int, packed kernels.Vec[T], oc int, out kernels.Vec[T]) {
	ConvForward(im.Host(), c, h, w, g, oh, ow, packed.Host(), oc, out.Host())
}
