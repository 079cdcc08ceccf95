package train

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/arrowio"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/solver"
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
	// flat holds the learnable parameters' gradients, laid out in one
	// buffer by the train net (allreduce on several ranks), and one more
	// element for the loss: the all-reduce works on it in place.
	flat  []float32
	round *roundRun // the round in progress, for the solver's hooks
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
		ld, err := dataOf(lp, false)
		if err != nil {
			return fail(invalid(field+".layer", "%v", err))
		}
		ds, key, err := s.partition(db.GetKey(), field+".key")
		if err != nil {
			return fail(err)
		}
		if err := s.withMean(lp, ld, key); err != nil {
			ds.Release()
			return fail(badInput(key.String(), "%s: %v", field, err))
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
			return fail(badInput(key.String(), "%s: partition %s does not fit layer %q: %v", field, key, lp.GetName(), err))
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
		// The driver tests and snapshots: the rank's solver steps only.
		sp := proto.CloneOf(p.sp)
		sp.TestInterval, sp.Snapshot = proto.Int32(0), proto.Int32(0)
		ss = &session{key: p.key, nextIter: p.start}
		if err := s.checkMemory(sp); err != nil { // a net too large is one clear error, before allocating
			return nil, err
		}
		sv, err := solver.New[float32](ctx, sp, solver.WithRegistry[float32](s.reg), solver.WithSeed[float32](p.seed),
			solver.WithSources(attach), solver.WithLogger[float32](log), solver.WithNonFinite[float32](s.nonFinite),
			solver.WithGradientHook(func(ctx context.Context, _ *solver.Solver[float32], loss float64) (float64, error) {
				return ss.round.reduce(ctx, ss.flat, loss)
			}),
			solver.WithProgress[float32](func(pr solver.Progress) { ss.round.progress(pr) }))
		if err != nil {
			for _, b := range bindings {
				b.sampler.Close()
			}
			if coded(err) {
				return nil, err // a binding problem, already classified
			}
			return nil, invalid("solver", "%v", err)
		}
		ss.s, ss.bindings = sv, bindings
		if p.mode == pb.SyncMode_ALLREDUCE && p.world > 1 {
			if ss.flat, err = sv.TrainNet().FlatDiffs(1); err != nil {
				ss.close()
				return nil, internal(noIter, "%v", err)
			}
		}
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
		if err := s.checkWeightsFinite(p.weights, log); err != nil { // NaN/Inf weights are refused, naming the blob
			return nil, err
		}
		if err := ss.s.TrainNet().CopyTrainedLayersFrom(p.weights); err != nil {
			return nil, invalid("weights", "%v", err)
		}
	}
	if p.state != nil {
		if err := ss.s.SetState(p.state); err != nil {
			return nil, invalid("solver_state", "%v", err)
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
