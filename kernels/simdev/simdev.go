// Package simdev is a device for tests: a kernels.Device whose memory is
// kept apart from the host (every Vec is a device Buffer, reached only
// through Upload and Download), whose math is the CPU backend's, and which
// counts every operation. A net that computes on it gives the CPU's
// results only if each layer reaches memory through the blob's sync-aware
// accessors and math through the backend: a host slice read where the
// device wrote last is stale here, and an operand in host memory is
// recorded as a fault.
package simdev

import (
	"fmt"
	"sort"
	"sync"

	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/cpu"
)

// Device is a simulated device. Its zero value is not usable: call New.
type Device struct {
	mu      sync.Mutex
	calls   map[string]int
	faults  []string
	rec     *recording // the recording under way, if any
	replays int
	f32     backend[float32]
	f64     backend[float64]
}

// New returns a device with zeroed counters.
func New() *Device {
	d := &Device{calls: map[string]int{}}
	d.f32 = backend[float32]{d: d, cpu: cpu.Backend[float32]()}
	d.f64 = backend[float64]{d: d, cpu: cpu.Backend[float64]()}
	return d
}

func (d *Device) Name() string                      { return "simdev" }
func (d *Device) Engine() string                    { return "SIMDEV" }
func (d *Device) Float32() kernels.Backend[float32] { return d.f32 }
func (d *Device) Float64() kernels.Backend[float64] { return d.f64 }

// Calls returns how many times the named operation ran.
func (d *Device) Calls(op string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[op]
}

// Ops returns the names of the operations that ran, sorted.
func (d *Device) Ops() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for k := range d.calls {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Faults returns the operations that got an operand in host memory.
func (d *Device) Faults() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.faults...)
}

func (d *Device) count(op string) {
	d.mu.Lock()
	d.calls[op]++
	d.mu.Unlock()
}

// run runs op's math now, or appends it to the recording under way.
func (d *Device) run(op string, math func()) {
	d.mu.Lock()
	rec := d.rec
	d.mu.Unlock()
	if rec != nil {
		rec.ops = append(rec.ops, recordedOp{op, math})
		return
	}
	d.count(op)
	math()
}

// direct counts op, a transfer, allocation or read, and reports whether it
// may run: not while a recording is under way (as on a GPU, where a
// recording is refused such an operation), which then fails.
func (d *Device) direct(op string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rec != nil {
		if d.rec.err == nil {
			d.rec.err = fmt.Errorf("simdev: %s while recording", op)
		}
		return false
	}
	d.calls[op]++
	return true
}

func (d *Device) recordRule(r *kernels.SolverRule) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rec != nil {
		d.rec.rules = append(d.rec.rules, r)
	}
}

// Record implements kernels.Recorder: the operations fn issues are kept,
// not run, and run in order by each Replay. Operands are resolved when
// recorded, as a CUDA graph's pointers are.
func (d *Device) Record(fn func() error) (kernels.Recording, error) {
	d.mu.Lock()
	if d.rec != nil {
		d.mu.Unlock()
		return nil, fmt.Errorf("simdev: a recording is already under way")
	}
	rec := &recording{d: d}
	d.rec = rec
	d.mu.Unlock()
	err := fn()
	d.mu.Lock()
	d.rec = nil
	d.mu.Unlock()
	if err == nil {
		err = rec.err
	}
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// Replays returns how many times a recording was replayed.
func (d *Device) Replays() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.replays
}

type recordedOp struct {
	name string
	math func()
}

// recording is a kernels.Recording of the simulated device.
type recording struct {
	d     *Device
	ops   []recordedOp
	rules []*kernels.SolverRule // the recorded SolverUpdates' rules
	err   error                 // the first operation refused while recording
	gone  bool
}

func (r *recording) Replay() error {
	if r.gone {
		return fmt.Errorf("simdev: replay of a released recording")
	}
	r.d.mu.Lock()
	r.d.replays++
	r.d.mu.Unlock()
	for _, op := range r.ops {
		r.d.count(op.name)
		op.math()
	}
	return nil
}

func (r *recording) SetSolverRule(rule kernels.SolverRule) error {
	for _, p := range r.rules {
		*p = rule
	}
	return nil
}

func (r *recording) Operations() int { return len(r.ops) }
func (r *recording) Release()        { r.gone = true }

func (d *Device) fault(op string) {
	d.mu.Lock()
	d.faults = append(d.faults, op)
	d.mu.Unlock()
}

type buf[T any] struct{ s []T }

func (b *buf[T]) Len() int { return len(b.s) }
func (b *buf[T]) Free()    {}

type backend[T kernels.Float] struct {
	d   *Device
	cpu kernels.Backend[T]
}

// h returns v's device memory as a host Vec for the CPU backend, counting
// op once per call (the first operand) and recording host operands.
func (b backend[T]) h(op string, v kernels.Vec[T]) kernels.Vec[T] {
	if v.Len() == 0 {
		return kernels.HostVec[T](nil)
	}
	if v.OnHost() {
		b.d.fault(op)
		return v
	}
	bf, off := v.Device()
	return kernels.HostVec(bf.(*buf[T]).s[off : off+v.Len()])
}

func (b backend[T]) hi(op string, v kernels.IntVec) kernels.IntVec {
	if v.Host() != nil {
		b.d.fault(op)
		return v
	}
	bf, off := v.Device()
	if bf == nil {
		return kernels.HostInts(nil)
	}
	return kernels.HostInts(bf.(*buf[int32]).s[off : off+v.Len()])
}

func (b backend[T]) Device() kernels.Device { return b.d }
func (b backend[T]) HostMemory() bool       { return false }
func (b backend[T]) Alloc(n int) kernels.Vec[T] {
	b.d.direct("Alloc") // while recording, allocated all the same, and the recording fails
	return kernels.DeviceVec[T](&buf[T]{make([]T, n)}, 0, n)
}
func (b backend[T]) AllocInts(n int) kernels.IntVec {
	b.d.direct("AllocInts")
	return kernels.DeviceInts(&buf[int32]{make([]int32, n)}, 0, n)
}
func (b backend[T]) Upload(dst kernels.Vec[T], src []T) {
	if !b.d.direct("Upload") {
		return
	}
	copy(b.h("Upload", dst).Host(), src)
}
func (b backend[T]) Download(dst []T, src kernels.Vec[T]) {
	if !b.d.direct("Download") {
		return
	}
	copy(dst, b.h("Download", src).Host())
}

func (b backend[T]) UploadInts(dst kernels.IntVec, src []int32) {
	if !b.d.direct("UploadInts") {
		return
	}
	copy(b.hi("UploadInts", dst).Host(), src)
}

// The loops run serially on the caller, as on a GPU stream.
func (b backend[T]) Workers(int) int { return 1 }
func (b backend[T]) Parallel(n int, fn func(worker, lo, hi int)) {
	if n > 0 {
		fn(0, 0, n)
	}
}
func (b backend[T]) ParallelDynamic(_, n, _ int, fn func(worker, lo, hi int)) { b.Parallel(n, fn) }
func (b backend[T]) ParallelN(_, n int, fn func(chunk, lo, hi int))           { b.Parallel(n, fn) }

func (b backend[T]) Gemm(ta, tb bool, m, n, k int, alpha T, a kernels.Vec[T], lda int, bb kernels.Vec[T], ldb int, beta T, c kernels.Vec[T], ldc int) {
	b.d.run("Gemm", func() {
		b.cpu.GemmSerial(ta, tb, m, n, k, alpha, b.h("Gemm", a), lda, b.h("Gemm", bb), ldb, beta, b.h("Gemm", c), ldc)
	})
}
func (b backend[T]) GemmSerial(ta, tb bool, m, n, k int, alpha T, a kernels.Vec[T], lda int, bb kernels.Vec[T], ldb int, beta T, c kernels.Vec[T], ldc int) {
	b.d.run("Gemm", func() {
		b.cpu.GemmSerial(ta, tb, m, n, k, alpha, b.h("Gemm", a), lda, b.h("Gemm", bb), ldb, beta, b.h("Gemm", c), ldc)
	})
}
func (b backend[T]) GemmNTSum(batch, m, n, k int, a kernels.Vec[T], lda, sa int, bb kernels.Vec[T], ldb, sb int, c kernels.Vec[T], ldc int) {
	b.d.run("GemmNTSum", func() {
		b.cpu.GemmNTSum(batch, m, n, k, b.h("GemmNTSum", a), lda, sa, b.h("GemmNTSum", bb), ldb, sb, b.h("GemmNTSum", c), ldc)
	})
}
func (b backend[T]) GemmBatched(ta, tb bool, batch, m, n, k int, alpha T, a kernels.Vec[T], lda, sa int, bb kernels.Vec[T], ldb, sb int, beta T, c kernels.Vec[T], ldc, sc int) {
	b.d.run("GemmBatched", func() {
		b.cpu.GemmBatched(ta, tb, batch, m, n, k, alpha, b.h("GemmBatched", a), lda, sa, b.h("GemmBatched", bb), ldb, sb, beta, b.h("GemmBatched", c), ldc, sc)
	})
}
func (b backend[T]) GemmTileUse(int, int) float64 { return 1 }
func (b backend[T]) Im2col(im kernels.Vec[T], c, h, w int, g kernels.ConvGeom, oh, ow int, col kernels.Vec[T]) {
	b.d.run("Im2col", func() {
		b.cpu.Im2col(b.h("Im2col", im), c, h, w, g, oh, ow, b.h("Im2col", col))
	})
}
func (b backend[T]) Col2im(col kernels.Vec[T], c, h, w int, g kernels.ConvGeom, oh, ow int, im kernels.Vec[T]) {
	b.d.run("Col2im", func() {
		b.cpu.Col2im(b.h("Col2im", col), c, h, w, g, oh, ow, b.h("Col2im", im))
	})
}
func (b backend[T]) Copy(dst, src kernels.Vec[T]) {
	b.d.run("Copy", func() {
		b.cpu.Copy(b.h("Copy", dst), b.h("Copy", src))
	})
}
func (b backend[T]) Fill(x kernels.Vec[T], v T) {
	b.d.run("Fill", func() {
		b.cpu.Fill(b.h("Fill", x), v)
	})
}
func (b backend[T]) Axpy(alpha T, x, y kernels.Vec[T]) {
	b.d.run("Axpy", func() {
		b.cpu.Axpy(alpha, b.h("Axpy", x), b.h("Axpy", y))
	})
}
func (b backend[T]) Axpby(alpha T, x kernels.Vec[T], beta T, y kernels.Vec[T]) {
	b.d.run("Axpby", func() {
		b.cpu.Axpby(alpha, b.h("Axpby", x), beta, b.h("Axpby", y))
	})
}
func (b backend[T]) Scal(alpha T, x kernels.Vec[T]) {
	b.d.run("Scal", func() {
		b.cpu.Scal(alpha, b.h("Scal", x))
	})
}
func (b backend[T]) Shift(alpha T, x kernels.Vec[T]) {
	b.d.run("Shift", func() {
		b.cpu.Shift(alpha, b.h("Shift", x))
	})
}
func (b backend[T]) Mul(x, y, z kernels.Vec[T]) {
	b.d.run("Mul", func() {
		b.cpu.Mul(b.h("Mul", x), b.h("Mul", y), b.h("Mul", z))
	})
}
func (b backend[T]) Div(x, y, z kernels.Vec[T]) {
	b.d.run("Div", func() {
		b.cpu.Div(b.h("Div", x), b.h("Div", y), b.h("Div", z))
	})
}
func (b backend[T]) DropoutForward(x, y, mask kernels.Vec[T], key kernels.IntVec, threshold uint32, scale T) {
	b.d.run("DropoutForward", func() {
		op := "DropoutForward"
		b.cpu.DropoutForward(b.h(op, x), b.h(op, y), b.h(op, mask), b.hi(op, key), threshold, scale)
	})
}

func (b backend[T]) EltwiseMax(x, y kernels.Vec[T], mask kernels.IntVec, k int) {
	b.d.run("EltwiseMax", func() {
		b.cpu.EltwiseMax(b.h("EltwiseMax", x), b.h("EltwiseMax", y), b.hi("EltwiseMax", mask), k)
	})
}
func (b backend[T]) MaskSelect(dy kernels.Vec[T], mask kernels.IntVec, k int, dx kernels.Vec[T]) {
	b.d.run("MaskSelect", func() {
		b.cpu.MaskSelect(b.h("MaskSelect", dy), b.hi("MaskSelect", mask), k, b.h("MaskSelect", dx))
	})
}
func (b backend[T]) BatchNormForward(x, y, xnorm kernels.Vec[T], num, channels, spatial int, global bool, eps, maf float64, mean, inv, runMean, runVar, factor kernels.Vec[T]) {
	const op = "BatchNormForward"
	b.d.run(op, func() {
		b.cpu.BatchNormForward(b.h(op, x), b.h(op, y), b.h(op, xnorm), num, channels, spatial, global, eps, maf,
			b.h(op, mean), b.h(op, inv), b.h(op, runMean), b.h(op, runVar), b.h(op, factor))
	})
}
func (b backend[T]) BatchNormBackward(dy, xnorm, inv, dx kernels.Vec[T], num, channels, spatial int, global bool) {
	const op = "BatchNormBackward"
	b.d.run(op, func() {
		b.cpu.BatchNormBackward(b.h(op, dy), b.h(op, xnorm), b.h(op, inv), b.h(op, dx), num, channels, spatial, global)
	})
}
func (b backend[T]) ActivationForward(a kernels.Activation, x, y kernels.Vec[T]) {
	b.d.run("ActivationForward", func() {
		b.cpu.ActivationForward(a, b.h("ActivationForward", x), b.h("ActivationForward", y))
	})
}
func (b backend[T]) ActivationBackward(a kernels.Activation, y, dy, dx kernels.Vec[T]) {
	b.d.run("ActivationBackward", func() {
		b.cpu.ActivationBackward(a, b.h("ActivationBackward", y), b.h("ActivationBackward", dy), b.h("ActivationBackward", dx))
	})
}
func (b backend[T]) AccuracyForward(x kernels.Vec[T], cls kernels.IntVec, outer, channels, inner, topK int, acc, perClass kernels.Vec[T]) {
	b.d.run("AccuracyForward", func() {
		pc := perClass
		if pc.Len() > 0 {
			pc = b.h("AccuracyForward", perClass)
		}
		b.cpu.AccuracyForward(b.h("AccuracyForward", x), b.hi("AccuracyForward", cls), outer, channels, inner, topK, b.h("AccuracyForward", acc), pc)
	})
}
func (b backend[T]) Dot(x, y kernels.Vec[T]) T {
	if !b.d.direct("Dot") {
		return 0
	}
	return b.cpu.Dot(b.h("Dot", x), b.h("Dot", y))
}
func (b backend[T]) Sum(x kernels.Vec[T]) T {
	if !b.d.direct("Sum") {
		return 0
	}
	return b.cpu.Sum(b.h("Sum", x))
}
func (b backend[T]) SumTo(x, dst kernels.Vec[T]) {
	b.d.run("SumTo", func() {
		b.cpu.SumTo(b.h("SumTo", x), b.h("SumTo", dst))
	})
}
func (b backend[T]) AddBias(y, bias kernels.Vec[T], outer, channels, inner int) {
	b.d.run("AddBias", func() {
		b.cpu.AddBias(b.h("AddBias", y), b.h("AddBias", bias), outer, channels, inner)
	})
}
func (b backend[T]) BiasGrad(dy, db kernels.Vec[T], outer, channels, inner int) {
	b.d.run("BiasGrad", func() {
		b.cpu.BiasGrad(b.h("BiasGrad", dy), b.h("BiasGrad", db), outer, channels, inner)
	})
}
func (b backend[T]) ScaleChannels(x, s, y kernels.Vec[T], outer, channels, inner int) {
	b.d.run("ScaleChannels", func() {
		b.cpu.ScaleChannels(b.h("ScaleChannels", x), b.h("ScaleChannels", s), b.h("ScaleChannels", y), outer, channels, inner)
	})
}
func (b backend[T]) ChannelDot(x, y, d kernels.Vec[T], outer, channels, inner int) {
	b.d.run("ChannelDot", func() {
		b.cpu.ChannelDot(b.h("ChannelDot", x), b.h("ChannelDot", y), b.h("ChannelDot", d), outer, channels, inner)
	})
}
func (b backend[T]) AddTrans(a kernels.Vec[T], rows, cols int, c kernels.Vec[T]) {
	b.d.run("AddTrans", func() {
		b.cpu.AddTrans(b.h("AddTrans", a), rows, cols, b.h("AddTrans", c))
	})
}
func (b backend[T]) ReLUForward(x, y kernels.Vec[T], s T) {
	b.d.run("ReLUForward", func() {
		b.cpu.ReLUForward(b.h("ReLUForward", x), b.h("ReLUForward", y), s)
	})
}
func (b backend[T]) ReLUBackward(x, dy, dx kernels.Vec[T], s T) {
	b.d.run("ReLUBackward", func() {
		b.cpu.ReLUBackward(b.h("ReLUBackward", x), b.h("ReLUBackward", dy), b.h("ReLUBackward", dx), s)
	})
}
func (b backend[T]) MaxPoolForward(x kernels.Vec[T], planes int, g kernels.PoolGeom, y kernels.Vec[T], mask kernels.IntVec) {
	b.d.run("MaxPoolForward", func() {
		b.cpu.MaxPoolForward(b.h("MaxPoolForward", x), planes, g, b.h("MaxPoolForward", y), b.hi("MaxPoolForward", mask))
	})
}
func (b backend[T]) MaxPoolBackward(dy kernels.Vec[T], mask kernels.IntVec, planes int, g kernels.PoolGeom, dx kernels.Vec[T]) {
	b.d.run("MaxPoolBackward", func() {
		b.cpu.MaxPoolBackward(b.h("MaxPoolBackward", dy), b.hi("MaxPoolBackward", mask), planes, g, b.h("MaxPoolBackward", dx))
	})
}
func (b backend[T]) AvePoolForward(x kernels.Vec[T], planes int, g kernels.PoolGeom, y kernels.Vec[T]) {
	b.d.run("AvePoolForward", func() {
		b.cpu.AvePoolForward(b.h("AvePoolForward", x), planes, g, b.h("AvePoolForward", y))
	})
}
func (b backend[T]) AvePoolBackward(dy kernels.Vec[T], planes int, g kernels.PoolGeom, dx kernels.Vec[T]) {
	b.d.run("AvePoolBackward", func() {
		b.cpu.AvePoolBackward(b.h("AvePoolBackward", dy), planes, g, b.h("AvePoolBackward", dx))
	})
}
func (b backend[T]) SoftmaxForward(x, y kernels.Vec[T], outer, channels, inner int) {
	b.d.run("SoftmaxForward", func() {
		b.cpu.SoftmaxForward(b.h("SoftmaxForward", x), b.h("SoftmaxForward", y), outer, channels, inner)
	})
}
func (b backend[T]) SoftmaxBackward(y, dy, dx kernels.Vec[T], outer, channels, inner int) {
	b.d.run("SoftmaxBackward", func() {
		b.cpu.SoftmaxBackward(b.h("SoftmaxBackward", y), b.h("SoftmaxBackward", dy), b.h("SoftmaxBackward", dx), outer, channels, inner)
	})
}
func (b backend[T]) SoftmaxLossForward(prob kernels.Vec[T], cls kernels.IntVec, outer, channels, inner int, normalizer float64, loss kernels.Vec[T]) {
	b.d.run("SoftmaxLossForward", func() {
		b.cpu.SoftmaxLossForward(b.h("SoftmaxLossForward", prob), b.hi("SoftmaxLossForward", cls), outer, channels, inner, normalizer, b.h("SoftmaxLossForward", loss))
	})
}
func (b backend[T]) SoftmaxLossBackward(prob kernels.Vec[T], cls kernels.IntVec, outer, channels, inner int, scale T, dx kernels.Vec[T]) {
	b.d.run("SoftmaxLossBackward", func() {
		b.cpu.SoftmaxLossBackward(b.h("SoftmaxLossBackward", prob), b.hi("SoftmaxLossBackward", cls), outer, channels, inner, scale, b.h("SoftmaxLossBackward", dx))
	})
}
func (b backend[T]) LRNForward(x, scale, y kernels.Vec[T], g kernels.LRNGeom) {
	b.d.run("LRNForward", func() {
		b.cpu.LRNForward(b.h("LRNForward", x), b.h("LRNForward", scale), b.h("LRNForward", y), g)
	})
}
func (b backend[T]) LRNBackward(x, y, scale, dy, dx kernels.Vec[T], g kernels.LRNGeom) {
	b.d.run("LRNBackward", func() {
		b.cpu.LRNBackward(b.h("LRNBackward", x), b.h("LRNBackward", y), b.h("LRNBackward", scale), b.h("LRNBackward", dy), b.h("LRNBackward", dx), g)
	})
}
func (b backend[T]) SGDMomentum(diff, data, hist kernels.Vec[T], norm, decay, lr, mom T) {
	b.d.run("SGDMomentum", func() {
		b.cpu.SGDMomentum(b.h("SGDMomentum", diff), b.h("SGDMomentum", data), b.h("SGDMomentum", hist), norm, decay, lr, mom)
	})
}

// String summarises the counters (for test failures).
func (d *Device) String() string {
	var s string
	for _, op := range d.Ops() {
		s += fmt.Sprintf("%s=%d ", op, d.Calls(op))
	}
	return s
}

func (b backend[T]) SolverUpdate(r kernels.SolverRule, offs kernels.IntVec, mults kernels.Vec[T], diff, data, hist0, hist1 kernels.Vec[T]) {
	op := "SolverUpdate"
	rule := &r // a recording's SetSolverRule changes it between replays
	b.d.run(op, func() {
		b.cpu.SolverUpdate(*rule, b.hi(op, offs), b.h(op, mults), b.h(op, diff), b.h(op, data), b.h(op, hist0), b.h(op, hist1))
	})
	b.d.recordRule(rule)
}
