package train

import (
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/modelio"
	"github.com/gocaffe/gocaffe/caffe/solver"
	"github.com/gocaffe/gocaffe/goexec/memcheck"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// WithNonFinite sets what a round does when the loss or the reduced
// gradient is NaN or infinite: stop with code DIVERGED (the default), or
// log a warning and train on (spark.gocaffe.nonFinite=warn).
func WithNonFinite(m solver.NonFinite) Option { return func(s *Service) { s.nonFinite = m } }

// codedStatus is a gRPC status carrying an ErrorDetail, so that the driver
// decides by code whether a retry can help.
func codedStatus(c codes.Code, code pb.ErrorCode, subject string, iter int64, msg string) error {
	st := status.New(c, msg)
	if d, err := st.WithDetails(&pb.ErrorDetail{Code: code, Subject: subject, Iteration: iter}); err == nil {
		st = d
	}
	return st.Err()
}

// checkFinite checks one iteration's (reduced) loss and gradient before the
// update. Every rank holds the same reduced values, so every rank stops at
// the same iteration with the same message.
func (s *Service) checkFinite(sv *solver.Solver[float32], loss float64, rank int, warned *bool, log zerolog.Logger) error {
	err := sv.CheckFinite(loss)
	if err == nil {
		return nil
	}
	var d *solver.DivergedError
	if !errors.As(err, &d) {
		return status.Errorf(codes.Internal, "rank %d: %v", rank, err)
	}
	if s.nonFinite == solver.NonFiniteWarn {
		if !*warned {
			log.Warn().Err(err).Msg("non-finite loss or gradient; training on (spark.gocaffe.nonFinite=warn)")
			*warned = true
		}
		return nil
	}
	subject := d.Layer
	if subject == "" {
		subject = d.Param
	}
	// InvalidArgument: the driver does not retry it (a retry from the same weights diverges again).
	return codedStatus(codes.InvalidArgument, pb.ErrorCode_DIVERGED, subject, int64(d.Iter), fmt.Sprintf("rank %d: %v", rank, err))
}

// checkWeightsFinite refuses weights sent for a round that hold NaN or Inf
// (naming the blob), unless the policy is warn.
func (s *Service) checkWeightsFinite(w *caffepb.NetParameter, log zerolog.Logger) error {
	err := modelio.CheckNetFinite(w)
	if err == nil {
		return nil
	}
	if s.nonFinite == solver.NonFiniteWarn {
		log.Warn().Err(err).Msg("weights hold non-finite values (spark.gocaffe.nonFinite=warn)")
		return nil
	}
	return codedStatus(codes.InvalidArgument, pb.ErrorCode_DIVERGED, "weights", -1, fmt.Sprintf("weights: %v", err))
}

// WithMemorySources sets where the service reads the memory it may use
// (memcheck.System by default; tests give fixed limits).
func WithMemorySources(m memcheck.Sources) Option { return func(s *Service) { s.memSources = &m } }

// checkMemory refuses a net whose estimated need exceeds what this goexec
// may use, with code OUT_OF_MEMORY, before anything is allocated.
func (s *Service) checkMemory(sp *caffepb.SolverParameter) error {
	need, err := solver.EstimateMemory(sp, s.reg, true)
	if err != nil {
		return nil // the solver's own construction reports a bad net
	}
	src := memcheck.System()
	if s.memSources != nil {
		src = *s.memSources
	}
	err = memcheck.Check("the train net", need.Bytes, need.Batch, need.Largest, src.Budget())
	if err == nil {
		return nil
	}
	subject := ""
	if len(need.Largest) > 0 {
		subject = need.Largest[0].Name
	}
	return codedStatus(codes.ResourceExhausted, pb.ErrorCode_OUT_OF_MEMORY, subject, -1, err.Error())
}
