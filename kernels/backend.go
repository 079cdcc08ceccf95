package kernels

// The backend seam.
//
// Layers and solvers reach math only through a Backend[T]; the net picks
// one Device for all its layers (layer.Context.Device), so two nets in one
// process may compute on different devices. The CPU backend
// (kernels/cpu.Device) wraps the package's fast float32 kernels and its
// generic references; a CUDA backend implements the same interface over
// device memory.
//
// Memory. Every operation takes Vec[T] operands: a window of n elements in
// one memory, a host slice (HostVec) on the CPU or an offset into a device
// Buffer (DeviceVec) elsewhere. A blob (caffe/blob) keeps a host and a
// device copy with a sync state as Caffe's SyncedMemory does, and hands
// out Vecs through DataOn/MutableDataOn/DiffOn/MutableDiffOn(backend): a
// read-only accessor never marks the other side stale, a mutable one does,
// and a host read after a device write downloads once.
//
// Rules a device backend can rely on (and a layer must follow):
//   - Inside Forward and Backward a layer that runs on the backend never
//     reads results on the host: no HostData of a blob the backend wrote,
//     no Dot or Sum whose value decides control flow. Losses are written
//     into the loss top's data (a device Vec) and read by the caller once
//     per display interval, so a whole iteration can be captured as one
//     CUDA graph.
//   - Operations are issued in order on one stream; a backend may run them
//     asynchronously. Download, Dot and Sum synchronise.
//   - Parallel, ParallelDynamic and ParallelN are the host loops a CPU layer
//     uses to spread images over cores. A device backend runs fn once per
//     piece on the calling goroutine (worker 0), so the same layer code
//     issues its per-image kernels in order; Workers then returns 1.
//   - GemmSerial is the GEMM a worker calls inside those loops (the CPU
//     backend runs it on the calling core; a device backend treats it as
//     Gemm).
//   - Index operands (pooling masks) are IntVec: int32 on the host or the
//     device.
//
// A layer that has no implementation for the net's device runs its CPU
// implementation on host memory: the net syncs its blobs around it (see
// caffe/layer's engine registry).

import (
	"fmt"
	"strconv"
)

// Float is the element type a backend computes in.
type Float interface{ ~float32 | ~float64 }

// Buffer is memory a device backend owns, in elements of the backend's
// type. The CPU backend never creates one: its Vecs are host slices.
type Buffer interface {
	// Len returns the buffer's size in elements.
	Len() int
	// Free releases the memory; the buffer must not be used afterwards.
	Free()
}

// Vec is n elements of T in one memory: a host slice, or a window of a
// device Buffer.
type Vec[T Float] struct {
	host []T
	buf  Buffer
	off  int
	n    int
}

// HostVec wraps a host slice.
func HostVec[T Float](s []T) Vec[T] { return Vec[T]{host: s, n: len(s)} }

// DeviceVec is n elements of buf from element off.
func DeviceVec[T Float](buf Buffer, off, n int) Vec[T] { return Vec[T]{buf: buf, off: off, n: n} }

// Len returns the number of elements.
func (v Vec[T]) Len() int { return v.n }

// OnHost reports whether v is host memory.
func (v Vec[T]) OnHost() bool { return v.buf == nil }

// Host returns the host slice (nil for device memory).
func (v Vec[T]) Host() []T { return v.host }

// Device returns the device buffer and the offset of v's first element
// (nil, 0 for host memory).
func (v Vec[T]) Device() (Buffer, int) { return v.buf, v.off }

// Slice returns elements [lo, hi) of v.
func (v Vec[T]) Slice(lo, hi int) Vec[T] {
	if v.buf == nil {
		return Vec[T]{host: v.host[lo:hi], n: hi - lo}
	}
	if lo < 0 || hi > v.n || lo > hi {
		panic("kernels: Vec slice out of range") // same contract as a slice expression
	}
	return Vec[T]{buf: v.buf, off: v.off + lo, n: hi - lo}
}

// From returns elements [lo, Len()) of v.
func (v Vec[T]) From(lo int) Vec[T] { return v.Slice(lo, v.n) }

// IntVec is n int32 values in one memory (pooling masks, argmax indices).
type IntVec struct {
	host []int32
	buf  Buffer
	off  int
	n    int
}

// HostInts wraps a host slice.
func HostInts(s []int32) IntVec { return IntVec{host: s, n: len(s)} }

// DeviceInts is n int32 values of buf from element off.
func DeviceInts(buf Buffer, off, n int) IntVec { return IntVec{buf: buf, off: off, n: n} }

// Len returns the number of elements.
func (v IntVec) Len() int { return v.n }

// Host returns the host slice (nil for device memory).
func (v IntVec) Host() []int32 { return v.host }

// Device returns the device buffer and offset (nil, 0 on the host).
func (v IntVec) Device() (Buffer, int) { return v.buf, v.off }

// Slice returns elements [lo, hi) of v.
func (v IntVec) Slice(lo, hi int) IntVec {
	if v.buf == nil {
		return IntVec{host: v.host[lo:hi], n: hi - lo}
	}
	if lo < 0 || hi > v.n || lo > hi {
		panic("kernels: IntVec slice out of range")
	}
	return IntVec{buf: v.buf, off: v.off + lo, n: hi - lo}
}

// ConvGeom is a 2-D convolution window: kernel, stride, padding and
// dilation per spatial axis (height, width).
type ConvGeom struct {
	KH, KW, SH, SW, PH, PW, DH, DW int
}

// PoolGeom is a 2-D pooling window over planes of H×W giving OH×OW.
type PoolGeom struct {
	H, W, OH, OW, KH, KW, SH, SW, PH, PW int
}

// LRNGeom is a local response normalization over (N, C, H, W): across
// Size channels (k + α/Size·Σx²)^-β, or within a Size×Size window
// (1 + α/Size²·Σx²)^-β.
type LRNGeom struct {
	Across           bool
	N, C, H, W, Size int
	Alpha, Beta, K   float64
}

// AcrossWindow returns the channels [lo, hi) normalizing channel c.
func (g LRNGeom) AcrossWindow(c int) (int, int) {
	lo := c - (g.Size-1)/2
	return max(lo, 0), min(lo+g.Size, g.C)
}

// SpatialWindow returns the rows or columns [lo, hi) around i in [0, n).
func (g LRNGeom) SpatialWindow(i, n int) (int, int) {
	p := (g.Size - 1) / 2
	return max(i-p, 0), min(i+p+1, n)
}

// Memory is the part of a backend that blobs use to keep a device copy.
type Memory[T Float] interface {
	// HostMemory reports whether the backend computes on host slices (then
	// a blob hands out its host storage and keeps no device copy).
	HostMemory() bool
	// Alloc returns n elements of device memory (zeroed). On the CPU it
	// returns a new host slice.
	Alloc(n int) Vec[T]
	// AllocInts returns n int32 of device memory (zeroed).
	AllocInts(n int) IntVec
	// Upload copies src (host) into dst (device); lengths must match.
	Upload(dst Vec[T], src []T)
	// Download copies src (device) into dst (host); it waits for the
	// operations that write src.
	Download(dst []T, src Vec[T])
	// UploadInts copies src (host) into dst (device).
	UploadInts(dst IntVec, src []int32)
}

// Backend is the math GoCaffe's layers and solvers compute with, over
// Vecs of one device, in T. Shapes are written above each method as
// (rows×cols), row-major, with leading dimensions ld*.
type Backend[T Float] interface {
	Memory[T]

	// Device returns the device the backend computes on.
	Device() Device

	// Workers is how many workers Parallel(n, …) uses (1 on a device).
	Workers(n int) int
	// Parallel runs fn over [0, n) in pieces on Workers(n) workers.
	Parallel(n int, fn func(worker, lo, hi int))
	// ParallelDynamic runs fn over [0, n) in pieces of grain on workers
	// workers that take pieces in turn.
	ParallelDynamic(workers, n, grain int, fn func(worker, lo, hi int))
	// ParallelN runs fn over [0, n) in exactly workers fixed chunks.
	ParallelN(workers, n int, fn func(chunk, lo, hi int))

	// Gemm: c (m×n) = alpha·op(a)·op(b) + beta·c, op(a) m×k, op(b) k×n;
	// on the CPU over all cores.
	Gemm(transA, transB bool, m, n, k int, alpha T, a Vec[T], lda int, b Vec[T], ldb int, beta T, c Vec[T], ldc int)
	// GemmSerial is Gemm for one worker of a Parallel loop.
	GemmSerial(transA, transB bool, m, n, k int, alpha T, a Vec[T], lda int, b Vec[T], ldb int, beta T, c Vec[T], ldc int)
	// GemmNTSum: c (m×n) += Σ_p a_p (m×k) · b_pᵀ (k×n), p < batch, a_p
	// at a + p·strideA, b_p (n×k) at b + p·strideB (convolution weight
	// gradient over a batch).
	GemmNTSum(batch, m, n, k int, a Vec[T], lda, strideA int, b Vec[T], ldb, strideB int, c Vec[T], ldc int)
	// GemmBatched: c_p (m×n) = alpha·op(a_p)·op(b_p) + beta·c_p for every
	// p < batch, a_p at a + p·strideA, b_p at b + p·strideB, c_p at c +
	// p·strideC (strideA 0: one a for all, as a convolution's weights
	// over a batch of images). One launch on a device.
	GemmBatched(transA, transB bool, batch, m, n, k int, alpha T, a Vec[T], lda, strideA int, b Vec[T], ldb, strideB int, beta T, c Vec[T], ldc, strideC int)
	// GemmTileUse is the share of an m×n GEMM product that is useful work
	// rather than tile padding (1 on a device without that cost).
	GemmTileUse(m, n int) float64

	// Im2col: col ((c·kh·kw)×(oh·ow)) = the windows of im (c×h×w).
	Im2col(im Vec[T], c, h, w int, g ConvGeom, oh, ow int, col Vec[T])
	// Col2im overwrites im (c×h×w) with the adjoint of Im2col of col.
	Col2im(col Vec[T], c, h, w int, g ConvGeom, oh, ow int, im Vec[T])

	// Copy: dst = src (same length).
	Copy(dst, src Vec[T])
	// Fill sets every element of x to v.
	Fill(x Vec[T], v T)
	// Axpy: y += alpha·x.
	Axpy(alpha T, x, y Vec[T])
	// Axpby: y = alpha·x + beta·y.
	Axpby(alpha T, x Vec[T], beta T, y Vec[T])
	// Scal: x *= alpha.
	Scal(alpha T, x Vec[T])
	// Shift: x += alpha.
	Shift(alpha T, x Vec[T])
	// Mul: y = a ⊙ b (elementwise; y may alias a or b).
	Mul(a, b, y Vec[T])
	// Div: y = a / b (elementwise; y may alias a or b).
	Div(a, b, y Vec[T])
	// DropoutForward draws Dropout's mask and applies it: mask[i] = scale
	// where element i is kept (DropoutMask's rule, with key's two words
	// as the Philox key) and 0 where it is dropped, then y = x ⊙ mask
	// (y may alias x). The key is read where the backend computes, so a
	// recorded iteration takes the key uploaded before each replay.
	DropoutForward(x, y, mask Vec[T], key IntVec, threshold uint32, scale T)
	// EltwiseMax is one step of a running elementwise maximum over
	// bottoms k = 0, 1, …: for k = 0, y = x and mask = 0; for k > 0, where
	// x > y, y = x and mask = k (the first maximum wins ties).
	EltwiseMax(x, y Vec[T], mask IntVec, k int)
	// MaskSelect: dx = dy where mask == k, 0 elsewhere.
	MaskSelect(dy Vec[T], mask IntVec, k int, dx Vec[T])
	// Dot returns x·y (synchronises on a device).
	Dot(x, y Vec[T]) T
	// Sum returns Σ x (synchronises on a device).
	Sum(x Vec[T]) T
	// SumTo writes Σ x into dst[0] without synchronising.
	SumTo(x Vec[T], dst Vec[T])

	// AddBias: y (outer×channels×inner) += bias[c] for every channel c.
	AddBias(y, bias Vec[T], outer, channels, inner int)
	// BiasGrad: db[c] += Σ over outer and inner of dy (outer×channels×inner).
	BiasGrad(dy, db Vec[T], outer, channels, inner int)
	// ScaleChannels: y (outer×channels×inner) = x ⊙ s[c] (y may alias x).
	ScaleChannels(x, s, y Vec[T], outer, channels, inner int)
	// ChannelDot: d[c] += Σ over outer and inner of a ⊙ b, one sum per
	// (outer, channel) block added in order.
	ChannelDot(a, b, d Vec[T], outer, channels, inner int)
	// AddTrans: b (cols×rows) += aᵀ, a (rows×cols).
	AddTrans(a Vec[T], rows, cols int, b Vec[T])

	// ReLUForward: y = max(x, 0) + slope·min(x, 0) (y may alias x).
	ReLUForward(x, y Vec[T], slope T)
	// ReLUBackward: dx = dy where x > 0, slope·dy elsewhere.
	ReLUBackward(x, dy, dx Vec[T], slope T)

	// ActivationForward: y = f(x) for the activation a, computed in
	// float64 and rounded to T (y may alias x).
	ActivationForward(a Activation, x, y Vec[T])
	// ActivationBackward: dx = dy·f'(x) written through the output y (dx
	// may alias dy).
	ActivationBackward(a Activation, y, dy, dx Vec[T])

	// MaxPoolForward pools planes (planes×H×W) into y (planes×OH×OW) and
	// records the argmax (index within the plane) in mask.
	MaxPoolForward(x Vec[T], planes int, g PoolGeom, y Vec[T], mask IntVec)
	// MaxPoolBackward overwrites dx with dy scattered through mask.
	MaxPoolBackward(dy Vec[T], mask IntVec, planes int, g PoolGeom, dx Vec[T])
	// AvePoolForward averages each window (padding counts, as in Caffe).
	AvePoolForward(x Vec[T], planes int, g PoolGeom, y Vec[T])
	// AvePoolBackward overwrites dx with dy spread over each window.
	AvePoolBackward(dy Vec[T], planes int, g PoolGeom, dx Vec[T])

	// SoftmaxForward: y = softmax of x (outer×channels×inner) over channels.
	SoftmaxForward(x, y Vec[T], outer, channels, inner int)
	// SoftmaxBackward: dx = (dy - Σ_c dy·y) ⊙ y over channels (dx may
	// alias dy).
	SoftmaxBackward(y, dy, dx Vec[T], outer, channels, inner int)

	// SoftmaxLossForward writes into loss[0] the multinomial logistic
	// loss of prob (outer×channels×inner) against the class of each of
	// the outer·inner positions (cls, -1 where ignored), summed in float64
	// in position order, floored at FLT_MIN per term, divided by
	// normalizer.
	SoftmaxLossForward(prob Vec[T], cls IntVec, outer, channels, inner int, normalizer float64, loss Vec[T])
	// SoftmaxLossBackward: dx = scale·(prob - onehot(cls)), zero over the
	// channels of an ignored position.
	SoftmaxLossBackward(prob Vec[T], cls IntVec, outer, channels, inner int, scale T, dx Vec[T])

	// AccuracyForward writes into acc[0] the share of the outer·inner
	// positions of x (outer×channels×inner) whose class (cls, -1 where
	// ignored) is among the topK scores: a score equal to the class's, or
	// NaN, counts against it, and a NaN class score is never right; 0 when
	// no position is labelled. perClass (channels elements, or empty for
	// none) gets the same share over the positions of each class.
	AccuracyForward(x Vec[T], cls IntVec, outer, channels, inner, topK int, acc, perClass Vec[T])

	// BatchNormForward normalises x (num×channels×spatial) per channel
	// into y and xnorm (y may alias x): with global, by the running
	// statistics runMean, runVar (channels) divided by factor[0] (1 elem,
	// 0 read as 0); else by the batch's mean and biased variance (summed
	// in float64), then runMean = mean + maf·runMean, runVar = m/(m−1)·var
	// + maf·runVar (m = num·spatial) and factor = maf·factor + 1, as Caffe.
	// mean and inv (channels) receive the mean and 1/√(var + eps) used.
	BatchNormForward(x, y, xnorm Vec[T], num, channels, spatial int, global bool, eps, maf float64, mean, inv, runMean, runVar, factor Vec[T])
	// BatchNormBackward: dx = dy·inv (global), else dx = (dy − mean(dy) −
	// xnorm·mean(dy·xnorm))·inv, means per channel over num and spatial
	// (dx may alias dy).
	BatchNormBackward(dy, xnorm, inv, dx Vec[T], num, channels, spatial int, global bool)

	// LRNForward: y = x·scale^-β, scale = the base of the power (kept
	// for LRNBackward).
	LRNForward(x, scale, y Vec[T], g LRNGeom)
	// LRNBackward computes dx from dy, x, y and LRNForward's scale.
	LRNBackward(x, y, scale, dy, dx Vec[T], g LRNGeom)

	// SGDMomentum is SGD with L2 weight decay in one pass:
	// g = norm·diff + decay·data; hist = lr·g + mom·hist; diff = hist;
	// data -= hist.
	SGDMomentum(diff, data, hist Vec[T], norm, decay, lr, mom T)

	// SolverUpdate is one solver step over a net's whole flat parameter
	// buffers (see SolverRule): diff, data and the history sets hist0 and
	// hist1 (hist1 for AdaDelta and Adam, else empty) hold the same n
	// elements; element i belongs to segment s where offs[s] ≤ i <
	// offs[s+1] (offs has one entry per segment and a last one, n), and
	// mults[2s], mults[2s+1] are that segment's lr_mult and decay_mult.
	// diff is left holding the update that was subtracted from data. No
	// value is read on the host, so a device runs it without waiting.
	SolverUpdate(r SolverRule, offs IntVec, mults Vec[T], diff, data, hist0, hist1 Vec[T])
}

// Activation is an elementwise nonlinearity whose derivative is a function
// of its output.
type Activation int

// The activations.
const (
	// Sigmoid: y = 0.5·tanh(0.5·x) + 0.5 (Caffe's form, stable for large
	// |x|); dx = dy·y·(1−y).
	Sigmoid Activation = iota
	// TanH: y = tanh(x); dx = dy·(1−y²).
	TanH
)

// UpdateMethod is a solver's update rule, numbered as caffe/solver's
// Method (SolverParameter.type).
type UpdateMethod int

// The update rules.
const (
	UpdateSGD UpdateMethod = iota
	UpdateNesterov
	UpdateAdaGrad
	UpdateRMSProp
	UpdateAdaDelta
	UpdateAdam
)

// SolverRule is one step of Caffe's SGD-family update, element by element:
// g = diff · clipScale · Norm (clipScale = Clip/‖diff‖ over the whole
// buffer when Clip ≥ 0 and the norm exceeds it, else 1); g += decay·data
// (L2) or decay·sign(data) (L1), decay = WeightDecay·decay_mult, skipped
// when 0; then the method's update u with lr = Rate·lr_mult (caffe/solver's
// ComputeUpdate, Adam's step scaled by AdamCorr), the history updated in
// place; diff = u; data -= u. The rate and decay are computed in float64
// and rounded to T, as the CPU solver rounds them.
type SolverRule struct {
	Method      UpdateMethod
	L1          bool    // L1 regularization (else L2)
	Norm        float64 // gradient scale (1/iter_size)
	Clip        float64 // clip_gradients (< 0: no clipping)
	Rate        float64 // this iteration's learning rate
	WeightDecay float64
	Momentum    float64 // momentum; Adam's β1; AdaDelta's decay
	Momentum2   float64 // Adam's β2
	Delta       float64 // AdaGrad, RMSProp, AdaDelta, Adam
	RMSDecay    float64 // RMSProp
	AdamCorr    float64 // Adam's bias correction √(1−β2^t)/(1−β1^t)
}

// Device is where a net computes: it hands out the backend for each
// element type.
type Device interface {
	// Name is the device's name as logs and `goexec inspect` show it
	// ("cpu", "cuda:0").
	Name() string
	// Engine is the layer engine the device prefers ("CAFFE" on the CPU,
	// "CUDA" on a GPU); layers registered for it run there, others fall
	// back to their CPU implementation.
	Engine() string
	// Float32 and Float64 return the device's backends.
	Float32() Backend[float32]
	Float64() Backend[float64]
}

// For returns d's backend computing in T.
func For[T Float](d Device) Backend[T] {
	var z T
	switch any(z).(type) {
	case float32:
		return any(d.Float32()).(Backend[T])
	default:
		return any(d.Float64()).(Backend[T])
	}
}

// Sider is implemented by devices that can run work beside the work they
// issue next: on a GPU, a second stream whose kernels overlap the first's.
// A layer's backward pass issues its parameter gradients (which nothing
// below it reads) Beside its bottom diff, so that the next layer's
// backward pass need not wait for them.
type Sider interface {
	// Beside runs fn, whose operations start after everything issued
	// before Beside and may run while what is issued after it runs,
	// until Join. Operations issued Beside run in their own order.
	// fn must not read results on the host or record.
	Beside(fn func())
	// Join makes everything issued after it wait for every operation
	// issued Beside so far.
	Join()
}

// Beside runs fn beside the device's next work when d is a Sider, and
// in order otherwise.
func Beside(d Device, fn func()) {
	if s, ok := d.(Sider); ok {
		s.Beside(fn)
		return
	}
	fn()
}

// Join makes d's next work wait for what was issued Beside (nothing to do
// on a device that is no Sider).
func Join(d Device) {
	if s, ok := d.(Sider); ok {
		s.Join()
	}
}

// Recorder is implemented by devices that can record the operations a
// function issues and replay them later as one unit (a CUDA graph), so
// that a training iteration costs one launch instead of one per kernel.
type Recorder interface {
	// Record runs fn with the operations its backends issue recorded
	// instead of run; none of them has run when Record returns. fn must
	// not allocate, transfer or read device memory (no Alloc, Upload,
	// Download, Dot or Sum): such an operation makes Record fail, and the
	// device's error state is left as it was before the call.
	Record(fn func() error) (Recording, error)
}

// Recording is a recorded sequence of operations.
type Recording interface {
	// Replay runs the operations again, on the same memory, in order
	// with the device's other work.
	Replay() error
	// SetSolverRule makes the SolverUpdate operations recorded in it use
	// r (the learning rate and Adam's correction change every iteration;
	// the other fields must be those recorded).
	SetSolverRule(r SolverRule) error
	// Operations is the number of operations recorded.
	Operations() int
	// Release frees the recording.
	Release()
}

// ConvShape is one 2-D convolution (cross-correlation, as Caffe's): N
// images of C×H×W into K channels of OH×OW, the channels in Groups groups,
// the weights K×(C/Groups)×KH×KW, every blob N·C·H·W contiguous.
type ConvShape struct {
	N, C, H, W, K, Groups, OH, OW int
	Geom                          ConvGeom
}

// String names the shape for logs: "NxCxHxW->K OHxOW k… s… p… d… g…".
func (s ConvShape) String() string {
	g := s.Geom
	return fmt.Sprintf("%dx%dx%dx%d->%d %dx%d k%dx%d s%dx%d p%dx%d d%dx%d g%d", s.N, s.C, s.H, s.W, s.K, s.OH, s.OW,
		g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.DH, g.DW, s.Groups)
}

// Convolver is implemented by backends that can run a whole convolution
// in a library (cuDNN) instead of Im2col and GEMMs. ConvPlan returns nil,
// and why, when it does not run s (the library missing, not selected, or
// without an algorithm for s): the layer then uses Im2col and the GEMMs.
// Plans are made before any recording (the eager iteration makes them).
type Convolver[T Float] interface {
	ConvPlan(s ConvShape) (ConvPlan[T], string)
}

// ConvPlan runs one ConvShape with the algorithms chosen when it was made.
type ConvPlan[T Float] interface {
	// Forward overwrites y (N×K×OH×OW) with the convolution of x by w.
	Forward(x, w, y Vec[T])
	// BackwardData overwrites dx (N×C×H×W) with the gradient by x.
	BackwardData(dy, w, dx Vec[T])
	// BackwardFilter adds the gradient by w to dw.
	BackwardFilter(x, dy, dw Vec[T])
}

// ImplicitConv is implemented by backends whose kernels can read a
// convolution's columns straight from the image, with no Im2col pass. Its
// products take one image and one group (c channels; kdim = c·kh·kw).
type ImplicitConv[T Float] interface {
	// ImplicitConv reports whether the methods below run (the kernels in
	// use compute in T); where not, callers run Im2col and GEMMs.
	ImplicitConv() bool
	// ConvWeightsT sets dwT (kdim×oc, row stride ldc) to
	// im2col(im)·dyᵀ + beta·dwT for an image im (c×h×w) and its top diff
	// dy (oc×oh·ow).
	ConvWeightsT(im Vec[T], c, h, w int, g ConvGeom, oh, ow int, dy Vec[T], oc int, dwT Vec[T], ldc int, beta T)
	// ConvPackLen is the length of ConvPack's packing of oc×kdim weights.
	ConvPackLen(oc, kdim int) int
	// ConvPack packs the weights w (oc×kdim, row-major) for ConvForward.
	ConvPack(w Vec[T], oc, kdim int, packed Vec[T])
	// ConvForward overwrites out (oc×oh·ow) with w·im2col(im) for an
	// image im (c×h×w), the weights packed by ConvPack.
	ConvForward(im Vec[T], c, h, w int, g ConvGeom, oh, ow int, packed Vec[T], oc int, out Vec[T])
}

// WinogradConv is implemented by backends with Winograd F(m×m, 3×3)
// kernels for 3×3, stride-1, dilation-1 convolutions of one image and one
// group (any padding), for output tiles of m = 2 (F(2,3)) or m = 4
// (F(4,3)).
type WinogradConv[T Float] interface {
	// WinogradTakes reports whether the kernels run a convolution of
	// window g in T.
	WinogradTakes(g ConvGeom) bool
	// WinogradPackLen is the length of WinogradPack's transform of
	// oc×c×3×3 weights for output tiles of m×m.
	WinogradPackLen(m, oc, c int) int
	// WinogradPack transforms the weights w (oc×c×3×3) into u for
	// output tiles of m×m.
	WinogradPack(m int, w Vec[T], oc, c int, u Vec[T])
	// WinogradForward overwrites out (oc×oh×ow) with the convolution of
	// an image im (c×h×w, padding ph, pw) by the weights u transformed
	// by WinogradPack for the same m.
	WinogradForward(m int, im Vec[T], c, h, w, ph, pw, oh, ow int, u Vec[T], oc int, out Vec[T])
	// WinogradWeightGradLen is the length of WinogradWeightGrad's sums
	// for oc×c filters.
	WinogradWeightGradLen(m, oc, c int) int
	// WinogradWeightGrad adds to acc the weight gradient of one image
	// im (c×h×w, padding ph, pw) with top diff dy (oc×oh×ow), in
	// Winograd's transformed domain.
	WinogradWeightGrad(m int, im Vec[T], c, h, w, ph, pw int, dy Vec[T], oc, oh, ow int, acc Vec[T])
	// WinogradWeightFinish adds the gradient that the sums acc stand for
	// to dw (oc×c×3×3).
	WinogradWeightFinish(m int, acc Vec[T], oc, c int, dw Vec[T])
}

// ConvRoute is how a host backend runs one pass of a convolution.
type ConvRoute uint8

const (
	// RouteAuto measures the eligible routes at the pass's first run and
	// keeps the fastest for the shape.
	RouteAuto ConvRoute = iota
	// RouteGemm lays the columns out (Im2col) and multiplies them (a
	// GEMM per image and group).
	RouteGemm
	// RouteImplicit multiplies columns read from the padded image in
	// place (ImplicitConv).
	RouteImplicit
	// RouteWinograd runs Winograd F(2,3) (WinogradConv; 3×3, stride 1).
	RouteWinograd
	// RouteRule picks by a fixed rule from the shape alone (Winograd for
	// 3×3 stride-1 passes with large output planes, else the implicit
	// product or the GEMM by the reduction's length): the same route,
	// and so the same rounding, in every process.
	RouteRule
	// RouteWinograd4 runs Winograd F(4,3) (WinogradConv; 3×3, stride 1):
	// 4× fewer multiplies than the direct product where F(2,3) has 2.25×.
	RouteWinograd4
)

var convRouteNames = [...]string{"auto", "gemm", "implicit", "winograd", "rule", "winograd4"}

// WinogradTile is the output tile size m of a Winograd route's F(m×m,
// 3×3): 2 for RouteWinograd, 4 for RouteWinograd4, 0 for the others.
func (r ConvRoute) WinogradTile() int {
	switch r {
	case RouteWinograd:
		return 2
	case RouteWinograd4:
		return 4
	}
	return 0
}

func (r ConvRoute) String() string {
	if int(r) < len(convRouteNames) {
		return convRouteNames[r]
	}
	return "ConvRoute(" + strconv.Itoa(int(r)) + ")"
}

// ParseConvRoute reads a route's name (auto, gemm, implicit, winograd,
// winograd4, rule).
func ParseConvRoute(s string) (ConvRoute, bool) {
	for i, n := range convRouteNames {
		if s == n {
			return ConvRoute(i), true
		}
	}
	return RouteAuto, false
}

// ConvPass is a pass of a convolution that has a route of its own.
type ConvPass uint8

const (
	// PassForward computes the top from the bottom.
	PassForward ConvPass = iota
	// PassData computes the bottom's gradient from the top's.
	PassData
)

func (p ConvPass) String() string {
	if p == PassData {
		return "data"
	}
	return "forward"
}

// ConvRouteKey is one pass of one convolution shape (the batch size
// included).
type ConvRouteKey struct {
	Shape ConvShape
	Pass  ConvPass
}

// ConvRouter is implemented by host backends that choose a convolution
// pass's route per shape: forced by a setting, or measured once and kept
// for every net on the backend.
type ConvRouter interface {
	// ConvRouteMode is the route the backend's setting forces
	// (RouteAuto: measure; RouteRule: the fixed rule), or why the setting
	// is wrong.
	ConvRouteMode() (ConvRoute, error)
	// ConvRoute returns the route kept for k, if any.
	ConvRoute(k ConvRouteKey) (ConvRoute, bool)
	// SetConvRoute keeps r for k; times are the measured seconds per
	// route, for the backend's log.
	SetConvRoute(k ConvRouteKey, r ConvRoute, times map[ConvRoute]float64)
}
