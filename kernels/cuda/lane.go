//go:build cuda

package cuda

import (
	"fmt"
	"os"
	"unsafe"

	"gorgonia.org/cu"
)

// lane is a stream and the workspaces of the work issued on it. The device
// issues on its main lane, and on its side lane inside Beside: kernels of
// the two lanes may run at once, so each lane has workspaces of its own.
// cuBLAS and cuDNN keep one handle each, moved to the lane that calls
// (bindBLAS, bindDNN).
type lane struct {
	stream cu.Stream
	// redWS and redCount are the workspace of the multi-block reductions
	// (grid_sum in src/common.cuh): a partial sum per block, up to
	// maxReduceBlocks doubles, and the count of blocks done (zero between
	// launches).
	redWS, redCount cu.DevicePtr
	// blasWS is cuBLAS's workspace on this lane (blasWorkspace bytes; 0
	// without cuBLAS).
	blasWS cu.DevicePtr
	// dnnWS is the workspace of dnnWSBytes every cuDNN call on the lane
	// gets (outgrown ones go to Device.dnnOld).
	dnnWS      Ptr
	dnnWSBytes int
	// splitWS: the pieces of split batch sums (splitBytes); tileWS: the
	// partial sums of split tiled convolutions (tileWSBytes). Both grow in
	// an eager pass, never while capturing.
	splitWS     Ptr
	splitBytes  int
	tileWS      Ptr
	tileWSBytes int
}

// newLane creates a stream and the reduction workspace. Called with the
// context current.
func newLane() (*lane, error) {
	l := &lane{}
	var err error
	if l.stream, err = cu.MakeStream(cu.NonBlocking); err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	if l.redWS, err = cu.MemAlloc(maxReduceBlocks * 8); err != nil {
		return nil, err
	}
	if l.redCount, err = cu.MemAlloc(4); err != nil {
		return nil, err
	}
	if err = cu.MemsetD32(l.redCount, 0, 1); err != nil {
		return nil, err
	}
	return l, nil
}

// free releases the lane's memory. Called with the context current, the
// lane's work done.
func (l *lane) free() {
	for _, p := range []cu.DevicePtr{l.redWS, l.redCount, l.blasWS, l.dnnWS, l.splitWS, l.tileWS} {
		if p != 0 {
			_ = cu.MemFree(p)
		}
	}
	*l = lane{stream: l.stream}
}

// SideStreamSetting is the environment variable that, set to 1, lets
// Beside issue work on a second stream; otherwise (the default until the
// side stream's recorded iterations are measured on a GPU) Beside runs its
// work in order on the device's one stream.
const SideStreamSetting = "GOCAFFE_CUDA_SIDE_STREAM"

// sideLane is the state of Beside: the side lane (made on first use),
// the events that fork it from the main lane and join it back, and
// whether work issued on it is not yet joined.
type sideLane struct {
	off     bool
	l       *lane
	fork    cu.Event
	done    cu.Event
	in      bool // Beside is running
	pending bool // side work not yet joined
	forks   int64
}

func (s *sideLane) init() error {
	switch v := os.Getenv(SideStreamSetting); v {
	case "", "0":
		s.off = true
	case "1":
		s.off = false
	default:
		return fmt.Errorf("%s=%q: want 1 (the side stream) or 0 (one stream)", SideStreamSetting, v)
	}
	var err error
	if s.fork, err = cu.MakeEvent(cu.DisableTiming); err != nil {
		return fmt.Errorf("event: %w", err)
	}
	if s.done, err = cu.MakeEvent(cu.DisableTiming); err != nil {
		return fmt.Errorf("event: %w", err)
	}
	return nil
}

// SetSideStream lets Beside run work on a second stream (on) or in order
// on the one stream (off), and returns the previous setting. Only between
// iterations: it joins what is pending first.
func (d *Device) SetSideStream(on bool) bool {
	d.enter()
	defer d.leave()
	_ = d.join()
	was := !d.sides.off
	d.sides.off = !on
	return was
}

// SideForks is how many times Beside ran work on the side stream since
// Open.
func (d *Device) SideForks() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sides.forks
}

// Beside runs fn with the device issuing on its side lane: fn's
// operations start after everything issued so far and may overlap what
// is issued after Beside returns, until join (Join, a download, Sync, the
// end of a recording). Without the side stream (off, or nested) fn runs
// on the current lane.
func (d *Device) Beside(fn func()) {
	d.enter()
	if d.sides.off || d.sides.in || d.lane != d.main {
		d.leave()
		fn()
		return
	}
	if err := d.fork(); err != nil {
		d.leave()
		// The side lane could not be had: the work runs in order. The
		// error comes back from the next operation that meets it.
		fn()
		return
	}
	d.sides.in = true
	d.lane = d.sides.l
	d.leave()
	defer func() {
		d.enter()
		defer d.leave()
		d.lane = d.main
		d.sides.in = false
		d.sides.pending = true
		// Recorded now, so that a join waits for everything fn issued.
		if err := d.sides.done.Record(d.sides.l.stream); err != nil {
			d.sides.off = true
			_ = d.sides.l.stream.Synchronize()
			d.sides.pending = false
		}
	}()
	fn()
}

// fork makes the side lane (on first use) and has it wait for the main
// lane's work so far. Called entered.
func (d *Device) fork() error {
	if d.sides.l == nil {
		if d.capturing {
			// No stream or memory is made while recording: this recording
			// runs in order, later ones beside.
			return fmt.Errorf("%s: the side stream would be made while recording a graph", d.Name())
		}
		l, err := newLane()
		if err != nil {
			return fmt.Errorf("%s: side stream: %w", d.Name(), err)
		}
		if d.blas != nil {
			if l.blasWS, err = cu.MemAlloc(blasWorkspace); err != nil {
				return fmt.Errorf("%s: side stream's cuBLAS workspace: %w", d.Name(), err)
			}
			d.live += blasWorkspace
			d.peak = max(d.peak, d.live)
		}
		d.sides.l = l
		// cuDNN's plans so far may run beside: the same workspace.
		if err := d.growDNNWorkspace(d.main.dnnWSBytes); err != nil {
			return err
		}
	}
	if err := d.sides.fork.Record(d.main.stream); err != nil {
		return err
	}
	if err := d.sides.l.stream.Wait(d.sides.fork, 0); err != nil {
		return err
	}
	d.sides.forks++
	return nil
}

// Join makes the main lane's next work wait for the side lane's.
func (d *Device) Join() error {
	d.enter()
	defer d.leave()
	return d.join()
}

// join is Join, entered. Inside Beside it does nothing (the side lane's
// own work is in order).
func (d *Device) join() error {
	if !d.sides.pending || d.lane != d.main {
		return nil
	}
	d.sides.pending = false
	if err := d.main.stream.Wait(d.sides.done, 0); err != nil {
		return fmt.Errorf("%s: joining the side stream: %w", d.Name(), err)
	}
	return nil
}

// syncLanes waits for both lanes' work. Called entered.
func (d *Device) syncLanes() error {
	if err := d.main.stream.Synchronize(); err != nil {
		return fmt.Errorf("%s: %w", d.Name(), err)
	}
	if d.sides.l != nil {
		if err := d.sides.l.stream.Synchronize(); err != nil {
			return fmt.Errorf("%s: side stream: %w", d.Name(), err)
		}
	}
	if d.lane == d.main {
		d.sides.pending = false
	}
	return nil
}

// bindBLAS moves the cuBLAS handle to the current lane: its stream and
// its workspace (cublasSetStream resets the workspace, so both are set).
// Called entered.
func (d *Device) bindBLAS() error {
	if d.blasOn == d.lane {
		return nil
	}
	if err := d.blas.Bind(unsafe.Pointer(d.stream.C()), uintptr(d.blasWS), blasWorkspace); err != nil {
		return fmt.Errorf("%s: %w", d.Name(), err)
	}
	d.blasOn = d.lane
	return nil
}

// bindDNN moves the cuDNN handle to the current lane's stream. Called
// entered.
func (d *Device) bindDNN() error {
	if d.dnnOn == d.lane {
		return nil
	}
	if err := d.dnn.SetStream(unsafe.Pointer(d.stream.C())); err != nil {
		return fmt.Errorf("%s: %w", d.Name(), err)
	}
	d.dnnOn = d.lane
	return nil
}

// closeLanes frees both lanes' memory and the events. Called entered,
// the device idle.
func (d *Device) closeLanes() {
	for _, l := range []*lane{d.main, d.sides.l} {
		if l != nil {
			l.free()
		}
	}
	for _, e := range []*cu.Event{&d.sides.fork, &d.sides.done} {
		if *e != (cu.Event{}) {
			_ = cu.DestroyEvent(e)
		}
	}
}
