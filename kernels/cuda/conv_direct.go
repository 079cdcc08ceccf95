//go:build cuda

package cuda

import (
	"fmt"
	"os"

	"github.com/gocaffe/gocaffe/kernels"
	"gorgonia.org/cu"
)

// DirectConvSetting is the environment variable that says when a
// convolution direction runs on GoCaffe's direct kernels (src/conv_direct.cu)
// instead of cuDNN's: auto (the faster of the two, timed at the
// direction's first use, for shapes of at most directMaxMACs), on (always
// where the kernels take the shape, cuDNN or not) or off (the default:
// on an H100 they lost to cuDNN at LeNet b64, and auto's eager timings,
// which count cuDNN's host launch cost, misjudged two of its passes).
const DirectConvSetting = "GOCAFFE_CUDA_DIRECT_CONV"

// DirectMode says when the direct convolution kernels run.
type DirectMode int

const (
	DirectAuto DirectMode = iota // timed against cuDNN at first use
	DirectOn                     // wherever they take the shape
	DirectOff                    // never
)

// defaultDirect is the mode without DirectConvSetting.
const defaultDirect = DirectOff

func (m DirectMode) String() string {
	return [...]string{"auto", "on", "off"}[m]
}

// parseDirectMode reads DirectConvSetting's value.
func parseDirectMode(v string) (DirectMode, error) {
	switch v {
	case "":
		return defaultDirect, nil
	case "auto":
		return DirectAuto, nil
	case "on", "1":
		return DirectOn, nil
	case "off", "0":
		return DirectOff, nil
	}
	return DirectAuto, fmt.Errorf("%s=%q: want auto, on or off", DirectConvSetting, v)
}

// directModeFromEnv is the device's mode at start.
func directModeFromEnv() (DirectMode, error) { return parseDirectMode(os.Getenv(DirectConvSetting)) }

// SetDirectConv sets when convolution shapes planned from now on use the
// direct kernels.
func (d *Device) SetDirectConv(m DirectMode) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.direct = m
}

// DirectConv returns when new plans use the direct kernels.
func (d *Device) DirectConv() DirectMode {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.direct
}

// Limits of the direct kernels: the weights a block stages in shared
// memory (8 channels' worth), the kernel width the weight gradient keeps
// per thread, and, under auto, the size beyond which cuDNN's algorithms
// (tensor cores, tiled GEMMs) win without a trial: 2^28 multiply-adds.
const (
	directChannels  = 8
	directShared    = 48 << 10
	directMaxKW     = 8
	directMaxMACs   = 1 << 28
	directTrialRuns = 5
)

// directTakes reports whether the direct kernels run direction dir of s
// in elem-byte elements.
func directTakes(s kernels.ConvShape, elem int, dir convDir) bool {
	g := s.Geom
	if s.Groups != 1 || g.SH < 1 || g.SW < 1 || max(g.DH, 1) != g.DH || max(g.DW, 1) != g.DW {
		return false
	}
	if dir == dirFilter {
		return g.KW <= directMaxKW
	}
	return directStaged(s, dir)*elem <= directShared
}

// directStaged is how many weights a forward (dirForward) or
// data-gradient (dirData) block stages in shared memory: those of 8
// output channels (C·KH·KW each) or of 8 input channels (K·KH·KW each).
func directStaged(s kernels.ConvShape, dir convDir) int {
	per := s.C
	if dir == dirData {
		per = s.K
	}
	return per * s.Geom.KH * s.Geom.KW * directChannels
}

// convDir is one of a convolution's three passes.
type convDir int

const (
	dirForward convDir = iota
	dirData
	dirFilter
)

func (d convDir) String() string {
	return [...]string{"forward", "backward data", "backward filter"}[d]
}

// directArgs are the shape arguments every direct kernel takes after its
// pointers (conv_direct_bwd_filter takes N before them).
func directArgs(s kernels.ConvShape) []arg {
	g := s.Geom
	return []arg{iarg(s.C), iarg(s.H), iarg(s.W), iarg(s.K), iarg(g.KH), iarg(g.KW), iarg(g.SH), iarg(g.SW),
		iarg(g.PH), iarg(g.PW), iarg(g.DH), iarg(g.DW), iarg(s.OH), iarg(s.OW)}
}

// directBlock is the block size of the forward and data-gradient kernels:
// a thread per position, at most 256 a block.
func directBlock(positions int) int { return min((positions+31)/32*32, 256) }

// DirectConvForward overwrites y with the convolution of x by w.
func (o Ops[T]) DirectConvForward(s kernels.ConvShape, x, w, y Ptr) error {
	return o.launchStaged("conv_direct_fwd", s, dirForward, s.K, s.OH*s.OW, x, w, y)
}

// DirectConvBackwardData overwrites dx with the gradient by x, given dy.
func (o Ops[T]) DirectConvBackwardData(s kernels.ConvShape, dy, w, dx Ptr) error {
	return o.launchStaged("conv_direct_bwd_data", s, dirData, s.C, s.H*s.W, dy, w, dx)
}

// launchStaged launches the forward or data-gradient kernel: a block per
// image and 8 of its channels (of channels) and up to 256 of its
// positions, a thread per position, the block's weights in shared memory.
func (o Ops[T]) launchStaged(kernel string, s kernels.ConvShape, dir convDir, channels, positions int, in, w, out Ptr) error {
	bl := directBlock(positions)
	return o.D.launchShared(o.name(kernel), s.N*ceilDiv(channels, directChannels), ceilDiv(positions, bl), bl,
		directStaged(s, dir)*Size[T](), append([]arg{parg(in), parg(w), parg(out)}, directArgs(s)...)...)
}

// DirectConvBackwardFilter adds the gradient by w, given x and dy, to dw.
func (o Ops[T]) DirectConvBackwardFilter(s kernels.ConvShape, x, dy, dw Ptr) error {
	return o.D.launch(o.name("conv_direct_bwd_filter"), s.K*s.C*s.Geom.KH, 1, 256,
		append([]arg{parg(x), parg(dy), parg(dw), iarg(s.N)}, directArgs(s)...)...)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// convChoice is, per direction, whether a plan's shape runs on the direct
// kernels: decided once at the direction's first use and shared by every
// plan of the shape, so that two nets of one shape compute alike.
type convChoice struct {
	decided [3]bool
	direct  [3]bool
	why     [3]string // the timings that decided it, for the log
}

// mixedPlan runs each direction of one shape on cuDNN (dnn, nil without
// it) or the direct kernels, as its choice says.
type mixedPlan[T Float] struct {
	b      *backend[T]
	s      kernels.ConvShape
	mode   DirectMode
	dnn    *DNNConv
	choice *convChoice
}

func (p *mixedPlan[T]) Forward(x, w, y kernels.Vec[T]) {
	if ps, ok := p.b.ptrs(x, w, y); ok {
		p.run(dirForward, ps[2], false,
			func(out Ptr) error { return p.dnn.Forward(ps[0], ps[1], out) },
			func(out Ptr) error { return p.b.o.DirectConvForward(p.s, ps[0], ps[1], out) })
	}
}

func (p *mixedPlan[T]) BackwardData(dy, w, dx kernels.Vec[T]) {
	if ps, ok := p.b.ptrs(dy, w, dx); ok {
		p.run(dirData, ps[2], false,
			func(out Ptr) error { return p.dnn.BackwardData(ps[0], ps[1], out) },
			func(out Ptr) error { return p.b.o.DirectConvBackwardData(p.s, ps[0], ps[1], out) })
	}
}

func (p *mixedPlan[T]) BackwardFilter(x, dy, dw kernels.Vec[T]) {
	if ps, ok := p.b.ptrs(x, dy, dw); ok {
		p.run(dirFilter, ps[2], true,
			func(out Ptr) error { return p.dnn.BackwardFilter(ps[0], ps[1], out) },
			func(out Ptr) error { return p.b.o.DirectConvBackwardFilter(p.s, ps[0], ps[1], out) })
	}
}

// run runs direction dir into out by the library's call or the direct
// one, choosing first if this is the direction's first use. adds: the
// call adds to out (trial runs then write to scratch memory).
func (p *mixedPlan[T]) run(dir convDir, out Ptr, adds bool, dnn, direct func(Ptr) error) {
	g := p.b.g
	p.b.mu.Lock()
	c := p.choice
	if !c.decided[dir] {
		c.direct[dir], c.why[dir] = p.choose(dir, out, adds, dnn, direct)
		c.decided[dir] = true
		g.D.countDirect(c.direct[dir])
	}
	useDirect := c.direct[dir]
	p.b.mu.Unlock()
	if useDirect {
		g.keep(direct(out))
	} else {
		g.keep(dnn(out))
	}
}

// choose decides whether direction dir runs on the direct kernels. Under
// auto, with cuDNN, both are timed (never while recording a graph: then
// cuDNN's is kept).
func (p *mixedPlan[T]) choose(dir convDir, out Ptr, adds bool, dnn, direct func(Ptr) error) (bool, string) {
	takes := directTakes(p.s, Size[T](), dir)
	switch {
	case !takes:
		return false, "the direct kernels do not take the shape"
	case p.dnn == nil || p.mode == DirectOn:
		return true, DirectConvSetting + "=on"
	case p.b.g.D.Capturing():
		return false, "first used while recording"
	}
	dst := out
	if adds {
		bytes := p.s.K * p.s.C * p.s.Geom.KH * p.s.Geom.KW * Size[T]()
		scratch, err := p.b.g.D.Alloc(bytes)
		if err != nil {
			return false, err.Error()
		}
		defer p.b.g.D.Free(scratch)
		dst = scratch
	}
	ms, err := p.b.g.D.timeRuns(directTrialRuns, func() error { return dnn(dst) }, func() error { return direct(dst) })
	if err != nil {
		p.b.g.keep(err)
		return false, err.Error()
	}
	return ms[1] < ms[0], fmt.Sprintf("%s: cuDNN %.1f µs, direct %.1f µs", dir, ms[0]*1e3, ms[1]*1e3)
}

// timeRuns runs each of fns once to warm up, then runs times in a row
// between two events, and returns each one's mean milliseconds per run.
// It synchronises with the device: never while recording.
func (d *Device) timeRuns(runs int, fns ...func() error) (ms []float64, err error) {
	evs := make([]cu.Event, len(fns)+1)
	// Event calls run with the context current (entered); fns enter
	// themselves.
	inCtx := func(f func() error) error {
		d.enter()
		defer d.leave()
		if err := f(); err != nil {
			return fmt.Errorf("%s: timing: %w", d.Name(), err)
		}
		return nil
	}
	defer inCtx(func() error {
		for i := range evs {
			if evs[i] != (cu.Event{}) {
				_ = cu.DestroyEvent(&evs[i])
			}
		}
		return nil
	})
	if err := inCtx(func() (err error) {
		for i := range evs {
			if evs[i], err = cu.MakeEvent(cu.DefaultEvent); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for _, fn := range fns {
		if err := fn(); err != nil {
			return nil, err
		}
	}
	if err := inCtx(func() error { return evs[0].Record(d.stream) }); err != nil {
		return nil, err
	}
	for i, fn := range fns {
		for range runs {
			if err := fn(); err != nil {
				return nil, err
			}
		}
		if err := inCtx(func() error { return evs[i+1].Record(d.stream) }); err != nil {
			return nil, err
		}
	}
	ms = make([]float64, len(fns))
	err = inCtx(func() error {
		if err := evs[len(fns)].Synchronize(); err != nil {
			return err
		}
		for i := range fns {
			t, err := evs[i].Elapsed(evs[i+1])
			if err != nil {
				return err
			}
			ms[i] = t / float64(runs)
		}
		return nil
	})
	return ms, err
}

// countDirect counts a direction decided, on the direct kernels or not.
func (d *Device) countDirect(direct bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.directDecided++
	if direct {
		d.directChosen++
	}
}

// DirectConvChoices is how many convolution directions were decided since
// Open, and how many of them run on the direct kernels.
func (d *Device) DirectConvChoices() (direct, decided int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.directChosen, d.directDecided
}

// Capturing reports whether a graph is being recorded.
func (d *Device) Capturing() bool {
	d.enter()
	defer d.leave()
	return d.capturing
}
