package train

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/arrowio"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/solver"
	"github.com/gocaffe/gocaffe/goexec/ring"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// session is a solver kept across rounds: the nets, the update history
// buffers and the samplers, so a round that continues where the previous one
// ended rebuilds nothing and each rank keeps walking its partition.
type session struct {
	key      string
	s        *solver.Solver[float32]
	bindings []*binding
	nextIter int // the iteration the next round continues from
	grad     []float32
}

// binding is one data layer fed from a cached partition.
type binding struct {
	layer   string
	key     arrowio.Key
	sampler *arrowio.Sampler[float32]
	ds      *arrowio.Dataset // the sampler's dataset (kept alive by the sampler)
	rows    int
}

func (ss *session) close() {
	for _, b := range ss.bindings {
		if b.sampler != nil {
			b.sampler.Close()
		}
	}
	ss.bindings = nil
}

// roundPlan is a validated TrainRoundRequest.
type roundPlan struct {
	sp       *caffepb.SolverParameter
	weights  *caffepb.NetParameter // nil: fresh init
	state    *caffepb.SolverState  // nil: zero history
	start    int
	iters    int
	rank     int
	world    int
	mode     pb.SyncMode
	seed     uint64
	key      string
	ringCfg  ring.Config
	bindings []*pb.DataBinding
}

func (s *Service) plan(req *pb.TrainRoundRequest) (*roundPlan, error) {
	p := &roundPlan{sp: &caffepb.SolverParameter{}}
	if len(req.GetSolver()) == 0 {
		return nil, invalid("solver", "required (binary caffe.SolverParameter with the net inlined)")
	}
	if err := proto.Unmarshal(req.GetSolver(), p.sp); err != nil {
		return nil, invalid("solver", "not a caffe.SolverParameter: %v", err)
	}
	if p.sp.NetParam == nil && p.sp.TrainNetParam == nil {
		return nil, invalid("solver", "the train net must be inlined (net_param or train_net_param); goexec opens no paths (net %q, train_net %q)", p.sp.GetNet(), p.sp.GetTrainNet())
	}
	if len(req.GetWeights()) > 0 {
		p.weights = &caffepb.NetParameter{}
		if err := proto.Unmarshal(req.GetWeights(), p.weights); err != nil {
			return nil, invalid("weights", "not a caffe.NetParameter: %v", err)
		}
	}
	if len(req.GetSolverState()) > 0 {
		p.state = &caffepb.SolverState{}
		if err := proto.Unmarshal(req.GetSolverState(), p.state); err != nil {
			return nil, invalid("solver_state", "not a caffe.SolverState: %v", err)
		}
	}
	switch {
	case req.GetStartIter() >= 0:
		p.start = int(req.GetStartIter())
	case req.GetStartIter() == -1:
		p.start = int(p.state.GetIter())
	default:
		return nil, invalid("start_iter", "%d: want >= 0, or -1 for the solver state's iter", req.GetStartIter())
	}
	if req.GetIterations() <= 0 {
		return nil, invalid("iterations", "%d: want > 0", req.GetIterations())
	}
	p.iters = int(req.GetIterations())
	p.world = max(1, int(req.GetWorldSize()))
	p.rank = int(req.GetRank())
	if p.rank < 0 || p.rank >= p.world {
		return nil, invalid("rank", "%d not in [0, world_size=%d)", p.rank, p.world)
	}
	p.mode = req.GetSyncMode()
	if p.mode == pb.SyncMode_SYNC_MODE_UNSPECIFIED {
		p.mode = pb.SyncMode_ALLREDUCE
	}
	if p.mode != pb.SyncMode_ALLREDUCE && p.mode != pb.SyncMode_AVERAGE {
		return nil, invalid("sync_mode", "unknown mode %v", p.mode)
	}
	switch {
	case req.GetSeed() != 0:
		p.seed = req.GetSeed()
	case p.sp.GetRandomSeed() >= 0:
		p.seed = uint64(p.sp.GetRandomSeed())
	case p.world > 1 && p.weights == nil:
		return nil, invalid("seed", "a fresh initialisation on %d ranks needs a seed (set seed or the solver's random_seed) so all ranks start from the same weights", p.world)
	default:
		p.seed = uint64(time.Now().UnixNano())
	}
	if p.mode == pb.SyncMode_ALLREDUCE && p.world > 1 {
		if len(req.GetPeers()) != p.world {
			return nil, invalid("peers", "%d addresses for world_size %d", len(req.GetPeers()), p.world)
		}
		if len(req.GetSecret()) < ring.MinSecret {
			return nil, invalid("secret", "%d bytes; at least %d required for the ring", len(req.GetSecret()), ring.MinSecret)
		}
		to := time.Duration(req.GetRingTimeoutMs()) * time.Millisecond
		if req.GetRingTimeoutMs() < 0 {
			return nil, invalid("ring_timeout_ms", "negative (%d)", req.GetRingTimeoutMs())
		}
		p.ringCfg = ring.Config{Rank: p.rank, Peers: req.GetPeers(), Secret: req.GetSecret(),
			Session: fmt.Sprintf("round %d start %d", req.GetRound(), p.start), Timeout: to,
			ConnectTimeout: max(to, ringJoinTimeout)}
	}
	if len(req.GetData()) == 0 {
		return nil, invalid("data", "no data bindings (one per data layer of the train net)")
	}
	seen := map[string]bool{}
	for i, b := range req.GetData() {
		if b.GetLayer() == "" {
			return nil, invalid(fmt.Sprintf("data[%d].layer", i), "required")
		}
		if seen[b.GetLayer()] {
			return nil, invalid(fmt.Sprintf("data[%d].layer", i), "layer %q bound twice", b.GetLayer())
		}
		seen[b.GetLayer()] = true
		if _, err := keyOf(b.GetKey(), fmt.Sprintf("data[%d].key", i)); err != nil {
			return nil, err
		}
	}
	p.bindings = req.GetData()
	h := sha256.New()
	h.Write(req.GetSolver())
	fmt.Fprintf(h, "|%d|%d|%d|%d", p.rank, p.world, p.mode, p.seed)
	for _, b := range p.bindings {
		fmt.Fprintf(h, "|%s=%s#%d/%v", b.GetLayer(), b.GetKey().GetDataset(), b.GetKey().GetPartition(), b.GetWithReplacement())
	}
	p.key = string(h.Sum(nil))
	return p, nil
}

// ringJoinTimeout is how long a rank waits for its ring peers to join: the
// ring forms after every rank built its net, which can take long for big
// nets. A peer whose process died is noticed at once (refused or reset
// connections); this bounds only silent peers.
const ringJoinTimeout = 10 * time.Minute

// samplerSeed derives a rank's data order from the seed, the rank, the layer
// and (after a restart) the iteration it restarts at.
func samplerSeed(seed uint64, rank int, layer string, restart int) uint64 {
	h := fnv.New64a()
	var b [24]byte
	binary.LittleEndian.PutUint64(b[0:], seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(rank))
	binary.LittleEndian.PutUint64(b[16:], uint64(restart))
	h.Write(b[:])
	h.Write([]byte(layer))
	return h.Sum64()
}

// bind attaches samplers over the cached partitions to the net's fed layers.
// restart is the iteration a fresh data walk starts from (0 at the start of
// training), mixed into the shuffling seed.
func (s *Service) bind(n *network.Net[float32], dbs []*pb.DataBinding, seed uint64, rank, restart int, train bool) ([]*binding, error) {
	var out []*binding
	fail := func(err error) ([]*binding, error) {
		for _, b := range out {
			b.sampler.Close()
		}
		return nil, err
	}
	bound := map[string]bool{}
	for i, db := range dbs {
		field := fmt.Sprintf("data[%d]", i)
		li := n.LayerIndex(db.GetLayer())
		if li < 0 {
			if train {
				return fail(invalid(field+".layer", "the %s net has no layer %q (fed layers: %s)", n.Phase(), db.GetLayer(), strings.Join(n.FedLayers(), ", ")))
			}
			continue // a test binding for another test net
		}
		lp := n.LayerParams()[li]
		ld, err := dataOf(lp)
		if err != nil {
			return fail(invalid(field+".layer", "%v", err))
		}
		ds, key, err := s.partition(db.GetKey(), field+".key")
		if err != nil {
			return fail(err)
		}
		policy := arrowio.UnevenEpochs
		if db.GetWithReplacement() {
			policy = arrowio.WithReplacement
		}
		sm, err := arrowio.NewSampler[float32](ds, ld.spec, arrowio.SamplerOptions{BatchSize: ld.batch, Policy: policy,
			Shuffle: ld.shuffle, Seed: samplerSeed(seed, rank, lp.GetName(), restart), Train: train})
		rows := ds.Len()
		ds.Release()
		if err != nil {
			return fail(status.Errorf(codes.FailedPrecondition, "%s: partition %s does not fit layer %q: %v", field, key, lp.GetName(), err))
		}
		if err := n.SetSource(lp.GetName(), sm); err != nil {
			sm.Close()
			return fail(invalid(field+".layer", "%v", err))
		}
		bound[lp.GetName()] = true
		out = append(out, &binding{layer: lp.GetName(), key: key, sampler: sm, ds: ds, rows: rows})
	}
	for _, name := range n.FedLayers() {
		if !bound[name] {
			return fail(invalid("data", "data layer %q of the %s net is not bound to a partition", name, n.Phase()))
		}
	}
	return out, nil
}

// current reports whether every binding still samples the partition cached
// under its key (not one replaced by a later LoadPartition).
func (s *Service) current(bs []*binding) bool {
	for _, b := range bs {
		ds, ok := s.cache.Get(b.key)
		if !ok {
			return false
		}
		ds.Release()
		if ds != b.ds {
			return false
		}
	}
	return true
}

// prepare returns the session for a round: the kept one when the request
// continues it, else a new one. It loads the weights and solver state.
func (s *Service) prepare(ctx context.Context, p *roundPlan, log zerolog.Logger) (*session, error) {
	ss := s.sess
	reuse := ss != nil && ss.key == p.key && p.weights != nil
	if !reuse {
		if ss != nil {
			ss.close()
			s.sess = nil
		}
		var bindings []*binding
		attach := func(ctx context.Context, n *network.Net[float32]) error {
			if n.Phase() != caffepb.Phase_TRAIN {
				return nil // test nets are scored through Score
			}
			var err error
			bindings, err = s.bind(n, p.bindings, p.seed, p.rank, p.start, true)
			return err
		}
		if err := s.checkMemory(p.sp); err != nil { // reliability: a net too large is one clear error
			return nil, err
		}
		sv, err := solver.New[float32](ctx, p.sp, solver.WithRegistry[float32](s.reg), solver.WithSeed[float32](p.seed),
			solver.WithSources(attach), solver.WithLogger[float32](log), solver.WithNonFinite[float32](s.nonFinite))
		if err != nil {
			for _, b := range bindings {
				b.sampler.Close()
			}
			if st, ok := status.FromError(err); ok {
				return nil, status.Error(st.Code(), err.Error()) // a binding problem, already classified
			}
			return nil, invalid("solver", "%v", err)
		}
		n := 0
		for _, q := range sv.Params() {
			n += q.Count()
		}
		ss = &session{key: p.key, s: sv, bindings: bindings, nextIter: p.start, grad: make([]float32, n+1)}
	} else if ss.nextIter != p.start || !s.current(ss.bindings) {
		// A round that does not continue the last one (a retry after a
		// failure), or a partition reloaded since: start a fresh walk of
		// the data.
		old := ss.bindings
		nb, err := s.bind(ss.s.TrainNet(), p.bindings, p.seed, p.rank, p.start, true)
		if err != nil {
			return nil, err
		}
		for _, b := range old {
			b.sampler.Close()
		}
		ss.bindings = nb
	}
	s.sess = ss
	if p.weights != nil {
		if err := s.checkWeightsFinite(p.weights, log); err != nil { // reliability: non-finite weights
			return nil, err
		}
		if err := ss.s.TrainNet().CopyTrainedLayersFrom(p.weights); err != nil {
			return nil, invalid("weights", "%v", err)
		}
	}
	if p.state != nil {
		if err := ss.s.SetState(p.state); err != nil {
			return nil, codedStatus(codes.InvalidArgument, pb.ErrorCode_BAD_INPUT, "solver_state", -1, "solver_state: "+err.Error())
		}
	} else {
		for _, h := range ss.s.History() {
			clear(h)
		}
	}
	step := int(p.state.GetCurrentStep())
	if p.state == nil && p.sp.GetLrPolicy() == "multistep" {
		for _, v := range p.sp.GetStepvalue() {
			if p.start >= int(v) {
				step++
			}
		}
	}
	ss.s.SetIter(p.start, step)
	return ss, nil
}

// TrainRound trains one round and streams its progress and results.
func (s *Service) TrainRound(req *pb.TrainRoundRequest, stream grpc.ServerStreamingServer[pb.TrainRoundEvent]) error {
	ctx := stream.Context()
	p, err := s.plan(req)
	if err != nil {
		return err
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	var lis net.Listener
	if p.mode == pb.SyncMode_ALLREDUCE && p.world > 1 {
		if lis = s.takeListener(); lis == nil {
			return status.Errorf(codes.FailedPrecondition, "peers: no peer port is open (call OpenPeerPort before TrainRound, once per round)")
		}
		defer lis.Close()
		if got, want := req.GetPeers()[p.rank], lis.Addr().String(); got != want {
			return invalid(fmt.Sprintf("peers[%d]", p.rank), "%q, but this goexec's peer port is %s", got, want)
		}
	}
	log := s.log.With().Int64("round", req.GetRound()).Int("rank", p.rank).Int("world", p.world).Str("mode", p.mode.String()).Logger()
	setupStart := time.Now()

	ss, err := s.prepare(ctx, p, log)
	if err != nil {
		if s.sess != nil && s.sess.key == p.key {
			s.sess.close()
			s.sess = nil
		}
		return err
	}
	// Any failure from here on leaves the session in an unknown state.
	ok := false
	defer func() {
		if !ok && s.sess != nil {
			s.sess.close()
			s.sess = nil
		}
	}()
	// Join the ring once the net is built, so the first all-reduce does not
	// wait for slower peers' setup.
	var rg *ring.Ring
	if lis != nil {
		rg, err = ring.Connect(ctx, lis, p.ringCfg)
		if err != nil {
			return ringStatus(ctx, err)
		}
		defer rg.Close()
	}

	for _, b := range ss.bindings {
		log.Info().Str("layer", b.layer).Str("partition", b.key.String()).Int("rows", b.rows).
			Int64("drawn_before", b.sampler.Drawn()).Msg("round data")
	}
	setup := time.Since(setupStart)
	stats, err := s.run(ctx, ss, p, rg, stream.Send, log)
	if err != nil {
		return err
	}
	stats.SetupSeconds = setup.Seconds()
	if err := sendResult(stream.Send, ss.s); err != nil {
		return err
	}
	ss.nextIter = ss.s.Iter()
	if err := stream.Send(&pb.TrainRoundEvent{Event: &pb.TrainRoundEvent_Done{Done: stats}}); err != nil {
		return err
	}
	ok = true
	log.Info().Int64("iterations", stats.Iterations).Float64("seconds", stats.Seconds).Float64("allreduce_seconds", stats.AllreduceSeconds).
		Float64("loss", stats.FinalLoss).Floats64("epochs", stats.Epochs).Msg("round done")
	return nil
}

func ringStatus(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctxStatus(ctx.Err(), "ring")
	}
	return status.Errorf(codes.Unavailable, "%v", err)
}

// run is the training loop of one round: forward/backward, the gradient
// all-reduce (allreduce mode), the update; progress every display iterations.
func (s *Service) run(ctx context.Context, ss *session, p *roundPlan, rg *ring.Ring, send func(*pb.TrainRoundEvent) error, log zerolog.Logger) (*pb.RoundStats, error) {
	sv := ss.s
	params := sv.Params()
	display := int(p.sp.GetDisplay())
	avg := max(1, int(p.sp.GetAverageLoss()))
	batch := 0
	for _, b := range ss.bindings {
		batch = max(batch, b.sampler.TopShape(0)[0])
	}
	images := batch * int(max(1, p.sp.GetIterSize()))
	drawn := make([]int64, len(ss.bindings))
	for k, b := range ss.bindings {
		drawn[k] = b.sampler.Drawn()
	}
	var losses []float64
	smoothed := 0.0
	warnedNonFinite := false
	var reduceTime time.Duration
	start := time.Now()
	lastT, lastI := start, 0
	for i := 0; i < p.iters; i++ {
		if err := ctx.Err(); err != nil {
			return nil, ctxStatus(err, fmt.Sprintf("round stopped at iteration %d", sv.Iter()))
		}
		loss, err := sv.ForwardBackward(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctxStatus(ctx.Err(), fmt.Sprintf("round stopped at iteration %d", sv.Iter()))
			}
			return nil, status.Errorf(codes.Internal, "rank %d: %v", p.rank, err)
		}
		if rg != nil {
			t0 := time.Now()
			buf := ss.grad
			o := 0
			for _, q := range params {
				o += copy(buf[o:], q.Diff())
			}
			buf[o] = float32(loss)
			if err := rg.AllReduce(ctx, buf); err != nil {
				return nil, ringStatus(ctx, fmt.Errorf("rank %d, iteration %d: %w", p.rank, sv.Iter(), err))
			}
			inv := 1 / float32(p.world)
			for j := range buf {
				buf[j] *= inv
			}
			o = 0
			for _, q := range params {
				o += copy(q.Diff(), buf[o:o+q.Count()])
			}
			loss = float64(buf[o])
			reduceTime += time.Since(t0)
		}
		if len(losses) < avg {
			losses = append(losses, loss)
			smoothed += (loss - smoothed) / float64(len(losses))
		} else {
			k := i % avg
			smoothed += (loss - losses[k]) / float64(avg)
			losses[k] = loss
		}
		if err := s.checkFinite(sv, loss, p.rank, &warnedNonFinite, log); err != nil { // reliability: divergence
			return nil, err
		}
		iter := sv.Iter()
		rate, err := sv.ApplyUpdate()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "rank %d: %v", p.rank, err)
		}
		if display > 0 && iter%display == 0 {
			now := time.Now()
			ips := 0.0
			if secs := now.Sub(lastT).Seconds(); secs > 0 && i+1 > lastI {
				ips = float64((i+1-lastI)*images) / secs
			}
			lastT, lastI = now, i+1
			ev := &pb.Progress{Iter: int64(iter), Loss: smoothed, Lr: rate, ImagesPerSecond: ips, ElapsedSeconds: now.Sub(start).Seconds()}
			log.Info().Int("iter", iter).Float64("loss", smoothed).Float64("lr", rate).Float64("images_per_s", ips).Msg("train")
			if err := send(&pb.TrainRoundEvent{Event: &pb.TrainRoundEvent_Progress{Progress: ev}}); err != nil {
				return nil, err
			}
		}
	}
	st := &pb.RoundStats{Iterations: int64(p.iters), Seconds: time.Since(start).Seconds(),
		AllreduceSeconds: reduceTime.Seconds(), Images: int64(p.iters * images), FinalLoss: smoothed}
	for k, b := range ss.bindings {
		st.Epochs = append(st.Epochs, float64(b.sampler.Drawn()-drawn[k])/float64(b.rows))
	}
	return st, nil
}

// sendResult streams the weights and the solver state in chunks.
func sendResult(send func(*pb.TrainRoundEvent) error, sv *solver.Solver[float32]) error {
	w, err := proto.Marshal(sv.TrainNet().ToProto(false))
	if err != nil {
		return status.Errorf(codes.Internal, "weights: %v", err)
	}
	st, err := proto.Marshal(sv.State(""))
	if err != nil {
		return status.Errorf(codes.Internal, "solver state: %v", err)
	}
	for _, part := range []struct {
		data []byte
		wrap func(*pb.ByteChunk) *pb.TrainRoundEvent
	}{
		{w, func(c *pb.ByteChunk) *pb.TrainRoundEvent {
			return &pb.TrainRoundEvent{Event: &pb.TrainRoundEvent_Weights{Weights: c}}
		}},
		{st, func(c *pb.ByteChunk) *pb.TrainRoundEvent {
			return &pb.TrainRoundEvent{Event: &pb.TrainRoundEvent_SolverState{SolverState: c}}
		}},
	} {
		for off := 0; off == 0 || off < len(part.data); off += ChunkBytes {
			end := min(off+ChunkBytes, len(part.data))
			if err := send(part.wrap(&pb.ByteChunk{Offset: int64(off), Total: int64(len(part.data)), Data: part.data[off:end]})); err != nil {
				return err
			}
			if end == len(part.data) {
				break
			}
		}
	}
	return nil
}

// Score runs a test net over a cached partition and sums its outputs.
func (s *Service) Score(ctx context.Context, req *pb.ScoreRequest) (*pb.ScoreResponse, error) {
	sp := &caffepb.SolverParameter{}
	if len(req.GetSolver()) == 0 {
		return nil, invalid("solver", "required")
	}
	if err := proto.Unmarshal(req.GetSolver(), sp); err != nil {
		return nil, invalid("solver", "not a caffe.SolverParameter: %v", err)
	}
	idx := int(req.GetTestNetIndex())
	var np *caffepb.NetParameter
	switch {
	case idx < 0:
		return nil, invalid("test_net_index", "negative (%d)", idx)
	case idx < len(sp.GetTestNetParam()):
		np = sp.GetTestNetParam()[idx]
	case sp.NetParam != nil:
		np = sp.GetNetParam()
	default:
		return nil, invalid("test_net_index", "%d: the solver has %d inlined test nets and no net_param", idx, len(sp.GetTestNetParam()))
	}
	var w *caffepb.NetParameter
	if len(req.GetWeights()) > 0 {
		w = &caffepb.NetParameter{}
		if err := proto.Unmarshal(req.GetWeights(), w); err != nil {
			return nil, invalid("weights", "not a caffe.NetParameter: %v", err)
		}
	} else if sp.GetRandomSeed() < 0 {
		return nil, invalid("weights", "required, unless the solver's random_seed is set (then the weights are a fresh initialisation from it)")
	}
	if req.GetIterations() < 0 {
		return nil, invalid("iterations", "negative (%d)", req.GetIterations())
	}
	if len(req.GetData()) == 0 {
		return nil, invalid("data", "no data bindings")
	}
	st := &caffepb.NetState{}
	if idx < len(sp.GetTestState()) {
		st = proto.CloneOf(sp.GetTestState()[idx])
	}
	st.Phase = caffepb.Phase_TEST.Enum()
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer s.release()
	start := time.Now()
	if w == nil {
		// Caffe's test at iteration 0 (test_initialization): the weights a
		// TrainRound with this seed starts from.
		sv, err := solver.New[float32](ctx, sp, solver.WithRegistry[float32](s.reg),
			solver.WithSeed[float32](uint64(sp.GetRandomSeed())), solver.WithoutTestNets[float32]())
		if err != nil {
			return nil, invalid("solver", "%v", err)
		}
		w = sv.TrainNet().ToProto(false)
	}
	n, err := network.New[float32](np, st, s.reg, network.WithoutFillers())
	if err != nil {
		return nil, invalid("solver", "test net %d: %v", idx, err)
	}
	if err := n.CopyTrainedLayersFrom(w); err != nil {
		return nil, invalid("weights", "%v", err)
	}
	bs, err := s.bind(n, req.GetData(), 0, 0, 0, false)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, b := range bs {
			b.sampler.Close()
		}
	}()
	passes := int(req.GetIterations())
	batch, rows := 1, 0
	for _, b := range bs {
		batch = max(batch, b.sampler.TopShape(0)[0])
		rows = max(rows, b.rows)
	}
	if passes == 0 {
		passes = (rows + batch - 1) / batch
	}
	sums, _, err := solver.OutputSums(ctx, n, passes)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxStatus(err, "score stopped")
		}
		return nil, status.Errorf(codes.Internal, "test net %d: %v", idx, err)
	}
	outs, names, lw := n.OutputBlobs(), n.OutputBlobNames(), n.OutputLossWeights()
	resp := &pb.ScoreResponse{Passes: int64(passes), Images: int64(passes * batch), Seconds: time.Since(start).Seconds()}
	k := 0
	for j, b := range outs {
		for e := 0; e < b.Count() && k < len(sums); e++ {
			name := names[j]
			if b.Count() > 1 {
				name = fmt.Sprintf("%s[%d]", name, e)
			}
			weight := 0.0
			if j < len(lw) {
				weight = float64(lw[j])
			}
			resp.Outputs = append(resp.Outputs, &pb.OutputSum{Name: name, Sum: sums[k], LossWeight: weight})
			k++
		}
	}
	return resp, nil
}
