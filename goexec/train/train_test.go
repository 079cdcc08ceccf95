package train

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/data"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/solver"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

func key(p int) *pb.PartitionKey {
	return &pb.PartitionKey{Dataset: "app/data/train", Partition: int32(p)}
}

// wantStatus checks a failed call's gRPC code and message (for failures
// the client makes itself, such as its own cancellation).
func wantStatus(t *testing.T, err error, code codes.Code, mention ...string) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
	if !containsAll(st.Message(), mention...) {
		t.Fatalf("message %q does not mention %q", st.Message(), mention)
	}
	return st
}

// wantCode checks a failed call's gRPC code and message, and returns the
// ErrorDetail every failure goexec reports carries.
func wantCode(t *testing.T, err error, code codes.Code, mention ...string) *pb.ErrorDetail {
	t.Helper()
	st := wantStatus(t, err, code, mention...)
	var d *pb.ErrorDetail
	for _, x := range st.Details() {
		if e, ok := x.(*pb.ErrorDetail); ok {
			d = e
		}
	}
	if d == nil || d.GetCode() == pb.ErrorCode_ERROR_CODE_UNSPECIFIED {
		t.Fatalf("%v: no ErrorDetail with a code in the status details (%v)", err, st.Details())
	}
	return d
}

// wantDetail checks a failure's ErrorDetail code and, if given, its subject.
func wantDetail(t *testing.T, d *pb.ErrorDetail, code pb.ErrorCode, subject string) {
	t.Helper()
	if d.GetCode() != code || (subject != "" && d.GetSubject() != subject) {
		t.Fatalf("error detail %v, want code %v subject %q", d, code, subject)
	}
}

func TestPartitionLifecycle(t *testing.T) {
	r := newRank(t)
	sp := solverFor(t, 8)
	s := makeSamples(100, 1)
	info := r.load(t, key(3), sp, s)
	if !info.GetCached() || info.GetRows() != 100 || info.GetLayerName() != "data" || info.GetBytes() <= 0 {
		t.Fatalf("load answered %v", info)
	}
	if got := strings.Join(info.GetTops(), ","); got != "data 1x8x8,label 1" {
		t.Errorf("tops %q", got)
	}
	has, err := r.client.HasPartition(context.Background(), key(3))
	if err != nil || !has.GetCached() || has.GetRows() != 100 {
		t.Fatalf("HasPartition: %v %v", has, err)
	}
	if has, _ := r.client.HasPartition(context.Background(), key(4)); has.GetCached() {
		t.Error("partition 4 reported cached")
	}
	// Reloading replaces (and frees) the old partition; this time the first
	// chunk carries only key and layer, as the JVM shim sends it.
	if _, err := r.loadChunks(key(3), dataLayer(t, sp), arrowIPC(t, s.slice(0, 50), 20), 333, 50, true); err != nil {
		t.Fatal(err)
	}
	if has, _ := r.client.HasPartition(context.Background(), key(3)); has.GetRows() != 50 {
		t.Errorf("after reload: %d rows, want 50", has.GetRows())
	}
	drop, err := r.client.DropPartition(context.Background(), key(3))
	if err != nil || drop.GetCached() || drop.GetRows() != 50 {
		t.Fatalf("DropPartition: %v %v", drop, err)
	}
	if has, _ := r.client.HasPartition(context.Background(), key(3)); has.GetCached() {
		t.Error("dropped partition still cached")
	}
	if r.mem.CurrentAlloc() != 0 {
		t.Errorf("%d Arrow bytes held after drop", r.mem.CurrentAlloc())
	}
}

func TestLoadPartitionErrors(t *testing.T) {
	r := newRank(t)
	sp := solverFor(t, 8)
	layer := dataLayer(t, sp)
	good := arrowIPC(t, makeSamples(20, 2), 7)
	_, err := r.loadErr(&pb.PartitionKey{}, layer, good, 100, 0)
	wantCode(t, err, codes.InvalidArgument, "key.dataset")
	_, err = r.loadErr(key(0), nil, good, 100, 0)
	wantCode(t, err, codes.InvalidArgument, "layer")
	_, err = r.loadErr(key(0), []byte{0xff, 0xff, 0xff}, good, 100, 0)
	wantCode(t, err, codes.InvalidArgument, "layer")
	conv := marshal(t, sp.GetNetParam().GetLayer()[1])
	_, err = r.loadErr(key(0), conv, good, 100, 0)
	wantCode(t, err, codes.InvalidArgument, "conv1", "MemoryData")
	_, err = r.loadErr(key(0), layer, good[:len(good)/2], 100, 0)
	wantCode(t, err, codes.InvalidArgument, "partition app/data/train#0")
	_, err = r.loadErr(key(0), layer, good, 100, 21)
	wantCode(t, err, codes.InvalidArgument, "expected_rows", "21", "20")
	if has, _ := r.client.HasPartition(context.Background(), key(0)); has.GetCached() {
		t.Error("a failed load left a partition cached")
	}
}

// TestOneRankMatchesGoexecTrain: one rank in allreduce mode gives the
// weights the solver gives on its own (goexec train's path: solver.New,
// data.Source, Step) with the same seed and data.
func TestOneRankMatchesGoexecTrain(t *testing.T) {
	const iters, batch = 12, 16
	sp := solverFor(t, batch)
	s := makeSamples(150, 3)
	r := newRank(t)
	r.load(t, key(0), sp, s)
	res, errs := trainRanks(t, []*rank{r}, &pb.TrainRoundRequest{Solver: marshal(t, sp), StartIter: 0, Iterations: iters,
		Data: []*pb.DataBinding{{Layer: "data", Key: key(0)}}}, nil)
	if errs[0] != nil {
		t.Fatal(errs[0])
	}

	// The reference: the solver by itself, fed by caffe/data as goexec train does.
	reg, err := layers.Standard()
	if err != nil {
		t.Fatal(err)
	}
	im := &data.Images{N: s.n(), C: imgC, H: imgH, W: imgW, Pix: s.pix}
	for _, l := range s.labels {
		im.Labels = append(im.Labels, float32(l))
	}
	attach := func(ctx context.Context, n *network.Net[float32]) error {
		if n.Phase() != caffepb.Phase_TRAIN {
			return nil
		}
		tf, err := data.TransformFromProto(n.LayerParams()[n.LayerIndex("data")].GetTransformParam(), nil)
		if err != nil {
			return err
		}
		src, err := data.NewSource[float32](im, tf, true, 7)
		if err != nil {
			return err
		}
		return n.SetSource("data", src)
	}
	ref, err := solver.New[float32](context.Background(), sp, solver.WithRegistry[float32](reg), solver.WithSources(attach))
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.Step(context.Background(), iters); err != nil {
		t.Fatal(err)
	}
	if d := maxRelDiff(t, ref.TrainNet().ToProto(false), res[0].weights); d > 1e-6 {
		t.Errorf("weights differ from the solver's own by %g", d)
	}
	if res[0].state.GetIter() != iters || len(res[0].state.GetHistory()) != len(ref.Params()) {
		t.Errorf("state iter %d with %d history blobs", res[0].state.GetIter(), len(res[0].state.GetHistory()))
	}
	if got := len(res[0].progress); got != iters/2 {
		t.Errorf("%d progress events for %d iterations at display 2", got, iters)
	}
	if res[0].done.GetIterations() != iters || res[0].done.GetImages() != iters*batch {
		t.Errorf("done stats %v", res[0].done)
	}
	if want := float64(iters*batch) / float64(s.n()); math.Abs(res[0].done.GetEpochs()[0]-want) > 1e-9 {
		t.Errorf("epochs %v, want %g", res[0].done.GetEpochs(), want)
	}
	// And the trained model is one Caffe would load.
	if _, err := proto.Marshal(res[0].weights); err != nil {
		t.Error(err)
	}
}

// TestAllReduceEquivalence: N ranks with batch b each, gradients summed
// over loopback TCP and divided by N, train exactly like one rank with batch
// N·b that sees the same samples in each iteration.
func TestAllReduceEquivalence(t *testing.T) {
	const iters, b = 6, 8
	global := makeSamples(240, 4)
	for _, n := range []int{2, 3, 4} {
		t.Run(fmt.Sprintf("ranks=%d", n), func(t *testing.T) {
			single := newRank(t)
			spN := solverFor(t, n*b)
			single.load(t, key(0), spN, global)
			base := &pb.TrainRoundRequest{Solver: marshal(t, spN), Iterations: iters, Data: []*pb.DataBinding{{Layer: "data", Key: key(0)}}}
			one, errs := trainRanks(t, []*rank{single}, base, nil)
			if errs[0] != nil {
				t.Fatal(errs[0])
			}

			// Rank r gets blocks r, r+n, r+2n, ... of b samples: iteration i of
			// rank r then sees block i·n + r, the r-th part of the single batch i.
			// 240/8 = 30 blocks: with 4 ranks the partitions are uneven (8, 8, 7, 7 blocks).
			sp := solverFor(t, b)
			ranks := make([]*rank, n)
			parts := make([]sampleSet, n)
			for k := 0; k*b < global.n(); k++ {
				parts[k%n] = parts[k%n].concat(global.slice(k*b, (k+1)*b))
			}
			for r := range ranks {
				ranks[r] = newRank(t)
				info := ranks[r].load(t, key(r), sp, parts[r])
				if info.GetRows() != int64(parts[r].n()) {
					t.Fatalf("rank %d: %d rows cached, sent %d", r, info.GetRows(), parts[r].n())
				}
			}
			req := &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: iters, SyncMode: pb.SyncMode_ALLREDUCE, RingTimeoutMs: 20000}
			res, errs := trainRanks(t, ranks, req, func(i int, r *pb.TrainRoundRequest) {
				r.Data = []*pb.DataBinding{{Layer: "data", Key: key(i)}}
			})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("rank %d: %v", i, err)
				}
			}
			for i := 1; i < n; i++ {
				if d := maxRelDiff(t, res[0].weights, res[i].weights); d != 0 {
					t.Errorf("rank %d's weights differ from rank 0's by %g (replicas must stay identical)", i, d)
				}
			}
			if d := maxRelDiff(t, one[0].weights, res[0].weights); d > 1e-5 {
				t.Errorf("%d ranks × batch %d differ from 1 rank × batch %d by %g", n, b, n*b, d)
			} else {
				t.Logf("%d ranks × batch %d vs 1 rank × batch %d: max relative difference %g", n, b, n*b, d)
			}
			// The reported loss is the global mean, as the single rank's.
			for k := range one[0].progress {
				if a, c := one[0].progress[k].GetLoss(), res[0].progress[k].GetLoss(); math.Abs(a-c) > 1e-4*(1+math.Abs(a)) {
					t.Errorf("progress %d: loss %g, single rank %g", k, c, a)
				}
			}
			if res[0].done.GetAllreduceSeconds() <= 0 {
				t.Error("no all-reduce time recorded")
			}
		})
	}
}

// TestRoundsContinue: two rounds of 3 iterations (weights and state passed
// back in, the session kept) equal one round of 6.
func TestRoundsContinue(t *testing.T) {
	sp := solverFor(t, 8)
	s := makeSamples(60, 5)
	whole, split := newRank(t), newRank(t)
	whole.load(t, key(0), sp, s)
	split.load(t, key(0), sp, s)
	bind := []*pb.DataBinding{{Layer: "data", Key: key(0)}}
	ref, err := whole.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 6, Data: bind})
	if err != nil {
		t.Fatal(err)
	}
	first, err := split.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 3, Data: bind})
	if err != nil {
		t.Fatal(err)
	}
	second, err := split.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 3, Data: bind,
		Weights: marshal(t, first.weights), SolverState: marshal(t, first.state), StartIter: -1, Round: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxRelDiff(t, ref.weights, second.weights); d != 0 {
		t.Errorf("3+3 iterations differ from 6 by %g", d)
	}
	if second.state.GetIter() != 6 {
		t.Errorf("iter %d after 3+3", second.state.GetIter())
	}
}

func TestAverageMode(t *testing.T) {
	sp := solverFor(t, 8)
	global := makeSamples(120, 6)
	ranks := []*rank{newRank(t), newRank(t)}
	ranks[0].load(t, key(0), sp, global.slice(0, 70)) // uneven partitions
	ranks[1].load(t, key(1), sp, global.slice(70, 120))
	req := &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 4, SyncMode: pb.SyncMode_AVERAGE}
	res, errs := trainRanks(t, ranks, req, func(i int, r *pb.TrainRoundRequest) {
		r.Data = []*pb.DataBinding{{Layer: "data", Key: key(i)}}
		r.Peers, r.Secret = nil, nil // no ring in average mode
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
	if d := maxRelDiff(t, res[0].weights, res[1].weights); d == 0 {
		t.Error("ranks trained on different partitions returned identical weights")
	}
	for i, r := range res {
		if r.state.GetIter() != 4 || len(r.state.GetHistory()) == 0 {
			t.Fatalf("rank %d: state iter %d, %d history blobs", i, r.state.GetIter(), len(r.state.GetHistory()))
		}
		nonzero := false
		for _, h := range r.state.GetHistory() {
			for _, v := range h.GetData() {
				nonzero = nonzero || v != 0
			}
		}
		if !nonzero {
			t.Errorf("rank %d: momentum history is all zero", i)
		}
		if r.done.GetAllreduceSeconds() != 0 {
			t.Errorf("rank %d: all-reduce time in average mode", i)
		}
	}
	if e0, e1 := res[0].done.GetEpochs()[0], res[1].done.GetEpochs()[0]; !(e1 > e0) {
		t.Errorf("the smaller partition should complete more epochs: %g vs %g", e0, e1)
	}
}

func TestTrainRoundErrors(t *testing.T) {
	r := newRank(t)
	sp := solverFor(t, 8)
	r.load(t, key(0), sp, makeSamples(30, 7))
	bind := []*pb.DataBinding{{Layer: "data", Key: key(0)}}
	ok := func() *pb.TrainRoundRequest {
		return &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 2, Data: bind}
	}
	call := func(req *pb.TrainRoundRequest) error {
		_, err := r.train(context.Background(), req)
		return err
	}
	req := ok()
	req.Data = []*pb.DataBinding{{Layer: "data", Key: key(9)}}
	wantDetail(t, wantCode(t, call(req), codes.FailedPrecondition, "app/data/train#9", "LoadPartition"), pb.ErrorCode_INTERNAL, "app/data/train#9")
	req = ok()
	req.Iterations = 0
	wantDetail(t, wantCode(t, call(req), codes.InvalidArgument, "iterations"), pb.ErrorCode_BAD_INPUT, "iterations")
	req = ok()
	req.Rank, req.WorldSize = 3, 2
	wantCode(t, call(req), codes.InvalidArgument, "rank")
	req = ok()
	req.Solver = []byte{0xff, 0x01}
	wantCode(t, call(req), codes.InvalidArgument, "solver")
	req = ok()
	req.Data = []*pb.DataBinding{{Layer: "nope", Key: key(0)}}
	wantCode(t, call(req), codes.InvalidArgument, "data[0].layer", "nope")
	req = ok()
	req.Data = nil
	wantCode(t, call(req), codes.InvalidArgument, "data")
	req = ok()
	req.WorldSize, req.Peers, req.Secret = 2, []string{"127.0.0.1:1", "127.0.0.1:2"}, []byte("0123456789abcdefXYZ")
	wantDetail(t, wantCode(t, call(req), codes.Aborted, "OpenPeerPort"), pb.ErrorCode_RING_STALE, "peers")
	req.Secret = []byte("short")
	wantCode(t, call(req), codes.InvalidArgument, "secret")
	noSeed := proto.CloneOf(sp)
	noSeed.RandomSeed = proto.Int64(-1)
	req = ok()
	req.Solver, req.WorldSize, req.SyncMode = marshal(t, noSeed), 2, pb.SyncMode_AVERAGE
	wantCode(t, call(req), codes.InvalidArgument, "seed")
	req = ok()
	req.Weights = []byte("junk")
	wantCode(t, call(req), codes.InvalidArgument, "weights")
	// After all that the service still trains.
	if err := call(ok()); err != nil {
		t.Fatal(err)
	}
}

// TestCancelStopsRound: cancelling the call stops training within an
// iteration with Canceled, and the next round works.
func TestCancelStopsRound(t *testing.T) {
	r := newRank(t)
	sp := solverFor(t, 8)
	r.load(t, key(0), sp, makeSamples(40, 8))
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := r.client.TrainRound(ctx, &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 1 << 30,
		Data: []*pb.DataBinding{{Layer: "data", Key: key(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // first progress event: training runs
		t.Fatal(err)
	}
	cancel()
	for err == nil {
		_, err = stream.Recv()
	}
	wantStatus(t, err, codes.Canceled) // the client's own cancellation
	// The service is free again (acquire succeeds) and trains.
	if _, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 2,
		Data: []*pb.DataBinding{{Layer: "data", Key: key(0)}}}); err != nil {
		t.Fatal(err)
	}
}

// TestDeadPeerFailsRound: when one rank dies mid-round, the other's round
// fails with Unavailable naming the dead rank and its address.
func TestDeadPeerFailsRound(t *testing.T) {
	sp := solverFor(t, 8)
	ranks := []*rank{newRank(t), newRank(t)}
	var peers []string
	for i, r := range ranks {
		r.load(t, key(i), sp, makeSamples(40, uint64(10+i)))
		resp, err := r.client.OpenPeerPort(context.Background(), &pb.OpenPeerPortRequest{Ip: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, resp.GetAddress())
	}
	mk := func(i int) *pb.TrainRoundRequest {
		return &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 1 << 30, Rank: int32(i), WorldSize: 2, Peers: peers,
			Secret: []byte("per-application-secret-0123456789"), RingTimeoutMs: 3000,
			Data: []*pb.DataBinding{{Layer: "data", Key: key(i)}}}
	}
	ctx1, kill := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		s, err := ranks[1].client.TrainRound(ctx1, mk(1))
		if err == nil {
			_, err = s.Recv()
			if err == nil {
				kill() // rank 1 dies after it trained a little
				for err == nil {
					_, err = s.Recv()
				}
			}
		}
		errc <- err
	}()
	start := time.Now()
	_, err := ranks[0].train(context.Background(), mk(0))
	wantDetail(t, wantCode(t, err, codes.Unavailable, "rank 1", peers[1]), pb.ErrorCode_PEER_LOST, peers[1])
	t.Logf("rank 0 failed %v after start: %v", time.Since(start), err)
	wantStatus(t, <-errc, codes.Canceled) // the client's own cancellation
}

// TestDeadPeerFailsDirectRound: with three ranks (the direct all-reduce,
// every rank linked to every other) a rank that dies mid-round fails the
// others' rounds with PEER_LOST naming a peer, not a hang; the first rank
// to notice can only have seen the dead one, so at least one names it.
func TestDeadPeerFailsDirectRound(t *testing.T) {
	sp := solverFor(t, 8)
	const world = 3
	var ranks []*rank
	var peers []string
	for i := 0; i < world; i++ {
		r := newRank(t)
		r.load(t, key(i), sp, makeSamples(40, uint64(20+i)))
		resp, err := r.client.OpenPeerPort(context.Background(), &pb.OpenPeerPortRequest{Ip: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		ranks = append(ranks, r)
		peers = append(peers, resp.GetAddress())
	}
	mk := func(i int) *pb.TrainRoundRequest {
		return &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 1 << 30, Rank: int32(i), WorldSize: world, Peers: peers,
			Secret: []byte("per-application-secret-0123456789"), RingTimeoutMs: 3000,
			Data: []*pb.DataBinding{{Layer: "data", Key: key(i)}}}
	}
	ctx2, kill := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		s, err := ranks[2].client.TrainRound(ctx2, mk(2))
		if err == nil {
			_, err = s.Recv()
			if err == nil {
				kill() // rank 2 dies after it trained a little
				for err == nil {
					_, err = s.Recv()
				}
			}
		}
		errc <- err
	}()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = ranks[i].train(context.Background(), mk(i))
		}()
	}
	wg.Wait()
	named := 0
	for i, err := range errs {
		d := wantCode(t, err, codes.Unavailable, "rank")
		other := peers[1-i]
		wantDetail(t, d, pb.ErrorCode_PEER_LOST, "")
		switch d.GetSubject() {
		case peers[2]:
			named++
		case other:
		default:
			t.Errorf("rank %d: PEER_LOST names %q, not a peer (%s or %s)", i, d.GetSubject(), peers[2], other)
		}
		t.Logf("rank %d: %v", i, err)
	}
	if named == 0 {
		t.Errorf("neither rank names the dead rank 2 (%s): %v", peers[2], errs)
	}
	wantStatus(t, <-errc, codes.Canceled) // the client's own cancellation
}

func TestOpenPeerPortChecks(t *testing.T) {
	r := newRank(t)
	_, err := r.client.OpenPeerPort(context.Background(), &pb.OpenPeerPortRequest{Ip: "0.0.0.0"})
	wantCode(t, err, codes.InvalidArgument, "ip", "all interfaces")
	_, err = r.client.OpenPeerPort(context.Background(), &pb.OpenPeerPortRequest{})
	wantCode(t, err, codes.InvalidArgument, "ip")
	resp, err := r.client.OpenPeerPort(context.Background(), &pb.OpenPeerPortRequest{Ip: "127.0.0.1"})
	if err != nil || !strings.HasPrefix(resp.GetAddress(), "127.0.0.1:") {
		t.Fatalf("%v %v", resp, err)
	}
}

func TestScore(t *testing.T) {
	const batch = 16
	sp := solverFor(t, batch)
	r := newRank(t)
	r.load(t, key(0), sp, makeSamples(400, 20))
	test := makeSamples(100, 21)
	r.load(t, &pb.PartitionKey{Dataset: "app/data/test", Partition: 0}, sp, test)
	tb := []*pb.DataBinding{{Layer: "data", Key: &pb.PartitionKey{Dataset: "app/data/test", Partition: 0}}}
	score := func(w *caffepb.NetParameter) *pb.ScoreResponse {
		resp, err := r.client.Score(context.Background(), &pb.ScoreRequest{Solver: marshal(t, sp), Weights: marshal(t, w), Data: tb})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	before, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 1,
		Data: []*pb.DataBinding{{Layer: "data", Key: key(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	after, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 150, StartIter: -1,
		Weights: marshal(t, before.weights), SolverState: marshal(t, before.state), Data: []*pb.DataBinding{{Layer: "data", Key: key(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	s0, s1 := score(before.weights), score(after.weights)
	if want := int64((100 + batch - 1) / batch); s1.GetPasses() != want || s1.GetImages() != want*batch {
		t.Fatalf("passes %d images %d, want %d passes over 100 rows", s1.GetPasses(), s1.GetImages(), want)
	}
	get := func(r *pb.ScoreResponse, name string) (float64, float64) {
		for _, o := range r.GetOutputs() {
			if o.GetName() == name {
				return o.GetSum() / float64(r.GetPasses()), o.GetLossWeight()
			}
		}
		t.Fatalf("no output %q in %v", name, r.GetOutputs())
		return 0, 0
	}
	acc0, _ := get(s0, "accuracy")
	acc1, w := get(s1, "accuracy")
	loss0, lw := get(s0, "loss")
	loss1, _ := get(s1, "loss")
	if w != 0 || lw != 1 {
		t.Errorf("loss weights: accuracy %g, loss %g", w, lw)
	}
	t.Logf("accuracy %.3f -> %.3f, loss %.3f -> %.3f", acc0, acc1, loss0, loss1)
	if !(acc1 > acc0 && loss1 < loss0 && acc1 > 0.5) {
		t.Errorf("training did not help: accuracy %.3f -> %.3f, loss %.3f -> %.3f", acc0, acc1, loss0, loss1)
	}
	// Scoring is deterministic.
	if again := score(after.weights); !proto.Equal(again.GetOutputs()[0], s1.GetOutputs()[0]) {
		t.Errorf("scores differ between calls: %v vs %v", again.GetOutputs(), s1.GetOutputs())
	}
	_, err = r.client.Score(context.Background(), &pb.ScoreRequest{Solver: marshal(t, sp), Weights: marshal(t, after.weights),
		Data: []*pb.DataBinding{{Layer: "data", Key: key(5)}}})
	wantCode(t, err, codes.FailedPrecondition, "LoadPartition")
}

// TestScoreFreshInitialisation: Score without weights scores the weights a
// TrainRound starts from with the solver's random_seed (Caffe's test at
// iteration 0): the same as scoring the weights after one update with
// base_lr 0. Without weights or a seed it is an error naming both.
func TestScoreFreshInitialisation(t *testing.T) {
	const batch = 16
	sp := solverFor(t, batch)
	sp.RandomSeed = proto.Int64(1701)
	sp.BaseLr = proto.Float32(0)
	r := newRank(t)
	r.load(t, key(0), sp, makeSamples(64, 30))
	test := &pb.PartitionKey{Dataset: "app/data/test", Partition: 0}
	r.load(t, test, sp, makeSamples(100, 31))
	tb := []*pb.DataBinding{{Layer: "data", Key: test}}
	zero, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 1,
		Data: []*pb.DataBinding{{Layer: "data", Key: key(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.client.Score(context.Background(), &pb.ScoreRequest{Solver: marshal(t, sp), Weights: marshal(t, zero.weights), Data: tb})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.client.Score(context.Background(), &pb.ScoreRequest{Solver: marshal(t, sp), Data: tb})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.GetOutputs()) == 0 || len(got.GetOutputs()) != len(want.GetOutputs()) {
		t.Fatalf("outputs %v, want %v", got.GetOutputs(), want.GetOutputs())
	}
	for i, o := range got.GetOutputs() {
		if !proto.Equal(o, want.GetOutputs()[i]) {
			t.Errorf("fresh initialisation scores %v, the seed's trained-at-lr-0 weights %v", o, want.GetOutputs()[i])
		}
	}
	sp.RandomSeed = proto.Int64(-1)
	_, err = r.client.Score(context.Background(), &pb.ScoreRequest{Solver: marshal(t, sp), Data: tb})
	wantCode(t, err, codes.InvalidArgument, "weights", "random_seed")
}

// TestReloadedPartitionIsUsed: a partition reloaded between rounds feeds the
// next round even though the session (and its samplers) is kept.
func TestReloadedPartitionIsUsed(t *testing.T) {
	sp := solverFor(t, 8)
	a, b := makeSamples(40, 40), makeSamples(40, 41)
	bind := []*pb.DataBinding{{Layer: "data", Key: key(0)}}
	run := func(r *rank, second sampleSet) *roundResult {
		r.load(t, key(0), sp, a)
		first, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 2, Data: bind})
		if err != nil {
			t.Fatal(err)
		}
		if second.n() > 0 {
			r.load(t, key(0), sp, second)
		}
		res, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 2, Data: bind,
			Weights: marshal(t, first.weights), SolverState: marshal(t, first.state), StartIter: -1})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	kept := run(newRank(t), sampleSet{})
	reloaded := run(newRank(t), b)
	if d := maxRelDiff(t, kept.weights, reloaded.weights); d == 0 {
		t.Error("the second round trained on the old partition after a reload")
	}
}
