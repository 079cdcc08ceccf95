package train

import (
	"context"
	"math"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/solver"
	"github.com/gocaffe/gocaffe/goexec/memcheck"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// detailOf returns the ErrorDetail a failed RPC carries.
func detailOf(t *testing.T, err error) *pb.ErrorDetail {
	t.Helper()
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if e, ok := d.(*pb.ErrorDetail); ok {
			return e
		}
	}
	t.Fatalf("%v carries no ErrorDetail", err)
	return nil
}

func TestRoundStopsOnDivergence(t *testing.T) {
	sp := solverFor(t, 8)
	sp.BaseLr = proto.Float32(1e30)
	sp.LrPolicy = proto.String("fixed")
	r := newRank(t)
	r.load(t, key(0), sp, makeSamples(40, 3))
	bind := []*pb.DataBinding{{Layer: "data", Key: key(0)}}
	_, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 20, Data: bind})
	wantCode(t, err, codes.InvalidArgument, "training diverged at iteration", "learning rate = 1e+30", "first non-finite output: layer")
	d := detailOf(t, err)
	if d.GetCode() != pb.ErrorCode_DIVERGED || d.GetSubject() == "" || d.GetIteration() < 1 {
		t.Errorf("detail %v, want DIVERGED naming a layer and the iteration", d)
	}
	// Under spark.gocaffe.nonFinite=warn the round trains on.
	w := newRank(t)
	w.svc.nonFinite = solver.NonFiniteWarn
	w.load(t, key(0), sp, makeSamples(40, 3))
	if _, err := w.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 20, Data: bind}); err != nil {
		t.Fatalf("warn policy: %v", err)
	}
}

func TestRoundRefusesNonFiniteWeights(t *testing.T) {
	sp := solverFor(t, 8)
	r := newRank(t)
	r.load(t, key(0), sp, makeSamples(40, 3))
	bind := []*pb.DataBinding{{Layer: "data", Key: key(0)}}
	first, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 2, Data: bind})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range first.weights.Layer {
		if l.GetName() == "ip1" {
			l.Blobs[0].Data[5] = float32(math.Inf(1))
		}
	}
	_, err = r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 2, Data: bind,
		Weights: marshal(t, first.weights), SolverState: marshal(t, first.state), StartIter: -1, Round: 1})
	wantCode(t, err, codes.InvalidArgument, `layer "ip1" blob 0: data[5] = +Inf`)
}

func TestRoundRefusesNetTooLarge(t *testing.T) {
	sp := solverFor(t, 8)
	r := newRank(t)
	r.svc.memSources = &memcheck.Sources{GoLimit: func() int64 { return 20000 }}
	r.load(t, key(0), sp, makeSamples(40, 3))
	bind := []*pb.DataBinding{{Layer: "data", Key: key(0)}}
	_, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 2, Data: bind})
	wantCode(t, err, codes.ResourceExhausted, "needs about", "may use 19.5 KiB (Go memory limit)", "largest blobs: conv1 [8×4×6×6]")
	if d := detailOf(t, err); d.GetCode() != pb.ErrorCode_OUT_OF_MEMORY || d.GetSubject() != "conv1" {
		t.Errorf("detail %v, want OUT_OF_MEMORY naming conv1", d)
	}
	if !strings.Contains(err.Error(), "batch 8") {
		t.Errorf("%v does not give the batch", err)
	}
}
