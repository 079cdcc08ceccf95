package train

import (
	"crypto/sha256"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/goexec/ring"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

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
	ringGen  int64 // 0: the ring lasts one round
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
		if req.GetRingGeneration() < 0 {
			return nil, invalid("ring_generation", "negative (%d)", req.GetRingGeneration())
		}
		p.ringGen = req.GetRingGeneration()
		session := fmt.Sprintf("round %d start %d", req.GetRound(), p.start)
		if p.ringGen > 0 {
			session = fmt.Sprintf("generation %d", p.ringGen)
		}
		p.ringCfg = ring.Config{Rank: p.rank, Peers: req.GetPeers(), Secret: req.GetSecret(),
			Session: session, Timeout: to, ConnectTimeout: max(to, ringJoinTimeout), Encrypt: req.GetEncryptRing()}
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
