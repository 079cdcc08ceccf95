package train

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/solver"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

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
		return nil, trainError(ctx, fmt.Sprintf("test net %d", idx), noIter, err, labelRows(bs))
	}
	resp := &pb.ScoreResponse{Passes: int64(passes), Images: int64(passes * batch), Seconds: time.Since(start).Seconds()}
	for _, o := range solver.NameOutputs(n, sums) {
		resp.Outputs = append(resp.Outputs, &pb.OutputSum{Name: o.Name, Sum: o.Value, LossWeight: o.LossWeight})
	}
	return resp, nil
}
