package train

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// ringRounds trains rounds of 3 iterations on two ranks, each round
// continuing the previous one's weights and state; peer ports are opened
// only when the test says.
type ringRounds struct {
	t     *testing.T
	sp    []byte
	ranks []*rank
	peers []string
	res   []*roundResult // the last round's results
	round int64
}

func newRingRounds(t *testing.T) *ringRounds {
	sp := solverFor(t, 8)
	rr := &ringRounds{t: t, sp: marshal(t, sp), ranks: []*rank{newRank(t), newRank(t)}}
	for i, r := range rr.ranks {
		r.load(t, key(i), sp, makeSamples(40, uint64(20+i)))
	}
	return rr
}

// openPorts opens a peer port on every rank (the driver finding peers).
func (rr *ringRounds) openPorts() {
	rr.peers = nil
	for _, r := range rr.ranks {
		resp, err := r.client.OpenPeerPort(context.Background(), &pb.OpenPeerPortRequest{Ip: "127.0.0.1"})
		if err != nil {
			rr.t.Fatal(err)
		}
		rr.peers = append(rr.peers, resp.GetAddress())
	}
}

// train runs one round of 3 iterations on every rank under generation gen.
func (rr *ringRounds) train(gen int64, tweak func(i int, r *pb.TrainRoundRequest)) []error {
	res := make([]*roundResult, len(rr.ranks))
	errs := make([]error, len(rr.ranks))
	var wg sync.WaitGroup
	for i, r := range rr.ranks {
		req := &pb.TrainRoundRequest{Solver: rr.sp, Iterations: 3, Rank: int32(i), WorldSize: int32(len(rr.ranks)),
			Peers: rr.peers, Secret: []byte("per-application-secret-0123456789"), RingTimeoutMs: 20000,
			RingGeneration: gen, Round: rr.round, Data: []*pb.DataBinding{{Layer: "data", Key: key(i)}}}
		if rr.res != nil {
			req.Weights, req.SolverState, req.StartIter = marshal(rr.t, rr.res[0].weights), marshal(rr.t, rr.res[0].state), -1
		}
		if tweak != nil {
			tweak(i, req)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = r.train(context.Background(), req)
		}()
	}
	wg.Wait()
	ok := true
	for _, err := range errs {
		ok = ok && err == nil
	}
	if ok {
		rr.res = res
		rr.round++
	}
	return errs
}

func (rr *ringRounds) mustTrain(gen int64, tweak func(i int, r *pb.TrainRoundRequest)) {
	rr.t.Helper()
	for i, err := range rr.train(gen, tweak) {
		if err != nil {
			rr.t.Fatalf("round %d, rank %d: %v", rr.round, i, err)
		}
	}
}

// TestRingKeptAcrossRounds: under one ring generation the peers are found
// once (one OpenPeerPort per rank) and three rounds train on the same
// ring; the result equals three rounds that each build their ring
// (generation 0), bit for bit.
func TestRingKeptAcrossRounds(t *testing.T) {
	kept := newRingRounds(t)
	kept.openPorts()
	for range 3 {
		kept.mustTrain(1, nil) // no OpenPeerPort between rounds: the kept ring serves
	}
	fresh := newRingRounds(t)
	for range 3 {
		fresh.openPorts()
		fresh.mustTrain(0, nil)
	}
	if d := maxRelDiff(t, fresh.res[0].weights, kept.res[0].weights); d != 0 {
		t.Errorf("rounds on a kept ring differ from rounds on fresh rings by %g", d)
	}
	if d := maxRelDiff(t, kept.res[0].weights, kept.res[1].weights); d != 0 {
		t.Errorf("replicas differ by %g", d)
	}
	// Generation 0 keeps nothing: without a new port the next round fails.
	errs := fresh.train(0, nil)
	wantDetail(t, wantCode(t, errs[0], codes.Aborted, "OpenPeerPort"), pb.ErrorCode_RING_STALE, "peers")

	// A new generation with new ports builds a new ring and trains on.
	kept.openPorts()
	kept.mustTrain(2, nil)
	kept.mustTrain(2, nil)
	if got := kept.res[0].state.GetIter(); got != 15 {
		t.Errorf("iter %d after 5 rounds of 3", got)
	}
}

// TestKeptRingPeerGone: a peer that dies between rounds fails the next
// round on the kept ring with PEER_LOST naming it (not a hang), and a new
// generation trains again.
func TestKeptRingPeerGone(t *testing.T) {
	rr := newRingRounds(t)
	rr.openPorts()
	rr.mustTrain(1, nil)
	// Rank 1's goexec goes away; a new one takes its place at another port.
	gone := rr.peers[1]
	if err := rr.ranks[1].svc.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := rr.ranks[0].train(context.Background(), &pb.TrainRoundRequest{Solver: rr.sp, Iterations: 3, WorldSize: 2,
		Peers: rr.peers, Secret: []byte("per-application-secret-0123456789"), RingTimeoutMs: 20000, RingGeneration: 1,
		Weights: marshal(t, rr.res[0].weights), SolverState: marshal(t, rr.res[0].state), StartIter: -1,
		Data: []*pb.DataBinding{{Layer: "data", Key: key(0)}}})
	wantDetail(t, wantCode(t, err, codes.Unavailable, "rank 1", gone), pb.ErrorCode_PEER_LOST, gone)

	rr.ranks[1] = newRank(t)
	rr.ranks[1].load(t, key(1), solverFor(t, 8), makeSamples(40, 21))
	rr.openPorts()
	rr.mustTrain(2, nil)
}

// TestRingStale: a request whose peers[rank] is not this goexec's peer
// port (the kept ring's, no new one open) is RING_STALE, not a hang.
func TestRingStale(t *testing.T) {
	rr := newRingRounds(t)
	rr.openPorts()
	rr.mustTrain(1, nil)
	moved := append([]string(nil), rr.peers...)
	moved[0] = "127.0.0.1:1"
	_, err := rr.ranks[0].train(context.Background(), &pb.TrainRoundRequest{Solver: rr.sp, Iterations: 3, WorldSize: 2,
		Peers: moved, Secret: []byte("per-application-secret-0123456789"), RingGeneration: 1,
		Weights: marshal(t, rr.res[0].weights), SolverState: marshal(t, rr.res[0].state), StartIter: -1,
		Data: []*pb.DataBinding{{Layer: "data", Key: key(0)}}})
	wantDetail(t, wantCode(t, err, codes.Aborted, "peers[0]", rr.peers[0]), pb.ErrorCode_RING_STALE, "127.0.0.1:1")
}

// TestIdleConnectionsDoNotStallRing: strangers that connect to the peer
// ports and say nothing, or dribble bytes, stay open for the whole round;
// the ring still forms and trains (before, the first idle connection held
// the accept until the 10-minute join deadline).
func TestIdleConnectionsDoNotStallRing(t *testing.T) {
	rr := newRingRounds(t)
	rr.openPorts()
	var strangers []net.Conn
	for _, addr := range rr.peers {
		idle, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() { // reads the hello, then sends one byte of its answer
			var hello [40]byte
			if _, err := io.ReadFull(slow, hello[:]); err == nil {
				slow.Write([]byte{0})
			}
		}()
		strangers = append(strangers, idle, slow)
	}
	defer func() {
		for _, c := range strangers {
			c.Close()
		}
	}()
	rr.mustTrain(0, nil)
}

// TestEncryptedRing: an encrypted ring trains exactly as a plain one; ranks
// that disagree on encryption fail the handshake with PEER_LOST.
func TestEncryptedRing(t *testing.T) {
	plain, enc := newRingRounds(t), newRingRounds(t)
	plain.openPorts()
	plain.mustTrain(0, nil)
	enc.openPorts()
	enc.mustTrain(0, func(_ int, r *pb.TrainRoundRequest) { r.EncryptRing = true })
	if d := maxRelDiff(t, plain.res[0].weights, enc.res[0].weights); d != 0 {
		t.Errorf("encrypted ring's weights differ from the plain ring's by %g", d)
	}
	enc.openPorts()
	errs := enc.train(0, func(i int, r *pb.TrainRoundRequest) { r.EncryptRing = i == 0; r.RingTimeoutMs = 3000 })
	for i, err := range errs {
		wantDetail(t, wantCode(t, err, codes.Unavailable, "encryption"), pb.ErrorCode_PEER_LOST, "")
		t.Logf("rank %d: %v", i, err)
	}
}

// TestBadLabelNamesRow: a label out of range is BAD_INPUT naming the
// partition row (not its position in the batch) and the iteration.
func TestBadLabelNamesRow(t *testing.T) {
	r := newRank(t)
	sp := solverFor(t, 8)
	s := makeSamples(30, 9)
	s.labels[21] = 42 // row 21: batch 2 (iteration 2), position 5
	r.load(t, key(0), sp, s)
	_, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 5,
		Data: []*pb.DataBinding{{Layer: "data", Key: key(0)}}})
	d := wantCode(t, err, codes.InvalidArgument, "row 21", "label 42", "iteration 2")
	wantDetail(t, d, pb.ErrorCode_BAD_INPUT, "partition app/data/train#0 row 21")
	if d.GetIteration() != 2 {
		t.Errorf("iteration %d, want 2", d.GetIteration())
	}
}

// TestProgressReportsRate: every progress event, a round's first
// included, carries the rank's images per second (the driver sums them).
func TestProgressReportsRate(t *testing.T) {
	r := newRank(t)
	sp := solverFor(t, 8)
	r.load(t, key(0), sp, makeSamples(40, 3))
	res, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 5,
		Data: []*pb.DataBinding{{Layer: "data", Key: key(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.progress) != 3 { // display 2: iterations 0, 2, 4
		t.Fatalf("%d progress events, want 3", len(res.progress))
	}
	for _, p := range res.progress {
		if p.GetImagesPerSecond() <= 0 || p.GetLoss() <= 0 || p.GetLr() <= 0 {
			t.Errorf("progress %v: want images/s, loss and lr", p)
		}
	}
}
