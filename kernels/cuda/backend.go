//go:build cuda

package cuda

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/cuda/graph"
)

// GPU is a kernels.Device on one CUDA device: layers and solvers compute
// through its Float32 and Float64 backends on device memory.
//
// kernels.Backend's methods return no errors; a CUDA error (a failed
// launch, an asynchronous fault seen at a download) is kept, the first
// one, and reported by Err. Operations after an error still run.
type GPU struct {
	D   *Device
	f32 *backend[float32]
	f64 *backend[float64]

	mu  sync.Mutex
	err error
	// rec collects what Record must know about the operations being
	// recorded (nil when not recording).
	rec *recording
}

var _ kernels.Recorder = (*GPU)(nil)

var _ kernels.Device = (*GPU)(nil)

// NewGPU opens device ordinal as a kernels.Device.
func NewGPU(ordinal int) (*GPU, error) {
	d, err := Open(ordinal)
	if err != nil {
		return nil, err
	}
	g := &GPU{D: d}
	g.f32 = &backend[float32]{g: g, o: Ops[float32]{d}}
	g.f64 = &backend[float64]{g: g, o: Ops[float64]{d}}
	return g, nil
}

func (g *GPU) Name() string                      { return g.D.Name() }
func (g *GPU) Engine() string                    { return "CUDA" }
func (g *GPU) Float32() kernels.Backend[float32] { return g.f32 }
func (g *GPU) Float64() kernels.Backend[float64] { return g.f64 }

// Err returns the first CUDA error since the device was opened, after
// waiting for the work issued so far.
func (g *GPU) Err() error {
	g.keep(g.D.Sync())
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

func (g *GPU) keep(err error) {
	if g.rec != nil && g.rec.invalidatedBy == "" && g.D.captureInvalidated() {
		// The driver invalidates a capture without failing the call that
		// did it; name that call for Record's error (EndCapture says only
		// "a previous error").
		g.rec.invalidatedBy = "an operation"
		if pc, _, _, ok := runtime.Caller(1); ok {
			if f := runtime.FuncForPC(pc); f != nil {
				g.rec.invalidatedBy = f.Name()
			}
		}
	}
	if err == nil {
		return
	}
	g.mu.Lock()
	if g.err == nil {
		g.err = err
	}
	g.mu.Unlock()
}

// Close releases the device.
func (g *GPU) Close() error { return g.D.Close() }

var _ kernels.Sider = (*GPU)(nil)

// Beside runs fn's operations on the device's side stream (Device.Beside).
func (g *GPU) Beside(fn func()) { g.D.Beside(fn) }

// Join makes the next operations wait for those issued Beside.
func (g *GPU) Join() { g.keep(g.D.Join()) }

// buffer is device memory of n elements of elem bytes.
type buffer struct {
	d    *Device
	p    Ptr
	n    int
	elem int
}

func (b *buffer) Len() int { return b.n }
func (b *buffer) Free() {
	if b.p != 0 {
		b.d.Free(b.p)
		b.p = 0
	}
}

// backend implements kernels.Backend[T] on the GPU.
type backend[T Float] struct {
	g *GPU
	o Ops[T]

	mu    sync.Mutex
	convs map[convKey]convEntry // cuDNN plans by shape (ConvPlan)
}

var _ kernels.Convolver[float32] = (*backend[float32])(nil)

// ptr is the device address of v's first element. A host Vec here is a
// caller's bug (the blob hands out device Vecs to a device backend): it is
// recorded as an error and the operation is skipped.
func (b *backend[T]) ptr(v kernels.Vec[T]) (Ptr, bool) {
	buf, off := v.Device()
	db, ok := buf.(*buffer)
	if !ok || db == nil {
		b.g.keep(fmt.Errorf("%s: an operation got host memory (%d elements) where device memory was needed", b.g.Name(), v.Len()))
		return 0, false
	}
	return db.p + Ptr(off*Size[T]()), true
}

func (b *backend[T]) iptr(v kernels.IntVec) (Ptr, bool) {
	buf, off := v.Device()
	db, ok := buf.(*buffer)
	if !ok || db == nil {
		b.g.keep(fmt.Errorf("%s: an operation got host indices (%d) where device memory was needed", b.g.Name(), v.Len()))
		return 0, false
	}
	return db.p + Ptr(off*4), true
}

// ptrs resolves several Vecs; ok is false if any is not device memory.
func (b *backend[T]) ptrs(vs ...kernels.Vec[T]) ([]Ptr, bool) {
	ps := make([]Ptr, len(vs))
	for i, v := range vs {
		p, ok := b.ptr(v)
		if !ok {
			return nil, false
		}
		ps[i] = p
	}
	return ps, true
}

func (b *backend[T]) HostMemory() bool { return false }

func (b *backend[T]) alloc(n, elem int) *buffer {
	p, err := b.o.D.Alloc(n * elem)
	if err != nil {
		b.g.keep(err)
	}
	return &buffer{d: b.o.D, p: p, n: n, elem: elem}
}

func (b *backend[T]) Alloc(n int) kernels.Vec[T] {
	return kernels.DeviceVec[T](b.alloc(n, Size[T]()), 0, n)
}

func (b *backend[T]) AllocInts(n int) kernels.IntVec {
	return kernels.DeviceInts(b.alloc(n, 4), 0, n)
}

func (b *backend[T]) Upload(dst kernels.Vec[T], src []T) {
	p, ok := b.ptr(dst)
	if !ok || len(src) == 0 {
		return
	}
	if len(src) != dst.Len() {
		b.g.keep(fmt.Errorf("%s: upload of %d elements into %d", b.g.Name(), len(src), dst.Len()))
		return
	}
	b.g.keep(b.o.D.Upload(p, unsafe.Pointer(&src[0]), len(src)*Size[T]()))
}

func (b *backend[T]) UploadInts(dst kernels.IntVec, src []int32) {
	p, ok := b.iptr(dst)
	if !ok || len(src) == 0 {
		return
	}
	if len(src) != dst.Len() {
		b.g.keep(fmt.Errorf("%s: upload of %d indices into %d", b.g.Name(), len(src), dst.Len()))
		return
	}
	b.g.keep(b.o.D.Upload(p, unsafe.Pointer(&src[0]), len(src)*4))
}

func (b *backend[T]) Download(dst []T, src kernels.Vec[T]) {
	p, ok := b.ptr(src)
	if !ok || len(dst) == 0 {
		return
	}
	if len(dst) != src.Len() {
		b.g.keep(fmt.Errorf("%s: download of %d elements into %d", b.g.Name(), src.Len(), len(dst)))
		return
	}
	b.g.keep(b.o.D.Download(unsafe.Pointer(&dst[0]), p, len(dst)*Size[T]()))
}

func (b *backend[T]) Device() kernels.Device { return b.g }

// A device runs a layer's per-image loop on the calling goroutine, in
// order (see kernels.Backend).
func (b *backend[T]) Workers(n int) int { return 1 }
func (b *backend[T]) Parallel(n int, fn func(worker, lo, hi int)) {
	if n > 0 {
		fn(0, 0, n)
	}
}
func (b *backend[T]) ParallelDynamic(workers, n, grain int, fn func(worker, lo, hi int)) {
	if n > 0 {
		fn(0, 0, n)
	}
}

// ParallelN keeps its contract of exactly workers chunks (a layer may size
// per-chunk state by it), run in order.
func (b *backend[T]) ParallelN(workers, n int, fn func(chunk, lo, hi int)) {
	if workers < 1 {
		workers = 1
	}
	for c := 0; c < workers; c++ {
		fn(c, c*n/workers, (c+1)*n/workers)
	}
}

func (b *backend[T]) Gemm(ta, tb bool, m, n, k int, alpha T, a kernels.Vec[T], lda int, bv kernels.Vec[T], ldb int, beta T, c kernels.Vec[T], ldc int) {
	if p, ok := b.ptrs(a, bv, c); ok {
		b.g.keep(b.o.Gemm(ta, tb, m, n, k, alpha, p[0], lda, p[1], ldb, beta, p[2], ldc))
	}
}

func (b *backend[T]) GemmSerial(ta, tb bool, m, n, k int, alpha T, a kernels.Vec[T], lda int, bv kernels.Vec[T], ldb int, beta T, c kernels.Vec[T], ldc int) {
	b.Gemm(ta, tb, m, n, k, alpha, a, lda, bv, ldb, beta, c, ldc)
}

func (b *backend[T]) GemmNTSum(batch, m, n, k int, a kernels.Vec[T], lda, strideA int, bv kernels.Vec[T], ldb, strideB int, c kernels.Vec[T], ldc int) {
	if p, ok := b.ptrs(a, bv, c); ok {
		b.g.keep(b.o.GemmBatchSum(false, true, batch, m, n, k, 1, p[0], lda, strideA, p[1], ldb, strideB, 1, p[2], ldc))
	}
}

func (b *backend[T]) GemmBatched(ta, tb bool, batch, m, n, k int, alpha T, a kernels.Vec[T], lda, strideA int, bv kernels.Vec[T], ldb, strideB int, beta T, c kernels.Vec[T], ldc, strideC int) {
	if p, ok := b.ptrs(a, bv, c); ok {
		b.g.keep(b.o.GemmBatched(ta, tb, batch, m, n, k, alpha, p[0], lda, strideA, p[1], ldb, strideB, beta, p[2], ldc, strideC))
	}
}

func (b *backend[T]) GemmTileUse(m, n int) float64 { return 1 }

func geom(g kernels.ConvGeom) Geom {
	return Geom{KH: g.KH, KW: g.KW, SH: g.SH, SW: g.SW, PH: g.PH, PW: g.PW, DH: g.DH, DW: g.DW}
}

func (b *backend[T]) Im2col(im kernels.Vec[T], c, h, w int, g kernels.ConvGeom, oh, ow int, col kernels.Vec[T]) {
	if p, ok := b.ptrs(im, col); ok {
		b.g.keep(b.o.Im2col(p[0], c, h, w, geom(g), oh, ow, p[1]))
	}
}

func (b *backend[T]) Col2im(col kernels.Vec[T], c, h, w int, g kernels.ConvGeom, oh, ow int, im kernels.Vec[T]) {
	if p, ok := b.ptrs(col, im); ok {
		b.g.keep(b.o.Col2im(p[0], c, h, w, geom(g), oh, ow, p[1]))
	}
}

func (b *backend[T]) Copy(dst, src kernels.Vec[T]) {
	if dst.Len() != src.Len() {
		b.g.keep(fmt.Errorf("%s: copy of %d elements into %d", b.g.Name(), src.Len(), dst.Len()))
		return
	}
	if p, ok := b.ptrs(dst, src); ok {
		b.g.keep(b.o.Copy(p[0], p[1], dst.Len()))
	}
}

func (b *backend[T]) Fill(x kernels.Vec[T], v T) {
	if p, ok := b.ptr(x); ok {
		b.g.keep(b.o.Fill(p, x.Len(), v))
	}
}

func (b *backend[T]) Axpy(alpha T, x, y kernels.Vec[T]) {
	if p, ok := b.ptrs(x, y); ok && y.Len() > 0 {
		b.g.keep(b.o.Axpy(y.Len(), alpha, p[0], p[1]))
	}
}

func (b *backend[T]) Axpby(alpha T, x kernels.Vec[T], beta T, y kernels.Vec[T]) {
	if p, ok := b.ptrs(x, y); ok && y.Len() > 0 {
		b.g.keep(b.o.Axpby(y.Len(), alpha, p[0], beta, p[1]))
	}
}

func (b *backend[T]) Scal(alpha T, x kernels.Vec[T]) {
	if p, ok := b.ptr(x); ok && x.Len() > 0 {
		b.g.keep(b.o.Scal(x.Len(), alpha, p))
	}
}

func (b *backend[T]) Shift(alpha T, x kernels.Vec[T]) {
	if p, ok := b.ptr(x); ok && x.Len() > 0 {
		b.g.keep(b.o.Shift(x.Len(), alpha, p))
	}
}

func (b *backend[T]) Mul(a, bv, y kernels.Vec[T]) {
	if p, ok := b.ptrs(a, bv, y); ok && y.Len() > 0 {
		b.g.keep(b.o.Mul(y.Len(), p[0], p[1], p[2]))
	}
}

func (b *backend[T]) DropoutForward(x, y, mask kernels.Vec[T], key kernels.IntVec, threshold uint32, scale T) {
	p, ok := b.ptrs(x, y, mask)
	k, kok := b.iptr(key)
	if ok && kok && x.Len() > 0 {
		b.g.keep(b.o.DropoutForward(x.Len(), p[0], p[1], p[2], k, threshold, scale))
	}
}

func (b *backend[T]) Div(a, bv, y kernels.Vec[T]) {
	if p, ok := b.ptrs(a, bv, y); ok && y.Len() > 0 {
		b.g.keep(b.o.Div(y.Len(), p[0], p[1], p[2]))
	}
}

func (b *backend[T]) EltwiseMax(x, y kernels.Vec[T], mask kernels.IntVec, k int) {
	p, ok := b.ptrs(x, y)
	m, mok := b.iptr(mask)
	if ok && mok && x.Len() > 0 {
		b.g.keep(b.o.EltwiseMax(x.Len(), p[0], p[1], m, k))
	}
}

func (b *backend[T]) MaskSelect(dy kernels.Vec[T], mask kernels.IntVec, k int, dx kernels.Vec[T]) {
	p, ok := b.ptrs(dy, dx)
	m, mok := b.iptr(mask)
	if ok && mok && dy.Len() > 0 {
		b.g.keep(b.o.MaskSelect(dy.Len(), p[0], m, k, p[1]))
	}
}

func (b *backend[T]) BatchNormForward(x, y, xnorm kernels.Vec[T], num, channels, spatial int, global bool, eps, maf float64, mean, inv, runMean, runVar, factor kernels.Vec[T]) {
	if p, ok := b.ptrs(x, y, xnorm, mean, inv, runMean, runVar, factor); ok && channels > 0 {
		b.g.keep(b.o.BatchNormForward(p[0], p[1], p[2], num, channels, spatial, global, eps, maf, p[3], p[4], p[5], p[6], p[7]))
	}
}

func (b *backend[T]) BatchNormBackward(dy, xnorm, inv, dx kernels.Vec[T], num, channels, spatial int, global bool) {
	if p, ok := b.ptrs(dy, xnorm, inv, dx); ok && channels > 0 {
		b.g.keep(b.o.BatchNormBackward(p[0], p[1], p[2], p[3], num, channels, spatial, global))
	}
}

func (b *backend[T]) ActivationForward(a kernels.Activation, x, y kernels.Vec[T]) {
	if p, ok := b.ptrs(x, y); ok && x.Len() > 0 {
		b.g.keep(b.o.ActivationForward(int(a), x.Len(), p[0], p[1]))
	}
}

func (b *backend[T]) ActivationBackward(a kernels.Activation, y, dy, dx kernels.Vec[T]) {
	if p, ok := b.ptrs(y, dy, dx); ok && y.Len() > 0 {
		b.g.keep(b.o.ActivationBackward(int(a), y.Len(), p[0], p[1], p[2]))
	}
}

func (b *backend[T]) AccuracyForward(x kernels.Vec[T], cls kernels.IntVec, outer, channels, inner, topK int, acc, perClass kernels.Vec[T]) {
	p, ok := b.ptrs(x, acc)
	c, cok := b.iptr(cls)
	var pc Ptr
	if perClass.Len() > 0 {
		var pok bool
		if pc, pok = b.ptr(perClass); !pok {
			return
		}
	}
	if ok && cok {
		b.g.keep(b.o.AccuracyCls(p[0], c, outer, channels, inner, topK, p[1], pc))
	}
}

func (b *backend[T]) Dot(x, y kernels.Vec[T]) T {
	p, ok := b.ptrs(x, y)
	if !ok {
		return 0
	}
	v, err := b.o.Dot(x.Len(), p[0], p[1])
	b.g.keep(err)
	return v
}

func (b *backend[T]) Sum(x kernels.Vec[T]) T {
	p, ok := b.ptr(x)
	if !ok {
		return 0
	}
	v, err := b.o.Dot(x.Len(), p, 0)
	b.g.keep(err)
	return v
}

func (b *backend[T]) SumTo(x, dst kernels.Vec[T]) {
	if p, ok := b.ptrs(x, dst); ok {
		b.g.keep(b.o.DotTo(x.Len(), p[0], 0, p[1]))
	}
}

func (b *backend[T]) AddBias(y, bias kernels.Vec[T], outer, channels, inner int) {
	if p, ok := b.ptrs(y, bias); ok && outer*channels*inner > 0 {
		b.g.keep(b.o.AddBias(p[0], p[1], outer, channels, inner))
	}
}

// AddBiasReLU is AddBias followed by an in-place ReLUForward with slope,
// in one kernel: the convolution and inner product call it when the net
// fused the in-place ReLU after them (caffe/network's ReLU fusion).
func (b *backend[T]) AddBiasReLU(y, bias kernels.Vec[T], outer, channels, inner int, slope T) {
	if p, ok := b.ptrs(y, bias); ok && outer*channels*inner > 0 {
		b.g.keep(b.o.AddBiasReLU(p[0], p[1], outer, channels, inner, slope))
	}
}

func (b *backend[T]) BiasGrad(dy, db kernels.Vec[T], outer, channels, inner int) {
	if p, ok := b.ptrs(dy, db); ok && channels > 0 {
		b.g.keep(b.o.BiasGrad(p[0], p[1], outer, channels, inner))
	}
}

func (b *backend[T]) ScaleChannels(x, s, y kernels.Vec[T], outer, channels, inner int) {
	if p, ok := b.ptrs(x, s, y); ok && outer*channels*inner > 0 {
		b.g.keep(b.o.ScaleChannels(p[0], p[1], p[2], outer, channels, inner))
	}
}

func (b *backend[T]) ChannelDot(a, bv, d kernels.Vec[T], outer, channels, inner int) {
	if p, ok := b.ptrs(a, bv, d); ok && channels > 0 {
		b.g.keep(b.o.ChannelDot(p[0], p[1], p[2], outer, channels, inner))
	}
}

func (b *backend[T]) LRNForward(x, scale, y kernels.Vec[T], g kernels.LRNGeom) {
	if p, ok := b.ptrs(x, scale, y); ok && g.N*g.C*g.H*g.W > 0 {
		b.g.keep(b.o.LRNForward(p[0], p[1], p[2], g))
	}
}

func (b *backend[T]) LRNBackward(x, y, scale, dy, dx kernels.Vec[T], g kernels.LRNGeom) {
	if p, ok := b.ptrs(x, y, scale, dy, dx); ok && g.N*g.C*g.H*g.W > 0 {
		b.g.keep(b.o.LRNBackward(p[0], p[1], p[2], p[3], p[4], g))
	}
}

func (b *backend[T]) SoftmaxLossForward(prob kernels.Vec[T], cls kernels.IntVec, outer, channels, inner int, normalizer float64, loss kernels.Vec[T]) {
	p, ok := b.ptrs(prob, loss)
	c, okc := b.iptr(cls)
	if ok && okc {
		b.g.keep(b.o.SoftmaxLossForward(p[0], c, outer, channels, inner, normalizer, p[1]))
	}
}

// SoftmaxLossAccuracy is SoftmaxForward, SoftmaxLossForward and, with topK
// > 0, the top-k accuracy of x into acc, in one kernel (SoftmaxWithLoss
// calls it for small batches, and with the accuracy when the net fused the
// Accuracy layer reading the same scores and labels into it).
func (b *backend[T]) SoftmaxLossAccuracy(x, prob kernels.Vec[T], cls kernels.IntVec, outer, channels, inner int, normalizer float64, loss kernels.Vec[T], topK int, acc kernels.Vec[T]) {
	p, ok := b.ptrs(x, prob, loss)
	c, okc := b.iptr(cls)
	if !ok || !okc {
		return
	}
	var a Ptr
	if topK > 0 {
		if a, ok = b.ptr(acc); !ok {
			return
		}
	}
	b.g.keep(b.o.SoftmaxLossAccuracy(p[0], p[1], c, outer, channels, inner, normalizer, p[2], topK, a))
}

func (b *backend[T]) SoftmaxLossBackward(prob kernels.Vec[T], cls kernels.IntVec, outer, channels, inner int, scale T, dx kernels.Vec[T]) {
	p, ok := b.ptrs(prob, dx)
	c, okc := b.iptr(cls)
	if ok && okc && outer*channels*inner > 0 {
		b.g.keep(b.o.SoftmaxLossBackward(p[0], c, outer, channels, inner, scale, p[1]))
	}
}

func (b *backend[T]) AddTrans(a kernels.Vec[T], rows, cols int, bv kernels.Vec[T]) {
	if p, ok := b.ptrs(a, bv); ok && rows*cols > 0 {
		b.g.keep(b.o.AddTrans(p[0], rows, cols, p[1]))
	}
}

func (b *backend[T]) ReLUForward(x, y kernels.Vec[T], slope T) {
	if p, ok := b.ptrs(x, y); ok && x.Len() > 0 {
		b.g.keep(b.o.ReLUForward(x.Len(), p[0], p[1], slope))
	}
}

func (b *backend[T]) ReLUBackward(x, dy, dx kernels.Vec[T], slope T) {
	if p, ok := b.ptrs(x, dy, dx); ok && x.Len() > 0 {
		b.g.keep(b.o.ReLUBackward(x.Len(), p[0], p[1], p[2], slope))
	}
}

func pool(g kernels.PoolGeom) Pool {
	return Pool{H: g.H, W: g.W, OH: g.OH, OW: g.OW, KH: g.KH, KW: g.KW, SH: g.SH, SW: g.SW, PH: g.PH, PW: g.PW}
}

func (b *backend[T]) MaxPoolForward(x kernels.Vec[T], planes int, g kernels.PoolGeom, y kernels.Vec[T], mask kernels.IntVec) {
	p, ok := b.ptrs(x, y)
	m, mok := b.iptr(mask)
	if ok && mok && planes > 0 {
		b.g.keep(b.o.MaxPoolForward(p[0], planes, pool(g), p[1], m))
	}
}

func (b *backend[T]) MaxPoolBackward(dy kernels.Vec[T], mask kernels.IntVec, planes int, g kernels.PoolGeom, dx kernels.Vec[T]) {
	p, ok := b.ptrs(dy, dx)
	m, mok := b.iptr(mask)
	if ok && mok && planes > 0 {
		b.g.keep(b.o.MaxPoolBackward(p[0], m, planes, pool(g), p[1]))
	}
}

func (b *backend[T]) AvePoolForward(x kernels.Vec[T], planes int, g kernels.PoolGeom, y kernels.Vec[T]) {
	if p, ok := b.ptrs(x, y); ok && planes > 0 {
		b.g.keep(b.o.AvePoolForward(p[0], planes, pool(g), p[1]))
	}
}

func (b *backend[T]) AvePoolBackward(dy kernels.Vec[T], planes int, g kernels.PoolGeom, dx kernels.Vec[T]) {
	if p, ok := b.ptrs(dy, dx); ok && planes > 0 {
		b.g.keep(b.o.AvePoolBackward(p[0], planes, pool(g), p[1]))
	}
}

func (b *backend[T]) SoftmaxForward(x, y kernels.Vec[T], outer, channels, inner int) {
	if p, ok := b.ptrs(x, y); ok && outer*inner > 0 {
		b.g.keep(b.o.SoftmaxForward(p[0], p[1], outer, channels, inner))
	}
}

func (b *backend[T]) SoftmaxBackward(y, dy, dx kernels.Vec[T], outer, channels, inner int) {
	if p, ok := b.ptrs(y, dy, dx); ok && outer*inner > 0 {
		b.g.keep(b.o.SoftmaxBackward(p[0], p[1], p[2], outer, channels, inner))
	}
}

func (b *backend[T]) SGDMomentum(diff, data, hist kernels.Vec[T], norm, decay, lr, mom T) {
	if p, ok := b.ptrs(diff, data, hist); ok && diff.Len() > 0 {
		b.g.keep(b.o.SGDMomentum(diff.Len(), p[0], p[1], p[2], norm, decay, lr, mom))
	}
}

func (b *backend[T]) SolverUpdate(r kernels.SolverRule, offs kernels.IntVec, mults kernels.Vec[T], diff, data, hist0, hist1 kernels.Vec[T]) {
	n := diff.Len()
	if n == 0 {
		return
	}
	b.g.keep(b.o.D.Join()) // the gradients issued Beside are all in
	two := r.Method == kernels.UpdateAdaDelta || r.Method == kernels.UpdateAdam
	if data.Len() != n || hist0.Len() != n || (two && hist1.Len() != n) || offs.Len() < 2 || mults.Len() < 2*(offs.Len()-1) {
		b.g.keep(fmt.Errorf("%s: solver update over %d elements with data %d, history %d and %d, %d segment offsets, %d multipliers",
			b.g.Name(), n, data.Len(), hist0.Len(), hist1.Len(), offs.Len(), mults.Len()))
		return
	}
	p, ok := b.ptrs(mults, diff, data, hist0)
	o, ook := b.iptr(offs)
	if !ok || !ook {
		return
	}
	var h1 Ptr
	if two {
		if h1, ok = b.ptr(hist1); !ok {
			return
		}
	}
	if err := b.o.SolverUpdate(n, r, o, p[0], offs.Len()-1, p[1], p[2], p[3], h1); err != nil {
		b.g.keep(err)
		return
	}
	if rec := b.g.rec; rec != nil {
		// Recording: remember the update's graph node, whose rate the
		// solver changes between replays.
		nd, err := b.o.D.lastCaptured()
		if err != nil {
			b.g.keep(err)
			return
		}
		nseg := offs.Len() - 1
		rec.updates = append(rec.updates, recordedUpdate{nd, func(r kernels.SolverRule) []arg {
			return b.o.SolverUpdateArgs(n, r, o, p[0], nseg, p[1], p[2], p[3], h1)
		}})
	}
}

// Record records the operations fn issues as a CUDA graph (kernels.Recorder).
func (g *GPU) Record(fn func() error) (kernels.Recording, error) {
	g.mu.Lock()
	before := g.err
	g.mu.Unlock()
	rec := &recording{}
	g.rec = rec
	gr, err := g.D.Capture(fn)
	g.rec = nil
	if err != nil && rec.invalidatedBy != "" {
		err = fmt.Errorf("%w (the capture was invalidated by %s)", err, rec.invalidatedBy)
	}
	g.mu.Lock()
	during := g.err
	g.err = before // a failed recording ran nothing: the device's state is as it was
	g.mu.Unlock()
	if err == nil && during != before {
		gr.Destroy()
		err = fmt.Errorf("%s: an operation failed while recording: %w", g.Name(), during)
	}
	if err != nil {
		return nil, err
	}
	rec.gr = gr
	return rec, nil
}

// recording is a CUDA graph with the solver updates recorded in it.
type recording struct {
	gr      *Graph
	updates []recordedUpdate
	// invalidatedBy names the first operation after which the capture
	// was invalidated, if one was.
	invalidatedBy string
}

// recordedUpdate is a solver_update node and its arguments for a rule.
type recordedUpdate struct {
	node graph.Node
	args func(kernels.SolverRule) []arg
}

func (r *recording) Replay() error   { return r.gr.Launch() }
func (r *recording) Operations() int { return r.gr.Nodes() }
func (r *recording) Release()        { r.gr.Destroy() }

func (r *recording) SetSolverRule(rule kernels.SolverRule) error {
	for _, u := range r.updates {
		if err := r.gr.setArgs(u.node, u.args(rule)); err != nil {
			return err
		}
	}
	return nil
}
