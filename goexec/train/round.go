package train

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/solver"
	"github.com/gocaffe/gocaffe/goexec/ring"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

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
	var peers *roundRing
	if p.mode == pb.SyncMode_ALLREDUCE && p.world > 1 {
		if peers, err = s.ringFor(p); err != nil {
			return err
		}
	}
	// Whatever happens to the round, its ring is kept for the next round of
	// the same generation only after a success.
	ok := false
	defer func() {
		if peers != nil {
			s.endRing(peers, ok)
		}
	}()
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
	defer func() {
		if !ok && s.sess != nil {
			s.sess.close()
			s.sess = nil
		}
	}()
	// Join the ring once the net is built, so the first all-reduce does not
	// wait for slower peers' setup.
	var rg *ring.Ring
	if peers != nil {
		if rg, err = s.joinRing(ctx, peers, log); err != nil {
			return err
		}
	}

	for _, b := range ss.bindings {
		log.Info().Str("layer", b.layer).Str("partition", b.key.String()).Int("rows", b.rows).
			Int64("drawn_before", b.sampler.Drawn()).Msg("round data")
	}
	setup := time.Since(setupStart)
	var ringAt ring.Stats // a kept ring's stats count from its first round
	if rg != nil {
		ringAt = rg.Stats()
	}
	stats, err := s.run(ctx, ss, p, rg, stream.Send)
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
	ev := log.Info().Int64("iterations", stats.Iterations).Float64("seconds", stats.Seconds).Float64("allreduce_seconds", stats.AllreduceSeconds)
	if rg != nil {
		// Where the all-reduces' time went: waiting for the peers to reach
		// each step, the data crossing, and the direct path's sums.
		st := rg.Stats()
		ev = ev.Int("allreduce_direct", st.Direct-ringAt.Direct).Float64("allreduce_wait_seconds", (st.Wait-ringAt.Wait).Seconds()).
			Float64("allreduce_transfer_seconds", (st.Transfer-ringAt.Transfer).Seconds()).
			Float64("allreduce_reduce_seconds", (st.Reduce - ringAt.Reduce).Seconds())
	}
	ev.Float64("loss", stats.FinalLoss).Floats64("epochs", stats.Epochs).Msg("round done")
	return nil
}

// roundRun is one round's state seen by the solver's hooks: the ring the
// gradients are summed over and the stream progress goes to.
type roundRun struct {
	rg         *ring.Ring // nil: no all-reduce
	world      int
	start      time.Time
	reduceTime time.Duration
	send       func(*pb.TrainRoundEvent) error
	sendErr    error
}

// reduce is the solver's gradient hook: it sums the gradients (laid out in
// flat, the loss in its last element) over the ranks in place and divides
// by the world size, so every rank applies the same update; it returns the
// ranks' mean loss.
func (r *roundRun) reduce(ctx context.Context, flat []float32, loss float64) (float64, error) {
	if r.sendErr != nil {
		return 0, r.sendErr
	}
	if r.rg == nil {
		return loss, nil
	}
	t0 := time.Now()
	flat[len(flat)-1] = float32(loss)
	if err := r.rg.AllReduce(ctx, flat); err != nil {
		return 0, &ringFailure{err}
	}
	inv := 1 / float32(r.world)
	for j := range flat {
		flat[j] *= inv
	}
	r.reduceTime += time.Since(t0)
	return float64(flat[len(flat)-1]), nil
}

// progress is the solver's progress hook: it streams the display report.
func (r *roundRun) progress(p solver.Progress) {
	if r.sendErr != nil {
		return
	}
	ev := &pb.Progress{Iter: int64(p.Iter), Loss: p.Loss, Lr: p.LR, ImagesPerSecond: p.ImagesPerSec,
		ElapsedSeconds: time.Since(r.start).Seconds()}
	r.sendErr = r.send(&pb.TrainRoundEvent{Event: &pb.TrainRoundEvent_Progress{Progress: ev}})
}

// run trains the round's iterations with the solver's step: forward and
// backward, the all-reduce (allreduce mode) as its gradient hook, the
// update; progress every display iterations through its progress hook.
func (s *Service) run(ctx context.Context, ss *session, p *roundPlan, rg *ring.Ring, send func(*pb.TrainRoundEvent) error) (*pb.RoundStats, error) {
	batch := 0
	for _, b := range ss.bindings {
		batch = max(batch, b.sampler.TopShape(0)[0])
	}
	images := batch * int(max(1, p.sp.GetIterSize()))
	drawn := make([]int64, len(ss.bindings))
	for k, b := range ss.bindings {
		drawn[k] = b.sampler.Drawn()
	}
	run := &roundRun{rg: rg, world: p.world, start: time.Now(), send: send}
	ss.round = run
	err := ss.s.Step(ctx, p.iters)
	ss.round = nil
	if err == nil {
		err = run.sendErr
	}
	if err != nil {
		it := ss.s.Iter()
		return nil, trainError(ctx, fmt.Sprintf("rank %d, iteration %d", p.rank, it), it, err, labelRows(ss.bindings))
	}
	st := &pb.RoundStats{Iterations: int64(p.iters), Seconds: time.Since(run.start).Seconds(),
		AllreduceSeconds: run.reduceTime.Seconds(), Images: int64(p.iters * images), FinalLoss: ss.s.SmoothedLoss()}
	for k, b := range ss.bindings {
		st.Epochs = append(st.Epochs, float64(b.sampler.Drawn()-drawn[k])/float64(b.rows))
	}
	return st, nil
}

// sendResult streams the weights and the solver state in chunks.
func sendResult(send func(*pb.TrainRoundEvent) error, sv *solver.Solver[float32]) error {
	w, err := proto.Marshal(sv.TrainNet().ToProto(false))
	if err != nil {
		return internal(noIter, "weights: %v", err)
	}
	st, err := proto.Marshal(sv.State(""))
	if err != nil {
		return internal(noIter, "solver state: %v", err)
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
