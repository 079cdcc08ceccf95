package train

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gocaffe/gocaffe/arrowio"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/solver"
	"github.com/gocaffe/gocaffe/goexec/ring"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// Every failed Trainer RPC returns a gRPC status whose details hold one
// pb.ErrorDetail: the driver decides by its code (bad input, lost peer,
// stale ring...) whether a retry can help, never by the message text.

// noIter is ErrorDetail.iteration when the failure is not in training.
const noIter = -1

// codedError returns a gRPC status error with grpcCode and msg, carrying an
// ErrorDetail with code, subject (what failed: a field, a row's sample id,
// a peer's address) and the training iteration (or noIter).
func codedError(code pb.ErrorCode, grpcCode codes.Code, subject string, iter int, msg string) error {
	st := status.New(grpcCode, msg)
	if d, err := st.WithDetails(&pb.ErrorDetail{Code: code, Subject: subject, Iteration: int64(iter)}); err == nil {
		st = d
	}
	return st.Err()
}

// badInput is a BAD_INPUT error (gRPC InvalidArgument) about subject: the
// request, the data, the net or the weights can never work; not retried.
func badInput(subject, format string, args ...any) error {
	return codedError(pb.ErrorCode_BAD_INPUT, codes.InvalidArgument, subject, noIter, fmt.Sprintf(format, args...))
}

// invalid is a BAD_INPUT error about a request field; the message starts
// with the field's name.
func invalid(field, format string, args ...any) error {
	return badInput(field, "%s: %s", field, fmt.Sprintf(format, args...))
}

// internal is an INTERNAL error (gRPC Internal): anything else.
func internal(iter int, format string, args ...any) error {
	return codedError(pb.ErrorCode_INTERNAL, codes.Internal, "", iter, fmt.Sprintf(format, args...))
}

// notCached is a partition missing from this goexec's cache (gRPC
// FailedPrecondition: load it and retry).
func notCached(field string, key arrowio.Key) error {
	return codedError(pb.ErrorCode_INTERNAL, codes.FailedPrecondition, key.String(), noIter,
		fmt.Sprintf("%s: partition %s is not cached in this goexec (LoadPartition it, then retry)", field, key))
}

// peerLost is a PEER_LOST error (gRPC Unavailable): a ring peer died,
// stalled, closed its connection or failed authentication. The subject is
// the peer's address when the ring named one.
func peerLost(iter int, err error) error {
	subject := ""
	var pe *ring.PeerError
	if errors.As(err, &pe) {
		subject = pe.Addr
	}
	return codedError(pb.ErrorCode_PEER_LOST, codes.Unavailable, subject, iter, err.Error())
}

// ringStale is a RING_STALE error (gRPC Aborted): the request's peers do
// not match this goexec's peer port; the driver finds peers again.
func ringStale(subject, format string, args ...any) error {
	return codedError(pb.ErrorCode_RING_STALE, codes.Aborted, subject, noIter, fmt.Sprintf(format, args...))
}

// ctxStatus maps a context error onto its gRPC status (INTERNAL detail: a
// cancelled call is the caller's decision, not a failure to classify).
func ctxStatus(err error, what string) error {
	c := codes.Canceled
	if errors.Is(err, context.DeadlineExceeded) {
		c = codes.DeadlineExceeded
	}
	return codedError(pb.ErrorCode_INTERNAL, c, "", noIter, fmt.Sprintf("%s: %v", what, err))
}

// coded reports whether err already is a gRPC status with an ErrorDetail.
func coded(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() == codes.OK || st.Code() == codes.Unknown {
		return false
	}
	for _, d := range st.Details() {
		if _, ok := d.(*pb.ErrorDetail); ok {
			return true
		}
	}
	return false
}

// ringFailure marks an all-reduce error inside the solver's step.
type ringFailure struct{ err error }

func (e *ringFailure) Error() string { return e.err.Error() }
func (e *ringFailure) Unwrap() error { return e.err }

// batchRows names the sample behind a bad label at position pos of the
// label blob: its subject (the sample id, or the partition and row) and a
// phrase for the message.
type batchRows func(pos int) (subject, where string, ok bool)

// labelRows maps a label position to the row of the last batch drawn, when
// one binding feeds the net (with several, the position is ambiguous). The
// label is the binding's last top, one or more values per sample.
func labelRows(bs []*binding) batchRows {
	if len(bs) != 1 {
		return nil
	}
	b := bs[0]
	return func(pos int) (string, string, bool) {
		rows := b.sampler.LastRows()
		shape := b.sampler.TopShape(len(b.ds.Fields()) - 1)
		per := 1
		for _, d := range shape[1:] {
			per *= d
		}
		if shape[0] != len(rows) || per < 1 || pos < 0 || pos/per >= len(rows) {
			return "", "", false
		}
		row := rows[pos/per]
		where := fmt.Sprintf("partition %s row %d", b.key, row)
		if id := b.ds.SampleID(row); id != "" {
			return id, fmt.Sprintf("%s (sample id %q)", where, id), true
		}
		return where, where, true
	}
}

// trainError classifies an error of a forward/backward pass or a training
// step; where says which (rank and iteration, or test net), iter is the
// training iteration or noIter.
func trainError(ctx context.Context, where string, iter int, err error, rows batchRows) error {
	if ctx.Err() != nil {
		return ctxStatus(ctx.Err(), where+": stopped")
	}
	var rf *ringFailure
	if errors.As(err, &rf) {
		return peerLost(iter, fmt.Errorf("%s: %w", where, rf.err))
	}
	var de *solver.DivergedError
	if errors.As(err, &de) {
		return diverged(where, de)
	}
	var le *layers.LabelError
	if errors.As(err, &le) {
		if rows != nil {
			if subject, at, ok := rows(le.Pos); ok {
				return codedError(pb.ErrorCode_BAD_INPUT, codes.InvalidArgument, subject, iter,
					fmt.Sprintf("%s: %s: label %v out of range [0, %d)", where, at, le.Value, le.Classes))
			}
		}
		return codedError(pb.ErrorCode_BAD_INPUT, codes.InvalidArgument, "", iter, fmt.Sprintf("%s: %v", where, err))
	}
	return internal(iter, "%s: %v", where, err)
}
