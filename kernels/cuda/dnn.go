//go:build cuda

package cuda

import (
	"fmt"
	"os"
	"unsafe"

	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/cuda/cudnn"
	"gorgonia.org/cu"
)

// DNNConvSetting is the environment variable that, set to 0, keeps
// convolutions on GoCaffe's own kernels when the node has cuDNN; by
// default they run on cuDNN when it is found (see UseDNN).
const DNNConvSetting = "GOCAFFE_CUDNN_CONV"

// DNNAlgoSetting is the environment variable that says how cuDNN's
// algorithms are chosen per convolution shape: auto (the default: trial
// runs for convolutions of cudnn.AutoFindMACs multiply-adds or more,
// cuDNN's heuristics below), fastest (each algorithm run once at set-up
// and the fastest kept), deterministic (the fastest of those that repeat
// bit for bit) or heuristic (the heuristics, deterministic algorithms
// first, no trial runs).
const DNNAlgoSetting = "GOCAFFE_CUDNN_ALGO"

// dnnMaxWorkspace bounds the workspace of the algorithms chosen.
const dnnMaxWorkspace = 256 << 20

// openDNN loads cuDNN when the node has it (the handle is made with the
// first convolution). Called with the context current.
func (d *Device) openDNN() error {
	d.dnnChoice = cudnn.Auto
	if v := os.Getenv(DNNAlgoSetting); v != "" {
		c, err := cudnn.ParseChoice(v)
		if err != nil {
			return fmt.Errorf("%s: %w", DNNAlgoSetting, err)
		}
		d.dnnChoice = c
	}
	d.dnnLib, d.dnnNote = cudnn.Load()
	d.useDNN = d.dnnLib != nil && os.Getenv(DNNConvSetting) != "0"
	if d.dnnLib != nil {
		if d.useDNN {
			d.dnnNote += fmt.Sprintf(": convolutions use it (%s algorithms)", d.dnnChoice)
		} else {
			d.dnnNote += fmt.Sprintf(": convolutions run on GoCaffe's own CUDA kernels (%s=0)", DNNConvSetting)
		}
	}
	return nil
}

// DNN is the one line that says whether cuDNN was found (which library,
// where) and whether convolutions use it, or where it was looked for.
func (d *Device) DNN() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dnnNote
}

// HasDNN reports whether cuDNN is loaded.
func (d *Device) HasDNN() bool { return d.dnnLib != nil }

// UseDNN sends convolutions to cuDNN (when loaded) or to GoCaffe's own
// kernels, and returns whether they go to cuDNN now.
func (d *Device) UseDNN(on bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.useDNN = on && d.dnnLib != nil
	return d.useDNN
}

// SetDNNChoice sets how the algorithms of convolution shapes planned from
// now on are chosen (GOCAFFE_CUDNN_ALGO's default otherwise).
func (d *Device) SetDNNChoice(c cudnn.Choice) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dnnChoice = c
}

// DNNChoice returns how new plans' algorithms are chosen.
func (d *Device) DNNChoice() cudnn.Choice {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dnnChoice
}

// UsesDNN reports whether convolutions go to cuDNN.
func (d *Device) UsesDNN() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.useDNN
}

// DNNConv is a cuDNN convolution on the device's stream, its workspace
// the device's.
type DNNConv struct {
	d *Device
	c *cudnn.Conv
}

// NewDNNConv describes s in elem-byte elements for cuDNN and chooses its
// forward algorithm (TF32 as the device allows it now; the backward ones
// on their first use), growing the device's cuDNN workspace if need be.
// Never while recording a graph.
func (d *Device) NewDNNConv(elem int, s cudnn.Shape) (*DNNConv, error) {
	d.enter()
	defer d.leave()
	if d.dnnLib == nil {
		return nil, fmt.Errorf("%s: %s", d.Name(), d.dnnNote)
	}
	if d.capturing {
		return nil, fmt.Errorf("%s: a cuDNN convolution would be set up while recording a graph", d.Name())
	}
	if d.dnn == nil {
		h, err := d.dnnLib.NewHandle(unsafe.Pointer(d.stream.C()))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Name(), err)
		}
		d.dnn, d.dnnOn = h, d.lane
	}
	if err := d.bindDNN(); err != nil {
		return nil, err
	}
	c, err := d.dnn.NewConv(elem, s, d.tf32, dnnMaxWorkspace, d.dnnChoice)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Name(), err)
	}
	if err := d.growDNNWorkspace(c.Workspace); err != nil {
		c.Destroy()
		return nil, err
	}
	return &DNNConv{d: d, c: c}, nil
}

// growDNNWorkspace makes every lane's cuDNN workspace at least bytes
// long: a plan's workspace is the most any of its chosen directions needs,
// and a direction chosen later on one lane (the bottom diff, on the main
// lane) must not leave the other lane (the weight gradient, beside) short
// when a recording replays it there. A recorded graph may hold an old
// workspace: it stays until Close. Called entered, never while capturing.
func (d *Device) growDNNWorkspace(bytes int) error {
	for _, l := range []*lane{d.main, d.sides.l} {
		if l == nil || bytes <= l.dnnWSBytes {
			continue
		}
		if d.capturing {
			return fmt.Errorf("%s: the cuDNN workspace would grow from %d to %d bytes while recording a graph", d.Name(), l.dnnWSBytes, bytes)
		}
		p, err := cu.MemAlloc(int64(bytes))
		if err != nil {
			return fmt.Errorf("%s: cuDNN workspace of %d bytes: %w", d.Name(), bytes, err)
		}
		if l.dnnWS != 0 {
			d.dnnOld = append(d.dnnOld, l.dnnWS)
		}
		l.dnnWS, l.dnnWSBytes = p, bytes
		d.live += int64(bytes)
		d.peak = max(d.peak, d.live)
	}
	return nil
}

// choose chooses dir's algorithm on its first use (the eager iteration
// before any recording: a test net never searches for backward
// algorithms), moves the handle to the current lane and grows the lanes'
// workspaces (never while recording: the eager pass has grown them).
// Called entered.
func (c *DNNConv) choose(dir cudnn.Direction) error {
	if err := c.d.bindDNN(); err != nil {
		return err
	}
	if !c.c.Chosen(dir) {
		if c.d.capturing {
			return fmt.Errorf("%s: a cuDNN convolution's %s algorithm would be chosen while recording a graph", c.d.Name(), dir)
		}
		if err := c.c.ChooseFor(dir); err != nil {
			return c.wrap(err)
		}
	}
	return c.d.growDNNWorkspace(c.c.Workspace)
}

// Algorithms names the algorithms chosen.
func (c *DNNConv) Algorithms() string { return c.c.Algorithms() }

// DNNCalls is how many cuDNN convolution calls were issued since Open.
func (d *Device) DNNCalls() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dnnCalls
}

// Forward overwrites y with the convolution of x by w, on the stream.
func (c *DNNConv) Forward(x, w, y Ptr) error {
	c.d.enter()
	defer c.d.leave()
	c.d.dnnCalls++
	if err := c.choose(cudnn.ForwardDir); err != nil {
		return err
	}
	return c.wrap(c.c.Forward(1, uintptr(x), uintptr(w), 0, uintptr(y), uintptr(c.d.dnnWS), c.d.dnnWSBytes))
}

// BackwardData overwrites dx with the gradient by the input, given dy.
func (c *DNNConv) BackwardData(dy, w, dx Ptr) error {
	c.d.enter()
	defer c.d.leave()
	c.d.dnnCalls++
	if err := c.choose(cudnn.BackwardDataDir); err != nil {
		return err
	}
	return c.wrap(c.c.BackwardData(1, uintptr(w), uintptr(dy), 0, uintptr(dx), uintptr(c.d.dnnWS), c.d.dnnWSBytes))
}

// BackwardFilter adds the gradient by the weights, given dy, to dw.
func (c *DNNConv) BackwardFilter(x, dy, dw Ptr) error {
	c.d.enter()
	defer c.d.leave()
	c.d.dnnCalls++
	if err := c.choose(cudnn.BackwardFilterDir); err != nil {
		return err
	}
	return c.wrap(c.c.BackwardFilter(1, uintptr(x), uintptr(dy), 1, uintptr(dw), uintptr(c.d.dnnWS), c.d.dnnWSBytes))
}

func (c *DNNConv) wrap(err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", c.d.Name(), err)
	}
	return nil
}

// closeDNN releases the handle and the workspaces. Called entered.
func (d *Device) closeDNN() {
	if d.dnn != nil {
		d.dnn.Destroy()
		d.dnn = nil
	}
	for _, p := range d.dnnOld {
		_ = cu.MemFree(p)
	}
	d.dnnOld = nil // the lanes' own workspaces go with them (closeLanes)
}

// convKey is a plan's shape, math and algorithm choice.
type convKey struct {
	s      kernels.ConvShape
	tf32   bool
	choice cudnn.Choice
	dnn    bool
	direct DirectMode
}

// convEntry is a made plan, or why there is none, and which directions
// run on the direct kernels (nil: none).
type convEntry struct {
	c      *DNNConv
	why    string
	choice *convChoice
}

// ConvPlan implements kernels.Convolver: cuDNN's convolution for s when
// the device sends convolutions to cuDNN, made once per shape and math
// (before recording: the eager iteration makes it), else nil and why.
//
// Directions of small shapes may run on GoCaffe's direct kernels instead
// (DirectConvSetting); with the setting on they also run without cuDNN,
// for shapes whose three directions they all take.
func (b *backend[T]) ConvPlan(s kernels.ConvShape) (kernels.ConvPlan[T], string) {
	d := b.g.D
	mode := d.DirectConv()
	useDNN := d.UsesDNN()
	if !useDNN && !(mode == DirectOn && directTakesAll(s, Size[T]())) {
		return nil, d.DNN()
	}
	key := convKey{s, d.TF32(), d.DNNChoice(), useDNN, mode}
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.convs[key]
	if !ok {
		if useDNN {
			g := s.Geom
			c, err := d.NewDNNConv(Size[T](), cudnn.Shape{N: s.N, C: s.C, H: s.H, W: s.W, K: s.K, Groups: s.Groups,
				KH: g.KH, KW: g.KW, SH: g.SH, SW: g.SW, PH: g.PH, PW: g.PW, DH: g.DH, DW: g.DW, OH: s.OH, OW: s.OW})
			e = convEntry{c: c}
			if err != nil {
				e.why = err.Error()
			}
		}
		if mode == DirectOn && (e.c != nil || directTakesAll(s, Size[T]())) ||
			mode == DirectAuto && e.c != nil && convMACs(s) <= directMaxMACs {
			e.choice = &convChoice{}
		}
		if b.convs == nil {
			b.convs = map[convKey]convEntry{}
		}
		b.convs[key] = e
	}
	switch {
	case e.choice != nil:
		return &mixedPlan[T]{b: b, s: s, mode: mode, dnn: e.c, choice: e.choice}, ""
	case e.c == nil:
		return nil, e.why
	}
	return &dnnPlan[T]{b: b, c: e.c}, ""
}

// convMACs is the multiply-adds of one pass of s.
func convMACs(s kernels.ConvShape) int {
	return s.N * s.K * s.OH * s.OW * (s.C / max(s.Groups, 1)) * s.Geom.KH * s.Geom.KW
}

// directTakesAll reports whether the direct kernels take all three
// directions of s.
func directTakesAll(s kernels.ConvShape, elem int) bool {
	return directTakes(s, elem, dirForward) && directTakes(s, elem, dirData) && directTakes(s, elem, dirFilter)
}

// dnnPlan is a DNNConv as a kernels.ConvPlan: errors are kept (GPU.Err).
type dnnPlan[T Float] struct {
	b *backend[T]
	c *DNNConv
}

func (p *dnnPlan[T]) Forward(x, w, y kernels.Vec[T]) {
	if ps, ok := p.b.ptrs(x, w, y); ok {
		p.b.g.keep(p.c.Forward(ps[0], ps[1], ps[2]))
	}
}

func (p *dnnPlan[T]) BackwardData(dy, w, dx kernels.Vec[T]) {
	if ps, ok := p.b.ptrs(dy, w, dx); ok {
		p.b.g.keep(p.c.BackwardData(ps[0], ps[1], ps[2]))
	}
}

func (p *dnnPlan[T]) BackwardFilter(x, dy, dw kernels.Vec[T]) {
	if ps, ok := p.b.ptrs(x, dy, dw); ok {
		p.b.g.keep(p.c.BackwardFilter(ps[0], ps[1], ps[2]))
	}
}
