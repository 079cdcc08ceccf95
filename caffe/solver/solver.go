// Package solver trains a Caffe net: Caffe's SGD family (SGD, Nesterov,
// AdaGrad, RMSProp, AdaDelta, Adam) with its learning-rate policies,
// regularization, gradient clipping, iter_size accumulation, periodic
// testing, snapshots and resume from a .solverstate.
//
// A Solver runs whole (Solve), in chunks (Step), or one phase at a time
// (ForwardBackward, then ApplyUpdate) so that a distributed trainer can
// all-reduce the gradients in between.
package solver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
	"github.com/gocaffe/gocaffe/kernels"
)

// SourceAttacher connects the data layers of a freshly built net to their
// data sources (see caffe/data.Attach).
type SourceAttacher[T blob.Float] func(ctx context.Context, n *network.Net[T]) error

// Option configures New.
type Option[T blob.Float] func(*options[T])

type options[T blob.Float] struct {
	reg       *layer.Registry
	log       zerolog.Logger
	attach    SourceAttacher[T]
	seed      *uint64
	device    kernels.Device
	noTests   bool
	gradHook  func(ctx context.Context, s *Solver[T], loss float64) (float64, error)
	progress  func(Progress)
	scores    func(iter, net int, scores []TestScore, loss float64)
	nonFinite NonFinite
	noGraphs  bool
}

// WithoutGraphs keeps a device net's training iterations from being
// recorded and replayed (CUDA graphs): every kernel is launched from the
// host, every iteration.
func WithoutGraphs[T blob.Float]() Option[T] {
	return func(o *options[T]) { o.noGraphs = true }
}

// Progress is what the solver reports every display iterations.
type Progress struct {
	Iter         int     // iteration the loss belongs to
	Loss         float64 // smoothed over average_loss iterations
	LR           float64 // learning rate of this iteration's update
	ItersPerSec  float64 // since the previous report (the first: since Step began)
	ImagesPerSec float64 // ItersPerSec × batch × iter_size
	ETA          time.Duration
}

// WithoutTestNets skips building the test nets (for ranks of a distributed
// run that never test); Test and TestAll then have nothing to score.
func WithoutTestNets[T blob.Float]() Option[T] {
	return func(o *options[T]) { o.noTests = true }
}

// WithGradientHook calls f in every Step iteration between ForwardBackward
// and ApplyUpdate, with the gradients in the Params' Diff and the
// iteration's loss (an all-reduce goes here). f returns the loss the
// iteration reports and smooths (for example the mean over ranks). An error
// stops Step.
func WithGradientHook[T blob.Float](f func(ctx context.Context, s *Solver[T], loss float64) (float64, error)) Option[T] {
	return func(o *options[T]) { o.gradHook = f }
}

// WithProgress calls f with every display report (besides logging it).
func WithProgress[T blob.Float](f func(Progress)) Option[T] {
	return func(o *options[T]) { o.progress = f }
}

// WithTestScores calls f after every test phase of test net `net` at
// iteration iter with its scores and mean total loss (besides logging them).
func WithTestScores[T blob.Float](f func(iter, net int, scores []TestScore, loss float64)) Option[T] {
	return func(o *options[T]) { o.scores = f }
}

// WithRegistry sets the layer registry nets are built from (required).
func WithRegistry[T blob.Float](r *layer.Registry) Option[T] {
	return func(o *options[T]) { o.reg = r }
}

// WithLogger sends progress (display, test scores, snapshots) to l.
func WithLogger[T blob.Float](l zerolog.Logger) Option[T] {
	return func(o *options[T]) { o.log = l }
}

// WithSources attaches data sources to each net the solver builds.
func WithSources[T blob.Float](a SourceAttacher[T]) Option[T] {
	return func(o *options[T]) { o.attach = a }
}

// WithDevice makes the solver's nets (train and test) compute on d
// (default the CPU).
func WithDevice[T blob.Float](d kernels.Device) Option[T] {
	return func(o *options[T]) { o.device = d }
}

// WithSeed overrides the solver's random_seed.
func WithSeed[T blob.Float](seed uint64) Option[T] {
	return func(o *options[T]) { o.seed = &seed }
}

// Solver trains one net and scores its test nets.
type Solver[T blob.Float] struct {
	param  *caffepb.SolverParameter
	method Method
	hyper  Hyper
	policy LRPolicy
	log    zerolog.Logger
	seed   uint64
	opts   options[T]

	train *network.Net[T]
	tests []*network.Net[T]

	params    []*blob.Blob[T]
	lrMult    []float64
	decayMult []float64
	history   [][]T // HistorySets()*len(params); set k of param i at k*len(params)+i
	histBuf   [][]T // per history set, the params' histories laid out as the net's buffers
	// histMem keeps each history set's host copy (histBuf) and, on a
	// device net, its device copy, where the update keeps it between
	// snapshots.
	histMem []*blob.Synced[T]
	// segOffs and segMults are ParamSegments in the device's memory (the
	// device update's segment table), made on first use.
	segOffs  kernels.IntVec
	segMults kernels.Vec[T]
	// recording is the train net's iteration recorded on its device (a
	// CUDA graph), replayed between display iterations; recRule is the
	// SolverUpdate rule it holds now; noRecording says not to try (again).
	recording   kernels.Recording
	recRule     kernels.SolverRule
	noRecording bool
	replays     int
	whyEager    string // why iterations are not replayed (for the log and tests)
	// fbRecording is the train net's forward and backward passes alone,
	// replayed on iterations whose loss is read (display iterations, the
	// last of a Step, and all of them with average_loss > 1 or a gradient
	// hook): the loss is read, checked and handed to the hook before the
	// update, as when they are launched kernel by kernel.
	fbRecording kernels.Recording
	readReplays int
	// scorers sum the test nets' outputs on their device, one per test
	// net, each with its recorded test pass (made on first use).
	scorers []*deviceScorer[T]

	iter, currentStep int
	rate              float64 // learning rate of the last ApplyUpdate
	losses            []float64
	smoothed          float64
	batch             int // images per forward pass of the train net

	lastDisplayIter int
	lastDisplayTime time.Time
	startIter       int
	startTime       time.Time

	nonFiniteWarned int // non-finite iterations trained through (NonFiniteWarn)
}

// TestScore is one output value of a test net, averaged over test_iter
// batches.
type TestScore struct {
	Net        int     // test net index
	Blob       string  // output blob name
	Index      int     // element within the blob
	Name       string  // Blob, or Blob[Index] when the blob has several elements
	Value      float64 // mean over the test batches
	LossWeight float64 // the blob's loss weight (0 for accuracy and the like)
}

// New validates sp and builds its train net and test nets (sharing the
// train net's weights). Paths in sp (net, train_net, test_net,
// snapshot_prefix) are used as given: prototxt.ParseSolverFile resolves them.
func New[T blob.Float](ctx context.Context, sp *caffepb.SolverParameter, opts ...Option[T]) (*Solver[T], error) {
	o := options[T]{log: zerolog.Nop()}
	for _, f := range opts {
		f(&o)
	}
	if o.reg == nil {
		return nil, errors.New("solver: no layer registry (use WithRegistry)")
	}
	s := &Solver[T]{param: sp, log: o.log, opts: o}
	if err := s.configure(); err != nil {
		return nil, fmt.Errorf("solver: %w", err)
	}
	switch {
	case o.seed != nil:
		s.seed = *o.seed
	case sp.GetRandomSeed() >= 0:
		s.seed = uint64(sp.GetRandomSeed())
	default:
		s.seed = uint64(time.Now().UnixNano())
	}
	trainParam, testParams, err := netParams(sp)
	if err != nil {
		return nil, fmt.Errorf("solver: %w", err)
	}
	trainState := proto.CloneOf(sp.GetTrainState())
	if trainState == nil {
		trainState = &caffepb.NetState{}
	}
	trainState.Phase = caffepb.Phase_TRAIN.Enum()
	if s.train, err = network.New[T](trainParam, trainState, o.reg, network.WithSeed(s.seed), network.WithDevice(o.device)); err != nil {
		return nil, fmt.Errorf("solver: train net: %w", err)
	}
	if o.attach != nil {
		if err := o.attach(ctx, s.train); err != nil {
			return nil, fmt.Errorf("solver: train net: %w", err)
		}
	}
	if o.noTests {
		testParams = nil
	}
	for i, tp := range testParams {
		var st *caffepb.NetState
		if i < len(sp.GetTestState()) {
			st = proto.CloneOf(sp.GetTestState()[i])
		} else {
			st = &caffepb.NetState{}
		}
		st.Phase = caffepb.Phase_TEST.Enum()
		tn, err := network.New[T](tp, st, o.reg, network.WithSeed(s.seed), network.WithoutFillers(), network.WithDevice(o.device))
		if err != nil {
			return nil, fmt.Errorf("solver: test net #%d: %w", i, err)
		}
		if err := tn.ShareTrainedLayersWith(s.train); err != nil {
			return nil, fmt.Errorf("solver: test net #%d: %w", i, err)
		}
		if o.attach != nil {
			if err := o.attach(ctx, tn); err != nil {
				return nil, fmt.Errorf("solver: test net #%d: %w", i, err)
			}
		}
		s.tests = append(s.tests, tn)
	}
	s.params = s.train.LearnableParams()
	s.lrMult = s.train.ParamLrMults()
	s.decayMult = s.train.ParamDecayMults()
	segs := s.train.ParamSegments()
	total := 0
	if len(segs) > 0 {
		total = segs[len(segs)-1].Offset + segs[len(segs)-1].Count
	}
	for k := 0; k < s.method.HistorySets(); k++ {
		buf := make([]T, total)
		s.histBuf = append(s.histBuf, buf)
		mem := &blob.Synced[T]{}
		mem.UseHost(buf)
		s.histMem = append(s.histMem, mem)
		for _, sg := range segs {
			s.history = append(s.history, buf[sg.Offset:sg.Offset+sg.Count:sg.Offset+sg.Count])
		}
	}
	s.batch = batchSize(s.train)
	return s, nil
}

// configure reads the method, hyper-parameters and lr policy from the
// solver parameter, checking what Caffe checks.
func (s *Solver[T]) configure() error {
	sp := s.param
	m, err := ParseMethod(sp.GetType())
	if err != nil {
		return err
	}
	s.method = m
	s.hyper = Hyper{Momentum: float64(sp.GetMomentum()), Momentum2: float64(sp.GetMomentum2()),
		Delta: float64(sp.GetDelta()), RMSDecay: float64(sp.GetRmsDecay())}
	s.policy = LRPolicy{Policy: sp.GetLrPolicy(), BaseLR: float64(sp.GetBaseLr()), Gamma: float64(sp.GetGamma()),
		Power: float64(sp.GetPower()), StepSize: int(sp.GetStepsize()), MaxIter: int(sp.GetMaxIter())}
	for _, v := range sp.GetStepvalue() {
		s.policy.StepValue = append(s.policy.StepValue, int(v))
	}
	if err := s.policy.Validate(); err != nil {
		return err
	}
	switch {
	case sp.GetIterSize() < 1:
		return fmt.Errorf("iter_size must be at least 1, got %d", sp.GetIterSize())
	case sp.GetAverageLoss() < 1:
		return fmt.Errorf("average_loss must be at least 1, got %d", sp.GetAverageLoss())
	case sp.GetMaxIter() < 0:
		return fmt.Errorf("max_iter must not be negative")
	case sp.GetSnapshotFormat() == caffepb.SolverParameter_HDF5:
		return errors.New("snapshot_format HDF5 is not supported; use BINARYPROTO")
	}
	if r := sp.GetRegularizationType(); r != "L1" && r != "L2" {
		return fmt.Errorf("unknown regularization_type %q (known: L1, L2)", r)
	}
	switch m {
	case SGD, Nesterov:
	case RMSProp:
		if d := sp.GetRmsDecay(); d < 0 || d >= 1 {
			return fmt.Errorf("RMSProp: rms_decay must be in [0, 1), got %g", d)
		}
		if sp.GetMomentum() != 0 {
			return errors.New("RMSProp: momentum cannot be used with RMSProp")
		}
	case AdaGrad:
		if sp.GetMomentum() != 0 {
			return errors.New("AdaGrad: momentum cannot be used with AdaGrad")
		}
	}
	if n := len(sp.GetTestIter()); n > 0 && sp.GetTestInterval() <= 0 {
		s.log.Debug().Int("test_iter", n).Msg("test_iter given but test_interval is 0: no periodic testing")
	}
	return nil
}

// netParams returns the train net and the test nets the solver names, as
// Caffe's Solver::InitTrainNet and InitTestNets choose them.
func netParams(sp *caffepb.SolverParameter) (*caffepb.NetParameter, []*caffepb.NetParameter, error) {
	fields := 0
	for _, set := range []bool{sp.TrainNet != nil, sp.TrainNetParam != nil, sp.Net != nil, sp.NetParam != nil} {
		if set {
			fields++
		}
	}
	if fields != 1 {
		return nil, nil, fmt.Errorf("give exactly one of net, net_param, train_net, train_net_param (%d given)", fields)
	}
	load := func(path string) (*caffepb.NetParameter, error) {
		np, err := prototxt.ParseNetFile(path)
		if err != nil {
			return nil, fmt.Errorf("net %s: %w", path, err)
		}
		return np, nil
	}
	var train, generic *caffepb.NetParameter
	var err error
	switch {
	case sp.TrainNetParam != nil:
		train = sp.GetTrainNetParam()
	case sp.TrainNet != nil:
		train, err = load(sp.GetTrainNet())
	case sp.NetParam != nil:
		train, generic = sp.GetNetParam(), sp.GetNetParam()
	case sp.Net != nil:
		train, err = load(sp.GetNet())
		generic = train
	}
	if err != nil {
		return nil, nil, err
	}
	var tests []*caffepb.NetParameter
	tests = append(tests, sp.GetTestNetParam()...)
	for _, p := range sp.GetTestNet() {
		np, err := load(p)
		if err != nil {
			return nil, nil, err
		}
		tests = append(tests, np)
	}
	nIter := len(sp.GetTestIter())
	if generic != nil {
		for len(tests) < nIter {
			tests = append(tests, generic)
		}
	}
	if len(tests) != nIter {
		return nil, nil, fmt.Errorf("%d test nets but %d test_iter values (give one test_iter per test net)", len(tests), nIter)
	}
	if len(sp.GetTestState()) > 0 && len(sp.GetTestState()) != len(tests) {
		return nil, nil, fmt.Errorf("%d test_state values for %d test nets", len(sp.GetTestState()), len(tests))
	}
	return train, tests, nil
}

// batchSize guesses images per forward pass: the first dimension of the
// first top of the first layer that has one.
func batchSize[T blob.Float](n *network.Net[T]) int {
	for i := range n.Layers() {
		if tops := n.Tops(i); len(tops) > 0 && tops[0].NumAxes() > 0 {
			return tops[0].Dim(0)
		}
	}
	return 0
}

// Param returns the solver parameter.
func (s *Solver[T]) Param() *caffepb.SolverParameter { return s.param }

// Method returns the update rule.
func (s *Solver[T]) Method() Method { return s.method }

// TrainNet returns the net being trained.
func (s *Solver[T]) TrainNet() *network.Net[T] { return s.train }

// TestNets returns the test nets (sharing the train net's weights).
func (s *Solver[T]) TestNets() []*network.Net[T] { return s.tests }

// Close closes the data sources of the train and test nets
// (network.Net.CloseSources); the solver trains and tests no more after it.
func (s *Solver[T]) Close() error {
	for _, sc := range s.scorers {
		if sc != nil {
			sc.release()
		}
	}
	s.scorers = nil
	errs := []error{s.train.CloseSources()}
	for _, n := range s.tests {
		errs = append(errs, n.CloseSources())
	}
	return errors.Join(errs...)
}

// Iter returns the number of updates applied so far.
func (s *Solver[T]) Iter() int { return s.iter }

// LearningRate returns the rate the last ApplyUpdate used.
func (s *Solver[T]) LearningRate() float64 { return s.rate }

// Replays returns how many training iterations were replayed from a
// recording (a CUDA graph) rather than launched kernel by kernel.
func (s *Solver[T]) Replays() int { return s.replays }

// ReadReplays returns how many training iterations whose loss was read
// replayed their forward and backward passes from a recording (their
// update launched after the read).
func (s *Solver[T]) ReadReplays() int { return s.readReplays }

// NotReplayedBecause says why training iterations are launched kernel by
// kernel rather than replayed ("" when they are replayed, or not tried).
func (s *Solver[T]) NotReplayedBecause() string { return s.whyEager }

// SmoothedLoss returns the loss averaged over the last average_loss iterations.
func (s *Solver[T]) SmoothedLoss() float64 { return s.smoothed }

// Params returns the learnable parameters (weights in Data, gradients in
// Diff), in the order of the .solverstate history.
func (s *Solver[T]) Params() []*blob.Blob[T] { return s.params }

// History returns the update history, HistorySets() blobs' worth per
// learnable param in .solverstate order (all first sets, then all second
// sets). The slices are the solver's own: a caller may read or overwrite
// them (on a device net, History brings them to the host, and the next
// update takes them back up).
func (s *Solver[T]) History() [][]T {
	s.hostHistory()
	return s.history
}

// hostHistory makes the host copy of the history current and the one the
// next update reads.
func (s *Solver[T]) hostHistory() {
	for _, m := range s.histMem {
		m.MutableHost(len(s.histBuf[0]))
	}
}

// SetIter sets the iteration counter and the lr policy's current step (for
// a distributed trainer restoring its own state).
func (s *Solver[T]) SetIter(iter, currentStep int) { s.iter, s.currentStep = iter, currentStep }

// ForwardBackward zeroes the parameter gradients, then runs iter_size
// forward/backward passes accumulating them, and returns the mean loss.
// The gradients are ready for an all-reduce; ApplyUpdate consumes them.
func (s *Solver[T]) ForwardBackward(ctx context.Context) (float64, error) {
	return s.forwardBackward(ctx, true)
}

// deferLoss reports whether Step may leave the loss on the device between
// display iterations: a device net whose smoothed loss is the last loss
// (average_loss 1, iter_size 1) and no gradient hook that takes it.
func (s *Solver[T]) deferLoss() bool {
	return !kernels.For[T](s.train.Device()).HostMemory() && s.param.GetAverageLoss() <= 1 &&
		s.param.GetIterSize() == 1 && s.opts.gradHook == nil
}

// forwardBackward is ForwardBackward; without read, on a device net, the
// loss stays on the device and the result is 0.
func (s *Solver[T]) forwardBackward(ctx context.Context, read bool) (float64, error) {
	defer s.train.SetDeferLoss(false)
	s.train.SetDeferLoss(!read)
	s.train.ClearParamDiffs()
	var loss float64
	n := int(s.param.GetIterSize())
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		l, err := s.train.ForwardBackward()
		if err != nil {
			return 0, fmt.Errorf("iteration %d: %w", s.iter, err)
		}
		loss += float64(l)
	}
	return loss / float64(n), nil
}

// ApplyUpdate turns the accumulated gradients into a weight update with
// Caffe's order (clip, normalize by iter_size, regularize, compute the
// method's update value into Diff, subtract it from Data) and advances the
// iteration counter. It returns the learning rate used.
func (s *Solver[T]) ApplyUpdate() (float64, error) {
	rate, step := s.policy.Rate(s.iter, s.currentStep)
	if step != s.currentStep && s.policy.Policy == "multistep" {
		s.log.Info().Int("iter", s.iter).Int("step", step).Msg("multistep: next step")
	}
	s.currentStep = step
	s.rate = rate
	norm := 1 / float64(s.param.GetIterSize())
	wd := float64(s.param.GetWeightDecay())
	reg := s.param.GetRegularizationType()
	if reg != "L1" && reg != "L2" {
		return 0, fmt.Errorf("unknown regularization_type %q (known: L1, L2)", reg)
	}
	if be := kernels.For[T](s.train.Device()); !be.HostMemory() {
		s.deviceUpdate(be, s.deviceRule(rate))
		s.iter++
		return rate, nil
	}
	s.hostHistory()
	if clip := float64(s.param.GetClipGradients()); clip >= 0 {
		var sumsq float64
		for _, p := range s.params {
			sumsq += SumSq(p.Diff())
		}
		if f := ClipFactor(sumsq, clip); f != 1 {
			s.log.Info().Float64("l2norm", math.Sqrt(sumsq)).Float64("clip", clip).Float64("scale", f).Msg("gradient clipping")
			for _, p := range s.params {
				Scale(T(f), p.Diff())
			}
		}
	}
	if s.method == SGD && reg == "L2" {
		s.sgdL2All(rate, norm, wd)
		s.iter++
		return rate, nil
	}
	np := len(s.params)
	sets := s.method.HistorySets()
	be := layer.HostBackend[T]()
	for i, p := range s.params {
		data, diff := p.Data(), p.Diff()
		localRate := rate * s.lrMult[i]
		decay := wd * s.decayMult[i]
		update := func(lo, hi int) {
			d, w := diff[lo:hi], data[lo:hi]
			if norm != 1 {
				Scale(T(norm), d)
			}
			_ = Regularize(reg, decay, w, d) // reg checked above
			var hs [2][]T
			for k := 0; k < sets; k++ {
				hs[k] = s.history[k*np+i][lo:hi]
			}
			ComputeUpdate(s.method, s.hyper, localRate, s.iter, d, hs[:sets])
			for j, u := range d {
				w[j] -= u
			}
		}
		if n := len(diff); n >= parallelMin {
			be.Parallel(n, func(_, lo, hi int) { update(lo, hi) })
		} else {
			update(0, n)
		}
	}
	s.iter++
	return rate, nil
}

// parallelMin is the parameter size from which updates use all cores.
const parallelMin = 1 << 15

// sgdL2All is SGD with momentum and L2 decay over the net's contiguous
// parameter, gradient and history buffers in one pass: one parallel loop
// over every parameter, each piece split where a parameter's lr_mult and
// decay_mult change. Elementwise, it computes what a pass per parameter
// computes, to the bit.
func (s *Solver[T]) sgdL2All(rate, norm, wd float64) {
	data, diff, hist := s.train.ParamBuffer(), s.train.GradBuffer(), s.histBuf[0]
	segs := s.train.ParamSegments()
	be := layer.HostBackend[T]()
	mom := T(s.hyper.Momentum)
	update := func(lo, hi int) {
		i := sort.Search(len(segs), func(i int) bool { return segs[i].Offset+segs[i].Count > lo })
		for ; i < len(segs) && segs[i].Offset < hi; i++ {
			sg := segs[i]
			a, b := max(lo, sg.Offset), min(hi, sg.Offset+sg.Count)
			lr, decay := T(rate*sg.LrMult), T(wd*sg.DecayMult)
			be.SGDMomentum(kernels.HostVec(diff[a:b]), kernels.HostVec(data[a:b]), kernels.HostVec(hist[a:b]), T(norm), decay, lr, mom)
		}
	}
	if n := len(diff); n >= parallelMin {
		be.Parallel(n, func(_, lo, hi int) { update(lo, hi) })
	} else {
		update(0, n)
	}
}

// deviceUpdate is ApplyUpdate's step on a device net: one SolverUpdate over
// the net's contiguous device parameter and gradient buffers and the
// device copy of the history, with nothing read back on the host. With
// clip_gradients the norm is computed and applied on the device, and the
// host's "gradient clipping" line is not logged.
func (s *Solver[T]) deviceUpdate(be kernels.Backend[T], r kernels.SolverRule) {
	segs := s.train.ParamSegments()
	if s.segOffs.Len() != len(segs)+1 {
		offs := make([]int32, len(segs)+1)
		mults := make([]T, 2*len(segs))
		for i, sg := range segs {
			offs[i] = int32(sg.Offset)
			offs[i+1] = int32(sg.Offset + sg.Count)
			mults[2*i], mults[2*i+1] = T(sg.LrMult), T(sg.DecayMult)
		}
		s.segOffs, s.segMults = be.AllocInts(len(offs)), be.Alloc(max(len(mults), 1))
		be.UploadInts(s.segOffs, offs)
		if len(mults) > 0 {
			be.Upload(s.segMults.Slice(0, len(mults)), mults)
		}
	}
	total := len(s.histBuf[0])
	h0 := s.histMem[0].MutableOn(be, total)
	var h1 kernels.Vec[T]
	if len(s.histMem) > 1 {
		h1 = s.histMem[1].MutableOn(be, total)
	}
	be.SolverUpdate(r, s.segOffs, s.segMults, s.train.GradBufferOn(be), s.train.ParamBufferOn(be), h0, h1)
}

// deviceRule is the SolverUpdate rule of this iteration at rate.
func (s *Solver[T]) deviceRule(rate float64) kernels.SolverRule {
	h := s.hyper
	r := kernels.SolverRule{Method: kernels.UpdateMethod(s.method), L1: s.param.GetRegularizationType() == "L1",
		Norm: 1 / float64(s.param.GetIterSize()), Clip: float64(s.param.GetClipGradients()), Rate: rate,
		WeightDecay: float64(s.param.GetWeightDecay()), Momentum: h.Momentum, Momentum2: h.Momentum2, Delta: h.Delta, RMSDecay: h.RMSDecay}
	if s.method == Adam {
		t := float64(s.iter + 1)
		r.AdamCorr = math.Sqrt(1-math.Pow(h.Momentum2, t)) / (1 - math.Pow(h.Momentum, t))
	}
	return r
}

// canReplay reports whether this iteration may come from the recording
// (making it on first use: see canRecord).
func (s *Solver[T]) canReplay() bool {
	return s.recording != nil || s.canRecord()
}

// canReplayRead is canReplay for an iteration whose loss is read: its
// forward and backward passes replay (replayForwardBackward) when
// iter_size is 1.
func (s *Solver[T]) canReplayRead() bool {
	if s.param.GetIterSize() != 1 {
		return false
	}
	return s.fbRecording != nil || s.canRecord()
}

// canRecord reports whether this iteration may be recorded: a device that
// records, a net whose iteration can be replayed, and one eager iteration
// done in this Step (it allocates what an iteration needs; a recording
// cannot).
func (s *Solver[T]) canRecord() bool {
	if s.noRecording || s.opts.noGraphs || s.iter == s.startIter {
		return false
	}
	if _, ok := s.train.Device().(kernels.Recorder); !ok {
		s.noRecording = true
		return false
	}
	if ok, why := s.train.Replayable(); !ok {
		s.noRecording, s.whyEager = true, why
		s.log.Info().Str("reason", why).Msg("training iterations are not recorded as a CUDA graph: a launch per kernel")
		return false
	}
	return true
}

// replayIteration is one training iteration from the recording (recorded
// first if need be): the data layers and the label check on the host
// (StageInputs), then forward, backward and the update replayed on the
// device, the learning rate set in the recorded update. Nothing is read
// back: Step replays only iterations whose loss it does not read.
func (s *Solver[T]) replayIteration() error {
	be := kernels.For[T](s.train.Device())
	if err := s.train.StageInputs(); err != nil {
		return fmt.Errorf("iteration %d: %w", s.iter, err)
	}
	rate, step := s.policy.Rate(s.iter, s.currentStep)
	if step != s.currentStep && s.policy.Policy == "multistep" {
		s.log.Info().Int("iter", s.iter).Int("step", step).Msg("multistep: next step")
	}
	r := s.deviceRule(rate)
	// Weights, gradients and history the host wrote since (a restore, a
	// snapshot's read) go up now, and count as written by the device after.
	s.train.ParamBufferOn(be)
	s.train.GradBufferOn(be)
	for _, m := range s.histMem {
		m.MutableOn(be, len(s.histBuf[0]))
	}
	deviceWork := func() error {
		if err := s.stagedPasses(); err != nil {
			return err
		}
		s.deviceUpdate(be, r)
		return nil
	}
	eager := func(why error) error {
		s.noRecording, s.whyEager = true, why.Error()
		s.log.Info().Err(why).Msg("training iterations are not replayed as a CUDA graph: a launch per kernel")
		// Nothing recorded has run: run this iteration's device work now.
		if err := deviceWork(); err != nil {
			return fmt.Errorf("iteration %d: %w", s.iter, err)
		}
		s.currentStep, s.rate = step, rate
		s.iter++
		return nil
	}
	if s.recording == nil {
		rec, err := s.train.Device().(kernels.Recorder).Record(deviceWork)
		if err != nil {
			return eager(err)
		}
		s.recording, s.recRule = rec, r
		s.log.Info().Int("iter", s.iter).Int("operations", rec.Operations()).Msg("training iteration recorded as a CUDA graph")
	}
	if r != s.recRule {
		if err := s.recording.SetSolverRule(r); err != nil {
			s.recording.Release()
			s.recording = nil
			return eager(err)
		}
		s.recRule = r
	}
	if err := s.recording.Replay(); err != nil {
		return fmt.Errorf("iteration %d: %w", s.iter, err)
	}
	s.train.TopsDeviceWritten()
	s.train.Unstage()
	s.replays++
	s.currentStep, s.rate = step, rate
	s.iter++
	return nil
}

// stagedPasses is the device work of one forward and backward pass after
// StageInputs, the loss left on the device: what the recordings of an
// iteration (replayIteration, with the update) and of its passes alone
// (replayForwardBackward) hold.
func (s *Solver[T]) stagedPasses() error {
	s.train.SetDeferLoss(true)
	defer s.train.SetDeferLoss(false)
	s.train.ClearParamDiffs()
	return s.train.ForwardBackwardStaged()
}

// replayForwardBackward is forwardBackward (one pass: iter_size 1) from
// the recording of the net's forward and backward passes, recorded first
// if need be: the data layers and the label checks on the host
// (StageInputs), the passes replayed on the device, then the loss read
// from the loss tops, which waits for the device. The caller checks the
// loss and gradients, runs the gradient hook and applies the update as it
// does after forwardBackward.
func (s *Solver[T]) replayForwardBackward() (float64, error) {
	be := kernels.For[T](s.train.Device())
	if err := s.train.StageInputs(); err != nil {
		return 0, fmt.Errorf("iteration %d: %w", s.iter, err)
	}
	defer s.train.Unstage()
	// Weights and gradients the host wrote since go up now.
	s.train.ParamBufferOn(be)
	s.train.GradBufferOn(be)
	if s.fbRecording == nil {
		rec, err := s.train.Device().(kernels.Recorder).Record(s.stagedPasses)
		if err != nil {
			s.noRecording, s.whyEager = true, err.Error()
			s.log.Info().Err(err).Msg("training iterations are not replayed as a CUDA graph: a launch per kernel")
			// Nothing recorded has run: run this iteration's passes now.
			if err := s.stagedPasses(); err != nil {
				return 0, fmt.Errorf("iteration %d: %w", s.iter, err)
			}
			return float64(s.train.Loss()), nil
		}
		s.fbRecording = rec
	}
	if err := s.fbRecording.Replay(); err != nil {
		return 0, fmt.Errorf("iteration %d: %w", s.iter, err)
	}
	s.train.TopsDeviceWritten()
	s.readReplays++
	return float64(s.train.Loss()), nil
}

// updateSmoothedLoss is Caffe's running mean over average_loss iterations.
func (s *Solver[T]) updateSmoothedLoss(loss float64) {
	avg := int(s.param.GetAverageLoss())
	if len(s.losses) < avg {
		s.losses = append(s.losses, loss)
		n := float64(len(s.losses))
		s.smoothed = (s.smoothed*(n-1) + loss) / n
		return
	}
	idx := (s.iter - s.startIter) % avg
	s.smoothed += (loss - s.losses[idx]) / float64(avg)
	s.losses[idx] = loss
}

// Step runs n training iterations as Caffe's Solver::Step does: test every
// test_interval iterations (and before the first, if test_initialization),
// log every display iterations, snapshot every snapshot iterations. A
// cancelled ctx stops it within one iteration with ctx's error.
func (s *Solver[T]) Step(ctx context.Context, n int) error {
	stop := s.iter + n
	s.losses = s.losses[:0]
	s.smoothed = 0
	s.startIter = s.iter
	s.startTime = time.Now()
	// The first report counts the iterations done since Step began, its own
	// included (a round's first report is often its only one).
	s.lastDisplayIter, s.lastDisplayTime = s.iter-1, s.startTime
	ti := int(s.param.GetTestInterval())
	display := int(s.param.GetDisplay())
	for s.iter < stop {
		if err := ctx.Err(); err != nil {
			return err
		}
		if ti > 0 && s.iter%ti == 0 && (s.iter > 0 || s.param.GetTestInitialization()) {
			if _, err := s.TestAll(ctx); err != nil {
				return err
			}
		}
		show := display > 0 && s.iter%display == 0
		// A device net's loss is read on display iterations and the last
		// one only: a read waits for the device.
		read := show || s.iter == stop-1 || !s.deferLoss()
		if !read && s.canReplay() {
			// The other iterations replay the recorded one.
			if err := s.replayIteration(); err != nil {
				return err
			}
			if snap := int(s.param.GetSnapshot()); snap > 0 && s.iter%snap == 0 {
				if _, _, err := s.Snapshot(); err != nil {
					return err
				}
			}
			continue
		}
		var loss float64
		var err error
		if read && s.canReplayRead() {
			loss, err = s.replayForwardBackward()
		} else {
			loss, err = s.forwardBackward(ctx, read)
		}
		if err != nil {
			return err
		}
		if h := s.opts.gradHook; h != nil {
			if loss, err = h(ctx, s, loss); err != nil {
				return fmt.Errorf("iteration %d: %w", s.iter, err)
			}
		}
		if read {
			s.updateSmoothedLoss(loss)
			// A device net's loss and gradients are checked when its loss is
			// read (display iterations and the last): a check waits for the
			// device too.
			if err := s.CheckFinite(loss); err != nil {
				if err := s.nonFinite(err); err != nil {
					return err
				}
			}
		}
		iter := s.iter
		rate, err := s.ApplyUpdate()
		if err != nil {
			return err
		}
		if show {
			s.logProgress(iter, rate, stop)
		}
		if snap := int(s.param.GetSnapshot()); snap > 0 && s.iter%snap == 0 {
			if _, _, err := s.Snapshot(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Solver[T]) logProgress(iter int, rate float64, stop int) {
	now := time.Now()
	done := iter - s.lastDisplayIter
	secs := now.Sub(s.lastDisplayTime).Seconds()
	p := Progress{Iter: iter, Loss: s.smoothed, LR: rate}
	ev := s.log.Info().Int("iter", iter).Float64("loss", s.smoothed).Float64("lr", rate)
	if done > 0 && secs > 0 {
		p.ItersPerSec = float64(done) / secs
		p.ImagesPerSec = p.ItersPerSec * float64(s.batch) * float64(s.param.GetIterSize())
		ev = ev.Float64("iter_per_s", p.ItersPerSec)
		if s.batch > 0 {
			ev = ev.Float64("images_per_s", p.ImagesPerSec)
		}
		overall := float64(iter-s.startIter) / now.Sub(s.startTime).Seconds()
		if overall > 0 {
			p.ETA = time.Duration(float64(stop-iter) / overall * float64(time.Second)).Round(time.Second)
			ev = ev.Str("eta", p.ETA.String())
		}
	}
	if f := s.opts.progress; f != nil {
		f(p)
	}
	outs := s.train.OutputBlobs()
	names := s.train.OutputBlobNames()
	d := zerolog.Dict()
	for j, b := range outs {
		for k, v := range b.HostData() {
			name := names[j]
			if b.Count() > 1 {
				name = fmt.Sprintf("%s[%d]", name, k)
			}
			d = d.Float64(name, float64(v))
		}
	}
	ev.Dict("outputs", d).Msg("train")
	s.lastDisplayIter, s.lastDisplayTime = iter, now
}

// Solve trains until max_iter, as Caffe's Solver::Solve: Step, then a
// snapshot (snapshot_after_train) unless one was just written, then a final
// test when the last iteration falls on test_interval. A cancelled ctx
// still writes the final snapshot and then returns ctx's error.
func (s *Solver[T]) Solve(ctx context.Context) error {
	s.log.Info().Str("method", s.method.String()).Int("iter", s.iter).Int("max_iter", int(s.param.GetMaxIter())).
		Str("lr_policy", s.policy.Policy).Float64("base_lr", s.policy.BaseLR).Msg("solving")
	err := s.Step(ctx, int(s.param.GetMaxIter())-s.iter)
	if err != nil && ctx.Err() == nil {
		return err
	}
	if snap := int(s.param.GetSnapshot()); s.param.GetSnapshotAfterTrain() && (snap == 0 || s.iter%snap != 0) {
		if _, _, serr := s.Snapshot(); serr != nil {
			return errors.Join(err, serr)
		}
	}
	if err != nil {
		s.log.Warn().Int("iter", s.iter).Msg("optimization stopped early")
		return err
	}
	if ti := int(s.param.GetTestInterval()); ti > 0 && s.iter%ti == 0 {
		if _, err := s.TestAll(ctx); err != nil {
			return err
		}
	}
	s.log.Info().Int("iter", s.iter).Str("elapsed", time.Since(s.startTime).Round(time.Millisecond).String()).Msg("optimization done")
	return nil
}

// TestAll scores every test net and logs the scores.
func (s *Solver[T]) TestAll(ctx context.Context) ([]TestScore, error) {
	var all []TestScore
	for i := range s.tests {
		sc, err := s.Test(ctx, i)
		if err != nil {
			return nil, err
		}
		all = append(all, sc...)
	}
	return all, nil
}

// Test runs test net i for its test_iter batches and returns the mean of
// each output (Caffe's Solver::Test).
func (s *Solver[T]) Test(ctx context.Context, i int) ([]TestScore, error) {
	if i < 0 || i >= len(s.tests) {
		return nil, fmt.Errorf("test net #%d: the solver has %d test nets", i, len(s.tests))
	}
	iters := int(s.param.GetTestIter()[i])
	start := time.Now()
	scores, loss, err := s.score(ctx, i, iters)
	if err != nil {
		return nil, fmt.Errorf("test net #%d at iteration %d: %w", i, s.iter, err)
	}
	for k := range scores {
		scores[k].Net = i
	}
	ev := s.log.Info().Int("iter", s.iter).Int("test_net", i)
	if s.param.GetTestComputeLoss() {
		ev = ev.Float64("test_loss", loss)
	}
	for _, sc := range scores {
		ev = ev.Float64(sc.Name, sc.Value)
	}
	ev.Str("took", time.Since(start).Round(time.Millisecond).String()).Msg("test")
	if f := s.opts.scores; f != nil {
		f(s.iter, i, scores, loss)
	}
	return scores, nil
}

// score is Score for test net i, through its cached deviceScorer on a
// device: passes replayed from a recording kept between tests.
func (s *Solver[T]) score(ctx context.Context, i, iters int) ([]TestScore, float64, error) {
	tn := s.tests[i]
	if kernels.For[T](tn.Device()).HostMemory() {
		return Score(ctx, tn, iters)
	}
	for len(s.scorers) <= i {
		s.scorers = append(s.scorers, nil)
	}
	if s.scorers[i] == nil {
		s.scorers[i] = newDeviceScorer(tn, !s.opts.noGraphs)
	}
	sums, loss, err := s.scorers[i].sums(ctx, iters)
	if err != nil {
		return nil, 0, err
	}
	return meanScores(tn, sums, loss, iters)
}

// OutputSums runs iters forward passes of n and returns, for every element
// of every output blob in order, its sum over the passes, and the summed
// total loss. An error names the pass it stopped at; a cancelled ctx is
// returned wrapped, so errors.Is(err, context.Canceled) still holds.
func OutputSums[T blob.Float](ctx context.Context, n *network.Net[T], iters int) (sums []float64, loss float64, err error) {
	if !kernels.For[T](n.Device()).HostMemory() {
		sc := newDeviceScorer(n, true)
		defer sc.release()
		return sc.sums(ctx, iters)
	}
	outs := n.OutputBlobs()
	for it := 0; it < iters; it++ {
		if err := ctx.Err(); err != nil {
			return nil, 0, fmt.Errorf("pass %d: %w", it, err)
		}
		l, err := n.Forward()
		if err != nil {
			return nil, 0, fmt.Errorf("pass %d: %w", it, err)
		}
		loss += float64(l)
		k := 0
		for _, b := range outs {
			for _, v := range b.HostData() {
				if it == 0 {
					sums = append(sums, 0)
				}
				sums[k] += float64(v)
				k++
			}
		}
	}
	return sums, loss, nil
}

// Score runs n forward passes of a net and returns the mean of every
// element of every output blob, and the mean total loss.
func Score[T blob.Float](ctx context.Context, n *network.Net[T], iters int) ([]TestScore, float64, error) {
	sums, loss, err := OutputSums(ctx, n, iters)
	if err != nil {
		return nil, 0, err
	}
	return meanScores(n, sums, loss, iters)
}

// meanScores names the sums of iters passes of n and divides them, and
// the summed loss, by iters.
func meanScores[T blob.Float](n *network.Net[T], sums []float64, loss float64, iters int) ([]TestScore, float64, error) {
	scores := NameOutputs(n, sums)
	for k := range scores {
		scores[k].Value /= float64(iters)
	}
	if iters > 0 {
		loss /= float64(iters)
	}
	return scores, loss, nil
}

// NameOutputs labels values given for every element of every output blob of
// n, in order (as OutputSums returns them), with the blob, the element, the
// display name and the blob's loss weight.
func NameOutputs[T blob.Float](n *network.Net[T], values []float64) []TestScore {
	outs, names, weights := n.OutputBlobs(), n.OutputBlobNames(), n.OutputLossWeights()
	var scores []TestScore
	k := 0
	for j, b := range outs {
		for e := 0; e < b.Count() && k < len(values); e++ {
			w := 0.0
			if j < len(weights) {
				w = float64(weights[j])
			}
			name := names[j]
			if b.Count() > 1 {
				name = fmt.Sprintf("%s[%d]", name, e)
			}
			scores = append(scores, TestScore{Blob: names[j], Index: e, Name: name, Value: values[k], LossWeight: w})
			k++
		}
	}
	return scores
}
