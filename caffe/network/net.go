package network

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels"
)

// Option configures New.
type Option func(*options)

type options struct {
	seed      uint64
	seeded    bool
	noFillers bool
	noFusion  bool
	// shapesOnly: the net is built for its shapes (EstimateMemory); its
	// params get no contiguous buffers, so nothing is allocated for them.
	shapesOnly bool
	device     kernels.Device
}

// WithDevice makes every layer of the net compute on d (default the CPU).
func WithDevice(d kernels.Device) Option { return func(o *options) { o.device = d } }

// WithSeed makes weight initialisation and layer randomness (dropout)
// repeatable: each layer draws from its own source, derived from seed and
// the layer's name, so equal names get equal weights in a train and a test
// net. Without it the seed is random, as with Caffe's random_seed -1.
func WithSeed(seed uint64) Option {
	return func(o *options) { o.seed, o.seeded = seed, true }
}

// WithoutFillers replaces every filler in the net with a constant 0, for
// shape inference and for nets whose weights are loaded afterwards.
func WithoutFillers() Option { return func(o *options) { o.noFillers = true } }

// ShapesOnly builds a net for its shapes and counts only: fillers are not
// run (WithoutFillers) and the params get no contiguous buffers, so
// building it allocates nothing for its parameters. Such a net does not
// train or run.
func ShapesOnly() Option { return func(o *options) { o.noFillers, o.shapesOnly = true, true } }

// ParamPropagator is implemented by layers that can skip computing the
// gradient of some of their parameter blobs (lr_mult 0). The net tells
// them which gradients it wants after setup.
type ParamPropagator interface {
	SetParamPropagateDown(param int, propagate bool)
}

// Hooks are called around each layer's Forward and Backward (for timing
// and debugging); nil fields are skipped.
type Hooks struct {
	BeforeForward, AfterForward   func(layer int)
	BeforeBackward, AfterBackward func(layer int)
}

// Net is a Caffe net built for one NetState, computing in T.
type Net[T blob.Float] struct {
	graph   *Graph
	layers  []layer.Layer[T]
	blobs   []*blob.Blob[T]
	bottoms [][]*blob.Blob[T]
	tops    [][]*blob.Blob[T]
	loss    [][]float32
	plan    BackwardPlan
	params  []*blob.Blob[T]
	table   *ParamTable
	hooks   Hooks
	device  kernels.Device
	// deferLoss leaves the loss tops unread in ForwardLayer (see
	// SetDeferLoss).
	deferLoss bool
	placed    []layer.Placement
	// paramBuf and gradBuf hold every learnable param's data and diff,
	// one after another in learnable order (segs).
	paramBuf, gradBuf []T
	segs              []ParamSegment
	// paramDev and gradDev are the same buffers in a device backend's
	// memory, made on first use (ParamBufferOn, GradBufferOn); devOf is
	// that backend.
	paramDev, gradDev kernels.Vec[T]
	devOf             kernels.Backend[T]
	// fusedFwd marks the layers whose forward pass the layer before them
	// does (fuseReLUs); ForwardLayer skips them.
	fusedFwd []bool
	// sources are the data sources attached by SetSource, by layer index,
	// for CloseSources.
	sources map[int]layer.BatchSource[T]
}

// New builds the net that param describes for state (state overrides the
// net's own state field by field; nil keeps it), with layers from reg:
// layers are filtered by their include/exclude rules, splits inserted,
// bottoms and tops wired, each layer set up and reshaped (shape inference
// only: activations are not allocated until the first Forward), params
// shared by name and the backward pass planned.
func New[T blob.Float](param *caffepb.NetParameter, state *caffepb.NetState, reg *layer.Registry, opts ...Option) (*Net[T], error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if !o.seeded {
		o.seed = rand.Uint64()
	}
	ctx := layer.Context{Device: o.device}
	o.device = ctx.DeviceOrCPU()
	if reg == nil {
		return nil, fmt.Errorf("net %q: no layer registry", param.GetName())
	}
	prepared, err := Prepare(param, state)
	if err != nil {
		return nil, err
	}
	if o.noFillers {
		for _, lp := range prepared.Layer {
			zeroFillers(lp.ProtoReflect())
		}
	}
	// Build the user's layers first: whether a layer is a loss layer (and
	// so has a default loss weight) decides where splits go.
	built := make([]layer.Layer[T], len(prepared.Layer))
	placed := make([]layer.Placement, len(prepared.Layer))
	for i, lp := range prepared.Layer {
		l, pl, err := newLayer[T](reg, lp, o.seed, o.device)
		if err != nil {
			return nil, fmt.Errorf("net %q: %w", param.GetName(), err)
		}
		if _, ok := l.(layer.LossLayer); ok {
			SetDefaultLossWeights(lp)
		}
		built[i] = l
		placed[i] = pl
	}
	g, origin, err := wire(prepared)
	if err != nil {
		return nil, err
	}
	n := &Net[T]{graph: g, device: o.device}
	for range g.BlobNames {
		n.blobs = append(n.blobs, blob.New[T]())
	}
	shapes := make([][][]int, len(g.Layers))
	info := make([]LayerInfo, len(g.Layers))
	for i, lp := range g.Layers {
		var l layer.Layer[T]
		var pl layer.Placement
		if origin[i] >= 0 {
			l, pl = built[origin[i]], placed[origin[i]]
		} else if l, pl, err = newLayer[T](reg, lp, o.seed, o.device); err != nil {
			return nil, fmt.Errorf("net %q: %w", g.Name, err)
		}
		n.layers = append(n.layers, l)
		n.placed = append(n.placed, pl)
		n.bottoms = append(n.bottoms, n.pick(g.Bottoms[i]))
		n.tops = append(n.tops, n.pick(g.Tops[i]))
		if err := n.setupLayer(i); err != nil {
			return nil, fmt.Errorf("net %q: %w", g.Name, err)
		}
		w, err := LossWeights(lp)
		if err != nil {
			return nil, fmt.Errorf("net %q: %w", g.Name, err)
		}
		n.loss = append(n.loss, w)
		for _, b := range l.Blobs() {
			shapes[i] = append(shapes[i], append([]int(nil), b.Shape()...))
		}
		info[i].LossWeights = w
		if gate, ok := l.(layer.ForceBackwardGate); ok {
			info[i].AllowForceBackward = gate.AllowForceBackward
		}
	}
	for i, lp := range g.Layers {
		if lp.GetType() == "BatchNorm" {
			if err := fixBatchNormSpecs(lp, len(shapes[i])); err != nil {
				return nil, fmt.Errorf("net %q: %w", g.Name, err)
			}
		}
	}
	if n.table, err = ShareParams(g, shapes); err != nil {
		return nil, fmt.Errorf("net %q: %w", g.Name, err)
	}
	for _, ref := range n.table.Refs {
		n.params = append(n.params, n.layers[ref.Layer].Blobs()[ref.Index])
	}
	for id, owner := range n.table.Owners {
		if owner < 0 {
			continue
		}
		if err := n.params[id].ShareData(n.params[owner]); err != nil {
			return nil, fmt.Errorf("net %q: layer %q: %w", g.Name, g.Layers[n.table.Refs[id].Layer].GetName(), err)
		}
		if err := n.params[id].ShareDiff(n.params[owner]); err != nil {
			return nil, fmt.Errorf("net %q: layer %q: %w", g.Name, g.Layers[n.table.Refs[id].Layer].GetName(), err)
		}
	}
	if !o.shapesOnly {
		n.layoutParams()
	}
	for i := range g.Layers {
		info[i].ParamNeedsBackward = n.table.NeedsBackward[i]
	}
	n.plan = PlanBackward(g, info)
	for i, l := range n.layers {
		if pp, ok := l.(ParamPropagator); ok {
			for pi, b := range n.plan.Params[i] {
				pp.SetParamPropagateDown(pi, b)
			}
		}
	}
	n.fusedFwd = make([]bool, len(n.layers))
	if !o.noFusion {
		n.fuseReLUs()
		n.fuseAccuracies()
	}
	return n, nil
}

// fixBatchNormSpecs applies Caffe's BatchNorm rule: its statistics (mean,
// variance, scale factor) are not learned, so blobs without a ParamSpec get
// lr_mult 0 and an explicit non-zero lr_mult is an error.
func fixBatchNormSpecs(lp *caffepb.LayerParameter, blobs int) error {
	for i := range blobs {
		if i == len(lp.Param) {
			lp.Param = append(lp.Param, &caffepb.ParamSpec{LrMult: proto.Float32(0)})
		} else if lp.Param[i].GetLrMult() != 0 {
			return fmt.Errorf("layer %q (BatchNorm): param %d has lr_mult %g: batch normalization statistics cannot be learned parameters (use lr_mult 0)", lp.GetName(), i, lp.Param[i].GetLrMult())
		}
	}
	return nil
}

func (n *Net[T]) pick(ids []int) []*blob.Blob[T] {
	out := make([]*blob.Blob[T], len(ids))
	for i, id := range ids {
		out[i] = n.blobs[id]
	}
	return out
}

func (n *Net[T]) setupLayer(i int) error {
	lp, l := n.graph.Layers[i], n.layers[i]
	if c, ok := l.(layer.BlobCounts); ok {
		minB, maxB, minT, maxT := c.BlobCounts()
		if err := checkCount("bottom", len(n.bottoms[i]), minB, maxB); err != nil {
			return fmt.Errorf("layer %q (%s): %w", lp.GetName(), lp.GetType(), err)
		}
		if err := checkCount("top", len(n.tops[i]), minT, maxT); err != nil {
			return fmt.Errorf("layer %q (%s): %w", lp.GetName(), lp.GetType(), err)
		}
	}
	if err := l.Setup(n.bottoms[i], n.tops[i]); err != nil {
		return fmt.Errorf("layer %q (%s): setup: %w", lp.GetName(), lp.GetType(), err)
	}
	if err := l.Reshape(n.bottoms[i], n.tops[i]); err != nil {
		return fmt.Errorf("layer %q (%s): reshape: %w", lp.GetName(), lp.GetType(), err)
	}
	if err := n.checkTopSizes(i); err != nil {
		return fmt.Errorf("layer %q (%s): %w", lp.GetName(), lp.GetType(), err)
	}
	return nil
}

// checkTopSizes reports a top of layer i whose shape has more than
// blob.MaxCount elements (Blob.Count would have wrapped), naming the top.
func (n *Net[T]) checkTopSizes(i int) error {
	for k, b := range n.tops[i] {
		if err := blob.CheckCount(b.Shape()); err != nil {
			name := ""
			if k < len(n.graph.Layers[i].GetTop()) {
				name = fmt.Sprintf(" %q", n.graph.Layers[i].GetTop()[k])
			}
			return fmt.Errorf("top %d%s: %w", k, name, err)
		}
	}
	return nil
}

func checkCount(what string, n, lo, hi int) error {
	switch {
	case lo >= 0 && n < lo && lo == hi:
		return fmt.Errorf("takes exactly %d %s blob(s), has %d", lo, what, n)
	case hi >= 0 && n > hi && lo == hi:
		return fmt.Errorf("takes exactly %d %s blob(s), has %d", hi, what, n)
	case lo >= 0 && n < lo:
		return fmt.Errorf("takes at least %d %s blob(s), has %d", lo, what, n)
	case hi >= 0 && n > hi:
		return fmt.Errorf("takes at most %d %s blob(s), has %d", hi, what, n)
	}
	return nil
}

// newLayer constructs one layer with its own random source.
func newLayer[T blob.Float](reg *layer.Registry, lp *caffepb.LayerParameter, seed uint64, dev kernels.Device) (layer.Layer[T], layer.Placement, error) {
	h := fnv.New64a()
	h.Write([]byte(lp.GetName()))
	rng := rand.New(rand.NewPCG(seed, h.Sum64()))
	return layer.Build[T](reg, layer.Context{Param: lp, Phase: lp.GetPhase(), Rand: rng, Device: dev})
}

var fillerDesc = (&caffepb.FillerParameter{}).ProtoReflect().Descriptor()

// zeroFillers replaces every FillerParameter inside m with constant 0.
func zeroFillers(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		visit := func(sub protoreflect.Message) {
			if sub.Descriptor().FullName() == fillerDesc.FullName() {
				f := sub.Interface().(*caffepb.FillerParameter)
				proto.Reset(f)
				f.Type = proto.String("constant")
				return
			}
			zeroFillers(sub)
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				visit(l.Get(i).Message())
			}
		case fd.IsMap():
		default:
			visit(v.Message())
		}
		return true
	})
}

// Name returns the net's name.
func (n *Net[T]) Name() string { return n.graph.Name }

// Phase returns the phase the net was built for.
func (n *Net[T]) Phase() caffepb.Phase { return n.graph.Phase }

// Graph returns the net's wiring (read-only).
func (n *Net[T]) Graph() *Graph { return n.graph }

// LayerPlacement returns which implementation of layer i runs, and on
// which device.
func (n *Net[T]) LayerPlacement(i int) layer.Placement { return n.placed[i] }

// Layers returns the layers in execution order (split layers included).
func (n *Net[T]) Layers() []layer.Layer[T] { return n.layers }

// LayerNames returns the layer names in execution order.
func (n *Net[T]) LayerNames() []string {
	out := make([]string, len(n.graph.Layers))
	for i, lp := range n.graph.Layers {
		out[i] = lp.GetName()
	}
	return out
}

// LayerParams returns the layer definitions in execution order, as built
// (filtered, splits inserted, phase set). The caller must not modify them.
func (n *Net[T]) LayerParams() []*caffepb.LayerParameter { return n.graph.Layers }

// LayerIndex returns the index of the layer called name, or -1.
func (n *Net[T]) LayerIndex(name string) int {
	for i, lp := range n.graph.Layers {
		if lp.GetName() == name {
			return i
		}
	}
	return -1
}

// LayerByName returns the layer called name, or nil.
func (n *Net[T]) LayerByName(name string) layer.Layer[T] {
	if i := n.LayerIndex(name); i >= 0 {
		return n.layers[i]
	}
	return nil
}

// Blobs returns every activation blob, indexed by blob id.
func (n *Net[T]) Blobs() []*blob.Blob[T] { return n.blobs }

// BlobNames returns the blob names, indexed by blob id.
func (n *Net[T]) BlobNames() []string { return n.graph.BlobNames }

// BlobByName returns the activation blob called name, or nil.
func (n *Net[T]) BlobByName(name string) *blob.Blob[T] {
	if i := n.graph.BlobIndex(name); i >= 0 {
		return n.blobs[i]
	}
	return nil
}

// Bottoms returns layer i's bottom blobs.
func (n *Net[T]) Bottoms(i int) []*blob.Blob[T] { return n.bottoms[i] }

// Tops returns layer i's top blobs.
func (n *Net[T]) Tops(i int) []*blob.Blob[T] { return n.tops[i] }

// TopLossWeights returns the loss weight of each of layer i's tops.
func (n *Net[T]) TopLossWeights(i int) []float32 { return n.loss[i] }

// LayerNeedsBackward reports whether Backward runs layer i.
func (n *Net[T]) LayerNeedsBackward(i int) bool { return n.plan.Layer[i] }

// BottomNeedsBackward returns the propagate_down flags of layer i.
func (n *Net[T]) BottomNeedsBackward(i int) []bool { return n.plan.Bottom[i] }

// InputBlobs returns the tops of the net's Input layers, with their names.
func (n *Net[T]) InputBlobs() ([]*blob.Blob[T], []string) {
	return n.pick(n.graph.Inputs), n.names(n.graph.Inputs)
}

// OutputBlobs returns the blobs no layer consumes (losses, accuracies,
// predictions), sorted by name as Caffe lists them.
func (n *Net[T]) OutputBlobs() []*blob.Blob[T] { return n.pick(n.graph.Outputs) }

// OutputBlobNames returns the names of OutputBlobs, in the same order.
func (n *Net[T]) OutputBlobNames() []string { return n.names(n.graph.Outputs) }

// OutputLossWeights returns the loss weight of each output blob (0 for
// outputs that are not losses), in OutputBlobs order.
func (n *Net[T]) OutputLossWeights() []float32 {
	out := make([]float32, len(n.graph.Outputs))
	for k, id := range n.graph.Outputs {
		for i, tops := range n.graph.Tops {
			for ti, t := range tops {
				if t == id {
					out[k] = n.loss[i][ti] // the last writer wins, as in Caffe
				}
			}
		}
	}
	return out
}

func (n *Net[T]) names(ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = n.graph.BlobNames[id]
	}
	return out
}

// Params returns every layer's parameter blobs in net order, shared ones
// included (those alias their owner's storage).
func (n *Net[T]) Params() []*blob.Blob[T] { return n.params }

// ParamTable returns the net's parameter-sharing table.
func (n *Net[T]) ParamTable() *ParamTable { return n.table }

// LearnableParams returns the parameters a solver updates: one per owned
// blob, shared params counted once.
func (n *Net[T]) LearnableParams() []*blob.Blob[T] {
	out := make([]*blob.Blob[T], len(n.table.Learnable))
	for i, id := range n.table.Learnable {
		out[i] = n.params[id]
	}
	return out
}

// LearnableParamNames returns "layer/param" names for LearnableParams.
func (n *Net[T]) LearnableParamNames() []string {
	out := make([]string, len(n.table.Learnable))
	for i, id := range n.table.Learnable {
		ref := n.table.Refs[id]
		out[i] = n.graph.Layers[ref.Layer].GetName() + "/" + n.table.Names[id]
	}
	return out
}

// ParamLrMults returns each learnable param's lr_mult.
func (n *Net[T]) ParamLrMults() []float64 { return n.table.LrMult }

// ParamDecayMults returns each learnable param's decay_mult.
func (n *Net[T]) ParamDecayMults() []float64 { return n.table.DecayMult }

// SetHooks installs per-layer callbacks around Forward and Backward.
func (n *Net[T]) SetHooks(h Hooks) { n.hooks = h }

// FedLayers returns the names of the layers that take a data source
// (layer.Fed), in order.
func (n *Net[T]) FedLayers() []string {
	var out []string
	for i, l := range n.layers {
		if _, ok := l.(layer.Fed[T]); ok {
			out = append(out, n.graph.Layers[i].GetName())
		}
	}
	return out
}

// SetSource attaches src to the data layer called layerName.
func (n *Net[T]) SetSource(layerName string, src layer.BatchSource[T]) error {
	i := n.LayerIndex(layerName)
	if i < 0 {
		return fmt.Errorf("net %q: no layer %q to attach a data source to", n.graph.Name, layerName)
	}
	f, ok := n.layers[i].(layer.Fed[T])
	if !ok {
		return fmt.Errorf("net %q: layer %q (%s) does not take a data source", n.graph.Name, layerName, n.graph.Layers[i].GetType())
	}
	f.SetSource(src)
	if n.sources == nil {
		n.sources = map[int]layer.BatchSource[T]{}
	}
	n.sources[i] = src
	return nil
}

// CloseSources closes the attached data sources that hold something open
// (an io.Closer: a database's read transaction, a prefetching goroutine),
// once each; call it when the net reads no more batches. A source that a
// later SetSource replaced is the caller's to close.
func (n *Net[T]) CloseSources() error {
	var errs []error
	for i, src := range n.sources {
		if c, ok := src.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("net %q: closing the source of layer %q: %w", n.graph.Name, n.graph.Layers[i].GetName(), err))
			}
		}
	}
	n.sources = nil
	return errors.Join(errs...)
}

// Reshape runs every layer's Reshape in order, after input shapes changed.
func (n *Net[T]) Reshape() error {
	for i, l := range n.layers {
		if err := l.Reshape(n.bottoms[i], n.tops[i]); err != nil {
			return fmt.Errorf("net %q: layer %q: reshape: %w", n.graph.Name, n.graph.Layers[i].GetName(), err)
		}
		if err := n.checkTopSizes(i); err != nil {
			return fmt.Errorf("net %q: layer %q: %w", n.graph.Name, n.graph.Layers[i].GetName(), err)
		}
	}
	return nil
}

// ForwardLayer runs layer i's Forward and returns its weighted loss.
func (n *Net[T]) ForwardLayer(i int) (T, error) {
	if h := n.hooks.BeforeForward; h != nil {
		h(i)
	}
	if !n.FusedForward(i) { // else the layer before it did it (fuseReLUs)
		if err := n.layers[i].Forward(n.bottoms[i], n.tops[i]); err != nil {
			return 0, fmt.Errorf("net %q: layer %q: forward: %w", n.graph.Name, n.graph.Layers[i].GetName(), err)
		}
	}
	var loss T
	if !n.deferLoss {
		loss = n.layerLoss(i)
	}
	if h := n.hooks.AfterForward; h != nil {
		h(i)
	}
	return loss, nil
}

// layerLoss returns layer i's weighted loss from its loss tops: a read on
// the host, which on a device net downloads the loss (one value for
// Caffe's loss layers) and waits for the device.
func (n *Net[T]) layerLoss(i int) T {
	var loss float64
	for ti, w := range n.loss[i] {
		if w == 0 {
			continue
		}
		var s float64
		for _, v := range n.tops[i][ti].HostData() {
			s += float64(v)
		}
		loss += float64(w) * s
	}
	return T(loss)
}

// SetDeferLoss makes Forward and ForwardBackward leave the loss tops on the
// device and return 0, so that a device net's iteration never waits for
// the host; Loss reads them when the caller needs the value (once per
// display interval). A net on host memory gains nothing from it.
func (n *Net[T]) SetDeferLoss(on bool) { n.deferLoss = on }

// DefersLoss reports whether SetDeferLoss is on.
func (n *Net[T]) DefersLoss() bool { return n.deferLoss }

// LossTops returns every top that carries a loss and its loss weight: the
// net's loss is the sum over them of weight × the sum of the top's
// elements.
func (n *Net[T]) LossTops() ([]*blob.Blob[T], []float32) {
	var tops []*blob.Blob[T]
	var weights []float32
	for i := range n.layers {
		for ti, w := range n.loss[i] {
			if w != 0 {
				tops, weights = append(tops, n.tops[i][ti]), append(weights, w)
			}
		}
	}
	return tops, weights
}

// Loss returns the total weighted loss of the last Forward, read from the
// loss tops.
func (n *Net[T]) Loss() T {
	var loss T
	for i := range n.layers {
		loss += n.layerLoss(i)
	}
	return loss
}

// Forward runs every layer forward and returns the total weighted loss.
func (n *Net[T]) Forward() (T, error) {
	kernels.Join(n.device) // a pass writes what gradients issued Beside may read
	var loss T
	for i := range n.layers {
		l, err := n.ForwardLayer(i)
		if err != nil {
			return 0, err
		}
		loss += l
	}
	return loss, nil
}

// BackwardLayer runs layer i's Backward if the plan needs it, seeding the
// gradient of its loss tops with their loss weights.
func (n *Net[T]) BackwardLayer(i int) error {
	if !n.plan.Layer[i] {
		return nil
	}
	if h := n.hooks.BeforeBackward; h != nil {
		h(i)
	}
	for ti, w := range n.loss[i] {
		if w == 0 {
			continue
		}
		d := n.tops[i][ti].Diff()
		for k := range d {
			d[k] = T(w)
		}
	}
	if err := n.layers[i].Backward(n.tops[i], n.plan.Bottom[i], n.bottoms[i]); err != nil {
		return fmt.Errorf("net %q: layer %q: backward: %w", n.graph.Name, n.graph.Layers[i].GetName(), err)
	}
	if h := n.hooks.AfterBackward; h != nil {
		h(i)
	}
	return nil
}

// Backward runs the planned layers backward, last to first. Parameter
// gradients accumulate; call ClearParamDiffs before each iteration.
// Layers may issue their parameter gradients beside the bottom diffs
// (kernels.Beside); Backward returns with the device's next work ordered
// after them.
func (n *Net[T]) Backward() error {
	defer kernels.Join(n.device)
	for i := len(n.layers) - 1; i >= 0; i-- {
		if err := n.BackwardLayer(i); err != nil {
			return err
		}
	}
	return nil
}

// ForwardBackward runs Forward then Backward and returns the loss.
func (n *Net[T]) ForwardBackward() (T, error) {
	loss, err := n.Forward()
	if err != nil {
		return 0, err
	}
	return loss, n.Backward()
}

// clearSerialMax is the gradient size (256 KiB of float32) from which
// ClearParamDiffs zeroes on all cores.
const clearSerialMax = 1 << 16

// ClearParamDiffs zeroes the gradients of the learnable parameters: on
// the host in one pass, or, on a device net, on the device (GradBuffer
// would download every gradient first, waiting for the device).
func (n *Net[T]) ClearParamDiffs() {
	kernels.Join(n.device)
	be := kernels.For[T](n.device)
	if be.HostMemory() {
		g := n.GradBuffer()
		if len(g) < clearSerialMax {
			clear(g)
			return
		}
		be.Parallel(len(g), func(_, lo, hi int) { clear(g[lo:hi]) })
		return
	}
	if n.devOf == be {
		// One fill over the contiguous device gradients.
		for _, id := range n.table.Learnable {
			n.params[id].MutableDiffOn(be)
		}
		be.Fill(n.gradDev, 0)
		return
	}
	for _, id := range n.table.Learnable {
		be.Fill(n.params[id].MutableDiffOn(be), 0)
	}
}

// ErrIncompatible is wrapped by the errors of CopyTrainedLayersFrom and
// ShareTrainedLayersWith when weights do not fit the net.
var ErrIncompatible = errors.New("incompatible weights")
