//go:build cuda

package cuda

import (
	"fmt"
	"os"
	"slices"
	"unsafe"

	"github.com/gocaffe/gocaffe/kernels"
	"gorgonia.org/cu"
)

// DirectConvSetting is the environment variable that says when a
// convolution direction runs on GoCaffe's direct kernels (the tiled
// implicit GEMMs of src/conv_tile.cu where they take the shape, else the
// untiled ones of src/conv_direct.cu) instead of cuDNN's: auto (the faster
// of the two, each timed as a replayed graph at the direction's first use,
// for shapes of at most directMaxMACs; the default: on an H100 it took 2 or
// 3 of LeNet b64's 5 passes and cut its iteration from 198.5 to 184–186 µs),
// on (always where the kernels take the shape, cuDNN or not) or off.
const DirectConvSetting = "GOCAFFE_CUDA_DIRECT_CONV"

// DirectMode says when the direct convolution kernels run.
type DirectMode int

const (
	DirectAuto DirectMode = iota // timed against cuDNN at first use
	DirectOn                     // wherever they take the shape
	DirectOff                    // never
)

// defaultDirect is the mode without DirectConvSetting.
const defaultDirect = DirectAuto

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

// Limits of the untiled direct kernels: the weights a block stages in
// shared memory (8 channels' worth) and the kernel width the weight
// gradient keeps per thread. Limits of both: the shared memory a block
// may use without opting in, and, under auto, the size beyond which
// cuDNN's algorithms (tensor cores, tiled GEMMs) win without a trial:
// 2^30 multiply-adds (CIFAR-10 quick's conv2 at b100 has 655 M).
// directTrialRuns: the launches of each candidate recorded into the graph
// that auto times.
const (
	directChannels  = 8
	directShared    = 48 << 10
	directMaxKW     = 8
	directMaxMACs   = 1 << 30
	directTrialRuns = 20
)

// The tiled kernels (src/conv_tile.cu): the reduction step, the most
// positions a weight-gradient slice holds (its table: 16 KiB), and the
// blocks the weight gradient's slices aim for (counted in 64×64 tiles, so
// that the slices, and the summation order, depend on the shape alone).
const (
	tileBK          = 8
	tileMaxSlice    = 1024
	tileSliceBlocks = 256
)

// A forward pass or data gradient of fewer than tileSplitOutputs outputs
// (16 a thread: about 8 warps a multiprocessor of an H100) is split over
// its reduction into up to tileMaxSplits shares of at least tileMinSteps
// steps, summed by conv_tile_sum.
const (
	tileSplitOutputs = 1 << 19
	tileMaxSplits    = 16
	tileMinSteps     = 8
)

// tileSplits is how many shares the forward pass or data gradient of s
// is split into over its reduction (1: none), from the shape alone, so
// that the summation order, and the result, repeat on any GPU.
func (d *Device) tileSplits(s kernels.ConvShape, dir convDir, elem int) int {
	if d.tileSplitForce > 0 {
		return d.tileSplitForce
	}
	m, cols, red := tileGEMM(s, dir)
	n := min(ceilDiv(tileSplitOutputs, m*cols), ceilDiv(red, tileBK)/tileMinSteps, tileMaxSplits,
		maxSplitBytes/(m*cols*elem))
	return max(n, 1)
}

// tileCfg is a block shape of the tiled kernels: bm×bn outputs, bm·bn/16
// threads of 4×4.
type tileCfg struct{ bm, bn int }

// threads is the block size.
func (c tileCfg) threads() int { return c.bm * c.bn / 16 }

// static is the shared memory the kernel declares: two steps of both
// operands' tiles (A's rows padded by 4).
func (c tileCfg) static(elem int) int { return 2 * tileBK * ((c.bm+4)*elem + c.bn*elem) }

// tileGEMM is the product a tiled pass computes: out[m × cols] over a
// reduction of red (the weight gradient's: every image and position,
// before it is cut into slices).
func tileGEMM(s kernels.ConvShape, dir convDir) (m, cols, red int) {
	kk := s.Geom.KH * s.Geom.KW
	switch dir {
	case dirForward:
		return s.K, s.N * s.OH * s.OW, s.C * kk
	case dirData:
		return s.C, s.N * s.H * s.W, s.K * kk
	}
	return s.K, s.C * kk, s.N * s.OH * s.OW
}

// tileSlices cuts the weight gradient's reduction into slices of l
// positions (a multiple of 8, at most tileMaxSlice): enough slices for
// about tileSliceBlocks blocks, each at least 64 positions long.
func tileSlices(s kernels.ConvShape) (slices, l int) {
	m, cols, red := tileGEMM(s, dirFilter)
	tiles := ceilDiv(m, 64) * ceilDiv(cols, 64)
	slices = min(max(ceilDiv(tileSliceBlocks, tiles), 1), max(red/64, 1))
	l = ceilDiv(ceilDiv(red, slices), tileBK) * tileBK
	l = min(l, tileMaxSlice)
	return ceilDiv(red, l), l
}

// tileTable is the number of int4 entries in a tiled block's table.
func tileTable(s kernels.ConvShape, dir convDir) int {
	if dir == dirFilter {
		_, l := tileSlices(s)
		return l
	}
	_, _, red := tileGEMM(s, dir)
	return ceilDiv(red, tileBK) * tileBK
}

// tiledTakes reports whether the tiled kernels run direction dir of s in
// elem-byte elements: one group, the data gradient at stride 1 (its
// gather form), the table beside the largest tiles within directShared,
// the weight gradient's slices within maxSplitBytes (and a grid's 65535
// in z).
func tiledTakes(s kernels.ConvShape, elem int, dir convDir) bool {
	g := s.Geom
	if s.Groups != 1 || g.SH < 1 || g.SW < 1 || g.DH < 1 || g.DW < 1 {
		return false
	}
	if dir == dirData && (g.SH != 1 || g.SW != 1) {
		return false
	}
	if tileTable(s, dir)*16+(tileCfg{64, 64}).static(elem) > directShared {
		return false
	}
	if dir == dirFilter {
		n, _ := tileSlices(s)
		if n > 65535 || n > 1 && n*s.K*s.C*g.KH*g.KW*elem > maxSplitBytes {
			return false
		}
	}
	return true
}

// tilePick chooses the block shape for an m×cols product over slices:
// of the shapes that give every multiprocessor a block, the one with the
// least padding (ties: the larger block, fewer loads per multiply-add);
// if none does, the one with the most blocks (ties: the least padding).
// Any shape gives the same sums: each output is summed over its reduction
// in order by one thread.
func (d *Device) tilePick(m, cols, slices int) tileCfg {
	if d.tileForce.bm != 0 {
		return d.tileForce
	}
	var best tileCfg
	var bestArea, bestBlocks int
	for _, c := range []tileCfg{{64, 64}, {64, 32}, {32, 64}, {32, 32}} {
		rows, cs := ceilDiv(m, c.bm), ceilDiv(cols, c.bn)
		area, blocks := rows*c.bm*cs*c.bn, rows*cs*slices
		full, bestFull := blocks >= d.sms, bestBlocks >= d.sms
		better := best.bm == 0 ||
			full && (!bestFull || area < bestArea) ||
			!full && !bestFull && (blocks > bestBlocks || blocks == bestBlocks && area < bestArea)
		if better {
			best, bestArea, bestBlocks = c, area, blocks
		}
	}
	return best
}

// directTakes reports whether the direct kernels (tiled or not) run
// direction dir of s in elem-byte elements.
func directTakes(s kernels.ConvShape, elem int, dir convDir) bool {
	return tiledTakes(s, elem, dir) || untiledTakes(s, elem, dir)
}

// untiledTakes reports whether the untiled direct kernels run direction
// dir of s.
func untiledTakes(s kernels.ConvShape, elem int, dir convDir) bool {
	g := s.Geom
	if s.Groups != 1 || g.SH < 1 || g.SW < 1 || max(g.DH, 1) != g.DH || max(g.DW, 1) != g.DW {
		return false
	}
	if dir == dirFilter {
		return g.KW <= directMaxKW
	}
	return directStaged(s, dir)*elem <= directShared
}

// directStaged is how many weights an untiled forward (dirForward) or
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

// directArgs are the shape arguments every untiled direct kernel takes
// after its pointers (conv_direct_bwd_filter takes N before them).
func directArgs(s kernels.ConvShape) []arg {
	g := s.Geom
	return []arg{iarg(s.C), iarg(s.H), iarg(s.W), iarg(s.K), iarg(g.KH), iarg(g.KW), iarg(g.SH), iarg(g.SW),
		iarg(g.PH), iarg(g.PW), iarg(g.DH), iarg(g.DW), iarg(s.OH), iarg(s.OW)}
}

// directBlock is the block size of the untiled forward and data-gradient
// kernels: a thread per position, at most 256 a block.
func directBlock(positions int) int { return min((positions+31)/32*32, 256) }

// useTiles reports whether direction dir of s goes to the tiled kernels.
func (o Ops[T]) useTiles(s kernels.ConvShape, dir convDir) bool {
	return !o.D.noTile && tiledTakes(s, Size[T](), dir)
}

// DirectConvForward overwrites y with the convolution of x by w.
func (o Ops[T]) DirectConvForward(s kernels.ConvShape, x, w, y Ptr) error {
	if o.useTiles(s, dirForward) {
		return o.launchSplit(s, dirForward, w, x, y)
	}
	return o.launchStaged("conv_direct_fwd", s, dirForward, s.K, s.OH*s.OW, x, w, y)
}

// DirectConvBackwardData overwrites dx with the gradient by x, given dy.
func (o Ops[T]) DirectConvBackwardData(s kernels.ConvShape, dy, w, dx Ptr) error {
	if o.useTiles(s, dirData) {
		return o.launchSplit(s, dirData, w, dy, dx)
	}
	return o.launchStaged("conv_direct_bwd_data", s, dirData, s.C, s.H*s.W, dy, w, dx)
}

// launchStaged launches the untiled forward or data-gradient kernel: a
// block per image and 8 of its channels (of channels) and up to 256 of
// its positions, a thread per position, the block's weights in shared
// memory.
func (o Ops[T]) launchStaged(kernel string, s kernels.ConvShape, dir convDir, channels, positions int, in, w, out Ptr) error {
	bl := directBlock(positions)
	return o.D.launchShared(o.name(kernel), s.N*ceilDiv(channels, directChannels), ceilDiv(positions, bl), bl,
		directStaged(s, dir)*Size[T](), append([]arg{parg(in), parg(w), parg(out)}, directArgs(s)...)...)
}

// launchTile launches tiled pass dir: out = a·b as src/conv_tile.cu
// describes, over slices of l positions (the weight gradient) or slices
// shares of the reduction steps (the others; l 0).
func (o Ops[T]) launchTile(s kernels.ConvShape, dir convDir, a, b, out Ptr, slices, l int) error {
	m, cols, _ := tileGEMM(s, dir)
	c := o.D.tilePick(m, cols, slices)
	g := s.Geom
	name := fmt.Sprintf("conv_tile_%s_%dx%d", [...]string{"fwd", "data", "filter"}[dir], c.bm, c.bn)
	return o.D.launchWith(o.name(name), ceilDiv(cols, c.bn), ceilDiv(m, c.bm), slices, c.threads(), tileTable(s, dir)*16,
		parg(a), parg(b), parg(out), iarg(s.N), iarg(s.C), iarg(s.H), iarg(s.W), iarg(s.K), iarg(g.KH), iarg(g.KW),
		iarg(g.SH), iarg(g.SW), iarg(g.PH), iarg(g.PW), iarg(g.DH), iarg(g.DW), iarg(s.OH), iarg(s.OW), iarg(l))
}

// launchSplit runs tiled forward or data-gradient pass dir into out,
// through the workspace and conv_tile_sum when it is split.
func (o Ops[T]) launchSplit(s kernels.ConvShape, dir convDir, a, b, out Ptr) error {
	splits := o.D.tileSplits(s, dir, Size[T]())
	if splits == 1 {
		return o.launchTile(s, dir, a, b, out, 1, 0)
	}
	m, cols, _ := tileGEMM(s, dir)
	ws, err := o.D.tileWorkspace(splits * m * cols * Size[T]())
	if err != nil {
		return err
	}
	if err := o.launchTile(s, dir, a, b, ws, splits, 0); err != nil {
		return err
	}
	return o.tileSum(ws, out, splits, m*cols, false)
}

// tileSum launches conv_tile_sum: out (+)= the sum of slices pieces of n
// values at ws, in order.
func (o Ops[T]) tileSum(ws, out Ptr, slices, n int, add bool) error {
	a := 0
	if add {
		a = 1
	}
	return o.D.launch(o.name("conv_tile_sum"), ceilDiv(n, 32), 1, 256, parg(ws), parg(out), iarg(slices), iarg(n), iarg(a))
}

// DirectConvBackwardFilter adds the gradient by w, given x and dy, to dw.
func (o Ops[T]) DirectConvBackwardFilter(s kernels.ConvShape, x, dy, dw Ptr) error {
	if !o.useTiles(s, dirFilter) {
		return o.D.launch(o.name("conv_direct_bwd_filter"), s.K*s.C*s.Geom.KH, 1, 256,
			append([]arg{parg(x), parg(dy), parg(dw), iarg(s.N)}, directArgs(s)...)...)
	}
	slices, l := tileSlices(s)
	if slices == 1 {
		return o.launchTile(s, dirFilter, dy, x, dw, 1, l)
	}
	n := s.K * s.C * s.Geom.KH * s.Geom.KW
	ws, err := o.D.tileWorkspace(slices * n * Size[T]())
	if err != nil {
		return err
	}
	if err := o.launchTile(s, dirFilter, dy, x, ws, slices, l); err != nil {
		return err
	}
	return o.tileSum(ws, dw, slices, n, true)
}

// tileWorkspace returns at least bytes of device memory for a split tiled
// pass's partial sums, grown (never while recording) by the eager pass
// before it. A recorded graph may hold the old one: it stays until Close.
func (d *Device) tileWorkspace(bytes int) (Ptr, error) {
	d.enter()
	defer d.leave()
	if bytes <= d.tileWSBytes {
		return d.tileWS, nil
	}
	if d.capturing {
		return 0, fmt.Errorf("%s: the tiled convolution workspace would grow from %d to %d bytes while recording a graph", d.Name(), d.tileWSBytes, bytes)
	}
	p, err := cu.MemAlloc(int64(bytes))
	if err != nil {
		return 0, fmt.Errorf("%s: tiled convolution workspace of %d bytes: %w", d.Name(), bytes, err)
	}
	if d.tileWS != 0 {
		d.tileOld = append(d.tileOld, d.tileWS)
	}
	d.tileWS, d.tileWSBytes = p, bytes
	d.live += int64(bytes)
	d.peak = max(d.peak, d.live)
	return p, nil
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
		g.D.noteDirect(DirectDecision{Shape: p.s, Elem: Size[T](), Mode: p.mode, Pass: dir.String(),
			Direct: c.direct[dir], Why: c.why[dir]})
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
// auto, with cuDNN, both are timed as a replayed iteration runs them:
// each recorded directTrialRuns times into a CUDA graph, the graph's
// replay timed (never while recording a graph: then cuDNN's is kept).
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
	ms, err := p.b.g.D.timeGraphs(directTrialRuns, func() error { return dnn(dst) }, func() error { return direct(dst) })
	if err != nil {
		return false, fmt.Sprintf("%s: timing failed, cuDNN kept: %v", dir, err)
	}
	return ms[1] < ms[0], fmt.Sprintf("%s: cuDNN %.1f µs, direct %.1f µs (replayed)", dir, ms[0]*1e3, ms[1]*1e3)
}

// timeGraphs runs each of fns once (which chooses algorithms and grows
// workspaces, as an eager iteration does before recording), records runs
// calls of it into a CUDA graph, and times the graph's replays: the mean
// milliseconds per call, as a replayed iteration pays them (no host
// launch cost). It synchronises with the device: never while recording.
func (d *Device) timeGraphs(runs int, fns ...func() error) ([]float64, error) {
	ms := make([]float64, len(fns))
	for i, fn := range fns {
		if err := fn(); err != nil {
			return nil, err
		}
		g, err := d.Capture(func() error {
			for range runs {
				if err := fn(); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		t, err := d.timeGraph(g, directTrialReplays)
		g.Destroy()
		if err != nil {
			return nil, err
		}
		ms[i] = t / float64(runs*directTrialReplays)
	}
	return ms, nil
}

// directTrialReplays is how many replays of a trial graph are timed (after
// one untimed).
const directTrialReplays = 3

// timeGraph replays g once, then replays times between two events, and
// returns the milliseconds between them.
func (d *Device) timeGraph(g *Graph, replays int) (float64, error) {
	if err := g.Launch(); err != nil {
		return 0, err
	}
	d.enter()
	defer d.leave()
	var evs [2]cu.Event
	defer func() {
		for i := range evs {
			if evs[i] != (cu.Event{}) {
				_ = cu.DestroyEvent(&evs[i])
			}
		}
	}()
	wrap := func(err error) error { return fmt.Errorf("%s: timing: %w", d.Name(), err) }
	for i := range evs {
		var err error
		if evs[i], err = cu.MakeEvent(cu.DefaultEvent); err != nil {
			return 0, wrap(err)
		}
	}
	if err := evs[0].Record(d.stream); err != nil {
		return 0, wrap(err)
	}
	for range replays {
		if err := g.ex.Launch(unsafe.Pointer(d.stream.C())); err != nil {
			return 0, wrap(err)
		}
	}
	if err := evs[1].Record(d.stream); err != nil {
		return 0, wrap(err)
	}
	if err := evs[1].Synchronize(); err != nil {
		return 0, wrap(err)
	}
	t, err := evs[0].Elapsed(evs[1])
	if err != nil {
		return 0, wrap(err)
	}
	return t, nil
}

// DirectDecision is how one pass of one convolution shape was decided:
// on the direct kernels or not, and the timings or the reason behind it.
type DirectDecision struct {
	Shape  kernels.ConvShape
	Elem   int        // bytes an element: 4 for float32, 8 for float64
	Mode   DirectMode // the setting it was decided under
	Pass   string     // forward, backward data or backward filter
	Direct bool
	Why    string
}

// noteDirect records a direction decided, on the direct kernels or not.
func (d *Device) noteDirect(dd DirectDecision) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.directLog = append(d.directLog, dd)
}

// DirectConvChoices is how many convolution directions were decided since
// Open, and how many of them run on the direct kernels.
func (d *Device) DirectConvChoices() (direct, decided int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dd := range d.directLog {
		if dd.Direct {
			direct++
		}
	}
	return direct, len(d.directLog)
}

// DirectConvDecisions returns every convolution direction decided since
// Open, in the order they were decided.
func (d *Device) DirectConvDecisions() []DirectDecision {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.directLog)
}

// Capturing reports whether a graph is being recorded.
func (d *Device) Capturing() bool {
	d.enter()
	defer d.leave()
	return d.capturing
}
