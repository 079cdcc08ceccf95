//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/gocaffe/gocaffe/kernels/cuda/cublas"
	"github.com/gocaffe/gocaffe/kernels/cuda/cudnn"
	"github.com/gocaffe/gocaffe/kernels/cuda/graph"
	"gorgonia.org/cu"
)

// Device is one GPU with its own context, the loaded kernels and one
// stream that every operation is issued on, in order.
//
// CUDA binds a context to an OS thread; a goroutine may move between
// threads, so every method pins its goroutine and makes the context
// current for the duration of its driver calls (enter/leave).
type Device struct {
	ordinal int
	name    string
	sms     int
	ctx     cu.CUContext
	mods    []cu.Module
	fns     map[string]cu.Function
	// *lane is the stream operations are issued on now and its
	// workspaces: main, or side while Beside runs (lane.go).
	*lane
	main  *lane
	sides sideLane

	scratch cu.DevicePtr // 16 bytes for reductions read by the host

	mu sync.Mutex // serialises callers: one stream, one order
	// Bytes allocated through Alloc and not yet freed, their most since
	// Open, and each allocation's size (under mu).
	live, peak int64
	sizes      map[Ptr]int64

	// Uploads go through page-locked slots, so that Upload returns before
	// the copy runs: the caller's data is copied into the next slot, whose
	// last copy must have completed first (its event). syncUploads: wait
	// for every upload instead (GOCAFFE_CUDA_SYNC_UPLOADS=1).
	stage       [stageSlots]stageSlot
	stageSize   int
	stageNext   int
	syncUploads bool

	// copyStream, when copyOn (the default; GOCAFFE_CUDA_COPY_STREAM=0 or
	// SetCopyStream): a staged upload's host-to-device copy runs on this
	// second stream into the slot's device buffer (stageDevSize bytes
	// each), while the stream's earlier work (the current iteration) runs;
	// the stream then waits for that copy (an event, no host wait) and
	// copies the slot's buffer to the destination device to device.
	copyStream   cu.Stream
	copyOn       bool
	stageDevSize int

	// GEMMs: cuBLAS when the node has it (blas, on the current lane's
	// stream with that lane's workspace blasWS), else GoCaffe's kernels; blasNote is the one
	// line that says which and where cuBLAS was looked for. useBLAS: the
	// GEMMs go to cuBLAS (tests turn it off to compare). tf32: float32
	// GEMMs may use TF32 tensor cores (GOCAFFE_CUDA_TF32=1 or SetTF32).
	blas     *cublas.Handle
	blasOn   *lane // the lane blas issues on and whose workspace it uses
	blasNote string
	useBLAS  bool
	tf32     bool

	// A GEMM summed over a batch whose tiles would leave multiprocessors
	// idle is split over the batch into the lane's splitWS; noSplit turns
	// that off (tests compare both).
	// cuDNN when the node has it (dnnLib; the handle dnn made with the
	// first convolution, on the stream); dnnNote says which and where, or
	// where it was looked for. useDNN: convolutions go to cuDNN (by
	// default when loaded; GOCAFFE_CUDNN_CONV=0 or UseDNN). dnnChoice: how
	// new plans' algorithms are chosen (GOCAFFE_CUDNN_ALGO, SetDNNChoice).
	// Each lane has its cuDNN workspace (dnnWS); dnnOld: workspaces the
	// lanes outgrew, which recorded graphs may still use, kept until Close.
	dnnLib    *cudnn.Loaded
	dnn       *cudnn.Handle
	dnnOn     *lane // the lane dnn issues on
	dnnNote   string
	useDNN    bool
	dnnChoice cudnn.Choice
	dnnOld    []Ptr
	dnnCalls  int64

	noSplit   bool
	capturing bool

	// tileOld: tiled-convolution workspaces the lanes outgrew (tileWS),
	// which recorded graphs may still use, kept until Close. noTile sends
	// the direct convolutions to the untiled kernels (tests compare both);
	// tileForce and tileSplitForce, when set, are the tiled kernels' block
	// shape and the forward and data-gradient splits (benchmarks compare
	// them).
	tileOld        []Ptr
	noTile         bool
	tileForce      tileCfg
	tileSplitForce int

	// direct: when convolutions run on GoCaffe's direct kernels rather
	// than cuDNN's (GOCAFFE_CUDA_DIRECT_CONV, SetDirectConv); directLog:
	// every direction decided so far (under mu).
	direct    DirectMode
	directLog []DirectDecision
}

// blasWorkspace is the device memory cuBLAS gets as its workspace, set
// explicitly so that it allocates nothing during graph capture (32 MiB,
// NVIDIA's recommendation for Hopper).
const blasWorkspace = 32 << 20

// stageSlots is the number of upload slots: the host runs at most about
// that many uploads ahead of the device.
const stageSlots = 4

// stageMax is the largest upload that goes through a slot; a larger one
// (weights at the start) is copied synchronously.
const stageMax = 16 << 20

// stageSlot is one page-locked upload buffer and the event recorded after
// the copy out of it.
//
// With the copy stream, dev is the slot's device buffer: ev is recorded on
// the copy stream after the copy into dev (the host waits for it before
// refilling p), used on the stream after the copy out of dev (the copy
// stream waits for it before refilling dev).
type stageSlot struct {
	p    unsafe.Pointer
	ev   cu.Event
	dev  cu.DevicePtr
	used cu.Event
}

// Count returns the number of CUDA devices, or an error that says why
// none can be used (no driver, no device).
func Count() (int, error) {
	if err := cu.InitError(); err != nil {
		return 0, fmt.Errorf("CUDA driver: %w", err)
	}
	n, err := cu.NumDevices()
	if err != nil {
		return 0, fmt.Errorf("CUDA device count: %w", err)
	}
	return n, nil
}

// DriverVersion returns the driver's CUDA version (13000 for 13.0), or -1.
func DriverVersion() int {
	if cu.InitError() != nil {
		return -1
	}
	return cu.Version()
}

// Open makes a context on device ordinal, loads the embedded kernels and
// creates the stream.
func Open(ordinal int) (*Device, error) {
	n, err := Count()
	if err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("CUDA device %d: the node has %d device(s)", ordinal, n)
	}
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return nil, fmt.Errorf("CUDA device %d: %w", ordinal, err)
	}
	d := &Device{ordinal: ordinal, fns: map[string]cu.Function{}, sizes: map[Ptr]int64{}}
	if d.name, err = dev.Name(); err != nil {
		return nil, fmt.Errorf("CUDA device %d name: %w", ordinal, err)
	}
	if d.sms, err = dev.Attribute(cu.MultiprocessorCount); err != nil {
		return nil, fmt.Errorf("CUDA device %d: %w", ordinal, err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if d.ctx, err = dev.MakeContext(cu.SchedAuto); err != nil {
		return nil, fmt.Errorf("CUDA device %d: context: %w", ordinal, err)
	}
	fail := func(e error) (*Device, error) {
		d.ctx.Destroy()
		return nil, e
	}
	names, images, err := fatbinImages()
	if err != nil {
		return fail(err)
	}
	for _, n := range names {
		m, err := cu.LoadData(string(images[n]))
		if err != nil {
			return fail(fmt.Errorf("CUDA device %d: loading %s: %w", ordinal, n, err))
		}
		d.mods = append(d.mods, m)
	}
	if d.main, err = newLane(); err != nil {
		return fail(fmt.Errorf("CUDA device %d: %w", ordinal, err))
	}
	d.lane = d.main
	if d.scratch, err = cu.MemAlloc(16); err != nil {
		return fail(fmt.Errorf("CUDA device %d: %w", ordinal, err))
	}
	if err := d.sides.init(); err != nil {
		return fail(fmt.Errorf("CUDA device %d: %w", ordinal, err))
	}
	for i := range d.stage {
		if d.stage[i].ev, err = cu.MakeEvent(cu.DisableTiming); err != nil {
			return fail(fmt.Errorf("CUDA device %d: event: %w", ordinal, err))
		}
		if d.stage[i].used, err = cu.MakeEvent(cu.DisableTiming); err != nil {
			return fail(fmt.Errorf("CUDA device %d: event: %w", ordinal, err))
		}
	}
	d.syncUploads = os.Getenv("GOCAFFE_CUDA_SYNC_UPLOADS") == "1"
	if os.Getenv(CopyStreamSetting) != "0" {
		if err := d.setCopyStream(true); err != nil {
			return fail(err)
		}
	}
	d.openBLAS()
	if d.direct, err = directModeFromEnv(); err != nil {
		return fail(err)
	}
	if err := d.openDNN(); err != nil {
		return fail(err)
	}
	if os.Getenv(TF32Setting) == "1" {
		d.tf32 = true
		if d.blas != nil {
			if err := d.blas.SetTF32(true); err != nil {
				return fail(fmt.Errorf("CUDA device %d: %w", ordinal, err))
			}
		}
	}
	return d, nil
}

// CopyStreamSetting is the environment variable that, set to 0, keeps
// staged uploads (the next batch) on the device's one stream; by default
// they are copied in on a second stream while the stream runs the work
// issued before them (see Upload).
const CopyStreamSetting = "GOCAFFE_CUDA_COPY_STREAM"

// SetCopyStream turns the second upload stream on or off (see Upload);
// uploads issued before keep their order either way.
func (d *Device) SetCopyStream(on bool) error {
	d.enter()
	defer d.leave()
	return d.setCopyStream(on)
}

// setCopyStream is SetCopyStream, entered.
func (d *Device) setCopyStream(on bool) error {
	if on && d.copyStream == (cu.Stream{}) {
		s, err := cu.MakeStream(cu.NonBlocking)
		if err != nil {
			return fmt.Errorf("%s: copy stream: %w", d.Name(), err)
		}
		d.copyStream = s
	}
	d.copyOn = on
	return nil
}

// CopyStream reports whether staged uploads go through the second stream.
func (d *Device) CopyStream() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.copyOn
}

// TF32Setting is the environment variable that, set to 1, lets float32
// GEMMs use TF32 tensor cores (10-bit mantissas in the products, fp32
// sums): faster, no longer within float32's rounding of the CPU reference.
const TF32Setting = "GOCAFFE_CUDA_TF32"

// openBLAS binds cuBLAS, when the node has it, to the device's stream with
// its own workspace; otherwise, or when that fails, the GEMMs run on
// GoCaffe's kernels and blasNote says why. Called with the context current.
func (d *Device) openBLAS() {
	lib, note := cublas.Load()
	d.blasNote = note
	if lib == nil {
		return
	}
	ws, err := cu.MemAlloc(blasWorkspace)
	if err != nil {
		d.blasNote = fmt.Sprintf("cuBLAS from %s not used (its %d-byte workspace: %v): GEMMs run on GoCaffe's own CUDA kernels", lib.Path, blasWorkspace, err)
		return
	}
	h, err := lib.NewHandle(unsafe.Pointer(d.stream.C()), uintptr(ws), blasWorkspace)
	if err != nil {
		_ = cu.MemFree(ws)
		d.blasNote = fmt.Sprintf("cuBLAS from %s not used (%v): GEMMs run on GoCaffe's own CUDA kernels", lib.Path, err)
		return
	}
	d.blas, d.blasOn, d.useBLAS = h, d.lane, true
	d.lane.blasWS = ws
	d.blasNote = fmt.Sprintf("%s, version %d", note, h.Version())
}

// gemmSplits is how many pieces a GEMM summed over batch matrices is cut
// into along the batch (1: one launch of gemm, each block looping over the
// whole batch): enough for the m×n tiles to fill every multiprocessor
// twice, at most batch, with a workspace of at most maxSplitBytes.
func (d *Device) gemmSplits(batch, m, n, elem int) int {
	if d.noSplit || batch < 2 {
		return 1
	}
	tiles := ((m + 63) / 64) * ((n + 63) / 64)
	s := min((2*d.sms+tiles-1)/tiles, batch, maxSplitBytes/(m*n*elem))
	return max(s, 1)
}

// gemmKSplits is how many equal slices of k a plain GEMM on GoCaffe's own
// kernel is cut into (1: none): when its m×n tiles would fill fewer than
// every multiprocessor twice, the largest divisor of k up to what fills
// them, each slice at least 64 long. Without cuBLAS, LeNet b64's inner
// products (64×500 and 64×10 outputs over 800 and 500) ran on 8 and 1
// blocks: the iteration took 408 µs against 198 with cuBLAS.
func (d *Device) gemmKSplits(m, n, k int) int {
	if d.noSplit {
		return 1
	}
	tiles := ((m + 63) / 64) * ((n + 63) / 64)
	want := min((2*d.sms+tiles-1)/tiles, k/64, maxSplitBytes/(m*n*8))
	for s := want; s > 1; s-- {
		if k%s == 0 {
			return s
		}
	}
	return 1
}

// biasSplits is how many pieces a bias gradient is cut into along its
// outer axis (1: one block per channel over all of it): enough for every
// multiprocessor to hold two blocks, each summing at least 1024 values.
func (d *Device) biasSplits(outer, channels, inner int) int {
	if d.noSplit || outer < 2 {
		return 1
	}
	s := min(outer, (2*d.sms+channels-1)/channels, outer*inner/1024, maxSplitBytes/(8*channels))
	return max(s, 1)
}

// maxSplitBytes bounds the workspace of a split batch sum.
const maxSplitBytes = 64 << 20

// splitWorkspace returns at least bytes of device memory for the pieces
// of a split batch sum, grown (never while a graph is being recorded: its
// replays would read freed memory) by the eager iteration before it.
func (d *Device) splitWorkspace(bytes int) (Ptr, error) {
	if bytes <= d.splitBytes {
		return d.splitWS, nil
	}
	if d.capturing {
		return 0, fmt.Errorf("%s: the split-GEMM workspace would grow from %d to %d bytes while recording a graph", d.Name(), d.splitBytes, bytes)
	}
	if d.splitWS != 0 {
		d.Free(d.splitWS)
		d.splitWS, d.splitBytes = 0, 0
	}
	p, err := d.Alloc(bytes)
	if err != nil {
		return 0, err
	}
	d.splitWS, d.splitBytes = p, bytes
	return p, nil
}

// BLAS is the one line that says whether the GEMMs use cuBLAS (which
// library, found where) or GoCaffe's kernels (and where cuBLAS was looked
// for).
func (d *Device) BLAS() string { return d.blasNote }

// UseBLAS sends the GEMMs to cuBLAS (when loaded) or to GoCaffe's own
// kernels, and returns whether they go to cuBLAS now. Own kernels are the
// oracle the tests compare cuBLAS with.
func (d *Device) UseBLAS(on bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.useBLAS = on && d.blas != nil
	return d.useBLAS
}

// UsesBLAS reports whether the GEMMs go to cuBLAS.
func (d *Device) UsesBLAS() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.useBLAS
}

// SetTF32 lets float32 GEMMs use TF32 tensor cores (GoCaffe's kernel
// gemm_tf32 or cuBLAS's TF32 math mode), or not (full fp32, the default).
func (d *Device) SetTF32(on bool) error {
	d.enter()
	defer d.leave()
	d.tf32 = on
	if d.blas != nil {
		if err := d.blas.SetTF32(on); err != nil {
			return fmt.Errorf("%s: %w", d.Name(), err)
		}
	}
	return nil
}

// TF32 reports whether float32 GEMMs may use TF32 tensor cores.
func (d *Device) TF32() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tf32
}

// gemmBLAS issues c_p = alpha·op(a_p)·op(b_p) + beta·c_p (row-major) for p
// < batch through cuBLAS on the stream; ok is false when the GEMMs do not
// go to cuBLAS (then nothing was issued).
func (d *Device) gemmBLAS(elem int, ta, tb bool, batch, m, n, k int, alpha float64, a Ptr, lda, strideA int, b Ptr, ldb, strideB int,
	beta float64, c Ptr, ldc, strideC int) (ok bool, err error) {
	d.enter()
	defer d.leave()
	if !d.useBLAS {
		return false, nil
	}
	if err := d.bindBLAS(); err != nil {
		return true, err
	}
	if err := d.blas.GemmRowMajor(elem, ta, tb, batch, m, n, k, alpha, uintptr(a), lda, strideA, uintptr(b), ldb, strideB,
		beta, uintptr(c), ldc, strideC); err != nil {
		return true, fmt.Errorf("%s: %w", d.Name(), err)
	}
	return true, nil
}

// Name is "cuda:N".
func (d *Device) Name() string { return fmt.Sprintf("cuda:%d", d.ordinal) }

// Model is the GPU's name as the driver reports it.
func (d *Device) Model() string { return d.name }

// Close releases the context and everything in it.
func (d *Device) Close() error {
	d.enter()
	defer d.leave()
	if err := cu.Synchronize(); err != nil {
		return err
	}
	if d.blas != nil {
		d.blas.Destroy()
		d.blas, d.useBLAS = nil, false
	}
	for _, p := range d.tileOld {
		_ = cu.MemFree(p)
	}
	d.tileOld = nil
	d.closeDNN()
	d.closeLanes()
	return d.ctx.Destroy()
}

func (d *Device) enter() {
	d.mu.Lock()
	runtime.LockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		// Only an invalid context fails here; every call after it reports it.
		_ = err
	}
}

func (d *Device) leave() {
	runtime.UnlockOSThread()
	d.mu.Unlock()
}

// fn looks a kernel up by name in the loaded modules.
func (d *Device) fn(name string) (cu.Function, error) {
	if f, ok := d.fns[name]; ok {
		return f, nil
	}
	for _, m := range d.mods {
		if f, err := m.Function(name); err == nil {
			d.fns[name] = f
			return f, nil
		}
	}
	return cu.Function{}, fmt.Errorf("CUDA kernel %q not found in the embedded modules", name)
}

// Ptr is a device address.
type Ptr = cu.DevicePtr

// Alloc returns bytes of zeroed device memory (cuMemAlloc; never managed
// memory).
func (d *Device) Alloc(bytes int) (Ptr, error) {
	d.enter()
	defer d.leave()
	if bytes <= 0 {
		bytes = 4
	}
	p, err := cu.MemAlloc(int64(bytes))
	if err != nil {
		free, total, _ := cu.MemInfo()
		return 0, fmt.Errorf("%s: allocating %d bytes (%d of %d free): %w", d.Name(), bytes, free, total, err)
	}
	if err := cu.MemsetD8Async(p, 0, int64(bytes), d.stream); err != nil {
		return 0, fmt.Errorf("%s: zeroing %d bytes: %w", d.Name(), bytes, err)
	}
	d.sizes[p] = int64(bytes)
	d.live += int64(bytes)
	d.peak = max(d.peak, d.live)
	return p, nil
}

// Memory returns the bytes allocated through Alloc and not freed, and the
// most there were at once since Open (the context's own memory and the
// kernels' modules not counted).
func (d *Device) Memory() (live, peak int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.live, d.peak
}

// Free releases memory from Alloc (after the stream's work is done).
func (d *Device) Free(p Ptr) {
	d.enter()
	defer d.leave()
	_ = d.syncLanes()
	_ = cu.MemFree(p)
	d.live -= d.sizes[p]
	delete(d.sizes, p)
}

// Upload copies bytes from host memory at src to p in stream order. src
// may be reused when it returns: an upload of up to stageMax bytes is
// copied into a page-locked slot and returns without waiting for the
// device; a larger one waits for its copy. With the copy stream on
// (SetCopyStream), a staged upload's host-to-device copy runs beside the
// work issued before it and the stream waits for it (uploadVia): the
// stream sees the data exactly where the single-stream copy put it. An
// upload while the stream is recording a graph is refused (a recorded
// copy would replay whatever the slot holds then).
func (d *Device) Upload(p Ptr, src unsafe.Pointer, bytes int) error {
	if bytes == 0 {
		return nil
	}
	d.enter()
	defer d.leave()
	if rec, err := graph.IsCapturing(unsafe.Pointer(d.stream.C())); err != nil || rec {
		return fmt.Errorf("%s: upload of %d bytes while the stream records a graph (or its state is unknown: %v)", d.Name(), bytes, err)
	}
	if d.syncUploads || bytes > stageMax {
		if err := cu.MemcpyHtoDAsync(p, src, int64(bytes), d.stream); err != nil {
			return fmt.Errorf("%s: upload of %d bytes: %w", d.Name(), bytes, err)
		}
		return d.stream.Synchronize()
	}
	if bytes > d.stageSize {
		if err := d.growStage(bytes); err != nil {
			return err
		}
	}
	if d.copyOn && d.stageDevSize < d.stageSize {
		if err := d.growDevStage(); err != nil {
			return err
		}
	}
	sl := &d.stage[d.stageNext]
	d.stageNext = (d.stageNext + 1) % stageSlots
	if err := sl.ev.Synchronize(); err != nil { // the slot's last copy is done
		return fmt.Errorf("%s: upload of %d bytes: %w", d.Name(), bytes, err)
	}
	copy(unsafe.Slice((*byte)(sl.p), bytes), unsafe.Slice((*byte)(src), bytes))
	if d.copyOn {
		return d.uploadVia(sl, p, bytes)
	}
	if err := cu.MemcpyHtoDAsync(p, sl.p, int64(bytes), d.stream); err != nil {
		return fmt.Errorf("%s: upload of %d bytes: %w", d.Name(), bytes, err)
	}
	if err := sl.ev.Record(d.stream); err != nil {
		return fmt.Errorf("%s: upload of %d bytes: %w", d.Name(), bytes, err)
	}
	return nil
}

// uploadVia copies bytes from slot sl's page-locked buffer to p through
// the slot's device buffer: host to device on the copy stream (after the
// stream's last copy out of that buffer), then device to device on the
// stream after the first copy completes. The host waits for neither.
// Called entered.
func (d *Device) uploadVia(sl *stageSlot, p Ptr, bytes int) error {
	fail := func(err error) error {
		return fmt.Errorf("%s: upload of %d bytes on the copy stream: %w", d.Name(), bytes, err)
	}
	if err := d.copyStream.Wait(sl.used, 0); err != nil {
		return fail(err)
	}
	if err := cu.MemcpyHtoDAsync(sl.dev, sl.p, int64(bytes), d.copyStream); err != nil {
		return fail(err)
	}
	if err := sl.ev.Record(d.copyStream); err != nil {
		return fail(err)
	}
	if err := d.stream.Wait(sl.ev, 0); err != nil {
		return fail(err)
	}
	if err := cu.MemcpyDtoDAsync(p, sl.dev, int64(bytes), d.stream); err != nil {
		return fail(err)
	}
	if err := sl.used.Record(d.stream); err != nil {
		return fail(err)
	}
	return nil
}

// growDevStage gives every slot a device buffer of stageSize bytes (after
// both streams' work is done). The buffers are the device's own, counted
// in Memory. Called entered.
func (d *Device) growDevStage() error {
	if err := d.syncBoth(); err != nil {
		return err
	}
	for i := range d.stage {
		if d.stage[i].dev != 0 {
			_ = cu.MemFree(d.stage[i].dev)
			d.stage[i].dev = 0
			d.live -= int64(d.stageDevSize)
		}
	}
	d.stageDevSize = 0
	for i := range d.stage {
		p, err := cu.MemAlloc(int64(d.stageSize))
		if err != nil {
			return fmt.Errorf("%s: device upload buffer of %d bytes: %w", d.Name(), d.stageSize, err)
		}
		d.stage[i].dev = p
		d.live += int64(d.stageSize)
		d.peak = max(d.peak, d.live)
	}
	d.stageDevSize = d.stageSize
	return nil
}

// syncBoth waits for the stream and, when there is one, the copy stream.
// Called entered.
func (d *Device) syncBoth() error {
	if err := d.stream.Synchronize(); err != nil {
		return fmt.Errorf("%s: %w", d.Name(), err)
	}
	if d.copyStream != (cu.Stream{}) {
		if err := d.copyStream.Synchronize(); err != nil {
			return fmt.Errorf("%s: copy stream: %w", d.Name(), err)
		}
	}
	return nil
}

// growStage makes every upload slot hold at least bytes (after the copies
// out of the old ones are done). Called entered.
func (d *Device) growStage(bytes int) error {
	if err := d.syncBoth(); err != nil {
		return err
	}
	size := max(bytes, 2*d.stageSize, 1<<20)
	size = min(max(size, bytes), stageMax)
	for i := range d.stage {
		if d.stage[i].p != nil {
			_ = graph.FreeHost(d.stage[i].p)
			d.stage[i].p = nil
		}
	}
	d.stageSize = 0
	for i := range d.stage {
		p, err := graph.AllocHost(size)
		if err != nil {
			return fmt.Errorf("%s: page-locked upload buffer of %d bytes: %w", d.Name(), size, err)
		}
		d.stage[i].p = p
	}
	d.stageSize = size
	return nil
}

// Download copies bytes from p to host memory at dst after the work
// issued before it.
func (d *Device) Download(dst unsafe.Pointer, p Ptr, bytes int) error {
	if bytes == 0 {
		return nil
	}
	d.enter()
	defer d.leave()
	if err := d.join(); err != nil {
		return err
	}
	if err := cu.MemcpyDtoHAsync(dst, p, int64(bytes), d.stream); err != nil {
		return fmt.Errorf("%s: download of %d bytes: %w", d.Name(), bytes, err)
	}
	if err := d.stream.Synchronize(); err != nil {
		return fmt.Errorf("%s: download of %d bytes: %w", d.Name(), bytes, err)
	}
	return nil
}

// CopyDtoD copies bytes from src to dst on the stream.
func (d *Device) CopyDtoD(dst, src Ptr, bytes int) error {
	if bytes == 0 || dst == src {
		return nil
	}
	d.enter()
	defer d.leave()
	if err := cu.MemcpyDtoDAsync(dst, src, int64(bytes), d.stream); err != nil {
		return fmt.Errorf("%s: device copy of %d bytes: %w", d.Name(), bytes, err)
	}
	return nil
}

// Sync waits for every operation issued so far and returns the first
// asynchronous error.
func (d *Device) Sync() error {
	d.enter()
	defer d.leave()
	return d.syncLanes()
}

// arg is one kernel parameter: a device pointer, an int or a float of the
// kernel's element type, widened to the 8-byte slot Launch copies.
type arg = uint64

func iarg(v int) arg       { return uint64(uint32(int32(v))) }
func larg(v int) arg       { return uint64(v) }
func parg(p Ptr) arg       { return uint64(p) }
func f32arg(v float32) arg { return uint64(math.Float32bits(v)) }
func f64arg(v float64) arg { return math.Float64bits(v) }

// launch runs kernel name on grid×block threads with args.
func (d *Device) launch(name string, gx, gy, block int, args ...arg) error {
	return d.launch3(name, gx, gy, 1, block, args...)
}

// launch3 is launch over a 3-D grid.
func (d *Device) launch3(name string, gx, gy, gz, block int, args ...arg) error {
	return d.launchWith(name, gx, gy, gz, block, 0, args...)
}

// launchShared is launch with shared bytes of dynamic shared memory.
func (d *Device) launchShared(name string, gx, gy, block, shared int, args ...arg) error {
	return d.launchWith(name, gx, gy, 1, block, shared, args...)
}

func (d *Device) launchWith(name string, gx, gy, gz, block, shared int, args ...arg) error {
	d.enter()
	defer d.leave()
	f, err := d.fn(name)
	if err != nil {
		return err
	}
	params := make([]unsafe.Pointer, len(args))
	for i := range args {
		params[i] = unsafe.Pointer(&args[i])
	}
	if err := f.Launch(gx, gy, gz, block, 1, 1, shared, d.stream, params); err != nil {
		return fmt.Errorf("%s: kernel %s (grid %d×%d×%d, block %d): %w", d.Name(), name, gx, gy, gz, block, err)
	}
	return nil
}

// grid1 is the 1-D grid for n elements at 256 threads a block, capped so
// that grid-stride loops keep every multiprocessor busy.
func (d *Device) grid1(n int) int {
	g := (n + 255) / 256
	if lim := d.sms * 32; g > lim {
		g = lim
	}
	if g < 1 {
		g = 1
	}
	return g
}

// maxReduceBlocks is the most blocks a reduction (Ops.DotTo, Ops.SumSq)
// spreads over.
const maxReduceBlocks = 256

// reduceGrid is the grid of a reduction over n elements: blocks of 256
// threads, one per 64 Ki elements up to maxReduceBlocks. It depends on n
// alone, so a reduction's summation order, and its result, repeat on any
// GPU. A single block of 1024 threads over 61 M weights (AlexNet's
// gradient norm) took 22 ms on an H100; 256 blocks read at full bandwidth.
func reduceGrid(n int) (blocks, threads int) {
	blocks = min(max((n+65535)/65536, 1), maxReduceBlocks)
	return blocks, 256
}

// Capture records the operations fn issues into a CUDA graph instead of
// running them; replay it with Graph.Launch. fn must not synchronise with
// the host (no Download, Dot or Sum).
func (d *Device) Capture(fn func() error) (*Graph, error) {
	d.enter()
	runtime.LockOSThread() // held across fn: capture is thread-local
	err := graph.BeginCapture(unsafe.Pointer(d.stream.C()))
	d.capturing = err == nil
	d.leave()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("%s: %w", d.Name(), err)
	}
	ferr := fn()
	d.enter()
	if jerr := d.join(); jerr != nil && ferr == nil {
		ferr = jerr // a capture must end with every forked stream joined
	}
	ex, err := graph.EndCapture(unsafe.Pointer(d.stream.C()))
	d.capturing = false
	d.leave()
	runtime.UnlockOSThread()
	if ferr != nil {
		if ex != nil {
			ex.Destroy()
		}
		return nil, ferr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Name(), err)
	}
	return &Graph{d: d, ex: ex}, nil
}

// captureInvalidated reports whether the capture under way was
// invalidated by an operation issued since it began.
func (d *Device) captureInvalidated() bool {
	d.enter()
	defer d.leave()
	if !d.capturing {
		return false
	}
	bad, err := graph.Invalidated(unsafe.Pointer(d.stream.C()))
	return bad || err != nil
}

// Graph is a captured sequence of operations.
type Graph struct {
	d  *Device
	ex *graph.Exec
}

// Launch replays the graph on the device's stream.
func (g *Graph) Launch() error {
	g.d.enter()
	defer g.d.leave()
	if err := g.ex.Launch(unsafe.Pointer(g.d.stream.C())); err != nil {
		return fmt.Errorf("%s: %w", g.d.Name(), err)
	}
	return nil
}

// Nodes is the number of operations in the graph.
func (g *Graph) Nodes() int {
	n, _ := g.ex.Nodes()
	return n
}

// setArgs gives kernel node nd new arguments for the next Launch.
func (g *Graph) setArgs(nd graph.Node, args []arg) error {
	g.d.enter()
	defer g.d.leave()
	if err := g.ex.SetKernelArgs(nd, args); err != nil {
		return fmt.Errorf("%s: %w", g.d.Name(), err)
	}
	return nil
}

// lastCaptured is the graph node of the last operation issued while the
// stream is capturing.
func (d *Device) lastCaptured() (graph.Node, error) {
	d.enter()
	defer d.leave()
	nd, err := graph.LastCaptured(unsafe.Pointer(d.stream.C()))
	if err != nil {
		return nd, fmt.Errorf("%s: %w", d.Name(), err)
	}
	return nd, nil
}

// Destroy releases the graph.
func (g *Graph) Destroy() {
	g.d.enter()
	defer g.d.leave()
	g.ex.Destroy()
}
